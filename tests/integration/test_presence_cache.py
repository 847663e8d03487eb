"""The presence cache (issue 14, mod_presence_cache) between two skywaved
on loopback: Bob at B has 20 contacts at A (10 online).  A warm cache
answers his login's probes at B: no stanza crosses the link, and he
sees exactly what the probes would have told him.  A restarted B starts
cold and probes; a restarted A (kill -9: its users vanish without a
word) tells B, which forgets A's contacts, so Bob never sees a dead
contact online."""
import json
import os
import re
import signal
import time

from test_c2s import Raw
from test_peer_link import Pair, add_peer_options, wait_log

N_CONTACTS, N_ONLINE = 20, 10


def add_module(server, name):
    with open(server.cfg) as f:
        cfg = f.read()
    with open(server.cfg, "w") as f:
        f.write(cfg.replace('modules = {', 'modules = { "%s",' % name, 1))


def stanzas_out(server, wait=True):
    """B's link counter of stanzas written to A, once links.json (written
    every 5 s) has caught up with now."""
    path = os.path.join(str(server.dir), "state", "links.json")
    if wait:
        t = time.time()
        while not (os.path.exists(path) and os.path.getmtime(path) > t):
            time.sleep(0.2)
    with open(path) as f:
        return json.load(f)["links"][0]["stanzas_out"]


def login_bob(p):
    bob = Raw(p.b.port, "b.example")
    bob.login("bob", "pw-bob", "ship")
    bob.send("<presence/>")
    return bob


def contacts_seen(bob, seconds=3):
    """{contact bare JID: 'available' status text or 'unavailable'} from
    the presence Bob receives in SECONDS."""
    end = time.time() + seconds
    text = ""
    while time.time() < end:
        try:
            text += bob.read_until(r"<presence[^>]*/>|</presence>",
                                   timeout=max(0.1, end - time.time()))
        except AssertionError:
            break
    seen = {}
    for m in re.finditer(r"<presence([^>]*?)(/>|>(.*?)</presence>)", text,
                         re.S):
        attrs, body = m.group(1), m.group(3) or ""
        frm = re.search(r"from='([^']*)'", attrs)
        if not frm or not frm.group(1).startswith("a"):
            continue
        bare = frm.group(1).split("/")[0]
        if "type='unavailable'" in attrs:
            seen[bare] = "unavailable"          # the last word wins
        else:
            st = re.search(r"<status>(.*?)</status>", body)
            seen[bare] = st.group(1) if st else ""
    return seen


def expected():
    return {"a%d@a.example" % i: ("on duty %d" % i if i <= N_ONLINE
                                  else "unavailable")
            for i in range(1, N_CONTACTS + 1)}


def make_pair(tmp_path, a_peer_options=""):
    p = Pair(tmp_path)
    for s in (p.a, p.b):
        add_module(s, "presence_cache")
    if a_peer_options:
        add_module(p.a, "filter")
        add_peer_options(p.a, a_peer_options)
    for i in range(1, N_CONTACTS + 1):
        p.a.adduser("a%d@a.example" % i, "pw")
    try:
        return p, subscribe_all(p)
    except BaseException:
        p.a.stop()
        p.b.stop()
        raise


def subscribe_all(p):
    """Bob subscribes to the 20 contacts, who approve; 10 stay online
    (their raw clients are returned)."""
    p.a.start()
    p.b.start()
    wait_log(p.a, "link b: up")
    bob = login_bob(p)
    for i in range(1, N_CONTACTS + 1):
        bob.send("<presence to='a%d@a.example' type='subscribe'/>" % i)
    online = []
    for i in range(1, N_CONTACTS + 1):
        c = Raw(p.a.port, "a.example")
        c.login("a%d" % i, "pw", "desk")
        c.send("<presence><status>on duty %d</status></presence>" % i)
        c.read_until(r"type='subscribe'", timeout=15)
        c.send("<presence to='bob@b.example' type='subscribed'/>")
        if i <= N_ONLINE:
            online.append(c)
        else:
            c.send("<presence type='unavailable'/></stream:stream>")
            c.sock.close()
    # Bob sees every contact's approval, then the state
    seen = contacts_seen(bob, 4)
    assert seen == expected(), seen
    bob.send("</stream:stream>")
    bob.sock.close()
    return online


def test_warm_cache_answers_a_login_with_nothing_crossing(tmp_path):
    p, online = make_pair(tmp_path)
    try:
        before = stanzas_out(p.b)
        bob = login_bob(p)
        seen = contacts_seen(bob)
        after = stanzas_out(p.b)
        assert seen == expected(), seen
        assert after - before == 0, "%d stanzas crossed" % (after - before)
        assert p.b.log_text().count("answered here") >= N_CONTACTS

        # an update pushed by A keeps it exact: a1 goes, a11 comes
        online[0].send("<presence type='unavailable'/>")
        c = Raw(p.a.port, "a.example")
        c.login("a11", "pw", "desk")
        c.send("<presence><status>back</status></presence>")
        online.append(c)
        got = contacts_seen(bob, 2)
        assert got == {"a1@a.example": "unavailable",
                       "a11@a.example": "back"}, got
        bob.send("</stream:stream>")
        bob.sock.close()
        before = stanzas_out(p.b)
        bob = login_bob(p)
        want = expected()
        want["a1@a.example"] = "unavailable"
        want["a11@a.example"] = "back"
        assert contacts_seen(bob) == want
        assert stanzas_out(p.b) == before
    finally:
        p.a.stop()
        p.b.stop()


def test_a_restarted_server_starts_cold_and_probes(tmp_path):
    p, online = make_pair(tmp_path)
    try:
        assert p.b.stop() == 0
        p.b.start()
        wait_log(p.b, "link a: up")
        # a1 changes status: B sees that resource, but not whether a1 has
        # others, so a1 is still probed
        online[0].send("<presence><status>moved</status></presence>")
        time.sleep(1)
        before = stanzas_out(p.b)
        bob = login_bob(p)
        seen = contacts_seen(bob)
        after = stanzas_out(p.b)
        want = expected()
        want["a1@a.example"] = "moved"
        assert seen == want, seen
        assert after - before >= N_CONTACTS     # every probe crossed
        bob.send("</stream:stream>")
        bob.sock.close()
        # and the answers warmed it
        before = stanzas_out(p.b)
        bob = login_bob(p)
        assert contacts_seen(bob) == want
        assert stanzas_out(p.b) == before
    finally:
        p.a.stop()
        p.b.stop()


def test_a_peer_killed_and_restarted_is_not_shown_online(tmp_path):
    """kill -9 of A: its users' sessions end with no unavailable
    presence.  The restarted A tells B; B forgets A's contacts, probes,
    and Bob sees every contact offline, not the cache's last word.  A
    folds its presence (the lean policy): the reset survives it."""
    p, online = make_pair(tmp_path, 'filter_outbound = "lean",\n')
    try:
        p.a.proc.send_signal(signal.SIGKILL)
        p.a.proc.wait(timeout=10)
        p.a.start()
        wait_log(p.b, "a.example restarted")
        bob = login_bob(p)
        seen = contacts_seen(bob)
        assert seen == {k: "unavailable" for k in expected()}, seen
        assert (p.a.stop(), p.b.stop()) == (0, 0)
    finally:
        p.a.stop()
        p.b.stop()
