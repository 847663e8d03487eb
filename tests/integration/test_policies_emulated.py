"""Issue 14 over the link emulator (satcom-64k: 64 kbit/s, 300 ms each
way): a client logging in at B with 20 roster contacts at A causes no
probe on the link once the presence cache is warm (counted on the link:
B's stanzas to A, and the emulator's packets B->A carrying data); and an
endless-loop policy on A's outbound chain is cut by its budget while the
link keeps carrying every message."""
import re
import time

import pytest

from swnet import in_netns
from test_c2s import Raw
from test_link_emulated import Setup
from test_linkemu import _netns_usable
from test_presence_cache import add_module, stanzas_out

_reason = _netns_usable()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")

N_CONTACTS, N_ONLINE = 20, 10


def client(ns, server, user, host, password, resource):
    with in_netns(ns):
        c = Raw(server.port, host)
    c.login(user, password, resource)
    return c


def presences(c, seconds):
    end = time.time() + seconds
    text = ""
    while time.time() < end:
        try:
            text += c.read_until(r"<presence[^>]*/>|</presence>",
                                 timeout=max(0.1, end - time.time()))
        except AssertionError:
            break
    seen = {}
    for m in re.finditer(r"<presence([^>]*?)(/>|>(.*?)</presence>)", text,
                         re.S):
        frm = re.search(r"from='(a\d+@a\.example)", m.group(1))
        if frm:
            seen[frm.group(1)] = ("unavailable"
                                  if "type='unavailable'" in m.group(1)
                                  else "available")
    return seen


def test_a_warm_login_puts_no_probe_on_the_emulated_link(tmp_path):
    ln = Setup(tmp_path, ["--profile", "satcom-64k"], keepalive="60s")
    add_module(ln.a, "presence_cache")
    add_module(ln.b, "presence_cache")
    for i in range(1, N_CONTACTS + 1):
        ln.a.adduser("a%d@a.example" % i, "pw")
    try:
        ln.start()
        ln.wait_up()
        bob = client(ln.emu.ns_b, ln.b, "bob", "b.example", "pw-bob", "ship")
        bob.send("<presence/>")
        for i in range(1, N_CONTACTS + 1):
            bob.send("<presence to='a%d@a.example' type='subscribe'/>" % i)
        keep = []
        for i in range(1, N_CONTACTS + 1):
            c = client(ln.emu.ns_a, ln.a, "a%d" % i, "a.example", "pw",
                       "desk")
            c.send("<presence/>")
            c.read_until(r"type='subscribe'", timeout=30)
            c.send("<presence to='bob@b.example' type='subscribed'/>")
            if i <= N_ONLINE:
                keep.append(c)
            else:
                c.send("<presence type='unavailable'/></stream:stream>")
                c.sock.close()
        presences(bob, 5)
        bob.send("</stream:stream>")
        bob.sock.close()
        time.sleep(2)
        want = {"a%d@a.example" % i: "available" if i <= N_ONLINE
                else "unavailable" for i in range(1, N_CONTACTS + 1)}
        before = stanzas_out(ln.b)
        data_before = ln.emu.stats()["b_to_a"]["bytes"]
        bob = client(ln.emu.ns_b, ln.b, "bob", "b.example", "pw-bob", "ship")
        bob.send("<presence/>")
        assert presences(bob, 3) == want
        assert stanzas_out(ln.b) == before, "probes crossed the link"
        # no data B->A either (a bare TCP ack or two may pass: 40 B each)
        assert ln.emu.stats()["b_to_a"]["bytes"] - data_before < 200
        assert (ln.a.stop(), ln.b.stop()) == (0, 0)
    finally:
        ln.a.stop()
        ln.b.stop()
        ln.emu.stop()


def test_an_endless_loop_policy_is_cut_and_the_link_keeps_working(
        tmp_path):
    loop = tmp_path / "loop.lua"
    loop.write_text("local policy = { name = 'loop' }\n"
                    "function policy.outbound(st, link)\n"
                    "    if st:kind() == 'message' then\n"
                    "        while true do end\n"
                    "    end\n"
                    "end\n"
                    "return policy\n")
    ln = Setup(tmp_path, ["--profile", "satcom-64k"])
    add_module(ln.a, "filter")
    with open(ln.a.cfg) as f:
        cfg = f.read()
    with open(ln.a.cfg, "w") as f:
        f.write(cfg.replace("    peer_reconnect_min", '    filter_outbound '
                            '= "%s",\n    peer_reconnect_min' % loop, 1))
    try:
        ln.start()
        ln.wait_up()
        bob = client(ln.emu.ns_b, ln.b, "bob", "b.example", "pw-bob", "ship")
        bob.send("<presence/>")
        alice = client(ln.emu.ns_a, ln.a, "alice", "a.example", "pw-alice",
                       "home")
        for i in range(5):
            alice.send("<message to='bob@b.example' type='chat' id='m%d'>"
                       "<body>m%d</body></message>" % (i, i))
        got = bob.read_until(r"id='m4'.*?</message>", timeout=30)
        assert all("id='m%d'" % i in got for i in range(5)), got
        log = ln.a.log_text()
        assert "instructions in one call" in log
        assert "policy loop (outbound)" in log
        assert (ln.a.stop(), ln.b.stop()) == (0, 0)
    finally:
        ln.a.stop()
        ln.b.stop()
        ln.emu.stop()
