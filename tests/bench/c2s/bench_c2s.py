#!/usr/bin/python3
"""c2s benchmark: skywaved against Prosody 0.12, measured in the same run.

Three phases per server, each against a fresh baseline of the server's own
CPU time (utime + stime from /proc/PID/stat) or resident memory (VmRSS):

  logins   L clients: connect, STARTTLS, SASL SCRAM-SHA-1, bind, close
  idle     K sessions logged in and bound over TLS; RSS growth per session
  messages P sender/receiver pairs; each sender pipelines M messages to its
           receiver's full JID; delivered messages per server CPU-second

Prints a table (metric | skywave | prosody | ratio | target) and writes it
as JSON. A benchmark, never a test: it always exits 0 once it has printed
the table, whatever the numbers are; a server that cannot be started or
dies under load shows up in the table and the notes.

Standard library only; run with /usr/bin/python3 (see tests/bench/README.md).
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
HOST = "example.net"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The project's standing targets and the Prosody figures they came from.
TARGETS = {
    "logins": (">=", 730.0, 140.0),
    "idle_rss": ("<=", 8.0, 52.0),
    "messages": (">=", 23000.0, 4500.0),
}


PIN_CPU = None     # --pin-cpu: the servers run on that one core


def pin_cpu():
    if PIN_CPU is not None:
        os.sched_setaffinity(0, {PIN_CPU})


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=20):
    """True once something accepts on port; False if proc died first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def proc_cpu(pid):
    """Seconds of CPU the process (all its threads) has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def users(n):
    return [("u%d" % i, "pw-u%d-secret" % i) for i in range(1, n + 1)]


# --- servers -------------------------------------------------------------

class Skywave:
    name = "skywave"
    clean_exits = (0, None)

    def __init__(self, workdir, cert, key, tree):
        self.dir = os.path.join(workdir, "skywave")
        os.makedirs(self.dir)
        self.tree = tree
        self.port = free_port()
        self.cfg = os.path.join(self.dir, "skywave.cfg.lua")
        self.log = os.path.join(self.dir, "skywave.log")
        with open(self.cfg, "w") as f:
            f.write('data_dir = "state"\nlog_file = "skywave.log"\n'
                    'log_level = "warn"\nmodules = { "c2s", "server" }\n'
                    'c2s_interfaces = { "127.0.0.1" }\n'
                    'c2s_port = %d\nc2s_direct_tls_port = 0\n'
                    # every client comes from 127.0.0.1, and the idle
                    # phase binds many resources per account
                    'c2s_max_connections_per_address = 0\n'
                    'c2s_max_resources = 10000\n'
                    'c2s_certificate = "%s"\nc2s_key = "%s"\n'
                    'VirtualHost "%s"\n' % (self.port, cert, key, HOST))
        self.env = dict(os.environ)
        self.env["SKYWAVE_MODULE_PATH"] = os.path.join(tree, "modules")
        self.proc = None

    def describe(self):
        return os.path.join(self.tree, "skywaved")

    def adduser(self, user, password):
        r = subprocess.run([os.path.join(self.tree, "skywavectl"), "-c",
                            self.cfg, "adduser", "%s@%s" % (user, HOST)],
                           env=self.env, input=password + "\n",
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("skywavectl adduser: %s" % r.stderr.strip())

    def start(self):
        self.stderr = open(os.path.join(self.dir, "stderr"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(self.tree, "skywaved"), "-c", self.cfg],
            env=self.env, cwd=self.dir, stdout=self.stderr,
            stderr=subprocess.STDOUT, preexec_fn=pin_cpu)
        if not wait_port(self.port, self.proc):
            raise RuntimeError("skywaved did not start: %s" % self.tail())
        return self.proc.pid

    def tail(self, n=1500):
        text = ""
        for p in (self.log, os.path.join(self.dir, "stderr")):
            if os.path.exists(p):
                text += open(p, errors="replace").read()[-n:]
        return text.strip()

    def stop(self):
        return stop_proc(self.proc)


class Prosody:
    name = "prosody"
    # Without mod_posix nothing catches SIGTERM: dying of it is normal.
    clean_exits = (0, None, -signal.SIGTERM)

    def __init__(self, workdir, cert, key, iterations):
        self.dir = os.path.join(workdir, "prosody")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        self.port = free_port()
        self.iterations = iterations
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        self.log = os.path.join(self.dir, "prosody.log")
        # Only what a TLS + SASL + bind + message benchmark needs; s2s off
        # (no listener beyond ours), posix off (no daemon, no user switch).
        with open(self.cfg, "w") as f:
            f.write('''
daemonize = false
run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{data}"
log = {{ {{ levels = {{ min = "warn" }}, to = "file", filename = "{log}" }} }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
s2s_ports = {{ }}
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping" }}
modules_disabled = {{ "s2s", "s2s_auth_certs", "posix" }}
c2s_require_encryption = true
authentication = "internal_hashed"
default_iteration_count = {it}
storage = "internal"
allow_registration = false
ssl = {{ certificate = "{cert}", key = "{key}" }}
certificates = "{certdir}"
VirtualHost "{host}"
    ssl = {{ certificate = "{cert}", key = "{key}" }}
'''.format(d=self.dir, data=self.data, log=self.log, port=self.port,
           it=iterations, cert=cert, key=key, host=HOST,
           certdir=os.path.dirname(cert)))
        self.proc = None

    def describe(self):
        try:
            r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}",
                                "prosody"], capture_output=True, text=True)
            return "prosody " + r.stdout.strip()
        except OSError:
            return "prosody"

    def adduser(self, user, password):
        """Writes the account file internal_hashed would write (hex keys,
        SCRAM-SHA-1): prosodyctl register costs a Lua start per user."""
        salt = base64.b16encode(os.urandom(16)).decode().lower()
        salted = hashlib.pbkdf2_hmac("sha1", password.encode(),
                                     salt.encode(), self.iterations)
        client_key = hmac.new(salted, b"Client Key", "sha1").digest()
        stored = hashlib.sha1(client_key).hexdigest()
        server = hmac.new(salted, b"Server Key", "sha1").hexdigest()
        host_dir = re.sub(r"\W", lambda m: "%%%02x" % ord(m.group()), HOST)
        d = os.path.join(self.data, host_dir, "accounts")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, user + ".dat"), "w") as f:
            f.write('return {\n\t["iteration_count"] = %d;\n'
                    '\t["salt"] = "%s";\n\t["stored_key"] = "%s";\n'
                    '\t["server_key"] = "%s";\n};\n'
                    % (self.iterations, salt, stored, server))

    def start(self):
        if shutil.which("prosody") is None:
            raise RuntimeError("prosody is not installed")
        self.stderr = open(os.path.join(self.dir, "stderr"), "w")
        self.proc = subprocess.Popen(["prosody", "--config", self.cfg],
                                     cwd=self.dir, stdout=self.stderr,
                                     stderr=subprocess.STDOUT,
                                     preexec_fn=pin_cpu)
        if not wait_port(self.port, self.proc):
            raise RuntimeError("prosody did not start: %s" % self.tail())
        return self.proc.pid

    def tail(self, n=1500):
        return Skywave.tail(self, n)

    def stop(self):
        return stop_proc(self.proc)


def stop_proc(proc):
    if proc is None:
        return None
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "killed after SIGTERM timeout"


# --- client --------------------------------------------------------------

STREAM = ("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
          "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
          % HOST).encode()
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"

# SaltedPassword per (password, salt, iterations): the client's PBKDF2 is
# not what we measure, and users log in many times.
_salted = {}


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ProtocolError(Exception):
    pass


class Client:
    """One XMPP client session over asyncio streams."""

    def __init__(self):
        self.reader = self.writer = None
        self.buf = b""

    async def read_until(self, pattern, timeout=30):
        rx = re.compile(pattern)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                text = self.buf[:m.end()]
                self.buf = self.buf[m.end():]
                return text, m
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise ProtocolError("timeout waiting for %r; got %r"
                                    % (pattern, self.buf[-300:]))
            chunk = await asyncio.wait_for(self.reader.read(65536), left)
            if not chunk:
                raise ProtocolError("connection closed waiting for %r; "
                                    "got %r" % (pattern, self.buf[-300:]))
            self.buf += chunk

    async def features(self):
        self.writer.write(STREAM)
        text, _ = await self.read_until(
            rb"</stream:features>|<stream:features/>|</stream:stream>")
        if b"</stream:stream>" in text:
            raise ProtocolError("stream closed: %r" % text[-300:])
        return text

    async def login(self, port, user, password, resource, ctx,
                    stage="bound"):
        """Logs in up to stage: 'stream' (features read over TCP), 'tls'
        (features read after STARTTLS) or 'bound' (authenticated, bound)."""
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", port, limit=1 << 20)
        feats = await self.features()
        if stage == "stream":
            return
        if b"<starttls" not in feats:
            raise ProtocolError("no STARTTLS offered: %r" % feats)
        self.writer.write(b"<starttls xmlns='urn:ietf:params:xml:ns:"
                          b"xmpp-tls'/>")
        await self.read_until(rb"<proceed[^>]*/>")
        await self.writer.start_tls(ctx, server_hostname=HOST)
        self.buf = b""
        feats = await self.features()
        if stage == "tls":
            return
        if b">SCRAM-SHA-1<" not in feats:
            raise ProtocolError("no SCRAM-SHA-1 offered: %r" % feats)
        await self.scram_sha1(user, password)
        feats = await self.features()
        self.writer.write(("<iq type='set' id='bind1'><bind xmlns='urn:ietf:"
                           "params:xml:ns:xmpp-bind'><resource>%s</resource>"
                           "</bind></iq>" % resource).encode())
        text, _ = await self.read_until(rb"</iq>|<iq[^>]*/>")
        if b"type='result'" not in text and b'type="result"' not in text:
            raise ProtocolError("bind failed: %r" % text)
        self.jid = "%s@%s/%s" % (user, HOST, resource)

    async def scram_sha1(self, user, password):
        """Client side of RFC 5802 (no channel binding: gs2 header 'n,,')."""
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=%s,r=%s" % (user, cnonce)
        self.writer.write(("<auth xmlns='%s' mechanism='SCRAM-SHA-1'>%s"
                           "</auth>" % (SASL_NS, b64("n,," + first_bare))
                           ).encode())
        text, m = await self.read_until(
            rb"<challenge[^>]*>([^<]*)</challenge>|</failure>")
        if m.group(1) is None:
            raise ProtocolError("SASL failure: %r" % text)
        server_first = base64.b64decode(m.group(1)).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        nonce, salt, it = attrs["r"], attrs["s"], int(attrs["i"])
        if not nonce.startswith(cnonce):
            raise ProtocolError("server nonce does not extend ours")
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
            rb"<success[^>]*>([^<]*)</success>|<success[^>]*/>|</failure>")
        if b"<success" not in text:
            raise ProtocolError("SASL failure: %r" % text)
        server_key = hmac.new(salted, b"Server Key", "sha1").digest()
        want = "v=" + b64(hmac.new(server_key, auth_msg, "sha1").digest())
        got = base64.b64decode(m.group(1) or b"").decode()
        if got != want:
            raise ProtocolError("bad server signature %r" % got)

    async def close(self, timeout=5):
        """Ends the stream and waits for the server's end (or EOF)."""
        try:
            self.writer.write(b"</stream:stream>")
            deadline = asyncio.get_running_loop().time() + timeout
            while b"</stream:stream>" not in self.buf:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                chunk = await asyncio.wait_for(self.reader.read(65536), left)
                if not chunk:
                    break
                self.buf += chunk
        except (OSError, ssl.SSLError, asyncio.TimeoutError):
            pass
        self.abort()

    def abort(self):
        if self.writer is not None:
            self.writer.transport.abort()


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


