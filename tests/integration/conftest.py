"""Shared fixtures: paths to the built programs and config writing."""
import os
import subprocess

import pytest

import swnet

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKYWAVED = os.path.join(TOP, "skywaved")
SKYWAVECTL = os.path.join(TOP, "skywavectl")


def _sanitized():
    try:
        with open(os.path.join(TOP, "config.log")) as f:
            return "--enable-sanitizers" in f.read(4096)
    except OSError:
        return False


# Built with ASan: freed memory sits in its quarantine (256 MB), so RSS
# says nothing of what the server holds.
SANITIZED = _sanitized()
# plugins/NAME: the transport plugins tests/sdk/check-sdk built against
# the installed SDK (test_link_pipe.py)
MODULE_PATH = ":".join([os.path.join(TOP, "modules"),
                        os.path.join(TOP, "tests", "modules"),
                        os.path.join(TOP, "plugins", "link_pipe")])
# the standard filter policies, as installed in $(pkgdatadir)/policies
POLICY_DIR = os.path.join(TOP, "lua", "policies")


def sw_env():
    env = dict(os.environ)
    env["SKYWAVE_MODULE_PATH"] = MODULE_PATH
    env["SKYWAVE_POLICY_DIR"] = POLICY_DIR
    # A build configured with --enable-sanitizers (doc/testing.md): a
    # report goes to the program's stderr, which pytest shows with the
    # failure, and exits 86, which the exit code checks catch (leaks at
    # exit too).  Other builds ignore these.  The caller's options win.
    for var, opts in (("ASAN_OPTIONS", "exitcode=86:detect_leaks=1"),
                      ("UBSAN_OPTIONS", "exitcode=86:print_stacktrace=1")):
        env[var] = opts + (":" + env[var] if env.get(var) else "")
    # Modules stay mapped at exit, so that leak reports (valgrind's,
    # LeakSanitizer's) can name the functions in them.
    env["SKYWAVE_NO_DLCLOSE"] = "1"
    return env


@pytest.fixture
def env():
    return sw_env()


@pytest.fixture
def write_config(tmp_path):
    """Writes a config file into a fresh directory and returns its path."""
    def write(text, name="skywave.cfg.lua"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


def run(args, env, stdin=None, timeout=30):
    return subprocess.run(args, env=env, input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Chosen below the kernel's ephemeral range (ip_local_port_range,
    32768-60999 by default): a port the kernel handed out with bind(0)
    may be handed out again to the next outgoing connection (a server's
    link dialling its peer) before our server listens on it.  Below that
    range only an explicit bind takes a port.  Under pytest-xdist each
    worker takes its own slice of that range, so two workers never hand
    out the same port between its check here and a server's listen.
    """
    import random
    import socket
    lo, hi = 10000, 32767
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first = int(f.read().split()[0])
        if first > 12000:
            hi = first - 1
    except (OSError, ValueError, IndexError):
        pass
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and worker[2:].isdigit() and count > 1:
        span = (hi - lo + 1) // count
        lo += int(worker[2:]) % count * span
        hi = lo + span - 1
    for _ in range(200):
        port = random.randint(lo, hi)
        if port in _ports_given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(port)
        return port
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


_ports_given = set()

# The servers the running test started: a failing test's report ends with
# the last lines of each one's log (CI keeps nothing else of them).
_servers = []
LOG_TAIL_LINES = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for srv in _servers:
            lines = srv.log_text().splitlines()[-LOG_TAIL_LINES:]
            report.sections.append(("skywaved log %s (last %d lines)"
                                    % (srv.log, len(lines)),
                                    "\n".join(lines)))
    if report.when == "teardown":
        del _servers[:]


class Server:
    """A skywaved started on loopback with a generated config."""

    def __init__(self, tmp_path, extra="", hosts=("example.net",),
                 modules=("c2s", "server")):
        self.dir = tmp_path
        self.port = free_port()
        self.tls_port = free_port()
        self.log = tmp_path / "skywave.log"
        self.cfg = str(tmp_path / "skywave.cfg.lua")
        mods = ", ".join('"%s"' % m for m in modules)
        text = ('data_dir = "state"\nlog_file = "skywave.log"\n'
                'log_level = "debug"\nmodules = { %s }\n'
                'c2s_interfaces = { "127.0.0.1" }\n'
                'c2s_port = %d\nc2s_direct_tls_port = %d\n%s\n'
                % (mods, self.port, self.tls_port, extra))
        for h in hosts:
            text += 'VirtualHost "%s"\n' % h
        open(self.cfg, "w").write(text)
        self.proc = None
        self.retries = 0
        # Words put before the command line, e.g. ["ip", "netns", "exec",
        # NS] to run the server in a network namespace.
        self.wrapper = []
        # A cgroup2 directory to start the server in (swnet.own_cgroup)
        self.cgroup = None
        _servers.append(self)

    def adduser(self, jid, password):
        r = run([SKYWAVECTL, "-c", self.cfg, "adduser", jid], sw_env(),
                stdin=password + "\n")
        assert r.returncode == 0, r.stderr

    def start(self):
        import subprocess
        import time
        cmd = [SKYWAVED, "-c", self.cfg]
        if os.environ.get("SKYWAVE_VALGRIND"):
            # Memory errors and definite leaks make the server exit 99,
            # which the fixture's exit-code check reports.
            cmd = [os.path.join(TOP, "libtool"), "--mode=execute",
                   "valgrind", "-q", "--error-exitcode=99",
                   "--leak-check=full", "--errors-for-leak-kinds=definite",
                   "--log-file=%s" % (self.dir / "valgrind.log")] + cmd
        cmd = list(self.wrapper) + cmd
        env = sw_env()
        env["SKYWAVE_NO_DLCLOSE"] = "1"
        before = len(self.log_text())   # a restart: its own "started"
        self.proc = subprocess.Popen(
            cmd, env=env, preexec_fn=swnet.into_cgroup(self.cgroup))
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                log = self.log_text()[before:]
                if (self.retries < 3 and any(
                        "cannot listen on 127.0.0.1:%d: address already in "
                        "use" % p in log for p in (self.port, self.tls_port))):
                    # free_port() raced with another process: new ports
                    self.retries += 1
                    self._new_c2s_ports()
                    return self.start()
                raise RuntimeError("skywaved exited: %s" % self.log_text())
            # the line itself: the log names paths, and a test called
            # test_restarted_... has "started" in its tmp_path
            if " started (pid " in self.log_text()[before:]:
                return self
            time.sleep(0.05)
        raise RuntimeError("skywaved did not start: %s" % self.log_text())

    def _new_c2s_ports(self):
        import re
        self.port, self.tls_port = free_port(), free_port()
        text = open(self.cfg).read()
        text = re.sub(r"(?m)^c2s_port = \d+$", "c2s_port = %d" % self.port,
                      text)
        text = re.sub(r"(?m)^c2s_direct_tls_port = \d+$",
                      "c2s_direct_tls_port = %d" % self.tls_port, text)
        open(self.cfg, "w").write(text)

    def log_text(self):
        return self.log.read_text() if self.log.exists() else ""

    def stop(self):
        import signal
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except Exception:
            self.proc.kill()
            raise


@pytest.fixture
def server(tmp_path):
    """A running skywaved with users alice, bob (password 'pw-NAME')."""
    s = Server(tmp_path)
    s.adduser("alice@example.net", "pw-alice")
    s.adduser("bob@example.net", "pw-bob")
    s.start()
    yield s
    rc = s.stop()
    assert rc == 0, "skywaved exited with %r" % rc
