#!/usr/bin/python3
"""Filter policies: what they cost the server and what they save the link.

Two skywaved on loopback, peers of each other (server A with mod_filter).
Alice at A sends ACTIONS user actions to Bob at B (in windows of 100),
as a chat client does: a typing notification, then the message (a
~60-character body, an <active/> chat state, a receipt request;
XHTML-IM on one in three); every tenth action a presence change directed
to Bob (caps, avatar hash, idle); every twentieth a jabber:iq:version
query to Bob.  For each policy set on A's outbound chain:

  none         no filter
  lua-noop     a Lua policy that passes everything (the engine's own cost)
  lua-lean     lua/policies/lean.lua
  c-lean       the same rules as C filter options
  lua-minimal  lua/policies/minimal.lua

it reports A's CPU (utime + stime from /proc) per stanza and stanzas per
CPU-second over the send and the drain, and from A's link counters the
stanzas and compressed bytes (DEFLATE with the built-in dictionary, the
default) that crossed per action.  Compressed bytes do not depend on the
link's speed, so they are the bytes an Iridium or HF link would carry
(add ~40 B of TCP/IP per packet).  The Lua state of each standard policy
is measured by skywaved --policy-test.

No peer server is measured: Prosody 0.12 from Debian has no filter
module to compare with (mod_filter_chatstates is in prosody-modules).
Measures; never passes or fails.  Writes tests/bench/results/policy.json.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from conftest import POLICY_DIR, SKYWAVED, Server, free_port, sw_env  # noqa
from swnet import peer_section                                     # noqa
from test_c2s import Raw                                           # noqa

CS = "http://jabber.org/protocol/chatstates"
# Bodies are drawn from a few hundred words, as operators' traffic is:
# DEFLATE's window finds repeated words, not repeated messages.
TEXT = """
position report at the checkpoint north of the river convoy holding for
fuel resupply expected at fourteen hundred weather is clearing from the
west wind gusting twenty knots visibility two miles request update on the
casualty evacuation helicopter is inbound from the ship eta forty minutes
copy all stations maintain radio silence until further notice the bridge
is down use the alternate route through the village report any contact
immediately medical supplies are low send more bandages and water the
generator failed again we are on battery power for the next six hours
confirm grid reference for the landing zone roger that moving now will
call when in position negative on the second vehicle it needs a new
engine part from the depot sea state four expect delays on the transfer
the patrol returned without incident all personnel accounted for the
next rotation is scheduled for tuesday morning at dawn acknowledge receipt
of the orders and forward them to the forward observation post quickly
"""
WORDS = TEXT.split()

LEAN_C = [
    ("filter_drop_chat_states", True),
    ("filter_presence_fold", "show"),
    ("filter_message_strip", ["{http://jabber.org/protocol/xhtml-im}html",
                              "{urn:xmpp:receipts}"]),
    ("filter_iq_allow", ["urn:xmpp:ping", "jabber:iq:version",
                         "http://jabber.org/protocol/disco#info",
                         "http://jabber.org/protocol/muc#admin",
                         "http://jabber.org/protocol/muc#owner"]),
]


def body(i):
    import random
    rng = random.Random(i)
    return " ".join(rng.choice(WORDS) for _ in range(12))[:60]


def traffic(n):
    """The stanzas of n actions, one list per action."""
    out = []
    for i in range(n):
        out.append([])
        add = out[-1].append
        add("<message to='bob@b.example' type='chat' id='c%d'>"
                   "<composing xmlns='%s'/></message>" % (i, CS))
        html = ("<html xmlns='http://jabber.org/protocol/xhtml-im'><body "
                "xmlns='http://www.w3.org/1999/xhtml'><p>%s</p></body></html>"
                % body(i)) if i % 3 == 0 else ""
        add("<message to='bob@b.example' type='chat' id='m%d'>"
                   "<body>%s</body><active xmlns='%s'/>%s<request "
                   "xmlns='urn:xmpp:receipts'/></message>"
                   % (i, body(i), CS, html))
        if i % 10 == 9:
            add("<presence to='bob@b.example/ship'><show>%s</show>"
                "<status>%s</status>"
                       "<c xmlns='http://jabber.org/protocol/caps' "
                       "hash='sha-1' node='https://example.org' "
                       "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>"
                       "<x xmlns='vcard-temp:x:update'><photo>"
                       "01b87fcd030b72895ff8e88db57ec525450f000d</photo></x>"
                       "<idle xmlns='urn:xmpp:idle:1' "
                       "since='2026-12-06T10:00:00Z'/></presence>"
                       % ("away" if i % 20 == 9 else "chat", body(i)[:20]))
        if i % 20 == 19:
            add("<iq to='bob@b.example/ship' type='get' id='v%d'>"
                       "<query xmlns='jabber:iq:version'/></iq>" % i)
    return out


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def link_counters(server):
    with open(os.path.join(str(server.dir), "state", "links.json")) as f:
        link = json.load(f)["links"][0]
    return link


def wait_log(server, text, timeout=30):
    deadline = time.time() + timeout
    while text not in server.log_text():
        if time.time() > deadline:
            raise RuntimeError("no %r in %s" % (text, server.log))
        time.sleep(0.05)


def read_until_end(sock, marker=b"id='end'", timeout=120):
    deadline = time.time() + timeout
    tail = b""
    sock.settimeout(1)
    while marker not in tail:
        if time.time() > deadline:
            raise RuntimeError("the last message did not arrive")
        try:
            chunk = sock.recv(262144)
        except socket.timeout:
            continue
        if not chunk:
            raise RuntimeError("bob's stream closed")
        tail = (tail + chunk)[-4096:]


WINDOW = 100


def count_errors(sock):
    """Stanza errors waiting on alice's stream (the IQs a policy refused,
    anything bounced)."""
    data = b""
    sock.settimeout(0.5)
    while True:
        try:
            chunk = sock.recv(262144)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data.count(b"type='error'")


def peer_cfg(my_port, peer_port, domain, options):
    return ('link_tcp_interfaces = { "127.0.0.1" }\n'
            'link_tcp_port = %d\n' % my_port
            + peer_section(domain.split(".")[0], domain, [
                ("link_tcp_address", "127.0.0.1"),
                ("link_tcp_peer_port", peer_port),
                ("peer_reconnect_min", "200ms"),
                ("peer_reconnect_max", "1s")] + options))


def run_case(work, name, options, stanzas, actions):
    d = os.path.join(work, name)
    os.makedirs(os.path.join(d, "a"))
    os.makedirs(os.path.join(d, "b"))
    pa, pb = free_port(), free_port()
    a = Server(pathlib_path(d, "a"), hosts=("a.example",),
               modules=("c2s", "im", "server", "link_tcp", "filter"),
               extra=peer_cfg(pa, pb, "b.example", options))
    b = Server(pathlib_path(d, "b"), hosts=("b.example",),
               modules=("c2s", "im", "server", "link_tcp"),
               extra=peer_cfg(pb, pa, "a.example", []))
    a.adduser("alice@a.example", "pw-alice")
    b.adduser("bob@b.example", "pw-bob")
    a.start()
    b.start()
    try:
        wait_log(a, "link b: up")
        bob = Raw(b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        alice = Raw(a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        # the counters are written every 5 s: the first write, before
        # the traffic, is the baseline
        deadline = time.time() + 10
        while not os.path.exists(os.path.join(str(a.dir), "state",
                                              "links.json")):
            if time.time() > deadline:
                raise RuntimeError("no links.json")
            time.sleep(0.1)
        before = link_counters(a)
        cpu0 = cpu_seconds(a.proc.pid)
        t0 = time.time()
        # In windows of WINDOW actions, each sent once Bob has the last
        # message of the one before: a client does not pipeline ten
        # thousand stanzas, and the server bounds what one sender may
        # have queued for a peer (those past it would bounce).
        for w in range(0, actions, WINDOW):
            last = min(w + WINDOW, actions) - 1
            alice.send("".join(x for a in stanzas[w:last + 1] for x in a))
            read_until_end(bob.sock, b"id='m%d'" % last)
        wall = time.time() - t0
        bounced = count_errors(alice.sock)
        time.sleep(1)               # the last acks
        cpu = cpu_seconds(a.proc.pid) - cpu0
        a.stop()                    # writes the final counters
        after = link_counters(a)
        crossed = after["stanzas_out"] - before["stanzas_out"]
        wire = after["wire_out"] - before["wire_out"]
        n = sum(len(a) for a in stanzas)
        return {
            "system": name, "stanzas_sent": n,
            "errors_back": bounced,
            "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "us_per_stanza": round(cpu / n * 1e6, 1),
            "stanzas_per_cpu_s": int(n / cpu) if cpu else None,
            "crossed_per_action": round(crossed / actions, 2),
            "wire_bytes_per_action": round(wire / actions, 1),
        }
    finally:
        a.stop()
        b.stop()


def pathlib_path(*parts):
    import pathlib
    return pathlib.Path(os.path.join(*parts))


def state_sizes():
    out = {}
    for name in sorted(os.listdir(POLICY_DIR)):
        r = subprocess.run([SKYWAVED, "--policy-test",
                            os.path.join(POLICY_DIR, name)], input="",
                           capture_output=True, text=True, env=sw_env())
        m = re.search(r"Lua state (\d+) bytes", r.stdout)
        out[name[:-4]] = int(m.group(1)) if m else None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--actions", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3,
                    help="runs per system; the table shows the median")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=os.path.join(TOP, "tests", "bench",
                                                  "results", "policy.json"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-policy-")
    noop = os.path.join(work, "noop.lua")
    with open(noop, "w") as f:
        f.write("return { outbound = function(st, link) return 'pass' "
                "end }\n")
    systems = [
        ("none", []),
        ("lua-noop", [("filter_outbound", noop)]),
        ("lua-lean", [("filter_outbound", "lean")]),
        ("c-lean", LEAN_C),
        ("lua-minimal", [("filter_outbound", "minimal")]),
    ]
    stanzas = traffic(args.actions)
    rows = []
    for name, options in systems:
        runs = []
        for r in range(args.runs):
            row = run_case(work, "%s-%d" % (name, r), options, stanzas,
                           args.actions)
            row["system"] = name
            runs.append(row)
        runs.sort(key=lambda x: x["cpu_s"])
        rows.append(runs[len(runs) // 2])
        print("%s: %r" % (name, [x["cpu_s"] for x in runs]), flush=True)
    base = rows[0]["us_per_stanza"]
    print()
    print("%d actions, %d stanzas from alice (server A's outbound chain); "
          "median of %d runs" % (args.actions, rows[0]["stanzas_sent"],
                                 args.runs))
    print()
    print("| system | A CPU us/stanza | stanzas/CPU-s | over none | "
          "stanzas crossing/action | compressed B/action | errors back |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.1f | %s | %+.1f us | %.2f | %.1f | %d |" % (
            r["system"], r["us_per_stanza"], r["stanzas_per_cpu_s"],
            r["us_per_stanza"] - base, r["crossed_per_action"],
            r["wire_bytes_per_action"], r["errors_back"]))
    sizes = state_sizes()
    print()
    print("| policy | Lua state after load |")
    print("|---|---|")
    for k, v in sizes.items():
        print("| %s | %s B |" % (k, v))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"actions": args.actions, "rows": rows,
                   "state_bytes": sizes}, f, indent=1)
    if not args.keep:
        subprocess.run(["rm", "-rf", work])
    else:
        print("kept %s" % work)


if __name__ == "__main__":
    main()
