"""Two skywaved joined by a zero-handshake peer link (XEP-0361 over TCP)
on loopback: messages, presence subscriptions and IQs across; the
durable queue across a kill -9 of the sending server; and the agreement
enforced on what the peer may send."""
import asyncio
import calendar
import json
import os
import re
import signal
import socket
import time
import zlib

import pytest

from conftest import Server, free_port
from swnet import make_cert, peer_section, tls_options  # noqa: F401
from test_c2s import Raw
from test_im import Client, run_async


def peer_config(my_port, peer_port, peer_domain, extra=""):
    return ('link_tcp_interfaces = { "127.0.0.1" }\n'
            'link_tcp_port = %d\n%s\n' % (my_port, extra)
            + peer_section(peer_domain.split(".")[0], peer_domain, [
                ("link_tcp_address", "127.0.0.1"),
                ("link_tcp_peer_port", peer_port),
                ("peer_reconnect_min", "200ms"),
                ("peer_reconnect_max", "1s"),
                ("peer_head_start", "0s")]))


class Pair:
    def __init__(self, tmp_path):
        pa, pb = free_port(), free_port()
        mods = ("c2s", "im", "server", "link_tcp")
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        self.a = Server(tmp_path / "a", hosts=("a.example",), modules=mods,
                        extra=peer_config(pa, pb, "b.example"))
        self.b = Server(tmp_path / "b", hosts=("b.example",), modules=mods,
                        extra=peer_config(pb, pa, "a.example"))
        self.a.adduser("alice@a.example", "pw-alice")
        self.b.adduser("bob@b.example", "pw-bob")
        self.a_link_port = pa
        self.b_link_port = pb


@pytest.fixture
def pair(tmp_path):
    p = Pair(tmp_path)
    p.a.start()
    p.b.start()
    yield p
    for s in (p.a, p.b):
        rc = s.stop()
        assert rc in (0, None), "skywaved exited with %r" % rc


def wait_log(server, text, timeout=15):
    deadline = time.time() + timeout
    while text not in server.log_text():
        assert time.time() < deadline, "no %r in the log" % text
        time.sleep(0.05)


def add_peer_options(server, text):
    """Adds option lines (TEXT, "name = value,\n" each) to the Peer section
    of SERVER's config; returns the new config text."""
    cfg = open(server.cfg).read().replace(
        "    peer_reconnect_min", "    " + text + "    peer_reconnect_min")
    open(server.cfg, "w").write(cfg)
    return cfg


def online(server, jid, password, resource):
    """A raw client logged in and available (initial presence)."""
    local, host = jid.split("@")
    c = Raw(server.port, host)
    c.login(local, password, resource)
    c.send("<presence/>")
    return c


def test_messages_presence_and_iq_across_the_link(pair):
    async def go():
        alice = await Client(pair.a, "alice@a.example/home").login()
        bob = await Client(pair.b, "bob@b.example/ship").login()
        alice.c.send_message(mto="bob@b.example", mbody="over the link",
                             mtype="chat")
        m = await bob.expect(lambda s: s.name == "message"
                             and s["body"] == "over the link", "the message")
        assert str(m["from"]) == "alice@a.example/home"
        bob.c.send_message(mto="alice@a.example", mbody="and back",
                           mtype="chat")
        await alice.expect(lambda s: s.name == "message"
                           and s["body"] == "and back", "the reply")
        # Subscription handshake across the link (RFC 6121 §3).
        alice.c.send_presence(pto="bob@b.example", ptype="subscribe")
        await bob.expect_presence("subscribe", "alice@a.example")
        bob.c.send_presence(pto="alice@a.example", ptype="subscribed")
        await alice.expect_presence("subscribed", "bob@b.example")
        await alice.expect_presence("available", "bob@b.example/ship")
        # An IQ to the far server itself.
        iq = alice.c.make_iq_get(queryxmlns="jabber:iq:version",
                                 ito="b.example")
        r = await iq.send(timeout=10)
        assert r["type"] == "result"
        for c in (alice, bob):
            await c.close()
    run_async(go())
    wait_log(pair.a, "link b: up")
    # One connection for both directions (XEP-0361 §4).
    assert pair.a.log_text().count("link b: up") == 1


