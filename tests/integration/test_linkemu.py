"""skywave-linkemu: measured RTT, throughput, loss, outages, half duplex
and counters through the emulated link match its configuration.

Each test starts the emulator with two namespaces of its own and removes
them afterwards, even when the test fails.  Expected values come from the
link model: a packet of L bytes takes L*8/rate seconds to serialise, then
the one-way delay; half duplex adds the turnaround before the other side
may answer.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
from swnet import ADDR_A, ADDR_B, LINKEMU, Emu  # noqa: F401 (re-exported)
from swnet import netns_usable as _netns_usable
ICMP_BYTES = 84                 # IPv4 20 + ICMP 8 + ping's default 56


_reason = _netns_usable()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")

def serial(nbytes, rate):
    return nbytes * 8.0 / rate


@pytest.fixture
def linkemu(tmp_path, request):
    """linkemu(*args) starts an emulator; all are stopped at teardown."""
    started = []

    def start(*args):
        emu = Emu(tmp_path, list(args))
        started.append(emu)
        return emu

    def finish():
        for emu in started:
            emu.stop()
    request.addfinalizer(finish)
    return start


@pytest.fixture
def need_ping():
    if shutil.which("ping") is None:
        pytest.skip("ping is not installed (iputils-ping, tools/install-deps)")


def test_bad_options_are_refused():
    for args in (["--rate", "fast"], ["--loss", "150"], ["--mtu", "20"],
                 ["--outage", "10:5"], ["--profile", "carrier-pigeon"],
                 ["--delay", "3 days"]):
        r = subprocess.run([LINKEMU] + args, capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, (args, r.stderr)
    r = subprocess.run([LINKEMU, "--list-profiles"], capture_output=True,
                       text=True, timeout=10)
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert names == ["iridium", "satcom-64k", "vhf", "hf-ip"]


def test_satcom_rtt(linkemu, need_ping):
    emu = linkemu("--profile", "satcom-64k")
    received, rtts, out = emu.ping(5, interval=0.2)
    assert received == 5, out
    expected = 2 * 0.300 + 2 * serial(ICMP_BYTES, 64000)     # 0.621 s
    print("satcom-64k rtt %s, expected %.4f" % (rtts, expected))
    assert min(rtts) >= expected - 0.002, (rtts, expected)
    assert max(rtts) <= expected + 0.030, (rtts, expected)


def test_satcom_tcp_goodput(linkemu):
    rate = 64000
    emu = linkemu("--profile", "satcom-64k")
    size = 64 * 1024
    server = subprocess.Popen(
        ["ip", "netns", "exec", emu.ns_b, sys.executable, "-c", """
import json, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001))
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
n = 0
first = last = None
while True:
    d = c.recv(65536)
    if not d:
        break
    now = time.monotonic()
    if first is None:
        first, first_len = now, len(d)
    n += len(d)
    last = now
print(json.dumps({"bytes": n, "first_len": first_len,
                  "seconds": last - first}), flush=True)
""", ADDR_B], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "listening"
        client = emu.run_a([sys.executable, "-c", """
