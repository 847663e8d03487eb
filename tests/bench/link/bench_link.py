#!/usr/bin/python3
"""Link benchmark: Skywave's peer link against Prosody's standard S2S over
the same emulated constrained links (tools/skywave-linkemu), same run.

For each profile and each system, two servers (a.example in namespace A,
b.example in namespace B) and the same scripted traffic from raw clients
on each side: logins, roster, subscription both ways, 100 chat messages of
about 100 characters with chat states, presence changes. Measured: IP
bytes each way on the link (emulator counters), the first message's
delivery time and the application round trips before it (a sniffer on the
TUN device), delivery latency p50/p95, compression (Skywave's
links.json), the first message after an outage (from link-up), and a
client in B logging in to A's server across the link (c2s over the link).

A benchmark, never a test: it prints a table, writes JSON and exits 0.
Needs root (namespaces); see tests/bench/README.md.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)
from netns import Emu, Sniffer, TinyDNS, connect_in  # noqa: E402
import swnet                                          # noqa: E402

ADDR = {"a": "10.77.0.1", "b": "10.77.0.2"}
DOMAIN = {"a": "a.example", "b": "b.example"}
DEV = "lemu0"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
CHATSTATES = "http://jabber.org/protocol/chatstates"
CAPS = ("<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
        "node='https://skywave.invalid/bench' "
        "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>")
WORDS = ("position report heading speed knots wind from the north west "
         "fuel water crew all well arriving tomorrow morning delayed by "
         "weather please confirm the next window for the supply drop "
         "engine pressure nominal battery at percent temperature sea state "
         "visibility good poor moderate swell meters course change").split()


def body(n):
    """About 100 characters of varied text, the same in every run: DEFLATE
    would make identical bodies look far cheaper than real chat."""
    import random
    rnd = random.Random(n)
    words = []
    while sum(len(w) + 1 for w in words) < 95:
        words.append(rnd.choice(WORDS))
    return ("%d: " % n + " ".join(words))[:100]


BODY = body(-1)

# rate bit/s, one-way delay s, turnaround s (half duplex), message
# interval s, most messages for Skywave and for Prosody (its TLS stanzas
# are 3x Skywave's), budget: seconds for one system on the profile (at
# least --budget).  hf-ip carries about one short stanza a second and
# loses 3 s at every change of direction: 30 messages there.
PROFILES = {
    "satcom-64k": dict(rate=64000, delay=0.3, turn=0.0, interval=0.2,
                       skywave_messages=100, prosody_messages=100,
                       budget=420),
    "iridium": dict(rate=2400, delay=1.5, turn=0.0, interval=1.0,
                    skywave_messages=100, prosody_messages=20, budget=420),
    "vhf": dict(rate=9600, delay=0.0, turn=0.5, interval=0.5,
                skywave_messages=100, prosody_messages=100, budget=420),
    "hf-ip": dict(rate=1200, delay=0.0, turn=3.0, interval=2.0,
                  skywave_messages=30, prosody_messages=10, budget=900),
}


# skywave: the defaults, with net.ipv4.tcp_fastopen = 3 in both namespaces
# as the admin guide recommends (link_tcp_fastopen is on by default);
# skywave-notfo: the same with link_tcp_fastopen = false; skywave-tls:
# with peer_tls and pinned certificates (resumed TLS 1.3 sessions on
# reconnects); skywave-plain:
# both ends with peer_protocol = "xep0361", as with a peer that speaks
# XEP-0361 and nothing else (no hello, no acks, no compression; what TCP
# acknowledged is done)
SYSTEMS = ("skywave", "skywave-zstd", "skywave-notfo", "skywave-tls",
           "skywave-plain", "prosody")


def floor_seconds(p, stanza_len):
    """Least possible time from link-up to delivery: one TCP handshake
    round trip (40-byte SYN and SYN-ACK), the one-way delay, the stanza's
    own transmission (plaintext + 52 bytes of TCP/IP headers: an upper
    bound for a compressed stanza) and, on half duplex, two turnarounds."""
    syn = 2 * (p["delay"] + 60 * 8.0 / p["rate"])
    return syn + p["delay"] + (stanza_len + 52) * 8.0 / p["rate"] \
        + 2 * p["turn"]


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


# --- client ---------------------------------------------------------------

class ProtocolError(Exception):
    pass


_salted = {}


class Client:
    """A raw XMPP client (asyncio) on a socket opened in a namespace; it
    timestamps every message and presence it receives."""

    def __init__(self, name):
        self.name = name
        self.buf = b""
        self.events = []        # (monotonic time, kind, id, opening tag)
        self.text = ""
        self.pos = 0
        self.reader_task = None

    async def read_until(self, pattern, timeout):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                text = self.buf[:m.end()]
                self.buf = self.buf[m.end():]
                return text, m
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError("%s: timeout waiting for %r; got %r"
                                    % (self.name, pattern, self.buf[-200:]))
            chunk = await asyncio.wait_for(self.reader.read(65536), left)
            if not chunk:
                raise ProtocolError("%s: closed waiting for %r" %
                                    (self.name, pattern))
            self.buf += chunk

    async def features(self, domain, timeout):
        self.writer.write(
            ("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:"
             "client' xmlns:stream='http://etherx.jabber.org/streams' "
             "version='1.0'>" % domain).encode())
        text, _ = await self.read_until(
            rb"</stream:features>|<stream:features/>|</stream:stream>",
            timeout)
        if b"</stream:stream>" in text:
            raise ProtocolError("stream closed: %r" % text[-300:])
        return text

    async def login(self, ns, addr, user, domain, password, resource,
                    timeout=30):
        sock = connect_in(ns, addr, 5222, timeout)
        self.reader, self.writer = await asyncio.open_connection(
            sock=sock, limit=1 << 20)
        await self.features(domain, timeout)
        self.writer.write(b"<starttls xmlns='urn:ietf:params:xml:ns:"
                          b"xmpp-tls'/>")
        await self.read_until(rb"<proceed[^>]*/>", timeout)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        await self.writer.start_tls(ctx, server_hostname=domain)
        self.buf = b""
        feats = await self.features(domain, timeout)
        if b">SCRAM-SHA-1<" not in feats:
            raise ProtocolError("no SCRAM-SHA-1: %r" % feats)
        await self.scram_sha1(user, password, timeout)
        await self.features(domain, timeout)
        self.writer.write(("<iq type='set' id='bind1'><bind xmlns='urn:ietf:"
                           "params:xml:ns:xmpp-bind'><resource>%s</resource>"
                           "</bind></iq>" % resource).encode())
        text, _ = await self.read_until(rb"</iq>|<iq[^>]*/>", timeout)
        if b"result" not in text:
            raise ProtocolError("bind failed: %r" % text)
        self.jid = "%s@%s/%s" % (user, domain, resource)
        self.text = self.buf.decode(errors="replace")
        self.buf = b""
        self.reader_task = asyncio.ensure_future(self.read_loop())

    async def scram_sha1(self, user, password, timeout):
        """Client side of RFC 5802 (gs2 header 'n,,')."""
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=%s,r=%s" % (user, cnonce)
        self.writer.write(("<auth xmlns='%s' mechanism='SCRAM-SHA-1'>%s"
                           "</auth>" % (SASL_NS, b64("n,," + first_bare))
                           ).encode())
        text, m = await self.read_until(
            rb"<challenge[^>]*>([^<]*)</challenge>|</failure>", timeout)
        if m.group(1) is None:
            raise ProtocolError("SASL failure: %r" % text)
        server_first = base64.b64decode(m.group(1)).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        nonce, salt, it = attrs["r"], attrs["s"], int(attrs["i"])
        key = (password, salt, it)
        if key not in _salted:
            _salted[key] = hashlib.pbkdf2_hmac(
                "sha1", password.encode(), base64.b64decode(salt), it)
        salted = _salted[key]
        client_key = hmac.new(salted, b"Client Key", "sha1").digest()
        stored_key = hashlib.sha1(client_key).digest()
        final_bare = "c=biws,r=%s" % nonce
        auth_msg = ",".join((first_bare, server_first, final_bare)).encode()
        sig = hmac.new(stored_key, auth_msg, "sha1").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.writer.write(("<response xmlns='%s'>%s</response>" % (
            SASL_NS, b64(final_bare + ",p=" + b64(proof)))).encode())
        text, m = await self.read_until(
            rb"<success[^>]*>([^<]*)</success>|<success[^>]*/>|</failure>",
            timeout)
        if b"<success" not in text:
            raise ProtocolError("SASL failure: %r" % text)

    async def read_loop(self):
        rx = re.compile(r"<(message|presence|iq)\b[^>]*>")
        idrx = re.compile(r"""\bid=['"]([^'"]*)['"]""")
        self.scan(rx, idrx)
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            self.text += chunk.decode(errors="replace")
            self.scan(rx, idrx)

    def scan(self, rx, idrx):
        now = time.monotonic()
        while True:
            m = rx.search(self.text, self.pos)
            if not m:
                return
            tag = m.group(0)
            i = idrx.search(tag)
            self.events.append((now, m.group(1), i.group(1) if i else None,
                                tag, m.start()))
            self.pos = m.end()

    def stanza_text(self, ev, n=600):
        return self.text[ev[4]:ev[4] + n]

    async def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.events:
                if pred(ev):
                    return ev
            await asyncio.sleep(0.005)
        raise ProtocolError("%s: timeout (%ds) waiting for %s"
                            % (self.name, timeout, what))

    def send(self, xml):
        self.writer.write(xml.encode())

    def close(self):
        if self.reader_task:
            self.reader_task.cancel()
        try:
            self.writer.write(b"</stream:stream>")
            self.writer.close()
        except Exception:
            pass


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def is_msg(mid):
    return lambda ev: ev[1] == "message" and ev[2] == mid


def presence_from(c, frm, show=None, ptype=None):
    def pred(ev):
        if ev[1] != "presence" or ("from='%s" % frm) not in ev[3] and \
                ('from="%s' % frm) not in ev[3]:
            return False
        if ptype is not None:
            return ("type='%s'" % ptype) in ev[3] or \
                ('type="%s"' % ptype) in ev[3]
        if "type=" in ev[3]:
            return False
        body = c.stanza_text(ev)
        if show is None:
            return True
        return ("<show>%s</show>" % show) in body.split("</presence>")[0]
    return pred


# --- servers --------------------------------------------------------------

def make_certs(work, extra_names=None):
    """extra_names (optional): {side: [more DNS names]} for each side's
    certificate (e.g. its MUC service)."""
    out = {}
    for side in "ab":
        key = os.path.join(work, "%s.key" % side)
        crt = os.path.join(work, "%s.crt" % side)
        names = [DOMAIN[side]] + list((extra_names or {}).get(side, ()))
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "30",
                        "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-subj",
                        "/CN=" + DOMAIN[side], "-addext",
                        "subjectAltName=" + ",".join("DNS:" + n
                                                     for n in names),
                        "-keyout", key, "-out", crt], check=True,
                       capture_output=True)
        os.chmod(key, 0o644)
        out[side] = (crt, key)
    bundle = os.path.join(work, "both.crt")
    with open(bundle, "w") as f:
        for side in "ab":
            f.write(open(out[side][0]).read())
    return out, bundle


def peer_tls(certs, side, other):
    """Peer options for TLS from the first byte, the other side's
    certificate pinned by its SHA-256."""
    return swnet.tls_options(certs[side][0], certs[side][1],
                             pin=swnet.fingerprint(certs[other][0]))


USERS = {"a": [("alice", "pw-alice-1"), ("carol", "pw-carol-1")],
         "b": [("bob", "pw-bob-1")]}


class SkywavePair:
    name = "skywave"

    def __init__(self, work, emu, certs, bundle, tree, fastopen=True,
                 tls=False, zstd=False, plain=False, users=None,
                 extra_config=None, peer_domains=None, peer_extra=None,
                 cgroups=True):
        """Optional hooks (bench_muc.py), each {side: value}: users
        (instead of USERS), extra_config (text appended to that side's
        config), peer_domains (more domains of the other side in its Peer
        section), peer_extra (more lines in its Peer section); cgroups:
        each server in a cgroup2 group of its own, as systemd runs a
        service (link_tcp then sets handshake timeouts, link_tcp_bpf.c)."""
        self.tree, self.emu, self.procs, self.dirs = tree, emu, {}, {}
        self.cgroups = {}
        if cgroups:
            for side in "ab":
                self.cgroups[side] = swnet.own_cgroup(
                    "bench-%s-%s" % (side, os.path.basename(work)))
        users = users or USERS
        extra_config = extra_config or {}
        peer_domains = peer_domains or {}
        peer_extra = peer_extra or {}
        if fastopen:
            # TCP Fast Open: the kernel of each namespace must accept it
            for ns in (emu.ns_a, emu.ns_b):
                subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                                "net.ipv4.tcp_fastopen=3"], check=True)
        self.env = dict(os.environ)
        self.env["SKYWAVE_MODULE_PATH"] = os.path.join(tree, "modules")
        for side, other in (("a", "b"), ("b", "a")):
            d = os.path.join(work, "skywave-" + side)
            os.makedirs(d)
            self.dirs[side] = d
            with open(os.path.join(d, "skywave.cfg.lua"), "w") as f:
                f.write(
                    'data_dir = "state"\nlog_file = "skywave.log"\n'
                    'log_level = "%s"\n' % os.environ.get(
                        "BENCH_LOG_LEVEL", "info")
                    +
                    'modules = { "c2s", "im", "server", "link_tcp" }\n'
                    'c2s_interfaces = { "127.0.0.1", "%s" }\n'
                    'c2s_port = 5222\nc2s_direct_tls_port = 0\n'
                    # a login across hf-ip takes over the default 60 s:
                    # measured, not cut (the bench waits --timeout)
                    'c2s_negotiation_timeout = "600s"\n'
                    'c2s_certificate = "%s"\nc2s_key = "%s"\n'
                    'link_tcp_interfaces = { "%s" }\nlink_tcp_port = 5270\n'
                    'link_tcp_fastopen = %s\n'
                    'Peer "%s" {\n    peer_domains = { %s },\n'
                    '    link_tcp_address = "%s",\n'
                    '    link_tcp_peer_port = 5270,\n%s}\n'
                    'VirtualHost "%s"\n%s'
                    % (ADDR[side], certs[side][0], certs[side][1],
                       ADDR[side], "true" if fastopen else "false", other,
                       ", ".join('"%s"' % dom for dom in [DOMAIN[other]]
                                 + list(peer_domains.get(side, ()))),
                       ADDR[other],
                       (peer_tls(certs, side, other) if tls else "")
                       + ('    peer_codec = "zstd",\n' if zstd else "")
                       + ('    peer_protocol = "xep0361",\n' if plain
                          else "")
                       + peer_extra.get(side, ""),
                       DOMAIN[side], extra_config.get(side, "")))
            for user, pw in users[side]:
                r = subprocess.run(
                    [os.path.join(tree, "skywavectl"), "-c",
                     os.path.join(d, "skywave.cfg.lua"), "adduser",
                     "%s@%s" % (user, DOMAIN[side])], env=self.env,
                    input=pw + "\n", capture_output=True, text=True,
                    timeout=60, cwd=d)
                if r.returncode != 0:
                    raise RuntimeError("adduser: " + r.stderr.strip())

    def _spawn(self, side, mode):
        ns = self.emu.ns_a if side == "a" else self.emu.ns_b
        d = self.dirs[side]
        self.procs[side] = subprocess.Popen(
            ["ip", "netns", "exec", ns,
             os.path.join(self.tree, "skywaved"), "-c",
             os.path.join(d, "skywave.cfg.lua")], env=self.env, cwd=d,
            stdout=open(os.path.join(d, "stderr"), mode),
            stderr=subprocess.STDOUT,
            preexec_fn=swnet.into_cgroup(self.cgroups.get(side)))

    def start(self):
        for side in "ab":
            self._spawn(side, "w")
        for side in "ab":
            wait_log(os.path.join(self.dirs[side], "skywave.log"),
                     "started", self.procs[side], 30)

    def restart(self, side):
        """kill -9 and start again; returns once it has started."""
        restart_proc(self, side, "skywave.log", " started (pid")

    def link_counters(self):
        p = os.path.join(self.dirs["a"], "state", "links.json")
        try:
            return json.load(open(p))["links"][0]
        except (OSError, ValueError, IndexError, KeyError):
            return None

    def log(self, side):
        return read(os.path.join(self.dirs[side], "skywave.log"))

    def stop(self):
        rcs = {s: stop_proc(p) for s, p in self.procs.items()}
        for d in self.cgroups.values():
            swnet.drop_cgroup(d)
        return rcs


class ProsodyPair:
    name = "prosody"

    def __init__(self, work, emu, certs, bundle, iterations=4096,
                 users=None, extra_config=None, dns_names=None):
        """Optional hooks (bench_muc.py): users and extra_config as for
        SkywavePair; dns_names: more names for TinyDNS {name: address}."""
        self.emu, self.procs, self.dirs = emu, {}, {}
        self.dns = []
        self.dns_names = dns_names or {}
        users = users or USERS
        extra_config = extra_config or {}
        for side, other in (("a", "b"), ("b", "a")):
            d = os.path.join(work, "prosody-" + side)
            data = os.path.join(d, "data")
            os.makedirs(data)
            self.dirs[side] = d
            crt, key = certs[side]
            with open(os.path.join(d, "prosody.cfg.lua"), "w") as f:
                f.write('''
daemonize = false
run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{data}"
log = {{ {{ levels = {{ min = "info" }}, to = "file",
           filename = "{d}/prosody.log" }} }}
interfaces = {{ "127.0.0.1" }}
c2s_interfaces = {{ "127.0.0.1", "{addr}" }}
s2s_interfaces = {{ "{addr}" }}
c2s_ports = {{ 5222 }}
s2s_ports = {{ 5269 }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
use_ipv6 = false
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping",
                     "dialback" }}
modules_disabled = {{ "posix" }}
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_hashed"
storage = "internal"
allow_registration = false
ssl = {{ certificate = "{crt}", key = "{key}", cafile = "{bundle}" }}
certificates = "{certdir}"
VirtualHost "{host}"
    ssl = {{ certificate = "{crt}", key = "{key}", cafile = "{bundle}" }}
'''.format(d=d, data=data, addr=ADDR[side], crt=crt, key=key,
           bundle=bundle, host=DOMAIN[side],
           certdir=os.path.dirname(crt)) + extra_config.get(side, ""))
            host_dir = DOMAIN[side].replace(".", "%2e")
            acc = os.path.join(data, host_dir, "accounts")
            os.makedirs(acc)
            for user, pw in users[side]:
                salt = base64.b16encode(os.urandom(16)).decode().lower()
                salted = hashlib.pbkdf2_hmac("sha1", pw.encode(),
                                             salt.encode(), iterations)
                ck = hmac.new(salted, b"Client Key", "sha1").digest()
                with open(os.path.join(acc, user + ".dat"), "w") as f:
                    f.write('return {\n\t["iteration_count"] = %d;\n'
                            '\t["salt"] = "%s";\n\t["stored_key"] = "%s";\n'
                            '\t["server_key"] = "%s";\n};\n'
                            % (iterations, salt,
                               hashlib.sha1(ck).hexdigest(),
                               hmac.new(salted, b"Server Key",
                                        "sha1").hexdigest()))

    def start(self):
        if shutil.which("prosody") is None:
            raise RuntimeError("prosody is not installed")
        names = {DOMAIN["a"]: ADDR["a"], DOMAIN["b"]: ADDR["b"]}
        names.update(self.dns_names)
        for ns in (self.emu.ns_a, self.emu.ns_b):
            t = TinyDNS(ns, names)
            t.start()
            self.dns.append(t)
        for side in "ab":
            self._spawn(side, "w")
        for side in "ab":
            wait_log(os.path.join(self.dirs[side], "prosody.log"),
                     "Activated service 'c2s'", self.procs[side], 30)

    def _spawn(self, side, mode):
        ns = self.emu.ns_a if side == "a" else self.emu.ns_b
        d = self.dirs[side]
        self.procs[side] = subprocess.Popen(
            ["ip", "netns", "exec", ns, "prosody", "--config",
             os.path.join(d, "prosody.cfg.lua")], cwd=d,
            stdout=open(os.path.join(d, "stderr"), mode),
            stderr=subprocess.STDOUT)

    def restart(self, side):
        """kill -9 and start again; returns once it has started."""
        restart_proc(self, side, "prosody.log", "Activated service 'c2s'")

    def link_counters(self):
        return None

    def log(self, side):
        return read(os.path.join(self.dirs[side], "prosody.log"))

    def stop(self):
        rc = {s: stop_proc(p) for s, p in self.procs.items()}
        for t in self.dns:
            t.stop()
        return rc


def read(path):
    try:
        return open(path, errors="replace").read()
    except OSError:
        return ""


def wait_log(path, text, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in read(path):
            return
        if proc.poll() is not None:
            raise RuntimeError("%s exited: %s" % (path, read(path)[-800:]))
        time.sleep(0.05)
    raise RuntimeError("no %r in %s: %s" % (text, path, read(path)[-800:]))


def restart_proc(pair, side, logname, started):
    """kill -9 one server of a pair and start it again (its log
    appended to); returns once the log says it started once more."""
    proc = pair.procs[side]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log = os.path.join(pair.dirs[side], logname)
    n = read(log).count(started)
    pair._spawn(side, "a")
    deadline = time.time() + 30
    while read(log).count(started) <= n:
        if time.time() > deadline or pair.procs[side].poll() is not None:
            raise RuntimeError("%s did not restart" % side)
        time.sleep(0.05)


def stop_proc(proc):
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "killed after SIGTERM timeout"


# --- the scripted traffic ---------------------------------------------------

MARKS = []      # (what, monotonic time): written beside the packets (--keep)


def mark(what):
    MARKS.append((what, time.monotonic()))


def link_ctl(emu, state):
    mark("link " + state)
    return emu.ctl(state) == "ok"


def chat(to, mid, body):
    return ("<message to='%s' type='chat' id='%s'><body>%s</body>"
            "<active xmlns='%s'/></message>" % (to, mid, body, CHATSTATES))


def composing(to, n):
    return ("<message to='%s' type='chat' id='cs%d'><composing xmlns='%s'/>"
            "</message>" % (to, n, CHATSTATES))


async def scripted(pair, emu, sniff, prof, nmsg, res, timeout):
    ab_to = "bob@" + DOMAIN["b"]
    al_to = "alice@" + DOMAIN["a"]
    alice, bob = Client("alice"), Client("bob")
    await alice.login(emu.ns_a, "127.0.0.1", "alice", DOMAIN["a"],
                      "pw-alice-1", "ship")
    await bob.login(emu.ns_b, "127.0.0.1", "bob", DOMAIN["b"],
                    "pw-bob-1", "shore")
    for c in (alice, bob):
        c.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/>"
               "</iq><presence><priority>1</priority>%s</presence>" % CAPS)
    await alice.wait_for(lambda ev: ev[1] == "iq" and ev[2] == "r1", 30,
                         "roster")
    await asyncio.sleep(0.5)
    st0 = emu.stats()

    # The first message between the two servers: for Prosody the S2S
    # connection starts here (cold); Skywave's link is up since start.
    first = chat(ab_to, "first", BODY)
    t0 = time.monotonic()
    alice.send(first)
    ev = await bob.wait_for(is_msg("first"), timeout, "the first message")
    res["first_cold"] = ev[0] - t0
    res["first_cold_rt"], res["first_cold_packets"] = sniff.flights(t0,
                                                                    ev[0])
    res["floor"] = floor_seconds(prof, len(first))

    # Subscriptions both ways (RFC 6121 §3).
    alice.send("<presence to='%s' type='subscribe'/>" % ab_to)
    await bob.wait_for(presence_from(bob, al_to, ptype="subscribe"),
                       timeout, "subscribe from alice")
    bob.send("<presence to='%s' type='subscribed'/>"
             "<presence to='%s' type='subscribe'/>" % (al_to, al_to))
    await alice.wait_for(presence_from(alice, ab_to, ptype="subscribe"),
                         timeout, "subscribe from bob")
    alice.send("<presence to='%s' type='subscribed'/>" % ab_to)
    await alice.wait_for(presence_from(alice, ab_to), timeout,
                         "bob's presence")
    await bob.wait_for(presence_from(bob, al_to), timeout,
                       "alice's presence")

    # Messages, each announced by a chat state; bob answers every tenth.
    sent = {}
    for i in range(nmsg):
        alice.send(composing(ab_to, i))
        mid = "m%d" % i
        sent[mid] = time.monotonic()
        alice.send(chat(ab_to, mid, body(i)))
        if i % 10 == 9:
            bob.send(chat(al_to, "r%d" % i, body(1000 + i)))
        await asyncio.sleep(prof["interval"])
    lat, missing = [], []
    deadline = time.monotonic() + timeout
    for mid, ts in sent.items():
        try:
            ev = await bob.wait_for(is_msg(mid),
                                    max(1, deadline - time.monotonic()),
                                    mid)
            lat.append(ev[0] - ts)
        except ProtocolError:
            missing.append(mid)
    ids = [ev[2] for ev in bob.events if ev[1] == "message" and ev[2]
           and ev[2].startswith("m")]
    res["messages"] = nmsg
    res["delivered"] = nmsg - len(missing)
    res["duplicates"] = len(ids) - len(set(ids))
    res["lat_p50"], res["lat_p95"] = pct(lat, 0.5), pct(lat, 0.95)
    res["in_order"] = ids == sorted(set(ids), key=lambda s: int(s[1:]))

    # Presence changes, each waited for at the other end.
    for c, other, show in ((alice, bob, "away"), (bob, alice, "dnd"),
                           (alice, bob, "xa")):
        c.send("<presence><show>%s</show><status>%s</status>%s</presence>"
               % (show, "bench " + show, CAPS))
        frm = al_to if c is alice else ab_to
        await other.wait_for(presence_from(other, frm, show=show), timeout,
                             "presence " + show)
    await asyncio.sleep(2 * prof["delay"] + 1)
    st1 = emu.stats()
    res["bytes_ab"] = st1["a_to_b"]["bytes"] - st0["a_to_b"]["bytes"]
    res["bytes_ba"] = st1["b_to_a"]["bytes"] - st0["b_to_a"]["bytes"]
    res["drops"] = sum(st1[d]["dropped_queue"] - st0[d]["dropped_queue"]
                       for d in ("a_to_b", "b_to_a"))
    # per chat message of the conversation: its chat state, bob's replies
    # and the subscriptions and presence changes share the cost
    res["ip_per_msg"] = (res["bytes_ab"] + res["bytes_ba"]) / \
        (nmsg + nmsg // 10)
    return alice, bob


async def cold_start(emu, sniff, prof, res, down, timeout):
    """Both servers started while the link is down (bench() took it down
    before starting them); a message from bob (b.example, whose
    connections lose a simultaneous open) to alice waits; after `down`
    s the link comes up: T0 = link up, T1 = the message at alice."""
    alice, bob = Client("alice"), Client("bob")
    await alice.login(emu.ns_a, "127.0.0.1", "alice", DOMAIN["a"],
                      "pw-alice-1", "cold")
    await bob.login(emu.ns_b, "127.0.0.1", "bob", DOMAIN["b"],
                    "pw-bob-1", "cold")
    for c in (alice, bob):
        c.send("<presence/>")
    msg = chat("alice@" + DOMAIN["a"], "cold", BODY)
    bob.send(msg)
    await asyncio.sleep(down)
    st0 = emu.stats()
    t0 = time.monotonic()
    assert link_ctl(emu, "up")
    try:
        ev = await alice.wait_for(is_msg("cold"), timeout,
                                  "the message queued before the link")
        res["cold_first"] = ev[0] - t0
        MARKS.append(("delivered cold", ev[0]))
        await asyncio.sleep(2 * prof["delay"] + 1)
        st1 = emu.stats()
        res["cold_bytes"] = sum(st1[d]["bytes"] - st0[d]["bytes"]
                                for d in ("a_to_b", "b_to_a"))
    except ProtocolError as e:
        res["cold_first"] = None
        res["cold_error"] = str(e)
    res["cold_floor"] = floor_seconds(prof, len(msg))
    for c in (alice, bob):
        c.close()


async def after_outage(emu, sniff, prof, alice, bob, res, down, timeout,
                       n=0):
    """Link down for `down` s with a message queued in the middle of it;
    T0 = link up, T1 = the message at bob.  The first outage of a run
    fills outage_first; every one is in outages[down]."""
    mid = "outage%d" % n
    msg = chat("bob@" + DOMAIN["b"], mid, BODY)
    assert link_ctl(emu, "down")
    await asyncio.sleep(down / 2)
    alice.send(msg)
    await asyncio.sleep(down / 2)
    t0 = time.monotonic()
    assert link_ctl(emu, "up")
    took = None
    try:
        ev = await bob.wait_for(is_msg(mid), timeout,
                                "the message queued during the outage")
        took = ev[0] - t0
        MARKS.append(("delivered after %gs outage" % down, ev[0]))
        if n == 0:
            res["outage_first"] = took
            res["outage_rt"], _ = sniff.flights(t0, ev[0])
    except ProtocolError as e:
        if n == 0:
            res["outage_first"] = None
        res.setdefault("outage_error", "%gs: %s" % (down, e))
    res["outage_floor"] = floor_seconds(prof, len(msg))
    res.setdefault("outages", {})["%g" % down] = took


RESTART_TIMEOUT = 120   # a message not there by then is lost (Prosody's
                        # S2S queue does not outlive its process)


async def after_restart(pair, emu, prof, bob, res, side, down, timeout):
    """The link goes down, alice sends a message, and server `side` is
    killed with SIGKILL and started again while the link is down (its
    connection and its probing state gone); `down` s later the link comes
    up: T0 = link up, T1 = the message at bob (a new session of bob's
    when his own server was the one restarted).  Returns bob's client."""
    key = "restart_" + side
    msg = chat("bob@" + DOMAIN["b"], "rs" + side, BODY)
    assert link_ctl(emu, "down")
    alice = Client("alice")
    await alice.login(emu.ns_a, "127.0.0.1", "alice", DOMAIN["a"],
                      "pw-alice-1", "restart-" + side)
    alice.send(msg)
    await asyncio.sleep(1)
    mark("kill -9 " + side)
    pair.restart(side)
    if side == "b":
        bob.close()
        bob = Client("bob")
        await bob.login(emu.ns_b, "127.0.0.1", "bob", DOMAIN["b"],
                        "pw-bob-1", "again")
        bob.send("<presence/>")
    await asyncio.sleep(down)
    t0 = time.monotonic()
    assert link_ctl(emu, "up")
    try:
        ev = await bob.wait_for(is_msg("rs" + side), timeout,
                                "the message queued before the restart")
        res[key] = ev[0] - t0
        MARKS.append(("delivered " + key, ev[0]))
    except ProtocolError as e:
        res[key] = None
        res[key + "_error"] = str(e)
    alice.close()
    return bob


