#!/usr/bin/python3
"""Chaos soak: two skywaved joined by a peer link through skywave-linkemu,
clients on both sides sending to users on the other side all the time,
and, at random moments, link outages, kill -9 of either server (then a
restart) and one disk-full episode on one server.  At the end every
message a server accepted must have been delivered exactly once or
bounced back to its sender.

    sudo /usr/bin/python3 tests/soak/soak.py --seconds 75 --seed 7
    sudo /usr/bin/python3 tests/soak/soak.py --minutes 60 --seed 7

Exit status: 0 when nothing was lost or duplicated, 1 when something was
(or a server crashed, or exited uncleanly), 2 on a usage or setup error,
77 when namespaces or tmpfs cannot be used here (as automake's SKIP).

Accounting (doc/peer-links.md, "Chaos soak"):

- Each message has a unique id and body.  A client sends with XEP-0198
  enabled and asks for acks (<r/>); the message is *accepted* when the
  server's <a h/> covers it.  The server answers <r/> only after the batch
  holding the message is committed (mod_c2s_sm.c, sw_link_commit()), and
  a stanza that could not be stored is bounced, never acknowledged and
  dropped.
- A client whose connection breaks (its server was killed) sends every
  message the server had not acknowledged again, on a new session, with
  the same id and body.  The first copy may have been taken (committed,
  its <a/> lost with the connection): XEP-0198 cannot tell across a
  server crash.  So a message written N times may legitimately arrive up
  to N times: extra copies of a message that was *sent again because it
  got no ack* are counted as "resend duplicates", and do not fail the run.
- The recipient's server hands a message from the link to the client at
  once and acknowledges it to its peer once the batch recording it has
  committed, milliseconds later.  A kill -9 in that window means the peer
  sends it again and the client gets a second copy; committing first
  would lose the message instead.  A copy delivered at most 1 s before
  (0.5 s after) a kill of the recipient's server allows one more copy:
  "crash duplicates", counted apart, not failures.
- Anything else that arrives more than once (more copies delivered, or
  delivered and bounced, than times it was written; in particular a
  message written once, acknowledged, and delivered twice) is a real
  duplicate and fails the run.
- An accepted message that was neither delivered nor bounced by the end
  of the drain is lost and fails the run.  So do a message delivered to
  the wrong user or with another body, a message never acknowledged
  although its client stayed connected through the drain, a server that
  died by itself, and a server that did not exit 0 on SIGTERM at the end.
"""
import argparse
import os
import pathlib
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from test_c2s import Raw                                   # noqa: E402
from test_durability import fill, mount_tmpfs              # noqa: E402
from test_link_emulated import (Setup, accept_fast_open,    # noqa: E402
                                count_log, in_netns, links_json,
                                start_server)
from test_linkemu import _netns_usable                     # noqa: E402

NS_SM = "{urn:xmpp:sm:3}"
NS_CLIENT = "{jabber:client}"
NS_STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
NS_STREAMS = "{http://etherx.jabber.org/streams}"
NS_DELAY = "{urn:xmpp:delay}"
STREAM_OPEN = (b"<stream:stream xmlns='jabber:client' "
               b"xmlns:stream='http://etherx.jabber.org/streams'>")
# Server log lines that show storage failing (disk full).
STORAGE_ERRORS = ("could not store a stanza", "did not reach stable storage",
                  "cannot record stanza", "were not stored",
                  "were sent but not deleted")
SKIP = 77


class Lost(Exception):
    """The client's connection ended."""


# ------------------------------------------------------------ ledger ---

class Msg:
    __slots__ = ("id", "sender", "to", "body", "sends", "acks",
                 "unacked_losses", "deliveries", "bounces")

    def __init__(self, mid, sender, to, body):
        self.id, self.sender, self.to, self.body = mid, sender, to, body
        self.sends = []         # (session, t) per time it was written
        self.acks = []          # (session, t) per acknowledged writing
        self.unacked_losses = 0  # connections lost with it unacknowledged
        self.deliveries = []    # (recipient, session, t, delayed)
        self.bounces = []       # (condition, t)


