"""mod_muc (XEP-0045 Multi-User Chat, version 1.35.5 in
/work/shared/specs/xep-0045.xml) against slixmpp clients: room creation
and locking (§10.1), entering (§7.2) with the order of events (§7.1),
join errors, discussion history (§7.2.13, §7.2.14) and the subject
(§7.2.15, §8.1), groupchat and private messages (§7.4, §7.5) with
XEP-0359 stanza-ids and XEP-0421 occupant-ids, exiting (§7.14), service
discovery (§6) and persistent rooms across a restart.

Section numbers are those of the spec's version above (§7.1 Order of
Events, §7.2.1 Basic MUC Protocol ... §7.2.8 Nickname Conflict, §7.2.9 Max
Users, §7.2.10 Locked Room, §7.2.13 Discussion History, §7.2.14 Managing
Discussion History, §7.2.15 Room Subject).

Stanzas are built by hand (slixmpp's xep_0045 plugin hides the status
codes, the order and the errors these tests check); every message and
presence a client receives is recorded in arrival order."""
import asyncio
import datetime
import os
import re
import time

import pytest
import slixmpp
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import TOP, Server
from test_im import Client, run_async

MUC_MODULE = os.path.join(TOP, "modules", "mod_muc.la")
pytestmark = pytest.mark.skipif(
    not os.path.exists(MUC_MODULE),
    reason="modules/mod_muc.la is not built: the muc module is not there")

SERVICE = "conference.example.net"
NS_CLIENT = "jabber:client"
NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = NS_MUC + "#user"
NS_OWNER = NS_MUC + "#owner"
NS_XDATA = "jabber:x:data"
NS_DELAY = "urn:xmpp:delay"
NS_SID = "urn:xmpp:sid:0"
NS_OID = "urn:xmpp:occupant-id:0"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
ROOMCONFIG = NS_MUC + "#roomconfig"
HISTORY_FIELDS = {"muc#maxhistoryfetch", "muc#roomconfig_historylength"}
# XEP-0082 DateTime
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"
                   r"(Z|[+-]\d\d:\d\d)$")


def R(name):
    """The room JID of a room called name."""
    return "%s@%s" % (name, SERVICE)


# --- reading stanzas ---------------------------------------------------

def frm(st):
    return str(st["from"])


def from_room(st, room):
    return st["from"].bare == room


def muc_x(st):
    return st.xml.find("{%s}x" % NS_USER)


def item(st):
    x = muc_x(st)
    return x.find("{%s}item" % NS_USER) if x is not None else None


def codes(st):
    x = muc_x(st)
    if x is None:
        return set()
    return {int(s.get("code")) for s in x.findall("{%s}status" % NS_USER)}


def error_of(st):
    """(condition, type) of a stanza's error, or (None, None)."""
    e = st.xml.find("{%s}error" % NS_CLIENT)
    if e is None:
        return None, None
    conds = [c.tag.split("}")[1] for c in e
             if c.tag.startswith("{%s}" % NS_STANZAS) and
             not c.tag.endswith("}text")]
    return (conds[0] if conds else None), e.get("type")


def body(st):
    b = st.xml.find("{%s}body" % NS_CLIENT)
    return b.text if b is not None else None


def is_subject(st):
    """§7.2.15/§8.1: a message with <subject/> and no <body/>."""
    return (st.name == "message" and st["type"] == "groupchat"
            and st.xml.find("{%s}subject" % NS_CLIENT) is not None
            and st.xml.find("{%s}body" % NS_CLIENT) is None)


def subject_text(st):
    return st.xml.find("{%s}subject" % NS_CLIENT).text or ""


def show(sts):
    return "\n".join(str(s) for s in sts)


def stanza_ids(st, by):
    return [s.get("id") for s in st.xml.findall("{%s}stanza-id" % NS_SID)
            if s.get("by") == by]


def occupant_ids(st):
    return [o.get("id") for o in st.xml.findall("{%s}occupant-id" % NS_OID)]


# --- clients -----------------------------------------------------------

