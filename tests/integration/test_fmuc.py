"""Federated MUC (XEP-0289) between two skywaved joined by a peer link:
room@conference.b.example is a node of room@conference.a.example.  Joins
propagate (the joining node gets occupants, history and subject), each
groupchat message and each presence crosses the link once whatever the
number of occupants behind it, a user joining the node that is already
in the set reads the history there with nothing crossing for it, private
messages route through the nodes, a kick at the joined node applies at
the joining node, only agreed rooms federate, and after a restart of the
joining node its users get what they missed, once, in order."""
import json
import os
import re
import time

import pytest

from conftest import Server, free_port
from swnet import peer_section
from test_c2s import Raw
from test_peer_link import wait_log

MUC = "http://jabber.org/protocol/muc"
RA = "room@conference.a.example"
RB = "room@conference.b.example"


def link_config(my_port, peer_port, name, domains, fmuc):
    opts = [("link_tcp_address", "127.0.0.1"),
            ("link_tcp_peer_port", peer_port),
            ("peer_reconnect_min", "200ms"),
            ("peer_reconnect_max", "1s"),
            ("peer_head_start", "0s")]
    extra = ("    peer_fmuc = { %s },\n" % ", ".join('"%s"' % f for f in fmuc)
             if fmuc else "")
    return ('link_tcp_interfaces = { "127.0.0.1" }\n'
            'link_tcp_port = %d\n' % my_port
            + peer_section(name, domains, opts, extra))


def make_pair(tmp_path, a_trusts=("conference.b.example",),
              b_trusts=("conference.a.example",)):
    pa, pb = free_port(), free_port()
    mods = ("c2s", "im", "server", "link_tcp")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(tmp_path / "a", hosts=("a.example",), modules=mods,
               extra=link_config(pa, pb, "b", ["b.example",
                                               "conference.b.example"],
                                 a_trusts)
               + 'Component "conference.a.example" "muc"\n')
    b = Server(tmp_path / "b", hosts=("b.example",), modules=mods,
               extra=link_config(pb, pa, "a", ["a.example",
                                               "conference.a.example"],
                                 b_trusts)
               + 'Component "conference.b.example" "muc"\n')
    a.adduser("alice@a.example", "pw-alice")
    a.adduser("dave@a.example", "pw-dave")
    b.adduser("bob@b.example", "pw-bob")
    b.adduser("carol@b.example", "pw-carol")
    return a, b


@pytest.fixture
def fed(tmp_path):
    a, b = make_pair(tmp_path)
    a.start()
    b.start()
    yield a, b
    for s in (a, b):
        assert s.stop() in (0, None)


def online(server, user, host, resource="r"):
    c = Raw(server.port, host)
    c.login(user, "pw-" + user, resource)
    c.send("<presence/>")
    c.read_until(r"<presence[^>]*/>|</presence>")
    return c


def join(c, room, nick, extra=""):
    c.send("<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>"
           % (room, nick, MUC, extra))
    return c.read_until(r"<subject[^>]*?(/>|>[^<]*</subject>)", 20)


def configure(c, room, fields):
    body = "".join("<field var='%s'><value>%s</value></field>" % kv
                   for kv in fields)
    c.send("<iq type='set' id='cfg' to='%s'><query xmlns='%s#owner'>"
           "<x xmlns='jabber:x:data' type='submit'>%s</x></query></iq>"
           % (room, MUC, body))
    return c.read_until(r"<iq[^>]*id='cfg'[^>]*(/>|>.*?</iq>)")


def groupchat(c, room, body):
    c.send("<message to='%s' type='groupchat'><body>%s</body></message>"
           % (room, body))


def counters(server):
    """Stanzas out and in on the server's one peer link (links.json is
    rewritten every 5 s)."""
    st = json.load(open(os.path.join(str(server.dir), "state",
                                     "links.json")))["links"][0]
    return st["stanzas_out"], st["stanzas_in"]


def settled(server):
    time.sleep(5.5)
    return counters(server)


