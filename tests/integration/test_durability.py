"""An ack means stable storage: when the disk is full or the database is
locked by another process, nothing is acknowledged and nothing is lost
in silence.  Every message sent is either bounced to its sender with
<resource-constraint/> or delivered, exactly once."""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from test_c2s import Raw
from test_peer_link import Pair, online, wait_log


def bounced_ids(text):
    """ids of <message type='error'> with resource-constraint in text."""
    out = []
    for m in re.finditer(r"<message[^>]*type='error'[^>]*>.*?</message>",
                         text, re.S):
        if "resource-constraint" in m.group(0):
            out.append(re.search(r"id='([^']+)'", m.group(0)).group(1))
    return out


def bodies(text):
    return re.findall(r"<body>(m\d+)</body>", text)


def read_for(raw, seconds):
    """Everything raw receives within seconds."""
    deadline = time.time() + seconds
    text = ""
    while time.time() < deadline:
        try:
            text += raw.read_until(r"</message>|<a [^>]*/>", timeout=0.5)
        except AssertionError:
            pass
    return text + raw.buf.decode(errors="replace")


def mount_tmpfs(directory, size="3m"):
    """Mounts a tmpfs of SIZE on DIRECTORY, with DIRECTORY's files copied
    into it (needs root).  Returns None, or why it could not."""
    keep = str(directory) + ".keep"
    shutil.copytree(directory, keep)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                        "tmpfs", str(directory)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        return "cannot mount a small tmpfs: %s" % r.stderr.strip()
    for name in os.listdir(keep):
        shutil.copy2(os.path.join(keep, name), str(directory))
    return None


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs mounted where a's state lives (needs root)."""
    mounts = []

    def mount(directory):
        why = mount_tmpfs(directory)
        if why is not None:
            pytest.skip(why)
        mounts.append(str(directory))
        return directory
    yield mount
    for m in mounts:
        subprocess.run(["umount", "-l", m])


def fill(directory):
    """Fills the filesystem of directory; returns the filler's path."""
    path = os.path.join(str(directory), "filler")
    # Unbuffered: a buffered file would try the failed write again when
    # closed, and raise ENOSPC there.
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    try:
        os.truncate(path, os.path.getsize(path))
    except OSError:
        pass
    return path


def test_disk_full_bounces_and_loses_nothing(tmp_path, small_disk):
    p = Pair(tmp_path)
    state = small_disk(p.a.dir / "state")
    p.a.start()                         # b stays down: a queues for it
    try:
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<enable xmlns='urn:xmpp:sm:3'/>")
        alice.read_until(r"<enabled[^>]*/>")
        filler = fill(state)
        big = "x" * 8000
        n = 40
        for i in range(n):
            alice.send("<message to='bob@b.example' type='chat' id='m%d'>"
                       "<body>m%d</body><x xmlns='urn:test'>%s</x></message>"
                       % (i, i, big))
        alice.send("<r xmlns='urn:xmpp:sm:3'/>")
        text = alice.read_until(r"<a [^>]*h='%d'" % n, timeout=30)
        text += read_for(alice, 1)
        lost_ids = bounced_ids(text)
        assert lost_ids, "the disk never filled up: nothing was bounced"
        assert "resource-constraint" in text
        log = p.a.log_text()
        assert ("did not reach stable storage" in log
                or "could not store a stanza" in log), log[-3000:]
        os.unlink(filler)
        for i in range(n, n + 5):
            alice.send("<message to='bob@b.example' type='chat' id='m%d'>"
                       "<body>m%d</body></message>" % (i, i))
        alice.send("<r xmlns='urn:xmpp:sm:3'/>")
        text = alice.read_until(r"<a [^>]*h='%d'" % (n + 5), timeout=30)
        assert not bounced_ids(text), "bounced with room on the disk"
        p.b.start()
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        want = {"m%d" % i for i in range(n + 5)} - set(lost_ids)
        got = []
        deadline = time.time() + 60
        while set(got) != want and time.time() < deadline:
            got += bodies(read_for(bob, 1))
        got += bodies(read_for(bob, 1))
        assert sorted(got) == sorted(want), \
            "lost %r, twice %r" % (want - set(got),
                                   {b for b in got if got.count(b) > 1})
        assert not set(got) & set(lost_ids), "bounced and delivered"
    finally:
        p.a.stop()
        p.b.stop()


