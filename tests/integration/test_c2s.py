"""c2s against real clients: slixmpp logins (SCRAM-SHA-256, SCRAM-SHA-1,
wrong password) and a raw TLS client for what no well-behaved client
sends: malformed XML, DOCTYPE bombs, oversized stanzas, invalid JIDs."""
import asyncio
import base64
import re
import socket
import ssl
import time

import pytest
import slixmpp

from conftest import Server


def client(jid, password, mech=None):
    c = slixmpp.ClientXMPP(jid, password, sasl_mech=mech)
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    return c


async def login(server, jid, password, mech=None):
    """Returns (client, True) on session start, (client, False) on failure."""
    c = client(jid, password, mech)
    done = asyncio.get_running_loop().create_future()

    def finish(ok):
        if not done.done():
            done.set_result(ok)
    c.add_event_handler("session_start", lambda _: finish(True))
    c.add_event_handler("failed_all_auth", lambda _: finish(False))
    c.add_event_handler("failed_auth", lambda _: finish(False))
    c.add_event_handler("disconnected", lambda _: finish(False))
    c.connect(("127.0.0.1", server.port))
    ok = await asyncio.wait_for(done, 15)
    return c, ok


async def ping(c, to="example.net"):
    iq = c.make_iq_get(queryxmlns="urn:xmpp:ping", ito=to)
    iq.clear()
    iq.append(slixmpp.xmlstream.ET.Element("{urn:xmpp:ping}ping"))
    r = await iq.send(timeout=10)
    return r["type"]


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


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_login_scram(server, mech):
    async def go():
        c, ok = await login(server, "alice@example.net/laptop", "pw-alice",
                            mech)
        assert ok
        assert str(c.boundjid) == "alice@example.net/laptop"
        assert await ping(c) == "result"
        c.disconnect()
        await c.disconnected
    run_async(go())
    log = server.log_text()
    assert "authenticated alice@example.net with %s" % mech in log
    assert "bound alice@example.net/laptop" in log


def test_wrong_password_not_authorized(server):
    async def go():
        c, ok = await login(server, "alice@example.net", "wrong")
        assert not ok
        c.disconnect()
    run_async(go())
    assert "authentication failed: not-authorized" in server.log_text()


def test_unknown_user_not_authorized(server):
    async def go():
        c, ok = await login(server, "mallory@example.net", "x")
        assert not ok
        c.disconnect()
    run_async(go())
    assert "authentication failed: not-authorized" in server.log_text()