async def gather_limited(n, coros):
    sem = asyncio.Semaphore(n)

    async def one(c):
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros),
                                return_exceptions=True)


def first_error(results):
    errs = [r for r in results if isinstance(r, BaseException)]
    if not errs:
        return None
    return "%d failed, first: %s: %s" % (len(errs), type(errs[0]).__name__,
                                         errs[0])


# --- phases --------------------------------------------------------------

async def login_once(port, user, password, resource, ctx):
    c = Client()
    try:
        await c.login(port, user, password, resource, ctx)
    except BaseException:
        c.abort()
        raise
    await c.close()


async def phase_logins(srv, pid, accts, n, conc, ctx):
    async def one(i):
        u, p = accts[i % len(accts)]
        await login_once(srv.port, u, p, "login%d" % i, ctx)
    cpu0, t0 = proc_cpu(pid), time.time()
    res = await gather_limited(conc, [one(i) for i in range(n)])
    cpu1, t1 = proc_cpu(pid), time.time()
    ok = sum(1 for r in res if not isinstance(r, BaseException))
    return {"ok": ok, "tried": n, "cpu": cpu1 - cpu0, "wall": t1 - t0,
            "value": ok / (cpu1 - cpu0) if cpu1 > cpu0 else None,
            "error": first_error(res)}


