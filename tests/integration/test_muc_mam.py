"""XEP-0313 queries on a room's archive: every message with its stanza id
(the same as the live copy), XEP-0059 paging both ways, time bounds, the
form, and who may read it."""
import re
import shutil
import subprocess

import pytest

from conftest import Server
from test_c2s import Raw

MUC = "http://jabber.org/protocol/muc"
MAM = "urn:xmpp:mam:2"
ROOM = "room@conference.example.net"


@pytest.fixture
def muc_server(tmp_path):
    s = Server(tmp_path, modules=("c2s", "im", "server"),
               extra='Component "conference.example.net" "muc"\n')
    for u in ("alice", "bob", "eve"):
        s.adduser("%s@example.net" % u, "pw-" + u)
    s.start()
    yield s
    assert s.stop() == 0


def online(server, user):
    c = Raw(server.port)
    c.login(user, "pw-" + user, "r")
    c.send("<presence/>")
    c.read_until(r"<presence[^>]*/>|</presence>")
    return c


def query(c, qid, form="", rsm=""):
    c.send("<iq type='set' id='%s' to='%s'><query xmlns='%s' queryid='%s'>"
           "%s%s</query></iq>" % (qid, ROOM, MAM, qid, form, rsm))
    text = c.read_until(r"<iq[^>]*id='%s'[^>]*(/>|>.*?</iq>)" % qid)
    bodies = re.findall(r"<result xmlns='%s' queryid='%s' id='(\d+)'>.*?"
                        r"<body>([^<]*)</body>" % (MAM, qid), text)
    return text, bodies


def test_room_archive_query_and_paging(muc_server):
    alice = online(muc_server, "alice")
    alice.send("<presence to='%s/Alice'><x xmlns='%s'/></presence>"
               % (ROOM, MUC))
    alice.read_until(r"<subject")
    alice.send("<iq type='set' id='cfg' to='%s'><query xmlns='%s#owner'>"
               "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
               % (ROOM, MUC))
    alice.read_until(r"id='cfg'")
    live = {}
    for i in range(7):
        alice.send("<message to='%s' type='groupchat'><body>m%d</body>"
                   "</message>" % (ROOM, i))
        m = alice.read_until(r"<body>m%d</body>.*?</message>" % i)
        live["m%d" % i] = re.search(r"<stanza-id xmlns='urn:xmpp:sid:0' "
                                    r"id='(\d+)'", m).group(1)

    text, got = query(alice, "q1")
    assert [b for _, b in got] == ["m%d" % i for i in range(7)]
    assert all(live[b] == i for i, b in got)      # ids are the stanza ids
    assert "complete='true'" in text
    assert "urn:xmpp:forward:0" in text and "urn:xmpp:delay" in text

    # the last page of 3, then the page before it (XEP-0059 §2.5)
    rsm = "<set xmlns='http://jabber.org/protocol/rsm'><max>3</max>%s</set>"
    text, got = query(alice, "q2", rsm=rsm % "<before/>")
    assert [b for _, b in got] == ["m4", "m5", "m6"]
    assert "complete='true'" not in text
    first = re.search(r"<first>(\d+)</first>", text).group(1)
    text, got = query(alice, "q3", rsm=rsm % ("<before>%s</before>" % first))
    assert [b for _, b in got] == ["m1", "m2", "m3"]
    # forwards from an id
    text, got = query(alice, "q4", rsm=rsm % ("<after>%s</after>"
                                              % live["m4"]))
    assert [b for _, b in got] == ["m5", "m6"]
    assert "complete='true'" in text
    # after-id in the form
    form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
            "<value>%s</value></field><field var='after-id'><value>%s"
            "</value></field></x>" % (MAM, live["m5"]))
    _, got = query(alice, "q5", form=form)
    assert [b for _, b in got] == ["m6"]
    # a time window that holds nothing
    form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
            "<value>%s</value></field><field var='end'><value>"
            "2001-01-01T00:00:00Z</value></field></x>" % MAM)
    text, got = query(alice, "q6", form=form)
    assert got == [] and "complete='true'" in text
    # an id that is not one
    text, _ = query(alice, "q7", rsm=rsm % "<after>nope</after>")
    assert "item-not-found" in text


