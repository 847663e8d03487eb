"""mod_im against real slixmpp clients: rosters and versioning, the
subscription handshake, presence broadcast and unavailable on disconnect,
chat delivery, offline messages with XEP-0203 delays, and the RFC 6121
§8.5 errors."""
import asyncio
import ssl
import time

import pytest
import slixmpp
from slixmpp.xmlstream import ET

from conftest import Server

NS_ROSTER = "jabber:iq:roster"
NS_DELAY = "urn:xmpp:delay"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


@pytest.fixture
def im_server(tmp_path):
    """skywaved with c2s and im; users alice, bob, carol ('pw-NAME')."""
    s = Server(tmp_path, modules=("c2s", "im"))
    for u in ("alice", "bob", "carol"):
        s.adduser("%s@example.net" % u, "pw-" + u)
    s.start()
    yield s
    rc = s.stop()
    assert rc == 0, "skywaved exited with %r" % rc


class Client:
    """A logged-in slixmpp client that records every message and presence
    it receives, so tests can wait for one that matches."""

    def __init__(self, server, jid, mech=None):
        user = jid.split("@")[0]
        self.c = slixmpp.ClientXMPP(jid, "pw-" + user, sasl_mech=mech)
        self.c.ssl_context.check_hostname = False
        self.c.ssl_context.verify_mode = ssl.CERT_NONE
        # The tests answer subscription requests themselves.
        self.c.roster.auto_authorize = None
        self.c.roster.auto_subscribe = False
        self.server = server
        self.got = []
        self.c.add_event_handler("presence", self.got.append)
        self.c.add_event_handler("message", self.got.append)
        self.c.add_event_handler("message_error", self.got.append)
        self.c.add_event_handler("roster_update", lambda _: None)

    async def login(self, presence=True, roster=True):
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def finish(ok):
            if not done.done():
                done.set_result(ok)
        self.c.add_event_handler("session_start", lambda _: finish(True))
        self.c.add_event_handler("failed_all_auth", lambda _: finish(False))
        self.c.add_event_handler("disconnected", lambda _: finish(False))
        self.c.connect(("127.0.0.1", self.server.port))
        assert await asyncio.wait_for(done, 15), "login failed"
        if roster:
            await self.roster_get()
        if presence:
            self.c.send_presence()
        return self

    @property
    def jid(self):
        return str(self.c.boundjid)

    async def roster_get(self, ver=None):
        """Raw roster get; returns the result's <query/> or None."""
        iq = self.c.make_iq_get()
        q = ET.Element("{%s}query" % NS_ROSTER)
        if ver is not None:
            q.set("ver", ver)
        iq.append(q)
        r = await iq.send(timeout=10)
        assert r["type"] == "result"
        return r.xml.find("{%s}query" % NS_ROSTER)

    async def roster_items(self):
        q = await self.roster_get()
        return {i.get("jid"): i for i in q.findall("{%s}item" % NS_ROSTER)}

    async def expect(self, pred, what, timeout=10):
        """The first received stanza matching pred (removed from the
        record); fails the test after timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for st in self.got:
                if pred(st):
                    self.got.remove(st)
                    return st
            await asyncio.sleep(0.02)
        raise AssertionError("%s: no %s; got %s" % (
            self.jid, what, [str(s) for s in self.got]))

    async def expect_presence(self, ptype, frm, timeout=10):
        return await self.expect(
            lambda s: s.name == "presence" and s["type"] == ptype
            and (str(s["from"]) == frm or s["from"].bare == frm),
            "presence type=%s from %s" % (ptype, frm), timeout)

    async def close(self):
        self.c.disconnect()
        await self.c.disconnected


def run_async(coro):
    """Runs coro on a fresh loop, then cancels what slixmpp left running."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        pending = asyncio.all_tasks(loop)
        for t in pending:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*pending,
                                               return_exceptions=True))
        loop.close()