class Occupant(Client):
    """test_im's Client, recording every <message/> (also those without a
    body, such as subjects, which slixmpp's 'message' event leaves out)
    and <presence/> in arrival order: .got for expect(), which removes
    what it matched, and .log, which keeps everything."""

    def __init__(self, server, jid):
        super().__init__(server, jid)
        for ev in ("presence", "message", "message_error"):
            self.c.del_event_handler(ev, self.got.append)
        self.log = []
        for name in ("message", "presence"):
            self.c.register_handler(Callback(
                "muc-test %s" % name,
                MatchXPath("{%s}%s" % (NS_CLIENT, name)), self._record))

    def _record(self, st):
        self.got.append(st)
        self.log.append(st)

    # presence to rooms

    def send_join(self, room, nick, history=None, password=None, x=True):
        p = self.c.make_presence(pto="%s/%s" % (room, nick) if nick
                                 else room)
        if x:
            mx = ET.SubElement(p.xml, "{%s}x" % NS_MUC)
            if history is not None:
                ET.SubElement(mx, "{%s}history" % NS_MUC,
                              {k: str(v) for k, v in history.items()})
            if password is not None:
                ET.SubElement(mx, "{%s}password" % NS_MUC).text = password
        p.send()

    async def enter(self, room, nick, timeout=10, **kw):
        """Joins and returns, in arrival order, everything from the room
        up to and including the subject message, which ends the join
        sequence (§7.1); fails on an error presence."""
        start = len(self.log)
        self.send_join(room, nick, **kw)
        deadline = time.time() + timeout
        while time.time() < deadline:
            seq = [s for s in self.log[start:] if from_room(s, room)]
            for i, st in enumerate(seq):
                if st.name == "presence" and st["type"] == "error":
                    raise AssertionError("%s: join of %s/%s refused:\n%s" % (
                        self.jid, room, nick, st))
                if is_subject(st):
                    for s in seq[:i + 1]:
                        if s in self.got:
                            self.got.remove(s)
                    return seq[:i + 1]
            await asyncio.sleep(0.02)
        raise AssertionError("%s: join of %s/%s did not end with a subject "
                             "(§7.1); got from the room:\n%s" % (
                                 self.jid, room, nick, show(
                                     [s for s in self.log[start:]
                                      if from_room(s, room)])))

    async def join_error(self, room, nick, **kw):
        """Sends a join that the room must refuse; returns the error
        presence."""
        self.send_join(room, nick, **kw)
        return await self.expect(
            lambda s: s.name == "presence" and s["type"] == "error"
            and from_room(s, room), "error presence from %s" % room)

    async def self_presence(self, room, nick, ptype="available"):
        """The room's presence for this client's own occupant (110)."""
        occ = "%s/%s" % (room, nick)
        return await self.expect(
            lambda s: s.name == "presence" and frm(s) == occ
            and s["type"] == ptype and 110 in codes(s),
            "self-presence (110) %s from %s" % (ptype, occ))

    async def leave(self, room, nick):
        p = self.c.make_presence(pto="%s/%s" % (room, nick),
                                 ptype="unavailable")
        p.send()
        return await self.self_presence(room, nick, "unavailable")

    async def create(self, room, nick, config=None):
        """§10.1.1: creates the room, then unlocks it, as an instant room
        (§10.1.2) or with the config form (§10.1.3) changed by config.
        Returns the creator's self-presence."""
        self.send_join(room, nick)
        p = await self.self_presence(room, nick)
        assert 201 in codes(p), "no 201 on creating %s:\n%s" % (room, p)
        if config is None:
            await self.instant(room)
        else:
            await self.configure(room, **config)
        return p

    # messages

    def groupchat(self, room, text=None, subject=None, mid=None,
                  extra=()):
        m = self.c.make_message(mto=room, mtype="groupchat")
        if mid:
            m["id"] = mid
        if text is not None:
            ET.SubElement(m.xml, "{%s}body" % NS_CLIENT).text = text
        if subject is not None:
            ET.SubElement(m.xml, "{%s}subject" % NS_CLIENT).text = subject
        for el in extra:
            m.xml.append(el)
        m.send()

    def private(self, occupant_jid, text):
        m = self.c.make_message(mto=occupant_jid, mbody=text, mtype="chat")
        ET.SubElement(m.xml, "{%s}x" % NS_USER)
        m.send()

    async def expect_body(self, text, frm_=None, mtype=None):
        return await self.expect(
            lambda s: s.name == "message" and body(s) == text
            and s["type"] != "error"
            and (frm_ is None or frm(s) == frm_)
            and (mtype is None or s["type"] == mtype),
            "message %r" % text)

    async def expect_error(self, name, to):
        """The error reply to a stanza of kind name sent to to."""
        return await self.expect(
            lambda s: s.name == name and s["type"] == "error"
            and (frm(s) == to or s["from"].bare == to),
            "%s error from %s" % (name, to))

    # IQs

    async def iq(self, to, itype, ns, child=None):
        """Sends <iq type=itype><query xmlns=ns>child</query></iq>; returns
        the reply, result or error."""
        iq = self.c.Iq()        # a fresh id (make_iq's is "0")
        iq["to"], iq["type"] = to, itype
        q = ET.SubElement(iq.xml, "{%s}query" % ns)
        if child is not None:
            q.append(child)
        try:
            return await iq.send(timeout=10)
        except slixmpp.exceptions.IqError as e:
            return e.iq

    async def instant(self, room):
        """§10.1.2: accept the default configuration."""
        r = await self.iq(room, "set", NS_OWNER,
                          ET.Element("{%s}x" % NS_XDATA, type="submit"))
        assert r["type"] == "result", "instant room refused:\n%s" % r
        return r

    async def config_form(self, room):
        r = await self.iq(room, "get", NS_OWNER)
        assert r["type"] == "result", "config form refused:\n%s" % r
        x = r.xml.find("{%s}query/{%s}x" % (NS_OWNER, NS_XDATA))
        assert x is not None, "no jabber:x:data form:\n%s" % r
        return x

    async def configure(self, room, **changes):
        """Gets the room's config form and submits it with every field as
        the form had it but those in changes (a name without '#' means
        muc#roomconfig_NAME; a value is a string or a list)."""
        form = await self.config_form(room)
        want = {(k if "#" in k else "muc#roomconfig_" + k):
                (v if isinstance(v, list) else [str(v)])
                for k, v in changes.items()}
        have = form_values(form)
        missing = set(want) - set(have)
        assert not missing, "the config form has no %s:\n%s" % (
            sorted(missing), ET.tostring(form).decode())
        sub = ET.Element("{%s}x" % NS_XDATA, type="submit")
        for f in form.findall("{%s}field" % NS_XDATA):
            var = f.get("var")
            if not var or f.get("type") == "fixed":
                continue
            out = ET.SubElement(sub, "{%s}field" % NS_XDATA, var=var)
            for v in want.get(var, have[var]):
                ET.SubElement(out, "{%s}value" % NS_XDATA).text = v
        r = await self.iq(room, "set", NS_OWNER, sub)
        assert r["type"] == "result", "config submit refused:\n%s" % r
        return r