async def phase_idle(srv, pid, accts, k, conc, ctx):
    """RSS growth per session for K bound sessions, then (keeping those
    open, so nothing freed can be reused) K more streams stopped after
    STARTTLS, then K more stopped before it: where the memory goes."""
    clients = []
    out = {}
    for key, stage in (("idle_rss", "bound"), ("idle_rss_tls", "tls"),
                       ("idle_rss_stream", "stream")):
        opened = []

        async def one(i):
            u, p = accts[i % len(accts)]
            c = Client()
            try:
                await c.login(srv.port, u, p, "%s%d" % (stage, i), ctx,
                              stage)
            except BaseException:
                c.abort()
                raise
            opened.append(c)
        await asyncio.sleep(1)
        rss0 = proc_rss_kb(pid)
        t0 = time.time()
        res = await gather_limited(conc, [one(i) for i in range(k)])
        await asyncio.sleep(1)
        rss1 = proc_rss_kb(pid)
        clients.extend(opened)
        out[key] = {"ok": len(opened), "tried": k, "rss_before_kb": rss0,
                    "rss_after_kb": rss1, "wall": time.time() - t0,
                    "value": (rss1 - rss0) / len(opened) if opened else None,
                    "error": first_error(res)}
        print("  %s %s: %s" % (srv.name, key, fmt_phase(out[key])),
              flush=True)
        if srv.proc.poll() is not None:
            break
    await asyncio.gather(*(c.close() for c in clients),
                         return_exceptions=True)
    return out


