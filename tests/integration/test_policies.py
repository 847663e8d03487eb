"""Filter policies (issue 14): the standard library through the offline
tester (skywaved --policy-test) against fixture stanzas; the sandbox
(budget, memory cap, no io/os/load, handles borrowed for one call);
policies and C filters on a real peer link between two skywaved, byte
for byte the same; SIGHUP reload keeping a running policy when the new
one is broken; and skywaved -t naming the file and line of a bad one."""
import os
import re
import signal
import time

import pytest

from conftest import POLICY_DIR, SKYWAVED, run, sw_env
from test_c2s import Raw
from test_peer_link import Pair, add_peer_options, wait_log
from test_presence_cache import add_module

CS = "http://jabber.org/protocol/chatstates"

# One of each case the standard policies decide on.
FIXTURES = [
    # 1: a standalone typing notification
    "<message to='bob@b.example' from='alice@a.example/x' type='chat' "
    "id='m1'><composing xmlns='%s'/></message>" % CS,
    # 2: a message with a body, a chat state, XHTML-IM, a receipt
    # request, a security label and a stanza id
    "<message to='bob@b.example' from='alice@a.example/x' type='chat' "
    "id='m2'><body>hi &amp; bye</body><active xmlns='%s'/>"
    "<html xmlns='http://jabber.org/protocol/xhtml-im'><body "
    "xmlns='http://www.w3.org/1999/xhtml'><b>hi</b></body></html>"
    "<request xmlns='urn:xmpp:receipts'/>"
    "<securitylabel xmlns='urn:xmpp:sec-label:0'><displaymarking>"
    "SECRET</displaymarking></securitylabel>"
    "<origin-id xmlns='urn:xmpp:sid:0' id='o2'/></message>" % CS,
    # 3: presence with caps, avatar hash and idle
    "<presence from='alice@a.example/x'><show>away</show><status>out"
    "</status><priority>5</priority><c xmlns='http://jabber.org/protocol/"
    "caps' hash='sha-1' node='n' ver='v'/><x xmlns='vcard-temp:x:update'>"
    "<photo>ab</photo></x><idle xmlns='urn:xmpp:idle:1' "
    "since='2026-01-01T00:00:00Z'/></presence>",
    # 4: a room join: the MUC payload must survive any folding
    "<presence from='alice@a.example/x' to='room@muc.b.example/al'>"
    "<x xmlns='http://jabber.org/protocol/muc'/><c xmlns='http://jabber."
    "org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>",
    # 5: an IQ request outside any allow-list
    "<iq type='get' id='q1' to='bob@b.example' from='alice@a.example/x'>"
    "<query xmlns='jabber:iq:roster'/></iq>",
    # 6: a ping
    "<iq type='get' id='q2' to='b.example' from='alice@a.example/x'>"
    "<ping xmlns='urn:xmpp:ping'/></iq>",
    # 7: an error reply (always passes: it answers a request)
    "<iq type='error' id='q3' to='bob@b.example' from='alice@a.example/x'>"
    "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:"
    "ns:xmpp-stanzas'/></error></iq>",
    # 8: a standalone chat state with a thread and a hint: still typing
    "<message to='bob@b.example' from='alice@a.example/x' type='chat' "
    "id='m8'><paused xmlns='%s'/><thread>t1</thread><no-store "
    "xmlns='urn:xmpp:hints'/></message>" % CS,
    # 9: a chat state with a receipt and no body: the receipt matters
    "<message to='bob@b.example' from='alice@a.example/x' id='m9'>"
    "<received xmlns='urn:xmpp:receipts' id='m0'/><active xmlns='%s'/>"
    "</message>" % CS,
]


def policy_test(policy, stanzas=FIXTURES, chain=None, env_extra=None):
    args = [SKYWAVED, "--policy-test", policy]
    if chain:
        args += ["--chain", chain]
    env = sw_env()
    env.update(env_extra or {})
    r = run(args, env, stdin="\n".join(stanzas), timeout=60)
    return r