def federate(a, b):
    """alice's room at A (persistent), bob's at B federated with it."""
    alice = online(a, "alice", "a.example")
    join(alice, RA, "Alice")
    configure(alice, RA, [("muc#roomconfig_persistentroom", "1")])
    groupchat(alice, RA, "history one")
    alice.read_until("history one")
    bob = online(b, "bob", "b.example")
    join(bob, RB, "Bob")
    assert "type='result'" in configure(
        bob, RB, [("muc#roomconfig_persistentroom", "1"),
                  ("fmuc_node", RA)])
    # the joined node's state comes back: alice, her history
    got = bob.read_until(r"history one.*?</message>", 20)
    assert "from='%s/Alice'" % RB in got
    alice.read_until(r"from='%s/Bob'" % RA, 20)
    return alice, bob


def test_join_messages_both_ways_and_once_per_link(fed):
    a, b = fed
    alice, bob = federate(a, b)
    wait_log(a, "muc: room@conference.a.example: room@conference.b.example "
             "joined")

    groupchat(alice, RA, "to the ship")
    m = bob.read_until(r"to the ship.*?</message>", 20)
    assert "from='%s/Alice'" % RB in m
    assert re.search(r"<stanza-id xmlns='urn:xmpp:sid:0' id='[^']+' "
                     r"by='%s'/>" % RB, m), m
    groupchat(bob, RB, "from the ship")
    m = alice.read_until(r"from the ship.*?</message>", 20)
    assert "from='%s/Bob'" % RA in m
    assert "isode.com" not in m          # no fmuc payload to a client
    bob.read_until(r"from the ship")     # and bob's own, at once

    # carol joins B's node: history and occupants from there, and only
    # her own presence crosses the link
    out0, in0 = settled(b)
    carol = online(b, "carol", "b.example")
    text = join(carol, RB, "Carol")
    for want in ("from='%s/Alice'" % RB, "from='%s/Bob'" % RB,
                 "history one", "to the ship", "from the ship"):
        assert want in text, (want, text)
    alice.read_until(r"from='%s/Carol'" % RA, 20)
    out1, in1 = settled(b)
    assert (out1 - out0, in1 - in0) == (1, 0)

    # a message to two occupants behind B crosses once
    groupchat(alice, RA, "to both")
    bob.read_until("to both", 20)
    carol.read_until("to both", 20)
    out2, in2 = settled(b)
    assert (out2 - out1, in2 - in1) == (0, 1)

    # a private message from carol (B) to alice (A), through the nodes
    carol.send("<message to='%s/Alice' type='chat'><body>psst</body>"
               "</message>" % RB)
    pm = alice.read_until(r"psst.*?</message>", 20)
    assert "from='%s/Carol'" % RA in pm and "isode.com" not in pm

    # the last at B leaves: B's node leaves the set
    for c, nick in ((bob, "Bob"), (carol, "Carol")):
        c.send("<presence to='%s/%s' type='unavailable'/>" % (RB, nick))
        alice.read_until(r"from='%s/%s'[^>]*type='unavailable'" % (RA, nick),
                         20)


def test_kick_at_the_joined_node_applies_at_the_joining_node(fed):
    a, b = fed
    alice, bob = federate(a, b)
    alice.send("<iq type='set' id='k' to='%s'><query xmlns='%s#admin'>"
               "<item nick='Bob' role='none'><reason>enough</reason></item>"
               "</query></iq>" % (RA, MUC))
    alice.read_until(r"id='k'")
    kicked = bob.read_until(r"from='%s/Bob'[^>]*type='unavailable'"
                            r".*?</presence>" % RB, 20)
    assert "<status code='307'/>" in kicked
    assert "<status code='110'/>" in kicked
    assert "enough" in kicked


