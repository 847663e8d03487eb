"""A Peer with peer_protocol = "xep0361" against a peer written from
XEP-0361 alone (plainpeer.py): stanzas both ways with nothing of
Skywave's own protocol on the wire, errors and stream closes as RFC 6120
says, one connection per sender when both open one, and nothing sent
twice on a reconnect."""
import time

import pytest

from conftest import Server, free_port
from plainpeer import NS_SERVER, NS_STREAMS, PlainPeer
from swnet import peer_section
from test_c2s import Raw

NS_STREAM_ERR = "{urn:ietf:params:xml:ns:xmpp-streams}"
NS_STANZA_ERR = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


class Setup:
    def __init__(self, tmp_path, opts=(), listen=True):
        self.link_port, pp = free_port(), free_port()
        self.peer = PlainPeer("p.example", pp if listen else None)
        self.peer_port = pp
        extra = ('link_tcp_interfaces = { "127.0.0.1" }\n'
                 'link_tcp_port = %d\n' % self.link_port
                 + peer_section("p", "p.example", [
                     ("peer_protocol", "xep0361"),
                     ("link_tcp_address", "127.0.0.1"),
                     ("link_tcp_peer_port", pp),
                     ("peer_reconnect_min", "200ms"),
                     ("peer_reconnect_max", "1s")] + list(opts)))
        self.a = Server(tmp_path, hosts=("a.example",),
                        modules=("c2s", "im", "server", "link_tcp"),
                        extra=extra)
        self.a.adduser("alice@a.example", "pw-alice")

    def alice(self):
        c = Raw(self.a.port, "a.example")
        c.login("alice", "pw-alice", "home")
        c.send("<presence/>")
        return c


@pytest.fixture
def setup(tmp_path):
    s = Setup(tmp_path)
    s.a.start()
    yield s
    rc = s.a.stop()
    s.peer.close()
    assert rc in (0, None), "skywaved exited with %r" % rc


def body_is(text):
    def pred(el):
        b = el.find(NS_SERVER + "body")
        return el.tag == NS_SERVER + "message" and b is not None \
            and b.text == text
    return pred


def test_messages_and_pings_both_ways(setup):
    alice = setup.alice()
    alice.send("<message to='pat@p.example' type='chat' id='m1'>"
               "<body>to the plain peer</body></message>")
    m = setup.peer.wait(body_is("to the plain peer"), "alice's message")
    assert m.get("from") == "alice@a.example/home"
    conn = setup.peer.wait_conn(lambda c: c.elements, "carried it")
    assert conn.opened_by == "server"
    # XEP-0361 §4: nothing before the first stanza, no header, no hello
    assert conn.raw.startswith(b"<message"), conn.raw[:80]

    # back on the same connection
    conn.send("<message from='pat@p.example/x' to='alice@a.example' "
              "type='chat' id='r1'><body>and back</body></message>")
    assert "and back" in alice.read_until(r"</message>")

    # an IQ ping from the peer to the server, and one from alice to it
    conn.send("<iq type='get' id='p1' from='p.example' to='a.example'>"
              "<ping xmlns='urn:xmpp:ping'/></iq>")
    r = setup.peer.wait(lambda e: e.tag == NS_SERVER + "iq"
                        and e.get("id") == "p1", "the ping's answer")
    assert r.get("type") == "result" and r.get("to") == "p.example"
    alice.send("<iq type='get' id='p2' to='p.example'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>")
    got = alice.read_until(r"<iq[^>]*id='p2'[^>]*>")
    assert "type='result'" in got, got

    time.sleep(0.5)
    assert setup.peer.link_elements() == [], \
        "Skywave's own elements reached a plain peer"
    assert len(setup.peer.conns) == 1


def test_refused_stanzas_get_standard_errors(setup):
    alice = setup.alice()
    alice.send("<message to='pat@p.example' id='m1'><body>hi</body>"
               "</message>")
    setup.peer.wait(body_is("hi"), "alice's message")
    conn = setup.peer.conns[0]

    # to a domain not served here: a stanza error (RFC 6120 §8.3.3.16),
    # and the stream goes on
    conn.send("<message from='pat@p.example/x' to='x@nowhere.example' "
              "id='e1'><body>lost?</body></message>")
    err = setup.peer.wait(lambda e: e.get("id") == "e1", "a bounce")
    assert err.get("type") == "error"
    assert err.find(".//" + NS_STANZA_ERR + "item-not-found") is not None

    # from a domain the agreement does not give it: invalid-from (RFC
    # 6120 §4.9.3.9), the stream closed, the connection closed
    conn.send("<message from='mallory@evil.example/x' to='alice@a.example' "
              "id='f1'><body>forged</body></message>")
    e = setup.peer.wait(lambda e: e.tag == NS_STREAMS + "error",
                        "a stream error")
    assert e.find(NS_STREAM_ERR + "invalid-from") is not None
    deadline = time.time() + 5
    while not (conn.stream_closed and conn.eof):
        assert time.time() < deadline, "the stream was not closed"
        time.sleep(0.05)
    alice.closed(timeout=1)          # reads what comes meanwhile
    assert b"forged" not in alice.buf, alice.buf

    # the next one, on a new connection (after the peer's own stream
    # close, nothing is resent)
    alice.send("<message to='pat@p.example' id='m2'><body>again</body>"
               "</message>")
    setup.peer.wait(body_is("again"), "the next message")
    bodies = [el.find(NS_SERVER + "body").text for el in
              setup.peer.elements() if el.find(NS_SERVER + "body")
              is not None]
    assert bodies.count("hi") == 1, bodies