def form_values(x):
    """{var: [values]} of a jabber:x:data form."""
    return {f.get("var"): [v.text or "" for v in
                           f.findall("{%s}value" % NS_XDATA)]
            for f in x.findall("{%s}field" % NS_XDATA) if f.get("var")}


def truthy(values):
    return values in (["1"], ["true"])


async def login(server, *users):
    return [await Occupant(server, "%s@example.net/%s" % (u, u[0] * 3))
            .login() for u in users]


async def close_all(*clients):
    for c in clients:
        await c.close()


async def silent(client, pred, what, marker_wait):
    """Asserts that nothing matching pred reached client before the
    awaitable marker_wait (a later stanza on the same path) did."""
    await marker_wait
    bad = [s for s in client.got if pred(s)]
    assert not bad, "%s got %s:\n%s" % (client.jid, what, show(bad))


@pytest.fixture
def muc_server(tmp_path):
    """skywaved with the room service conference.example.net; users
    alice, bob and carol ('pw-NAME')."""
    s = Server(tmp_path, modules=("c2s", "im", "server", "muc"),
               extra='Component "%s" "muc"\n' % SERVICE)
    for u in ("alice", "bob", "carol"):
        s.adduser("%s@example.net" % u, "pw-" + u)
    s.start()
    yield s
    rc = s.stop()
    assert rc == 0, "skywaved exited with %r" % rc


# --- 1. creating a room --------------------------------------------------

def test_create_instant_room_locked_until_accepted(muc_server):
    """§10.1.1: the first presence creates the room; the creator's
    self-presence has affiliation owner, role moderator, 110 and 201.
    §7.2.10/§10.1.1: the room is locked (item-not-found, cancel) until
    the owner accepts the instant room (§10.1.2), then others enter."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("instant")
        alice.send_join(room, "Alice")
        p = await alice.self_presence(room, "Alice")
        assert frm(p) == room + "/Alice"
        assert codes(p) >= {110, 201}, p
        it = item(p)
        assert it is not None, p
        assert (it.get("affiliation"), it.get("role")) == \
            ("owner", "moderator"), p
        assert len(p.xml.findall("{%s}x" % NS_USER)) == 1, p

        err = await bob.join_error(room, "Bob")
        assert error_of(err) == ("item-not-found", "cancel"), err
        assert frm(err) == room + "/Bob", err

        await alice.instant(room)
        seq = await bob.enter(room, "Bob")
        pres = [s for s in seq if s.name == "presence"]
        assert [frm(s) for s in pres] == [room + "/Alice", room + "/Bob"], \
            show(seq)
        assert 201 not in codes(pres[-1]), pres[-1]
        await alice.expect_presence("available", room + "/Bob")
        await close_all(alice, bob)
    run_async(go())


def test_reserved_room_config_form(muc_server):
    """§10.1.3: the owner's get of the muc#owner query is a form of type
    'form' with FORM_TYPE muc#roomconfig and the room's options; while it
    is not submitted the room stays locked; a submitted form unlocks it
    and its values are the room's config (§10.2: the next form shows
    them).  A non-owner's owner query is forbidden (auth, §10.2)."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("reserved")
        alice.send_join(room, "Alice")
        p = await alice.self_presence(room, "Alice")
        assert codes(p) >= {110, 201}, p

        form = await alice.config_form(room)
        assert form.get("type") == "form", ET.tostring(form)
        vals = form_values(form)
        ft = [f for f in form.findall("{%s}field" % NS_XDATA)
              if f.get("var") == "FORM_TYPE"]
        assert ft and ft[0].get("type") == "hidden", ET.tostring(form)
        assert vals["FORM_TYPE"] == [ROOMCONFIG]
        for name in ("roomname", "roomdesc", "persistentroom", "publicroom",
                     "membersonly", "moderatedroom", "passwordprotectedroom",
                     "roomsecret", "maxusers", "whois", "changesubject"):
            assert "muc#roomconfig_" + name in vals, \
                "no muc#roomconfig_%s in\n%s" % (name, ET.tostring(form))
        # the history length: muc#maxhistoryfetch is the field §15.5.3
        # registers (muc#roomconfig_historylength is Prosody's name)
        hist_field = HISTORY_FIELDS & set(vals)
        assert hist_field, "no history length field (%s) in\n%s" % (
            sorted(HISTORY_FIELDS), ET.tostring(form))
        hist_field = hist_field.pop()

        # still locked while the form is not submitted
        err = await bob.join_error(room, "Bob")
        assert error_of(err) == ("item-not-found", "cancel"), err

        await alice.configure(room, roomname="The Reserved Room",
                              roomdesc="for testing", changesubject="1",
                              whois="anyone", **{hist_field: "7"})
        vals = form_values(await alice.config_form(room))
        assert vals["muc#roomconfig_roomname"] == ["The Reserved Room"]
        assert vals["muc#roomconfig_roomdesc"] == ["for testing"]
        assert truthy(vals["muc#roomconfig_changesubject"]), vals
        assert vals["muc#roomconfig_whois"] == ["anyone"]
        assert vals[hist_field] == ["7"]

        seq = await bob.enter(room, "Bob")
        assert 110 in codes([s for s in seq if s.name == "presence"][-1])
        # an occupant, but not an owner
        r = await bob.iq(room, "get", NS_OWNER)
        assert r["type"] == "error", r
        assert error_of(r) == ("forbidden", "auth"), r
        r = await bob.iq(room, "set", NS_OWNER,
                         ET.Element("{%s}x" % NS_XDATA, type="submit"))
        assert error_of(r) == ("forbidden", "auth"), r
        await close_all(alice, bob)
    run_async(go())