def verdicts(policy, stanzas=FIXTURES, chain=None):
    """[(verdict, xml)] per stanza, and whether any was an error."""
    r = policy_test(os.path.join(POLICY_DIR, policy + ".lua"), stanzas,
                    chain)
    assert r.returncode == 0, r.stderr
    out = []
    for line in r.stdout.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"(\d+) (error, on_error: )?(pass|drop|bounce"
                     r"(?: [a-z-]+)?)(?: (.*))?$", line)
        assert m, line
        assert int(m.group(1)) == len(out) + 1, r.stdout
        assert m.group(2) is None, "policy error: %s" % line
        out.append((m.group(3), m.group(4) or ""))
    assert len(out) == len(stanzas), r.stdout
    return out


def test_drop_chatstates():
    v = verdicts("drop-chatstates")
    assert [x[0] for x in v] == ["drop", "pass", "pass", "pass", "pass",
                                 "pass", "pass", "drop", "pass"]
    body = v[1][1]
    assert "<body>hi &amp; bye</body>" in body and CS not in body
    assert "xhtml-im" in body and "id='m2'" in body
    # the receipt stays; only the chat state goes
    assert "urn:xmpp:receipts" in v[8][1] and CS not in v[8][1]
    # everything else unchanged
    assert v[2][1] == FIXTURES[2] and v[4][1] == FIXTURES[4]


def test_message_only():
    v = verdicts("message-only")
    assert [x[0] for x in v] == ["pass", "pass", "drop", "drop", "pass",
                                 "pass", "pass", "pass", "pass"]
    assert v[1][1] == FIXTURES[1]


def test_iq_allow_answers_a_refused_request():
    v = verdicts("iq-allow")
    assert v[4][0] == "bounce service-unavailable"
    err = v[4][1]
    # RFC 6120 §8.3: the error goes back to the requester, same id
    assert "type='error'" in err and "id='q1'" in err
    assert "to='alice@a.example/x'" in err
    assert "<service-unavailable xmlns='urn:ietf:params:xml:ns:" \
        "xmpp-stanzas'/>" in err
    assert v[5] == ("pass", FIXTURES[5])        # ping is allowed
    assert v[6] == ("pass", FIXTURES[6])        # errors always pass
    assert all(x[0] == "pass" for x in v[:4])


def test_fold_messages_strips_formatting_receipts_and_labels():
    v = verdicts("fold-messages")
    m = v[1][1]
    assert "<body>hi &amp; bye</body>" in m and "id='m2'" in m
    for gone in ("xhtml-im", "urn:xmpp:receipts", "sec-label"):
        assert gone not in m, m
    assert CS in m and "origin-id" in m
    assert v[2] == ("pass", FIXTURES[2])


def test_fold_presence_keeps_show_status_priority_and_room_payloads():
    v = verdicts("fold-presence")
    p = v[2][1]
    assert p == ("<presence from='alice@a.example/x'><show>away</show>"
                 "<status>out</status><priority>5</priority></presence>")
    join = v[3][1]
    assert "http://jabber.org/protocol/muc'" in join and "caps" not in join


