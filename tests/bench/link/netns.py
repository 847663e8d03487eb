"""Helpers for bench_link.py: the emulator, sockets opened inside a network
namespace from this process (setns on the calling thread), a sniffer on the
emulator's TUN device and a tiny DNS responder for Prosody.

Standard library only.
"""
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_ns_lock = threading.Lock()


class InNetns:
    """with InNetns("swa"): sockets created inside belong to namespace swa.

    setns() switches only the calling thread; a socket keeps the namespace
    it was created in, so everything else runs in one process on one
    clock."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        _ns_lock.acquire()
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, "setns %s: %s" % (self.name,
                                                   os.strerror(e)))
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        try:
            if _libc.setns(self.home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(self.home)
            _ns_lock.release()


def connect_in(ns, addr, port, timeout=30):
    with InNetns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((addr, port))
    s.setblocking(False)
    return s


class Emu:
    """A running tools/skywave-linkemu with namespaces of its own."""

    def __init__(self, linkemu, workdir, tag, args):
        self.ns_a, self.ns_b = "lb%s%da" % (tag, os.getpid() % 100000), \
            "lb%s%db" % (tag, os.getpid() % 100000)
        # `ip netns exec` bind-mounts /etc/netns/NS/* over /etc: a
        # resolv.conf for Prosody's resolver, nothing on the host changes.
        for ns in (self.ns_a, self.ns_b):
            d = "/etc/netns/" + ns
            os.makedirs(d, exist_ok=True)
            with open(d + "/resolv.conf", "w") as f:
                f.write("nameserver 127.0.0.1\n")
        self.control = os.path.join(workdir, "ctl-%s.sock" % tag)
        self.stats_path = os.path.join(workdir, "stats-%s.json" % tag)
        self.err = open(os.path.join(workdir, "linkemu-%s.err" % tag), "w")
        self.proc = subprocess.Popen(
            [linkemu, "--ns-a", self.ns_a, "--ns-b", self.ns_b,
             "--control", self.control, "--stats", self.stats_path] + args,
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError("linkemu did not start: %r" % line)
        for ns in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set",
                            "lo", "up"], check=True)

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

    def stop(self):
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
            shutil.rmtree("/etc/netns/" + ns, ignore_errors=True)


class Sniffer(threading.Thread):
    """Records every IP packet on the TUN device in namespace A:
    (monotonic time, from_a, ip_len, tcp payload length, tcp flags)."""

    def __init__(self, ns, dev, addr_a):
        super().__init__(daemon=True)
        with InNetns(ns):
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
            payload, flags = 0, 0
            if data[9] == 6 and len(data) >= ihl + 20:
                doff = (data[ihl + 12] >> 4) * 4
                flags = data[ihl + 13]
                payload = total - ihl - doff
            self.packets.append((t, data[12:16] == self.addr_a, total,
                                 payload, flags))

    def stop(self):
        self.running = False
        self.join(2)
        self.sock.close()

    def flights(self, t0, t1):
        """Application round trips in [t0, t1]: how many times the side
        that sent data last had to hear data from the other side before
        it could send again; counted as direction changes between
        payload-carrying packets, halved (a round trip is two)."""
        dirs = [p[1] for p in self.packets if t0 <= p[0] <= t1 and p[3] > 0]
        changes = sum(1 for x, y in zip(dirs, dirs[1:]) if x != y)
        return changes // 2, len(dirs)


class TinyDNS(threading.Thread):
    """Answers A queries for a fixed map on 127.0.0.1:53 in a namespace;
    everything else (SRV, AAAA, ...) gets NXDOMAIN, so Prosody falls back
    to the domain's A record and port 5269 at once."""

    def __init__(self, ns, names):
        super().__init__(daemon=True)
        with InNetns(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 53))
        self.sock.settimeout(0.2)
        self.names = names
        self.running = True

    def run(self):
        while self.running:
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) < 17:
                continue
            i, labels = 12, []
            while i < len(q) and q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
                i += 1 + q[i]
            qend = i + 5
            qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
            name = ".".join(labels).lower()
            ip = self.names.get(name)
            head = q[:2]
            if ip and qtype == 1:
                ans = (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4)
                       + socket.inet_aton(ip))
                resp = head + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + \
                    q[12:qend] + ans
            elif ip:
                resp = head + struct.pack("!HHHHH", 0x8180, 1, 0, 0, 0) + \
                    q[12:qend]
            else:
                resp = head + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + \
                    q[12:qend]
            self.sock.sendto(resp, peer)

    def stop(self):
        self.running = False
        self.join(2)
        self.sock.close()