# --- 2. entering a room --------------------------------------------------

def test_join_order_roles_and_semianonymous_jids(muc_server):
    """§7.1 and §7.2.2: a joiner gets the presence of every occupant
    (with a muc#user item), then its own with 110, then history
    (§7.2.13, delayed, from the room), then the subject (§7.2.15, empty
    if none, no body) last.  Others get the new presence without 110.
    §7.2.4: in a semi-anonymous room (whois 'moderators', the default)
    only moderators see the 'jid'; no 100 (§7.2.3).  A presence has one
    muc#user <x/> (§7.2.2); XEP-0421 §4: history messages carry the
    sender's occupant-id too."""
    async def go():
        alice, bob, carol = await login(muc_server, "alice", "bob", "carol")
        room = R("order")
        await alice.create(room, "Alice")
        vals = form_values(await alice.config_form(room))
        assert vals["muc#roomconfig_whois"] == ["moderators"], vals

        seq = await bob.enter(room, "Bob")
        assert [(s.name, frm(s)) for s in seq] == [
            ("presence", room + "/Alice"), ("presence", room + "/Bob"),
            ("message", frm(seq[-1]))], show(seq)
        a, me, subj = seq
        assert 110 not in codes(a), a
        ia = item(a)
        assert (ia.get("affiliation"), ia.get("role")) == \
            ("owner", "moderator"), a
        assert ia.get("jid") is None, "a participant saw a real JID:\n%s" % a
        assert codes(me) >= {110} and 100 not in codes(me), me
        assert (item(me).get("affiliation"), item(me).get("role")) == \
            ("none", "participant"), me
        assert subject_text(subj) == "", subj

        # alice, a moderator, sees bob's real JID, and no 110
        p = await alice.expect_presence("available", room + "/Bob")
        assert 110 not in codes(p), p
        assert item(p).get("jid") == bob.jid, p
        assert item(p).get("role") == "participant", p

        for i in (1, 2):
            alice.groupchat(room, "history %d" % i)
            await bob.expect_body("history %d" % i, room + "/Alice")

        seq = await carol.enter(room, "Carol")
        kinds = [(s.name, frm(s)) for s in seq]
        others = {room + "/Alice", room + "/Bob"}
        assert {f for n, f in kinds[:2]} == others and \
            all(n == "presence" for n, f in kinds[:2]), show(seq)
        assert kinds[2] == ("presence", room + "/Carol"), show(seq)
        assert 110 in codes(seq[2]), seq[2]
        for s in seq[:2]:
            assert 110 not in codes(s) and item(s) is not None, s
            assert item(s).get("jid") is None, s
        for s in seq[:3]:
            assert len(s.xml.findall("{%s}x" % NS_USER)) == 1, s
        assert is_subject(seq[-1]) and subject_text(seq[-1]) == ""
        alice_oid = occupant_ids([s for s in seq[:2]
                                  if frm(s) == room + "/Alice"][0])
        p = await bob.expect_presence("available", room + "/Carol")
        assert 110 not in codes(p) and item(p).get("jid") is None, p
        await close_all(alice, bob, carol)
        hist = seq[3:-1]
        assert [body(s) for s in hist] == ["history 1", "history 2"], \
            show(seq)
        for h in hist:
            assert h["type"] == "groupchat" and frm(h) == room + "/Alice", h
            d = h.xml.find("{%s}delay" % NS_DELAY)
            assert d is not None, h
            assert d.get("from") == room, h
            assert STAMP.match(d.get("stamp") or ""), h
            assert occupant_ids(h) == alice_oid and len(alice_oid) == 1, h
    run_async(go())


def test_nonanonymous_room_status_100_and_jids(muc_server):
    """§7.2.3: in a non-anonymous room (whois 'anyone') everyone sees
    every occupant's full JID, and the joiner's self-presence carries
    100 with 110."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("open")
        await alice.create(room, "Alice", {"whois": "anyone"})
        seq = await bob.enter(room, "Bob")
        pres = [s for s in seq if s.name == "presence"]
        assert [frm(s) for s in pres] == [room + "/Alice", room + "/Bob"]
        assert item(pres[0]).get("jid") == alice.jid, pres[0]
        assert codes(pres[1]) >= {100, 110}, pres[1]
        p = await alice.expect_presence("available", room + "/Bob")
        assert item(p).get("jid") == bob.jid, p
        await close_all(alice, bob)
    run_async(go())


# --- 3. errors on entering ------------------------------------------------

def test_join_errors_nick_and_conflict(muc_server):
    """§7.2.1: presence to the room's bare JID (no nick) is jid-malformed
    (modify); §7.2.8: a nick another user has is conflict (cancel).
    Neither makes an occupant."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("errs")
        await alice.create(room, "Alice")
        err = await bob.join_error(room, None)
        assert error_of(err) == ("jid-malformed", "modify"), err
        err = await bob.join_error(room, "Alice")
        assert error_of(err) == ("conflict", "cancel"), err
        assert frm(err) == room + "/Alice", err
        # bob is no occupant: his groupchat message is refused (§7.4)
        bob.groupchat(room, "am I in?")
        err = await bob.expect_error("message", room)
        assert error_of(err)[0] == "not-acceptable", err
        alice.groupchat(room, "marker")
        await silent(alice, lambda s: s.name == "presence"
                     and from_room(s, room) and frm(s) != room + "/Alice",
                     "a new occupant's presence",
                     alice.expect_body("marker", room + "/Alice"))
        await close_all(alice, bob)
    run_async(go())