async def phase_messages(srv, pid, accts, pairs, m, ctx, timeout):
    logins = []
    for i in range(pairs):
        (su, sp), (ru, rp) = accts[2 * i], accts[2 * i + 1]
        logins.append((su, sp, "send"))
        logins.append((ru, rp, "recv"))
    clients = [Client() for _ in logins]
    res = await gather_limited(10, [
        c.login(srv.port, u, p, r, ctx) for c, (u, p, r) in
        zip(clients, logins)])
    err = first_error(res)
    if err:
        for c in clients:
            c.abort()
        return {"ok": 0, "tried": pairs * m, "value": None,
                "error": "login: " + err}
    body = ("benchmark-message-body-" * 5)[:100]
    counts = [0] * pairs
    errors_to_senders = [0]

    async def send(i):
        c, to = clients[2 * i], clients[2 * i + 1].jid
        batch = []
        for n in range(m):
            batch.append("<message to='%s' type='chat' id='m%d'><body>%s %d"
                         "</body></message>" % (to, n, body, n))
            if len(batch) == 200:
                c.writer.write("".join(batch).encode())
                batch = []
                await c.writer.drain()
        c.writer.write("".join(batch).encode())
        await c.writer.drain()
        # Senders must keep reading, or error replies would stall the
        # server's output to them; count what should not be there.
        while True:
            chunk = await c.reader.read(65536)
            if not chunk:
                return
            errors_to_senders[0] += chunk.count(b"type='error'") + \
                chunk.count(b'type="error"')

    async def recv(i):
        c = clients[2 * i + 1]
        tail, seen = c.buf, 0
        seen += tail.count(b"</message>")
        tail = tail[-9:]
        while seen < m:
            chunk = await c.reader.read(1 << 20)
            if not chunk:
                raise ProtocolError("receiver closed after %d" % seen)
            data = tail + chunk
            seen += data.count(b"</message>")
            tail = data[-9:]
            counts[i] = seen

    cpu0, t0 = proc_cpu(pid), time.time()
    senders = [asyncio.ensure_future(send(i)) for i in range(pairs)]
    recv_err = None
    try:
        rres = await asyncio.wait_for(
            asyncio.gather(*(recv(i) for i in range(pairs)),
                           return_exceptions=True), timeout)
        recv_err = first_error(rres)
    except asyncio.TimeoutError:
        recv_err = "timeout after %ds" % timeout
    cpu1, t1 = proc_cpu(pid), time.time()
    for s in senders:
        s.cancel()
    await asyncio.gather(*senders, return_exceptions=True)
    await asyncio.gather(*(c.close() for c in clients),
                         return_exceptions=True)
    delivered = sum(counts)
    return {"ok": delivered, "tried": pairs * m, "cpu": cpu1 - cpu0,
            "wall": t1 - t0,
            "value": delivered / (cpu1 - cpu0) if cpu1 > cpu0 else None,
            "errors_to_senders": errors_to_senders[0], "error": recv_err}


