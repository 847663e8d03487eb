"""Peer links over a command (plugins/link_pipe, issue 11 part 5): the
plugin is built by tests/sdk/check-sdk against a DESTDIR install of the
SDK with pkg-config alone, then loaded into two real servers whose link
runs through socat (and through a slow relay, tests/integration/
slowpipe.py, that a test kills in the middle of a burst)."""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import TOP, Server, free_port
from test_peer_link import online, wait_log

PLUGIN_DIR = os.path.join(TOP, "plugins", "link_pipe")
PLUGIN = os.path.join(PLUGIN_DIR, "mod_link_pipe.so")
SLOWPIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "slowpipe.py")


@pytest.fixture(scope="module", autouse=True)
def plugin():
    if shutil.which("socat") is None:
        pytest.fail("socat is missing: tools/install-deps installs it")
    if not os.path.exists(PLUGIN):
        # make check builds it; build it the same way when run alone
        r = subprocess.run(["make", "-s", "check",
                            "TESTS=tests/sdk/check-sdk"], cwd=TOP,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(PLUGIN), "check-sdk did not build %s" % PLUGIN


def pipe_config(command, peer_domain):
    return ('Peer "%s" {\n'
            '    peer_domains = { "%s" },\n'
            '    peer_transport = "pipe",\n'
            '    link_pipe_command = "%s",\n'
            '    peer_reconnect_min = "200ms",\n'
            '    peer_reconnect_max = "1s",\n'
            '    peer_head_start = "0s",\n'
            '}\n' % (peer_domain.split(".")[0], peer_domain, command))


class PipePair:
    def __init__(self, tmp_path, cmd_a, cmd_b):
        mods = ("c2s", "im", "server", "link_pipe")
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        self.a = Server(tmp_path / "a", hosts=("a.example",), modules=mods,
                        extra=pipe_config(cmd_a, "b.example"))
        self.b = Server(tmp_path / "b", hosts=("b.example",), modules=mods,
                        extra=pipe_config(cmd_b, "a.example"))
        self.a.adduser("alice@a.example", "pw-alice")
        self.b.adduser("bob@b.example", "pw-bob")

    def __enter__(self):
        self.b.start()      # its socat listens before A's connects
        self.a.start()
        return self

    def __exit__(self, *exc):
        rcs = [s.stop() for s in (self.a, self.b)]    # both, whatever
        for rc in rcs:
            assert rc in (0, None), "skywaved exited with %r" % rc


def msg(to, i, size):
    pad = "".join(hashlib.sha256(b"%d-%d" % (i, k)).hexdigest()
                  for k in range(size // 64 + 1))[:size]
    return ("<message to='%s' type='chat' id='p%d'><body>n %d %s</body>"
            "</message>" % (to, i, i, pad))


def numbers(text):
    return [int(n) for n in re.findall(r"<body>n (\d+) ", text)]


def socat_pair(port):
    return ("socat - TCP:127.0.0.1:%d" % port,
            "socat TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr -" % port)


def test_messages_both_ways_over_socat(tmp_path):
    cmd_a, cmd_b = socat_pair(free_port())
    with PipePair(tmp_path, cmd_a, cmd_b) as p:
        wait_log(p.a, "link b: up")
        alice = online(p.a, "alice@a.example", "pw-alice", "home")
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        time.sleep(0.3)
        alice.send("".join(msg("bob@b.example", i, 100) for i in range(50)))
        bob.send("".join(msg("alice@a.example", i, 100) for i in range(50)))
        got_b = bob.read_until(r"<body>n 49 ", timeout=20)
        got_a = alice.read_until(r"<body>n 49 ", timeout=20)
        assert numbers(got_b) == list(range(50))
        assert numbers(got_a) == list(range(50))
        assert "running 'socat - TCP" in p.a.log_text()


def test_killed_command_mid_burst_loses_and_repeats_nothing(tmp_path):
    """Alice sends 300 messages through a 20 kB/s relay; the relay is
    killed after Bob has some of them; the link runs it again and the
    rest arrive: every message once, in order."""
    port = free_port()
    cmd_a = "/usr/bin/python3 %s 127.0.0.1:%d 20000" % (SLOWPIPE, port)
    cmd_b = "socat TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr -" % port
    n = 300
    with PipePair(tmp_path, cmd_a, cmd_b) as p:
        wait_log(p.a, "link b: up")
        alice = online(p.a, "alice@a.example", "pw-alice", "home")
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        time.sleep(0.5)
        alice.send("".join(msg("bob@b.example", i, 500) for i in range(n)))
        got = bob.read_until(r"<body>n 39 ", timeout=30)
        pids = re.findall(r"link b: running '[^']*slowpipe[^']*' \(pid "
                          r"(\d+)\)", p.a.log_text())
        assert pids, p.a.log_text()
        os.kill(int(pids[-1]), signal.SIGKILL)
        killed_at = len(numbers(got))
        got += bob.read_until(r"<body>n %d " % (n - 1), timeout=90)
        time.sleep(1.0)     # a late second copy would come now
        bob.sock.settimeout(0.5)
        try:
            while True:
                chunk = bob.sock.recv(65536)
                if not chunk:
                    break
                bob.buf += chunk
        except OSError:
            pass
        got += bob.buf.decode(errors="replace")
        assert killed_at < n, "the burst was over before the kill"
        assert numbers(got) == list(range(n))
        text = p.a.log_text()
        assert "(pid %s) was killed by signal 9" % pids[-1] in text
        # a slow pipe is never probed with a second command
        assert "probing with a new connection" not in text
        assert len(re.findall(r"link b: running '", text)) >= 2


def test_command_does_not_outlive_a_killed_server(tmp_path):
    """kill -9 of the server ends its command too (the parent-death
    signal), so a restarted server does not find the modem taken.  The
    command here goes on after end-of-file on its input (socat alone
    would end then)."""
    port = free_port()
    cmd_a = "sh -c 'socat - TCP:127.0.0.1:%d; sleep 60'" % port
    cmd_b = socat_pair(port)[1]
    with PipePair(tmp_path, cmd_a, cmd_b) as p:
        wait_log(p.a, "link b: up")
        pid = int(re.findall(r"link b: running '.*' \(pid (\d+)\)",
                             p.a.log_text())[-1])
        assert alive(pid)
        p.a.proc.send_signal(signal.SIGKILL)
        p.a.proc.wait(timeout=10)
        deadline = time.time() + 5
        while alive(pid):
            assert time.time() < deadline, \
                "the command (pid %d) outlived its server" % pid
            time.sleep(0.05)
        ups = p.a.log_text().count("link b: up")
        p.a.start()
        deadline = time.time() + 20
        while p.a.log_text().count("link b: up") == ups:
            assert time.time() < deadline, "the link did not come back"
            time.sleep(0.05)


def alive(pid):
    """Running (a zombie waiting for its reaper is not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