def test_disk_full_on_the_receiver_delivers_once(tmp_path, small_disk):
    """Bob's messages reach Alice live while a's disk is full: the batch
    holding their count fails to commit, a closes the link and b sends
    them again; their count then commits in the space a reserved.  Each
    reaches Alice once, and b's queue empties."""
    p = Pair(tmp_path)
    state = small_disk(p.a.dir / "state")
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "link b: up")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<presence/>")
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        time.sleep(0.5)
        filler = fill(state)
        got = []
        for i in range(5):
            bob.send("<message to='alice@a.example' type='chat' id='m%d'>"
                     "<body>m%d</body></message>" % (i, i))
            got += bodies(read_for(alice, 0.5))
        wait_log(p.a, "from the peer were not stored")
        got += bodies(read_for(alice, 5))       # b sends them again
        log = p.a.log_text()
        assert "deletions and acknowledgements go on" in log, log[-3000:]
        os.unlink(filler)
        got += bodies(read_for(alice, 5))
        assert sorted(got) == ["m%d" % i for i in range(5)], got
        assert p.b.stop() == 0
        assert p.a.stop() == 0
        links = json.load(open(p.b.dir / "state" / "links.json"))["links"]
        assert links[0]["queued"] == 0, links
    finally:
        p.a.stop()
        p.b.stop()


def test_disk_full_on_the_receiver_of_offline_messages(tmp_path,
                                                       small_disk):
    """Bob writes to Alice, offline, while a's disk is full.  a cannot
    store the messages offline, and cannot queue the bounces for the link
    back either: so it must not acknowledge them (the chaos soak lost
    such messages, seed 2100845674).  b sends them again until a's disk
    has room; then Alice finds every one offline, once, and Bob got no
    error for a message that was only late."""
    p = Pair(tmp_path)
    state = small_disk(p.a.dir / "state")
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "link b: up")
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        time.sleep(0.5)
        filler = fill(state)
        for i in range(4):
            bob.send("<message to='alice@a.example' type='chat' id='m%d'>"
                     "<body>m%d</body></message>" % (i, i))
            time.sleep(0.3)
        time.sleep(3)                   # b sends them again, in vain
        os.unlink(filler)
        # offline or live, once each
        alice = online(p.a, "alice@a.example", "pw-alice", "home")
        got = []
        deadline = time.time() + 30
        while len(got) < 4 and time.time() < deadline:
            got += bodies(read_for(alice, 1))
        got += bodies(read_for(alice, 1))
        assert sorted(got) == ["m%d" % i for i in range(4)], got
        assert "caused one that could not be stored" in p.a.log_text()
        text = read_for(bob, 1)
        assert "type='error'" not in text, text
    finally:
        p.a.stop()
        p.b.stop()


def test_disk_full_on_the_receiver_then_kill_9(tmp_path, small_disk):
    """As above, and once the disk has room again a is killed before b
    could send the messages again (b is stopped): a committed their count
    on its own within a second, so they do not reach Alice a second time
    after the restart, and b's queue empties."""
    p = Pair(tmp_path)
    state = small_disk(p.a.dir / "state")
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "link b: up")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<presence/>")
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        time.sleep(0.5)
        filler = fill(state)
        got = []
        for i in range(5):
            bob.send("<message to='alice@a.example' type='chat' id='m%d'>"
                     "<body>m%d</body></message>" % (i, i))
            got += bodies(read_for(alice, 0.3))
        wait_log(p.a, "from the peer were not stored")
        got += bodies(read_for(alice, 1))
        assert sorted(got) == ["m%d" % i for i in range(5)], got
        p.b.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(1)
            os.unlink(filler)
            time.sleep(2.5)
            p.a.proc.send_signal(signal.SIGKILL)
            p.a.proc.wait(timeout=10)
            p.a.start()
        finally:
            p.b.proc.send_signal(signal.SIGCONT)
        wait_log(p.a, "link b: up")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<presence/>")
        again = bodies(read_for(alice, 4))
        assert again == [], again
        assert p.b.stop() == 0
        links = json.load(open(p.b.dir / "state" / "links.json"))["links"]
        assert links[0]["queued"] == 0, links
    finally:
        p.a.stop()
        p.b.stop()