async def run_phases(srv, pid, accts, args):
    ctx = tls_context()
    out = {}
    # Warm up: first TLS handshake, storage caches, allocator arenas.
    res = await gather_limited(5, [login_once(srv.port, u, p, "warm", ctx)
                                   for u, p in accts[:10]])
    out["warmup_error"] = first_error(res)
    phases = (
        ("idle_rss", lambda: phase_idle(srv, pid, accts, args.idle,
                                        args.concurrency, ctx)),
        ("logins", lambda: phase_logins(srv, pid, accts, args.logins,
                                        args.concurrency, ctx)),
        ("messages", lambda: phase_messages(srv, pid, accts, args.pairs,
                                            args.messages, ctx,
                                            args.timeout)),
    )
    for name, fn in phases:
        if srv.proc.poll() is not None:
            out[name] = {"value": None, "error": "server exited (rc %s)"
                         % srv.proc.returncode}
            continue
        try:
            out[name] = await asyncio.wait_for(fn(), args.timeout + 60)
        except Exception as e:  # a phase's failure is a result, not a crash
            out[name] = {"value": None, "error": "%s: %s"
                         % (type(e).__name__, e)}
        if srv.proc.poll() is not None:
            out[name]["error"] = ((out[name].get("error") or "") +
                                  " server exited during phase (rc %s)"
                                  % srv.proc.returncode).strip()
        if name == "idle_rss" and "value" not in out[name]:
            out.update(out.pop(name))   # the three idle results
            continue
        print("  %s %s: %s" % (srv.name, name, fmt_phase(out[name])),
              flush=True)
    return out


def fmt_phase(r):
    keys = ("value", "ok", "tried", "cpu", "wall", "rss_before_kb",
            "rss_after_kb", "errors_to_senders", "error")
    parts = []
    for k in keys:
        v = r.get(k)
        if v is None:
            continue
        parts.append("%s=%s" % (k, ("%.3f" % v) if isinstance(v, float)
                                else v))
    return " ".join(parts)


def bench_server(srv, args):
    res = {"server": srv.describe()}
    try:
        accts = users(max(2 * args.pairs, args.users))
        for u, p in accts:
            srv.adduser(u, p)
        pid = srv.start()
    except Exception as e:
        res["error"] = "could not start: %s" % e
        stop_proc(srv.proc)
        print("  %s: %s" % (srv.name, res["error"]), flush=True)
        return res
    try:
        res.update(asyncio.run(run_phases(srv, pid, accts, args)))
    finally:
        rc = srv.stop()
        res["exit"] = rc
        if rc not in srv.clean_exits:
            res["log_tail"] = srv.tail()
    return res


# --- report --------------------------------------------------------------

ROWS = (
    ("logins", "logins per server CPU-second (TLS+SCRAM-SHA-1+bind)"),
    ("idle_rss", "RSS per idle TLS session (kB)"),
    ("messages", "delivered messages per server CPU-second (TLS)"),
)
# Where the idle session's memory goes; no targets.
DIAG_ROWS = (
    ("idle_rss_tls", "  diag: RSS per stream after STARTTLS, no auth (kB)"),
    ("idle_rss_stream", "  diag: RSS per open stream, before STARTTLS (kB)"),
)


def cell(r, name):
    if "error" in r and name not in r:
        return None, "n/a (%s)" % r["error"][:60]
    p = r.get(name, {})
    v = p.get("value")
    if v is None and p.get("cpu") == 0 and not p.get("error"):
        return None, "n/a (under 1 CPU tick)"
    if v is None:
        return None, "failed"
    return v, ("%.1f" % v) if name.startswith("idle") else ("%.0f" % v)


