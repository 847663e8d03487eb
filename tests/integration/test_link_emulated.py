"""Two skywaved joined by a peer link through skywave-linkemu: server A
in namespace A, server B in namespace B, each listening for its peer on
its namespace's emulator address and for clients on 127.0.0.1 inside its
own namespace.  Messages and a subscription across a 64 kbit/s satcom
link, latency over Iridium, an outage in the middle of a burst, a preset
dictionary mismatch, and a kill -9 of the sender while the link is down.

Clients are the raw TLS client of test_c2s.py (deterministic, no
background tasks); its socket is opened inside the server's namespace
(setns(2) around socket creation), so everything it sends and receives
stays on that side, like a client on the server's own machine.
"""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import Server
from test_c2s import Raw
from swnet import (ADDR_A, ADDR_B, Emu, Sniffer, drop_cgroup, enter_netns,
                   in_netns, make_cert, own_cgroup, peer_section, stored_rtt,
                   tls_options)
import swnet
from swnet import netns_usable as _netns_usable

_reason = _netns_usable()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")

LINK_PORT = 5270                # each namespace has its own port space
class NsClient:
    """A logged-in raw client of SERVER, connected from inside NS.  It
    keeps everything it has received, so a test can wait for a pattern
    and then look at all the messages, duplicates included."""

    def __init__(self, ns, server, jid, resource, sm=False):
        local, host = jid.split("@")
        with in_netns(ns):
            self.raw = Raw(server.port, host)
        self.raw.login(local, "pw-" + local, resource)
        self.data = self.raw.buf
        self.raw.buf = b""
        # Initial presence: an available resource gets chat messages to
        # the bare JID and subscription presence (RFC 6121 §4.2, §8.5.2).
        self.send("<presence/>")
        if sm:
            # After the presence, so that h counts only what the test sends.
            self.send("<enable xmlns='urn:xmpp:sm:3'/>")
            self.wait(r"<enabled[^>]*/>", 10)

    def send(self, text):
        self.raw.send(text)

    def text(self):
        return self.data.decode(errors="replace")

    def _read(self, timeout):
        self.raw.sock.settimeout(max(0.01, timeout))
        try:
            chunk = self.raw.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return
        if not chunk:
            raise AssertionError("server closed the client connection; "
                                 "last data %r" % self.text()[-500:])
        self.data += chunk

    def wait(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text())
            if m:
                return m
            left = deadline - time.monotonic()
            assert left > 0, "no %r within %s s; got %r" % (
                pattern, timeout, self.text()[-800:])
            self._read(min(left, 0.5))

    def bodies(self, prefix):
        """Numbers N of every received <body>PREFIX N</body>, in order."""
        return [int(n) for n in
                re.findall(r"<body>%s (\d+)</body>" % prefix, self.text())]

    def collect(self, prefix, n, timeout, linger=2.0):
        """Waits for N numbered bodies, then LINGER seconds more so that a
        duplicate arriving late is seen too."""
        deadline = time.monotonic() + timeout
        while len(self.bodies(prefix)) < n and time.monotonic() < deadline:
            self._read(min(0.5, deadline - time.monotonic()))
        self.complete_at = time.monotonic()
        end = time.monotonic() + linger
        while time.monotonic() < end:
            self._read(end - time.monotonic())
        return self.bodies(prefix)

    def close(self):
        try:
            self.send("</stream:stream>")
            self.raw.sock.close()
        except OSError:
            pass


def presence_re(frm, ptype=None):
    """A <presence> start tag from FRM, of type PTYPE (None: available)."""
    typ = ("(?=[^>]*type='%s')" % ptype) if ptype \
        else "(?![^>]*type=)"
    return r"<presence(?=[^>]*from='%s')%s[^>]*>" % (re.escape(frm), typ)


def message(to, body, mid=None):
    return ("<message to='%s' type='chat'%s><body>%s</body></message>"
            % (to, " id='%s'" % mid if mid else "", body))


def peer_config(my_addr, peer_addr, peer_name, peer_domain, dictionary=None,
                keepalive="2s", more="", top=""):
    opts = [("link_tcp_address", peer_addr),
            ("link_tcp_peer_port", LINK_PORT),
            ("peer_reconnect_min", "200ms"),
            ("peer_reconnect_max", "2s"),
            ("peer_keepalive", keepalive)]
    if dictionary:
        opts.append(("peer_dictionary", dictionary))
    return (top + 'link_tcp_interfaces = { "%s" }\nlink_tcp_port = %d\n'
            % (my_addr, LINK_PORT)
            + peer_section(peer_name, peer_domain, opts, more))


def links_json(server):
    """The server's entry for its only peer in data_dir/links.json."""
    with open(os.path.join(str(server.dir), "state", "links.json")) as f:
        links = json.load(f)["links"]
    assert len(links) == 1, links
    return links[0]


def count_log(server, text):
    return server.log_text().count(text)


def wait_log(server, text, timeout=20, count=1):
    deadline = time.monotonic() + timeout
    while count_log(server, text) < count:
        assert server.proc.poll() is None, \
            "skywaved exited (%r) waiting for %r" % (server.proc.returncode,
                                                     text)
        assert time.monotonic() < deadline, \
            "no %r (x%d) in %s within %s s" % (text, count, server.log,
                                                timeout)
        time.sleep(0.05)


def start_server(server):
    """Server.start() returns at once if an earlier run's 'started' line
    is in the log: wait for this run's own line."""
    n = count_log(server, " started (pid")
    server.start()
    wait_log(server, " started (pid", timeout=30, count=n + 1)


