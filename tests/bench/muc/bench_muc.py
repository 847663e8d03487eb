#!/usr/bin/python3
"""MUC benchmark: group chat across an emulated constrained link
(tools/skywave-linkemu, default profile iridium: 2400 bit/s, 1.5 s each
way), three systems measured in the same run:

- prosody: Prosody 0.12 on both sides, the room hosted by A's MUC
  component (conference.a.example), B's users joining it across standard
  S2S;
- skywave-plain: two skywaved joined by a peer link, B's users joining
  room@conference.a.example across the link (plain MUC, XEP-0045);
- skywave-fmuc: the same two skywaved, B's users joining
  room@conference.b.example, a node federated with room@conference.a.example
  (XEP-0289).

Setup: the room at A (persistent) with 5 A occupants and 20 groupchat
messages of history; 5 B occupants (fmuc: in B's node, which federates
when the first of them configures it).  Then "join": one more B user
joins with default history: time to the subject (the end of the join
sequence), history messages received, IP bytes on the link until it is
quiet.  Then "per message" with k = 10, 3 and 1 B occupants: an A
occupant sends 10 groupchat messages of about 60 characters, one a
second; IP bytes on the link per message (emulator counters) and
Skywave's compressed link payload per message (A's links.json), and
whether every B occupant got each message once.  Then "outage": the
link goes down for --outage seconds (default 900) while both sides chat;
what each side got of the other's, removals, time to resync.

A benchmark, never a test: it prints a table, writes JSON and exits 0.
Needs root (network namespaces); see tests/bench/README.md.

    /usr/bin/python3 tests/bench/muc/bench_muc.py            # iridium, ~70 min
    /usr/bin/python3 tests/bench/muc/bench_muc.py --outage 0 # ~20 min
    /usr/bin/python3 tests/bench/muc/bench_muc.py --profiles satcom-64k,iridium
"""
import argparse
import asyncio
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "link"))
from bench_link import (ADDR, DOMAIN, PROFILES, WORDS, Client,  # noqa: E402
                        ProsodyPair, ProtocolError, SkywavePair, make_certs)
from netns import Emu                                            # noqa: E402

MUC = "http://jabber.org/protocol/muc"
CONF = {s: "conference." + DOMAIN[s] for s in "ab"}
ROOM = {s: "room@" + CONF[s] for s in "ab"}
N_A = 5                 # A occupants
N_B_SETUP = 5           # B occupants before the measured join
KS = (10, 3, 1)         # B occupants for "per message", in run order
N_B = max(KS)           # B accounts: b1..b10; b6 is the measured joiner
N_MSG = 10              # groupchat messages per k
N_HISTORY = 20
SYSTEMS = ("prosody", "skywave-plain", "skywave-fmuc")
USERS = {"a": [("a%d" % i, "pw-a%d" % i) for i in range(1, N_A + 1)],
         "b": [("b%d" % i, "pw-b%d" % i) for i in range(1, N_B + 1)]}
# seconds for one system on one profile (at least --budget)
BUDGET = {"satcom-64k": 600, "iridium": 1200, "vhf": 900, "hf-ip": 2400}


def line(n, size=60):
    """About `size` characters of varied text, the same in every run."""
    rnd = random.Random(n)
    words = []
    while sum(len(w) + 1 for w in words) < size - 5:
        words.append(rnd.choice(WORDS))
    return " ".join(words)[:size - 8]


# --- stanzas and predicates -------------------------------------------------

def join_xml(room, nick, history=None):
    h = "<history maxstanzas='%d'/>" % history if history is not None else ""
    return "<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>" % (
        room, nick, MUC, h)


def owner_form(room, fields, iq_id):
    body = ("<field var='FORM_TYPE' type='hidden'><value>%s#roomconfig"
            "</value></field>" % MUC) + "".join(
                "<field var='%s'><value>%s</value></field>" % kv
                for kv in fields)
    return ("<iq type='set' id='%s' to='%s'><query xmlns='%s#owner'>"
            "<x xmlns='jabber:x:data' type='submit'>%s</x></query></iq>"
            % (iq_id, room, MUC, body))


def groupchat(room, mid, text):
    return ("<message to='%s' type='groupchat' id='%s'><body>%s</body>"
            "</message>" % (room, mid, text))


def full_stanza(c, ev):
    """The whole stanza of event ev, or None while it is still arriving."""
    if ev[3].endswith("/>"):
        return ev[3]
    close = "</%s>" % ev[1]
    end = c.text.find(close, ev[4])
    return None if end < 0 else c.text[ev[4]:end + len(close)]