def test_lean_and_minimal_rule_tables():
    lean = verdicts("lean")
    assert [x[0] for x in lean] == [
        "drop", "pass", "pass", "pass", "bounce service-unavailable",
        "pass", "pass", "drop", "pass"]
    assert lean[1][1] == (
        "<message to='bob@b.example' from='alice@a.example/x' type='chat' "
        "id='m2'><body>hi &amp; bye</body><securitylabel xmlns='urn:xmpp:"
        "sec-label:0'><displaymarking>SECRET</displaymarking>"
        "</securitylabel><origin-id xmlns='urn:xmpp:sid:0' id='o2'/>"
        "</message>")
    minimal = verdicts("minimal")
    assert minimal[1][1] == (
        "<message to='bob@b.example' from='alice@a.example/x' type='chat' "
        "id='m2'><body>hi &amp; bye</body><origin-id xmlns='urn:xmpp:sid:0'"
        " id='o2'/></message>")
    assert minimal[2][1] == "<presence from='alice@a.example/x'/>"
    assert minimal[3][1] == (
        "<presence from='alice@a.example/x' to='room@muc.b.example/al'>"
        "<x xmlns='http://jabber.org/protocol/muc'/></presence>")
    # the receipt is not in minimal's list, the body stays absent
    assert minimal[8] == ("pass", "<message to='bob@b.example' "
                          "from='alice@a.example/x' id='m9'/>")


def test_folding_always_yields_well_formed_stanzas():
    """Every output line of every standard policy parses as XML, keeps
    its id, and a message that had a body still has it."""
    import xml.etree.ElementTree as ET
    for name in sorted(os.listdir(POLICY_DIR)):
        v = verdicts(name[:-4])
        for i, (verdict, text) in enumerate(v):
            if verdict == "drop":
                continue
            el = ET.fromstring(text)
            want_id = re.search(r"id='([^']*)'", FIXTURES[i])
            if want_id:
                assert el.get("id") == want_id.group(1), (name, text)
            if verdict == "pass" and "<body>" in FIXTURES[i]:
                assert "<body>" in text, (name, text)


# ------------------------------------------------------------ sandbox ---

def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def lines(r):
    return [l for l in r.stdout.splitlines() if not l.startswith("#")]


def test_an_endless_loop_is_cut_by_the_budget(tmp_path):
    p = write(tmp_path, "loop.lua", """
        local policy = { name = "loop" }
        function policy.outbound(st, link)
            if st:id() == "m1" then while true do end end
            return "pass"
        end
        return policy""")
    t0 = time.monotonic()
    r = policy_test(p, FIXTURES[:3])
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 20
    assert lines(r)[0] == "1 error, on_error: pass " + FIXTURES[0]
    assert lines(r)[1].startswith("2 pass ")
    assert "more than" in r.stderr and "instructions" in r.stderr
    assert "# 3 stanzas, 1 policy errors" in r.stdout


def test_memory_cap_and_on_error_drop(tmp_path):
    p = write(tmp_path, "hog.lua", """
        local t = {}
        return {
            on_error = "drop",
            outbound = function(st)
                for i = 1, 1e8 do t[i] = ("x"):rep(100) .. i end
            end,
        }""")
    r = policy_test(p, FIXTURES[:2])
    assert r.returncode == 0, r.stderr
    assert lines(r) == ["1 error, on_error: drop", "2 error, on_error: drop"]
    assert "not enough memory" in r.stderr


def test_a_full_heap_fails_the_call_not_the_server(tmp_path):
    """A policy that keeps everything it makes fills its state to the
    cap, small object by small object, and the next calls start with a
    full heap (their handles are made in protected mode: an allocation
    that fails there is a failed call, never a Lua panic).  Each fails
    cleanly (on_error); the tester (and the server, which runs the same
    code) keeps going."""
    p = write(tmp_path, "full.lua", """
        local head
        return {
            on_error = "drop",
            outbound = function(st)
                while true do head = { next = head } end
            end,
        }""")
    r = policy_test(p, FIXTURES[:4])
    assert r.returncode == 0, r.stderr
    assert lines(r) == ["%d error, on_error: drop" % i for i in range(1, 5)]
    assert "not enough memory" in r.stderr


@pytest.mark.parametrize("code", [
    "io.open('/etc/passwd')", "os.exit(1)", "require('os')",
    "load('return 1')", "dofile('/etc/passwd')", "debug.getinfo(1)",
    "loadstring('x')", "collectgarbage()", "setmetatable({}, {})",
    "pcall(print)",
])
def test_the_sandbox_has_no_way_out(tmp_path, code):
    p = write(tmp_path, "out.lua", "local x = %s\nreturn {}\n" % code)
    r = policy_test(p)
    assert r.returncode == 1
    assert "out.lua:1:" in r.stderr, r.stderr


