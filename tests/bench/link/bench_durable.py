#!/usr/bin/python3
"""What "an ack means stable storage" costs: two skywaved joined by a peer
link on loopback (no emulator: the link is not the bottleneck, storage
is), alice on A pipelines M messages to bob on B, once with each
storage_sqlite_synchronous setting.  Every batch (one loop turn) is one
commit on each side: A queues, B records what it delivered; with "full"
each commit is an fsync of the WAL.

Prints a table (mode | wall s | messages/s | A CPU s | B CPU s | A
messages per CPU-second | B messages per CPU-second) and writes it as
JSON.  A benchmark, never a test: it exits 0 once it has printed the table.

    /usr/bin/python3 tests/bench/link/bench_durable.py [--messages 5000]

The data directories are on the file system of --dir (default: a
temporary directory under /var/tmp, a disk rather than tmpfs where the
machine has one), since fsync on tmpfs costs nothing.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from pathlib import Path                            # noqa: E402
from test_c2s import Raw                            # noqa: E402
from test_peer_link import Pair, wait_log          # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run(mode, m, base):
    work = Path(tempfile.mkdtemp(prefix="durable-%s-" % mode, dir=base))
    p = Pair(work)
    # the whole burst waits in A's queue at once: no byte bound in the way
    for s in (p.a, p.b):
        s_cfg = open(s.cfg).read().replace(
            "    peer_reconnect_min", '    peer_queue_max_sender_bytes = '
            '"1G",\n    peer_queue_max_bytes = "1G",\n    peer_reconnect_min')
        open(s.cfg, "w").write(s_cfg)
    for s in (p.a, p.b):
        text = open(s.cfg).read().replace('log_level = "debug"',
                                          'log_level = "info"')
        open(s.cfg, "w").write('storage_sqlite_synchronous = "%s"\n' % mode
                               + text)
    p.a.start()
    p.b.start()
    try:
        deadline = time.time() + 20
        while "link" not in p.b.log_text() and time.time() < deadline:
            time.sleep(0.1)
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        time.sleep(1)
        ca, cb, t0 = cpu(p.a.proc.pid), cpu(p.b.proc.pid), time.time()
        batch = "".join("<message to='bob@b.example' type='chat'><body>m%d "
                        "a message of about a hundred characters, as in "
                        "the c2s benchmark</body></message>" % i
                        for i in range(m))
        alice.send(batch)
        # count arrivals on the raw socket (a regex over a growing buffer
        # would make the client the bottleneck)
        want, tail = ("<body>m%d " % (m - 1)).encode(), b""
        bob.sock.settimeout(300)
        while True:
            chunk = bob.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("bob's stream closed")
            if want in tail + chunk:
                break
            tail = chunk[-64:]
        wall = time.time() - t0
        da, db = cpu(p.a.proc.pid) - ca, cpu(p.b.proc.pid) - cb
        return {"mode": mode, "messages": m, "wall": wall,
                "per_s": m / wall, "cpu_a": da, "cpu_b": db,
                "per_cpu_a": m / da if da > 0 else None,
                "per_cpu_b": m / db if db > 0 else None}
    finally:
        p.a.stop()
        p.b.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--modes", default="full,normal")
    ap.add_argument("--out", default=os.path.join(TOP, "tests", "bench",
                                                  "results", "durable.json"))
    args = ap.parse_args()
    rows = []
    for mode in args.modes.split(","):
        try:
            rows.append(run(mode, args.messages, args.dir))
        except Exception as e:          # a benchmark reports, never fails
            rows.append({"mode": mode, "error": str(e)[:300]})
    print("| synchronous | wall s | messages/s | A CPU s | B CPU s | "
          "A msg/CPU-s | B msg/CPU-s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print("| %s | error: %s |" % (r["mode"], r["error"]))
            continue
        print("| %s | %.2f | %.0f | %.2f | %.2f | %.0f | %.0f |"
              % (r["mode"], r["wall"], r["per_s"], r["cpu_a"], r["cpu_b"],
                 r["per_cpu_a"] or 0, r["per_cpu_b"] or 0))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
