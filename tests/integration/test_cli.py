"""skywaved and skywavectl from the command line: config checks with
file:line errors, option listing, module refusal, signals, accounts."""
import os
import signal
import subprocess
import time

from conftest import SKYWAVED, SKYWAVECTL, run

BASE = 'data_dir = "state"\nmodules = { }\n'


def test_check_ok(write_config, env):
    cfg = write_config(BASE + 'VirtualHost "example.net"\n')
    r = run([SKYWAVED, "-t", "-c", cfg], env)
    assert r.returncode == 0, r.stderr
    assert "is OK" in r.stdout


def test_unknown_option_names_file_and_line(write_config, env):
    cfg = write_config(BASE + 'VirtualHost "example.net" {\n'
                       '    storage_sqlite_paht = "x.db",\n}\n')
    r = run([SKYWAVED, "-t", "-c", cfg], env)
    assert r.returncode == 1
    assert "%s:4: unknown option 'storage_sqlite_paht'" % cfg in r.stderr
    assert "has errors" in r.stderr


def test_bad_value_and_syntax_error(write_config, env):
    cfg = write_config(BASE + 'log_level = "verbose"\n')
    r = run([SKYWAVED, "-t", "-c", cfg], env)
    assert r.returncode == 1
    assert "%s:3:" % cfg in r.stderr and "log_level" in r.stderr
    cfg = write_config(BASE + 'VirtualHost "example.net" {\n')
    r = run([SKYWAVED, "-t", "-c", cfg], env)
    assert r.returncode == 1
    assert cfg + ":" in r.stderr


def test_module_with_wrong_abi_refused(write_config, env):
    cfg = write_config('data_dir = "state"\nmodules = { "badabi" }\n')
    r = run([SKYWAVED, "-t", "-c", cfg], env)
    assert r.returncode == 1
    assert "module 'badabi': built for module ABI" in r.stderr


def test_list_options(env):
    r = run([SKYWAVED, "--list-options"], env)
    assert r.returncode == 0, r.stderr
    for name in ("log_level", "max_stanza_size", "storage_sqlite_path"):
        assert name in r.stdout


def test_signals_reload_and_stop(write_config, env, tmp_path):
    log = tmp_path / "skywave.log"
    text = BASE + 'log_file = "skywave.log"\nlog_level = "info"\n' \
        'VirtualHost "example.net"\n'
    cfg = write_config(text)
    p = subprocess.Popen([SKYWAVED, "-c", cfg], env=env)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            if log.exists() and "started" in log.read_text():
                break
            time.sleep(0.05)
        assert "started" in log.read_text()
        # A broken config on SIGHUP keeps the running one.
        write_config(text + "bogus_option = 1\n")
        p.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "reload failed" not in log.read_text():
            time.sleep(0.05)
        assert "unknown option 'bogus_option'" in log.read_text()
        assert "reload failed: keeping the running configuration" in log.read_text()
        # A good one applies the reloadable option.
        write_config(text.replace('"info"', '"debug"'))
        p.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "configuration reloaded" not in log.read_text():
            time.sleep(0.05)
        assert "option 'log_level' updated" in log.read_text()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        assert "skywave stopped" in log.read_text()
    finally:
        if p.poll() is None:
            p.kill()


def test_accounts(write_config, env):
    cfg = write_config(BASE + 'VirtualHost "example.net"\n')
    r = run([SKYWAVECTL, "-c", cfg, "adduser", "Alice@Example.NET"], env,
            stdin="s3cret\n")
    assert r.returncode == 0, r.stderr
    assert "created alice@example.net" in r.stdout
    r = run([SKYWAVECTL, "-c", cfg, "adduser", "alice@example.net"], env,
            stdin="other\n")
    assert r.returncode == 1 and "exists already" in r.stderr
    run([SKYWAVECTL, "-c", cfg, "adduser", "bob@example.net"], env,
        stdin="pw\n")
    r = run([SKYWAVECTL, "-c", cfg, "listusers", "example.net"], env)
    assert r.stdout.split() == ["alice@example.net", "bob@example.net"]
    r = run([SKYWAVECTL, "-c", cfg, "passwd", "alice@example.net"], env,
            stdin="n3w\n")
    assert r.returncode == 0 and "password changed" in r.stdout
    r = run([SKYWAVECTL, "-c", cfg, "passwd", "carol@example.net"], env,
            stdin="x\n")
    assert r.returncode == 1 and "no account" in r.stderr
    r = run([SKYWAVECTL, "-c", cfg, "adduser", "dave@elsewhere.org"], env,
            stdin="x\n")
    assert r.returncode == 1 and "not a VirtualHost" in r.stderr
    r = run([SKYWAVECTL, "-c", cfg, "deluser", "bob@example.net"], env)
    assert r.returncode == 0
    r = run([SKYWAVECTL, "-c", cfg, "listusers", "example.net"], env)
    assert r.stdout.split() == ["alice@example.net"]
    # Nothing stored in the clear.
    db = os.path.join(os.path.dirname(cfg), "state", "skywave.db")
    assert os.path.exists(db)
    assert b"s3cret" not in open(db, "rb").read()
    assert b"n3w" not in open(db, "rb").read()