def from_is(tag, jid):
    return re.search(r"""\bfrom=['"]%s['"]""" % re.escape(jid), tag)


def presence_of(jid, unavailable=False):
    def pred(ev):
        if ev[1] != "presence" or not from_is(ev[3], jid):
            return False
        return ("unavailable" in ev[3]) == unavailable
    return pred


def subject_from(c, room, after=0):
    def pred(ev):
        if ev[1] != "message" or ev[0] < after or \
                not re.search(r"""\bfrom=['"]%s[/'"]""" % re.escape(room),
                              ev[3]):
            return False
        st = full_stanza(c, ev)
        return st is not None and "<subject" in st and "<body" not in st
    return pred


def iq_result(iq_id):
    return lambda ev: ev[1] == "iq" and ev[2] == iq_id


# --- the link ---------------------------------------------------------------

def ip_bytes(st):
    return st["a_to_b"]["bytes"], st["b_to_a"]["bytes"]


async def quiet(emu, secs, limit):
    """Waits until the link has carried no byte for `secs` seconds (at
    most `limit` s); returns the emulator's stats then."""
    st = emu.stats()
    last, changed = ip_bytes(st), time.monotonic()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        st = emu.stats()
        now = ip_bytes(st)
        if now != last:
            last, changed = now, time.monotonic()
        elif time.monotonic() - changed >= secs:
            break
    return st


async def link_snapshot(pair, since):
    """A's links.json counters once rewritten after wall time `since`
    (it is every 5 s); None for Prosody."""
    if not pair.name.startswith("skywave"):
        return None
    p = os.path.join(pair.dirs["a"], "state", "links.json")
    deadline = time.time() + 8
    while time.time() < deadline:
        try:
            if os.stat(p).st_mtime > since:
                break
        except OSError:
            pass
        await asyncio.sleep(0.2)
    return pair.link_counters()


class Meter:
    """IP bytes (both ways) and link payload over one measured action,
    from a quiet link to a quiet link."""

    def __init__(self, emu, pair, prof, timeout):
        self.emu, self.pair, self.prof = emu, pair, prof
        self.secs = 2 * prof["delay"] + 2 * prof["turn"] + 1
        self.limit = timeout

    async def start(self):
        await quiet(self.emu, self.secs, self.limit)
        self.lc0 = await link_snapshot(self.pair, time.time())
        self.st0 = self.emu.stats()

    async def stop(self):
        st1 = await quiet(self.emu, self.secs, self.limit)
        lc1 = await link_snapshot(self.pair, time.time())
        a0, b0 = ip_bytes(self.st0)
        a1, b1 = ip_bytes(st1)
        out = {"ip_ab": a1 - a0, "ip_ba": b1 - b0, "ip": a1 - a0 + b1 - b0}
        if self.lc0 and lc1:
            for k in ("wire_out", "wire_in", "stanzas_out", "stanzas_in"):
                out[k] = lc1[k] - self.lc0[k]
            out["payload"] = out["wire_out"] + out["wire_in"]
        return out


# --- the scenario -------------------------------------------------------------

class Occupants:
    def __init__(self, system, emu, timeout):
        self.system, self.emu, self.timeout = system, emu, timeout
        self.fmuc = system == "skywave-fmuc"
        self.room_b = ROOM["b"] if self.fmuc else ROOM["a"]
        self.clients = {}

    async def login(self):
        for side in "ab":
            ns = self.emu.ns_a if side == "a" else self.emu.ns_b
            for user, pw in USERS[side]:
                c = Client(user)
                await c.login(ns, "127.0.0.1", user, DOMAIN[side], pw,
                              "bench", self.timeout)
                c.send("<presence/>")
                self.clients[user] = c

    def room_of(self, user):
        return ROOM["a"] if user.startswith("a") else self.room_b

    async def join(self, user, history=None, create=False):
        """Joins and waits for the own presence (and, for a B user, for
        a1 to see it at A)."""
        c, room = self.clients[user], self.room_of(user)
        c.send(join_xml(room, user, history))
        await c.wait_for(presence_of("%s/%s" % (room, user)), self.timeout,
                         "own presence in " + room)
        if user.startswith("b") and not create:
            await self.clients["a1"].wait_for(
                presence_of("%s/%s" % (ROOM["a"], user)), self.timeout,
                user + "'s presence at A")

    async def leave(self, user):
        c, room = self.clients[user], self.room_of(user)
        c.send("<presence to='%s/%s' type='unavailable'/>" % (room, user))
        await c.wait_for(presence_of("%s/%s" % (room, user), True),
                         self.timeout, "own unavailable presence")
        await self.clients["a1"].wait_for(
            presence_of("%s/%s" % (ROOM["a"], user), True), self.timeout,
            user + " leaving, at A")

    async def configure(self, user, room, fields, iq_id):
        c = self.clients[user]
        c.send(owner_form(room, fields, iq_id))
        ev = await c.wait_for(iq_result(iq_id), self.timeout,
                              "owner form result")
        if "result" not in ev[3]:
            raise ProtocolError("%s: owner form refused: %s" % (
                room, c.stanza_text(ev, 400)))

    def close(self):
        for c in self.clients.values():
            c.close()


