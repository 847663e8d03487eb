"""Link sequence numbers that a hostile or confused peer sends, and a
database that goes back (restored from a backup, recreated): nothing is
dropped as a false duplicate, nothing is deleted from the queue by an
acknowledgement of what was never sent, and the damage never outlives
the connection that brought it."""
import re
import shutil
import socket
import time
import zlib

import pytest

from test_c2s import Raw
from swnet import seed_rtt, stored_rtt
from test_peer_link import (Pair, add_peer_options, pair,  # noqa: F401
                            wait_log)

NS = "urn:skywave:link:0"


class RawPeer:
    """Plays server b.example towards a on a plain DEFLATE link."""

    def __init__(self, p):
        self.s = socket.create_connection(("127.0.0.1", p.a_link_port),
                                          timeout=5)
        self.z = zlib.compressobj(9)

    def send(self, xml):
        self.s.sendall(self.z.compress(xml.encode())
                       + self.z.flush(zlib.Z_SYNC_FLUSH))

    def closed(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.s.settimeout(max(0.1, deadline - time.time()))
            try:
                if not self.s.recv(65536):
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return False

    def close(self):
        self.s.close()


def msg(i, to="alice@a.example"):
    return ("<message from='bob@b.example/ship' to='%s' type='chat' "
            "id='n%d'><body>raw %d</body></message>" % (to, i, i))


def takeover(p):
    """Stops b so that a raw socket can play it."""
    wait_log(p.a, "link b: up")
    assert p.b.stop() == 0
    wait_log(p.a, "link b: connection closed")


def alice_reads(p, n, timeout=15):
    """Logs alice in; returns the bodies of her first n 'raw' messages
    (offline ones included) and any more that come within a second."""
    alice = Raw(p.a.port, "a.example")
    alice.login("alice", "pw-alice", "home")
    alice.send("<presence/>")
    bodies = []
    deadline = time.time() + timeout
    while len(bodies) < n and time.time() < deadline:
        try:
            text = alice.read_until(r"<body>raw \d+</body>", timeout=1)
        except AssertionError:
            continue
        bodies.append(text[text.rindex("<body>") + 6:-7])
    try:
        while True:
            text = alice.read_until(r"<body>raw \d+</body>", timeout=1)
            bodies.append(text[text.rindex("<body>") + 6:-7])
    except AssertionError:
        pass
    return bodies


@pytest.mark.parametrize("bad", ["18446744073709551615", "-1", "+3", " 1",
                                 "4611686018427387905", "0", "x"])
def test_hostile_seq_in_hello_is_a_protocol_error(pair, bad):
    takeover(pair)
    peer = RawPeer(pair)
    peer.send("<link xmlns='%s' seq='%s' ack='0'/>%s" % (NS, bad, msg(1)))
    assert peer.closed(), "the connection stayed open"
    wait_log(pair.a, "protocol error: malformed <link/>")
    peer.close()
    # nothing of it stays: an honest hello is taken at its word
    peer = RawPeer(pair)
    peer.send("<link xmlns='%s' seq='1' next='3' ack='0'/>%s%s"
              % (NS, msg(1), msg(2)))
    assert alice_reads(pair, 2) == ["raw 1", "raw 2"]
    peer.close()


@pytest.mark.parametrize("ack", ["<link xmlns='%s' seq='1' ack='-1'/>",
                                 "<link xmlns='%s' seq='1' "
                                 "ack='18446744073709551615'/>",
                                 "<link xmlns='%s' seq='1' ack='0'/>"
                                 "<a xmlns='%s' h='99999999999999999'/>",
                                 "<link xmlns='%s' seq='1' ack='0'/>"
                                 "<a xmlns='%s' h='-1'/>"])
def test_acks_beyond_what_was_sent_keep_the_queue(pair, ack):
    """alice's message waits in a's queue for b; a peer acknowledging
    what a never sent gets the connection closed and the message stays,
    to reach bob when the real b comes back."""
    takeover(pair)
    alice = Raw(pair.a.port, "a.example")
    alice.login("alice", "pw-alice", "home")
    alice.send("<message to='bob@b.example' type='chat' id='q1'>"
               "<body>keep me</body></message>")
    wait_log(pair.a, "link b: connection")      # queued, a tries to connect
    peer = RawPeer(pair)
    peer.send(ack.replace("%s", NS))
    assert peer.closed(), "the connection stayed open"
    wait_log(pair.a, "protocol error")
    assert "stay queued" in pair.a.log_text()
    peer.close()
    pair.b.start()
    bob = Raw(pair.b.port, "b.example")
    bob.login("bob", "pw-bob", "ship")
    bob.send("<presence/>")
    assert "keep me" in bob.read_until(r"<body>keep me</body>", timeout=20)


def test_gap_mark_going_back_is_a_protocol_error(pair):
    takeover(pair)
    peer = RawPeer(pair)
    peer.send("<link xmlns='%s' seq='10' next='12' ack='0'/>%s"
              "<link xmlns='%s' seq='5'/>%s" % (NS, msg(1), NS, msg(2)))
    assert peer.closed()
    wait_log(pair.a, "<link seq='5'/> goes back from 11")
    peer.close()


def test_peer_numbering_that_went_back_is_resynchronised(pair):
    """b delivered 1..3 to a, then b's database goes back (its next is 2
    again): a says so loudly and delivers what b sends now instead of
    dropping it as duplicates."""
    takeover(pair)
    peer = RawPeer(pair)
    peer.send("<link xmlns='%s' seq='1' next='4' ack='0'/>%s%s%s"
              % (NS, msg(1), msg(2), msg(3)))
    time.sleep(1)                       # into alice's offline storage
    peer.close()
    wait_log(pair.a, "link b: connection closed", timeout=5)
    peer = RawPeer(pair)
    peer.send("<link xmlns='%s' seq='2' next='2' ack='0'/>%s%s"
              % (NS, msg(4), msg(5)))
    wait_log(pair.a, "the peer's numbering went back")
    assert alice_reads(pair, 5) == ["raw %d" % i for i in range(1, 6)]
    peer.close()


def listen_as_b(p):
    """A socket listening on b's link port, to play b for the
    connections a opens."""
    lsn = socket.socket()
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsn.bind(("127.0.0.1", p.b_link_port))
    lsn.listen(4)
    lsn.settimeout(20)
    return lsn


def b_listener(tmp_path):
    """A pair whose b never starts, and a socket listening on b's link
    port that plays b for the connections a opens; a is started."""
    p = Pair(tmp_path)
    lsn = listen_as_b(p)
    p.a.start()
    return p, lsn


def a_connects(p, lsn):
    """alice, online, writes to bob: a connects at once; returns alice
    and a's connection as accepted."""
    alice = Raw(p.a.port, "a.example")
    alice.login("alice", "pw-alice", "home")
    alice.send("<presence/>")
    alice.send("<message to='bob@b.example' type='chat' id='q1'>"
               "<body>to b</body></message>")
    ours, _ = lsn.accept()
    return alice, ours


def test_drained_connection_behind_the_live_one_is_not_a_step_back(
        tmp_path):
    """a opens its connection to b (a raw socket), and b delivers 1 and 2
    on it.  A connection b opened a moment before, whose hello says
    next='1', arrives within the simultaneous-open window; a keeps its
    own and reads b's to its end (drains it).  That hello is older news
    than what a's connection carried, not b's numbering going back: a
    took it for one once, resynchronised, and delivered 1 and 2 a second
    time when b sent them again."""
    p, lsn = b_listener(tmp_path)
    try:
        alice, ours = a_connects(p, lsn)
        ours.settimeout(5)
        ours.recv(65536)                    # a's hello and its queue
        z = zlib.compressobj(9)
        ours.sendall(z.compress(("<link xmlns='%s' seq='1' next='3' "
                                 "ack='0'/>%s%s" % (NS, msg(1), msg(2)))
                                .encode()) + z.flush(zlib.Z_SYNC_FLUSH))
        got = alice.read_until(r"<body>raw 2</body>", timeout=10)
        late = RawPeer(p)                   # opened before 1 and 2 were
        late.send("<link xmlns='%s' seq='1' next='1' ack='0'/>" % NS)
        time.sleep(1)
        late.close()
        ours.close()                        # b restarts, unacked: again
        wait_log(p.a, "link b: connection closed")
        again = RawPeer(p)
        again.send("<link xmlns='%s' seq='1' next='4' ack='0'/>%s%s%s"
                   % (NS, msg(1), msg(2), msg(3)))
        got += alice.read_until(r"<body>raw 3</body>", timeout=10)
        time.sleep(1)
        got += alice.buf.decode(errors="replace")
        again.close()
        assert re.findall(r"<body>(raw \d+)</body>", got) == \
            ["raw 1", "raw 2", "raw 3"], got
        log = p.a.log_text()
        assert "the peer's numbering went back" not in log
        assert ("closing the connection being drained: it is behind the "
                "live connection") in log
    finally:
        lsn.close()
        p.a.stop()


def test_a_late_open_while_our_first_connection_heard_nothing(tmp_path):
    """a's first connection to b (a raw socket that accepts and says
    nothing, as b's answer still queued on a half-duplex channel) is 8 s
    old when b's own open arrives: beyond the 5 s of a simultaneous open,
    but a's connection has heard nothing since a started, so the two
    opens crossed (on hf-ip they arrived 20 s apart) and a keeps its own,
    reading b's to its end, instead of each end keeping the other's."""
    p, lsn = b_listener(tmp_path)
    try:
        alice, ours = a_connects(p, lsn)    # a's first one: silence
        time.sleep(8)
        late = RawPeer(p)
        late.send("<link xmlns='%s' seq='1' next='2' ack='0'/>%s"
                  % (NS, msg(1)))
        got = alice.read_until(r"<body>raw 1</body>", timeout=10)
        assert "raw 1" in got           # delivered from the drained one
        log = p.a.log_text()
        assert "simultaneous open: keeping the existing connection" in log
        assert "switching to the new connection" not in log
        late.close()
        ours.close()
    finally:
        lsn.close()
        p.a.stop()


def test_a_late_open_that_acknowledges_our_stanza_is_a_reconnect(tmp_path):
    """As above, but the hello of b's open acknowledges the stanza a sent
    on its own connection: b got it before it opened (then restarted, or
    found a's connection dead), so the opens did not cross, and b's
    replaces a's.  Taken for a simultaneous open, it was read to its end
    while a's next stanza went on the connection to b's previous process
    (on hf-ip a restarted receiver got it 42 s after the link came back)."""
    p, lsn = b_listener(tmp_path)
    try:
        alice, ours = a_connects(p, lsn)    # a's first one: silence
        ours.settimeout(5)
        assert ours.recv(65536)             # a's hello and its queue
        # the queued message is a's first stanza
        seq = int(re.search(r"link b: 0 stanzas queued from before; next "
                            r"out (\d+)", p.a.log_text()).group(1))
        time.sleep(7)                       # past the 5 s of an ordinary one
        late = RawPeer(p)
        late.send("<link xmlns='%s' seq='1' next='2' ack='%d'/>%s"
                  % (NS, seq, msg(1)))
        got = alice.read_until(r"<body>raw 1</body>", timeout=10)
        assert "raw 1" in got
        wait_log(p.a, "a reconnect, not a simultaneous open")
        alice.send("<message to='bob@b.example' type='chat' id='q2'>"
                   "<body>after</body></message>")
        # it goes on b's connection; a closed its own
        late.s.settimeout(10)
        assert late.s.recv(65536)           # a's hello there, then "after"
        ours.settimeout(5)
        try:
            while ours.recv(65536):         # what a wrote on it before
                pass                        # ... then its end
        except ConnectionResetError:
            pass                            # (a resets what it replaces)
        log = p.a.log_text()
        assert "simultaneous open: keeping the existing connection" \
            not in log, log
        late.close()
        ours.close()
    finally:
        lsn.close()
        p.a.stop()


class Inflated:
    """One direction of a link connection with no dictionary: what has
    come so far, inflated."""

    def __init__(self, sock):
        self.s = sock
        self.z = zlib.decompressobj()
        self.text = ""

    def read(self, timeout):
        """Reads for timeout s (less if the connection ends)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.s.settimeout(max(0.05, deadline - time.time()))
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            self.text += self.z.decompress(data).decode()
        return self.text

    def wait(self, pattern, timeout):
        deadline = time.time() + timeout
        while not re.search(pattern, self.text):
            assert time.time() < deadline, (pattern, self.text)
            self.read(0.2)
        return re.search(pattern, self.text)


@pytest.mark.parametrize("then", ["ack", "close", "silence"])
def test_what_went_on_the_losing_connection_waits_for_its_ack(tmp_path,
                                                              then):
    """b's connection loses a simultaneous open (a.example sorts first)
    after it carried bob's message; a (a raw socket) reads it to its end.
    b does not write the message again on the kept connection: it waits
    for a's ack there, and then goes on with the next (a renumbering
    past what was acknowledged).  Written again at once, every stanza
    waiting at a cold start crossed the link twice.  Without the ack,
    the message goes again once the drained connection has ended, or
    after an ack timeout."""
    p = Pair(tmp_path)
    add_peer_options(p.b, 'peer_dictionary = "none",\n')
    lsn = socket.socket()
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsn.bind(("127.0.0.1", p.a_link_port))
    lsn.listen(4)
    lsn.settimeout(20)
    p.b.start()
    kept = None
    try:
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/><message to='alice@a.example' type='chat' "
                 "id='q1'><body>first</body></message>")
        theirs, _ = lsn.accept()
        drained = Inflated(theirs)
        m = drained.wait(r"<link [^>]*seq='(\d+)'[^>]*/>.*?<body>first</body>",
                         10)
        seq = int(m.group(1))
        kept = RawPeer.__new__(RawPeer)
        kept.s = socket.create_connection(("127.0.0.1", p.b_link_port),
                                          timeout=5)
        kept.z = zlib.compressobj(9)
        kept.send("<link xmlns='%s' seq='1' next='1' ack='0'/>" % NS)
        wait_log(p.b, "switching to the new connection (simultaneous open)")
        out = Inflated(kept.s)
        out.wait(r"<link [^>]*seq='%d'[^>]*/>" % seq, 5)
        if then == "ack":
            assert "first" not in out.read(1.5), out.text
            kept.send("<a xmlns='%s' h='%d'/>" % (NS, seq))
            time.sleep(0.5)
            bob.send("<message to='alice@a.example' type='chat' id='q2'>"
                     "<body>second</body></message>")
            out.wait(r"<body>second</body>", 10)
            assert "first" not in out.text, out.text
            assert "<link xmlns='%s' seq='%d'/>" % (NS, seq + 1) \
                in out.text, out.text
        elif then == "close":
            assert "first" not in out.read(1.5), out.text
            theirs.close()
            out.wait(r"<body>first</body>", 3)
        else:
            t0 = time.time()
            assert "first" not in out.read(1.5), out.text
            out.wait(r"<body>first</body>", 15)
            # an ack timeout: three path round trips, at least 2 s
            assert time.time() - t0 > 1.5, out.text
        theirs.close()
    finally:
        if kept is not None:
            kept.close()
        lsn.close()
        p.b.stop()


def test_restored_database_loses_and_duplicates_nothing(tmp_path):
    """a's database is copied, a sends more, the copy is put back (a
    backup restored): what a sends after that reaches bob, and nothing
    reaches him twice."""
    p = Pair(tmp_path)
    p.a.start()
    p.b.start()
    try:
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")

        def send(first, last):
            alice = Raw(p.a.port, "a.example")
            alice.login("alice", "pw-alice", "home")
            for i in range(first, last + 1):
                alice.send("<message to='bob@b.example' type='chat' "
                           "id='r%d'><body>raw %d</body></message>" % (i, i))
            for i in range(first, last + 1):
                bob.read_until(r"<body>raw %d</body>" % i, timeout=15)
            alice.sock.close()

        send(1, 3)
        state = p.a.dir / "state"
        assert p.a.stop() == 0
        shutil.copytree(state, tmp_path / "backup")
        p.a.start()
        send(4, 6)
        assert p.a.stop() == 0
        shutil.rmtree(state)
        shutil.copytree(tmp_path / "backup", state)
        p.a.start()
        send(7, 9)
        try:
            extra = bob.read_until(r"<body>raw \d+</body>", timeout=2)
        except AssertionError:
            extra = None
        assert extra is None, "delivered twice: %r" % extra
    finally:
        p.a.stop()
        p.b.stop()


def test_subscription_request_is_kept_like_a_message_then_bounced(tmp_path):
    """A subscription request is a state change, not presence to fold:
    it outlives peer_expire_presence and, after peer_expire_message, is
    bounced to its sender (never dropped in silence)."""
    p = Pair(tmp_path)
    cfg = open(p.a.cfg).read().replace(
        "    peer_reconnect_min", '    peer_expire_presence = "1s",\n'
        '    peer_expire_message = "4s",\n    peer_reconnect_min')
    open(p.a.cfg, "w").write(cfg)
    p.a.start()                         # b never starts
    try:
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<presence/><presence to='bob@b.example' "
                   "type='subscribe'/>")
        time.sleep(2.5)
        assert "expired in the queue" not in p.a.log_text()
        text = alice.read_until(r"<presence[^>]*type='error'.*?</presence>",
                                timeout=15)
        assert "remote-server-timeout" in text
        assert "bob@b.example" in text
    finally:
        assert p.a.stop() == 0


def test_restart_does_not_expire_what_may_have_been_delivered(tmp_path):
    """a wrote alice's message to the peer and was killed before the ack
    came: after the restart, with the peer unreachable past
    peer_expire_message, the message is not bounced as expired (the peer
    may have it); it waits for the peer to say."""
    import signal
    p = Pair(tmp_path)
    cfg = open(p.a.cfg).read().replace(
        "    peer_reconnect_min", '    peer_expire_message = "2s",\n'
        '    peer_reconnect_min')
    open(p.a.cfg, "w").write(cfg)
    p.a.start()                         # b never starts: a raw peer instead
    try:
        peer = RawPeer(p)
        peer.send("<link xmlns='%s' seq='1' next='1' ack='0'/>" % NS)
        wait_log(p.a, "link b: up")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<message to='bob@b.example' type='chat' id='w1'>"
                   "<body>written</body></message>")
        # on the wire (DEFLATE with the preset dictionary), never acked
        time.sleep(1)
        assert "1 stanzas unacknowledged" not in p.a.log_text()
        assert len(peer.s.recv(65536)) > 0
        p.a.proc.send_signal(signal.SIGKILL)
        p.a.proc.wait(timeout=10)
        peer.close()
        p.a.start()
        time.sleep(4)
        assert "expired in the queue" not in p.a.log_text()
    finally:
        p.a.stop()


def _live_link_survives(p, junk):
    """A connection from b's address that proves nothing (junk bytes)
    leaves the live link alone: it is closed, and alice's message still
    goes over the link that was there."""
    wait_log(p.a, "link b: up")
    wait_log(p.b, "link a: up")
    before = p.a.log_text().count("link b: up")
    s = socket.create_connection(("127.0.0.1", p.a_link_port), timeout=5)
    s.sendall(junk)
    # A new connection from the peer's end either waits to prove itself
    # (a reconnect would replace the live one) or, within seconds of a
    # connection a opened, is the loser of a simultaneous open, read to
    # its end: only what follows a valid hello counts on either.
    deadline = time.time() + 15
    while ("waits to prove it is the peer's" not in p.a.log_text()
           and "reading the new one to its end" not in p.a.log_text()):
        assert time.time() < deadline, "the new connection was not seen"
        time.sleep(0.05)
    deadline = time.time() + 10
    closed = False
    while time.time() < deadline and not closed:
        try:
            closed = s.recv(65536) == b""
        except socket.timeout:
            break
        except OSError:
            closed = True
    assert closed, "the unproven connection stayed open"
    s.close()
    assert "switching to the new connection" not in p.a.log_text()
    assert p.a.log_text().count("link b: up") == before
    bob = Raw(p.b.port, "b.example")
    bob.login("bob", "pw-bob", "ship")
    bob.send("<presence/>")
    alice = Raw(p.a.port, "a.example")
    alice.login("alice", "pw-alice", "home")
    alice.send("<message to='bob@b.example' type='chat' id='l1'>"
               "<body>still here</body></message>")
    bob.read_until(r"<body>still here</body>", timeout=10)
    assert p.a.log_text().count("link b: up") == before
    # nothing the junk carried was delivered (it would wait offline)
    alice.send("<presence/>")
    alice.closed(timeout=1.5)        # reads what comes meanwhile
    assert b"no hello" not in alice.buf, alice.buf


def test_unproven_connection_does_not_replace_the_live_one(pair):
    z = zlib.compressobj(9)
    junk = z.compress(b"<message from='bob@b.example/x' to='alice@a.example'"
                      b"><body>no hello</body></message>") \
        + z.flush(zlib.Z_SYNC_FLUSH)
    _live_link_survives(pair, junk)
    assert "did not start with a valid <link/> hello" in pair.a.log_text()


def test_unauthenticated_tls_connection_does_not_replace_the_live_one(
        tmp_path):
    from test_peer_link import tls_pair
    p = tls_pair(tmp_path)
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "peer verified")
        # a TLS record that is no ClientHello: the handshake fails
        _live_link_survives(p, b"\x16\x03\x01\x00\x04\x01\x00\x00\x00")
    finally:
        assert p.a.stop() == 0
        assert p.b.stop() == 0


def test_the_ack_of_a_resent_stanza_is_no_round_trip_sample(tmp_path):
    """a's stanza goes unacknowledged on its connection, which closes; a
    reconnects and resends it, and b's hello on the new connection
    acknowledges it at once.  That ack may be for the first copy: the
    time since the second left is no round trip (Karn's rule, RFC 6298
    §3).  Taken as one, it replaced the path's 1 s with a few ms and was
    stored; on hf-ip a server restarted with such a value (0.03 s, after
    a probe's resend) probed every 2 s, each probe's SYN with its queue
    1.7 s of the channel."""
    p = Pair(tmp_path)
    p.a.start()                         # makes the database
    assert p.a.stop() == 0
    seed_rtt(p.a, "b", 1.0)
    lsn = listen_as_b(p)
    p.a.start()
    try:
        wait_log(p.a, "link b: path round trip 1.00 s, as last measured")
        alice, ours = a_connects(p, lsn)
        seq = int(re.findall(r"link b: 0 stanzas queued from before; "
                             r"next out (\d+)", p.a.log_text())[-1])
        ours.settimeout(5)
        data = ours.recv(65536)             # a's hello (then the stanza)
        if len(data) < 40:
            data += ours.recv(65536)
        ours.close()                        # not acknowledged
        again, _ = lsn.accept()             # a reconnects
        again.settimeout(5)
        assert again.recv(65536)            # a's hello, the stanza again
        time.sleep(0.05)                    # (a sample of 0 is ignored)
        z = zlib.compressobj(9)
        again.sendall(z.compress(("<link xmlns='%s' seq='1' next='1' "
                                  "ack='%d'/>" % (NS, seq)).encode())
                      + z.flush(zlib.Z_SYNC_FLUSH))
        time.sleep(1)
        log = p.a.log_text()
        assert log.count("link b: up") == 2, log
        assert "resending 1 stanzas from %d" % seq in log, log
        again.close()
    finally:
        lsn.close()
        assert p.a.stop() == 0
    assert stored_rtt(p.a, "b") == 1.0


def test_acks_are_coalesced_and_say_how_long_they_were_held(tmp_path):
    """Five stanzas from the peer within half a second get one ack, not
    five, and it says how long it was held after the last one arrived
    (d=, in ms), so that the peer's round-trip samples stay true."""
    from test_peer_link import add_peer_options
    p = Pair(tmp_path)
    for s in (p.a, p.b):
        add_peer_options(s, "peer_compression = false,\n")
    p.a.start()                     # b stays down: a raw socket plays it
    try:
        s = socket.create_connection(("127.0.0.1", p.a_link_port),
                                     timeout=5)
        s.sendall(("<link xmlns='%s' seq='1' next='6' ack='0'/>"
                   % NS).encode())
        for i in range(1, 6):
            s.sendall(msg(i).encode())
            time.sleep(0.1)
        data = b""
        deadline = time.time() + 4
        while time.time() < deadline:
            s.settimeout(max(0.05, deadline - time.time()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        s.close()
        acks = re.findall(r"<a xmlns='%s' h='(\d+)'(?: d='(\d+)')?/>" % NS,
                          data.decode())
        assert len(acks) == 1, data
        h, d = acks[0]
        assert int(h) == 5, data
        assert d and 0 < int(d) <= 2000, data
        wait_log(p.a, "link b: connection closed")
    finally:
        assert p.a.stop() == 0
    assert alice_reads_after_start(p) == ["raw %d" % i for i in range(1, 6)]


def alice_reads_after_start(p):
    p.a.start()
    try:
        return alice_reads(p, 5)
    finally:
        assert p.a.stop() == 0