def test_kill_9_of_the_sender_loses_nothing(pair):
    """Bob's server is down; Alice's server takes 100 messages into its
    durable queue and is killed with SIGKILL; both come back: every
    message reaches Bob once, in order."""
    assert pair.b.stop() == 0
    alice = Raw(pair.a.port, "a.example")
    alice.login("alice", "pw-alice", "home")
    alice.send("<enable xmlns='urn:xmpp:sm:3'/>")
    alice.read_until(r"<enabled[^>]*/>")
    for i in range(100):
        alice.send("<message to='bob@b.example' type='chat' id='k%d'>"
                   "<body>msg %d</body></message>" % (i, i))
    alice.send("<r xmlns='urn:xmpp:sm:3'/>")
    assert "h='100'" in alice.read_until(r"<a [^>]*h='100'[^>]*/>")
    # handled = committed: the kill may come right after the ack
    pair.a.proc.send_signal(signal.SIGKILL)
    pair.a.proc.wait(timeout=10)
    pair.a.start()
    wait_log(pair.a, "100 stanzas queued from before")
    pair.b.start()

    async def go():
        bob = await Client(pair.b, "bob@b.example/ship").login()
        bodies = []
        deadline = time.time() + 30
        while len(bodies) < 100 and time.time() < deadline:
            for st in list(bob.got):
                if st.name == "message" and str(st["body"]).startswith("msg"):
                    bodies.append(str(st["body"]))
                    bob.got.remove(st)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        extra = [s for s in bob.got if s.name == "message"]
        await bob.close()
        return bodies, extra
    bodies, extra = run_async(go())
    assert bodies == ["msg %d" % i for i in range(100)]
    assert not extra, "duplicates: %r" % extra


def test_peer_may_not_speak_for_other_domains(pair):
    """A connection from the peer's address that sends a stanza from a
    domain outside the agreement gets it refused, with a clear log line."""
    wait_log(pair.a, "link b: up")
    assert pair.b.stop() == 0       # the raw socket below plays the peer
    wait_log(pair.a, "link b: connection closed")
    s = socket.create_connection(("127.0.0.1", pair.a_link_port), timeout=5)
    z = zlib.compressobj(9)         # peer links are DEFLATE by default
    s.sendall(z.compress(b"<link xmlns='urn:skywave:link:0' seq='1' ack='0'/>"
                         b"<message from='mallory@evil.example/x' "
                         b"to='alice@a.example' type='chat'><body>forged"
                         b"</body></message>") + z.flush(zlib.Z_SYNC_FLUSH))
    wait_log(pair.a, "refused a stanza from 'mallory@evil.example/x'")
    s.close()


def test_unknown_source_address_is_refused(pair):
    s = socket.socket()
    s.bind(("127.0.0.9", 0))
    s.connect(("127.0.0.1", pair.a_link_port))
    wait_log(pair.a, "refused a connection from 127.0.0.9")
    s.close()


def test_dictionary_mismatch_is_detected(tmp_path):
    """Different preset dictionaries at the two ends: the receiver names
    the mismatch (zlib's FDICT checksum) instead of delivering garbage."""
    p = Pair(tmp_path)
    (tmp_path / "a" / "other.dict").write_text(
        "<message><body>a different dictionary</body></message>" * 8)
    cfg = open(p.a.cfg).read().replace(
        "peer_reconnect_min", 'peer_dictionary = "other.dict",\n'
        '    peer_reconnect_min')
    open(p.a.cfg, "w").write(cfg)
    p.a.start()
    p.b.start()
    try:
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<message to='bob@b.example' type='chat' id='d1'>"
                   "<body>garbled?</body></message>")
        wait_log(p.b, "DEFLATE dictionary mismatch")
        assert "garbled?" not in p.b.log_text()
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0