def test_untrusted_room_is_refused(tmp_path):
    a, b = make_pair(tmp_path, a_trusts=())
    a.start()
    b.start()
    try:
        alice = online(a, "alice", "a.example")
        join(alice, RA, "Alice")
        configure(alice, RA, [])
        bob = online(b, "bob", "b.example")
        join(bob, RB, "Bob")
        configure(bob, RB, [("fmuc_node", RA)])
        wait_log(a, "federation refused to room@conference.b.example")
        wait_log(b, "refused federation: Not federated")
        groupchat(bob, RB, "nobody there")
        bob.read_until("nobody there")
        with pytest.raises(AssertionError):
            alice.read_until("nobody there", 3)
    finally:
        for s in (a, b):
            assert s.stop() in (0, None)


def test_fmuc_node_must_be_agreed(tmp_path):
    """The form refuses a node the Peer's peer_fmuc does not name."""
    a, b = make_pair(tmp_path, b_trusts=())
    b.start()
    try:
        bob = online(b, "bob", "b.example")
        join(bob, RB, "Bob")
        r = configure(bob, RB, [("fmuc_node", RA)])
        assert "not-acceptable" in r
    finally:
        assert b.stop() in (0, None)


def test_restart_of_the_joining_node_resyncs_once_in_order(fed):
    a, b = fed
    alice, bob = federate(a, b)
    groupchat(bob, RB, "before")
    alice.read_until("before", 20)
    bob.sock.close()
    assert b.stop() == 0
    for i in range(3):
        groupchat(alice, RA, "missed %d" % i)
        alice.read_until("missed %d" % i)
    b.start()
    bob = online(b, "bob", "b.example", "again")
    text = join(bob, RB, "Bob")
    # what B missed reached it while it started (the link's queue) or
    # comes with its join to A: either way once, in order
    got = text if "missed 2" in text else \
        text + bob.read_until(r"missed 2.*?</message>", 20)
    order = [m for m in re.findall(r"<body>([^<]*)</body>", got)]
    assert order.count("before") == 1 and order.count("history one") == 1, got
    assert [m for m in order if m.startswith("missed")] == \
        ["missed 0", "missed 1", "missed 2"], order
    # nothing comes twice later on
    time.sleep(2)
    bob.send("<iq type='get' id='ping' to='b.example'><ping "
             "xmlns='urn:xmpp:ping'/></iq>")
    rest = bob.read_until(r"id='ping'")
    assert "missed" not in rest
    groupchat(alice, RA, "after")
    assert "after" in bob.read_until(r"after.*?</message>", 20)


def test_restart_of_the_joined_node_loses_nothing(fed):
    """Federation state is kept at the joined node: what the joining node
    said while it was down reaches it when it is back, once."""
    a, b = fed
    alice, bob = federate(a, b)
    alice.sock.close()
    bob.read_until(r"from='%s/Alice'[^>]*type='unavailable'" % RB, 20)
    assert a.stop() == 0
    groupchat(bob, RB, "while you were out")
    bob.read_until("while you were out")        # primary-primary: at once
    a.start()
    wait_log(a, "link b: up")
    alice = online(a, "alice", "a.example", "again")
    text = join(alice, RA, "Alice")
    if "while you were out" not in text:
        text += alice.read_until(r"while you were out.*?</message>", 20)
    assert text.count("while you were out") == 1, text
    assert "from='%s/Bob'" % RA in text          # bob is still in the room
    groupchat(alice, RA, "back")
    assert "back" in bob.read_until(r"back.*?</message>", 20)


def test_replica_shows_what_the_primary_echoes(fed):
    a, b = fed
    alice = online(a, "alice", "a.example")
    join(alice, RA, "Alice")
    configure(alice, RA, [("muc#roomconfig_persistentroom", "1")])
    bob = online(b, "bob", "b.example")
    join(bob, RB, "Bob")
    configure(bob, RB, [("muc#roomconfig_persistentroom", "1"),
                        ("fmuc_node", RA), ("fmuc_mode", "primary-replica")])
    alice.read_until(r"from='%s/Bob'" % RA, 20)
    groupchat(bob, RB, "echoed")
    m = bob.read_until(r"echoed.*?</message>", 20)
    assert "from='%s/Bob'" % RB in m
    alice.read_until("echoed", 20)
    # the primary away: nothing shows at the replica until it is back
    alice.sock.close()
    bob.read_until(r"from='%s/Alice'[^>]*type='unavailable'" % RB, 20)
    assert a.stop() == 0
    groupchat(bob, RB, "held")
    with pytest.raises(AssertionError):
        bob.read_until("held", 2)
    a.start()
    m = bob.read_until(r"held.*?</message>", 30)
    assert "from='%s/Bob'" % RB in m
    alice = online(a, "alice", "a.example", "again")
    text = join(alice, RA, "Alice")
    assert text.count("held") == 1 and text.count("echoed") == 1, text