def test_not_a_stanza_is_unsupported_stanza_type(setup):
    alice = setup.alice()
    alice.send("<message to='pat@p.example' id='m1'><body>hi</body>"
               "</message>")
    setup.peer.wait(body_is("hi"), "alice's message")
    conn = setup.peer.conns[0]
    conn.send("<foo xmlns='urn:example:other'/>")
    e = setup.peer.wait(lambda e: e.tag == NS_STREAMS + "error",
                        "a stream error")
    assert e.find(NS_STREAM_ERR + "unsupported-stanza-type") is not None


def test_stream_close_is_answered_and_nothing_resent(setup):
    alice = setup.alice()
    for i in range(3):
        alice.send("<message to='pat@p.example' id='c%d'><body>m%d</body>"
                   "</message>" % (i, i))
    setup.peer.wait(body_is("m2"), "three messages")
    conn = setup.peer.conns[0]
    time.sleep(1.5)                 # TCP confirmed them: done
    conn.send("</stream:stream>")
    deadline = time.time() + 5
    while not (conn.stream_closed and conn.eof):
        assert time.time() < deadline, "no stream close in answer"
        time.sleep(0.05)
    assert conn.raw.rstrip().endswith(b"</stream:stream>")
    # it ended the stream and nothing waits: no new connection
    time.sleep(2)
    assert len(setup.peer.conns) == 1
    alice.send("<message to='pat@p.example' id='c9'><body>later</body>"
               "</message>")
    setup.peer.wait(body_is("later"), "a message after the close")
    assert len(setup.peer.conns) == 2
    second = setup.peer.conns[1]
    assert [el.get("id") for el in second.elements] == ["c9"], \
        "stanzas TCP had delivered were sent again"


def test_silence_does_not_cut_the_connection(tmp_path):
    s = Setup(tmp_path, opts=[("peer_keepalive", "1s")])
    s.a.start()
    try:
        alice = s.alice()
        alice.send("<message to='pat@p.example' id='m1'><body>hi</body>"
                   "</message>")
        s.peer.wait(body_is("hi"), "alice's message")
        conn = s.peer.conns[0]
        time.sleep(4.5)             # three keepalive periods and more
        assert not conn.eof, "a silent plain peer was cut off"
        # RFC 6120 §4.6.1 whitespace keepalives, nothing else
        assert conn.raw.endswith(b" "), conn.raw[-40:]
        alice.send("<message to='pat@p.example' id='m2'><body>still"
                   "</body></message>")
        s.peer.wait(body_is("still"), "the second message")
        assert len(s.peer.conns) == 1
        assert s.peer.link_elements() == []
    finally:
        assert s.a.stop() == 0
        s.peer.close()


def test_both_open_each_sends_on_its_own(setup):
    alice = setup.alice()
    alice.send("<message to='pat@p.example' id='m1'><body>first</body>"
               "</message>")
    setup.peer.wait(body_is("first"), "alice's message")
    ours = setup.peer.conns[0]
    # the peer opens its own connection and sends on it (XEP-0361 §4:
    # both opened one, each sends on the one it opened)
    theirs = setup.peer.connect(setup.link_port)
    theirs.send("<message from='pat@p.example/x' to='alice@a.example' "
                "type='chat' id='t1'><body>on mine</body></message>")
    assert "on mine" in alice.read_until(r"</message>")
    alice.send("<message to='pat@p.example' id='m2'><body>second</body>"
               "</message>")
    setup.peer.wait(body_is("second"), "the second message")
    assert [el.get("id") for el in ours.elements] == ["m1", "m2"]
    assert theirs.elements == []
    assert not ours.eof and not theirs.eof
    # its connection closes: ours goes on
    theirs.send("</stream:stream>")
    deadline = time.time() + 5
    while not theirs.eof:
        assert time.time() < deadline
        time.sleep(0.05)
    assert theirs.raw == b"</stream:stream>", theirs.raw
    alice.send("<message to='pat@p.example' id='m3'><body>third</body>"
               "</message>")
    setup.peer.wait(body_is("third"), "the third message")
    assert [el.get("id") for el in ours.elements] == ["m1", "m2", "m3"]


def test_queued_while_the_peer_is_away(tmp_path):
    """Messages for a plain peer that is not there wait in the queue and
    go, once each and in order, when it comes."""
    s = Setup(tmp_path, listen=False)
    s.a.start()
    try:
        alice = s.alice()
        for i in range(5):
            alice.send("<message to='pat@p.example' id='q%d'><body>q%d"
                       "</body></message>" % (i, i))
        time.sleep(1)
        s.peer = PlainPeer("p.example", s.peer_port)
        s.peer.wait(body_is("q4"), "the queued messages", timeout=15)
        time.sleep(1)
        ids = [el.get("id") for el in s.peer.elements()]
        assert ids == ["q%d" % i for i in range(5)], ids
    finally:
        assert s.a.stop() == 0
        s.peer.close()


def test_a_skywave_peer_speaking_its_own_protocol_is_told(setup):
    """A Peer configured as plain while the far end speaks Skywave's
    acknowledged protocol: a stream error that says so, in the log too."""
    conn = setup.peer.connect(setup.link_port)
    conn.send("<link xmlns='urn:skywave:link:0' seq='1' next='2' ack='0'/>")
    e = setup.peer.wait(lambda e: e.tag == NS_STREAMS + "error",
                        "a stream error")
    assert e.find(NS_STREAM_ERR + "unsupported-stanza-type") is not None
    assert "set the same peer_protocol at both ends" in setup.a.log_text()