def tls_pair(tmp_path, pin_for_b=None):
    p = Pair(tmp_path)
    ca, ka, fa = make_cert(tmp_path / "a", "a.example")
    cb, kb, fb = make_cert(tmp_path / "b", "b.example")
    for server, cert, key, pin in ((p.a, ca, ka, pin_for_b or fb),
                                   (p.b, cb, kb, fa)):
        cfg = open(server.cfg).read().replace(
            "    peer_reconnect_min",
            tls_options(cert, key, pin=pin) + "    peer_reconnect_min")
        open(server.cfg, "w").write(cfg)
    return p


def test_tls_with_pinned_certificates(tmp_path):
    p = tls_pair(tmp_path)
    p.a.start()
    p.b.start()
    try:
        async def go():
            alice = await Client(p.a, "alice@a.example/home").login()
            bob = await Client(p.b, "bob@b.example/ship").login()
            alice.c.send_message(mto="bob@b.example", mbody="sealed",
                                 mtype="chat")
            await bob.expect(lambda s: s.name == "message"
                             and s["body"] == "sealed", "the message")
            for c in (alice, bob):
                await c.close()
        run_async(go())
        assert "peer verified" in p.a.log_text()
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0


def test_tls_ticket_refused_after_a_restart(tmp_path):
    """A opens the link and keeps B's TLS ticket.  B restarts (a new
    ticket key): A's next connection offers the old ticket and its queue
    as early data, B refuses both, a full handshake follows and A sends
    the queue again inside it: the message arrives once."""
    p = tls_pair(tmp_path)
    add_peer_options(p.b, 'peer_initiate = "them",\n')
    p.a.start()
    p.b.start()
    try:
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<message to='bob@b.example' type='chat'>"
                   "<body>before</body></message>")
        bob.read_until(r"<body>before</body>")
        time.sleep(0.5)                     # the ticket follows
        assert p.b.stop() == 0
        wait_log(p.a, "link b: connection closed")
        alice.send("<message to='bob@b.example' type='chat'>"
                   "<body>after</body></message>")
        p.b.start()
        deadline = time.time() + 15
        while p.b.log_text().count(" started (pid") < 2:
            assert time.time() < deadline, "B did not start again"
            time.sleep(0.05)
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        text = bob.read_until(r"<body>after</body>", timeout=15)
        time.sleep(0.5)
        bob.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        rest = bob.read_until(r"id='p1'")
        assert text.count("<body>after</body>") == 1
        assert "<body>after</body>" not in rest
        ups = [ln for ln in p.a.log_text().splitlines()
               if "link b: up" in ln]
        assert len(ups) >= 2 and ", resumed" not in ups[-1], ups
        assert "TLS: the peer refused early data" in p.a.log_text()
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0


def test_wrong_pinned_certificate_is_refused(tmp_path):
    p = tls_pair(tmp_path, pin_for_b="00" * 32)
    p.a.start()
    p.b.start()
    try:
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<message to='bob@b.example' type='chat' id='w1'>"
                   "<body>not for strangers</body></message>")
        wait_log(p.a, "refused the peer's certificate: its SHA-256 "
                      "fingerprint")
        time.sleep(1)
        # A never accepts B as its peer, so nothing of A's leaves for B.
        # (In TLS 1.3 the client side finishes before the server has
        # checked its certificate, so B may briefly think the link is up;
        # A's alert closes it, and A's queue keeps the message.)
        assert "link b: up" not in p.a.log_text()
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0


def test_expired_message_is_bounced_to_its_sender(tmp_path):
    """The peer stays unreachable longer than peer_expire_message: the
    sender gets <remote-server-timeout/> (RFC 6120 §8.3.3.17); presence
    and chat states are never bounced."""
    p = Pair(tmp_path)
    cfg = open(p.a.cfg).read().replace(
        "peer_reconnect_min", 'peer_expire_message = "2s",\n'
        '    peer_reconnect_min')
    open(p.a.cfg, "w").write(cfg)
    p.a.start()                      # b never starts
    try:
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<message to='bob@b.example' type='chat' id='x1'>"
                   "<body>too late</body></message>")
        text = alice.read_until(r"id='x1'.*?</message>", timeout=15)
        assert "type='error'" in text
        assert "<remote-server-timeout xmlns='urn:ietf:params:xml:ns:" \
            "xmpp-stanzas'/>" in text
        # In the stream's namespace (jabber:client), not in none: a client
        # would not see <message xmlns=''> as a message at all.
        start = re.search(r"<message[^>]*id='x1'[^>]*>", text).group(0)
        assert "xmlns=" not in start, start
        wait_log(p.a, "expired in the queue")
    finally:
        assert p.a.stop() == 0