def test_password_protected_room(muc_server):
    """§7.2.5: no or a wrong <password/> is not-authorized (auth); the
    right one enters."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("secret")
        await alice.create(room, "Alice", {"passwordprotectedroom": "1",
                                           "roomsecret": "open sesame"})
        err = await bob.join_error(room, "Bob")
        assert error_of(err) == ("not-authorized", "auth"), err
        err = await bob.join_error(room, "Bob", password="wrong")
        assert error_of(err) == ("not-authorized", "auth"), err
        seq = await bob.enter(room, "Bob", password="open sesame")
        assert 110 in codes([s for s in seq if s.name == "presence"][-1])
        await close_all(alice, bob)
    run_async(go())


def test_members_only_room(muc_server):
    """§7.2.6: a user not on the member list is refused with
    registration-required (auth); one with an affiliation (the owner, from
    another resource) enters."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("members")
        await alice.create(room, "Alice", {"membersonly": "1"})
        err = await bob.join_error(room, "Bob")
        assert error_of(err) == ("registration-required", "auth"), err
        alice2 = await Occupant(muc_server,
                                "alice@example.net/other").login()
        seq = await alice2.enter(room, "Alice2")
        me = [s for s in seq if s.name == "presence"][-1]
        assert 110 in codes(me) and item(me).get("affiliation") == "owner", \
            me
        await close_all(alice, bob, alice2)
    run_async(go())


def test_max_users(muc_server):
    """§7.2.9: a full room refuses a new (non-owner) occupant with
    service-unavailable (wait)."""
    async def go():
        alice, bob, carol = await login(muc_server, "alice", "bob", "carol")
        room = R("small")
        alice.send_join(room, "Alice")
        await alice.self_presence(room, "Alice")
        form = await alice.config_form(room)
        f = [f for f in form.findall("{%s}field" % NS_XDATA)
             if f.get("var") == "muc#roomconfig_maxusers"][0]
        opts = [o.findtext("{%s}value" % NS_XDATA)
                for o in f.findall("{%s}option" % NS_XDATA)]
        nums = sorted(int(o) for o in opts if o and o.isdigit())
        limit = 2 if not nums or 2 in nums else nums[0]
        await alice.configure(room, maxusers=str(limit))
        extra = []
        for i in range(limit - 1):      # fill it up with bobs
            c = bob if i == 0 else await Occupant(
                muc_server, "bob@example.net/b%d" % i).login()
            if i:
                extra.append(c)
            await c.enter(room, "Bob%d" % i)
        err = await carol.join_error(room, "Carol")
        assert error_of(err) == ("service-unavailable", "wait"), err
        await close_all(alice, bob, carol, *extra)
    run_async(go())


# --- 4. history ----------------------------------------------------------

