"""Peer links over a block transport (issue 11, part 1): two skywaved
joined through tests/modules/mod_testblock.c, a block transport that
carries each block as a UDP datagram on loopback and confirms, rejects
or loses blocks as a radio subnetwork would.  Every message must arrive
once, in order, with blocks never over the MTU, and the DEFLATE stream
must survive lost and rejected blocks (a data error would show in the
log and stop delivery)."""
import hashlib
import json
import re
import time

import pytest

from conftest import Server, free_port
from test_peer_link import online, wait_log


def block_config(my_port, peer_port, peer_domain, mtu, loss, reject, seed,
                 window=4):
    return ('testblock_port = %d\n'
            'testblock_mtu = %d\n'
            'testblock_loss = %d\n'
            'testblock_reject = %d\n'
            'testblock_delay = "10ms"\n'
            'testblock_expire = "400ms"\n'
            'testblock_window = %d\n'
            'testblock_seed = %d\n'
            'Peer "%s" {\n'
            '    peer_domains = { "%s" },\n'
            '    peer_transport = "testblock",\n'
            '    testblock_peer_port = %d,\n'
            '    peer_reconnect_min = "100ms",\n'
            '    peer_reconnect_max = "300ms",\n'
            '    peer_head_start = "0s",\n'
            '}\n' % (my_port, mtu, loss, reject, window, seed,
                     peer_domain.split(".")[0], peer_domain, peer_port))


class BlockPair:
    def __init__(self, tmp_path, mtu=256, loss=0, reject=0, window=4):
        pa, pb = free_port(), free_port()
        mods = ("c2s", "im", "server", "testblock")
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        self.a = Server(tmp_path / "a", hosts=("a.example",), modules=mods,
                        extra=block_config(pa, pb, "b.example", mtu, loss,
                                           reject, 11, window))
        self.b = Server(tmp_path / "b", hosts=("b.example",), modules=mods,
                        extra=block_config(pb, pa, "a.example", mtu, loss,
                                           reject, 23, window))
        self.a.adduser("alice@a.example", "pw-alice")
        self.b.adduser("bob@b.example", "pw-bob")
        self.mtu = mtu

    def __enter__(self):
        self.a.start()
        self.b.start()
        return self

    def __exit__(self, *exc):
        rcs = [s.stop() for s in (self.a, self.b)]    # both, whatever
        for rc in rcs:
            assert rc in (0, None), "skywaved exited with %r" % rc


def msg(to, i, tag):
    # bodies of varied length and not very compressible (hex), some
    # longer than a small block
    pad = "".join(hashlib.sha256(b"%d-%d" % (i, k)).hexdigest()
                  for k in range(4))[:(i * 37) % 200]
    return ("<message to='%s' type='chat' id='%s%d'><body>%s %d %s</body>"
            "</message>" % (to, tag, i, tag, i, pad))


def bodies(text, tag):
    return [int(n) for n in re.findall(r"<body>%s (\d+) " % tag, text)]


def counts(server):
    m = re.findall(r"testblock: sent (\d+), lost (\d+), rejected (\d+), "
                   r"delivered (\d+), expired (\d+), busy (\d+), largest "
                   r"(\d+), received (\d+)", server.log_text())
    assert m, "no testblock counts in the log"
    keys = ("sent", "lost", "rejected", "delivered", "expired", "busy",
            "largest", "received")
    return dict(zip(keys, map(int, m[-1])))


def exchange(p, n, bursts, timeout):
    """N messages each way in BURSTS writes; returns what each side got."""
    wait_log(p.a, "link b: up")
    alice = online(p.a, "alice@a.example", "pw-alice", "home")
    bob = online(p.b, "bob@b.example", "pw-bob", "ship")
    time.sleep(0.3)
    per = n // bursts
    for b in range(bursts):
        alice.send("".join(msg("bob@b.example", i, "ab")
                           for i in range(b * per, (b + 1) * per)))
        bob.send("".join(msg("alice@a.example", i, "ba")
                         for i in range(b * per, (b + 1) * per)))
        time.sleep(0.2)
    last = n - 1
    got_b = bob.read_until(r"<body>ab %d " % last, timeout=timeout)
    got_a = alice.read_until(r"<body>ba %d " % last, timeout=timeout)
    time.sleep(1.0)         # a late second copy would come now
    got_b += drain(bob)
    got_a += drain(alice)
    alice.sock.close()
    bob.sock.close()
    return got_a, got_b


def drain(client):
    """Whatever else the client has received by now."""
    import socket
    client.sock.settimeout(0.3)
    try:
        while True:
            chunk = client.sock.recv(65536)
            if not chunk:
                break
            client.buf += chunk
    except socket.timeout:
        pass
    text = client.buf.decode(errors="replace")
    client.buf = b""
    return text


def check_common(p):
    for s in (p.a, p.b):
        text = s.log_text()
        assert "OVER MTU" not in text
        assert "DEFLATE data error" not in text
        assert "protocol error" not in text.lower()
        c = counts(s)
        assert 0 < c["largest"] <= p.mtu, c