async def befriend(alice, bob):
    """The full RFC 6121 §3 handshake both ways, checked at each step."""
    a, b = "alice@example.net", "bob@example.net"
    alice.c.send_presence(pto=b, ptype="subscribe")
    sub = await bob.expect_presence("subscribe", a)
    assert str(sub["from"]) == a            # stamped with the bare JID
    items = await alice.roster_items()
    assert items[b].get("subscription") == "none"
    assert items[b].get("ask") == "subscribe"

    bob.c.send_presence(pto=a, ptype="subscribed")
    await alice.expect_presence("subscribed", b)
    # §3.1.5: the new subscriber gets bob's current presence
    await alice.expect_presence("available", bob.jid)
    assert (await alice.roster_items())[b].get("subscription") == "to"
    assert (await bob.roster_items())[a].get("subscription") == "from"

    bob.c.send_presence(pto=a, ptype="subscribe")
    await alice.expect_presence("subscribe", b)
    alice.c.send_presence(pto=b, ptype="subscribed")
    await bob.expect_presence("subscribed", a)
    await bob.expect_presence("available", alice.jid)
    assert (await alice.roster_items())[b].get("subscription") == "both"
    assert (await bob.roster_items())[a].get("subscription") == "both"


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_subscription_presence_and_chat(im_server, mech):
    async def go():
        alice = await Client(im_server, "alice@example.net/desk",
                             mech).login()
        bob = await Client(im_server, "bob@example.net/phone", mech).login()
        # §4.2.2: initial presence comes back to the user's own resource
        await alice.expect_presence("available", alice.jid)
        await befriend(alice, bob)

        # §4.4: a later presence reaches the contact, status and all
        alice.c.send_presence(pshow="away", pstatus="at lunch")
        p = await bob.expect_presence("away", alice.jid)
        assert p["status"] == "at lunch"

        # §8.5.2.1.1: chat to the bare JID reaches the available resource
        alice.c.send_message(mto="bob@example.net", mbody="hello bob",
                             mtype="chat")
        m = await bob.expect(lambda s: s.name == "message"
                             and s["body"] == "hello bob", "chat message")
        assert str(m["from"]) == alice.jid
        bob.c.send_message(mto=alice.jid, mbody="hi alice", mtype="chat")
        await alice.expect(lambda s: s.name == "message"
                           and s["body"] == "hi alice", "reply")
        await alice.close()
        await bob.close()
    run_async(go())
    assert "authenticated alice@example.net with %s" % mech \
        in im_server.log_text()


def test_unavailable_on_disconnect(im_server):
    async def go():
        alice = await Client(im_server, "alice@example.net/desk").login()
        bob = await Client(im_server, "bob@example.net/phone").login()
        await befriend(alice, bob)
        bob_jid = bob.jid
        await bob.close()
        # §4.5.2: the server says it for the client that left
        await alice.expect_presence("unavailable", bob_jid)

        # A new resource probes on login (§4.3) and learns alice is here.
        bob2 = await Client(im_server, "bob@example.net/tablet").login()
        await bob2.expect_presence("available", alice.jid)
        await alice.expect_presence("available", bob2.jid)
        await bob2.close()
        await alice.close()
    run_async(go())


def test_offline_message_with_delay(im_server):
    async def go():
        alice = await Client(im_server, "alice@example.net/desk").login()
        alice.c.send_message(mto="bob@example.net", mbody="while you slept",
                             mtype="chat")
        # A message to an account that does not exist bounces (§8.5.1).
        alice.c.send_message(mto="nobody@example.net", mbody="x",
                             mtype="chat")
        err = await alice.expect(lambda s: s.name == "message"
                                 and s["type"] == "error", "bounce")
        assert err.xml.find(".//{%s}service-unavailable" % NS_STANZAS) \
            is not None
        assert err["from"].bare == "nobody@example.net"

        bob = await Client(im_server, "bob@example.net/phone").login()
        m = await bob.expect(lambda s: s.name == "message"
                             and s["body"] == "while you slept",
                             "offline message")
        delay = m.xml.find("{%s}delay" % NS_DELAY)
        assert delay is not None
        assert delay.get("from") == "example.net"
        assert delay.get("stamp", "").endswith("Z")
        assert m["from"].bare == "alice@example.net"
        await bob.close()

        # Delivered once: the next login gets nothing again.
        bob = await Client(im_server, "bob@example.net/phone").login()
        with pytest.raises(AssertionError):
            await bob.expect(lambda s: s.name == "message", "message",
                             timeout=1)
        await bob.close()
        await alice.close()
    run_async(go())