def test_history_limits(muc_server):
    """§7.2.14: <history/> in the join limits the discussion history:
    seconds, since, maxstanzas, and maxchars='0' for none; without it the
    room's own limit (muc#maxhistoryfetch) applies.  History is
    always followed by the subject (§7.1)."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("hist")
        await alice.create(room, "Alice")
        for i in (1, 2, 3):
            alice.groupchat(room, "m%d" % i)
            await alice.expect_body("m%d" % i, room + "/Alice")
        t3 = time.time()
        await asyncio.sleep(4)
        for i in (4, 5):
            alice.groupchat(room, "m%d" % i)
            await alice.expect_body("m%d" % i, room + "/Alice")

        def history(seq):
            assert is_subject(seq[-1]), show(seq)
            me = [i for i, s in enumerate(seq) if s.name == "presence"
                  and 110 in codes(s)]
            assert me, show(seq)
            h = seq[me[0] + 1:-1]
            for s in h:
                assert s.xml.find("{%s}delay" % NS_DELAY) is not None, s
            return [body(s) for s in h]

        async def join(**hist):
            seq = await bob.enter(room, "Bob", history=hist or None)
            await bob.leave(room, "Bob")
            return history(seq)

        assert await join() == ["m1", "m2", "m3", "m4", "m5"]
        assert await join(seconds=3) == ["m4", "m5"]
        since = datetime.datetime.fromtimestamp(
            int(t3 + 1.5), datetime.timezone.utc)
        assert await join(since=since.strftime("%Y-%m-%dT%H:%M:%SZ")) \
            == ["m4", "m5"]
        assert await join(maxstanzas=2) == ["m4", "m5"]
        assert await join(maxchars=0) == []

        # the room's own limit (muc#maxhistoryfetch, §15.5.3)
        field = HISTORY_FIELDS & set(form_values(
            await alice.config_form(room)))
        assert field, "no history length in the config form"
        await alice.configure(room, **{field.pop(): "2"})
        assert await join() == ["m4", "m5"]
        await close_all(alice, bob)
    run_async(go())


# --- 5. groupchat messages -----------------------------------------------

def test_groupchat_reflection_stanza_id_occupant_id(muc_server):
    """§7.4: a groupchat message to the room is reflected to every
    occupant, the sender included, from the sender's occupant JID.
    XEP-0359 §2.1 and §3 rule 7: a <stanza-id/> by the room, the same id
    for every copy.  XEP-0421 §3 and §4.1: an <occupant-id/> on every
    reflected message and presence, stable for a user (also after
    leaving and entering again) and different between users; XEP-0421
    §2: the room then has the feature urn:xmpp:occupant-id:0."""
    async def go():
        alice, bob, carol = await login(muc_server, "alice", "bob", "carol")
        room = R("chat")
        await alice.create(room, "Alice")
        seq = await bob.enter(room, "Bob")
        pa = [s for s in seq if frm(s) == room + "/Alice"][0]
        assert len(occupant_ids(pa)) == 1, pa
        await carol.enter(room, "Carol")

        alice.groupchat(room, "hello all", mid="g1")
        copies = [await c.expect_body("hello all", room + "/Alice",
                                      "groupchat")
                  for c in (alice, bob, carol)]
        for c, m in zip((alice, bob, carol), copies):
            assert str(m["to"]) == c.jid, m
        ids = [stanza_ids(m, room) for m in copies]
        assert all(len(i) == 1 for i in ids), show(copies)
        assert len({i[0] for i in ids}) == 1, show(copies)
        oids = [occupant_ids(m) for m in copies]
        assert all(len(o) == 1 for o in oids), show(copies)
        assert len({o[0] for o in oids}) == 1
        alice_oid = oids[0][0]
        assert occupant_ids(pa) == [alice_oid]

        bob.groupchat(room, "hello from bob")
        mb = await alice.expect_body("hello from bob", room + "/Bob")
        await bob.expect_body("hello from bob", room + "/Bob")
        await carol.expect_body("hello from bob", room + "/Bob")
        assert len(occupant_ids(mb)) == 1 and \
            occupant_ids(mb)[0] != alice_oid, mb
        sid2 = stanza_ids(mb, room)
        assert len(sid2) == 1 and sid2[0] != ids[0][0], mb
        bob_oid = occupant_ids(mb)[0]

        alice.groupchat(room, "again")
        m = await bob.expect_body("again", room + "/Alice")
        assert occupant_ids(m) == [alice_oid], m

        # the same user again, under another nick
        await bob.leave(room, "Bob")
        await bob.enter(room, "Robert")
        bob.groupchat(room, "it's me")
        m = await carol.expect_body("it's me", room + "/Robert")
        assert occupant_ids(m) == [bob_oid], m
        r = await carol.iq(room, "get", NS_INFO)
        assert NS_OID in features(r.xml.find("{%s}query" % NS_INFO)), r
        await close_all(alice, bob, carol)
    run_async(go())


def test_forged_stanza_id_and_occupant_id_are_replaced(muc_server):
    """XEP-0359 §3 rule 2: the room deletes a <stanza-id/> by itself that
    the sender put in; XEP-0421 §4: it replaces a sender's
    <occupant-id/>."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("forge")
        await alice.create(room, "Alice")
        await bob.enter(room, "Bob")
        alice.groupchat(room, "honest")
        real = await bob.expect_body("honest", room + "/Alice")
        bob.groupchat(room, "forged", extra=[
            ET.Element("{%s}stanza-id" % NS_SID, id="forged-id", by=room),
            ET.Element("{%s}occupant-id" % NS_OID,
                       id=occupant_ids(real)[0] if occupant_ids(real)
                       else "forged-oid")])
        m = await alice.expect_body("forged", room + "/Bob")
        assert len(stanza_ids(m, room)) == 1, m
        assert stanza_ids(m, room) != ["forged-id"], m
        assert len(occupant_ids(m)) == 1, m
        assert occupant_ids(m) != occupant_ids(real), m
        await close_all(alice, bob)
    run_async(go())


def test_groupchat_refused_for_non_occupant_and_visitor(muc_server):
    """§7.4: a non-occupant's groupchat message is not-acceptable and is
    not reflected; in a moderated room a non-member enters as a visitor
    (§5.1.3 Default Roles) and its message is forbidden and not
    reflected."""
    async def go():
        alice, bob, carol = await login(muc_server, "alice", "bob", "carol")
        room = R("quiet")
        await alice.create(room, "Alice", {"moderatedroom": "1"})
        seq = await bob.enter(room, "Bob")
        me = [s for s in seq if s.name == "presence"][-1]
        assert item(me).get("role") == "visitor", me

        carol.groupchat(room, "from outside")
        err = await carol.expect_error("message", room)
        assert error_of(err)[0] == "not-acceptable", err
        bob.groupchat(room, "from a visitor")
        err = await bob.expect_error("message", room)
        assert error_of(err)[0] == "forbidden", err

        alice.groupchat(room, "marker")
        await silent(bob, lambda s: body(s) in ("from outside",
                                                "from a visitor")
                     and s["type"] == "groupchat", "a refused message",
                     bob.expect_body("marker", room + "/Alice"))
        await silent(alice, lambda s: body(s) in ("from outside",
                                                  "from a visitor")
                     and s["type"] == "groupchat", "a refused message",
                     alice.expect_body("marker", room + "/Alice"))
        await close_all(alice, bob, carol)
    run_async(go())