class Ledger:
    """Everything sent, acknowledged, delivered and bounced (all clients
    write here, from their threads)."""

    def __init__(self, t0):
        self.t0 = t0
        self.lock = threading.Lock()
        self.msgs = {}
        self.anomalies = []     # unknown ids, wrong recipients, bad h...

    def now(self):
        return time.monotonic() - self.t0

    def new(self, mid, sender, to, body):
        with self.lock:
            self.msgs[mid] = Msg(mid, sender, to, body)

    def sent(self, mid, session):
        with self.lock:
            self.msgs[mid].sends.append((session, self.now()))

    def acked(self, mid, session):
        with self.lock:
            self.msgs[mid].acks.append((session, self.now()))

    def unacked_loss(self, mid):
        with self.lock:
            self.msgs[mid].unacked_losses += 1

    def anomaly(self, text):
        with self.lock:
            self.anomalies.append("%.1fs %s" % (self.now(), text))

    def delivered(self, mid, body, recipient, session, delayed):
        with self.lock:
            m = self.msgs.get(mid)
            if m is None:
                self.anomalies.append("%.1fs %s got a message with unknown "
                                      "id %r (body %r)" % (self.now(),
                                                           recipient, mid,
                                                           body))
                return
            if m.to != recipient or m.body != body:
                self.anomalies.append(
                    "%.1fs %s got %s (body %r), sent to %s with body %r"
                    % (self.now(), recipient, mid, body, m.to, m.body))
            m.deliveries.append((recipient, session, self.now(), delayed))

    def bounced(self, mid, cond, sender):
        with self.lock:
            m = self.msgs.get(mid)
            if m is None or m.sender != sender:
                self.anomalies.append("%.1fs %s got a bounce (%s) of %r, "
                                      "not its message" % (self.now(), sender,
                                                           cond, mid))
                return
            m.bounces.append((cond, self.now()))

    def snapshot(self):
        with self.lock:
            return dict(self.msgs), list(self.anomalies)


# ------------------------------------------------------------ client ---

