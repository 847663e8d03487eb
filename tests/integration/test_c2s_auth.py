"""SASL as an attacker drives it: exchanges aborted or restarted with
another identity, unknown accounts probed for their salt, iteration count
and timing, and repeated failures from one address (RFC 6120 §6, §13;
RFC 5802 §9).  A hand-written SCRAM client on a raw TLS stream, so every
message is the test's own."""
import base64
import hashlib
import hmac
import os
import re
import statistics
import time

import pytest

from conftest import Server
from test_c2s import Raw, stream_error

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
HASHES = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-1": hashlib.sha1}


def b64(data):
    return base64.b64encode(data).decode()


class Scram:
    """The client side of RFC 5802, one exchange."""

    def __init__(self, mech, user):
        self.h = HASHES[mech]
        self.mech = mech
        self.user = user
        self.cnonce = b64(os.urandom(18))
        self.bare = "n=%s,r=%s" % (user, self.cnonce)

    def first(self):
        return b64(("n,," + self.bare).encode())

    def server_first(self, challenge):
        self.sfirst = base64.b64decode(challenge).decode()
        attrs = dict(a.split("=", 1) for a in self.sfirst.split(","))
        assert attrs["r"].startswith(self.cnonce)
        self.nonce = attrs["r"]
        self.salt = base64.b64decode(attrs["s"])
        self.iters = int(attrs["i"])
        return attrs

    def final(self, password):
        salted = hashlib.pbkdf2_hmac(self.h().name, password.encode(),
                                     self.salt, self.iters)
        ckey = hmac.new(salted, b"Client Key", self.h).digest()
        stored = self.h(ckey).digest()
        without = "c=biws,r=%s" % self.nonce
        auth = ",".join([self.bare, self.sfirst, without]).encode()
        sig = hmac.new(stored, auth, self.h).digest()
        proof = bytes(a ^ b for a, b in zip(ckey, sig))
        return b64(("%s,p=%s" % (without, b64(proof))).encode())


def tls_stream(server):
    """A raw client with TLS up and the post-TLS features read."""
    raw = Raw(server.port)
    raw.starttls()
    return raw


def auth(raw, mech, payload):
    raw.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
             % (SASL, mech, payload or "="))


def read_sasl(raw):
    """('challenge', data) / ('success', data) / ('failure', condition)."""
    text = raw.read_until(r"<challenge[^>]*>[^<]*</challenge>"
                          r"|<success[^>]*(/>|>[^<]*</success>)"
                          r"|<failure[^>]*>.*?</failure>"
                          r"|</stream:stream>")
    m = re.search(r"<(challenge|success)[^>]*?(?:/>|>([^<]*)<)", text)
    if m:
        return m.group(1), m.group(2) or ""
    m = re.search(r"<failure[^>]*><([a-z-]+)", text)
    if m:
        return "failure", m.group(1)
    return "closed", text


def scram_start(raw, mech, user):
    s = Scram(mech, user)
    auth(raw, mech, s.first())
    kind, data = read_sasl(raw)
    assert kind == "challenge", (kind, data)
    s.server_first(data)
    return s


def bound_jid(raw):
    """Opens the new stream after <success/>, binds, returns the JID."""
    raw.header()
    raw.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:"
             "ns:xmpp-bind'/></iq>")
    text = raw.read_until(r"</iq>")
    m = re.search(r"<jid>([^<]+)</jid>", text)
    return m.group(1) if m else None


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
@pytest.mark.parametrize("victim", ["bob", "nobody"])
def test_restarted_scram_cannot_switch_identity(server, mech, victim):
    """The review's exploit: SCRAM for alice, a new <auth/> as bob (or a
    user that does not exist), finished with alice's password."""
    raw = tls_stream(server)
    scram_start(raw, mech, "alice")
    s = scram_start(raw, mech, victim)
    raw.send("<response xmlns='%s'>%s</response>" % (SASL, s.final("pw-alice")))
    kind, data = read_sasl(raw)
    assert kind == "failure" and data == "not-authorized", (kind, data)
    assert "authenticated %s@" % victim not in server.log_text()


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_plain_after_aborted_scram_checks_its_own_user(server, mech):
    raw = tls_stream(server)
    scram_start(raw, mech, "alice")
    auth(raw, "PLAIN", b64(b"\0bob\0pw-alice"))
    kind, data = read_sasl(raw)
    assert kind == "failure" and data == "not-authorized", (kind, data)
    auth(raw, "PLAIN", b64(b"\0nobody\0pw-alice"))
    kind, data = read_sasl(raw)
    assert kind == "failure" and data == "not-authorized", (kind, data)
    assert "authenticated bob@" not in server.log_text()
    assert "authenticated nobody@" not in server.log_text()