def test_offline_limit_bounces(tmp_path):
    s = Server(tmp_path, modules=("c2s", "im"), extra="im_offline_max = 1")
    s.adduser("alice@example.net", "pw-alice")
    s.adduser("bob@example.net", "pw-bob")
    s.start()
    try:
        async def go():
            alice = await Client(s, "alice@example.net/desk").login()
            alice.c.send_message(mto="bob@example.net", mbody="one",
                                 mtype="chat")
            alice.c.send_message(mto="bob@example.net", mbody="two",
                                 mtype="chat")
            err = await alice.expect(lambda st: st.name == "message"
                                     and st["type"] == "error", "bounce")
            assert err.xml.find(".//{%s}service-unavailable"
                                % NS_STANZAS) is not None
            await alice.close()
            bob = await Client(s, "bob@example.net/phone").login()
            await bob.expect(lambda st: st.name == "message"
                             and st["body"] == "one", "first message")
            await bob.close()
        run_async(go())
    finally:
        assert s.stop() == 0


def test_roster_versioning(im_server):
    async def go():
        alice = await Client(im_server, "alice@example.net/desk").login(
            roster=False)
        q = await alice.roster_get(ver="")
        assert q is not None
        ver = q.get("ver")
        assert ver

        # Add an item: a push with a new version (§2.1.6, §2.6)
        iq = alice.c.make_iq_set()
        q = ET.SubElement(iq.xml, "{%s}query" % NS_ROSTER)
        item = ET.SubElement(q, "{%s}item" % NS_ROSTER,
                             jid="carol@example.net", name="Carol")
        ET.SubElement(item, "{%s}group" % NS_ROSTER).text = "Friends"
        r = await iq.send(timeout=10)
        assert r["type"] == "result"
        q = await alice.roster_get(ver=ver)
        assert q is not None, "changed roster must come back in full"
        new_ver = q.get("ver")
        assert new_ver and new_ver != ver
        items = q.findall("{%s}item" % NS_ROSTER)
        assert [(i.get("jid"), i.get("name"), i.get("subscription"))
                for i in items] == [("carol@example.net", "Carol", "none")]
        assert items[0].find("{%s}group" % NS_ROSTER).text == "Friends"
        await alice.close()

        # Second login with the current version: empty result (§2.6.3)
        alice = await Client(im_server, "alice@example.net/desk").login(
            roster=False)
        assert await alice.roster_get(ver=new_ver) is None
        q = await alice.roster_get(ver=ver)
        assert q is not None and q.get("ver") == new_ver

        # §2.3.3: two items in one set is a bad request
        iq = alice.c.make_iq_set()
        q = ET.SubElement(iq.xml, "{%s}query" % NS_ROSTER)
        ET.SubElement(q, "{%s}item" % NS_ROSTER, jid="x@example.net")
        ET.SubElement(q, "{%s}item" % NS_ROSTER, jid="y@example.net")
        with pytest.raises(slixmpp.exceptions.IqError) as e:
            await iq.send(timeout=10)
        assert e.value.condition == "bad-request"

        # §2.5: remove; then the item is gone
        iq = alice.c.make_iq_set()
        q = ET.SubElement(iq.xml, "{%s}query" % NS_ROSTER)
        ET.SubElement(q, "{%s}item" % NS_ROSTER, jid="carol@example.net",
                      subscription="remove")
        assert (await iq.send(timeout=10))["type"] == "result"
        assert "carol@example.net" not in await alice.roster_items()
        await alice.close()
    run_async(go())


def test_iq_to_absent_resource_and_pending_subscribe(im_server):
    async def go():
        alice = await Client(im_server, "alice@example.net/desk").login()
        # §8.5.3.2.1: an IQ to a full JID with no session
        iq = alice.c.make_iq_get(queryxmlns="urn:xmpp:ping",
                                 ito="bob@example.net/nowhere")
        with pytest.raises(slixmpp.exceptions.IqError) as e:
            await iq.send(timeout=10)
        assert e.value.condition == "service-unavailable"

        # A subscribe to an offline user waits and is delivered at login,
        # without carol appearing in bob's roster meanwhile (§3.1.3).
        alice.c.send_presence(pto="bob@example.net", ptype="subscribe")
        await asyncio.sleep(0)  # let it leave; the checks below wait
        bob = await Client(im_server, "bob@example.net/phone").login()
        await bob.expect_presence("subscribe", "alice@example.net")
        assert "alice@example.net" not in await bob.roster_items()
        bob.c.send_presence(pto="alice@example.net", ptype="unsubscribed")
        await alice.expect_presence("unsubscribed", "bob@example.net")
        items = await alice.roster_items()
        assert items["bob@example.net"].get("ask") is None
        assert items["bob@example.net"].get("subscription") == "none"
        await bob.close()
        await alice.close()
    run_async(go())