import socket, sys
s = socket.create_connection((sys.argv[1], 5001), timeout=60)
s.sendall(b"x" * int(sys.argv[2]))
s.shutdown(socket.SHUT_WR)
s.recv(1)
""", ADDR_B, str(size)], timeout=60)
        assert client.returncode == 0, client.stderr
        result = json.loads(server.stdout.readline())
    finally:
        server.kill()
        server.wait()
    assert result["bytes"] == size
    # Bytes after the first arrival, over the time they took to arrive.
    goodput = (result["bytes"] - result["first_len"]) * 8 / result["seconds"]
    print("goodput %.0f bit/s (%.1f %% of %d)" % (goodput,
                                                  100 * goodput / rate, rate))
    assert 0.75 * rate <= goodput <= 1.05 * rate, goodput

    time.sleep(0.5)                 # the last ACK is still propagating
    st = emu.stats()
    ab = st["a_to_b"]
    # Every payload byte crossed, with at least a TCP/IP header per segment;
    # every packet offered was delivered or counted as dropped.
    assert ab["bytes"] >= size + 40 * (size // 1460)
    for d in ("a_to_b", "b_to_a"):
        s = st[d]
        assert s["packets_in"] == s["packets"] + s["dropped_queue"] \
            + s["dropped_loss"] + s["dropped_outage"], s
    assert ab["queue_high"] <= 6000
    assert st["b_to_a"]["packets"] > 0           # the ACKs


def test_iridium_single_ping(linkemu, need_ping):
    emu = linkemu("--profile", "iridium")
    received, rtts, out = emu.ping(1, wait=10)
    assert received == 1, out
    expected = 2 * 1.5 + 2 * serial(ICMP_BYTES, 2400)        # 3.56 s
    print("iridium rtt %s, expected %.4f" % (rtts, expected))
    assert abs(rtts[0] - expected) <= 0.03, (rtts, expected)


def test_random_loss(linkemu, need_ping):
    emu = linkemu("--loss", "20", "--delay", "5ms", "--seed", "7")
    n = 300
    received, _, out = emu.ping(n, interval=0.01, wait=1)
    # Request and reply each survive with 0.8: 0.64 of the pings return.
    print("loss 20 %%: %d of %d pings returned" % (received, n))
    assert 0.52 * n <= received <= 0.76 * n, out
    st = emu.stats()
    for d in ("a_to_b", "b_to_a"):
        s = st[d]
        rate = s["dropped_loss"] / s["packets_in"]
        assert 0.13 <= rate <= 0.27, (d, s)
        assert s["packets"] + s["dropped_loss"] == s["packets_in"], s
    assert st["b_to_a"]["packets_in"] == st["a_to_b"]["packets"]
    assert received == st["b_to_a"]["packets"]


def test_outage_on_command(linkemu, need_ping):
    emu = linkemu("--rate", "64k", "--delay", "50ms")
    received, _, out = emu.ping(3)
    assert received == 3, out

    assert emu.ctl("down") == "ok"
    assert emu.stats()["link_up"] is False
    received, _, out = emu.ping(5, wait=1)
    assert received == 0, out
    st = emu.stats()
    assert st["a_to_b"]["dropped_outage"] == 5
    assert st["outages"] == 1

    assert emu.ctl("up") == "ok"
    received, _, out = emu.ping(3)
    assert received == 3, out

    # A timed outage ends by itself.
    assert emu.ctl("down 500ms") == "ok"
    received, _, out = emu.ping(1, wait=1)
    assert received == 0, out
    time.sleep(0.6)
    assert emu.stats()["link_up"] is True
    received, _, out = emu.ping(2)
    assert received == 2, out
    assert emu.ctl("sideways").startswith("error")


def test_scheduled_outage(linkemu, need_ping):
    # Up 0.7 s, down 0.3 s, every second.
    emu = linkemu("--outage", "300ms:1s", "--delay", "5ms")
    n = 50
    received, _, out = emu.ping(n, interval=0.05, wait=1)
    lost = 1 - received / n
    print("outage 0.3 s in 1 s: %.2f of pings lost" % lost)
    assert 0.15 <= lost <= 0.45, out
    st = emu.stats()
    assert st["outages"] >= 2
    assert st["a_to_b"]["dropped_outage"] >= 0.15 * n


def test_vhf_half_duplex_turnaround(linkemu, need_ping):
    emu = linkemu("--profile", "vhf")
    # B may answer only 0.5 s after A's request has arrived.
    expected = 2 * serial(ICMP_BYTES, 9600) + 0.5             # 0.64 s
    # Pings 1.2 s apart: the channel is quiet for more than the turnaround
    # before each request, so each pays exactly one turnaround.
    received, rtts, out = emu.ping(2, interval=1.2, wait=3)
    assert received == 2, out
    print("vhf rtt %s, expected %.4f" % (rtts, expected))
    assert min(rtts) >= expected - 0.002, (rtts, expected)
    assert max(rtts) <= expected + 0.030, (rtts, expected)
    # 1.0 s apart: A must also wait 0.5 s after hearing the previous
    # reply (at 0.64 s), so its request leaves 0.14 s late.
    time.sleep(0.6)
    received, rtts, out = emu.ping(2, interval=1.0, wait=3)
    assert received == 2, out
    assert abs(rtts[0] - expected) <= 0.03, rtts
    assert abs(rtts[1] - (expected + (expected + 0.5 - 1.0))) <= 0.03, rtts

    # Same link in full duplex: the turnaround is what made the difference.
    full = linkemu("--profile", "vhf", "--full-duplex")
    received, rtts_full, out = full.ping(2, interval=0.5)
    assert received == 2, out
    assert max(rtts_full) <= 2 * serial(ICMP_BYTES, 9600) + 0.030


def test_queue_limit_and_counters(linkemu):
    # 9600 bit/s: a 1028-byte datagram holds the link for 0.86 s, so a
    # burst of ten fills the 3000-byte queue after the one on the air.
    emu = linkemu("--rate", "9600", "--queue", "3000")
    r = emu.run_a([sys.executable, "-c", """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(10):
    s.sendto(b"u" * 1000, (sys.argv[1], 9))