def test_bytecode_is_refused(tmp_path):
    p = tmp_path / "bc.lua"
    p.write_bytes(b"\x1bLua\x54\x00garbage")
    r = policy_test(str(p))
    assert r.returncode == 1
    assert "binary" in r.stderr or "text" in r.stderr, r.stderr


def test_a_handle_kept_after_its_call_raises_a_clean_error(tmp_path):
    p = write(tmp_path, "keep.lua", """
        local saved
        return {
            outbound = function(st)
                if saved then return saved:kind() end
                saved = st
            end,
        }""")
    r = policy_test(p, FIXTURES[:2])
    assert lines(r)[1].startswith("2 error, on_error: pass "), r.stdout
    assert "used after its call returned" in r.stderr


@pytest.mark.parametrize("text,message", [
    ("return { outbound = { drop_chatstates = true } }",
     "unknown rule drop_chatstates"),
    ("return { outbound = { iq_allow = 'urn:xmpp:ping' } }",
     "outbound.iq_allow: a table is needed, not a string"),
    ("return { outbound = { presence_fold = 'tiny' } }",
     "presence_fold"),
    ("return { outbund = function() end }", "unknown field \"outbund\""),
    ("return { on_error = 'ignore' }", "on_error"),
    ("return 42", "must return a table"),
    ("local x = \nreturn {}", "bad.lua:2:"),
])
def test_bad_policies_are_refused_with_a_clear_error(tmp_path, text,
                                                     message):
    p = write(tmp_path, "bad.lua", text)
    r = policy_test(p)
    assert r.returncode == 1
    assert message in r.stderr, r.stderr


def test_verdict_errors_apply_on_error(tmp_path):
    p = write(tmp_path, "v.lua", """
        return {
            on_error = "bounce",
            outbound = function(st)
                if st:id() == "m1" then return "bounce", "no-such-thing" end
                if st:id() == "m2" then return "maybe" end
                if st:id() == "q1" then st:strip("query", "jabber:iq:roster") end
                return "bounce", "not-allowed"
            end,
        }""")
    r = policy_test(p, [FIXTURES[0], FIXTURES[1], FIXTURES[4], FIXTURES[5]])
    out = lines(r)
    assert out[0].startswith("1 error, on_error: bounce policy-violation")
    assert out[1].startswith("2 error, on_error: bounce policy-violation")
    # an IQ request is never folded (RFC 6120 §8.2.3: one payload)
    assert out[2].startswith("3 error, on_error: bounce")
    assert "an IQ request is not folded" in r.stderr
    assert out[3].startswith("4 bounce not-allowed <iq ")


# ------------------------------------------------------ on the link ---

def received(client, seconds):
    end = time.time() + seconds
    text = ""
    while time.time() < end:
        try:
            text += client.read_until(r"</message>|<message[^>]*/>",
                                      timeout=max(0.1, end - time.time()))
        except AssertionError:
            break
    return text + client.buf.decode(errors="replace")


def link_run(tmp_path, options, sub):
    """A pair whose A has OPTIONS in its Peer section; alice sends the
    message fixtures and an IQ to bob; returns (what bob got, what alice
    got back, A's log)."""
    d = tmp_path / sub
    d.mkdir()
    p = Pair(d)
    add_peer_options(p.a, options)
    add_module(p.a, "filter")
    try:
        p.a.start()
        p.b.start()
        wait_log(p.a, "link b: up")
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        time.sleep(0.5)
        for i in (0, 1, 7, 8):
            alice.send(FIXTURES[i].replace(" from='alice@a.example/x'", ""))
        alice.send(FIXTURES[4].replace(" from='alice@a.example/x'", ""))
        alice.send("<message to='bob@b.example' type='chat' id='end'>"
                   "<body>end</body></message>")
        got = bob.read_until(r"id='end'.*?</message>", timeout=15)
        back = alice.read_until(r"<iq[^>]*id='q1'.*?</iq>", timeout=15)
        log = p.a.log_text()
        assert (p.a.stop(), p.b.stop()) == (0, 0)
        return got, back, log
    finally:
        p.a.stop()
        p.b.stop()