def make_ca_pair(directory, names):
    """A CA and certificates it signed for names; returns (ca, {name:
    (cert, key)}), made with certtool."""
    import subprocess

    def run(*args):
        subprocess.run(["certtool"] + list(args), check=True,
                       capture_output=True)
    ca_key, ca, t = (str(directory / n) for n in ("ca.key", "ca.crt",
                                                   "ca.tmpl"))
    open(t, "w").write('cn = "Test CA"\nca\ncert_signing_key\n'
                       'expiration_days = 30\n')
    run("--generate-privkey", "--key-type", "ecdsa", "--outfile", ca_key)
    run("--generate-self-signed", "--load-privkey", ca_key, "--template", t,
        "--outfile", ca)
    out = {}
    for cn, dns in names:
        key, crt, tt = (str(directory / (cn + ext))
                        for ext in (".key", ".crt", ".tmpl"))
        open(tt, "w").write('cn = "%s"\ndns_name = "%s"\ntls_www_server\n'
                            'tls_www_client\nexpiration_days = 30\n'
                            % (dns, dns))
        run("--generate-privkey", "--key-type", "ecdsa", "--outfile", key)
        run("--generate-certificate", "--load-privkey", key,
            "--load-ca-certificate", ca, "--load-ca-privkey", ca_key,
            "--template", tt, "--outfile", crt)
        out[cn] = (crt, key)
    return ca, out


def ca_pair(tmp_path, b_name):
    p = Pair(tmp_path)
    ca, certs = make_ca_pair(tmp_path, [("a", "a.example"), ("b", b_name)])
    for server, who in ((p.a, "a"), (p.b, "b")):
        cfg = open(server.cfg).read().replace(
            "    peer_reconnect_min",
            tls_options(certs[who][0], certs[who][1], ca=ca)
            + "    peer_reconnect_min")
        open(server.cfg, "w").write(cfg)
    return p


def test_tls_verified_by_a_ca(tmp_path):
    p = ca_pair(tmp_path, "b.example")
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "link b: up")
        assert "peer verified" in p.a.log_text()
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0


def test_ca_signed_certificate_for_another_name_is_refused(tmp_path):
    p = ca_pair(tmp_path, "evil.example")
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "refused the peer's certificate for b.example")
        assert "link b: up" not in p.a.log_text()
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0


def test_skywavectl_links_prints_the_counters(pair):
    from conftest import SKYWAVECTL, run, sw_env
    wait_log(pair.a, "link b: up")
    alice = Raw(pair.a.port, "a.example")
    alice.login("alice", "pw-alice", "home")
    alice.send("<message to='bob@b.example' type='chat' id='c1'>"
               "<body>counted</body></message>")
    wait_log(pair.b, "link a: up")
    time.sleep(1)
    assert pair.a.stop() == 0           # writes the counters on the way out
    r = run([SKYWAVECTL, "-c", pair.a.cfg, "links"], sw_env())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["PEER", "UP", "QUEUED"]
    row = lines[1].split()
    assert row[0] == "b" and int(row[3]) >= 1, r.stdout   # stanzas out
    assert row[8].endswith("x")                            # ratio


