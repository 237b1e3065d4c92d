#!/usr/bin/env python3
"""Seeds corpus/<target>/ from the inputs of torsion's own tests.

Run from fuzz/: `python3 seeds.py`. It reads the string and byte-string
literals of the crates' tests (request heads, chunked bodies, endpoint
strings, Range values, framed streams...), puts each behind the
configuration bytes its target reads, and writes one file per input named
by its content's hash. The committed corpus is this seed merged with what
the fuzzers found, minimised with libFuzzer's -merge (see README.md).
"""
import hashlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent
CRATES = ROOT.parent / "crates"
LIT = re.compile(r'(b?)"((?:[^"\\]|\\.)*)"', re.S)


def unescape(s, is_bytes):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = s[i + 1]
        if n == "\n":  # string continuation: skip the newline and indent
            i += 2
            while i < len(s) and s[i] in " \t\n":
                i += 1
            continue
        simple = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", '"': b'"', "'": b"'", "0": b"\0"}
        if n in simple:
            out += simple[n]
            i += 2
        elif n == "x":
            out.append(int(s[i + 2 : i + 4], 16))
            i += 4
        elif n == "u":
            end = s.index("}", i)
            out += chr(int(s[i + 3 : end], 16)).encode()
            i = end + 1
        else:
            out += n.encode()
            i += 2
    return bytes(out)


def literals(paths):
    for p in paths:
        for f in sorted(pathlib.Path(p).rglob("*.rs")):
            text = f.read_text()
            for m in LIT.finditer(text):
                try:
                    yield unescape(m.group(2), m.group(1) == "b")
                except (ValueError, IndexError):
                    pass


def write(target, data):
    d = ROOT / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


http = [CRATES / "torsion-http/tests", CRATES / "torsion-http/src"]
engine = [CRATES / "torsion/tests", CRATES / "torsion/src", CRATES / "torsion-cli"]

heads = sorted({l for l in literals(http) if re.search(rb"HTTP/1\.[01]\r?\n", l)})
for h in heads:
    # Whole and cut at random points; small limits and default limits.
    write("h1_server", b"\x00\x00\x00" + h)
    write("h1_server", b"\x2b\x01\x01" + h)
    # Answers only before the next read: pipelined requests wait.
    write("h1_server", b"\x11\x00\x04" + h)

endpoints = sorted({l for l in literals(engine) if re.match(rb"(tcp6?|unix|ssl|tls):", l)})
for e in endpoints:
    write("endpoint_string", b"\x00" + e)
    write("endpoint_string", b"\x01" + e)

ranges = sorted({l for l in literals(http) if re.match(rb"[Bb]ytes ?=|bytes|items=|lines=", l)})
for r in ranges:
    write("http_range", b"\x05" + r)
    write("http_range", b"\xa8" + r)

cookies = [b"a=1; b=\"two\"", b"c = 3;;junk", b"session=abc123", b"a=1\0b=2; c"]
for c in cookies:
    write("http_cookie", b"\x00" + c)
for parts in [b"session\0abc123\0/\0example.org", b"a b\0v", b"a\0v\r\nX: y", b"a\0\"quoted\"\0/; Secure"]:
    write("http_cookie", b"\x0f" + parts)

# name byte: 0 Range, 1 If-Match, 2 If-Range, 3 If-None-Match,
# 4 If-Modified-Since, 5 If-Unmodified-Since, 6 Accept-Encoding.
date = b"Sun, 06 Nov 1994 08:49:37 GMT"
conds = [
    b"\x03\"5f-1a2b3c\"",
    b"\x03W/\"a\", \"b\" ,\"c,d\"",
    b"\x01*\0\x04" + date,
    b"\x01\"x\"",
    b"\x05" + date,
    b"\x04" + date + b"\0\x03garbage",
    b"\x02" + date + b"\0\x00bytes=0-1",
    b"\x02\"5f-1a2b3c\"\0\x00bytes=-5",
    b"\x06gzip;q=0.5, br\0\x06*;q=0, x-gzip",
    b"\x06identity, *;q=1",
]
for c in conds:
    write("http_conditional", b"\x00\x01" + c)
    write("http_conditional", b"\x02\x00" + c)

framed = sorted({l for l in literals([CRATES / "torsion/tests/basic.rs", CRATES / "torsion/src/basic"]) if l})
for f in framed:
    write("line_decoder", b"\x00\x00\x40" + f)  # CRLF, max 12, whole
    write("line_decoder", b"\x07\x01\xf1" + f)  # LF, max 45, cut
    if re.match(rb"\d+:", f):
        write("string_decoders", b"\x00\x00\x14" + f)  # netstrings, max 100
        write("string_decoders", b"\x03\x01\x0c" + f)  # netstrings, max 5, cut
    else:
        for cfg in (b"\x15", b"\x16", b"\x0b"):  # U8/U16 max 100, U32 max 2
            write("string_decoders", b"\x02\x01" + cfg + f)

# TLS: handshake then application data, raw records, close_notify, EOF.
tls = [
    b"\x00" + b"\x00\x05hello",
    b"\x05" + b"\x00\x05hello\x01\x05\x17\x03\x03\x00\x10",
    b"\x04" + b"\x00\x03abc\x02\x00",
    b"\x01" + b"\x01\x07\x15\x03\x03\x00\x02\x02\x28",
    b"\x02" + b"\x01\x05\x16\x03\x01\x00\x00",
    b"\x00" + b"\x00\x02hi\x03\x00",
]
for t in tls:
    write("tls_records", t)

for target in ["h1_server", "endpoint_string", "http_range", "http_cookie",
               "http_conditional", "line_decoder", "string_decoders", "tls_records"]:
    print(target, len(list((ROOT / "corpus" / target).iterdir())))