def test_nick_taken_on_both_sides_while_apart(fed):
    """A nick taken at A while B was away, and then at B: when B's node
    joins again, A refuses the later one (XEP-0289 §"Open issues": the
    node with the local user sends the error and removes it)."""
    a, b = fed
    alice, bob = federate(a, b)
    bob.sock.close()
    assert b.stop() == 0
    dave = online(a, "dave", "a.example")
    join(dave, RA, "Dup")
    b.start()
    carol = online(b, "carol", "b.example")
    join(carol, RB, "Dup")          # B does not know A's Dup yet
    err = carol.read_until(r"<presence[^>]*type='error'.*?</presence>", 20)
    assert "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in err
    wait_log(b, "room@conference.a.example refused Dup (conflict)")
    # dave is still Dup at A, with nobody from B under that name
    dave.send("<message to='%s' type='groupchat'><body>still me</body>"
              "</message>" % RA)
    dave.read_until("still me")


def test_the_joined_rooms_rules_apply_to_the_joining_nodes_users(fed):
    """Each node keeps its own affiliation lists (XEP-0289
    §"Administration"): a user banned from the room at A, or not a member
    of it when it is members-only, joins B's node and is refused by A with
    the XEP-0045 §7.2 error; B tells the user and removes it, and nobody
    at A ever sees it."""
    a, b = fed
    alice, bob = federate(a, b)
    alice.send("<iq type='set' id='ban' to='%s'><query xmlns='%s#admin'>"
               "<item affiliation='outcast' jid='carol@b.example'/>"
               "</query></iq>" % (RA, MUC))
    assert "type='result'" in alice.read_until(r"<iq[^>]*id='ban'[^>]*>")
    carol = online(b, "carol", "b.example")
    carol.send("<presence to='%s/Carol'><x xmlns='%s'/></presence>"
               % (RB, MUC))
    err = carol.read_until(r"<presence[^>]*type='error'.*?</presence>", 20)
    assert "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" \
        in err, err
    assert "isode.com" not in err
    wait_log(a, "Carol (carol@b.example/r) from room@conference.b.example "
             "not let in: forbidden")
    wait_log(b, "room@conference.a.example refused Carol (forbidden)")
    bob.read_until(r"from='%s/Carol'[^>]*type='unavailable'" % RB, 20)

    # members only: carol, no longer banned, is not a member
    alice.send("<iq type='set' id='unban' to='%s'><query xmlns='%s#admin'>"
               "<item affiliation='none' jid='carol@b.example'/>"
               "</query></iq>" % (RA, MUC))
    alice.read_until(r"<iq[^>]*id='unban'")
    assert "type='result'" in configure(
        alice, RA, [("muc#roomconfig_membersonly", "1")])
    carol.send("<presence to='%s/Carol'><x xmlns='%s'/></presence>"
               % (RB, MUC))
    err = carol.read_until(r"<presence[^>]*type='error'.*?</presence>", 20)
    assert "<registration-required xmlns='urn:ietf:params:xml:ns:" \
        "xmpp-stanzas'/>" in err, err

    # a member is let in, and alice sees her
    alice.send("<iq type='set' id='mem' to='%s'><query xmlns='%s#admin'>"
               "<item affiliation='member' jid='carol@b.example'/>"
               "</query></iq>" % (RA, MUC))
    alice.read_until(r"<iq[^>]*id='mem'")
    join(carol, RB, "Carol")
    text = alice.read_until(r"from='%s/Carol'(?![^>]*unavailable)" % RA, 20)
    groupchat(carol, RB, "let in")
    alice.read_until("let in", 20)
    # until now A never showed carol to alice
    assert text.count("from='%s/Carol'" % RA) == 1, text


