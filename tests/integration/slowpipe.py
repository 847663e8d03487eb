#!/usr/bin/python3
"""A byte pipe for link_pipe tests: connects to HOST:PORT and copies
standard input to the socket and the socket to standard output, each
direction at most RATE bytes per second (a slow modem), so that a test
can kill it in the middle of a burst.

    slowpipe.py 127.0.0.1:7000 20000
"""
import os
import socket
import sys
import threading
import time


def pump(read, write, rate, done):
    chunk = max(1, rate // 20)
    try:
        while True:
            data = read(chunk)
            if not data:
                break
            write(data)
            time.sleep(len(data) / rate)
    except OSError:
        pass
    done.set()


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    rate = int(sys.argv[2])
    try:
        sock = socket.create_connection((host, int(port)), timeout=5)
    except OSError as e:
        sys.stderr.write("slowpipe: %s:%s: %s\n" % (host, port, e))
        sys.exit(1)
    sock.settimeout(None)
    done = threading.Event()

    def to_sock(data):
        sock.sendall(data)

    def to_out(data):
        while data:
            n = os.write(1, data)
            data = data[n:]

    threading.Thread(target=pump,
                     args=(lambda n: os.read(0, n), to_sock, rate, done),
                     daemon=True).start()
    threading.Thread(target=pump, args=(sock.recv, to_out, rate, done),
                     daemon=True).start()
    done.wait()


if __name__ == "__main__":
    main()
