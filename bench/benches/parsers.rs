//! Criterion micro-benchmarks of torsion's hot parsers, in bytes/s:
//!
//! * line splitting: `basic::LineDecoder` over 32-byte CRLF lines, fed in
//!   one 64 KiB chunk and in 1,448-byte segments (one TCP segment's
//!   payload, so lines straddle reads);
//! * length-prefixed framing: `basic::PrefixDecoder` (32-bit prefixes, as
//!   `Int32StringReceiver`) and `basic::NetstringDecoder`, 60-byte strings;
//! * endpoint strings: `endpoints::parse_server` / `parse_client`;
//! * the HTTP/1.1 request head: `torsion_http::h1::ServerConnection`
//!   reading a wrk-like `GET` head (a fresh connection per head), and one
//!   whole keep-alive exchange (head in, `200` with a 13-byte body out).
//!
//! Run: `cd bench && cargo bench` (or `cargo bench -- line` for one group).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Instant;
use torsion::basic::{LineDecoder, LineEvent, NetstringDecoder, Prefix, PrefixDecoder};
use torsion::endpoints::{parse_client, parse_server};
use torsion_http::h1::{Event, ResponseHead, ServerConnection};
use torsion_http::Limits;

const CHUNK: usize = 64 * 1024;

fn lines_input() -> Vec<u8> {
    let mut v = Vec::with_capacity(CHUNK);
    let mut i = 0u32;
    while v.len() + 32 <= CHUNK {
        let line = format!("line {i:08} of the benchmark");
        let mut l = line.into_bytes();
        l.resize(30, b'.');
        v.extend_from_slice(&l);
        v.extend_from_slice(b"\r\n");
        i += 1;
    }
    v
}

/// Feeds `input` to a line decoder in `segment`-sized pieces; returns
/// the lines seen.
fn split_lines(d: &mut LineDecoder, input: &[u8], segment: usize) -> usize {
    let mut lines = 0;
    for mut piece in input.chunks(segment) {
        loop {
            let (used, ev) = d.decode(piece);
            match ev {
                Some(LineEvent::Line(l)) => {
                    black_box(l);
                    lines += 1;
                }
                Some(_) => {}
                None => break,
            }
            piece = &piece[used..];
        }
    }
    lines
}

fn bench_lines(c: &mut Criterion) {
    let input = lines_input();
    let mut g = c.benchmark_group("line splitting");
    g.throughput(Throughput::Bytes(input.len() as u64));
    for (name, segment) in [("64 KiB at once", CHUNK), ("1448-byte segments", 1448)] {
        g.bench_function(name, |b| {
            let mut d = LineDecoder::new(b"\r\n", 16_384);
            b.iter(|| split_lines(&mut d, black_box(&input), segment))
        });
    }
    g.finish();
}

fn strings_input(netstring: bool) -> Vec<u8> {
    let payload = [b's'; 60];
    let mut v = Vec::with_capacity(CHUNK);
    while v.len() + 64 <= CHUNK {
        if netstring {
            v.extend_from_slice(b"60:");
            v.extend_from_slice(&payload);
            v.push(b',');
        } else {
            v.extend_from_slice(&60u32.to_be_bytes());
            v.extend_from_slice(&payload);
        }
    }
    v
}

fn bench_framing(c: &mut Criterion) {
    let mut g = c.benchmark_group("length-prefixed framing");
    let int32 = strings_input(false);
    g.throughput(Throughput::Bytes(int32.len() as u64));
    g.bench_function("Int32 prefix, 60-byte strings", |b| {
        let mut d = PrefixDecoder::new(Prefix::U32, 99_999);
        b.iter(|| {
            let mut input: &[u8] = black_box(&int32);
            let mut n = 0;
            loop {
                let (used, ev) = d.decode(input);
                input = &input[used..];
                match ev {
                    Some(s) => {
                        black_box(s.ok());
                        n += 1;
                    }
                    None => break,
                }
            }
            n
        })
    });
    let net = strings_input(true);
    g.throughput(Throughput::Bytes(net.len() as u64));
    g.bench_function("netstrings, 60-byte strings", |b| {
        let mut d = NetstringDecoder::new(99_999);
        b.iter(|| {
            let mut input: &[u8] = black_box(&net);
            let mut n = 0;
            loop {
                let (used, ev) = d.decode(input);
                input = &input[used..];
                match ev {
                    Some(s) => {
                        black_box(s.ok());
                        n += 1;
                    }
                    None => break,
                }
            }
            n
        })
    });
    g.finish();
}