def test_queue_bounds_per_kind(tmp_path):
    """With the peer unreachable, A's queue holds at most 3 messages and 3
    presences for it (peer_queue_max_message/_presence): the fourth
    message is bounced with resource-constraint; a fourth presence from
    alice to bob replaces her oldest waiting one, and one to carol, with
    nothing of hers to replace, is dropped.  A is then killed (-9) and
    restarted pointing at B: what was kept, and only that, reaches bob,
    in order."""
    p = Pair(tmp_path)
    dead_port = free_port()
    b_port = re.search(r"link_tcp_peer_port = (\d+)",
                       open(p.a.cfg).read()).group(1)
    cfg = open(p.a.cfg).read().replace("link_tcp_peer_port = %s" % b_port,
                                       "link_tcp_peer_port = %d" % dead_port)
    open(p.a.cfg, "w").write(cfg)
    cfg_a = add_peer_options(p.a, 'peer_queue_max_message = 3,\n'
                             '    peer_queue_max_presence = 3,\n')
    add_peer_options(p.b, 'peer_initiate = "them",\n')
    p.a.start()
    p.b.start()
    try:
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<enable xmlns='urn:xmpp:sm:3'/>")
        alice.read_until(r"<enabled[^>]*/>")
        for i in range(4):
            alice.send("<message to='bob@b.example' type='chat' id='q%d'>"
                       "<body>msg %d</body></message>" % (i, i))
        text = alice.read_until(r"id='q3'.*?</message>")
        assert "type='error'" in text
        assert "<resource-constraint xmlns='urn:ietf:params:xml:ns:" \
            "xmpp-stanzas'/>" in text
        for show in ("away", "dnd", "xa", "chat"):
            alice.send("<presence to='bob@b.example'><show>%s</show>"
                       "</presence>" % show)
        alice.send("<presence to='carol@b.example'><show>away</show>"
                   "</presence>")
        alice.send("<r xmlns='urn:xmpp:sm:3'/>")
        alice.read_until(r"<a [^>]*h='9'[^>]*/>")
        wait_log(p.a, "link b: queue full: dropped presence from "
                 "alice@a.example/home")
        # kill -9: no unavailable presence for the directed ones
        p.a.proc.send_signal(signal.SIGKILL)
        p.a.proc.wait(timeout=10)
        open(p.a.cfg, "w").write(cfg_a.replace(
            "link_tcp_peer_port = %d" % dead_port,
            "link_tcp_peer_port = %s" % b_port))
        p.a.start()
        wait_log(p.a, "6 stanzas queued from before")
        text = bob.read_until(r"<show>chat</show>", timeout=20)
        got = re.findall(r"<body>(msg \d)</body>|<show>(\w+)</show>", text)
        assert [m or s for m, s in got] == [
            "msg 0", "msg 1", "msg 2", "dnd", "xa", "chat"]
        time.sleep(1)
        bob.send("<iq type='get' id='ping1'><ping xmlns='urn:xmpp:ping'/>"
                 "</iq>")
        rest = bob.read_until(r"id='ping1'")
        assert "<show>" not in rest and "<body>" not in rest, rest
    finally:
        for s in (p.a, p.b):
            assert s.stop() in (0, None)


@pytest.mark.parametrize("mode", ["always", "never"])
def test_fold_presence_modes(tmp_path, mode):
    """peer_fold_presence: with "always" a newer presence from alice to
    bob replaces the one still waiting although the queue has room, so
    bob gets only the latest; with "never" he gets each one, in order."""
    p = Pair(tmp_path)
    add_peer_options(p.a, 'peer_fold_presence = "%s",\n' % mode)
    p.a.start()
    try:
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<enable xmlns='urn:xmpp:sm:3'/>")
        alice.read_until(r"<enabled[^>]*/>")
        for show in ("away", "dnd", "xa", "chat"):
            alice.send("<presence to='bob@b.example'><show>%s</show>"
                       "</presence>" % show)
        alice.send("<message to='bob@b.example' type='chat' id='m1'>"
                   "<body>after</body></message>")
        alice.send("<r xmlns='urn:xmpp:sm:3'/>")
        alice.read_until(r"<a [^>]*h='5'[^>]*/>")
        # bob online before the queue goes; kill -9: no unavailable
        # presence for the directed ones
        p.a.proc.send_signal(signal.SIGKILL)
        p.a.proc.wait(timeout=10)
        p.b.start()
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        time.sleep(0.3)
        p.a.start()
        text = bob.read_until(r"<body>after</body>", timeout=20)
        shows = re.findall(r"<show>(\w+)</show>", text)
        assert shows == (["chat"] if mode == "always"
                         else ["away", "dnd", "xa", "chat"]), text
    finally:
        for s in (p.a, p.b):
            assert s.stop() in (0, None)
    assert p.a.log_text().count("folded into a newer one") == \
        (3 if mode == "always" else 0)