async def c2s_over_link(emu, sniff, alice, res, timeout):
    """carol@a.example logs in from namespace B to A's server across the
    link and sends alice one message."""
    carol = Client("carol")
    t0 = time.monotonic()
    try:
        await carol.login(emu.ns_b, ADDR["a"], "carol", DOMAIN["a"],
                          "pw-carol-1", "remote", timeout)
    except Exception as e:
        res["c2s_error"] = "%s: %s" % (type(e).__name__, e)
        return
    t1 = time.monotonic()
    res["c2s_login"] = t1 - t0
    res["c2s_login_rt"], _ = sniff.flights(t0, t1)
    carol.send(chat("alice@" + DOMAIN["a"], "c2s1", BODY))
    try:
        ev = await alice.wait_for(is_msg("c2s1"), timeout, "carol's message")
        res["c2s_first_msg"] = ev[0] - t0
    except ProtocolError as e:
        res["c2s_error"] = str(e)
    carol.close()


async def run_one(pair, emu, sniff, prof, nmsg, args, res):
    if args.cold > 0:
        await cold_start(emu, sniff, prof, res, args.cold, args.timeout)
    alice, bob = await scripted(pair, emu, sniff, prof, nmsg, res,
                                args.timeout)
    if not args.no_outage:
        for n, down in enumerate(args.outages):
            await after_outage(emu, sniff, prof, alice, bob, res, down,
                               args.timeout, n)
    await c2s_over_link(emu, sniff, alice, res, args.timeout)
    if pair.name.startswith("skywave"):
        await asyncio.sleep(5.5)        # links.json is rewritten every 5 s
        lc = pair.link_counters()
        if lc:
            res["link_counters_a"] = lc
            wire = lc["wire_out"] + lc["wire_in"]
            res["compression"] = ((lc["bytes_out"] + lc["bytes_in"]) / wire
                                  if wire else None)
            stanzas = lc["stanzas_out"] + lc["stanzas_in"]
            res["payload_per_stanza"] = wire / stanzas if stanzas else None
    alice.close()
    if args.restart > 0:
        # last: the counters above are the run's, not a restarted server's
        for side in "ab":
            bob = await after_restart(pair, emu, prof, bob, res, side,
                                      args.restart,
                                      min(args.timeout, RESTART_TIMEOUT))
    bob.close()