""", ADDR_B], timeout=20)
    assert r.returncode == 0, r.stderr
    time.sleep(3 * serial(1028, 9600) + 0.3)
    ab = emu.stats()["a_to_b"]
    assert ab["packets_in"] == 10 and ab["bytes_in"] == 10280, ab
    assert ab["packets"] == 3 and ab["bytes"] == 3084, ab
    assert ab["dropped_queue"] == 7, ab
    assert ab["queue_high"] == 2056, ab


def test_stats_file_and_cleanup_on_exit(linkemu, need_ping):
    emu = linkemu("--delay", "10ms")
    received, _, out = emu.ping(4, interval=0.05)
    assert received == 4, out
    os.kill(emu.proc.pid, signal.SIGUSR1)
    deadline = time.time() + 5
    while not os.path.exists(emu.stats_path) and time.time() < deadline:
        time.sleep(0.05)
    st = json.load(open(emu.stats_path))
    assert st["a_to_b"]["packets"] == 4
    assert st["a_to_b"]["bytes"] == 4 * ICMP_BYTES

    assert emu.ctl("quit") == "ok"
    assert emu.proc.wait(timeout=10) == 0
    st = json.load(open(emu.stats_path))
    for d in ("a_to_b", "b_to_a"):
        assert st[d]["packets"] == 4 and st[d]["bytes"] == 4 * ICMP_BYTES
        assert st[d]["dropped_queue"] == 0
    assert st["uptime"] > 0
    assert not os.path.exists("/run/netns/" + emu.ns_a)
    assert not os.path.exists("/run/netns/" + emu.ns_b)


def test_half_duplex_max_hold(linkemu, need_ping):
    # Requests every 50 ms at 70 ms each keep A's queue busy: without a
    # limit A keeps the channel until its queue is empty (15 x 70 ms) and
    # the first reply waits behind all the requests.
    args = ("--rate", "9600", "--half-duplex", "--turnaround", "100ms",
            "--queue", "20000")
    greedy = linkemu(*args)
    received, rtts, out = greedy.ping(15, interval=0.05, wait=2)
    assert received >= 1 and min(rtts) >= 15 * serial(ICMP_BYTES, 9600), out

    # With --max-hold 300ms B gets the channel after about 0.35 s.
    fair = linkemu(*args, "--max-hold", "300ms")
    received, rtts, out = fair.ping(15, interval=0.05, wait=2)
    assert received >= 1 and min(rtts) <= 0.35 + 0.1 + 0.07 + 0.03, out
