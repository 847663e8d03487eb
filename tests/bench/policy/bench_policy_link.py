#!/usr/bin/python3
"""Policies and the presence cache over an emulated slow link.

For each profile (default iridium and hf-ip), two skywaved joined by
tools/skywave-linkemu (the namespaces and servers of the integration
tests' Setup):

1. Bytes per user action with each policy set on A's outbound chain
   (none, lean, minimal): alice at A does ACTIONS actions, one every
   INTERVAL seconds, as people type (a typing notification, then the
   message with a chat state, a receipt request, XHTML-IM on one in
   three; a presence change directed to bob every tenth; a version
   query every twentieth).  Reported: compressed link bytes A->B per
   action (A's counters) and IP bytes both ways per action (the
   emulator's counters: headers, acks and retransmissions included).

2. A login of bob at B with 20 contacts at A (10 online): without the
   presence cache, with it cold (B just restarted), with it warm.
   Reported: probes crossing (B's stanzas to A during the login), IP
   bytes both ways, and seconds until bob knows all 20 contacts.

Prosody is not measured here: it has no filter policies, and its probe
per contact at every login is what "without the cache" shows.  Measures;
never passes or fails.  Writes tests/bench/results/policy_link.json.
As root (network namespaces, /dev/net/tun).
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time
import pathlib
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, HERE)

from swnet import in_netns, ADDR_A, Sniffer                # noqa: E402
from test_c2s import Raw                                   # noqa: E402
from test_link_emulated import Setup, links_json, wait_log  # noqa: E402
from bench_policy import traffic                           # noqa: E402
from test_presence_cache import add_module                 # noqa: E402

N_CONTACTS, N_ONLINE = 20, 10


def add_peer_option(server, text):
    with open(server.cfg) as f:
        cfg = f.read()
    cfg = cfg.replace("    peer_reconnect_min", "    " + text
                      + "    peer_reconnect_min", 1)
    with open(server.cfg, "w") as f:
        f.write(cfg)


def ip_bytes(ln):
    st = ln.emu.stats()
    return st["a_to_b"]["bytes"] + st["b_to_a"]["bytes"]


def client(ns, server, user, host, password, resource):
    with in_netns(ns):
        c = Raw(server.port, host)
    c.login(user, password, resource)
    return c


def wait_for(c, pattern, timeout):
    c.read_until(pattern, timeout=timeout)


def part_policies(work, profile, systems, actions, interval, seed,
                  sniff=False):
    rows = []
    for name, option in systems:
        d = pathlib.Path(work) / ("%s-%s-%d" % (profile, name, seed))
        d.mkdir()
        ln = Setup(d, ["--profile", profile, "--seed", str(seed)],
                   keepalive="60s")
        try:
            add_module(ln.a, "filter")
            if option:
                add_peer_option(ln.a, option)
            ln.start()
            ln.wait_up(timeout=120)
            bob = client(ln.emu.ns_b, ln.b, "bob", "b.example", "pw-bob",
                         "ship")
            bob.send("<presence/>")
            alice = client(ln.emu.ns_a, ln.a, "alice", "a.example",
                           "pw-alice", "home")
            time.sleep(5)
            sns, marks = [], []
            if sniff:
                sns = [Sniffer(ns, "lemu0", ADDR_A)
                       for ns in (ln.emu.ns_a, ln.emu.ns_b)]
                for sn in sns:
                    sn.start()
            ip0 = ip_bytes(ln)
            acts = traffic(actions)
            t0 = time.time()
            for i, a in enumerate(acts):
                marks.append(("action %d" % i, time.monotonic()))
                alice.send("".join(a))
                if i < len(acts) - 1:
                    time.sleep(interval)
            bob.read_until(r"id='m%d'" % (actions - 1), timeout=300)
            marks.append(("last message read", time.monotonic()))
            wall = time.time() - t0
            time.sleep(8)               # the last acks cross
            ip = ip_bytes(ln) - ip0
            for side, sn in zip("ab", sns):
                sn.stop()
                sn.dump(str(d / ("packets-%s.txt" % side)), marks,
                        marks[0][1])
            ln.a.stop()
            wire = links_json(ln.a)["wire_out"]
            rows.append({
                "profile": profile, "system": name, "actions": actions,
                "seed": seed,
                "wire_per_action": round(wire / actions, 1),
                "ip_per_action": round(ip / actions, 1),
                "seconds": round(wall, 1),
            })
            print("  %s %s: %r" % (profile, name, rows[-1]), flush=True)
        finally:
            for s in (ln.a, ln.b):
                s.stop()
            ln.emu.stop()
    return rows


def contacts_known(bob, timeout):
    """Seconds until bob has a presence from each of the 20 contacts."""
    t0 = time.time()
    seen = set()
    text = ""
    while len(seen) < N_CONTACTS and time.time() - t0 < timeout:
        try:
            text = bob.read_until(r"<presence[^>]*/>|</presence>",
                                  timeout=max(0.1, timeout
                                              - (time.time() - t0)))
        except AssertionError:
            break
        for m in re.finditer(r"from='(a\d+@a\.example)", text):
            seen.add(m.group(1))
    return time.time() - t0, len(seen)


def login_measure(ln, timeout):
    before = links_json(ln.b)["stanzas_out"]
    ip0 = ip_bytes(ln)
    bob = client(ln.emu.ns_b, ln.b, "bob", "b.example", "pw-bob", "ship")
    bob.send("<presence/>")
    secs, n = contacts_known(bob, timeout)
    time.sleep(6)                       # links.json is written every 5 s
    crossed = links_json(ln.b)["stanzas_out"] - before
    ip = ip_bytes(ln) - ip0
    bob.send("</stream:stream>")
    bob.sock.close()
    time.sleep(1)
    return {"seconds": round(secs, 2), "contacts": n, "probes": crossed,
            "ip_bytes": ip}


def part_presence(work, profile, timeout):
    rows = []
    for cache in (False, True):
        d = pathlib.Path(work) / ("%s-presence-%s" % (profile, cache))
        d.mkdir()
        ln = Setup(d, ["--profile", profile], keepalive="60s")
        try:
            if cache:
                add_module(ln.a, "presence_cache")
                add_module(ln.b, "presence_cache")
            for i in range(1, N_CONTACTS + 1):
                ln.a.adduser("a%d@a.example" % i, "pw")
            ln.start()
            ln.wait_up(timeout=120)
            bob = client(ln.emu.ns_b, ln.b, "bob", "b.example", "pw-bob",
                         "ship")
            bob.send("<presence/>")
            for i in range(1, N_CONTACTS + 1):
                bob.send("<presence to='a%d@a.example' type='subscribe'/>"
                         % i)
            keep = []
            for i in range(1, N_CONTACTS + 1):
                c = client(ln.emu.ns_a, ln.a, "a%d" % i, "a.example", "pw",
                           "desk")
                c.send("<presence><status>on duty %d</status></presence>"
                       % i)
                c.read_until(r"type='subscribe'", timeout=timeout)
                c.send("<presence to='bob@b.example' type='subscribed'/>")
                if i <= N_ONLINE:
                    keep.append(c)
                else:
                    c.send("<presence type='unavailable'/>"
                           "</stream:stream>")
                    c.sock.close()
            contacts_known(bob, timeout)
            time.sleep(10)              # everything crossed, acked
            bob.send("</stream:stream>")
            bob.sock.close()
            time.sleep(6)
            if cache:
                # cold: B restarted, its cache empty
                ln.b.stop()
                ln.b.start()
                wait_log(ln.b, "link a: up", timeout=120)
                time.sleep(20)          # the reconnection's own traffic
                r = login_measure(ln, timeout)
                r.update(profile=profile, system="cache, cold")
                rows.append(r)
                print("  %r" % r, flush=True)
                r = login_measure(ln, timeout)
                r.update(profile=profile, system="cache, warm")
            else:
                r = login_measure(ln, timeout)
                r.update(profile=profile, system="no cache")
            rows.append(r)
            print("  %r" % r, flush=True)
        finally:
            for s in (ln.a, ln.b):
                s.stop()
            ln.emu.stop()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profiles", default="iridium,hf-ip")
    ap.add_argument("--actions", type=int, default=20)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--seeds", default="1",
                    help="the emulator's loss seeds for part 1, e.g. 1,2,3 "
                    "(each seed repeats its loss pattern exactly)")
    ap.add_argument("--no-presence", action="store_true",
                    help="part 1 only")
    ap.add_argument("--sniff", action="store_true",
                    help="part 1: every IP packet on each side of the "
                    "emulator to packets-a.txt and packets-b.txt in the "
                    "run's directory (implies --keep)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=os.path.join(
        TOP, "tests", "bench", "results", "policy_link.json"))
    args = ap.parse_args()
    args.keep = args.keep or args.sniff
    work = tempfile.mkdtemp(prefix="bench-policy-link-")
    systems = [("none", None), ("lean", 'filter_outbound = "lean",\n'),
               ("minimal", 'filter_outbound = "minimal",\n')]
    pol, pres = [], []
    for profile in args.profiles.split(","):
        for seed in (int(x) for x in args.seeds.split(",")):
            pol += part_policies(work, profile, systems, args.actions,
                                 args.interval, seed, args.sniff)
        if not args.no_presence:
            pres += part_presence(work, profile, args.timeout)
    print()
    print("%d actions, one every %.1f s" % (args.actions, args.interval))
    print()
    print("| profile | loss seed | policy | compressed B/action A->B | "
          "IP B/action both ways |")
    print("|---|---|---|---|---|")
    for r in pol:
        print("| %s | %d | %s | %.1f | %.1f |" % (
            r["profile"], r["seed"], r["system"], r["wire_per_action"],
            r["ip_per_action"]))
    print()
    print("Bob logs in at B with %d contacts at A (%d online)"
          % (N_CONTACTS, N_ONLINE))
    print()
    print("| profile | B | stanzas B->A | IP bytes both ways | s until all "
          "known |")
    print("|---|---|---|---|---|")
    for r in pres:
        print("| %s | %s | %d | %d | %s |" % (
            r["profile"], r["system"], r["probes"], r["ip_bytes"],
            "%.2f" % r["seconds"] if r["contacts"] == N_CONTACTS
            else "%d of %d in %.0f" % (r["contacts"], N_CONTACTS,
                                       r["seconds"])))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"policies": pol, "presence": pres}, f, indent=1)
    if args.keep:
        print("kept %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