def count_body(c, text):
    return c.text.count("<body>%s</body>" % text)


async def setup(occ, res):
    a1 = occ.clients["a1"]
    await occ.join("a1")
    await occ.configure("a1", ROOM["a"],
                        [("muc#roomconfig_persistentroom", "1")], "cfga")
    for i in range(2, N_A + 1):
        await occ.join("a%d" % i)
    for n in range(N_HISTORY):
        user = "a%d" % (n % N_A + 1)
        text = "h%d %s" % (n, line(n))
        occ.clients[user].send(groupchat(ROOM["a"], "h%d" % n, text))
        deadline = time.monotonic() + occ.timeout
        while count_body(a1, text) == 0:
            if time.monotonic() > deadline:
                raise ProtocolError("history message %d not echoed" % n)
            await asyncio.sleep(0.01)
    first = 1
    if occ.fmuc:
        # b1 makes B's node and federates it; the node joins A's room
        await occ.join("b1", create=True)
        await occ.configure("b1", ROOM["b"],
                            [("muc#roomconfig_persistentroom", "1"),
                             ("fmuc_node", ROOM["a"])], "cfgb")
        await a1.wait_for(presence_of(ROOM["a"] + "/b1"), occ.timeout,
                          "b1's presence at A (the node joined)")
        await occ.clients["b1"].wait_for(
            presence_of("%s/a%d" % (ROOM["b"], N_A)), occ.timeout,
            "A's occupants at B's node")
        first = 2
    for i in range(first, N_B_SETUP + 1):
        await occ.join("b%d" % i, history=0)


async def measure_join(occ, meter, res):
    user = "b%d" % (N_B_SETUP + 1)
    c = occ.clients[user]
    room = occ.room_b
    await meter.start()
    n0 = len(c.events)
    t0 = time.monotonic()
    c.send(join_xml(room, user))
    ev = await c.wait_for(subject_from(c, room, t0), occ.timeout,
                          "the subject at the end of the join")
    res["join_s"] = ev[0] - t0
    history = 0
    for e in c.events[n0:]:
        if e is ev:
            break
        st = full_stanza(c, e)
        if e[1] == "message" and st and "<body>" in st:
            history += 1
    res["join_history"] = history
    await occ.clients["a1"].wait_for(
        presence_of("%s/%s" % (ROOM["a"], user)), occ.timeout,
        user + "'s presence at A")
    m = await meter.stop()
    res["join_ip"] = m["ip"]
    res["join_detail"] = m


async def measure_messages(occ, meter, prof, k, res):
    sender = occ.clients["a2"]
    receivers = [occ.clients["b%d" % i] for i in range(1, k + 1)]
    interval = max(1.0, prof["interval"])
    await meter.start()
    sent = []
    for i in range(N_MSG):
        text = "k%d-%d %s" % (k, i, line(1000 * k + i))
        sent.append((text, time.monotonic()))
        sender.send(groupchat(ROOM["a"], "k%dm%d" % (k, i), text))
        await asyncio.sleep(interval)
    deadline = time.monotonic() + occ.timeout
    lat = []
    while time.monotonic() < deadline:
        if all(count_body(c, t) for c in receivers for t, _ in sent):
            break
        await asyncio.sleep(0.05)
    for c in receivers:
        for t, ts in sent:
            for e in c.events:
                if e[1] == "message":
                    st = full_stanza(c, e)
                    if st and "<body>%s</body>" % t in st:
                        lat.append(e[0] - ts)
                        break
    m = await meter.stop()
    delivered = sum(1 for c in receivers for t, _ in sent
                    if count_body(c, t) >= 1)
    dups = sum(max(0, count_body(c, t) - 1) for c in receivers
               for t, _ in sent)
    r = {"k": k, "messages": N_MSG, "expected": N_MSG * k,
         "delivered": delivered, "duplicates": dups,
         "ip_per_msg": m["ip"] / N_MSG,
         "lat_max": max(lat) if lat else None, "detail": m}
    if "payload" in m:
        r["payload_per_msg"] = m["payload"] / N_MSG
        r["stanzas_per_msg"] = (m["stanzas_out"] + m["stanzas_in"]) / N_MSG
    res.setdefault("per_k", {})[str(k)] = r