def messages(text):
    return re.findall(r"<message.*?(?:</message>|/>)", text, re.S)


def test_policy_and_c_filters_on_a_link_give_the_same_bytes(tmp_path):
    """lean as a Lua policy, and the same rules as C filter options: bob
    receives byte-identical stanzas, no typing notification crosses, and
    alice gets the IQ's error from her own server."""
    lua_got, lua_back, log = link_run(
        tmp_path, 'filter_outbound = "lean",\n', "lua")
    assert "policy" not in log or "error" not in log.split("policy")[-1]
    c_got, c_back, _ = link_run(
        tmp_path,
        'filter_drop_chat_states = true,\n'
        'filter_presence_fold = "show",\n'
        'filter_message_strip = { "{http://jabber.org/protocol/xhtml-im}'
        'html", "{urn:xmpp:receipts}" },\n'
        'filter_iq_allow = { "urn:xmpp:ping", "jabber:iq:version", '
        '"http://jabber.org/protocol/disco#info", '
        '"http://jabber.org/protocol/muc#admin", '
        '"http://jabber.org/protocol/muc#owner" },\n', "c")
    lua_msgs, c_msgs = messages(lua_got), messages(c_got)
    ids = [re.search(r"id='([^']*)'", m).group(1) for m in lua_msgs]
    assert ids == ["m2", "m9", "end"], lua_msgs
    assert CS not in "".join(lua_msgs[:1])
    assert "xhtml-im" not in lua_got and "<body>hi &amp; bye</body>" in \
        lua_got
    assert lua_msgs == c_msgs
    for back in (lua_back, c_back):
        assert "type='error'" in back and "service-unavailable" in back


def test_unfiltered_link_carries_everything(tmp_path):
    """The control for the test above: without filters the typing
    notifications and the IQ cross."""
    got, back, _ = link_run(tmp_path, "", "none")
    ids = [re.search(r"id='([^']*)'", m).group(1) for m in messages(got)]
    assert ids == ["m1", "m2", "m8", "m9", "end"], ids
    assert "xhtml-im" in got


def test_an_endless_loop_policy_on_a_link_keeps_the_link_working(tmp_path):
    loop = tmp_path / "loop.lua"
    loop.write_text("return { outbound = function(st) "
                    "while true do end end }\n")
    got, _, log = link_run(tmp_path, 'filter_outbound = "%s",\n' % loop,
                           "loop")
    assert "instructions in one call" in log
    # on_error pass: everything crossed
    assert len(messages(got)) == 5


def test_sighup_reload_keeps_the_old_policy_when_the_new_is_broken(
        tmp_path):
    pol = tmp_path / "p.lua"
    pol.write_text("return { outbound = { drop_chat_states = true } }\n")
    p = Pair(tmp_path)
    add_peer_options(p.a, 'filter_outbound = "%s",\n' % pol)
    add_module(p.a, "filter")
    try:
        p.a.start()
        p.b.start()
        wait_log(p.a, "link b: up")
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        time.sleep(0.5)

        def typing_then_end(n):
            alice.send("<message to='bob@b.example' type='chat' id='t%d'>"
                       "<composing xmlns='%s'/></message>" % (n, CS))
            alice.send("<message to='bob@b.example' type='chat' id='e%d'>"
                       "<body>e</body></message>" % n)
            return bob.read_until(r"id='e%d'.*?</message>" % n, timeout=15)

        assert "id='t1'" not in typing_then_end(1)
        pol.write_text("return { outbound = { drop_chat_states = true }\n")
        p.a.proc.send_signal(signal.SIGHUP)
        wait_log(p.a, "keeping the running policy")
        assert "p.lua:2:" in p.a.log_text()
        assert "id='t2'" not in typing_then_end(2)
        pol.write_text("return { outbound = function() return 'pass' end }")
        p.a.proc.send_signal(signal.SIGHUP)
        wait_log(p.a, "policy p.lua reloaded")
        assert "id='t3'" in typing_then_end(3)
        assert (p.a.stop(), p.b.stop()) == (0, 0)
    finally:
        p.a.stop()
        p.b.stop()