class Client(threading.Thread):
    """One user logged in to SERVER from inside namespace NS, with
    XEP-0198 acks, sending to PEERS (bare JIDs on the other side) every
    INTERVAL seconds on average while the soak lets it, and reconnecting
    (new session) whenever its connection breaks.  Messages its server
    did not acknowledge are sent again on the next session."""

    def __init__(self, soak, ns, server, user, domain, peers, seed):
        super().__init__(daemon=True, name=user)
        self.soak, self.ns, self.server = soak, ns, server
        self.user, self.domain = user, domain
        self.bare = "%s@%s" % (user, domain)
        self.peers = peers
        self.rng = random.Random(seed)
        self.ledger = soak.ledger
        self.stop_flag = threading.Event()
        self.n = 0
        self.resend = []            # ids to write again, oldest first
        self.session = 0
        self.connected = False
        self.raw = None
        self.sent = []              # ids (None: other stanza) this session
        self.h = 0                  # acknowledged of self.sent
        self.received = 0           # stanzas since <enabled/>
        self.enabled = False
        self.next_send = 0.0
        self.last_r = 0.0
        self.r_at = 0               # len(self.sent) at the last <r/>
        self.fatal = None

    # -- reading ---------------------------------------------------------

    def _start_parser(self, leftover):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.parser.feed(STREAM_OPEN)
        self.depth = 0
        self.root = None
        self._feed(leftover)

    def _feed(self, data):
        if not data:
            return
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start":
                if self.depth == 0:
                    self.root = el
                self.depth += 1
                continue
            self.depth -= 1
            if self.depth == 0:
                raise Lost("the server closed the stream")
            if self.depth == 1:
                self.root.remove(el)
                self._element(el)

    def _read(self, timeout):
        self.raw.sock.settimeout(max(0.01, timeout))
        try:
            data = self.raw.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return
        except (OSError, ssl.SSLError) as e:
            raise Lost("read: %s" % e)
        if not data:
            raise Lost("the server closed the connection")
        self._feed(data)

    def _element(self, el):
        tag = el.tag
        if tag == NS_SM + "enabled":
            self.enabled = True
        elif tag == NS_SM + "a":
            self._acked(int(el.get("h")))
        elif tag == NS_SM + "r":
            self._send("<a xmlns='urn:xmpp:sm:3' h='%d'/>" % self.received)
        elif tag == NS_SM + "failed":
            raise Lost("stream management failed: %s"
                       % ET.tostring(el).decode())
        elif tag == NS_STREAMS + "error":
            raise Lost("stream error: %s" % ET.tostring(el).decode())
        elif tag.rpartition("}")[2] in ("message", "presence", "iq"):
            if self.enabled:
                self.received += 1
            ns, _, name = tag.rpartition("}")
            ns = ns + "}" if ns else ""
            if ns != NS_CLIENT:
                # A client would not take it for a stanza: reported (and
                # accounted, so that the report shows what it was).
                self.ledger.anomaly("%s got a <%s/> in namespace %r, not "
                                    "jabber:client: %s" % (
                                        self.bare, name, ns.strip("{}"),
                                        ET.tostring(el).decode()[:300]))
            if name == "message":
                self._message(el, ns)
            elif name == "iq" and el.get("type") in ("get", "set"):
                # not expected; answered so nothing waits for us
                self.ledger.anomaly("%s got an IQ request: %s" % (
                    self.bare, ET.tostring(el).decode()[:200]))
                self._stanza("<iq type='error' id='%s' to='%s'><error "
                             "type='cancel'><service-unavailable xmlns="
                             "'urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "</error></iq>" % (el.get("id"), el.get("from")),
                             None)
        else:
            self.ledger.anomaly("%s got an unexpected element: %s" % (
                self.bare, ET.tostring(el).decode()[:300]))

    def _message(self, el, ns):
        mid = el.get("id")
        if el.get("type") == "error":
            err = el.find(ns + "error")
            cond = "?"
            if err is not None:
                for c in err:
                    if c.tag.startswith(NS_STANZAS) and \
                            not c.tag.endswith("}text"):
                        cond = c.tag[len(NS_STANZAS):]
            self.ledger.bounced(mid, cond, self.bare)
            return
        body = el.findtext(ns + "body")
        if body is None:
            return              # chat states and the like: none expected
        delayed = el.find(NS_DELAY + "delay") is not None
        self.ledger.delivered(mid, body, self.bare, self.session, delayed)

    def _acked(self, h):
        if h > len(self.sent) or h < self.h:
            self.ledger.anomaly("%s session %d: <a h='%d'/> but %d sent, "
                                "%d acknowledged before" % (
                                    self.bare, self.session, h,
                                    len(self.sent), self.h))
            h = min(max(h, self.h), len(self.sent))
        for mid in self.sent[self.h:h]:
            if mid is not None:
                self.ledger.acked(mid, self.session)
        self.h = h

    # -- writing ---------------------------------------------------------

    def _send(self, text):
        try:
            self.raw.send(text)
        except (OSError, ssl.SSLError) as e:
            raise Lost("write: %s" % e)

    def _stanza(self, text, mid):
        """A stanza the server counts (XEP-0198 h)."""
        self.sent.append(mid)
        if mid is not None:
            self.ledger.sent(mid, self.session)
        self._send(text)

    def _message_out(self, now):
        if self.resend:
            mid = self.resend.pop(0)
            m = self.ledger.msgs[mid]
            to, body = m.to, m.body
        elif self.soak.sending:
            self.n += 1
            mid = "%s.%d" % (self.user, self.n)
            to = self.rng.choice(self.peers)
            body = "soak %s %s %08x" % (mid, self.soak.token,
                                         self.rng.getrandbits(32))
            self.ledger.new(mid, self.bare, to, body)
        else:
            self.next_send = now + 0.1      # nothing to send: look later
            return
        self._stanza("<message to='%s' id='%s' type='chat'><body>%s</body>"
                     "</message>" % (to, mid, body), mid)
        lo, hi = self.soak.opts.interval
        self.next_send = now + self.rng.uniform(lo, hi)

    def _request_ack(self, now):
        out = len(self.sent) - self.h
        if out == 0:
            return
        if len(self.sent) - self.r_at >= 3 or now - self.last_r > 0.5:
            self._send("<r xmlns='urn:xmpp:sm:3'/>")
            self.last_r = now
            self.r_at = len(self.sent)

    # -- sessions --------------------------------------------------------

    def _connect(self):
        with in_netns(self.ns):
            raw = Raw(self.server.port, self.domain)
        self.raw = raw
        try:
            raw.login(self.user, "pw-" + self.user, "soak")
            raw.send("<presence/>")
            # after the presence, so that h counts our messages only
            raw.send("<enable xmlns='urn:xmpp:sm:3'/>")
            self.session += 1
            self.sent, self.h, self.received = [], 0, 0
            self.enabled = False
            self.r_at, self.last_r = 0, 0.0
            self._start_parser(raw.buf)
            deadline = time.monotonic() + 10
            while not self.enabled:
                if time.monotonic() > deadline:
                    raise Lost("no <enabled/>")
                self._read(deadline - time.monotonic())
        except BaseException:
            self._close_socket()
            raise
        self.connected = True

    def _close_socket(self):
        try:
            self.raw.sock.close()
        except (OSError, AttributeError):
            pass

    def _session_ended(self, why):
        self.connected = False
        unacked = [m for m in self.sent[self.h:] if m is not None]
        for mid in unacked:
            self.ledger.unacked_loss(mid)
        self.resend = unacked + self.resend
        self.sent, self.h = [], 0
        self._close_socket()
        self.soak.note("%s: session %d ended (%s); %d unacknowledged, "
                       "to send again" % (self.bare, self.session, why,
                                          len(unacked)), quiet=True)

    def _session(self):
        while not self.stop_flag.is_set():
            now = time.monotonic()
            if now >= self.next_send:
                self._message_out(now)
            self._request_ack(now)
            self._read(min(0.1, max(0.01, self.next_send - now)))

    def run(self):
        try:
            while not self.stop_flag.is_set():
                try:
                    self._connect()
                except (Lost, OSError, ssl.SSLError, AssertionError,
                        ET.ParseError):
                    self.connected = False
                    self.stop_flag.wait(0.3)
                    continue
                try:
                    self._session()
                except (Lost, ET.ParseError) as e:
                    self._session_ended(str(e))
                    # Clients come back after a while (people, backoff):
                    # what arrives meanwhile goes to offline storage.
                    self.stop_flag.wait(self.rng.uniform(0.2, 5.0))
        except BaseException as e:     # a bug here: reported, run fails
            import traceback
            self.fatal = traceback.format_exc()
            self.soak.note("%s: client failed: %r" % (self.bare, e))

    def finish(self, timeout=5):
        """Stops the thread, then acknowledges what it got and closes."""
        self.stop_flag.set()
        self.join(timeout)
        if self.connected:
            try:
                self.raw.send("<a xmlns='urn:xmpp:sm:3' h='%d'/>"
                              "</stream:stream>" % self.received)
            except (OSError, ssl.SSLError):
                pass
            self._close_socket()

    def unacked(self):
        return len(self.resend) + (len(self.sent) - self.h)


