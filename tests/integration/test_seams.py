"""The seams a policy module uses (issue 11): filters on each link's
outbound and inbound chains, link/up and link/down events, and the
origin of a stanza on the global inbound chain.  tests/modules/
mod_testlink.c is such a module; these tests load it into a real
server linked to a second one."""
import re
import time

from test_peer_link import Pair, online, wait_log


def with_module(server, name):
    cfg = open(server.cfg).read()
    cfg = re.sub(r"(?m)^modules = \{", 'modules = { "%s",' % name, cfg, 1)
    open(server.cfg, "w").write(cfg)


def msg(to, body, mid):
    return ("<message to='%s' type='chat' id='%s'><body>%s</body>"
            "</message>" % (to, mid, body))


def test_link_chains_events_and_origins(tmp_path):
    p = Pair(tmp_path)
    with_module(p.a, "testlink")
    p.a.start()
    p.b.start()
    try:
        wait_log(p.a, "testlink: up b")
        alice = online(p.a, "alice@a.example", "pw-alice", "home")
        bob = online(p.b, "bob@b.example", "pw-bob", "ship")
        time.sleep(0.3)
        for i, body in enumerate(("drop:1", "bounce:1", "tag:1",
                                  "origin? 1", "plain 1")):
            alice.send(msg("bob@b.example", body, "a%d" % i))
        text = bob.read_until(r"<body>plain 1</body>", timeout=15)
        bodies = re.findall(r"<body>([^<]*)</body>", text)
        assert bodies == ["tag:1", "origin? 1", "plain 1"], bodies
        tagged = re.search(r"<message[^>]*>(?:(?!</message>).)*tag:1.*?"
                           r"</message>", text, re.S).group(0)
        assert "<tagged xmlns='urn:test:link'/>" in tagged, tagged
        err = alice.read_until(r"<message[^>]*type='error'.*?</message>",
                               timeout=10)
        assert "id='a1'" in err and "<not-acceptable" in err, err
        wait_log(p.a, "testlink: dropped on b's outbound chain")
        wait_log(p.a, "testlink: origin session")

        for i, body in enumerate(("in-drop:2", "origin? 2", "back 2")):
            bob.send(msg("alice@a.example", body, "b%d" % i))
        text = alice.read_until(r"<body>back 2</body>", timeout=15)
        bodies = re.findall(r"<body>([^<]*)</body>", text)
        assert bodies == ["origin? 2", "back 2"], bodies
        wait_log(p.a, "testlink: dropped on b's inbound chain")
        wait_log(p.a, "testlink: origin link b")

        assert p.b.stop() == 0
        wait_log(p.a, "testlink: down b (")
        assert p.a.log_text().count("testlink: up b") == 1
    finally:
        p.a.stop()
        p.b.stop()