def test_config_check_names_the_file_and_line_of_a_bad_policy(tmp_path):
    bad = tmp_path / "bad.lua"
    bad.write_text("return { outbound = { drop_chatstates = true } }\n")
    p = Pair(tmp_path)
    add_peer_options(p.a, 'filter_outbound = "%s",\n' % bad)
    with open(p.a.cfg) as f:
        cfg = f.read().replace('modules = {', 'modules = { "filter",', 1)
    with open(p.a.cfg, "w") as f:
        f.write(cfg)
    line = cfg[:cfg.index("filter_outbound")].count("\n") + 1
    r = run([SKYWAVED, "-t", "-c", p.a.cfg], sw_env())
    assert r.returncode == 1
    out = r.stdout + r.stderr + p.a.log_text()
    assert "%s:%d: filter_outbound:" % (p.a.cfg, line) in out, out
    assert "unknown rule drop_chatstates" in out, out


def test_a_deliver_policy_folds_what_local_sessions_get(tmp_path):
    """filter_deliver in b.example's VirtualHost: a policy on the deliver
    chain (every stanza handed to one of that host's client sessions)
    strips XHTML-IM from what Bob gets and drops typing notifications,
    whatever their origin."""
    pol = tmp_path / "d.lua"
    pol.write_text("""
        local CS = "http://jabber.org/protocol/chatstates"
        return { deliver = function(st)
            if st:kind() == "message" then
                if st:child(nil, CS) and not st:child("body") then
                    return "drop"
                end
                st:strip("html", "http://jabber.org/protocol/xhtml-im")
            end
        end }""")
    p = Pair(tmp_path)
    with open(p.b.cfg) as f:
        cfg = f.read()
    cfg = cfg.replace('modules = {', 'modules = { "filter",', 1)
    cfg = re.sub(r'(VirtualHost "b.example"[^\n]*\n)',
                 r'\1filter_deliver = { "%s" }\n' % pol, cfg, 1)
    assert "filter_deliver" in cfg, cfg
    with open(p.b.cfg, "w") as f:
        f.write(cfg)
    try:
        p.a.start()
        p.b.start()
        wait_log(p.a, "link b: up")
        bob = Raw(p.b.port, "b.example")
        bob.login("bob", "pw-bob", "ship")
        bob.send("<presence/>")
        alice = Raw(p.a.port, "a.example")
        alice.login("alice", "pw-alice", "home")
        time.sleep(0.5)
        for i in (0, 1):
            alice.send(FIXTURES[i].replace(" from='alice@a.example/x'", ""))
        alice.send("<message to='bob@b.example' type='chat' id='end'>"
                   "<body>end</body></message>")
        got = messages(bob.read_until(r"id='end'.*?</message>",
                                      timeout=15))
        ids = [re.search(r"id='([^']*)'", m).group(1) for m in got]
        assert ids == ["m2", "end"], got
        assert "xhtml-im" not in got[0] and "<body>hi &amp; bye</body>" \
            in got[0]
        assert (p.a.stop(), p.b.stop()) == (0, 0)
    finally:
        p.a.stop()
        p.b.stop()
