"""A server-to-server peer written from XEP-0361 alone, for tests: the
a-priori agreement replaces every negotiation, so the first bytes on a TCP
connection are stanzas, inside an implied
<stream:stream xmlns='jabber:server'> (XEP-0361 §4).  No TLS, no
compression, no acknowledgements: M-Link's X2X in its simplest
configuration.  It answers XEP-0199 pings, and a stream close with its
own (§4: "a stream close SHOULD be exchanged")."""
import socket
import threading
import time
import xml.etree.ElementTree as ET

HEADER = ("<stream:stream xmlns='jabber:server' "
          "xmlns:stream='http://etherx.jabber.org/streams'>")
NS_SERVER = "{jabber:server}"
NS_STREAMS = "{http://etherx.jabber.org/streams}"
NS_LINK = "{urn:skywave:link:0}"
NS_PING = "{urn:xmpp:ping}"


class Conn:
    """One TCP connection; opened_by is "peer" (us, the test's peer) or
    "server" (the skywaved under test)."""

    def __init__(self, peer, sock, opened_by):
        self.peer = peer
        self.sock = sock
        self.opened_by = opened_by
        self.raw = b""
        self.elements = []          # top-level elements, in order
        self.stream_closed = False  # its </stream:stream> came
        self.eof = False            # its TCP close came
        self.error = None           # not well-formed
        self.closing = False        # we sent our </stream:stream>
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._parser.feed(HEADER)
        self._depth = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, text):
        if "</stream:stream>" in text:
            self.closing = True
        self.sock.sendall(text.encode())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            self.raw += data
            try:
                self._parser.feed(data)
            except ET.ParseError as e:
                self.error = str(e)
                break
            for ev, el in self._parser.read_events():
                if ev == "start":
                    self._depth += 1
                    continue
                self._depth -= 1
                if self._depth == 1:
                    self.elements.append(el)
                    self.peer._on_element(self, el)
                elif self._depth == 0:
                    self.stream_closed = True
                    self.peer._on_stream_close(self)
        self.eof = True


class PlainPeer:
    """Speaks for domain; listens on 127.0.0.1:listen_port when given."""

    def __init__(self, domain, listen_port=None, answer_close=True):
        self.domain = domain
        self.answer_close = answer_close
        self.conns = []
        self._lsock = None
        if listen_port is not None:
            self._lsock = socket.socket()
            self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._lsock.bind(("127.0.0.1", listen_port))
            self._lsock.listen(8)
            threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self._lsock.accept()
            except OSError:
                return
            self.conns.append(Conn(self, s, "server"))

    def connect(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.settimeout(None)
        c = Conn(self, s, "peer")
        self.conns.append(c)
        return c

    def close(self):
        if self._lsock is not None:
            self._lsock.close()
        for c in self.conns:
            c.close()

    def _on_element(self, conn, el):
        if (el.tag == NS_SERVER + "iq" and el.get("type") == "get"
                and el.find(NS_PING + "ping") is not None):
            conn.send("<iq type='result' id='%s' from='%s' to='%s'/>"
                      % (el.get("id"), el.get("to"), el.get("from")))

    def _on_stream_close(self, conn):
        if self.answer_close and not conn.closing:
            try:
                conn.send("</stream:stream>")
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def elements(self):
        return [el for c in list(self.conns) for el in list(c.elements)]

    def wait(self, pred, what, timeout=10):
        """The first element (over every connection) that pred accepts."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for el in self.elements():
                if pred(el):
                    return el
            time.sleep(0.02)
        raise AssertionError("the plain peer got no %s; it got %r" % (
            what, [ET.tostring(e) for e in self.elements()]))

    def wait_conn(self, pred, what, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for c in list(self.conns):
                if pred(c):
                    return c
            time.sleep(0.02)
        raise AssertionError("no connection that %s" % what)

    def link_elements(self):
        """Anything in Skywave's own link namespace: a plain peer must
        never see one."""
        return [el for el in self.elements() if el.tag.startswith(NS_LINK)]