def report(results, args, path):
    rows = []
    for name, label in ROWS + DIAG_ROWS:
        sv, stext = cell(results["skywave"], name)
        pv, ptext = cell(results["prosody"], name)
        ratio = sv / pv if sv is not None and pv else None
        target = "-"
        if name in TARGETS:
            op, tv, ref = TARGETS[name]
            target = "%s %g (%.2fx Prosody's %g)" % (op, tv, tv / ref, ref)
        rows.append({"metric": label, "key": name, "skywave": sv,
                     "prosody": pv, "ratio": ratio, "target": target,
                     "skywave_text": stext, "prosody_text": ptext})
    head = ("metric", "skywave", "prosody", "ratio", "target")
    table = [head] + [(r["metric"], r["skywave_text"], r["prosody_text"],
                       "%.2fx" % r["ratio"] if r["ratio"] else "-",
                       r["target"]) for r in rows]
    widths = [max(len(str(t[i])) for t in table) for i in range(5)]
    lines = []
    for i, t in enumerate(table):
        lines.append(" | ".join(str(c).ljust(w) for c, w in zip(t, widths)))
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    print()
    print("\n".join(lines))
    print("(ratio = skywave / prosody; idle RSS: lower is better)")
    notes = []
    for srv in ("skywave", "prosody"):
        r = results[srv]
        if r.get("error"):
            notes.append("%s: %s" % (srv, r["error"]))
        for name, _ in ROWS + DIAG_ROWS:
            e = r.get(name, {}).get("error")
            if e:
                notes.append("%s %s: %s" % (srv, name, e))
        clean = (Prosody if srv == "prosody" else Skywave).clean_exits
        if r.get("exit") not in clean:
            notes.append("%s exited with %r" % (srv, r["exit"]))
    for n in notes:
        print("note: " + n)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "params": vars(args), "rows": rows, "notes": notes,
                   "raw": results}, f, indent=2, default=str)
    print("written to %s" % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", default=TOP,
                    help="build tree with skywaved, skywavectl, modules/")
    ap.add_argument("--logins", type=int, default=1000)
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--users", type=int, default=40,
                    help="accounts per server (logins cycle through them)")
    ap.add_argument("--concurrency", type=int, default=20,
                    help="logins in flight at once")
    ap.add_argument("--iterations", type=int, default=4096,
                    help="SCRAM iterations of Prosody's accounts "
                         "(skywave's default is 4096)")
    ap.add_argument("--cert", choices=("ec", "rsa"), default="ec",
                    help="key type of the certificate both servers use")
    ap.add_argument("--timeout", type=int, default=60,
                    help="seconds allowed for the message phase")
    ap.add_argument("--only", choices=("skywave", "prosody"))
    ap.add_argument("--pin-cpu", type=int, default=None,
                    help="run each server on this one core (the clients "
                    "get the others)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (configs, logs)")
    ap.add_argument("--out", default=os.path.join(TOP, "tests", "bench",
                                                  "results", "c2s.json"))
    args = ap.parse_args()
    global PIN_CPU
    PIN_CPU = args.pin_cpu
    if PIN_CPU is not None:
        os.sched_setaffinity(0, set(range(os.cpu_count())) - {PIN_CPU}
                             or {PIN_CPU})

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 8 * args.idle + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    work = tempfile.mkdtemp(prefix="bench-c2s-")
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
              if args.cert == "ec" else ["-newkey", "rsa:2048"])
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "30",
                    "-subj", "/CN=" + HOST, "-addext",
                    "subjectAltName=DNS:" + HOST, "-keyout", key, "-out",
                    cert] + newkey, check=True, capture_output=True)
    os.chmod(key, 0o644)
    print("bench_c2s: L=%d logins, K=%d idle, P=%d pairs x M=%d messages, "
          "%s certificate, work dir %s" % (args.logins, args.idle,
                                           args.pairs, args.messages,
                                           args.cert, work), flush=True)
    results = {}
    servers = (("skywave", lambda: Skywave(work, cert, key, args.tree)),
               ("prosody", lambda: Prosody(work, cert, key,
                                           args.iterations)))
    t0 = time.time()
    for name, make in servers:
        if args.only and args.only != name:
            results[name] = {"error": "skipped (--only)"}
            continue
        print("%s:" % name, flush=True)
        try:
            results[name] = bench_server(make(), args)
        except Exception as e:
            results[name] = {"error": "%s: %s" % (type(e).__name__, e)}
    results["wall_seconds"] = time.time() - t0
    report(results, args, args.out)
    if args.keep:
        print("kept %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