class Raw:
    """A deliberately simple client on a plain socket, upgraded to TLS."""

    def __init__(self, port, host="example.net"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.host = host

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def read_until(self, pattern, timeout=10):
        deadline = time.time() + timeout
        while not re.search(pattern, self.buf.decode(errors="replace")):
            self.sock.settimeout(max(0.1, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                chunk = b""
            if not chunk and time.time() >= deadline:
                raise AssertionError("no %r in %r" % (pattern, self.buf))
            if not chunk:
                break
            self.buf += chunk
        text = self.buf.decode(errors="replace")
        m = re.search(pattern, text)
        assert m, "no %r in %r" % (pattern, text)
        self.buf = text[m.end():].encode()
        return text[:m.end()]

    def closed(self, timeout=5):
        """True once the server has closed the connection."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.sock.settimeout(max(0.1, deadline - time.time()))
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ssl.SSLError, OSError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def header(self, to=None):
        to = to or self.host
        self.send("<?xml version='1.0'?><stream:stream to='%s' "
                  "xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' "
                  "version='1.0'>" % to)
        return self.read_until(r"</stream:features>|</stream:stream>")

    def starttls(self):
        """Header, STARTTLS, the new header; returns its features."""
        self.header()
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.read_until(r"<proceed[^>]*/>")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.host)
        self.buf = b""
        return self.header()

    def login(self, user, password, resource="raw", bind=True):
        feats = self.starttls()
        assert "<mechanism>PLAIN</mechanism>" in feats
        token = base64.b64encode(("\0%s\0%s" % (user, password)).encode())
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                  "mechanism='PLAIN'>%s</auth>" % token.decode())
        self.read_until(r"<success[^>]*(/>|</success>)")
        feats = self.header()
        if not bind:
            return feats
        self.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:"
                  "ns:xmpp-bind'><resource>%s</resource></bind></iq>"
                  % resource)
        self.read_until(r"</iq>")


def stream_error(raw, cond):
    text = raw.read_until(r"</stream:stream>")
    assert "<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'" \
        % cond in text, text
    assert raw.closed()


def test_starttls_required_before_auth(server):
    raw = Raw(server.port)
    feats = raw.header()
    assert "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>" \
        in feats
    assert "<mechanisms" not in feats
    raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
             "mechanism='PLAIN'>AGFsaWNlAHB3LWFsaWNl</auth>")
    assert "<encryption-required/>" in raw.read_until(r"</failure>")


def test_unknown_host_and_bad_namespace(server):
    raw = Raw(server.port)
    raw.send("<?xml version='1.0'?><stream:stream to='nowhere.example' "
             "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/"
             "streams' version='1.0'>")
    stream_error(raw, "host-unknown")
    raw = Raw(server.port)
    raw.send("<stream:stream to='example.net' xmlns='jabber:server' "
             "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
    stream_error(raw, "invalid-namespace")


def test_bad_input_gets_stream_errors_others_unaffected(server):
    async def go():
        c, ok = await login(server, "bob@example.net/phone", "pw-bob")
        assert ok
        loop = asyncio.get_running_loop()

        def bad(payload, cond, authed=False):
            raw = Raw(server.port)
            if authed:
                raw.login("alice", "pw-alice")
            else:
                raw.header()
            raw.send(payload)
            stream_error(raw, cond)

        # Malformed XML, before and after authentication.
        await loop.run_in_executor(None, bad, "<message><body>x</mess>",
                                   "not-well-formed")
        await loop.run_in_executor(None, bad, "<message><body>x</mess>",
                                   "not-well-formed", True)
        # A billion-laughs DOCTYPE is refused, never expanded.
        bomb = ("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
                "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
                "]><lolz>&lol2;</lolz>")
        raw = Raw(server.port)
        raw.send(bomb)
        stream_error(raw, "restricted-xml")
        # A stanza over the limit.
        big = "<message to='bob@example.net'><body>%s</body></message>" \
            % ("x" * 300000)
        await loop.run_in_executor(None, bad, big, "policy-violation", True)
        # Bob is still fine.
        assert await ping(c) == "result"
        c.disconnect()
        await c.disconnected
    run_async(go())


def test_invalid_jid_gets_jid_malformed(server):
    raw = Raw(server.port)
    raw.login("alice", "pw-alice")
    raw.send("<message to='a@b@c' id='m1'><body>x</body></message>")
    text = raw.read_until(r"</message>")
    assert "type='error'" in text and "id='m1'" in text
    assert "<jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" \
        in text
    # The stream survives a stanza error.
    raw.send("<iq type='get' id='p1' to='example.net'><ping "
             "xmlns='urn:xmpp:ping'/></iq>")
    assert "type='result'" in raw.read_until(r"id='p1'[^>]*(/>|>)")


def test_resource_conflict_replaces_old_session(server):
    old = Raw(server.port)
    old.login("alice", "pw-alice", "same")
    new = Raw(server.port)
    new.login("alice", "pw-alice", "same")
    stream_error(old, "conflict")
    new.send("<iq type='get' id='p2' to='example.net'><ping "
             "xmlns='urn:xmpp:ping'/></iq>")
    assert "type='result'" in new.read_until(r"id='p2'[^>]*(/>|>)")


def test_direct_tls_port(server):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = Raw(server.tls_port)
    raw.sock = ctx.wrap_socket(raw.sock, server_hostname="example.net")
    feats = raw.header()
    assert "<mechanism>SCRAM-SHA-256</mechanism>" in feats
    assert "<starttls" not in feats


def test_shutdown_closes_streams(tmp_path):
    s = Server(tmp_path)
    s.adduser("alice@example.net", "pw-alice")
    s.start()
    try:
        raw = Raw(s.port)
        raw.login("alice", "pw-alice")
        assert s.stop() == 0
        stream_error(raw, "system-shutdown")
    finally:
        if s.proc.poll() is None:       # a failure above: do not leak it
            s.proc.kill()


def test_stream_management_resume_loses_and_duplicates_nothing(server):
    bob = Raw(server.port)
    feats = bob.login("bob", "pw-bob", "phone", bind=False)
    assert "<sm xmlns='urn:xmpp:sm:3'/>" in feats
    bob.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:"
             "ns:xmpp-bind'><resource>phone</resource></bind></iq>")
    bob.read_until(r"</iq>")
    bob.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    enabled = bob.read_until(r"<enabled[^>]*/>")
    smid = re.search(r"id='([^']+)'", enabled).group(1)
    assert "resume='true'" in enabled

    alice = Raw(server.port)
    alice.login("alice", "pw-alice", "desk")

    def say(i):
        alice.send("<message to='bob@example.net/phone' id='m%d' "
                   "type='chat'><body>hello %d</body></message>" % (i, i))

    for i in (1, 2, 3):
        say(i)
    got = bob.read_until(r"id='m3'.*?</message>")
    assert all("id='m%d'" % i in got for i in (1, 2, 3))
    # Bob acknowledges only the first, then his link dies (no stream close).
    bob.send("<a xmlns='urn:xmpp:sm:3' h='1'/>")
    bob.send("<r xmlns='urn:xmpp:sm:3'/>")
    assert "h='0'" in bob.read_until(r"<a [^>]*/>")   # he sent no stanza
    bob.sock.close()
    deadline = time.time() + 10
    while "waits 300s for resumption" not in server.log_text():
        assert time.time() < deadline, server.log_text()
        time.sleep(0.05)
    for i in (4, 5):
        say(i)

    bob = Raw(server.port)
    bob.login("bob", "pw-bob", bind=False)
    bob.send("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='1'/>" % smid)
    text = bob.read_until(r"id='m5'.*?</message>")
    assert "<resumed xmlns='urn:xmpp:sm:3' h='0' previd='%s'/>" % smid in text
    ids = re.findall(r"<message[^>]* id='(m\d)'", text)
    assert ids == ["m2", "m3", "m4", "m5"], text
    # Still bound as before: a ping works, and the old SM-ID is taken.
    bob.send("<iq type='get' id='p3' to='example.net'><ping "
             "xmlns='urn:xmpp:ping'/></iq>")
    assert "type='result'" in bob.read_until(r"id='p3'[^>]*(/>|>)")
    thief = Raw(server.port)
    thief.login("alice", "pw-alice", bind=False)
    thief.send("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>" % smid)
    assert "<item-not-found" in thief.read_until(r"</failed>")


def test_stream_management_bad_ack(server):
    raw = Raw(server.port)
    raw.login("alice", "pw-alice")
    raw.send("<enable xmlns='urn:xmpp:sm:3'/>")
    raw.read_until(r"<enabled[^>]*/>")
    raw.send("<a xmlns='urn:xmpp:sm:3' h='7'/>")
    stream_error(raw, "undefined-condition")


def test_scram_plus_channel_binding_on_tls12(server):
    """Over TLS 1.2, where tls-unique exists, -PLUS is offered and slixmpp
    binds SCRAM to the TLS channel (RFC 5802 §6)."""
    async def go():
        c = client("alice@example.net/tls12", "pw-alice")
        c.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        done = asyncio.get_running_loop().create_future()
        c.add_event_handler("session_start",
                            lambda _: done.done() or done.set_result(True))
        c.add_event_handler("failed_all_auth",
                            lambda _: done.done() or done.set_result(False))
        c.connect(("127.0.0.1", server.port))
        assert await asyncio.wait_for(done, 15)
        c.disconnect()
        await c.disconnected
    run_async(go())
    log = server.log_text()
    assert "TLS1.2" in log
    assert "authenticated alice@example.net with SCRAM-SHA-256-PLUS" in log


def test_spoofed_from_is_invalid_from(server):
    raw = Raw(server.port)
    raw.login("alice", "pw-alice")
    raw.send("<message from='bob@example.net/x' to='alice@example.net'>"
             "<body>spoof</body></message>")
    stream_error(raw, "invalid-from")


def test_stanza_before_auth_and_old_version(server):
    raw = Raw(server.port)
    raw.header()
    raw.send("<message to='alice@example.net'><body>early</body></message>")
    stream_error(raw, "not-authorized")
    raw = Raw(server.port)
    raw.send("<stream:stream to='example.net' xmlns='jabber:client' "
             "xmlns:stream='http://etherx.jabber.org/streams'>")
    stream_error(raw, "unsupported-version")


def test_disco_and_version(server):
    raw = Raw(server.port)
    raw.login("alice", "pw-alice")
    raw.send("<iq type='get' id='d1' to='example.net'><query "
             "xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    info = raw.read_until(r"</iq>")
    assert "category='server'" in info and "type='im'" in info
    for var in ("urn:xmpp:ping", "jabber:iq:version",
                "http://jabber.org/protocol/disco#items"):
        assert "var='%s'" % var in info, info
    raw.send("<iq type='get' id='v1' to='example.net'><query "
             "xmlns='jabber:iq:version'/></iq>")
    ver = raw.read_until(r"</iq>")
    assert "<name>Skywave</name>" in ver and "<version>" in ver
    assert "<os>" not in ver            # off by default (XEP-0092 §5)
    raw.send("<iq type='get' id='u1' to='example.net'><query "
             "xmlns='urn:example:unknown'/></iq>")
    assert "<service-unavailable" in raw.read_until(r"</iq>")
