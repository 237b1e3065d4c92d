"""Chunked uploads with Python's http.client against an echo resource.

Usage: chunked_upload.py HOST PORT
Every upload goes on one keep-alive HTTPConnection with
encode_chunked=True; the server answers with the body it read and, in
X-Request-Transfer-Encoding, the framing it saw. Prints one line per
upload and `ok N` at the end; exits 1 on the first mismatch.
"""

import http.client
import os
import sys


def fail(message):
    print("FAIL:", message, flush=True)
    sys.exit(1)


def pieces(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    conn = http.client.HTTPConnection(host, port, timeout=30)
    big = os.urandom(1 << 20)
    uploads = [
        # (method, body as a generator, expected, extra headers)
        ("POST", [b"hello ", b"chunked ", b"world"], b"hello chunked world", {}),
        ("PUT", pieces(big, 64 * 1024), big, {}),
        ("POST", pieces(big, 1000), big, {}),
        ("POST", [b"one", b"", b"two"], b"onetwo", {}),  # an empty piece is skipped
        ("POST", [b"after 100-continue"], b"after 100-continue",
         {"Expect": "100-continue"}),
        ("POST", iter(()), b"", {}),  # no chunk at all: just the last-chunk
    ]
    sockets = set()
    for method, body, expected, headers in uploads:
        conn.request(method, "/echo", body=body,
                     headers=dict(headers, **{"Content-Type": "application/octet-stream"}),
                     encode_chunked=True)
        sockets.add(id(conn.sock))
        response = conn.getresponse()
        echoed = response.read()
        framing = response.getheader("X-Request-Transfer-Encoding")
        print(response.status, method, len(echoed), framing, flush=True)
        if response.status != 200 or echoed != expected:
            fail("%s: status %d, %d bytes back, %d sent"
                 % (method, response.status, len(echoed), len(expected)))
        if framing != "chunked":
            fail("the server saw Transfer-Encoding %r" % framing)
    if len(sockets) != 1:
        fail("the connection was not kept alive: %d sockets" % len(sockets))
    conn.close()
    print("ok", len(uploads), flush=True)


main()