def test_disk_full_queued_stanza_not_sent_before_its_commit(tmp_path,
                                                            small_disk):
    """a's disk is full and b is down.  a is stopped while Alice sends a
    message and b starts and connects, so that a handles both in one loop
    turn (usually: the order within it is the kernel's; without the fix
    this failed 2 times in 3): the message is queued, the connection from b comes up and gets
    the queue, then the commit fails and the message is bounced.  It must
    not have gone to b all the same (bounced and delivered)."""
    p = Pair(tmp_path)
    state = small_disk(p.a.dir / "state")
    p.a.start()
    try:
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<presence/>")
        time.sleep(0.5)
        filler = fill(state)
        p.a.proc.send_signal(signal.SIGSTOP)
        try:
            alice.send("<message to='bob@b.example' type='chat' id='m0'>"
                       "<body>m0</body></message>")
            time.sleep(0.3)
            p.b.start()
            time.sleep(1)
        finally:
            p.a.proc.send_signal(signal.SIGCONT)
        text = read_for(alice, 2)
        bounced = bounced_ids(text)
        assert bounced == ["m0"], text
        wait_log(p.a, "link b: up")
        os.unlink(filler)
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        assert bodies(read_for(bob, 3)) == [], "bounced and delivered"
    finally:
        p.a.stop()
        p.b.stop()


def test_disk_full_offline_messages_are_not_delivered_twice(tmp_path,
                                                           small_disk):
    """Bob logs in while b's disk is full: he gets his offline messages,
    which b cannot delete then.  They stay stored, and b deletes them once
    the disk has room again: his next login, after a kill -9 of b, does
    not get them again; a new one still comes."""
    p = Pair(tmp_path)
    state = small_disk(p.b.dir / "state")
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "link b: up")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        for i in range(3):
            alice.send("<message to='bob@b.example' type='chat' id='m%d'>"
                       "<body>m%d</body></message>" % (i, i))
        time.sleep(2)                       # stored offline at b
        filler = fill(state)
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        first = bodies(read_for(bob, 2))
        assert "database or disk is full" in p.b.log_text()
        bob.send("</stream:stream>")
        bob.sock.close()
        os.unlink(filler)
        wait_log(p.b, "sent earlier are deleted now")
        p.b.proc.send_signal(signal.SIGKILL)
        p.b.proc.wait(timeout=10)
        p.b.start()
        alice.send("<message to='bob@b.example' type='chat' id='m3'>"
                   "<body>m3</body></message>")
        time.sleep(2)
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        second = bodies(read_for(bob, 2))
        assert (first, second) == (["m0", "m1", "m2"], ["m3"]), \
            (first, second)
    finally:
        p.a.stop()
        p.b.stop()


def test_disk_full_deletes_sent_offline_messages_before_a_kill_9(
        tmp_path, small_disk):
    """As above, but b is killed while its disk is still full: the
    deletion of what bob was sent commits in the space b reserved
    (storage_sqlite_reserve), so even then his next login does not get
    those messages again.  New messages are refused while the disk is
    full, and accepted once it has room."""
    p = Pair(tmp_path)
    state = small_disk(p.b.dir / "state")
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "link b: up")
        assert os.path.exists(str(state / "skywave.db.reserve"))
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        for i in range(3):
            alice.send("<message to='bob@b.example' type='chat' id='m%d'>"
                       "<body>m%d</body></message>" % (i, i))
        time.sleep(2)                       # stored offline at b
        filler = fill(state)
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        first = bodies(read_for(bob, 2))
        wait_log(p.b, "the disk holding")
        wait_log(p.b, "sent earlier are deleted now")
        p.b.proc.send_signal(signal.SIGKILL)
        p.b.proc.wait(timeout=10)
        os.unlink(filler)
        p.b.start()
        alice.send("<message to='bob@b.example' type='chat' id='m3'>"
                   "<body>m3</body></message>")
        time.sleep(2)
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        second = bodies(read_for(bob, 2))
        assert (first, second) == (["m0", "m1", "m2"], ["m3"]), \
            (first, second)
    finally:
        p.a.stop()
        p.b.stop()