def _zstd_pair(tmp_path, a_opts, b_opts):
    p = Pair(tmp_path)
    for server, opts in ((p.a, a_opts), (p.b, b_opts)):
        cfg = open(server.cfg).read().replace(
            "peer_reconnect_min", opts + "    peer_reconnect_min")
        open(server.cfg, "w").write(cfg)
    p.a.start()
    p.b.start()
    return p


def test_zstd_codec_both_ways(tmp_path):
    """peer_codec = "zstd" at both ends: messages both ways, the trained
    dictionary's ID in the frame header checked."""
    p = _zstd_pair(tmp_path, 'peer_codec = "zstd",\n',
                   'peer_codec = "zstd",\n')
    try:
        wait_log(p.a, "link b: up")
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        alice = online(p.a, "alice@a.example", "pw-alice", "home")
        for i in range(20):
            alice.send("<message to='bob@b.example' type='chat' id='z%d'>"
                       "<body>zstd %d</body></message>" % (i, i))
        got = bob.read_until(r"<body>zstd 19</body>", timeout=15)
        assert [int(n) for n in re.findall(r"<body>zstd (\d+)</body>",
                                           got)] == list(range(20))
        bob.send("<message to='alice@a.example' type='chat' id='y1'>"
                 "<body>back over zstd</body></message>")
        alice.read_until(r"<body>back over zstd</body>", timeout=15)
        for s in (p.a, p.b):
            assert "zstd data error" not in s.log_text()
            assert "mismatch" not in s.log_text()
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0
    st = json.load(open(os.path.join(str(p.a.dir), "state", "links.json")))
    link = st["links"][0]
    # compressed: far fewer bytes on the wire than stanza bytes
    assert link["wire_out"] < link["bytes_out"] / 2, link


def test_zstd_codec_mismatch_is_named(tmp_path):
    p = _zstd_pair(tmp_path, 'peer_codec = "zstd",\n', "")
    try:
        wait_log(p.a, "the peer compresses with DEFLATE")
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0


def test_zstd_dictionary_mismatch_is_named(tmp_path):
    p = _zstd_pair(tmp_path, 'peer_codec = "zstd",\n',
                   'peer_codec = "zstd",\n    peer_dictionary = "none",\n')
    try:
        wait_log(p.a, "zstd dictionary mismatch: the peer uses ID "
                      "0x00000000, ours is 0x53570001")
        wait_log(p.b, "zstd dictionary mismatch: the peer uses ID "
                      "0x53570001, ours is 0x00000000")
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0


def test_a_message_that_waited_carries_its_time(pair):
    """XEP-0203: a message held in the link's queue longer than 10 s (the
    peer was down) arrives with the time it was queued; one that did not
    wait has no delay."""
    wait_log(pair.a, "link b: up")
    alice = online(pair.a, "alice@a.example", "pw-alice", "home")
    bob = online(pair.b, "bob@b.example", "pw-bob", "ship")
    alice.send("<message to='bob@b.example' type='chat' id='now'>"
               "<body>at once</body></message>")
    m = bob.read_until(r"at once.*?</message>", 15)
    assert "urn:xmpp:delay" not in m
    bob.sock.close()
    assert pair.b.stop() == 0
    t0 = time.time()
    alice.send("<message to='bob@b.example' type='chat' id='late'>"
               "<body>held</body></message>")
    time.sleep(11)
    pair.b.start()
    bob = online(pair.b, "bob@b.example", "pw-bob", "ship")
    m = bob.read_until(r"held.*?</message>", 30)
    d = re.search(r"<delay xmlns='urn:xmpp:delay' from='a.example' "
                  r"stamp='([^']+)'/>", m)
    assert d, m
    stamp = calendar.timegm(time.strptime(d.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(stamp - t0) < 3, (d.group(1), t0)