def bench(system, profile, args, work, certs, bundle):
    prof = PROFILES[profile]
    res = {"system": system, "profile": profile}
    tag = "%s%s" % (system[-1] if system != "prosody" else "p", profile[0])
    d = os.path.join(work, "%s-%s" % (system, profile))
    os.makedirs(d)
    emu = pair = sniff = None
    t = time.time()
    MARKS.clear()
    try:
        emu = Emu(args.linkemu, d, tag, ["--profile", profile]
                  + (["--carrier"] if args.carrier else []))
        for kv in args.sysctl:
            for ns in (emu.ns_a, emu.ns_b):
                subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                                kv], check=True)
        sniff = Sniffer(emu.ns_a, DEV, ADDR["a"])
        sniff.start()
        if system.startswith("skywave"):
            pair = SkywavePair(d, emu, certs, bundle, args.tree,
                               fastopen=system != "skywave-notfo",
                               tls=system == "skywave-tls",
                               zstd=system == "skywave-zstd",
                               plain=system == "skywave-plain",
                               peer_extra={
                                   side: "".join("    %s,\n" % o for o in
                                                 args.peer_option)
                                   for side in "ab"},
                               cgroups=not args.no_cgroup)
            pair.name = system
            nmsg = min(args.messages, prof["skywave_messages"])
        else:
            pair = ProsodyPair(d, emu, certs, bundle)
            nmsg = min(args.messages, prof["prosody_messages"])
        if args.cold > 0:
            assert link_ctl(emu, "down")
        pair.start()
        asyncio.run(asyncio.wait_for(
            run_one(pair, emu, sniff, prof, nmsg, args, res),
            max(args.budget, prof["budget"])))
    except Exception as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        if pair:
            res["exit"] = pair.stop()
            for side in "ab":
                log = pair.log(side)
                if system == "prosody":
                    m = re.findall(r"(authenticated[^\n]*|dialback[^\n]*"
                                   r"verified[^\n]*|EXTERNAL[^\n]*)", log)
                    if m:
                        res.setdefault("s2s_auth", m[:3])
                res["log_errors_" + side] = [
                    ln for ln in log.splitlines()
                    if re.search(r"\b(error|crit)\b", ln, re.I)][:5]
        if sniff:
            sniff.stop()
            if args.keep:
                sniff.dump(os.path.join(d, "packets.txt"), MARKS)
        if emu:
            emu.stop()
    res["wall"] = time.time() - t
    print("  %s %s: %s" % (profile, system, json.dumps(
        {k: (round(v, 3) if isinstance(v, float) else v)
         for k, v in res.items() if k not in ("link_counters_a",)})),
        flush=True)
    return res