def test_locked_database_acks_nothing_and_loses_nothing(tmp_path):
    p = Pair(tmp_path)
    for s in (p.a, p.b):
        cfg = open(s.cfg).read()
        open(s.cfg, "w").write('storage_sqlite_busy_timeout = "100ms"\n'
                               + cfg)
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "link b: up")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        alice.send("<presence/>")
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        time.sleep(0.5)
        db = sqlite3.connect(str(p.a.dir / "state" / "skywave.db"),
                             isolation_level=None)
        db.execute("BEGIN IMMEDIATE")       # another process holds the lock
        try:
            for i in range(3):
                alice.send("<message to='bob@b.example' type='chat' "
                           "id='m%d'><body>m%d</body></message>" % (i, i))
            text = read_for(alice, 3)
            assert sorted(bounced_ids(text)) == ["m0", "m1", "m2"], text
            for i in range(3, 5):
                bob.send("<message to='alice@a.example' type='chat' "
                         "id='m%d'><body>m%d</body></message>" % (i, i))
            wait_log(p.a, "not delivered; closing the connection")
            assert not bodies(read_for(alice, 1))
        finally:
            db.execute("COMMIT")
            db.close()
        got = []
        deadline = time.time() + 30
        while len(got) < 2 and time.time() < deadline:
            got += bodies(read_for(alice, 1))
        got += bodies(read_for(alice, 2))
        assert got == ["m3", "m4"], got
        alice.send("<message to='bob@b.example' type='chat' id='m5'>"
                   "<body>m5</body></message>")
        assert bodies(read_for(bob, 3)) == ["m5"]
    finally:
        p.a.stop()
        p.b.stop()


def test_disk_full_roster_set_in_a_failed_batch_is_not_acked(tmp_path,
                                                             small_disk):
    """A roster set that arrives in the same read as a message for a
    peer shares the loop turn's storage batch.  When that batch cannot be
    committed (disk full), the roster set must not be answered with a
    result whose item is gone: each set is answered with an error, or
    its item is in the roster afterwards."""
    p = Pair(tmp_path)
    state = small_disk(p.a.dir / "state")
    p.a.start()                         # b stays down: a queues for it
    try:
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        filler = fill(state)
        big = "x" * 50000
        answers = {}
        for i in range(6):
            alice.send("<message to='bob@b.example' type='chat' id='m%d'>"
                       "<body>m%d</body><x xmlns='urn:test'>%s</x></message>"
                       "<iq type='set' id='r%d'><query xmlns='jabber:iq:"
                       "roster'><item jid='c%d@c.example' name='C%d'/>"
                       "</query></iq>" % (i, i, big, i, i, i))
            text = alice.read_until(r"<iq[^>]*id='r%d'[^>]*>" % i,
                                    timeout=10)
            iq = re.findall(r"<iq[^>]*id='r%d'[^>]*>" % i, text)[-1]
            answers[i] = "error" if "type='error'" in iq else "result"
        assert "did not reach stable storage" in p.a.log_text() \
            or "could not store" in p.a.log_text(), "the disk never filled"
        os.unlink(filler)
        alice.send("<iq type='get' id='g'><query xmlns='jabber:iq:roster'/>"
                   "</iq>")
        roster = alice.read_until(r"<iq[^>]*id='g'.*?</iq>", timeout=10)
        for i, kind in answers.items():
            if kind == "result":
                assert "c%d@c.example" % i in roster, \
                    "set %d was answered with a result and lost" % i
        assert "error" in answers.values() or all(
            "c%d@c.example" % i in roster for i in answers)
    finally:
        p.a.stop()