RC = "room@conference.c.example"


def test_a_joined_node_restarted_gives_each_node_the_others_again(tmp_path):
    """Three nodes: B and C both joined A's room.  A restarts while C is
    down: A tells each neighbour its occupants are gone, B drops what it
    had through A (C's occupant with it) and joins again, and A answers
    the known node's join with the room again (XEP-0289 §"Open issues":
    a resync is a part and a full rejoin), C's occupant included, which A
    kept across its restart.  Without that B would not see C's occupant
    until C came back."""
    pa, pb, pc = free_port(), free_port(), free_port()
    mods = ("c2s", "im", "server", "link_tcp")
    for d in "abc":
        (tmp_path / d).mkdir()

    def peer(name, domains, addr, port, initiate, fmuc):
        return peer_section(name, domains,
                            [("link_tcp_address", addr),
                             ("link_tcp_peer_port", port),
                             ("peer_initiate", initiate),
                             ("peer_reconnect_min", "200ms"),
                             ("peer_reconnect_max", "1s"),
                             ("peer_head_start", "0s")],
                            '    peer_fmuc = { "%s" },\n' % fmuc)

    # A connects to B (127.0.0.2) and C (127.0.0.3), from 127.0.0.1: each
    # knows A by that address
    a = Server(tmp_path / "a", hosts=("a.example",), modules=mods,
               extra='link_tcp_interfaces = { "127.0.0.1" }\n'
               'link_tcp_port = %d\n' % pa
               + peer("b", ["b.example", "conference.b.example"],
                      "127.0.0.2", pb, "us", "conference.b.example")
               + peer("c", ["c.example", "conference.c.example"],
                      "127.0.0.3", pc, "us", "conference.c.example")
               + 'Component "conference.a.example" "muc"\n')
    others = {}
    for d, port in (("b", pb), ("c", pc)):
        addr = "127.0.0.2" if d == "b" else "127.0.0.3"
        others[d] = Server(
            tmp_path / d, hosts=("%s.example" % d,), modules=mods,
            extra='link_tcp_interfaces = { "%s" }\nlink_tcp_port = %d\n'
            % (addr, port)
            + peer("a", ["a.example", "conference.a.example"], "127.0.0.1",
                   pa, "them", "conference.a.example")
            + 'Component "conference.%s.example" "muc"\n' % d)
    b, c = others["b"], others["c"]
    a.adduser("alice@a.example", "pw-alice")
    b.adduser("bob@b.example", "pw-bob")
    c.adduser("cecil@c.example", "pw-cecil")
    for s in (a, b, c):
        s.start()
    try:
        alice, bob = federate(a, b)
        cecil = online(c, "cecil", "c.example")
        join(cecil, RC, "Cecil")
        assert "type='result'" in configure(
            cecil, RC, [("muc#roomconfig_persistentroom", "1"),
                        ("fmuc_node", RA)])
        got = cecil.read_until(r"from='%s/Bob'" % RC, 20)
        bob.read_until(r"from='%s/Cecil'" % RB, 20)

        # C goes; A restarts (alice's session with it)
        cecil.sock.close()
        assert c.stop() == 0
        alice.sock.close()
        assert a.stop() == 0
        a.start()
        wait_log(a, "muc: room@conference.a.example: "
                 "room@conference.b.example joined again")
        got = bob.read_until(r"from='%s/Cecil'[^>]*type='unavailable'"
                             r".*?from='%s/Cecil'(?![^>]*unavailable)"
                             % (RB, RB), 20)
        assert "isode.com" not in got
        # and A still has bob: its own users see him
        alice = online(a, "alice", "a.example")
        text = join(alice, RA, "Alice")
        assert "from='%s/Bob'" % RA in text
        assert "from='%s/Cecil'" % RA in text
    finally:
        for s in (a, b, c):
            s.stop()