class Setup:
    """The emulator, then server A (a.example, alice) in its namespace A
    and server B (b.example, bob) in namespace B, peers of each other."""

    def __init__(self, tmp_path, emu_args, keepalive="2s", dicts=None,
                 more=("", ""), top="", cgroups=False):
        self.emu = Emu(tmp_path, list(emu_args))
        mods = ("c2s", "im", "server", "link_tcp")
        dicts = dicts or (None, None)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        self.a = Server(tmp_path / "a", hosts=("a.example",), modules=mods,
                        extra=peer_config(ADDR_A, ADDR_B, "b", "b.example",
                                          dicts[0], keepalive, more[0], top))
        self.b = Server(tmp_path / "b", hosts=("b.example",), modules=mods,
                        extra=peer_config(ADDR_B, ADDR_A, "a", "a.example",
                                          dicts[1], keepalive, more[1], top))
        self.a.wrapper = ["ip", "netns", "exec", self.emu.ns_a]
        self.b.wrapper = ["ip", "netns", "exec", self.emu.ns_b]
        self.a.adduser("alice@a.example", "pw-alice")
        self.b.adduser("bob@b.example", "pw-bob")
        if cgroups:                     # each server in a group of its own
            self.a.cgroup = own_cgroup("a-%s" % tmp_path.name)
            self.b.cgroup = own_cgroup("b-%s" % tmp_path.name)
        self.clients = []

    def start(self):
        start_server(self.b)
        start_server(self.a)
        return self

    def wait_up(self, timeout=30):
        wait_log(self.a, "link b: up", timeout)
        wait_log(self.b, "link a: up", timeout)

    def alice(self, **kw):
        c = NsClient(self.emu.ns_a, self.a, "alice@a.example", "home", **kw)
        self.clients.append(c)
        return c

    def bob(self, **kw):
        c = NsClient(self.emu.ns_b, self.b, "bob@b.example", "ship", **kw)
        self.clients.append(c)
        return c

    def finish(self):
        """Clients, then servers, then the emulator (whose exit deletes
        the namespaces).  Returns the servers' exit codes."""
        for c in self.clients:
            c.close()
        rcs = {}
        for name, s in (("A", self.a), ("B", self.b)):
            try:
                rcs[name] = s.stop()
            except Exception as e:       # killed after the timeout
                rcs[name] = repr(e)
            if s.cgroup is not None:
                drop_cgroup(s.cgroup)
        self.emu.stop()
        return rcs