def test_every_stanza_once_in_order_within_the_mtu(tmp_path):
    p = BlockPair(tmp_path, mtu=256)
    with p:
        got_a, got_b = exchange(p, 60, 3, timeout=30)
    assert bodies(got_b, "ab") == list(range(60))
    assert bodies(got_a, "ba") == list(range(60))
    check_common(p)
    ca = counts(p.a)
    assert ca["lost"] == 0 and ca["rejected"] == 0, ca
    # the first block may go before the peer listens (it starts second)
    assert ca["expired"] <= 1, ca
    # A burst goes as few blocks, not one per stanza: 60 messages (about
    # 9 kB of XML, 5 kB compressed) and the acks, in blocks of 256 bytes.
    assert ca["sent"] < 60, ca
    links = json.load(open(p.a.dir / "state" / "links.json"))["links"]
    st = [x for x in links if x["peer"] == "b"][0]
    assert st["wire_out"] < st["bytes_out"], st   # DEFLATE on the blocks


def test_lost_and_rejected_blocks_lose_and_repeat_nothing(tmp_path):
    """10 % of blocks lost, 5 % rejected, both ways: each lost or
    rejected block ends the connection; the next one starts DEFLATE
    afresh and sends again what was not acknowledged."""
    p = BlockPair(tmp_path, mtu=200, loss=10, reject=5)
    with p:
        got_a, got_b = exchange(p, 80, 8, timeout=90)
    assert bodies(got_b, "ab") == list(range(80))
    assert bodies(got_a, "ba") == list(range(80))
    check_common(p)
    ca, cb = counts(p.a), counts(p.b)
    assert ca["lost"] + cb["lost"] > 0, (ca, cb)
    assert ca["rejected"] + cb["rejected"] > 0, (ca, cb)
    text = p.a.log_text() + p.b.log_text()
    assert re.search(r"block \d+ (expired|rejected) by the transport", text)
    # delivery went on after connections ended for lost blocks
    assert text.count("link a: up") + text.count("link b: up") > 2


def test_a_connection_the_peer_ended_at_once_is_not_kept(tmp_path):
    """a opens the first connection; b's first block on it (its hello) is
    lost, so b ends that connection and opens another.  That one reached
    a within the simultaneous-open window while a's own had heard
    nothing from b, and a kept its own: each end then wrote on a
    connection the other had ended, the blocks confirmed by the
    transport and dropped on arrival, until three keepalive periods
    passed (3 min; the CI run that timed out after 90 s).  A connection
    we opened that hears nothing from the peer for an ack timeout ends."""
    p = BlockPair(tmp_path, mtu=256)
    cfg = open(p.b.cfg).read()
    open(p.b.cfg, "w").write("testblock_lose_first = 1\n" + cfg)
    with p:
        wait_log(p.a, "link b: up")
        alice = online(p.a, "alice@a.example", "pw-alice", "home")
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        time.sleep(6)                   # past b's second connection
        alice.send(msg("bob@b.example", 1, "ab"))
        bob.send(msg("alice@a.example", 1, "ba"))
        got_b = bob.read_until(r"<body>ab 1 ", timeout=20)
        got_a = alice.read_until(r"<body>ba 1 ", timeout=20)
    assert bodies(got_b, "ab") == [1] and bodies(got_a, "ba") == [1]
    assert counts(p.b)["lost"] == 1, counts(p.b)


@pytest.mark.parametrize("mtu", [64, 1500])
def test_mtu_extremes(tmp_path, mtu):
    p = BlockPair(tmp_path, mtu=mtu)
    with p:
        got_a, got_b = exchange(p, 20, 2, timeout=30)
    assert bodies(got_b, "ab") == list(range(20))
    assert bodies(got_a, "ba") == list(range(20))
    check_common(p)


def test_a_busy_transport_holds_the_queue_back_and_lets_it_go(tmp_path):
    """More than the link writes ahead (256 kB compressed) through a
    transport that takes two blocks at a time and says busy otherwise:
    the link stops at its bound and goes on as blocks are confirmed;
    every message arrives once, in order."""
    n = 500
    p = BlockPair(tmp_path, mtu=1500, window=2)
    with p:
        wait_log(p.a, "link b: up")
        alice = online(p.a, "alice@a.example", "pw-alice", "home")
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        time.sleep(0.3)
        big = []
        for i in range(n):
            pad = "".join(hashlib.sha256(b"%d-%d" % (i, k)).hexdigest()
                          for k in range(16))
            big.append("<message to='bob@b.example' type='chat' id='z%d'>"
                       "<body>zz %d %s</body></message>" % (i, i, pad))
        alice.send("".join(big))
        # about 4 s; a link left waiting for a "drained" that never comes
        # limps on its keepalive and takes a minute
        got = bob.read_until(r"<body>zz %d " % (n - 1), timeout=30)
        got += drain(bob)
        alice.sock.close()
        bob.sock.close()
    assert [int(x) for x in re.findall(r"<body>zz (\d+) ", got)] == \
        list(range(n))
    check_common(p)
    ca = counts(p.a)
    assert ca["busy"] > 0, ca                   # flow control was used
    links = json.load(open(p.a.dir / "state" / "links.json"))["links"]
    st = [x for x in links if x["peer"] == "b"][0]
    assert st["wire_out"] > 256 * 1024, st      # past the link's bound