# --- report -----------------------------------------------------------------

COLS = (
    ("system", "system", "%s"),
    ("bytes_ab", "IP B a>b", "%d"),
    ("bytes_ba", "IP B b>a", "%d"),
    ("first_cold_rt", "RT 1st", "%d"),
    ("first_cold", "1st msg s", "%.2f"),
    ("cold_first", "cold start s", "%.2f"),
    ("cold_ratio", "x floor", "%.1f"),
    ("cold_bytes", "cold B", "%d"),
    ("outage_first", "after outage s", "%.2f"),
    ("outage_floor", "floor s", "%.2f"),
    ("outage_ratio", "x floor", "%.1f"),
    ("restart_a", "restart A s", "%.2f"),
    ("restart_b", "restart B s", "%.2f"),
    ("lat_p50", "p50 s", "%.2f"),
    ("lat_p95", "p95 s", "%.2f"),
    ("delivered_text", "delivered", "%s"),
    ("compression", "compr", "%.2f"),
    ("ip_per_msg", "IP B/msg", "%.0f"),
    ("payload_per_stanza", "link B/st", "%.1f"),
    ("c2s_login", "c2s login s", "%.2f"),
    ("c2s_first_msg", "c2s 1st msg s", "%.2f"),
)


def report(rows, args, path):
    for r in rows:
        if r.get("cold_first") and r.get("cold_floor"):
            r["cold_ratio"] = r["cold_first"] / r["cold_floor"]
        if r.get("outage_first") and r.get("outage_floor"):
            r["outage_ratio"] = r["outage_first"] / r["outage_floor"]
        if "messages" in r:
            r["delivered_text"] = "%d/%d%s" % (
                r["delivered"], r["messages"],
                " dup %d" % r["duplicates"] if r["duplicates"] else "")
    head = ["profile"] + [c[1] for c in COLS]
    table = [head]
    for r in rows:
        line = [r["profile"]]
        for key, _, fmt in COLS:
            v = r.get(key)
            line.append("-" if v is None else fmt % v)
        table.append(line)
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    print()
    for i, t in enumerate(table):
        print(" | ".join(c.rjust(w) if j else c.ljust(w)
                         for j, (c, w) in enumerate(zip(t, widths))))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    print("RT 1st: application round trips (direction changes of TCP "
          "payload / 2) before the first message was delivered; Prosody's "
          "includes its cold S2S start, Skywave's link is already up.\n"
          "after outage: link down %gs with a message queued half-way; "
          "time from link-up to delivery; floor: TCP handshake RTT + "
          "one-way delay + the stanza's transmission.\n"
          "IP B/msg: IP bytes both ways of the scripted conversation per "
          "chat message (chat states, replies, subscriptions and presence "
          "included); link B/st: Skywave's compressed link bytes both "
          "ways per stanza over the whole run (links.json, acks and hellos "
          "included).\n"
          "restart A/B s: link down, a message a>b queued, that server "
          "killed -9 and restarted, link up %gs later: time to delivery "
          "(floor as after an outage; - : lost, not there after %ds).\n"
          "cold start: both servers started with the link down, a message "
          "b>a waiting; after %gs the link comes up: time to delivery, "
          "x its floor, IP bytes both ways until then + 1 s."
          % (args.outages[0] if args.outages else 0, args.restart,
             min(args.timeout, RESTART_TIMEOUT), args.cold))
    notes = []
    for r in rows:
        for k in ("error", "cold_error", "outage_error", "restart_a_error",
                  "restart_b_error", "c2s_error"):
            if r.get(k):
                notes.append("%s %s %s: %s" % (r["profile"], r["system"], k,
                                               r[k]))
        if len(r.get("outages") or {}) > 1:
            notes.append("%s %s outages (link down s: delivered s after "
                         "link-up, x floor): %s" % (
                             r["profile"], r["system"], ", ".join(
                                 "%s: %s" % (k, "-" if v is None else
                                             "%.2f (%.1f)" % (
                                                 v, v / r["outage_floor"]))
                                 for k, v in r["outages"].items())))
        if r.get("in_order") is False:
            notes.append("%s %s: messages out of order" % (r["profile"],
                                                          r["system"]))
        if r.get("s2s_auth"):
            notes.append("%s prosody s2s: %s" % (r["profile"],
                                                 r["s2s_auth"][0][:120]))
    for n in notes:
        print("note: " + n)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "params": vars(args), "rows": rows, "notes": notes},
                  f, indent=2, default=str)
    print("written to %s" % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", default=TOP)
    ap.add_argument("--profiles", default="satcom-64k,iridium",
                    help="comma-separated: %s" % ",".join(PROFILES))
    ap.add_argument("--only", help="comma-separated: %s" % ",".join(SYSTEMS))
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--outage", default="20",
                    help="seconds the link is down (message sent half-way); "
                    "a comma-separated list runs one outage after another "
                    "(e.g. 60,300,900), the first in the table's columns")
    ap.add_argument("--no-outage", action="store_true")
    ap.add_argument("--restart", type=float, default=10,
                    help="seconds the link stays down after a kill -9 and "
                    "restart of each server in turn, with a message "
                    "waiting (0: none)")
    ap.add_argument("--cold", type=float, default=15,
                    help="seconds the link is down after both servers "
                    "start, with a message waiting (0: no cold start)")
    ap.add_argument("--timeout", type=int, default=180,
                    help="seconds to wait for any one expected stanza")
    ap.add_argument("--budget", type=int, default=420,
                    help="seconds for one system on one profile "
                    "(at least the profile's own: hf-ip 900)")
    ap.add_argument("--peer-option", action="append", default=[],
                    metavar="LINE", help="a line for both Skywave Peer "
                    "sections, e.g. 'peer_probe_interval = \"300ms\"' "
                    "(repeatable)")
    ap.add_argument("--no-cgroup", action="store_true",
                    help="Skywave servers in the bench's own cgroup, not "
                    "each in one of its own (link_tcp then leaves the "
                    "kernel's 1 s first SYN timeout)")
    ap.add_argument("--carrier", action="store_true",
                    help="outages take the TUN devices' carrier, as a "
                    "modem that reports its link state: the hosts see "
                    "them (netlink)")
    ap.add_argument("--sysctl", action="append", default=[],
                    metavar="KEY=VALUE", help="set in both namespaces "
                    "before the servers start, e.g. "
                    "net.ipv4.tcp_syn_linear_timeouts=0 (repeatable)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=os.path.join(TOP, "tests", "bench",
                                                  "results", "link.json"))
    args = ap.parse_args()
    args.outages = [float(x) for x in args.outage.split(",") if x]
    args.linkemu = os.path.join(args.tree, "tools", "skywave-linkemu")
    if os.geteuid() != 0:
        print("bench_link: needs root (network namespaces)")
        return 0
    work = tempfile.mkdtemp(prefix="bench-link-")
    certs, bundle = make_certs(work)
    print("bench_link: profiles %s, %d messages, work dir %s"
          % (args.profiles, args.messages, work), flush=True)
    rows = []
    for profile in args.profiles.split(","):
        for system in SYSTEMS:
            if args.only and system not in args.only.split(","):
                continue
            rows.append(bench(system, profile, args, work, certs, bundle))
    report(rows, args, args.out)
    if args.keep:
        print("kept %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