def test_room_archive_is_closed_to_outcasts_and_nonmembers(muc_server):
    alice = online(muc_server, "alice")
    alice.send("<presence to='%s/Alice'><x xmlns='%s'/></presence>"
               % (ROOM, MUC))
    alice.read_until(r"<subject")
    alice.send("<iq type='set' id='cfg' to='%s'><query xmlns='%s#owner'>"
               "<x xmlns='jabber:x:data' type='submit'><field var='muc#"
               "roomconfig_membersonly'><value>1</value></field></x>"
               "</query></iq>" % (ROOM, MUC))
    alice.read_until(r"id='cfg'")
    alice.send("<message to='%s' type='groupchat'><body>secret</body>"
               "</message>" % ROOM)
    alice.read_until("secret")
    eve = online(muc_server, "eve")
    text, got = query(eve, "e1")
    assert "forbidden" in text and got == []
    # a member may read it
    alice.send("<iq type='set' id='mem' to='%s'><query xmlns='%s#admin'>"
               "<item jid='bob@example.net' affiliation='member'/></query>"
               "</iq>" % (ROOM, MUC))
    alice.read_until(r"id='mem'")
    bob = online(muc_server, "bob")
    _, got = query(bob, "b1")
    assert [b for _, b in got] == ["secret"]


@pytest.mark.skipif(shutil.which("go-sendxmpp") is None,
                    reason="go-sendxmpp is not installed")
