"""Helpers for bench_link.py: the emulator, sockets opened inside a network
namespace from this process (setns on the calling thread), a sniffer on the
emulator's TUN device and a tiny DNS responder for Prosody.

Standard library only.
"""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "integration"))
import swnet                                               # noqa: E402
from swnet import connect_in                               # noqa: E402,F401

InNetns = swnet.in_netns


def Emu(linkemu, workdir, tag, args):
    """The emulator for a benchmark run: namespaces named after the
    profile, a resolv.conf for Prosody's resolver, loopback up."""
    return swnet.Emu(workdir, args, tag="%s%d" % (tag, os.getpid() % 100000),
                     linkemu=linkemu, resolv=True, lo_up=True)


class Sniffer(threading.Thread):
    """Records every IP packet on the TUN device in namespace A:
    (monotonic time, from_a, ip_len, tcp payload length, tcp flags,
    source port, destination port)."""

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
