"""Beyond the basics: a second client implementation (go-sendxmpp, Go's
XMPP library) talking to slixmpp, message carbons (XEP-0280) across two
resources, and stream management handing unacknowledged messages to
offline storage when a broken session is not resumed in time."""
import asyncio
import re
import shutil
import subprocess
import time

import pytest
from slixmpp.xmlstream import ET

from conftest import Server
from test_c2s import Raw
from test_im import Client, run_async

NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"


@pytest.fixture
def full_server(tmp_path):
    s = Server(tmp_path, modules=("c2s", "im", "server", "carbons"),
               extra="c2s_resume_timeout = 2")
    for u in ("alice", "bob"):
        s.adduser("%s@example.net" % u, "pw-" + u)
    s.start()
    yield s
    assert s.stop() == 0


def go_sendxmpp(server, user, *args, **kw):
    return ["go-sendxmpp", "-n", "-u", "%s@example.net" % user,
            "-p", "pw-" + user, "-j", "127.0.0.1:%d" % server.port] + \
        list(args)


@pytest.mark.skipif(shutil.which("go-sendxmpp") is None,
                    reason="go-sendxmpp is not installed")
def test_go_sendxmpp_and_slixmpp_exchange_messages(full_server):
    async def go():
        bob = await Client(full_server, "bob@example.net/slix").login()
        loop = asyncio.get_running_loop()
        # go-sendxmpp -> slixmpp
        r = await loop.run_in_executor(None, lambda: subprocess.run(
            go_sendxmpp(full_server, "alice", "bob@example.net"),
            input="hello from go\n", capture_output=True, text=True,
            timeout=30))
        assert r.returncode == 0, r.stderr
        m = await bob.expect(lambda s: s.name == "message"
                             and s["body"] == "hello from go", "go message")
        assert m["from"].bare == "alice@example.net"
        # slixmpp -> go-sendxmpp listening as alice
        listener = subprocess.Popen(go_sendxmpp(full_server, "alice", "-l"),
                                    stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 15
            while "bound alice@example.net" not in full_server.log_text():
                assert time.time() < deadline
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)    # its initial presence
            bob.c.send_message(mto="alice@example.net", mbody="hi go",
                               mtype="chat")
            line = await loop.run_in_executor(None, listener.stdout.readline)
            assert line.strip().endswith("bob@example.net: hi go"), line
        finally:
            listener.terminate()
            listener.wait(timeout=10)
        await bob.close()
    run_async(go())


async def enable_carbons(client):
    iq = client.c.make_iq_set()
    iq.append(ET.Element("{%s}enable" % NS_CARBONS))
    assert (await iq.send(timeout=10))["type"] == "result"


def carbon(direction, body):
    def match(st):
        if st.name != "message":
            return False
        wrap = st.xml.find("{%s}%s" % (NS_CARBONS, direction))
        if wrap is None:
            return False
        inner = wrap.find("{%s}forwarded/{jabber:client}message" % NS_FORWARD)
        b = inner.find("{jabber:client}body") if inner is not None else None
        return b is not None and b.text == body
    return match


def test_carbons_copy_received_and_sent(full_server):
    async def go():
        laptop = await Client(full_server, "alice@example.net/laptop").login()
        phone = Client(full_server, "alice@example.net/phone")
        # slixmpp reports body-less messages (carbons) only through this
        phone.c.register_plugin("xep_0280")
        phone.c.add_event_handler("carbon_received", phone.got.append)
        phone.c.add_event_handler("carbon_sent", phone.got.append)
        await phone.login()
        bob = await Client(full_server, "bob@example.net/desk").login()
        await enable_carbons(phone)
        await enable_carbons(laptop)
        # Bob writes to the laptop: the phone gets a <received/> copy.
        bob.c.send_message(mto="alice@example.net/laptop", mbody="to laptop",
                           mtype="chat")
        await laptop.expect(lambda s: s.name == "message"
                            and s["body"] == "to laptop", "the original")
        m = await phone.expect(carbon("received", "to laptop"), "a carbon")
        assert str(m["from"]) == "alice@example.net"
        # The laptop writes to Bob: the phone gets a <sent/> copy.
        laptop.c.send_message(mto="bob@example.net", mbody="from laptop",
                              mtype="chat")
        await bob.expect(lambda s: s.name == "message"
                         and s["body"] == "from laptop", "laptop's message")
        await phone.expect(carbon("sent", "from laptop"), "a sent carbon")
        # <private/> opts out.
        msg = laptop.c.make_message(mto="bob@example.net", mbody="secret",
                                    mtype="chat")
        msg.append(ET.Element("{%s}private" % NS_CARBONS))
        msg.send()
        await bob.expect(lambda s: s.name == "message"
                         and s["body"] == "secret", "the private message")
        await asyncio.sleep(0.5)
        assert not [s for s in phone.got if carbon("sent", "secret")(s)]
        for c in (laptop, phone, bob):
            await c.close()
    run_async(go())


def test_unresumed_session_gives_messages_to_offline(full_server):
    """Bob's link dies with messages unacknowledged; he does not come back
    within c2s_resume_timeout (2 s): they go to offline storage and reach
    him at his next login, each once, with their delay."""
    bob = Raw(full_server.port)
    bob.login("bob", "pw-bob", "phone")
    bob.send("<presence/>")
    bob.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    bob.read_until(r"<enabled[^>]*/>")
    alice = Raw(full_server.port)
    alice.login("alice", "pw-alice", "desk")
    for i in (1, 2):
        alice.send("<message to='bob@example.net' id='o%d' type='chat'>"
                   "<body>keep %d</body></message>" % (i, i))
    bob.read_until(r"id='o2'.*?</message>")
    bob.sock.close()                 # no ack, no stream close
    deadline = time.time() + 15
    while "was not resumed in time" not in full_server.log_text():
        assert time.time() < deadline, full_server.log_text()
        time.sleep(0.1)

    async def go():
        b = await Client(full_server, "bob@example.net/again").login()
        got = []
        for i in (1, 2):
            m = await b.expect(lambda s: s.name == "message"
                               and s["body"] == "keep %d" % i, "keep %d" % i)
            got.append(m)
            assert m.xml.find("{urn:xmpp:delay}delay") is not None
        await asyncio.sleep(0.5)
        assert not [s for s in b.got if s.name == "message"
                    and str(s["body"]).startswith("keep")], "duplicates"
        await b.close()
    run_async(go())