# -------------------------------------------------------------- soak ---

class Options:
    def __init__(self, seconds=75, seed=None, clients=2, interval=(0.1, 0.6),
                 profile="satcom-64k", loss="0.5", drain=90, workdir=None,
                 keep=False, disk_full=1, quiet=False, fastopen=0):
        self.seconds = seconds
        self.fastopen = fastopen
        self.seed = seed if seed is not None else random.randrange(1 << 31)
        self.clients = clients
        self.interval = interval
        self.profile = profile
        self.loss = loss
        self.drain = drain
        self.workdir = workdir
        self.keep = keep
        self.disk_full = disk_full
        self.quiet = quiet


def make_schedule(rng, seconds, disk_full):
    """The chaos, as (start, kind, args) in seconds from the start of the
    chaos.  Each kind at least once (the disk-full episode DISK_FULL
    times), in random order, then random events while time is left; one
    at a time, with calm gaps between."""
    long_max = max(5.0, min(30.0, seconds / 4.0))
    gap_max = 5.0 if seconds < 300 else 15.0

    def outage():
        if rng.random() < 0.5:      # TCP retransmits through it
            return ("outage", round(rng.uniform(0.5, 4.0), 1))
        return ("outage", round(rng.uniform(5.0, long_max), 1))

    def kill(name=None):
        return ("kill", name or rng.choice("AB"),
                round(rng.uniform(0.2, 6.0), 1))

    def kill_in_outage():
        # link down, kill one end, restart it, link up later
        return ("kill_in_outage", rng.choice("AB"),
                round(rng.uniform(3.0, long_max), 1))

    def disk():
        # Half the time it follows a restart of the same server, while its
        # clients are still away and what came meanwhile waits offline
        # for them: they log in with the disk full.
        pre = None
        if rng.random() < 0.5:
            pre = (round(rng.uniform(0.5, 3.0), 1),
                   round(rng.uniform(0.5, 2.5), 1))
        return ("disk_full", pre, round(rng.uniform(8.0, 20.0), 1))

    events = [outage(), kill("A"), kill("B")] + [disk()
                                                for _ in range(disk_full)]
    rng.shuffle(events)
    out, t = [], round(rng.uniform(2.0, 5.0), 1)

    def length(ev):
        extra = 6.0 if ev[0] == "kill_in_outage" else \
            sum(ev[1]) if ev[0] == "disk_full" and ev[1] else 0.0
        return ev[-1] + extra

    for ev in events:
        out.append((t, ev))
        t = round(t + length(ev) + rng.uniform(1.0, gap_max), 1)
    while True:
        r = rng.random()
        ev = outage() if r < 0.45 else kill() if r < 0.85 \
            else kill_in_outage()
        if t + length(ev) > seconds:
            break
        out.append((t, ev))
        t = round(t + length(ev) + rng.uniform(1.0, gap_max), 1)
    return out