def _tree(path):
    """{name: (mode, bytes)} of every file under path."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, path)] = (os.stat(p).st_mode & 0o777,
                                             open(p, "rb").read())
    return out


def test_check_changes_nothing_on_disk(write_config, env, tmp_path):
    """skywaved -t and skywavectl check neither create nor migrate the
    database; a real start creates it owner-only (0600)."""
    cfg = write_config(BASE.replace("{ }", '{ "c2s", "im" }')
                       + 'c2s_port = 0\nc2s_direct_tls_port = 0\n'
                       + 'VirtualHost "example.net"\n')
    os.mkdir(tmp_path / "state")
    for args in ([SKYWAVED, "-t", "-c", cfg], [SKYWAVECTL, "-c", cfg,
                                                "check"]):
        r = run(args, env)
        assert r.returncode == 0, r.stderr
        assert os.listdir(tmp_path / "state") == [], "created by %s" % args[0]
    r = run([SKYWAVECTL, "-c", cfg, "adduser", "alice@example.net"], env,
            stdin="pw\n")
    assert r.returncode == 0, r.stderr
    before = _tree(tmp_path / "state")
    assert before, "adduser wrote nothing"
    for name, (mode, _) in before.items():
        assert mode == 0o600, "%s is %o" % (name, mode)
    r = run([SKYWAVED, "-t", "-c", cfg], env)
    assert r.returncode == 0, r.stderr
    assert _tree(tmp_path / "state") == before


def test_malformed_tls_pin_is_a_config_error(write_config, env):
    cfg = write_config(BASE + 'VirtualHost "a.example"\n'
                       'Peer "b" {\n    peer_domains = { "b.example" },\n'
                       '    peer_tls = true,\n    peer_tls_pin = "zz",\n}\n')
    r = run([SKYWAVED, "-t", "-c", cfg], env)
    assert r.returncode == 1
    assert "%s:4: Peer \"b\": peer_tls_pin \"zz\" is not a SHA-256" % cfg \
        in r.stderr, r.stderr
    good = "AB:" * 31 + "CD"
    cfg2 = write_config(open(cfg).read().replace('"zz"', '"%s"' % good),
                        name="ok.cfg.lua")
    r = run([SKYWAVED, "-t", "-c", cfg2], env)
    assert "peer_tls_pin" not in r.stderr, r.stderr


def test_two_peers_with_one_address_are_refused(write_config, env):
    peer = ('Peer "%s" {\n    peer_domains = { "%s.example" },\n'
            '    link_tcp_address = "%s",\n}\n')
    cfg = write_config(BASE.replace("{ }", '{ "link_tcp" }')
                       + 'VirtualHost "a.example"\n'
                       + peer % ("b", "b", "10.1.2.3")
                       + peer % ("c", "c", "10.1.2.3"))
    r = run([SKYWAVED, "-t", "-c", cfg], env)
    assert r.returncode == 1
    assert "link_tcp_address 10.1.2.3 is Peer" in r.stderr, r.stderr
    text = open(cfg).read()
    at = text.rindex("10.1.2.3")
    ok = write_config(text[:at] + "10.1.2.4" + text[at + 8:],
                      name="ok.cfg.lua")
    r = run([SKYWAVED, "-t", "-c", ok], env)
    assert r.returncode == 0, r.stderr


def test_finalizer_that_never_ends_is_refused(write_config, env):
    """A __gc finalizer would run at lua_close with Lua's debug hooks off,
    out of reach of the instruction budget (one that loops hung -t): the
    config has no setmetatable, and the error says where."""
    cfg = write_config(BASE + 'VirtualHost "example.net"\n'
                       'setmetatable({}, { __gc = function() '
                       'while true do end end })\n')
    r = run([SKYWAVED, "-t", "-c", cfg], env, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "%s:4:" % cfg in r.stderr and "setmetatable" in r.stderr, \
        r.stderr