def test_priority_headline_and_directed_presence(im_server):
    async def go():
        alice = await Client(im_server, "alice@example.net/desk").login()
        high = await Client(im_server, "bob@example.net/high").login(
            presence=False)
        high.c.send_presence(ppriority=5)
        low = await Client(im_server, "bob@example.net/low").login(
            presence=False)
        low.c.send_presence(ppriority=1)
        # both resources see each other (§4.2.2)
        await high.expect_presence("available", low.jid)
        await low.expect_presence("available", high.jid)

        # §8.5.2.1.1: chat to the highest priority, headline to all
        alice.c.send_message(mto="bob@example.net", mbody="c1",
                             mtype="chat")
        alice.c.send_message(mto="bob@example.net", mbody="h1",
                             mtype="headline")
        await high.expect(lambda s: s.name == "message"
                          and s["body"] == "c1", "chat on /high")
        await high.expect(lambda s: s.name == "message"
                          and s["body"] == "h1", "headline on /high")
        await low.expect(lambda s: s.name == "message"
                         and s["body"] == "h1", "headline on /low")
        with pytest.raises(AssertionError):
            await low.expect(lambda s: s.name == "message"
                             and s["body"] == "c1", "chat", timeout=1)

        # Negative priority: not eligible, so the message is kept offline
        # and delivered when the priority turns non-negative (XEP-0160).
        carol = await Client(im_server, "carol@example.net/x").login(
            presence=False)
        carol.c.send_presence(ppriority=-1)
        await carol.expect_presence("available", carol.jid)
        alice.c.send_message(mto="carol@example.net", mbody="later",
                             mtype="chat")
        with pytest.raises(AssertionError):
            await carol.expect(lambda s: s.name == "message", "message",
                               timeout=1)
        carol.c.send_presence(ppriority=0)
        m = await carol.expect(lambda s: s.name == "message"
                               and s["body"] == "later", "stored message")
        assert m.xml.find("{%s}delay" % NS_DELAY) is not None

        # §4.6: directed presence to a non-contact, and its unavailable
        # when the sender's session ends (§4.6.3)
        alice.c.send_presence(pto=carol.jid, pstatus="just for you")
        p = await carol.expect_presence("available", alice.jid)
        assert p["status"] == "just for you"
        alice_jid = alice.jid
        await alice.close()
        await carol.expect_presence("unavailable", alice_jid)
        # and bob, who is no contact of alice, heard nothing of her
        for c in (high, low):
            assert not [s for s in c.got if s.name == "presence"
                        and s["from"].bare == "alice@example.net"]
        for c in (high, low, carol):
            await c.close()
    run_async(go())


def test_subscribe_to_a_contact_with_subscription_to_pushes_nothing(
        im_server):
    """RFC 6121 §3.1.3: alice already has subscription='to' with bob; when
    bob asks to subscribe to her, she gets the request and no roster push,
    since nothing she can see in her roster changed."""
    from test_c2s import Raw
    alice = Raw(im_server.port)
    alice.login("alice", "pw-alice", "a")
    alice.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/>"
               "</iq><presence/>")
    alice.read_until(r"id='r0'.*?</iq>")
    bob = Raw(im_server.port)
    bob.login("bob", "pw-bob", "b")
    bob.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/>"
             "</iq><presence/>")
    bob.read_until(r"id='r0'.*?</iq>")
    alice.send("<presence to='bob@example.net' type='subscribe'/>")
    bob.read_until(r"type='subscribe'")
    bob.send("<presence to='alice@example.net' type='subscribed'/>")
    alice.read_until(r"subscription='to'")
    alice.read_until(r"<presence[^>]*from='bob@example.net/b'")

    def drain(seconds):
        text, deadline = "", time.time() + seconds
        while time.time() < deadline:
            try:
                text += alice.read_until(r">", timeout=0.2)
            except AssertionError:
                pass
        return text
    drain(1)
    bob.send("<presence to='alice@example.net' type='subscribe'/>")
    text = alice.read_until(r"<presence[^>]*type='subscribe'[^>]*/?>")
    text += drain(1)
    assert "jabber:iq:roster" not in text, text
