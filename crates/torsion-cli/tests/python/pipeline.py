"""Pipelining against `torsion web`, with Python's http.client reading.

http.client does not pipeline by itself, so this writes every request on
one socket before reading anything, then reads the responses in order
with http.client.HTTPResponse over one shared buffered reader (a fresh
reader per response would swallow the bytes of the next one).

Usage: pipeline.py HOST PORT ROOT
ROOT is the directory torsion serves; bodies are checked against it.
Prints one line per response and `ok N` at the end; exits 1 on the first
mismatch.
"""

import gzip
import http.client
import io
import os
import socket
import sys


class KeepOpen(io.BufferedReader):
    """A reader HTTPResponse may 'close' when a body ends."""

    def close(self):
        pass


class SharedSocket:
    """Hands every HTTPResponse the same reader."""

    def __init__(self, sock):
        self.reader = KeepOpen(socket.SocketIO(sock, "rb"), 64 * 1024)

    def makefile(self, mode, *args, **kwargs):
        return self.reader


def fail(message):
    print("FAIL:", message, flush=True)
    sys.exit(1)


def main():
    host, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    def content(name):
        with open(os.path.join(root, name), "rb") as f:
            return f.read()

    small, big, text = content("index.txt"), content("big.bin"), content("notes.html")
    # (method, target, extra headers, check(response, body))
    plan = [
        ("GET", "/index.txt", {}, lambda r, b: r.status == 200 and b == small),
        ("HEAD", "/big.bin", {},
         lambda r, b: r.status == 200 and b == b""
         and r.getheader("Content-Length") == str(len(big))),
        ("GET", "/big.bin", {}, lambda r, b: r.status == 200 and b == big),
        ("GET", "/big.bin", {"Range": "bytes=100-199"},
         lambda r, b: r.status == 206 and b == big[100:200]
         and r.getheader("Content-Range") == "bytes 100-199/%d" % len(big)),
        ("GET", "/nope.txt", {}, lambda r, b: r.status == 404),
        ("GET", "/docs", {},
         lambda r, b: r.status == 301 and r.getheader("Location") == "./docs/"),
        ("GET", "/docs/", {}, lambda r, b: r.status == 200 and b"notes.txt" in b),
        ("GET", "/big.bin", {"Range": "bytes=0-0,-1"},
         lambda r, b: r.status == 206
         and r.getheader("Content-Type").startswith("multipart/byteranges")
         and big[:1] in b and big[-1:] in b),
        ("GET", "/notes.html", {"Accept-Encoding": "gzip"},
         lambda r, b: r.status == 200 and r.getheader("Content-Encoding") == "gzip"
         and len(b) < len(text) and gzip.decompress(b) == text),
        ("GET", "/index.txt", {"If-None-Match": None}, None),  # filled below
        ("GET", "/index.txt", {"Connection": "close"},
         lambda r, b: r.status == 200 and b == small),
    ]

    sock = socket.create_connection((host, port), timeout=30)
    # An ETag for the conditional request, over its own connection.
    probe = http.client.HTTPConnection(host, port, timeout=30)
    probe.request("HEAD", "/index.txt")
    etag = probe.getresponse().getheader("ETag")
    probe.close()
    plan[9] = ("GET", "/index.txt", {"If-None-Match": etag},
               lambda r, b: r.status == 304 and b == b"")

    wire = bytearray()
    for method, target, headers, _ in plan:
        wire += ("%s %s HTTP/1.1\r\nHost: %s:%d\r\n" % (method, target, host, port)).encode()
        for name, value in headers.items():
            wire += ("%s: %s\r\n" % (name, value)).encode()
        wire += b"\r\n"
    sock.sendall(bytes(wire))  # all of them before reading anything

    shared = SharedSocket(sock)
    for i, (method, target, _, check) in enumerate(plan):
        response = http.client.HTTPResponse(shared, method=method)
        response.begin()
        body = response.read()
        print(response.status, method, target, len(body), flush=True)
        if not check(response, body):
            fail("response %d (%s %s): status %d, %d bytes, headers %r"
                 % (i, method, target, response.status, len(body), response.getheaders()))
        closing = (response.getheader("Connection") or "").lower() == "close"
        if closing != (i == len(plan) - 1):
            fail("response %d: Connection: %r" % (i, response.getheader("Connection")))
    if shared.reader.read(1) != b"":
        fail("bytes after the last response, or the connection stayed open")
    sock.close()
    print("ok", len(plan), flush=True)


main()