class Soak:
    def __init__(self, opts):
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.token = "%08x" % self.rng.getrandbits(32)
        self.t0 = time.monotonic()
        self.ledger = Ledger(self.t0)
        self.sending = False
        self.killed = set()         # servers we killed and not restarted
        self.kill_times = {"A": [], "B": []}
        self.counts = {"outages": 0, "kills_A": 0, "kills_B": 0,
                       "disk_full": 0, "storage_errors": 0, "crashes": 0,
                       "offline_kept": 0}
        self.failures = []
        self.timeline = []
        self.intervals = []         # (start, end, what) of each event
        self.link_stats = {}        # links.json of each server at the end
        self.emu_stats = None
        self.drained = False
        self.mounted = None
        self.ln = None
        self.clients = []
        self.print_lock = threading.Lock()

    # -- output ----------------------------------------------------------

    def note(self, text, quiet=False):
        line = "%7.1fs %s" % (time.monotonic() - self.t0, text)
        with self.print_lock:
            self.timeline.append(line)
            if not (quiet and self.opts.quiet):
                print("soak: " + line, flush=True)

    def progress(self):
        msgs, _ = self.ledger.snapshot()
        acked = sum(1 for m in msgs.values() if m.acks)
        dl = sum(1 for m in msgs.values() if m.deliveries)
        bo = sum(1 for m in msgs.values() if m.bounces)
        up = ",".join(c.user for c in self.clients if c.connected)
        self.note("sent %d, accepted %d, delivered %d, bounced %d; "
                  "connected: %s" % (len(msgs), acked, dl, bo, up or "-"))

    # -- servers ---------------------------------------------------------

    def server(self, name):
        return self.ln.a if name == "A" else self.ln.b

    def watch(self, seconds):
        """Sleeps SECONDS, watching that the servers we did not kill are
        running; one that died by itself is reported and restarted."""
        end = time.monotonic() + seconds
        while True:
            for name in "AB":
                s = self.server(name)
                if name in self.killed or s.proc is None:
                    continue
                rc = s.proc.poll()
                if rc is not None:
                    self.counts["crashes"] += 1
                    self.failures.append("server %s died by itself (exit "
                                         "%r)" % (name, rc))
                    self.note("server %s DIED (exit %r); log tail:\n%s"
                              % (name, rc, s.log_text()[-2000:]))
                    start_server(s)
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.2, left))

    def kill(self, name):
        s = self.server(name)
        self.killed.add(name)
        self.kill_times[name].append(self.now())
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=10)
        self.counts["kills_" + name] += 1

    def restart(self, name):
        start_server(self.server(name))
        self.killed.discard(name)

    def link(self, state):
        r = self.ln.emu.ctl(state)
        if r != "ok":
            raise RuntimeError("linkemu %s: %r" % (state, r))

    def storage_errors(self, name):
        log = self.server(name).log_text()
        return sum(log.count(t) for t in STORAGE_ERRORS)

    # -- the run ---------------------------------------------------------

    def setup(self):
        o = self.opts
        work = pathlib.Path(o.workdir)
        self.disk_server = self.rng.choice("AB")
        self.schedule = make_schedule(self.rng, o.seconds, o.disk_full)
        emu = ["--profile", o.profile, "--seed", str(o.seed)]
        if o.loss:
            emu += ["--loss", str(o.loss)]
        top = "link_tcp_fastopen = true\n" if o.fastopen else ""
        self.ln = Setup(work, emu, keepalive="2s", top=top)
        if o.fastopen > 1:
            accept_fast_open(self.ln)
        a_users = ["a%d" % i for i in range(1, o.clients + 1)]
        b_users = ["b%d" % i for i in range(1, o.clients + 1)]
        for u in a_users:
            self.ln.a.adduser(u + "@a.example", "pw-" + u)
        for u in b_users:
            self.ln.b.adduser(u + "@b.example", "pw-" + u)
        if o.disk_full:
            state = self.server(self.disk_server).dir / "state"
            why = mount_tmpfs(state, "32m")
            if why is not None:
                raise SkipSoak(why)
            self.mounted = state
        self.ln.start()
        self.ln.wait_up()
        for i, u in enumerate(a_users):
            self.clients.append(Client(
                self, self.ln.emu.ns_a, self.ln.a, u, "a.example",
                [b + "@b.example" for b in b_users], o.seed * 100 + i))
        for i, u in enumerate(b_users):
            self.clients.append(Client(
                self, self.ln.emu.ns_b, self.ln.b, u, "b.example",
                [a + "@a.example" for a in a_users], o.seed * 100 + 50 + i))
        for c in self.clients:
            c.start()
        deadline = time.monotonic() + 30
        while not all(c.connected for c in self.clients):
            if time.monotonic() > deadline:
                raise RuntimeError("clients did not log in: %s" % [
                    c.user for c in self.clients if not c.connected])
            time.sleep(0.1)

    def now(self):
        return time.monotonic() - self.t0

    def run_event(self, ev):
        kind, t = ev[0], self.now()
        if kind == "outage":
            self.note("link down for %.1f s" % ev[1])
            self.link("down")
            self.counts["outages"] += 1
            self.watch(ev[1])
            self.link("up")
            self.note("link up")
            what = "link outage"
        elif kind == "kill":
            name, down = ev[1], ev[2]
            self.note("kill -9 server %s; restart in %.1f s" % (name, down))
            self.kill(name)
            self.watch(down)
            self.restart(name)
            self.note("server %s restarted" % name)
            what = "kill -9 of %s" % name
        elif kind == "kill_in_outage":
            name, down = ev[1], ev[2]
            self.note("link down for %.1f s with a kill -9 of server %s in "
                      "it" % (down + 6.0, name))
            self.link("down")
            self.counts["outages"] += 1
            self.watch(2.0)
            self.kill(name)
            self.watch(down)
            self.restart(name)
            self.note("server %s restarted, link still down" % name)
            self.watch(4.0)
            self.link("up")
            self.note("link up")
            what = "kill -9 of %s in a link outage" % name
        elif kind == "disk_full":
            name, pre, length = self.disk_server, ev[1], ev[2]
            if pre:
                self.note("kill -9 server %s; restart in %.1f s, disk full "
                          "%.1f s later" % (name, pre[0], pre[1]))
                self.kill(name)
                self.watch(pre[0])
                self.restart(name)
                self.note("server %s restarted" % name)
                self.watch(pre[1])
            before = self.storage_errors(name)
            state = self.server(name).dir / "state"
            filler = fill(state)
            self.counts["disk_full"] += 1
            self.note("disk full on server %s for %.1f s (%d bytes of "
                      "filler)" % (name, length, os.path.getsize(filler)))
            self.watch(length)
            os.unlink(filler)
            n = self.storage_errors(name) - before
            self.counts["storage_errors"] += n
            self.note("disk freed on server %s; %d storage errors in its log "
                      "meanwhile" % (name, n))
            what = "disk full on %s%s" % (name, " after a kill -9"
                                          if pre else "")
        self.intervals.append((t, self.now(), what))

    def context(self, t):
        """The chaos events going on at T, or over less than 15 s before
        (their effects lag: a restarted server's link comes back later)."""
        near = ["%s (%.1f-%.1fs)" % (w, a, b) for a, b, w in self.intervals
                if a - 1 <= t <= b + 15]
        return ", ".join(near) or "no chaos event"

    def chaos(self):
        o = self.opts
        self.note("seed %d; %d s of chaos on %s (loss %s%%), %d+%d clients; "
                  "disk-full server %s; schedule: %s"
                  % (o.seed, o.seconds, o.profile, o.loss or "0",
                     o.clients, o.clients, self.disk_server,
                     "; ".join("%.1f %s" % (t, " ".join(map(str, ev)))
                               for t, ev in self.schedule)))
        self.sending = True
        start = time.monotonic()
        last = start
        for t, ev in self.schedule:
            while time.monotonic() - start < t:
                self.watch(min(1.0, t - (time.monotonic() - start)))
                if time.monotonic() - last >= 10:
                    self.progress()
                    last = time.monotonic()
            self.run_event(ev)
        while time.monotonic() - start < o.seconds:
            self.watch(min(1.0, o.seconds - (time.monotonic() - start)))
            if time.monotonic() - last >= 10:
                self.progress()
                last = time.monotonic()
        self.sending = False
        self.note("chaos over; no new messages; draining")

    def settled(self):
        if not all(c.connected and c.unacked() == 0 for c in self.clients):
            return False
        msgs, _ = self.ledger.snapshot()
        return all(m.deliveries or m.bounces for m in msgs.values()
                   if m.acks)

    def drain(self):
        start = time.monotonic()
        last = start
        while not self.settled():
            if time.monotonic() - start > self.opts.drain:
                self.note("drain: not settled after %d s" % self.opts.drain)
                break
            self.watch(0.5)
            if time.monotonic() - last >= 10:
                self.progress()
                last = time.monotonic()
        self.drain_time = time.monotonic() - start
        self.drained = True
        # late copies: a duplicate would come with the rest
        self.watch(3.0)
        self.note("drained in %.1f s" % self.drain_time)

    def teardown(self):
        for c in self.clients:
            c.finish()
        for c in self.clients:
            if c.fatal:
                self.failures.append("client %s failed:\n%s" % (c.bare,
                                                                 c.fatal))
        if self.ln is None:
            return
        self.exit_codes = {}
        for name in "AB":
            s = self.server(name)
            try:
                rc = s.stop()
            except Exception as e:      # did not stop within 15 s
                rc = repr(e)
            self.exit_codes[name] = rc
            if name not in self.killed and rc not in (0, None):
                self.failures.append("server %s exited %r on SIGTERM"
                                     % (name, rc))
        # What each server wrote at shutdown: nothing may wait for the
        # peer any more, and the link protocol must never have been broken.
        for name in "AB":
            s = self.server(name)
            try:
                st = links_json(s)
            except (OSError, ValueError, AssertionError):
                continue
            self.link_stats[name] = st
            if self.drained and st["queued"]:
                self.failures.append("%d stanzas still queued on %s for its "
                                     "peer after the drain" % (st["queued"],
                                                               name))
            self.counts["offline_kept"] += count_log(
                s, "were sent but not deleted")
            n = count_log(s, "protocol error")
            if n or st["protocol_errors"]:
                self.failures.append("%d link protocol errors on %s (see "
                                     "%s)" % (max(n, st["protocol_errors"]),
                                              name, s.log))
        try:
            self.emu_stats = self.ln.emu.stats()
        except Exception:
            pass
        self.ln.emu.stop()
        if self.mounted is not None:
            subprocess.run(["umount", "-l", str(self.mounted)])

    # -- verdict ---------------------------------------------------------

    def verdict(self):
        msgs, anomalies = self.ledger.snapshot()
        r = {"sent": len(msgs), "writes": 0, "resent": 0, "accepted": 0,
             "delivered": 0, "bounced": 0, "lost": 0, "duplicated": 0,
             "resend_duplicates": 0, "crash_duplicates": 0,
             "unacknowledged": 0, "delayed": 0}
        lost, dups, unacked = [], [], []
        bounce_conds = {}
        for m in msgs.values():
            r["writes"] += len(m.sends)
            if len(m.sends) > 1:
                r["resent"] += 1
            outcomes = len(m.deliveries) + len(m.bounces)
            if m.deliveries:
                r["delivered"] += 1
                if any(d[3] for d in m.deliveries):
                    r["delayed"] += 1
            if m.bounces:
                r["bounced"] += 1
                for c, _ in m.bounces:
                    bounce_conds[c] = bounce_conds.get(c, 0) + 1
            if not m.acks:
                r["unacknowledged"] += 1
                unacked.append(m)
            else:
                r["accepted"] += 1
                if outcomes == 0:
                    r["lost"] += 1
                    lost.append(m)
            if outcomes > 1:
                crashes = self.crash_copies(m)
                if outcomes <= len(m.sends):
                    r["resend_duplicates"] += 1
                elif outcomes <= len(m.sends) + crashes:
                    r["crash_duplicates"] += 1
                else:
                    r["duplicated"] += 1
                    dups.append(m)
        r["bounce_conditions"] = bounce_conds
        r.update(self.counts)
        r["kills"] = self.counts["kills_A"] + self.counts["kills_B"]
        r["seed"] = self.opts.seed
        r["links"] = self.link_stats
        r["emu_outages"] = (self.emu_stats or {}).get("outages")
        r["anomalies"] = anomalies
        failures = list(self.failures)
        if lost:
            failures.append("%d accepted messages lost" % len(lost))
        if dups:
            failures.append("%d messages duplicated" % len(dups))
        if unacked:
            failures.append("%d messages never acknowledged, although their "
                            "clients were connected through the drain"
                            % len(unacked))
        if anomalies:
            failures.append("%d anomalies" % len(anomalies))
        if r["accepted"] == 0:
            failures.append("no message was accepted at all")
        r["failures"] = failures
        r["details"] = [self.describe(m, "LOST") for m in lost[:20]] + \
            [self.describe(m, "DUPLICATED") for m in dups[:20]] + \
            [self.describe(m, "UNACKNOWLEDGED") for m in unacked[:20]]
        # where they happened, to start an investigation from
        groups = {}
        for m in dups:
            t = sorted([d[2] for d in m.deliveries]
                       + [b[1] for b in m.bounces])[1]
            k = "duplicated near " + self.context(t)
            groups[k] = groups.get(k, 0) + 1
        for m in lost:
            k = "lost, accepted near " + self.context(m.acks[0][1])
            groups[k] = groups.get(k, 0) + 1
        r["groups"] = groups
        return r

    # A copy handed to a client no more than this long before (or, the
    # bytes in flight, this long after) its server was killed may arrive
    # again: see crash_copies().
    CRASH_BEFORE, CRASH_AFTER = 1.0, 0.5

    def crash_copies(self, m):
        """How many copies of M the recipient's server may deliver again
        because it was killed right after delivering them.

        A server hands a message from the peer link to the recipient's
        session as soon as it reads it, and records in the same turn's
        storage batch that it has it; the peer's copy is acknowledged once
        that commits (milliseconds later).  A kill -9 in between leaves a
        client holding a message whose count never became durable, so the
        peer sends it again after the restart, and the recipient gets it
        again (from offline storage if not logged in by then).  Neither
        order avoids this: commit first and a kill between the commit and
        the write loses the message.  So each kill of the recipient's
        server that comes right after a delivery allows one more copy;
        a delivery more than CRASH_BEFORE s before any kill allows none.
        """
        server = m.to.split("@", 1)[1][:1].upper()
        kills = self.kill_times.get(server, [])
        n = 0
        for k in kills:
            if any(k - self.CRASH_BEFORE <= d[2] <= k + self.CRASH_AFTER
                   for d in m.deliveries):
                n += 1
        return n

    def describe(self, m, what):
        if what == "DUPLICATED":
            extra = sorted([d[2] for d in m.deliveries]
                           + [b[1] for b in m.bounces])[1]
            when = "the second copy at %.1fs: %s" % (extra,
                                                      self.context(extra))
        elif m.acks:
            when = "accepted at %.1fs: %s" % (m.acks[0][1],
                                              self.context(m.acks[0][1]))
        else:
            when = "last written at %.1fs" % m.sends[-1][1]
        return ("%s %s %s -> %s: written %s; acknowledged %s; connections "
                "lost with it unacknowledged %d; delivered %s; bounced %s; "
                "%s" % (
                    what, m.id, m.sender, m.to,
                    ", ".join("s%d@%.1fs" % s for s in m.sends),
                    ", ".join("s%d@%.1fs" % a for a in m.acks) or "never",
                    m.unacked_losses,
                    ", ".join("s%d@%.1fs%s" % (d[1], d[2],
                                               " (delayed)" if d[3] else "")
                              for d in m.deliveries) or "never",
                    ", ".join("%s@%.1fs" % b for b in m.bounces) or "never",
                    when))

    def run(self):
        try:
            self.setup()
            self.chaos()
            self.drain()
        finally:
            self.teardown()
        return self.verdict()