@pytest.mark.parametrize("first", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
@pytest.mark.parametrize("second", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
@pytest.mark.parametrize("how", ["restart", "abort"])
def test_every_mechanism_after_an_aborted_exchange(server, first, second,
                                                   how):
    """Any exchange left half-way (a new <auth/>, or <abort/>) and then
    another identity: the wrong password fails, bob's own succeeds and
    binds bob, never alice."""
    raw = tls_stream(server)
    if first == "PLAIN":
        # PLAIN is one step: the half-way state is a failed attempt
        auth(raw, "PLAIN", b64(b"\0alice\0wrong"))
        assert read_sasl(raw) == ("failure", "not-authorized")
    else:
        scram_start(raw, first, "alice")
        if how == "abort":
            raw.send("<abort xmlns='%s'/>" % SASL)
            assert read_sasl(raw) == ("failure", "aborted")

    def attempt(password):
        if second == "PLAIN":
            auth(raw, "PLAIN", b64(("\0bob\0" + password).encode()))
        else:
            s = scram_start(raw, second, "bob")
            raw.send("<response xmlns='%s'>%s</response>"
                     % (SASL, s.final(password)))
        return read_sasl(raw)

    assert attempt("pw-alice") == ("failure", "not-authorized")
    kind, _ = attempt("pw-bob")
    assert kind == "success"
    assert bound_jid(raw).startswith("bob@example.net/")


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_unknown_account_looks_like_a_known_one(server, mech):
    """RFC 5802 §9: the same salt for the same unknown name every time,
    salt of the same length and the same iteration count as a real
    account, and the exchange fails at the end, as a wrong password."""
    def first_reply(user):
        raw = tls_stream(server)
        s = scram_start(raw, mech, user)
        return raw, s

    raw, real = first_reply("alice")
    raw.sock.close()
    raw, ghost1 = first_reply("nobody")
    raw.send("<response xmlns='%s'>%s</response>" % (SASL, ghost1.final("x")))
    assert read_sasl(raw) == ("failure", "not-authorized")
    raw.sock.close()
    raw, ghost2 = first_reply("nobody")
    raw.sock.close()
    raw, other = first_reply("nobody2")
    raw.sock.close()
    assert ghost1.salt == ghost2.salt
    assert ghost1.salt != other.salt
    assert len(ghost1.salt) == len(real.salt)
    assert ghost1.iters == real.iters


def test_unknown_account_costs_the_same_with_plain(server):
    """PLAIN against an unknown account does the same key derivation as
    against a real one: compare medians of several attempts each (a
    server that skips it answers in a fraction of the time)."""
    def timed(user):
        raw = tls_stream(server)
        t = time.perf_counter()
        auth(raw, "PLAIN", b64(("\0%s\0wrong" % user).encode()))
        assert read_sasl(raw) == ("failure", "not-authorized")
        dt = time.perf_counter() - t
        raw.sock.close()
        return dt
    known, unknown = [], []
    for _ in range(7):
        known.append(timed("alice"))
        unknown.append(timed("nobody"))
    k, u = statistics.median(known), statistics.median(unknown)
    # 4096 PBKDF2 iterations dominate; without them unknown is ~0.3x
    assert u > 0.6 * k, (known, unknown)


def test_repeated_failures_ban_the_address(tmp_path):
    s = Server(tmp_path, extra="c2s_auth_ban_failures = 4\n"
                               "c2s_auth_ban_time = \"30s\"\n")
    s.adduser("alice@example.net", "pw-alice")
    s.start()
    try:
        for _ in range(2):
            raw = tls_stream(s)
            for _ in range(2):
                auth(raw, "PLAIN", b64(b"\0alice\0wrong"))
                assert read_sasl(raw) == ("failure", "not-authorized")
            raw.sock.close()
        # the fifth attempt, with the right password, is refused
        raw = tls_stream(s)
        auth(raw, "PLAIN", b64(b"\0alice\0pw-alice"))
        stream_error(raw, "policy-violation")
        assert "127.0.0.1 banned for 30 s after 4 failed" in s.log_text()
        assert "authenticated alice@" not in s.log_text()
    finally:
        assert s.stop() == 0


def test_failures_below_the_limit_do_not_ban(tmp_path):
    s = Server(tmp_path, extra="c2s_auth_ban_failures = 4\n")
    s.adduser("alice@example.net", "pw-alice")
    s.start()
    try:
        raw = tls_stream(s)
        for _ in range(2):
            auth(raw, "PLAIN", b64(b"\0alice\0wrong"))
            assert read_sasl(raw) == ("failure", "not-authorized")
        auth(raw, "PLAIN", b64(b"\0alice\0pw-alice"))
        assert read_sasl(raw)[0] == "success"
    finally:
        assert s.stop() == 0


def test_connections_per_address_are_capped(tmp_path):
    s = Server(tmp_path, extra="c2s_max_connections_per_address = 3\n")
    s.start()
    try:
        held = [Raw(s.port) for _ in range(3)]
        for r in held:
            r.header()
        extra = Raw(s.port)
        assert extra.closed(), "a fourth connection was let through"
        assert "c2s_max_connections_per_address (3) reached" in s.log_text()
        held[0].sock.close()
        deadline = time.time() + 5
        while True:  # the count drops once the server sees the close
            again = Raw(s.port)
            try:
                again.header()
                break
            except (AssertionError, OSError):
                assert time.time() < deadline
                time.sleep(0.2)
    finally:
        assert s.stop() == 0