fn bench_endpoints(c: &mut Criterion) {
    let mut g = c.benchmark_group("endpoint strings");
    let server = "tcp:8080:interface=127.0.0.1:backlog=128";
    g.throughput(Throughput::Bytes(server.len() as u64));
    g.bench_function("parse_server tcp", |b| {
        b.iter(|| parse_server(black_box(server)).is_ok())
    });
    let escaped = r"tcp6:8080:interface=\:\:1";
    g.throughput(Throughput::Bytes(escaped.len() as u64));
    g.bench_function("parse_server tcp6, escaped", |b| {
        b.iter(|| parse_server(black_box(escaped)).is_ok())
    });
    let client = "tcp:host=example.org:port=80:timeout=2.5:bindAddress=127.0.0.1";
    g.throughput(Throughput::Bytes(client.len() as u64));
    g.bench_function("parse_client tcp", |b| {
        b.iter(|| parse_client(black_box(client)).is_ok())
    });
    g.finish();
}

/// The head wrk sends.
const WRK_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
/// A browser-like head with the usual fields.
const BROWSER_HEAD: &[u8] = b"GET /static/app.js?v=3 HTTP/1.1\r\n\
Host: example.org\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://example.org/\r\n\
Connection: keep-alive\r\n\
Cookie: session=0123456789abcdef; theme=dark\r\n\
Sec-Fetch-Dest: script\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-origin\r\n\r\n";

fn bench_http(c: &mut Criterion) {
    let mut g = c.benchmark_group("HTTP request head");
    let now = Instant::now();
    for (name, head) in [
        ("wrk GET", WRK_HEAD),
        ("browser GET, 11 fields", BROWSER_HEAD),
    ] {
        g.throughput(Throughput::Bytes(head.len() as u64));
        g.bench_function(format!("{name}, fresh connection"), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                let mut conn = ServerConnection::new(Limits::default(), now);
                conn.receive(black_box(head), now, &mut out);
                matches!(conn.poll_event(), Some(Event::Request(_)))
            })
        });
        g.bench_function(
            format!("{name}, keep-alive exchange with 200 response"),
            |b| {
                let mut conn = ServerConnection::new(Limits::default(), now).with_date(false);
                let mut out = Vec::new();
                // The exchange must stay valid request after request.
                for _ in 0..3 {
                    out.clear();
                    exchange(&mut conn, head, now, &mut out);
                    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "{out:?}");
                    assert!(out.ends_with(b"\r\n\r\nHello, World!"), "{out:?}");
                    assert!(!conn.is_closed());
                }
                b.iter(|| {
                    out.clear();
                    exchange(&mut conn, black_box(head), now, &mut out);
                    out.len()
                })
            },
        );
    }
    g.finish();
}

/// One keep-alive exchange: the head in, a 200 with a 13-byte body out.
fn exchange(conn: &mut ServerConnection, head: &[u8], now: Instant, out: &mut Vec<u8>) {
    conn.receive(head, now, out);
    while let Some(ev) = conn.poll_event() {
        black_box(&ev);
    }
    let mut resp = ResponseHead::new(200);
    let _ = resp.headers.set("Content-Type", "text/plain");
    let _ = resp.headers.set("Content-Length", "13");
    let _ = conn.send_response(resp, out);
    let _ = conn.send_data(b"Hello, World!", out);
    let _ = conn.finish(now, out);
    while let Some(ev) = conn.poll_event() {
        black_box(&ev);
    }
}

criterion_group!(
    benches,
    bench_lines,
    bench_framing,
    bench_endpoints,
    bench_http
);
criterion_main!(benches);