class SkipSoak(Exception):
    pass


def usable():
    """None, or why this machine cannot run the soak."""
    return _netns_usable()


def summary(r, opts):
    lines = [
        "soak: seed %d" % r["seed"],
        "soak: sent %d (written %d times, %d sent again after an "
        "unacknowledged write), accepted %d, not acknowledged %d"
        % (r["sent"], r["writes"], r["resent"], r["accepted"],
           r["unacknowledged"]),
        "soak: delivered %d, bounced %d %s, lost %d, duplicated %d "
        "(resend duplicates %d, crash duplicates %d, allowed)"
        % (r["delivered"], r["bounced"], r["bounce_conditions"] or "",
           r["lost"], r["duplicated"], r["resend_duplicates"],
           r["crash_duplicates"]),
        "soak: outages %d, kills %d (A %d, B %d), disk-full episodes %d "
        "(%d storage errors logged), crashes %d"
        % (r["outages"], r["kills"], r["kills_A"], r["kills_B"],
           r["disk_full"], r["storage_errors"], r["crashes"]),
        "soak: %d delivered with a delay stamp (from offline storage); "
        "%d logins got offline messages that could not be deleted"
        % (r["delayed"], r["offline_kept"]),
    ]
    for name, st in sorted(r["links"].items()):
        lines.append("soak: server %s's link since its last start: %d in, "
                     "%d out, %d duplicates dropped, %d reconnects, %d "
                     "queued at the end" % (name, st["stanzas_in"], st["stanzas_out"],
                              st["duplicates_in"], st["reconnects"],
                              st["queued"]))
    for k, n in sorted(r["groups"].items()):
        lines.append("soak: %d %s" % (n, k))
    for a in r["anomalies"][:20]:
        lines.append("soak: anomaly: " + a)
    for d in r["details"]:
        lines.append("soak: " + d)
    for f in r["failures"]:
        lines.append("soak: FAIL: " + f)
    lines.append("soak: %s (seed %d; again: sudo /usr/bin/python3 "
                 "tests/soak/soak.py --seconds %d --seed %d)"
                 % ("FAILED" if r["failures"] else "PASSED", r["seed"],
                    opts.seconds, r["seed"]))
    return "\n".join(lines)


