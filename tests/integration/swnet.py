"""Network namespaces, the link emulator, certificates and peer link
configuration, for the tests, the soak and the benchmarks (one copy:
test_linkemu.py, test_link_emulated.py, test_peer_link.py,
tests/soak/soak.py and tests/bench/link use it).

- netns_usable(): None, or why namespaces cannot be used here.
- in_netns(ns): a context in which sockets this thread creates belong
  to namespace ns (setns(2) switches only the calling thread; a socket
  keeps the namespace it was created in).
- enter_netns(ns): moves the calling thread into ns for good (a thread
  that runs a client's event loop).
- Emu: a running tools/skywave-linkemu with two namespaces of its own.
- make_cert(dir, name): a self-signed ECDSA certificate for name.
- peer_section(name, domains, options), tls_options(cert, key, pin, ca):
  the text of a Peer section of skywave.cfg.lua.
- stored_rtt(server, peer): the path round trip a server keeps for a
  peer (store_kv link_rtt), or None.
- own_cgroup(name), drop_cgroup(dir): a cgroup2 group of its own for a
  server (link_tcp's BPF program attaches only to such a group).

Standard library only.
"""
import contextlib
import ctypes
import hashlib
import itertools
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LINKEMU = os.path.join(TOP, "tools", "skywave-linkemu")
ADDR_A = "10.77.0.1"
ADDR_B = "10.77.0.2"

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_ns_lock = threading.Lock()
_names = itertools.count()


def netns_usable(linkemu=LINKEMU):
    if linkemu is not None and not os.path.exists(linkemu):
        return "tools/skywave-linkemu is not built"
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    if shutil.which("ip") is None:
        return "ip (iproute2) is not installed"
    name = "lemuprobe%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True)
    if r.returncode != 0:
        return "ip netns add failed: %s" % r.stderr.decode().strip()
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return None


def _setns_fd(fd, what):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns %s: %s" % (what, os.strerror(err)))


def enter_netns(ns):
    """Moves the calling thread into namespace ns for the rest of its
    life."""
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        _setns_fd(fd, ns)
    finally:
        os.close(fd)


@contextlib.contextmanager
def in_netns(ns):
    """Runs the body with this thread in namespace ns, then back."""
    with _ns_lock:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            enter_netns(ns)
            try:
                yield
            finally:
                _setns_fd(home, "back")
        finally:
            os.close(home)


def connect_in(ns, addr, port, timeout=30):
    """A TCP connection made from inside ns (non-blocking once up)."""
    with in_netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((addr, port))
    s.setblocking(False)
    return s


