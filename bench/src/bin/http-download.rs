//! Load generator for large static files: C keep-alive connections each
//! `GET` one path over and over for D seconds, reading the body with a
//! 1 MiB buffer. Reports MB/s of body received.
//!
//! `wrk` reads into 8 KiB buffers, which on loopback makes the client, not
//! the server, the limit for a 1 GiB file; this reads in large chunks.
//! Partial bodies count: the bytes that arrived within the window.

use clap::Parser;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use torsion_bench::report;

/// Measures static-file throughput: MB/s of response body over
/// keep-alive GETs. Prints one `RESULT key=value ...` line; stops by
/// itself after --duration.
#[derive(Parser, Debug)]
struct Args {
    /// The server, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// The path to fetch.
    #[arg(long, default_value = "/big.bin")]
    path: String,
    /// Parallel connections (one thread each).
    #[arg(long, short = 'c', default_value_t = 1)]
    connections: usize,
    /// Seconds of load.
    #[arg(long, short = 'd', default_value_t = 3.0)]
    duration: f64,
}

struct Totals {
    body_bytes: u64,
    responses: u64,
    errors: u64,
}

fn fetch_loop(addr: SocketAddr, request: &[u8], deadline: Instant) -> Totals {
    let mut t = Totals {
        body_bytes: 0,
        responses: 0,
        errors: 0,
    };
    let mut buf = vec![0u8; 1 << 20];
    'conn: while Instant::now() < deadline {
        let Ok(mut s) = TcpStream::connect(addr) else {
            t.errors += 1;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        loop {
            if Instant::now() >= deadline || s.write_all(request).is_err() {
                continue 'conn;
            }
            // Head.
            let mut have = 0;
            let (body_start, len) = loop {
                if Instant::now() >= deadline {
                    break 'conn;
                }
                match s.read(&mut buf[have..]) {
                    Ok(0) => {
                        t.errors += 1;
                        continue 'conn;
                    }
                    Ok(n) => have += n,
                    Err(e) if is_timeout(&e) => continue,
                    Err(_) => {
                        t.errors += 1;
                        continue 'conn;
                    }
                }
                if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    if !head.starts_with("http/1.1 200") {
                        t.errors += 1;
                        break 'conn;
                    }
                    let len: u64 = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    break (end + 4, len);
                }
            };
            let mut got = (have - body_start) as u64;
            t.body_bytes += got;
            while got < len {
                if Instant::now() >= deadline {
                    break 'conn;
                }
                match s.read(&mut buf) {
                    Ok(0) => {
                        t.errors += 1;
                        continue 'conn;
                    }
                    Ok(n) => {
                        got += n as u64;
                        t.body_bytes += n as u64;
                    }
                    Err(e) if is_timeout(&e) => {}
                    Err(_) => {
                        t.errors += 1;
                        continue 'conn;
                    }
                }
            }
            t.responses += 1;
        }
    }
    t
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn main() {
    let args = Args::parse();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: torsion-bench\r\n\r\n",
        args.path, args.addr
    )
    .into_bytes();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let threads: Vec<_> = (0..args.connections.max(1))
        .map(|_| {
            let req = request.clone();
            let addr = args.addr;
            std::thread::spawn(move || fetch_loop(addr, &req, deadline))
        })
        .collect();
    let mut body = 0;
    let mut responses = 0;
    let mut errors = 0;
    for t in threads {
        if let Ok(r) = t.join() {
            body += r.body_bytes;
            responses += r.responses;
            errors += r.errors;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    report(&[
        ("ops", body as f64 / (1 << 20) as f64),
        ("body_bytes", body as f64),
        ("responses", responses as f64),
        ("errors", errors as f64),
        ("secs", secs),
        ("mb_per_s", body as f64 / secs / 1e6),
    ]);
}