def run(opts):
    """Runs the soak; returns (result dict, summary text).  Raises
    SkipSoak when namespaces or tmpfs cannot be used."""
    why = usable()
    if why is not None:
        raise SkipSoak(why)
    made = opts.workdir is None
    if made:
        opts.workdir = tempfile.mkdtemp(prefix="skywave-soak-")
    soak = Soak(opts)
    r = soak.run()
    text = summary(r, opts)
    if made:
        if r["failures"] or opts.keep:
            text += "\nsoak: logs kept in %s" % opts.workdir
        else:
            shutil.rmtree(opts.workdir, ignore_errors=True)
    return r, text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=None,
                   help="length of the chaos (default 75)")
    p.add_argument("--minutes", type=float, default=None,
                   help="length of the chaos, in minutes")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the chaos (default: random, printed)")
    p.add_argument("--clients", type=int, default=2,
                   help="clients on each side (default 2)")
    p.add_argument("--interval", type=float, nargs=2, default=(0.1, 0.6),
                   metavar=("MIN", "MAX"),
                   help="seconds between one client's messages (uniform)")
    p.add_argument("--profile", default="satcom-64k",
                   help="skywave-linkemu profile (default satcom-64k)")
    p.add_argument("--loss", default="0.5",
                   help="packet loss %% on the link (default 0.5)")
    p.add_argument("--drain", type=float, default=None,
                   help="longest wait for queues to drain after the chaos "
                   "(default 90 s, 300 s for runs of 10 minutes or more)")
    p.add_argument("--disk-full", type=int, default=1,
                   help="disk-full episodes (default 1; 0: no tmpfs)")
    p.add_argument("--workdir", help="directory for configs, state and "
                   "logs (default: a new one in /tmp, kept on failure)")
    p.add_argument("--keep", action="store_true",
                   help="keep the work directory after a passing run")
    p.add_argument("--fastopen", type=int, default=0, choices=(0, 1, 2),
                   help="1: link_tcp_fastopen on at both ends; 2: and "
                   "net.ipv4.tcp_fastopen = 3, so data rides in SYNs")
    p.add_argument("--quiet", action="store_true",
                   help="do not print each client's reconnections")
    a = p.parse_args(argv)
    if a.seconds is not None and a.minutes is not None:
        p.error("--seconds or --minutes, not both")
    seconds = a.minutes * 60 if a.minutes is not None else \
        a.seconds if a.seconds is not None else 75
    if not 10 <= seconds <= 24 * 3600 or a.clients < 1:
        p.error("--seconds between 10 and 86400, --clients at least 1")
    drain = a.drain if a.drain is not None else \
        (300 if seconds >= 600 else 90)
    opts = Options(seconds=seconds, seed=a.seed, clients=a.clients,
                   interval=tuple(a.interval), profile=a.profile,
                   loss=a.loss, drain=drain, workdir=a.workdir, keep=a.keep,
                   disk_full=a.disk_full, quiet=a.quiet,
                   fastopen=a.fastopen)
    if opts.workdir is not None:
        os.makedirs(opts.workdir, exist_ok=True)
        if os.listdir(opts.workdir):
            p.error("--workdir %s is not empty" % opts.workdir)
    print("soak: seed %d" % opts.seed, flush=True)
    try:
        r, text = run(opts)
    except SkipSoak as e:
        print("soak: SKIP: %s" % e)
        return SKIP
    print(text)
    return 1 if r["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