def test_second_client_stack_in_a_room(muc_server):
    """go-sendxmpp (Go's XMPP library) joins the room, speaks, leaves; the
    room's archive has it."""
    alice = online(muc_server, "alice")
    alice.send("<presence to='%s/Alice'><x xmlns='%s'/></presence>"
               % (ROOM, MUC))
    alice.read_until(r"<subject")
    alice.send("<iq type='set' id='cfg' to='%s'><query xmlns='%s#owner'>"
               "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
               % (ROOM, MUC))
    alice.read_until(r"id='cfg'")
    r = subprocess.run(["go-sendxmpp", "-n", "-u", "bob@example.net", "-p",
                        "pw-bob", "-j", "127.0.0.1:%d" % muc_server.port,
                        "-c", "-a", "Gopher", ROOM],
                       input="hello from go\n", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = alice.read_until(r"hello from go.*?</message>", 20)
    assert "from='%s/Gopher'" % ROOM in text
    alice.read_until(r"from='%s/Gopher'[^>]*type='unavailable'" % ROOM, 20)
    _, got = query(alice, "g1")
    assert [b for _, b in got] == ["hello from go"]


def test_iq_to_an_occupant_goes_through_the_room(muc_server):
    """XEP-0045 §17.4: an IQ to an occupant JID reaches that occupant from
    the sender's occupant JID, and the answer comes back the same way;
    neither learns the other's real JID."""
    alice = online(muc_server, "alice")
    alice.send("<presence to='%s/Alice'><x xmlns='%s'/></presence>"
               % (ROOM, MUC))
    alice.read_until(r"<subject")
    alice.send("<iq type='set' id='cfg' to='%s'><query xmlns='%s#owner'>"
               "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
               % (ROOM, MUC))
    alice.read_until(r"id='cfg'")
    bob = online(muc_server, "bob")
    bob.send("<presence to='%s/Bob'><x xmlns='%s'/></presence>"
             % (ROOM, MUC))
    bob.read_until(r"<subject")
    bob.send("<iq type='get' id='v1' to='%s/Alice'><query "
             "xmlns='jabber:iq:version'/></iq>" % ROOM)
    req = re.search(r"<iq[^>]*type='get'[^>]*>.*?</iq>", alice.read_until(
        r"<iq[^>]*type='get'[^>]*>.*?</iq>")).group(0)
    assert "from='%s/Bob'" % ROOM in req and "bob@" not in req, req
    rid = re.search(r"<iq[^>]*id='([^']+)'", req).group(1)
    assert rid != "v1"
    alice.send("<iq type='result' id='%s' to='%s/Bob'><query xmlns='"
               "jabber:iq:version'><name>raw</name></query></iq>"
               % (rid, ROOM))
    res = re.search(r"<iq[^>]*id='v1'[^>]*>.*?</iq>", bob.read_until(
        r"<iq[^>]*id='v1'[^>]*>.*?</iq>")).group(0)
    assert "from='%s/Alice'" % ROOM in res and "<name>raw</name>" in res
    assert "alice@" not in res
    # an answer nobody asked for goes nowhere; a nick not there: error
    alice.send("<iq type='result' id='muc999' to='%s/Bob'/>" % ROOM)
    bob.send("<iq type='get' id='v2' to='%s/Nobody'><ping "
             "xmlns='urn:xmpp:ping'/></iq>" % ROOM)
    err = bob.read_until(r"<iq[^>]*id='v2'[^>]*>.*?</iq>")
    assert "item-not-found" in err
    assert "muc999" not in err


def test_voice_request_and_approval(muc_server):
    """XEP-0045 §7.13 and §8.6: a visitor in a moderated room asks for
    voice; the moderator gets the approval form, submits it, and the
    visitor becomes a participant who may speak."""
    alice = online(muc_server, "alice")
    alice.send("<presence to='%s/Alice'><x xmlns='%s'/></presence>"
               % (ROOM, MUC))
    alice.read_until(r"<subject")
    alice.send("<iq type='set' id='cfg' to='%s'><query xmlns='%s#owner'>"
               "<x xmlns='jabber:x:data' type='submit'><field var='muc#"
               "roomconfig_moderatedroom'><value>1</value></field></x>"
               "</query></iq>" % (ROOM, MUC))
    alice.read_until(r"id='cfg'")
    bob = online(muc_server, "bob")
    bob.send("<presence to='%s/Bob'><x xmlns='%s'/></presence>"
             % (ROOM, MUC))
    assert "role='visitor'" in bob.read_until(r"<subject")
    request = ("<message to='%s'><x xmlns='jabber:x:data' type='submit'>"
               "<field var='FORM_TYPE'><value>http://jabber.org/protocol/"
               "muc#request</value></field><field var='muc#role'><value>"
               "participant</value></field></x></message>" % ROOM)
    bob.send(request)
    form = alice.read_until(r"<message[^>]*from='%s'[^>]*>.*?"
                            r"muc#request_allow.*?</message>" % ROOM)
    assert "<value>Bob</value>" in form and "type='form'" in form
    alice.send("<message to='%s'><x xmlns='jabber:x:data' type='submit'>"
               "<field var='FORM_TYPE'><value>http://jabber.org/protocol/"
               "muc#request</value></field><field var='muc#roomnick'>"
               "<value>Bob</value></field><field var='muc#request_allow'>"
               "<value>true</value></field></x></message>" % ROOM)
    p = bob.read_until(r"<presence[^>]*from='%s/Bob'.*?</presence>" % ROOM)
    assert "role='participant'" in p and "<actor nick='Alice'/>" in p
    bob.send("<message to='%s' type='groupchat'><body>thanks</body>"
             "</message>" % ROOM)
    alice.read_until("thanks")


def test_hostile_iqs_and_a_ghost_bounced_mid_broadcast(muc_server):
    """An IQ without a type gets bad-request (RFC 6120 §8.2.3) and breaks
    nothing.  A ghost occupant (its server could not track the room among
    its directed presences, and its session ended) is bounced while the
    room sends to everyone: it is removed afterwards with status 333, and
    the room goes on."""
    alice = online(muc_server, "alice")
    alice.send("<iq id='nt' to='conference.example.net'><query xmlns='"
               "http://jabber.org/protocol/disco#info'/></iq>")
    assert "bad-request" in alice.read_until(r"<iq[^>]*id='nt'.*?</iq>")
    alice.send("<iq id='nt2' to='%s/x'><ping xmlns='urn:xmpp:ping'/></iq>"
               % ROOM)
    assert "bad-request" in alice.read_until(r"<iq[^>]*id='nt2'.*?</iq>")
    alice.send("<presence to='%s/Alice'><x xmlns='%s'/></presence>"
               % (ROOM, MUC))
    alice.read_until(r"<subject")
    alice.send("<iq type='set' id='cfg' to='%s'><query xmlns='%s#owner'>"
               "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
               % (ROOM, MUC))
    alice.read_until(r"id='cfg'")
    eve = online(muc_server, "eve")
    # more directed presences than the server keeps: the room's is not
    eve.send("".join("<presence to='nobody@example.net/p%d'/>" % i
                     for i in range(1100)))
    eve.send("<presence to='%s/Eve'><x xmlns='%s'/></presence>"
             % (ROOM, MUC))
    eve.read_until(r"<subject")
    alice.read_until(r"from='%s/Eve'" % ROOM)
    eve.sock.close()
    import time
    time.sleep(1)
    alice.send("<message to='%s' type='groupchat'><body>anyone?</body>"
               "</message>" % ROOM)
    alice.read_until("anyone[?]")
    gone = alice.read_until(r"from='%s/Eve'[^>]*type='unavailable'.*?"
                            r"</presence>" % ROOM, 15)
    assert "<status code='333'/>" in gone, gone
    alice.send("<message to='%s' type='groupchat'><body>still here"
               "</body></message>" % ROOM)
    alice.read_until("still here")
