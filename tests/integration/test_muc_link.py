"""Plain MUC across a peer link (issue 13 §2): bob@b.example joins a room
of conference.a.example over the link between two skywaved, as with any
standard MUC service (XEP-0045): join with history and subject, groupchat
both ways with one stanza id, a private message, leave; and a room
service the peer agreement does not cover is refused."""
import re
import time

import pytest

from conftest import Server, free_port
from swnet import peer_section
from test_peer_link import wait_log
from test_c2s import Raw

MUC = "http://jabber.org/protocol/muc"
ROOM = "room@conference.a.example"


def link_config(my_port, peer_port, name, domains):
    return ('link_tcp_interfaces = { "127.0.0.1" }\n'
            'link_tcp_port = %d\n' % my_port
            + peer_section(name, domains, [
                ("link_tcp_address", "127.0.0.1"),
                ("link_tcp_peer_port", peer_port),
                ("peer_reconnect_min", "200ms"),
                ("peer_reconnect_max", "1s"),
                ("peer_head_start", "0s")]))


@pytest.fixture
def muc_pair(tmp_path):
    pa, pb = free_port(), free_port()
    mods = ("c2s", "im", "server", "link_tcp")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(tmp_path / "a", hosts=("a.example",), modules=mods,
               extra=link_config(pa, pb, "b", ["b.example"])
               + 'Component "conference.a.example" "muc"\n')
    b = Server(tmp_path / "b", hosts=("b.example",), modules=mods,
               extra=link_config(pb, pa, "a", ["a.example",
                                               "conference.a.example"]))
    a.adduser("alice@a.example", "pw-alice")
    b.adduser("bob@b.example", "pw-bob")
    a.start()
    b.start()
    yield a, b
    for s in (a, b):
        assert s.stop() in (0, None)


def online(server, user, host, resource):
    c = Raw(server.port, host)
    c.login(user, "pw-" + user, resource)
    c.send("<presence/>")
    c.read_until(r"<presence[^>]*/>|</presence>")
    return c


def join(c, nick, extra=""):
    c.send("<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>"
           % (ROOM, nick, MUC, extra))
    return c.read_until(r"<subject[^>]*?(/>|</subject>)", 20)


def test_plain_muc_across_the_link(muc_pair):
    a, b = muc_pair
    alice = online(a, "alice", "a.example", "home")
    text = join(alice, "Alice")
    assert "<status code='201'/>" in text
    alice.send("<iq type='set' id='cfg' to='%s'><query xmlns='%s#owner'>"
               "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
               % (ROOM, MUC))
    alice.read_until(r"id='cfg'")
    alice.send("<message to='%s' type='groupchat' id='h1'><body>before "
               "bob</body></message>" % ROOM)
    alice.read_until(r"before bob")

    bob = online(b, "bob", "b.example", "ship")
    text = join(bob, "Bob")
    # §7.2.3 order: Alice's presence, Bob's own (110), history, subject
    pa = text.index("from='%s/Alice'" % ROOM)
    own = text.index("<status code='110'/>")
    hist = text.index("before bob")
    subj = text.index("<subject")
    assert pa < own < hist < subj, text
    assert "urn:xmpp:delay" in text[hist - 400:subj]
    seen = alice.read_until(r"from='%s/Bob'[^>]*>.*?</presence>" % ROOM)
    # semi-anonymous: the owner (a moderator) sees the real JID
    assert "jid='bob@b.example/ship'" in seen

    bob.send("<message to='%s' type='groupchat' id='g1'><body>from the "
             "ship</body></message>" % ROOM)
    at_alice = alice.read_until(r"from the ship.*?</message>")
    at_bob = bob.read_until(r"from the ship.*?</message>")
    ids = [re.search(r"<stanza-id xmlns='urn:xmpp:sid:0' id='([^']+)'", t)
           for t in (at_alice, at_bob)]
    assert ids[0] and ids[1] and ids[0].group(1) == ids[1].group(1)

    alice.send("<message to='%s/Bob' type='chat' id='p1'><body>just you"
               "</body></message>" % ROOM)
    pm = bob.read_until(r"just you.*?</message>")
    assert "from='%s/Alice'" % ROOM in pm

    bob.send("<presence to='%s/Bob' type='unavailable'/>" % ROOM)
    assert "<status code='110'/>" in bob.read_until(
        r"type='unavailable'.*?</presence>")
    gone = alice.read_until(r"from='%s/Bob'[^>]*type='unavailable'"
                            r".*?</presence>" % ROOM)
    assert "role='none'" in gone
    wait_log(a, "link b: up")


def test_a_session_that_ends_leaves_the_room(muc_pair):
    """RFC 6121 §4.6.3: when bob's session ends, his server sends
    unavailable presence for his directed presence, across the link, and
    the room tells the others he left."""
    a, b = muc_pair
    alice = online(a, "alice", "a.example", "home")
    join(alice, "Alice")
    alice.send("<iq type='set' id='cfg' to='%s'><query xmlns='%s#owner'>"
               "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
               % (ROOM, MUC))
    alice.read_until(r"id='cfg'")
    bob = online(b, "bob", "b.example", "ship")
    join(bob, "Bob")
    alice.read_until(r"from='%s/Bob'" % ROOM)
    bob.sock.close()
    gone = alice.read_until(r"from='%s/Bob'[^>]*type='unavailable'"
                            % ROOM, 20)
    assert gone


def test_room_on_a_domain_outside_the_agreement(tmp_path):
    """B's agreement with A does not name A's room service: a join goes
    nowhere near the link and bob gets an error at once."""
    pa, pb = free_port(), free_port()
    mods = ("c2s", "im", "server", "link_tcp")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(tmp_path / "a", hosts=("a.example",), modules=mods,
               extra=link_config(pa, pb, "b", ["b.example"])
               + 'Component "conference.a.example" "muc"\n')
    b = Server(tmp_path / "b", hosts=("b.example",), modules=mods,
               extra=link_config(pb, pa, "a", ["a.example"]))
    b.adduser("bob@b.example", "pw-bob")
    a.start()
    b.start()
    try:
        bob = online(b, "bob", "b.example", "ship")
        bob.send("<presence to='%s/Bob'><x xmlns='%s'/></presence>"
                 % (ROOM, MUC))
        err = bob.read_until(r"</presence>", 10)
        assert "type='error'" in err and "remote-server-not-found" in err
    finally:
        for s in (a, b):
            assert s.stop() in (0, None)