# --- 6. subject ----------------------------------------------------------

def test_subject_change_and_new_joiner(muc_server):
    """§8.1 (§7.3): with changesubject on, an occupant changes the
    subject with a groupchat message holding only <subject/>; it goes
    to every occupant; a new joiner gets it last, after the history
    (§7.2.15).  With it off, a participant is forbidden (auth) and a
    moderator still may."""
    async def go():
        alice, bob, carol = await login(muc_server, "alice", "bob", "carol")
        room = R("topic")
        await alice.create(room, "Alice", {"changesubject": "1"})
        await bob.enter(room, "Bob")
        alice.groupchat(room, "before the subject")
        await bob.expect_body("before the subject")

        bob.groupchat(room, subject="Cauldrons")
        for c in (alice, bob):
            m = await c.expect(lambda s: is_subject(s) and from_room(s, room)
                               and subject_text(s) == "Cauldrons",
                               "subject change")
            assert frm(m) in (room, room + "/Bob"), m

        seq = await carol.enter(room, "Carol")
        me = [i for i, s in enumerate(seq) if s.name == "presence"
              and 110 in codes(s)][0]
        assert subject_text(seq[-1]) == "Cauldrons", show(seq)
        assert frm(seq[-1]) in (room, room + "/Bob"), seq[-1]
        assert len([s for s in seq if is_subject(s)]) == 1, show(seq)

        await alice.configure(room, changesubject="0")
        bob.groupchat(room, subject="Not allowed")
        err = await bob.expect_error("message", room)
        assert error_of(err) == ("forbidden", "auth"), err
        alice.groupchat(room, subject="Owls")
        await carol.expect(lambda s: is_subject(s)
                           and subject_text(s) == "Owls", "Owls")
        assert not [s for s in carol.log if is_subject(s)
                    and subject_text(s) == "Not allowed"]
        await close_all(alice, bob, carol)
        # history, then the subject
        assert [body(s) for s in seq[me + 1:-1]] == ["before the subject"], \
            show(seq)
    run_async(go())


# --- 7. private messages -------------------------------------------------

def test_private_messages(muc_server):
    """§7.5: a chat message to an occupant JID reaches that occupant's
    full JID from the sender's occupant JID; to a nick not in the room it
    is item-not-found; from a non-occupant, not-acceptable."""
    async def go():
        alice, bob, carol = await login(muc_server, "alice", "bob", "carol")
        room = R("pm")
        await alice.create(room, "Alice")
        await bob.enter(room, "Bob")

        alice.private(room + "/Bob", "psst")
        m = await bob.expect_body("psst", room + "/Alice", "chat")
        assert str(m["to"]) == bob.jid, m

        alice.private(room + "/Nobody", "anyone?")
        err = await alice.expect_error("message", room + "/Nobody")
        assert error_of(err)[0] == "item-not-found", err

        carol.private(room + "/Bob", "from outside")
        err = await carol.expect_error("message", room + "/Bob")
        assert error_of(err)[0] == "not-acceptable", err
        alice.private(room + "/Bob", "marker")
        await silent(bob, lambda s: body(s) == "from outside",
                     "a non-occupant's private message",
                     bob.expect_body("marker", room + "/Alice"))
        await close_all(alice, bob, carol)
    run_async(go())


# --- 8. leaving ----------------------------------------------------------