N_OUT = 5               # messages each side sends during the outage


async def measure_outage(occ, emu, args, res):
    """The link goes down for args.outage seconds with a1..a5 at A and b1
    at B in the room; a2 and b1 each send N_OUT messages spread over it.
    After link-up: what each side got of the other's (once, twice, never),
    the time until both have everything, and whether anyone was removed
    from the room (an unavailable presence for b1 at A, for an A occupant
    at B, or b1's own)."""
    a1, a2, b1 = (occ.clients[u] for u in ("a1", "a2", "b1"))
    room_b = occ.room_b
    mark = {c: len(c.text) for c in (a1, b1)}
    gap = args.outage / (N_OUT + 1)
    assert emu.ctl("down") == "ok"
    t_down = time.monotonic()
    sent_a, sent_b = [], []
    for i in range(N_OUT):
        await asyncio.sleep(max(0.0, t_down + gap * (i + 1)
                                - time.monotonic()))
        ta = "oa%d %s" % (i, line(5000 + i))
        tb = "ob%d %s" % (i, line(6000 + i))
        a2.send(groupchat(ROOM["a"], "oa%d" % i, ta))
        b1.send(groupchat(room_b, "ob%d" % i, tb))
        sent_a.append(ta)
        sent_b.append(tb)
    await asyncio.sleep(max(0.0, t_down + args.outage - time.monotonic()))
    assert emu.ctl("up") == "ok"
    t_up = time.monotonic()
    deadline = t_up + args.timeout
    whole = None
    while time.monotonic() < deadline:
        if all(count_body(b1, t) for t in sent_a) \
                and all(count_body(a1, t) for t in sent_b):
            whole = time.monotonic() - t_up
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(2)          # a late duplicate is seen too

    def side(c, sent):
        got = [count_body(c, t) for t in sent]
        order = [c.text.find("<body>%s</body>" % t) for t in sent]
        seen = [o for o in order if o >= 0]
        return {"delivered": sum(1 for g in got if g),
                "lost": sum(1 for g in got if not g),
                "duplicates": sum(max(0, g - 1) for g in got),
                "in_order": seen == sorted(seen)}

    kicked = []
    after_a, after_b = a1.text[mark[a1]:], b1.text[mark[b1]:]
    if re.search(r"<presence[^>]*from='%s/b1'[^>]*type='unavailable'"
                 % re.escape(ROOM["a"]), after_a):
        kicked.append("b1 at A")
    if re.search(r"<presence[^>]*from='%s/b1'[^>]*type='unavailable'"
                 % re.escape(room_b), after_b):
        kicked.append("b1 (itself)")
    for i in range(1, N_A + 1):
        if re.search(r"<presence[^>]*from='%s/a%d'[^>]*type='unavailable'"
                     % (re.escape(room_b), i), after_b):
            kicked.append("a%d at B" % i)
    res["outage"] = {"seconds": args.outage, "resync_s": whole,
                     "at_a": side(a1, sent_b), "at_b": side(b1, sent_a),
                     "kicked": kicked}


async def scenario(system, pair, emu, prof, args, res):
    occ = Occupants(system, emu, args.timeout)
    meter = Meter(emu, pair, prof, args.timeout)
    try:
        await occ.login()
        t = time.monotonic()
        await setup(occ, res)
        res["setup_s"] = time.monotonic() - t
        await measure_join(occ, meter, res)
        # b1..b6 are in; b7..b10 join for k = 10, then leave down to 3, 1
        inside = N_B_SETUP + 1
        for k in KS:
            while inside < k:
                inside += 1
                await occ.join("b%d" % inside, history=0)
            while inside > k:
                await occ.leave("b%d" % inside)
                inside -= 1
            await measure_messages(occ, meter, prof, k, res)
        if args.outage > 0:
            await measure_outage(occ, emu, args, res)
    finally:
        occ.close()


