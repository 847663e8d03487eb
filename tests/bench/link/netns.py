"""Helpers for bench_link.py: the emulator, sockets opened inside a network
namespace from this process (setns on the calling thread), a sniffer on the
emulator's TUN device (swnet.Sniffer) and a tiny DNS responder for Prosody.

Standard library only.
"""
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "integration"))
import swnet                                               # noqa: E402
from swnet import connect_in, Sniffer                      # noqa: E402,F401

InNetns = swnet.in_netns


def Emu(linkemu, workdir, tag, args):
    """The emulator for a benchmark run: namespaces named after the
    profile, a resolv.conf for Prosody's resolver, loopback up."""
    return swnet.Emu(workdir, args, tag="%s%d" % (tag, os.getpid() % 100000),
                     linkemu=linkemu, resolv=True, lo_up=True)


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