def test_leave_and_temporary_room_goes(muc_server):
    """§7.14: the leaver gets its unavailable self-presence with 110 and
    role none, the others it without 110; a temporary room is destroyed
    when the last occupant leaves, so it is created afresh (201)."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("temp")
        await alice.create(room, "Alice", {"persistentroom": "0"})
        await bob.enter(room, "Bob")

        p = await bob.leave(room, "Bob")
        assert item(p).get("role") == "none", p
        p = await alice.expect_presence("unavailable", room + "/Bob")
        assert 110 not in codes(p) and item(p).get("role") == "none", p
        assert len(occupant_ids(p)) == 1, p     # XEP-0421 §4

        await alice.leave(room, "Alice")
        r = await bob.iq(room, "get", NS_INFO)
        assert error_of(r)[0] == "item-not-found", r
        bob.send_join(room, "Bob")
        p = await bob.self_presence(room, "Bob")
        assert codes(p) >= {110, 201}, p
        assert item(p).get("affiliation") == "owner", p
        await close_all(alice, bob)
    run_async(go())


def test_session_end_leaves_room(muc_server):
    """§7.14: a user whose session ends without leaving is taken out by
    its server's unavailable presence (RFC 6121 §4.6.3); the others see
    the occupant go."""
    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        room = R("drop")
        await alice.create(room, "Alice")
        await bob.enter(room, "Bob")
        await bob.close()
        p = await alice.expect_presence("unavailable", room + "/Bob")
        assert item(p).get("role") == "none", p
        assert 110 not in codes(p), p
        # the nick is free again
        bob = (await login(muc_server, "bob"))[0]
        await bob.enter(room, "Bob")
        await close_all(alice, bob)
    run_async(go())


# --- 9. service discovery ------------------------------------------------

def features(q):
    return {f.get("var") for f in q.findall("{%s}feature" % NS_INFO)}


def identities(q):
    return {(i.get("category"), i.get("type"))
            for i in q.findall("{%s}identity" % NS_INFO)}


def test_disco(muc_server):
    """§6.2: the service is conference/text with the muc feature; §6.3:
    its items are the public rooms, not hidden ones; §6.4: a room is
    conference/text with the muc feature and its room-type features
    (§15.5.3 registry); a room that does not exist is item-not-found
    (XEP-0030 §3.1)."""
    async def go():
        alice, carol = await login(muc_server, "alice", "carol")
        r = await carol.iq(SERVICE, "get", NS_INFO)
        assert r["type"] == "result", r
        q = r.xml.find("{%s}query" % NS_INFO)
        assert ("conference", "text") in identities(q), r
        assert NS_MUC in features(q), r

        pub, hid = R("pub"), R("hid")
        await alice.create(pub, "Alice", {"publicroom": "1",
                                          "roomname": "A Public Room"})
        await alice.create(hid, "Alice", {
            "publicroom": "0", "membersonly": "1", "persistentroom": "1",
            "moderatedroom": "1", "passwordprotectedroom": "1",
            "roomsecret": "x", "whois": "anyone"})

        r = await carol.iq(SERVICE, "get", NS_ITEMS)
        assert r["type"] == "result", r
        jids = [i.get("jid") for i in
                r.xml.findall("{%s}query/{%s}item" % (NS_ITEMS, NS_ITEMS))]
        assert pub in jids and hid not in jids, r

        pairs = [("muc_public", "muc_hidden"),
                 ("muc_open", "muc_membersonly"),
                 ("muc_temporary", "muc_persistent"),
                 ("muc_unmoderated", "muc_moderated"),
                 ("muc_unsecured", "muc_passwordprotected"),
                 ("muc_semianonymous", "muc_nonanonymous")]
        for room, side in ((pub, 0), (hid, 1)):
            r = await carol.iq(room, "get", NS_INFO)
            assert r["type"] == "result", r
            q = r.xml.find("{%s}query" % NS_INFO)
            assert ("conference", "text") in identities(q), r
            f = features(q)
            assert NS_MUC in f, r
            for pair in pairs:
                assert pair[side] in f and pair[1 - side] not in f, \
                    "%s: want %s, not %s:\n%s" % (room, pair[side],
                                                   pair[1 - side], r)

        r = await carol.iq(R("nosuchroom"), "get", NS_INFO)
        assert error_of(r)[0] == "item-not-found", r
        await close_all(alice, carol)
    run_async(go())


# --- 10. persistence -----------------------------------------------------

def test_persistent_room_survives_restart(muc_server):
    """A persistent room (muc#roomconfig_persistentroom, §10.1.3) is not
    destroyed when its last occupant leaves (§7.14) and is there after a
    restart with its config, owner and history (§7.2.13), without
    occupants."""
    room = R("keep")

    async def go():
        alice, bob = await login(muc_server, "alice", "bob")
        await alice.create(room, "Alice", {"persistentroom": "1",
                                           "roomname": "Kept",
                                           "publicroom": "1"})
        await bob.enter(room, "Bob")
        for i in (1, 2):
            alice.groupchat(room, "kept %d" % i)
            await bob.expect_body("kept %d" % i, room + "/Alice")
        await alice.leave(room, "Alice")
        await bob.leave(room, "Bob")
        r = await bob.iq(room, "get", NS_INFO)
        assert r["type"] == "result", "gone after the last left:\n%s" % r
        await close_all(alice, bob)
    run_async(go())

    assert muc_server.stop() == 0
    muc_server.start()

    async def after():
        alice, bob = await login(muc_server, "alice", "bob")
        r = await bob.iq(room, "get", NS_INFO)
        assert r["type"] == "result", r
        assert "muc_persistent" in features(r.xml.find("{%s}query"
                                                       % NS_INFO)), r
        r = await bob.iq(SERVICE, "get", NS_ITEMS)
        assert room in [i.get("jid") for i in r.xml.findall(
            "{%s}query/{%s}item" % (NS_ITEMS, NS_ITEMS))], r
        seq = await bob.enter(room, "Bob")
        pres = [s for s in seq if s.name == "presence"]
        assert [frm(s) for s in pres] == [room + "/Bob"], show(seq)
        assert 201 not in codes(pres[0]), pres[0]
        hist = [s for s in seq if s.name == "message" and not is_subject(s)]

        aseq = await alice.enter(room, "Alice")
        me = [s for s in aseq if s.name == "presence"][-1]
        assert 110 in codes(me) and 201 not in codes(me), me
        assert item(me).get("affiliation") == "owner", me
        vals = form_values(await alice.config_form(room))
        assert vals["muc#roomconfig_roomname"] == ["Kept"], vals
        assert truthy(vals["muc#roomconfig_persistentroom"]), vals
        await close_all(alice, bob)

        assert [body(s) for s in hist] == ["kept 1", "kept 2"], show(seq)
        for h in hist:
            assert frm(h) == room + "/Alice", h
            d = h.xml.find("{%s}delay" % NS_DELAY)
            assert d is not None and d.get("from") == room, h
    run_async(after())