def bench(system, profile, args, work, certs, bundle):
    prof = PROFILES[profile]
    res = {"system": system, "profile": profile}
    tag = "m%s%s" % ({"prosody": "p", "skywave-plain": "l",
                      "skywave-fmuc": "f"}[system], profile[0])
    d = os.path.join(work, "%s-%s" % (system, profile))
    os.makedirs(d)
    emu = pair = None
    t = time.time()
    budget = max(args.budget, BUDGET.get(profile, 900))
    if args.outage > 0:
        budget += args.outage + args.timeout + 60
    try:
        emu = Emu(args.linkemu, d, tag, ["--profile", profile])
        if system.startswith("skywave"):
            pair = SkywavePair(
                d, emu, certs, bundle, args.tree, users=USERS,
                extra_config={s: '\nComponent "%s" "muc"\n' % CONF[s]
                              for s in "ab"},
                peer_domains={"a": [CONF["b"]], "b": [CONF["a"]]},
                peer_extra={"a": '    peer_fmuc = { "%s" },\n' % CONF["b"],
                            "b": '    peer_fmuc = { "%s" },\n' % CONF["a"]})
        else:
            pair = ProsodyPair(
                d, emu, certs, bundle, users=USERS,
                extra_config={"a": '\nComponent "%s" "muc"\n' % CONF["a"]},
                dns_names={CONF["a"]: ADDR["a"]})
        pair.name = system
        pair.start()
        asyncio.run(asyncio.wait_for(
            scenario(system, pair, emu, prof, args, res), budget))
    except asyncio.TimeoutError:
        res["error"] = "time budget of %ds exceeded" % budget
    except Exception as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        if pair:
            res["exit"] = pair.stop()
            for side in "ab":
                # warnings and errors: skywave's level is the second
                # field, Prosody's is between tabs
                res["log_errors_" + side] = [
                    ln for ln in pair.log(side).splitlines()
                    if re.search(r"^\S+\s+(warn|error|crit)\b|"
                                 r"\t(warn|error)\t", ln)][:5]
        if emu:
            emu.stop()
    res["wall"] = time.time() - t
    print("  %s %s: %s" % (profile, system, json.dumps(
        {k: (round(v, 3) if isinstance(v, float) else v)
         for k, v in res.items()
         if k not in ("per_k", "join_detail") and not k.startswith("log_")})),
        flush=True)
    return res


# --- report -----------------------------------------------------------------

COLS = [("system", "system", "%s"), ("join_s", "join s", "%.2f"),
        ("join_history", "history msgs", "%d"),
        ("join_ip", "join IP B", "%d")]
for _k in sorted(KS):
    COLS += [("ip_%d" % _k, "IP B/msg k=%d" % _k, "%.0f"),
             ("payload_%d" % _k, "payload B/msg k=%d" % _k, "%.0f")]
COLS.append(("delivered_text", "delivered", "%s"))
COLS += [("outage_a", "outage: A got", "%s"),
         ("outage_b", "outage: B got", "%s"),
         ("outage_kicked", "kicked", "%s"),
         ("outage_resync", "resync s", "%.1f")]