@pytest.fixture
def linked(tmp_path, request):
    """linked(emu_args, ...) builds a Setup (not yet started); at teardown
    everything is stopped and both servers must exit cleanly."""
    made = []

    def make(emu_args, **kw):
        s = Setup(tmp_path, emu_args, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        rcs = s.finish()
        assert all(rc in (0, None) for rc in rcs.values()), \
            "skywaved exit codes %r" % rcs


def test_satcom_messages_and_subscription(linked):
    ln = linked(["--profile", "satcom-64k"]).start()
    ln.wait_up()
    alice, bob = ln.alice(), ln.bob()

    t0 = time.monotonic()
    alice.send(message("bob@b.example", "hello 1"))
    m = bob.wait(r"<message[^>]*>.*?<body>hello 1</body>", 20)
    there = time.monotonic() - t0
    assert "from='alice@a.example/home'" in m.group(0)
    t0 = time.monotonic()
    bob.send(message("alice@a.example", "back 1"))
    alice.wait(r"<body>back 1</body>", 20)
    back = time.monotonic() - t0
    print("satcom-64k: alice->bob %.3f s, bob->alice %.3f s" % (there, back))
    # Each crossed the emulated link: at least its 300 ms one-way delay.
    assert 0.3 <= there < 10 and 0.3 <= back < 10, (there, back)

    # Subscription handshake across the link (RFC 6121 §3.1).
    alice.send("<presence to='bob@b.example' type='subscribe'/>")
    bob.wait(presence_re("alice@a.example", "subscribe"), 20)
    bob.send("<presence to='alice@a.example' type='subscribed'/>")
    alice.wait(presence_re("bob@b.example", "subscribed"), 20)
    # §3.1.5: the new subscriber gets the contact's current presence.
    alice.wait(presence_re("bob@b.example/ship"), 20)

    st = ln.emu.stats()
    assert st["a_to_b"]["packets"] > 0 and st["b_to_a"]["packets"] > 0
    # One connection for both directions, never re-established.  Both
    # servers open one at start; over 300 ms each way both may come up,
    # and a side that switches to the one both keep logs "up" twice
    # (doc/peer-links.md, "One connection").
    for s, peer in ((ln.a, "b"), (ln.b, "a")):
        ups = count_log(s, "link %s: up" % peer) \
            - count_log(s, "link %s: switching to the new connection" % peer)
        assert ups == 1, s.log_text()
        assert count_log(s, "link %s: connection closed" % peer) == 0, \
            s.log_text()
    # Round trips measured from acknowledgements: at least the emulated
    # 600 ms, plus at most the receiver's ack delay and some slack.
    assert ln.a.stop() == 0 and ln.b.stop() == 0
    st = links_json(ln.a)
    print("satcom-64k: A's counters %r" % st)
    # Out: the message and the subscribe; in: the reply, subscribed and
    # bob's presence.
    assert st["stanzas_out"] >= 2 and st["stanzas_in"] >= 3, st
    assert 0.6 <= st["rtt"] < 3, st


def test_iridium_latency(linked):
    # A keepalive of a few seconds would be a large share of 2400 bit/s.
    ln = linked(["--profile", "iridium"], keepalive="20s")
    t0 = time.monotonic()
    ln.start()
    ln.wait_up(timeout=60)
    up = time.monotonic() - t0
    alice, bob = ln.alice(), ln.bob()

    t0 = time.monotonic()
    alice.send(message("bob@b.example", "iridium 1"))
    bob.wait(r"<body>iridium 1</body>", 30)
    there = time.monotonic() - t0
    t0 = time.monotonic()
    bob.send(message("alice@a.example", "iridium 2"))
    alice.wait(r"<body>iridium 2</body>", 30)
    back = time.monotonic() - t0
    print("iridium: link up %.2f s after start; alice->bob %.2f s, "
          "bob->alice %.2f s" % (up, there, back))
    assert 1.5 <= there < 30 and 1.5 <= back < 30, (there, back)


def test_an_end_that_only_receives_knows_the_round_trip(linked):
    # B sends no stanza of its own, so no ack ever measures a round trip
    # for it; it takes the kernel's (TCP_INFO min_rtt) and stores it.
    # Without one its acks went out a second apart whatever the path.
    # B's ack timeout is 5 s: the kernel's value (above 3 s on Iridium)
    # is taken as at most half of it (an inflated sample must not stretch
    # probing without bound).
    ln = linked(["--profile", "iridium"], keepalive="20s",
                more=("", '    peer_ack_timeout = "5s",\n'))
    ln.start()
    ln.wait_up(timeout=60)
    alice, bob = ln.alice(), ln.bob()
    for i in range(12):
        alice.send(message("bob@b.example", "only in %d" % i, "o%d" % i))
        time.sleep(1)
    got = bob.collect("only in", 12, timeout=60)
    assert len(got) == 12, got
    time.sleep(6)
    assert ln.a.stop() == 0 and ln.b.stop() == 0
    st = links_json(ln.b)
    rtt = stored_rtt(ln.b, "a")
    print("B: stored round trip %r, counters %r" % (rtt, st))
    assert st["stanzas_out"] == 0, st
    assert rtt == 2.5, rtt
    # what the kernel said: Iridium, 1.5 s each way, plus the
    # serialisation at 2400 bit/s
    seen = re.findall(r"link a: path round trip ([\d.]+) s \(the "
                      r"transport said ([\d.]+) s", ln.b.log_text())
    assert seen, "B never took the transport's round trip"
    taken, said = map(float, seen[-1])
    assert taken == 2.5 and 3.0 <= said < 8, seen


def loss_probes(ns):
    """The namespace's count of TCP tail loss probes sent
    (TCPLossProbes, /proc/net/netstat)."""
    out = subprocess.run(["ip", "netns", "exec", ns, "cat",
                          "/proc/net/netstat"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    names, values = out[0].split(), out[1].split()
    return int(values[names.index("TCPLossProbes")])


def test_an_unanswered_tail_loss_probe_starts_the_probing(linked):
    """A burst on Iridium leaves TCP with a widely varying round trip, so
    its retransmission timeout is far beyond its tail loss probe (two
    smoothed round trips).  A message written into an outage then goes
    again as that probe; with no answer for two round trips the path is
    taken for dead and a fresh connection probes, without waiting for
    the timeout (session 14: 7.4 s after the message, the timeout 8.2 s
    later; delivered 1.4 s sooner after a 20 s outage)."""
    ln = linked(["--profile", "iridium"], keepalive="60s")
    ln.start()
    ln.wait_up(timeout=60)
    alice, bob = ln.alice(), ln.bob()
    for i in range(8):
        alice.send(message("bob@b.example", "burst %d" % i, "b%d" % i))
    assert bob.collect("burst", 8, timeout=90) == list(range(8))
    time.sleep(2)
    probes = loss_probes(ln.emu.ns_a)
    assert ln.emu.ctl("down") == "ok"
    t0 = time.monotonic()
    alice.send(message("bob@b.example", "into the outage", "d0"))
    wait_log(ln.a, "probing with a new connection", timeout=60)
    took = time.monotonic() - t0
    log = ln.a.log_text()
    print("probing %.1f s after the message; %s" % (took, [
        x for x in log.splitlines() if "tail loss probe" in x]))
    if loss_probes(ln.emu.ns_a) == probes:
        pytest.skip("TCP sent no tail loss probe: its timeout came first")
    m = re.search(r"TCP's tail loss probe is unanswered, before its "
                  r"retransmission timeout \((\d+) ms\)", log)
    assert m, log
    assert m.start() < log.index("probing with a new connection")
    # sooner than the timeout would have made it (plus the 1 s tick)
    assert took < int(m.group(1)) / 1000, (took, m.group(1))
    assert ln.emu.ctl("up") == "ok"
    bob.wait(r"<body>into the outage</body>", 60)


def test_outage_in_the_middle_of_a_burst(linked):
    ln = linked(["--profile", "satcom-64k"]).start()
    ln.wait_up()
    alice, bob = ln.alice(), ln.bob()
    ups = count_log(ln.a, "link b: up")

    t0 = time.monotonic()
    for i in range(200):
        if i == 50:
            assert ln.emu.ctl("down") == "ok"
            down_at = time.monotonic()
        alice.send(message("bob@b.example", "burst %d" % i, "m%d" % i))
        time.sleep(0.01)
    early = bob.collect("burst", 200, timeout=0,
                        linger=max(0.1, 10 - (time.monotonic() - down_at)))
    assert ln.emu.ctl("up") == "ok"
    up_at = time.monotonic()
    got = bob.collect("burst", 200, timeout=60)
    done = bob.complete_at
    st = ln.emu.stats()
    print("outage: %d of 200 before the link came back, %d in %.1f s "
          "after it; total %.1f s; dropped by the outage a->b %d, b->a %d"
          % (len(early), len(got), done - up_at, done - t0,
             st["a_to_b"]["dropped_outage"], st["b_to_a"]["dropped_outage"]))
    assert got == list(range(200)), \
        "missing %s, duplicated %s" % (
            sorted(set(range(200)) - set(got)),
            sorted({n for n in got if got.count(n) > 1}))
    assert st["outages"] == 1
    assert st["a_to_b"]["dropped_outage"] + st["b_to_a"]["dropped_outage"] \
        > 0, st
    # The link layer noticed the dead connection and made a new one.
    assert count_log(ln.a, "link b: up") > ups, ln.a.log_text()


def tcp_ext(ns, name):
    """A TcpExt counter of /proc/net/netstat inside namespace NS."""
    out = subprocess.run(["ip", "netns", "exec", ns, "cat",
                          "/proc/net/netstat"], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    for head, vals in zip(out[::2], out[1::2]):
        if head.startswith("TcpExt:"):
            return int(dict(zip(head.split()[1:],
                                vals.split()[1:]))[name])
    raise AssertionError("no TcpExt in /proc/net/netstat")


def accept_fast_open(ln):
    """net.ipv4.tcp_fastopen = 3 in both namespaces: their kernels
    accept data in a SYN (Linux's default, 1, only sends it)."""
    for ns in (ln.emu.ns_a, ln.emu.ns_b):
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                        "net.ipv4.tcp_fastopen=3"], check=True)


def test_tcp_fast_open_carries_the_queue_in_the_syn(linked):
    """link_tcp_fastopen at both ends (and net.ipv4.tcp_fastopen = 3 in
    both namespaces): the first connection gets A a cookie; after B
    restarts, A's new connection carries the hello and the message queued
    meanwhile in its SYN, and B's kernel accepts it (TCPFastOpenPassive),
    one round trip before the handshake completes."""
    ln = linked(["--profile", "satcom-64k"],
                top="link_tcp_fastopen = true\n")
    accept_fast_open(ln)
    ln.start()
    ln.wait_up()
    alice, bob = ln.alice(), ln.bob()
    alice.send(message("bob@b.example", "tfo 1"))
    bob.wait(r"<body>tfo 1</body>", 20)
    assert "accepts no Fast Open" not in ln.b.log_text()
    before = tcp_ext(ln.emu.ns_b, "TCPFastOpenPassive")

    bob.close()
    ln.clients.remove(bob)
    assert ln.b.stop() == 0
    alice.send(message("bob@b.example", "tfo 2"))
    wait_log(ln.a, "link b: connection closed")
    start_server(ln.b)
    bob = ln.bob()
    bob.wait(r"<body>tfo 2</body>", 30)
    after = tcp_ext(ln.emu.ns_b, "TCPFastOpenPassive")
    # A's kernel counts its Fast Open once the SYN-ACK acknowledging the
    # data is back: a one-way delay after B had the message
    deadline = time.monotonic() + 10
    while (tcp_ext(ln.emu.ns_a, "TCPFastOpenActive") < 1
           and time.monotonic() < deadline):
        time.sleep(0.1)
    active = tcp_ext(ln.emu.ns_a, "TCPFastOpenActive")
    print("Fast Open: B accepted %d connections with data in the SYN, "
          "A sent %d" % (after - before, active))
    assert after > before, (before, after)
    assert active >= 1


def test_probes_shorter_than_the_round_trip_still_connect(linked):
    """peer_probe_interval below the path's round trip (200 ms on
    satcom-64k, about 0.6 s), with Fast Open: A restarts while the link
    is down with a message queued.  Its Fast Open connection is attached
    before any answer; the attempts that follow every 200 ms are ordinary
    ones, attached only when they complete, so none closes another before
    its SYN-ACK came (replacing the unanswered connection each time did),
    and the message arrives once the link is back."""
    ln = linked(["--profile", "satcom-64k"],
                top="link_tcp_fastopen = true\n",
                more=('    peer_probe_interval = "200ms",\n', ""))
    accept_fast_open(ln)
    ln.start()
    ln.wait_up()
    alice, bob = ln.alice(), ln.bob()
    alice.send(message("bob@b.example", "probe 1"))
    bob.wait(r"<body>probe 1</body>", 20)
    # the answer brings A its ack (a round trip measured) and a cookie
    bob.send(message("alice@a.example", "ack 1"))
    alice.wait(r"<body>ack 1</body>", 20)
    wait_log(ln.a, "link b: up (", 20)

    assert ln.emu.ctl("down") == "ok"
    alice.send(message("bob@b.example", "probe 2"))
    time.sleep(1)
    alice.close()
    ln.clients.remove(alice)
    assert ln.a.stop() == 0
    start_server(ln.a)
    wait_log(ln.a, "path round trip")            # kept across the restart
    before = count_log(ln.a, "no answer yet")
    time.sleep(4)
    tries = count_log(ln.a, "no answer yet") - before
    assert ln.emu.ctl("up") == "ok"
    bob.wait(r"<body>probe 2</body>", 30)
    print("attempts unanswered in 4 s of outage: %d" % tries)
    assert tries >= 8, tries                     # every 200 ms, not 2 s
    time.sleep(1)
    bob.wait(r"<body>probe 2</body>", 1)
    for body in ("probe 1", "probe 2"):          # once each
        assert bob.text().count("<body>%s</body>" % body) == 1, bob.text()


def test_short_probe_interval_on_a_long_path_at_a_cold_start(linked):
    """peer_probe_interval = 300 ms on Iridium (about 3 s round trip) with
    no round trip known yet and only A opening: the interval waits for a
    measured round trip (attempts every 300 ms with TCP's own SYN retries
    filled the 2400 bit/s link with SYNs and none completed), and the
    link comes up."""
    ln = linked(["--profile", "iridium", "--loss", "0"], keepalive="20s",
                more=('    peer_probe_interval = "300ms",\n',
                      '    peer_initiate = "them",\n'))
    ln.start()
    ln.wait_up(timeout=60)
    alice, bob = ln.alice(), ln.bob()
    alice.send(message("bob@b.example", "long path"))
    bob.wait(r"<body>long path</body>", 60)


def test_hf_half_duplex_link_is_left_to_work(linked):
    """hf-ip without its loss: 1200 bit/s, half duplex, 3 s turnarounds.
    Acks take longer than peer_ack_timeout while the link works; the link
    layer must not take that for an outage (TCP has not timed out), or
    its probes take the channel from the traffic (each SYN costs two
    turnarounds).  Ten messages arrive in order, with no probe."""
    ln = linked(["--profile", "hf-ip", "--loss", "0"], keepalive="120s")
    ln.start()
    ln.wait_up(timeout=90)
    alice, bob = ln.alice(), ln.bob()
    t0 = time.monotonic()
    for i in range(10):
        alice.send(message("bob@b.example", "hf %d" % i))
    got = bob.collect("hf", 10, timeout=120, linger=0.5)
    print("hf-ip: 10 messages in %.1f s" % (bob.complete_at - t0))
    assert got == list(range(10)), got
    # the acks for them, then a quiet moment in which a probe would start
    time.sleep(12)
    for s in (ln.a, ln.b):
        assert count_log(s, "probing with a new connection") == 0, \
            s.log_text()


def test_tls_session_resumed_after_an_outage(linked, tmp_path):
    """Pinned TLS on the link, opened by A (B only accepts).  After an
    outage A's probe connection resumes the TLS 1.3 session with the
    ticket B gave it (no certificates cross the link again) and sends the
    hello and the message queued during the outage as early data (0-RTT)
    in its first flight."""
    ca, ka, fa = make_cert(tmp_path, "a.example")
    cb, kb, fb = make_cert(tmp_path, "b.example")
    ln = linked(["--profile", "satcom-64k"],
                more=(tls_options(ca, ka, pin=fb),
                      tls_options(cb, kb, pin=fa)
                      + '    peer_initiate = "them",\n'))
    ln.start()
    ln.wait_up()
    alice, bob = ln.alice(), ln.bob()
    alice.send(message("bob@b.example", "tls 1"))
    bob.wait(r"<body>tls 1</body>", 20)
    assert ", resumed" not in ln.a.log_text()
    time.sleep(1)               # the ticket follows the handshake

    assert ln.emu.ctl("down") == "ok"
    alice.send(message("bob@b.example", "tls 2"))
    wait_log(ln.a, "probing with a new connection", timeout=30)
    before = ln.emu.stats()
    assert ln.emu.ctl("up") == "ok"
    bob.wait(r"<body>tls 2</body>", 30)
    wait_log(ln.a, "link b: up", count=2)
    after = ln.emu.stats()
    print("TLS resumption: %d bytes b->a after the outage" %
          (after["b_to_a"]["bytes"] - before["b_to_a"]["bytes"]))
    ups = [ln_ for ln_ in ln.a.log_text().splitlines() if "link b: up" in ln_]
    assert ", resumed, 0-RTT, peer verified" in ups[-1], ups
    assert ", resumed" not in ups[0], ups
    # B took the hello and the queue as early data, before A's Finished
    wait_log(ln.b, ", resumed, 0-RTT, peer verified")


def test_a_replaced_connection_is_reset_not_retransmitted(linked):
    """A's connection carries a message into an outage and A's probe
    replaces it once the link is back.  The old connection is closed with
    a reset (SO_LINGER 0), not an orderly close: its kernel would go on
    retransmitting what it held, then a FIN, into the link, though the
    message goes again on the new connection (on hf-ip the old
    connection to a restarted peer put a 273-byte retransmission into the
    returning half-duplex channel)."""
    ln = linked(["--profile", "satcom-64k"], keepalive="20s")
    sniff = Sniffer(ln.emu.ns_a, "lemu0", ADDR_A)
    sniff.start()
    try:
        ln.start()
        ln.wait_up()
        alice, bob = ln.alice(), ln.bob()
        alice.send(message("bob@b.example", "before", "r0"))
        bob.wait(r"<body>before</body>", 20)
        time.sleep(1)
        assert ln.emu.ctl("down") == "ok"
        alice.send(message("bob@b.example", "during", "r1"))
        wait_log(ln.a, "probing with a new connection", timeout=30)
        assert ln.emu.ctl("up") == "ok"
        bob.wait(r"<body>during</body>", 30)
        wait_log(ln.a, "link b: switching to the new connection", 30)
        time.sleep(3)
    finally:
        sniff.stop()
    # the link connection that carried "before", by its ports
    old = next((sp, dp) for _, from_a, _, n, _, sp, dp in sniff.packets
               if from_a and n > 0 and LINK_PORT in (sp, dp))
    flags = [fl for _, from_a, _, _, fl, sp, dp in sniff.packets
             if from_a and (sp, dp) == old]
    print("A's packets on its old connection, flags: %r" % flags)
    assert any(fl & 0x04 for fl in flags), flags        # RST
    assert not any(fl & 0x01 for fl in flags), flags    # no FIN


def test_dictionary_mismatch_is_detected(linked, tmp_path):
    da, db = tmp_path / "dict-a", tmp_path / "dict-b"
    da.write_bytes((b"<message from='' to='' type='chat' id=''><body>"
                    b"</body></message><presence/>" * 8)[:400])
    db.write_bytes(bytes(range(256)) + b"something else entirely " * 6)
    ln = linked(["--profile", "satcom-64k"], dicts=(str(da), str(db)))
    ln.start()
    bob = ln.bob()
    alice = ln.alice()
    alice.send(message("bob@b.example", "dict 1"))
    wait_log(ln.b, "dictionary mismatch", timeout=20)
    wait_log(ln.a, "dictionary mismatch", timeout=20)
    # A few reconnection rounds: nothing may come through, garbled or not.
    time.sleep(5)
    bob._read(0.5)
    assert "<message" not in bob.text(), bob.text()
    for s in (ln.a, ln.b):
        log = s.log_text()
        assert "refused a stanza" not in log and "malformed" not in log
        assert "stream error" not in log, log

    # The same dictionary at both ends: the queued message goes through.
    assert ln.b.stop() == 0
    db.write_bytes(da.read_bytes())
    start_server(ln.b)
    bob = ln.bob()
    m = bob.wait(r"<message[^>]*>.*?<body>dict 1</body>", 30)
    assert "from='alice@a.example/home'" in m.group(0)


def test_kill_9_of_the_sender_with_the_link_down(linked):
    """Alice sends 100 messages; after 30 the link goes down; her server
    acknowledges all 100 (XEP-0198) and is killed with SIGKILL while some
    are in flight, some delivered but not acknowledged by B, the rest only
    in A's durable queue.  A restarts, the link returns: Bob gets every
    message once, in order."""
    ln = linked(["--profile", "satcom-64k"]).start()
    ln.wait_up()
    alice, bob = ln.alice(sm=True), ln.bob()
    for i in range(100):
        if i == 30:
            # Down once the first have reached Bob: the rest of the 30 are
            # on the air, or delivered with B's acknowledgement lost.
            bob.collect("kill", 10, timeout=10, linger=0)
            assert ln.emu.ctl("down") == "ok"
        alice.send(message("bob@b.example", "kill %d" % i, "k%d" % i))
        time.sleep(0.005)
    alice.send("<r xmlns='urn:xmpp:sm:3'/>")
    alice.wait(r"<a [^>]*h='100'[^>]*/>", 15)
    time.sleep(0.3)                 # the batch commits within a loop turn
    before = len(bob.collect("kill", 100, timeout=0, linger=0.2))
    ln.a.proc.send_signal(signal.SIGKILL)
    ln.a.proc.wait(timeout=10)
    alice.close()
    ln.clients.remove(alice)

    start_server(ln.a)
    m = re.findall(r"link b: (\d+) stanzas queued from before",
                   ln.a.log_text())
    assert len(m) == 2, m
    queued = int(m[-1])
    time.sleep(1)
    t0 = time.monotonic()
    assert ln.emu.ctl("up") == "ok"
    got = bob.collect("kill", 100, timeout=60)
    print("kill -9: bob had %d before the kill, A restarted with %d queued; "
          "all %d %.1f s after the link came back"
          % (before, queued, len(got), bob.complete_at - t0))
    assert got == list(range(100)), \
        "missing %s, duplicated %s" % (
            sorted(set(range(100)) - set(got)),
            sorted({n for n in got if got.count(n) > 1}))
    assert queued >= 100 - before, (queued, before)
    # B dropped exactly what it had delivered before and got again.
    assert ln.b.stop() == 0
    st = links_json(ln.b)
    assert st["stanzas_in"] == 100, st
    assert st["duplicates_in"] >= queued - (100 - before), (st, queued,
                                                            before)


def test_cold_start_with_the_link_down(linked):
    """Both servers start while the link is down and bob's messages wait
    on B (whose connections lose a simultaneous open): when the link
    comes up both ends may connect at once, and the connection that loses
    is read to its end.  Every message arrives once, in order, and one
    connection is left."""
    ln = linked(["--profile", "satcom-64k"])
    assert ln.emu.ctl("down") == "ok"
    ln.start()
    alice, bob = ln.alice(), ln.bob()
    for i in range(20):
        bob.send(message("alice@a.example", "cold %d" % i, "c%d" % i))
    time.sleep(4)
    assert ln.emu.ctl("up") == "ok"
    got = alice.collect("cold", 20, timeout=30)
    assert got == list(range(20)), got
    ln.wait_up()
    time.sleep(6)           # past the drain of a simultaneous open
    for s, peer in ((ln.a, "b"), (ln.b, "a")):
        ups = count_log(s, "link %s: up" % peer)
        closed = count_log(s, "link %s: connection closed" % peer) \
            + count_log(s, "link %s: switching to the new connection" % peer)
        assert ups - closed == 1, s.log_text()
    assert ln.a.stop() == 0
    st = links_json(ln.a)
    assert st["stanzas_in"] == 20, st


def test_a_cold_start_with_both_ends_waiting_sends_each_once(linked):
    """As above, with messages waiting at both ends: both open when the
    link comes up, and B's connection loses.  What B wrote on it is read
    from it, and B waits for A's ack (which A sends at once) instead of
    writing it again on the kept connection: A gets no duplicates."""
    ln = linked(["--profile", "satcom-64k"])
    assert ln.emu.ctl("down") == "ok"
    ln.start()
    alice, bob = ln.alice(), ln.bob()
    for i in range(10):
        bob.send(message("alice@a.example", "cold %d" % i, "c%d" % i))
        alice.send(message("bob@b.example", "warm %d" % i, "w%d" % i))
    time.sleep(4)
    assert ln.emu.ctl("up") == "ok"
    assert alice.collect("cold", 10, timeout=30) == list(range(10))
    assert bob.collect("warm", 10, timeout=30) == list(range(10))
    ln.wait_up()
    time.sleep(6)           # past the drain
    log = ln.b.log_text()
    assert ln.a.stop() == 0
    assert ln.b.stop() == 0
    if "(simultaneous open), reading the old one" not in log:
        pytest.skip("the opens did not cross this time")
    a, b = links_json(ln.a), links_json(ln.b)
    print("link bytes a->b %d, b->a %d; duplicates at A %d"
          % (a["wire_out"], b["wire_out"], a["duplicates_in"]))
    assert a["stanzas_in"] == 10 and b["stanzas_in"] == 10, (a, b)
    assert a["duplicates_in"] == 0, a
    assert b["stanzas_out"] == 10, b


def only_b_opens(ln, alice, bob, wait):
    """bob's message waits on B, the link down; after wait s it comes up:
    the message arrives, and only B opened a link connection (SYNs on
    the link port after link-up)."""
    bob.send(message("alice@a.example", "waiting", "w0"))
    time.sleep(wait)
    sniff = Sniffer(ln.emu.ns_a, "lemu0", ADDR_A)
    sniff.start()
    try:
        assert ln.emu.ctl("up") == "ok"
        alice.wait(r"<body>waiting</body>", 30)
        ln.wait_up()
        time.sleep(2)
    finally:
        sniff.stop()
    syns = [(from_a, sport, dport) for _, from_a, _, _, fl, sport, dport
            in sniff.packets if fl & 0x12 == 0x02]
    print("SYNs after link-up: %r" % syns)
    assert any(not a and d == LINK_PORT for a, _, d in syns), syns
    assert not any(a and d == LINK_PORT for a, _, d in syns), syns
    return sniff.packets


def test_only_the_end_with_stanzas_waiting_opens_at_a_cold_start(linked):
    """Both servers start with the link down (the hosts see it: carrier)
    and only B has stanzas waiting.  When it comes up, A, idle, gives B's
    connection a head start instead of opening its own as well: on a
    half-duplex channel two opens queue behind each other (vhf: 2.2 s
    to the first delivery with both, 1.35 s with one).  A 1 s head start
    was 0.1 s short here (A's SYN left before B's handshake reached A)."""
    ln = linked(["--profile", "vhf", "--carrier"], keepalive="20s")
    assert ln.emu.ctl("down") == "ok"
    ln.start()
    alice, bob = ln.alice(), ln.bob()
    only_b_opens(ln, alice, bob, 3)


def test_the_handshake_ack_rides_with_the_first_bytes(linked):
    """The connecting end's last handshake packet carries its first
    bytes (the hello with the stanza waiting): a lone ACK just before
    them cost 52 bytes, 0.35 s of hf-ip's 1200 bit/s channel in every
    ordinary handshake (cold start 10.8 s against a floor of 8.7 s)."""
    ln = linked(["--profile", "vhf", "--carrier"], keepalive="20s")
    assert ln.emu.ctl("down") == "ok"
    ln.start()
    alice, bob = ln.alice(), ln.bob()
    packets = only_b_opens(ln, alice, bob, 3)
    from_b = [(payload, fl) for _, from_a, _, payload, fl, _, dport
              in packets if not from_a and dport == LINK_PORT]
    print("B's packets to the link port: %r" % from_b[:4])
    assert from_b[0][1] & 0x12 == 0x02, from_b       # its SYN
    after = [p for p in from_b if not p[1] & 0x02]
    assert after and after[0][0] > 0, from_b         # not a bare ACK


def syn_sent_rto(ns):
    """The retransmission timeouts (ms) of the namespace's connections
    to the link port still in SYN-SENT (ss -ti)."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-tinH",
                          "state", "syn-sent", "( dport = :%d )" % LINK_PORT],
                         capture_output=True, text=True, check=True).stdout
    return [float(x) for x in re.findall(r"\brto:([0-9.]+)", out)]


def seed_rtt(server, peer, seconds):
    """Starts and stops server (its database made), then stores a path
    round trip to peer as if measured."""
    start_server(server)
    assert server.stop() == 0
    swnet.seed_rtt(server, peer, seconds)


def start_with_timeouts(ln):
    """Starts both servers (in cgroups of their own) and waits until
    each says its handshake-timeout program is attached.  A host that
    does not permit BPF programs (an unprivileged container: EPERM) is
    a skip; any other refusal (the verifier's) fails."""
    ln.start()
    for srv in (ln.a, ln.b):
        deadline = time.monotonic() + 10
        while "link_tcp: handshake timeouts towards peers set by a BPF " \
              "program on cgroup" not in srv.log_text():
            if "(needs CAP_BPF and CAP_NET_ADMIN)" in srv.log_text():
                pytest.skip("this host permits no BPF programs")
            assert time.monotonic() < deadline, srv.log_text()
            time.sleep(0.05)


def test_a_configured_first_syn_timeout(linked):
    """Each server in a cgroup of its own, as systemd gives a service:
    link_tcp attaches a BPF program there that sets the first timeout of
    handshakes with a peer.  B's link_tcp_syn_timeout (5 s) is its SYN's.
    A's SYN keeps the kernel's 1 s whatever its path round trip (2 s
    stored): an attempt while the path may be down is a probe, and its
    retransmissions find the path back soonest."""
    ln = linked(["--profile", "vhf"], keepalive="20s", cgroups=True,
                more=("", '    link_tcp_syn_timeout = "5s",\n'))
    assert ln.emu.ctl("down") == "ok"
    seed_rtt(ln.a, "b", 2.0)
    start_with_timeouts(ln)
    alice, bob = ln.alice(), ln.bob()
    alice.send(message("bob@b.example", "to b", "t0"))
    bob.send(message("alice@a.example", "to a", "t1"))
    seen = {}
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        for side, ns in (("a", ln.emu.ns_a), ("b", ln.emu.ns_b)):
            rtos = syn_sent_rto(ns)
            if rtos:
                seen[side] = rtos
        time.sleep(0.1)
    print("SYN-SENT timeouts (ms): %r" % seen)
    assert set(seen.get("a", [])) == {1000}, seen
    assert set(seen.get("b", [])) == {5000}, seen


def test_a_slow_handshake_crosses_once(linked):
    """hf-ip with the host's signal, a cold start, each server in a
    cgroup of its own.  B's link_tcp_syn_timeout (10 s) is over the
    handshake's round trip (one 3 s turnaround, two 0.4 s packets); A's
    SYN-ACK timeout is automatic, three path round trips (4 s stored),
    over the 8 s its answer takes (two turnarounds and B's first
    bytes).  B's SYN and A's SYN-ACK cross once each.  With the kernel's
    1 s the SYN went four times and the SYN-ACK six, the late copies on
    the half-duplex channel before B's stanza (cold start 10.4 s against
    a floor of 8.7 s)."""
    ln = linked(["--profile", "hf-ip", "--carrier"], keepalive="60s",
                cgroups=True,
                more=(IDLE_FALLBACK[0], IDLE_FALLBACK[1]
                      + '    link_tcp_syn_timeout = "10s",\n'))
    assert ln.emu.ctl("down") == "ok"
    seed_rtt(ln.a, "b", 4.0)
    start_with_timeouts(ln)
    alice, bob = ln.alice(), ln.bob()
    t0 = time.monotonic()
    packets = only_b_opens(ln, alice, bob, 3)
    syns = [p for p in packets if not p[1] and p[6] == LINK_PORT
            and p[4] & 0x12 == 0x02]
    synacks = [p for p in packets if p[1] and p[5] == LINK_PORT
               and p[4] & 0x12 == 0x12]
    print("after link-up: %d SYNs from B, %d SYN-ACKs from A, %.1f s in "
          "all" % (len(syns), len(synacks), time.monotonic() - t0))
    assert len(syns) == 1 and len(synacks) == 1, packets


def test_an_idle_end_does_not_open_beside_a_half_open_connection(linked):
    """As above on hf-ip (1200 bit/s, 3 s turnarounds): B's handshake
    takes about 7 s, longer than A's head start (2 s, no round trip
    known yet), so when that ends B's connection is half open at A (its
    SYN came, A's SYN-ACK went).  A sees it (sock_diag) and leaves the
    opening to B.  Opening its own, A put a SYN a second on the
    half-duplex channel for 8 s while B's ACK and stanza waited (cold
    start 12.8 s against a floor of 8.7 s)."""
    ln = linked(["--profile", "hf-ip", "--carrier"], keepalive="60s",
                more=IDLE_FALLBACK)
    assert ln.emu.ctl("down") == "ok"
    ln.start()
    alice, bob = ln.alice(), ln.bob()
    only_b_opens(ln, alice, bob, 3)
    assert count_log(ln.a, "link b: the peer's connection to us is half "
                     "open, and nothing to send: leaving it to the peer "
                     "to open") == 1, ln.a.log_text()


# the fallback of an idle end that left opening to the peer: the
# default (the Setup's 2 s would come before the link does)
IDLE_FALLBACK = ('    peer_reconnect_max = "30s",\n',) * 2


def test_an_idle_end_leaves_a_dead_path_to_the_peer(linked):
    """The same cold start with nothing the hosts can see (no carrier),
    the link down long enough for A's attempt to go unanswered: A, idle,
    closes it and starts no other ("leaving it to the peer to open").
    Kept, its SYNs and the kernel's retransmissions of them would reach
    the link when it returns, in the way of B's connection (on hf-ip
    both ends' filled the channel for 20 s of a cold start)."""
    ln = linked(["--profile", "vhf"], keepalive="20s",
                top='link_tcp_connect_timeout = "2s"\n', more=IDLE_FALLBACK)
    assert ln.emu.ctl("down") == "ok"
    ln.start()
    alice, bob = ln.alice(), ln.bob()
    only_b_opens(ln, alice, bob, 8)     # past A's head start and attempt
    assert count_log(ln.a, "link b: no answer, and nothing to send: "
                     "leaving it to the peer to open") == 1, ln.a.log_text()


def test_an_idle_end_that_left_it_to_the_peer_opens_for_a_stanza(linked):
    """Both ends idle while the link is down: both leave opening to the
    other (their fallback is 30 s away).  A stanza queued on A then opens
    at once, and it is delivered as soon as the link is back, not at
    the fallback."""
    ln = linked(["--profile", "vhf"], keepalive="20s",
                top='link_tcp_connect_timeout = "2s"\n', more=IDLE_FALLBACK)
    assert ln.emu.ctl("down") == "ok"
    ln.start()
    alice, bob = ln.alice(), ln.bob()
    for s, peer in ((ln.a, "b"), (ln.b, "a")):
        wait_log(s, "link %s: no answer, and nothing to send: leaving it "
                 "to the peer to open" % peer, 20)
    t0 = time.monotonic()
    alice.send(message("bob@b.example", "now", "n0"))
    wait_log(ln.a, "link b: no answer yet", 10)
    assert ln.emu.ctl("up") == "ok"
    bob.wait(r"<body>now</body>", 30)
    took = time.monotonic() - t0
    print("queued while both ends left it to the other: delivered after "
          "%.1f s" % took)
    # the fallback opens 24-36 s after the idle attempt went unanswered
    assert took < 20, took


def test_an_idle_end_whose_peer_opens_leaves_it_longer(linked):
    """The fallback of an idle end that left opening to the peer is for a
    peer that never opens: once the peer has opened a connection to us,
    it comes ten times later.  Both ends idle: A's connection wins a
    simultaneous open, so A opens after its head start and B does not;
    after an outage that ends the connection, B's fallback is 240-360 s
    away, A's 24-36 s."""
    ln = linked(["--profile", "vhf"],
                top='link_tcp_connect_timeout = "2s"\n', more=IDLE_FALLBACK)
    ln.start()
    ln.wait_up()
    assert count_log(ln.b, "we opened)") == 0, ln.b.log_text()
    assert ln.emu.ctl("down") == "ok"
    left = "no answer, and nothing to send: leaving it to the peer to " \
        "open (we try again in "
    wait_log(ln.a, "link b: " + left, 30)
    wait_log(ln.b, "link a: " + left, 30)

    def fallback(s, peer):
        text = s.log_text()
        at = text.index("link %s: %s" % (peer, left))
        return int(text[at:].split("we try again in ")[1].split(" s")[0])
    print("fallbacks: A %d s, B %d s" % (fallback(ln.a, "b"),
                                         fallback(ln.b, "a")))
    assert 24 <= fallback(ln.a, "b") <= 36, ln.a.log_text()
    assert 240 <= fallback(ln.b, "a") <= 360, ln.b.log_text()


def test_interface_coming_up_connects_at_once(linked):
    """With --carrier the emulator takes the TUN devices' carrier down
    for an outage, as a modem or radio that reports its link would: when
    it comes back, mod_link_tcp hears it from netlink and the link probes
    at once instead of waiting for its next attempt."""
    ln = linked(["--profile", "satcom-64k", "--carrier"]).start()
    ln.wait_up()
    alice, bob = ln.alice(), ln.bob()
    alice.send(message("bob@b.example", "before", "b0"))
    bob.wait(r"<body>before</body>", 20)
    assert ln.emu.ctl("down") == "ok"
    time.sleep(1)
    alice.send(message("bob@b.example", "during", "d0"))
    time.sleep(4)
    n = count_log(ln.a, "the path may be back")
    assert ln.emu.ctl("up") == "ok"
    bob.wait(r"<body>during</body>", 30)
    wait_log(ln.a, "link_tcp: an interface or a route came up")
    wait_log(ln.a, "the path may be back", count=n + 1)


def test_interface_coming_up_replaces_the_attempts_made_while_down(linked):
    """Attempts made while the link was down are closed when the host
    sees it come back, and one fresh attempt replaces them: the kernel
    would go on retransmitting each one's SYN into the returning link
    (on hf-ip they held it for a minute)."""
    ln = linked(["--profile", "iridium", "--carrier"], keepalive="20s")
    assert ln.emu.ctl("down") == "ok"
    ln.start()
    # one attempt every link_tcp_connect_timeout (10 s) while down
    time.sleep(23)
    sniff = Sniffer(ln.emu.ns_a, "lemu0", ADDR_A)
    sniff.start()
    try:
        assert ln.emu.ctl("up") == "ok"
        ln.wait_up(timeout=60)
        time.sleep(2)
    finally:
        sniff.stop()
    syns = {(sport, dport) for _, from_a, _, _, fl, sport, dport
            in sniff.packets if from_a and fl & 0x12 == 0x02}
    print("SYNs from A after link-up: %r" % sorted(syns))
    ours = [p for p in syns if p[1] == LINK_PORT]
    assert len(ours) == 1, syns


def test_sigterm_while_the_peer_is_unreachable(linked):
    """Connects in flight over a dead link are cancelled at shutdown: the
    server does not wait for the kernel's SYN retries (about 2 min)."""
    ln = linked(["--profile", "satcom-64k"]).start()
    ln.wait_up()
    assert ln.emu.ctl("down") == "ok"
    # Three keepalives (2 s) without a byte: both drop the connection and
    # start reconnecting; those connects cannot complete while down.
    wait_log(ln.a, "link b: connection closed", timeout=15)
    wait_log(ln.b, "link a: connection closed", timeout=15)
    time.sleep(1)
    for s in (ln.a, ln.b):
        s.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    rcs = {}
    for name, s in (("A", ln.a), ("B", ln.b)):
        try:
            rcs[name] = s.proc.wait(timeout=max(0.1, 10 - (time.monotonic()
                                                           - t0)))
        except subprocess.TimeoutExpired:
            rcs[name] = "still running after 10 s"
            s.proc.kill()
            s.proc.wait()
            s.proc = None           # reaped here: not the fixture's business
    print("SIGTERM with the peer unreachable: %r" % rcs)
    assert rcs == {"A": 0, "B": 0}, rcs


def test_sigterm_while_connecting(linked):
    """A connect that completes after SIGTERM does not bring the link up
    (and keep the server waiting for the peer to close it)."""
    # 2 s each way: A's connect takes 4 s.  B only listens, so the only
    # connection is A's.
    ln = linked(["--delay", "2s"], more=("", '    peer_initiate = "them",\n'))
    ln.start()
    time.sleep(1)                   # A's SYN is on its way
    assert count_log(ln.a, "link b: up") == 0
    ln.a.proc.send_signal(signal.SIGTERM)
    try:
        rc = ln.a.proc.wait(timeout=6)
    except subprocess.TimeoutExpired:
        rc = "still running 6 s after SIGTERM"
        ln.a.proc.kill()
        ln.a.proc.wait()
        ln.a.proc = None
    log = ln.a.log_text()
    late = log[log.index("SIGTERM: shutting down"):]
    print("SIGTERM while connecting: %r; after it: %r"
          % (rc, re.findall(r"link b: [^\n]*", late)))
    assert "link b: up" not in late, late
    assert rc == 0, rc


def in_ns_thread(ns, coro_factory):
    """Runs coro_factory() on its own asyncio loop in a thread that moved
    itself into network namespace ns (setns is per thread), so each
    slixmpp client reaches its own server's 127.0.0.1."""
    import threading
    from test_im import run_async
    out = {}

    def target():
        enter_netns(ns)
        try:
            out["value"] = run_async(coro_factory())
        except BaseException as e:      # reported by the caller
            out["error"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, out


def test_iridium_with_slixmpp_clients(linked):
    """slixmpp clients at each end of an Iridium link: a subscription
    handshake, each other's presence, and a chat message."""
    from test_im import Client
    ln = linked(["--profile", "iridium"], keepalive="20s").start()
    ln.wait_up(timeout=60)

    async def bob_side():
        bob = await Client(ln.b, "bob@b.example/ship").login()
        await bob.expect_presence("subscribe", "alice@a.example", 60)
        bob.c.send_presence(pto="alice@a.example", ptype="subscribed")
        bob.c.send_presence(pto="alice@a.example", ptype="subscribe")
        await bob.expect_presence("subscribed", "alice@a.example", 60)
        m = await bob.expect(lambda s: s.name == "message"
                             and s["body"] == "over iridium", "message", 60)
        await bob.close()
        return str(m["from"])

    async def alice_side():
        alice = await Client(ln.a, "alice@a.example/home").login()
        await asyncio.sleep(1)          # bob is logging in too
        alice.c.send_presence(pto="bob@b.example", ptype="subscribe")
        await alice.expect_presence("subscribed", "bob@b.example", 60)
        await alice.expect_presence("available", "bob@b.example/ship", 60)
        await alice.expect_presence("subscribe", "bob@b.example", 60)
        alice.c.send_presence(pto="bob@b.example", ptype="subscribed")
        alice.c.send_message(mto="bob@b.example", mbody="over iridium",
                             mtype="chat")
        await asyncio.sleep(8)          # let it cross before logging out
        await alice.close()

    tb, rb = in_ns_thread(ln.emu.ns_b, bob_side)
    ta, ra = in_ns_thread(ln.emu.ns_a, alice_side)
    ta.join(180)
    tb.join(180)
    assert not ta.is_alive() and not tb.is_alive(), "clients hung"
    for r in (ra, rb):
        if "error" in r:
            raise r["error"]
    assert rb["value"] == "alice@a.example/home"