class Emu:
    """A running skywave-linkemu with two namespaces of its own (ns_a
    holds ADDR_A, ns_b ADDR_B).  resolv: each namespace gets an
    /etc/netns/NS/resolv.conf naming 127.0.0.1 (`ip netns exec` mounts
    it over /etc/resolv.conf; nothing on the host changes).  lo_up:
    loopback is brought up in both."""

    def __init__(self, workdir, args, tag=None, linkemu=LINKEMU,
                 resolv=False, lo_up=False):
        n = next(_names)
        tag = "%d_%d" % (os.getpid() % 100000, n) if tag is None else tag
        self.ns_a, self.ns_b = "lemu%sa" % tag, "lemu%sb" % tag
        self.resolv = resolv
        if resolv:
            for ns in (self.ns_a, self.ns_b):
                d = "/etc/netns/" + ns
                os.makedirs(d, exist_ok=True)
                with open(d + "/resolv.conf", "w") as f:
                    f.write("nameserver 127.0.0.1\n")
        workdir = str(workdir)
        self.control = os.path.join(workdir, "ctl%s.sock" % tag)
        self.stats_path = os.path.join(workdir, "stats%s.json" % tag)
        self.stderr_path = os.path.join(workdir, "linkemu%s.err" % tag)
        self.proc = subprocess.Popen(
            [linkemu, "--ns-a", self.ns_a, "--ns-b", self.ns_b,
             "--control", self.control, "--stats", self.stats_path] + args,
            stdout=subprocess.PIPE, stderr=open(self.stderr_path, "w"),
            text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.stop()
            raise AssertionError("linkemu did not start: %r, stderr: %s"
                                 % (line, open(self.stderr_path).read()))
        if lo_up:
            for ns in (self.ns_a, self.ns_b):
                subprocess.run(["ip", "netns", "exec", ns, "ip", "link",
                                "set", "lo", "up"], check=True)

    def ctl(self, command):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.control)
            s.sendall(command.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        return buf.decode().strip()

    def stats(self):
        return json.loads(self.ctl("stats"))

    def run_a(self, args, **kw):
        return subprocess.run(["ip", "netns", "exec", self.ns_a] + args,
                              capture_output=True, text=True, **kw)

    def ping(self, count, interval=0.2, wait=2, extra=()):
        r = self.run_a(["ping", "-n", "-c", str(count), "-i", str(interval),
                        "-W", str(wait)] + list(extra) + [ADDR_B],
                       timeout=count * interval + wait + 30)
        rtts = [float(x) / 1000.0
                for x in re.findall(r"time=([0-9.]+) ms", r.stdout)]
        m = re.search(r"(\d+) received", r.stdout)
        received = int(m.group(1)) if m else 0
        return received, rtts, r.stdout

    def stop(self):
        """SIGTERM, then make sure the namespaces are gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        for ns in (self.ns_a, self.ns_b):
            if os.path.exists("/run/netns/" + ns):
                subprocess.run(["ip", "netns", "delete", ns],
                               capture_output=True)
            if self.resolv:
                shutil.rmtree("/etc/netns/" + ns, ignore_errors=True)
        return self.proc.returncode


# --- certificates and configuration ----------------------------------------

def make_cert(directory, name):
    """A self-signed ECDSA certificate for name, made with certtool
    (gnutls-bin), usable by a server and a client; returns (cert path,
    key path, SHA-256 fingerprint of its DER: a peer_tls_pin)."""
    directory = str(directory)
    key, cert, tmpl = (os.path.join(directory, name + ext)
                       for ext in (".key", ".crt", ".tmpl"))
    with open(tmpl, "w") as f:
        f.write('cn = "%s"\ndns_name = "%s"\nexpiration_days = 30\n'
                'tls_www_server\ntls_www_client\n' % (name, name))
    subprocess.run(["certtool", "--generate-privkey", "--key-type", "ecdsa",
                    "--outfile", key], check=True, capture_output=True)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey",
                    key, "--template", tmpl, "--outfile", cert], check=True,
                   capture_output=True)
    os.chmod(key, 0o644)
    return cert, key, fingerprint(cert)


def fingerprint(cert):
    """SHA-256 of a PEM certificate's DER, in hex (peer_tls_pin)."""
    with open(cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def _lua(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "{ %s }" % ", ".join(_lua(x) for x in v)
    return '"%s"' % v


def options(opts):
    """Option lines ("    name = value,") for a Peer section, in order;
    opts is a dict or a list of pairs."""
    items = opts.items() if isinstance(opts, dict) else opts
    return "".join("    %s = %s,\n" % (k, _lua(v)) for k, v in items)


def tls_options(cert, key, pin=None, ca=None):
    """Peer options for TLS from the first byte with our certificate and
    the peer's pinned (pin) or checked against a CA file (ca)."""
    opts = [("peer_tls", True), ("peer_tls_certificate", cert),
            ("peer_tls_key", key)]
    if pin is not None:
        opts.append(("peer_tls_pin", pin))
    if ca is not None:
        opts.append(("peer_tls_ca", ca))
    return options(opts)


def peer_section(name, domains, opts=(), extra=""):
    """A Peer section: its domains, then opts (see options()), then the
    extra text as it is."""
    if isinstance(domains, str):
        domains = [domains]
    return ('Peer "%s" {\n    peer_domains = %s,\n%s%s}\n'
            % (name, _lua(list(domains)), options(opts), extra))


class Sniffer(threading.Thread):
    """Records every IP packet on the TUN device in namespace A:
    (monotonic time, from_a, ip_len, tcp payload length, tcp flags,
    source port, destination port)."""

    def __init__(self, ns, dev, addr_a):
        super().__init__(daemon=True)
        with in_netns(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                      socket.htons(0x0003))
            self.sock.bind((dev, 0))
        self.sock.settimeout(0.2)
        self.addr_a = socket.inet_aton(addr_a)
        self.packets = []
        self.running = True

    def run(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            if len(data) < 20 or data[0] >> 4 != 4:
                continue
            ihl = (data[0] & 15) * 4
            total = struct.unpack("!H", data[2:4])[0]
            payload, flags, sport, dport = 0, 0, 0, 0
            if data[9] == 6 and len(data) >= ihl + 20:
                doff = (data[ihl + 12] >> 4) * 4
                flags = data[ihl + 13]
                payload = total - ihl - doff
                sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
            self.packets.append((t, data[12:16] == self.addr_a, total,
                                 payload, flags, sport, dport))

    def stop(self):
        self.running = False
        self.join(2)
        self.sock.close()

    def dump(self, path, marks, base=None):
        """Writes the packets seen, one per line (seconds since the
        first, direction, ports, TCP flags, IP and payload bytes), with
        the benchmark's marks ((name, monotonic time) pairs) in time order;
        times from base (monotonic), by default the first packet's."""
        if not self.packets:
            return
        if base is None:
            base = self.packets[0][0]
        names = "FSRPAU"
        rows = [(t, "%9.3f %s %5d>%-5d %-6s ip %4d tcp %4d" % (
            t - base, "a>b" if a else "b>a", sp, dp,
            "".join(n for i, n in enumerate(names) if fl >> i & 1),
            total, pl)) for t, a, total, pl, fl, sp, dp in self.packets]
        rows += [(t, "%9.3f ---- %s" % (t - base, name))
                 for name, t in marks]
        with open(path, "w") as f:
            for _, line in sorted(rows):
                f.write(line + "\n")

    def flights(self, t0, t1):
        """Application round trips in [t0, t1]: how many times the side
        that sent data last had to hear data from the other side before
        it could send again; counted as direction changes between
        payload-carrying packets, halved (a round trip is two)."""
        dirs = [p[1] for p in self.packets if t0 <= p[0] <= t1 and p[3] > 0]
        changes = sum(1 for x, y in zip(dirs, dirs[1:]) if x != y)
        return changes // 2, len(dirs)


def stored_rtt(server, peer):
    """The path round trip server keeps for peer (store_kv link_rtt), or
    None."""
    db = sqlite3.connect(os.path.join(str(server.dir), "state",
                                      "skywave.db"))
    try:
        row = db.execute("SELECT value FROM store_kv WHERE store = "
                         "'link_rtt' AND key = ?", (peer,)).fetchone()
    finally:
        db.close()
    return None if row is None else float(row[0])


def seed_rtt(server, peer, seconds):
    """Stores a path round trip to peer in server's database (made:
    the server started once, and stopped) as if measured."""
    db = sqlite3.connect(os.path.join(str(server.dir), "state",
                                      "skywave.db"))
    try:
        db.execute("INSERT OR REPLACE INTO store_kv (store, host, key, "
                   "value) VALUES ('link_rtt', '', ?, ?)",
                   (peer, "%.3f" % seconds))
        db.commit()
    finally:
        db.close()


def into_cgroup(d):
    """A preexec_fn that puts the child in cgroup d (own_cgroup), or
    None when d is None."""
    if d is None:
        return None
    procs = os.path.join(d, "cgroup.procs")

    def preexec():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    return preexec


# A cgroup2 mount of the tests' own: `ip netns exec` remounts /sys, so a
# server in a namespace sees none under /sys/fs/cgroup.
CGROUP2 = "/run/skywave-tests/cgroup2"


def own_cgroup(name):
    """A new cgroup2 group for one server, as systemd gives a service
    (link_tcp attaches its handshake-timeout program to the server's
    group, never to the root): its directory.  Write a pid to its
    cgroup.procs to put a process in it; drop_cgroup() when it exited."""
    with open("/proc/self/mountinfo") as f:
        mounted = any(line.split()[4] == CGROUP2 for line in f)
    if not mounted:
        os.makedirs(CGROUP2, exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup2", "none", CGROUP2],
                       check=True)
    d = os.path.join(CGROUP2, "sw-%d-%s" % (os.getpid(), name))
    os.makedirs(d, exist_ok=True)
    return d


def drop_cgroup(d):
    """Removes a group made by own_cgroup (its processes gone)."""
    for _ in range(50):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:                 # a process still leaving it
            time.sleep(0.1)