def report(rows, args, path):
    notes = []
    for r in rows:
        per = r.get("per_k") or {}
        exp = dlv = dup = 0
        for k, p in per.items():
            r["ip_" + k] = p["ip_per_msg"]
            r["payload_" + k] = p.get("payload_per_msg")
            exp += p["expected"]
            dlv += p["delivered"]
            dup += p["duplicates"]
        if per:
            r["delivered_text"] = "%d/%d%s" % (dlv, exp,
                                               " dup %d" % dup if dup else "")
        o = r.get("outage")
        if o:
            for side in "ab":
                g = o["at_" + side]
                r["outage_" + side] = "%d/%d%s%s" % (
                    g["delivered"], N_OUT,
                    " dup %d" % g["duplicates"] if g["duplicates"] else "",
                    "" if g["in_order"] else " out of order")
            r["outage_kicked"] = ", ".join(o["kicked"]) or "none"
            r["outage_resync"] = o["resync_s"]
        if r.get("error"):
            notes.append("%s %s: %s" % (r["profile"], r["system"],
                                        r["error"]))
        if per and any("stanzas_per_msg" in p for p in per.values()):
            notes.append("%s %s: link stanzas per message (links.json) %s"
                         % (r["profile"], r["system"], ", ".join(
                             "k=%s: %.1f" % (k, p["stanzas_per_msg"])
                             for k, p in sorted(per.items(),
                                                key=lambda x: int(x[0]))
                             if "stanzas_per_msg" in p)))
        for side in "ab":
            if r.get("log_errors_" + side):
                notes.append("%s %s: %s's log: %s" % (
                    r["profile"], r["system"], side.upper(),
                    r["log_errors_" + side][0][:160]))
    for profile in dict.fromkeys(r["profile"] for r in rows):
        p = PROFILES[profile]
        print("\n%s (%d bit/s, %.1f s each way%s)" % (
            profile, p["rate"], p["delay"],
            ", half duplex, %.1f s turnaround" % p["turn"] if p["turn"]
            else ""))
        head = [c[1] for c in COLS]
        table = [head]
        for r in rows:
            if r["profile"] != profile:
                continue
            table.append(["-" if r.get(key) is None else fmt % r[key]
                          for key, _, fmt in COLS])
        widths = [max(len(t[i]) for t in table) for i in range(len(head))]
        for i, t in enumerate(table):
            print(" | ".join(c.rjust(w) if j else c.ljust(w)
                             for j, (c, w) in enumerate(zip(t, widths))))
            if i == 0:
                print("-+-".join("-" * w for w in widths))
    print("join s: one more B user joins (prosody, skywave-plain: "
          "room@conference.a.example across the link; skywave-fmuc: "
          "room@conference.b.example, the federated node) with default "
          "history: join presence sent to the subject received; history "
          "msgs: messages with a body before the subject (the room has %d).\n"
          "join IP B: IP bytes both ways on the link from a quiet link "
          "(no byte for 2x one-way delay + 1 s) before the join to a quiet "
          "link after it (emulator counters).\n"
          "IP B/msg k=N: with N B occupants in the room (fmuc: in B's node), "
          "an A occupant sends %d groupchat messages of ~60 characters one "
          "a second; IP bytes both ways, quiet to quiet, / %d. payload "
          "B/msg: Skywave's compressed link bytes both ways (A's "
          "links.json wire_out + wire_in) over the same span / %d.\n"
          "delivered: messages received by the B occupants / expected "
          "(each message to each, for k = %s), duplicates if any.\n"
          "IP bytes include TCP/IP headers (52 B a packet) and pure ACKs; "
          "with messages 1 s apart each goes in its own segment. Prosody "
          "runs bench_link's configuration plus the MUC component (no "
          "mod_s2s_bidi: conference.a.example -> b.example is a second "
          "S2S connection, set up during the setup).\n"
          "outage: the link down for %d s with 5 A occupants and b1 in the "
          "room; a2 and b1 each send %d messages spread over it. A got / "
          "B got: the other side's messages received by a1 / b1 (once; dup: "
          "twice or more); kicked: removals seen (an unavailable presence "
          "for b1 at A or at B, for an A occupant at B); resync s: link-up "
          "until both have everything ('-': not within %d s)."
          % (N_HISTORY, N_MSG, N_MSG, N_MSG, ",".join(map(str, sorted(KS))),
             args.outage, N_OUT, args.timeout))
    for n in notes:
        print("note: " + n)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "params": vars(args), "rows": rows, "notes": notes},
                  f, indent=2, default=str)
    print("written to %s" % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", default=TOP)
    ap.add_argument("--profiles", default="iridium",
                    help="comma-separated: %s" % ",".join(PROFILES))
    ap.add_argument("--only", help="comma-separated: %s" % ",".join(SYSTEMS))
    ap.add_argument("--timeout", type=int, default=300,
                    help="seconds to wait for any one expected stanza")
    ap.add_argument("--budget", type=int, default=0,
                    help="seconds for one system on one profile (at least "
                    "the profile's own: %s)" % ", ".join(
                        "%s %d" % kv for kv in BUDGET.items()))
    ap.add_argument("--outage", type=int, default=900,
                    help="seconds the link is down with both sides "
                    "chatting, after the per-message rows (0: none)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work dir (configs, logs)")
    ap.add_argument("--out", default=os.path.join(TOP, "tests", "bench",
                                                  "results", "muc.json"))
    args = ap.parse_args()
    args.linkemu = os.path.join(args.tree, "tools", "skywave-linkemu")
    for p in args.profiles.split(","):
        if p not in PROFILES:
            ap.error("unknown profile %r" % p)
    if os.geteuid() != 0:
        print("bench_muc: needs root (network namespaces)")
        return 0
    work = tempfile.mkdtemp(prefix="bench-muc-")
    certs, bundle = make_certs(work, {s: [CONF[s]] for s in "ab"})
    print("bench_muc: profiles %s, work dir %s" % (args.profiles, work),
          flush=True)
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