def test_the_same_words_twice_in_one_second_both_arrive(fed):
    """Two messages alike (same author, same words, same second) while
    the joining node was down: the resync tells items apart by the
    stanza id their origin gave them (it crosses with each), not by what
    they say, so both arrive, once each; what B had already is not sent
    again."""
    a, b = fed
    alice, bob = federate(a, b)
    bob.sock.close()
    assert b.stop() == 0
    alice.send("<message to='%s' type='groupchat'><body>ok</body></message>"
               "<message to='%s' type='groupchat'><body>ok</body></message>"
               % (RA, RA))
    alice.read_until(r"<body>ok</body>.*?<body>ok</body>")
    b.start()
    bob = online(b, "bob", "b.example", "again")
    text = join(bob, RB, "Bob")
    got = text if text.count("<body>ok</body>") >= 2 else \
        text + bob.read_until(r"<body>ok</body>.*?</message>", 20)
    time.sleep(2)
    bob.send("<iq type='get' id='ping' to='b.example'><ping "
             "xmlns='urn:xmpp:ping'/></iq>")
    got += bob.read_until(r"id='ping'")
    bodies = re.findall(r"<body>([^<]*)</body>", got)
    assert bodies.count("ok") == 2, got
    assert bodies.count("history one") == 1, got
    # both carry A's ids (the origin's) as well as B's own
    ids = re.findall(r"<stanza-id xmlns='urn:xmpp:sid:0' id='([^']+)' "
                     r"by='%s'/>" % RA, got)
    assert len(set(ids)) >= 2, got


def test_an_iq_to_an_occupant_behind_the_other_node(fed):
    """XEP-0045 §17.4 through the set: alice (A) asks Bob, who is behind
    B's node, through the room; B passes it on under an id of its own,
    from alice's occupant JID there; Bob's answer comes back to alice from
    Bob's occupant JID at A, with her id.  Neither learns the other's
    real JID; a nick nobody has is item-not-found."""
    a, b = fed
    alice, bob = federate(a, b)
    alice.send("<iq type='get' id='v1' to='%s/Bob'><query "
               "xmlns='jabber:iq:version'/></iq>" % RA)
    req = bob.read_until(r"<iq[^>]*type='get'.*?</iq>", 20)
    req = req[req.rindex("<iq"):]
    assert "from='%s/Alice'" % RB in req, req
    assert "alice@a.example" not in req and "isode.com" not in req, req
    rid = re.search(r"<iq[^>]*\bid='([^']+)'", req).group(1)
    assert rid != "v1"
    bob.send("<iq type='result' id='%s' to='%s/Alice'><query "
             "xmlns='jabber:iq:version'><name>ship</name></query></iq>"
             % (rid, RB))
    res = alice.read_until(r"<iq[^>]*id='v1'.*?(/>|</iq>)", 20)
    res = res[res.rindex("<iq"):]
    assert "type='result'" in res and "from='%s/Bob'" % RA in res, res
    assert "<name>ship</name>" in res and "bob@b.example" not in res, res

    # the other way, and an answer with an error
    bob.send("<iq type='get' id='v2' to='%s/Alice'><query "
             "xmlns='jabber:iq:version'/></iq>" % RB)
    req = alice.read_until(r"<iq[^>]*type='get'.*?</iq>", 20)
    req = req[req.rindex("<iq"):]
    assert "from='%s/Bob'" % RA in req, req
    rid = re.search(r"<iq[^>]*\bid='([^']+)'", req).group(1)
    alice.send("<iq type='error' id='%s' to='%s/Bob'><query "
               "xmlns='jabber:iq:version'/><error type='cancel'>"
               "<service-unavailable xmlns='urn:ietf:params:xml:ns:"
               "xmpp-stanzas'/></error></iq>" % (rid, RA))
    res = bob.read_until(r"<iq[^>]*id='v2'.*?</iq>", 20)
    res = res[res.rindex("<iq"):]
    assert "type='error'" in res and "service-unavailable" in res, res
    assert "from='%s/Alice'" % RB in res, res
