//! Latency of one small request while other clients load the server:
//! C keep-alive connections each `GET` `--load-path` over and over (with
//! `--load-header`, e.g. `Accept-Encoding: gzip`), and one more connection
//! `GET`s `--probe-path` every few milliseconds and times each answer.
//!
//! It answers "does one kind of request hold up the others?": a server
//! that does slow work on its event loop (compressing a large file, say)
//! makes the probe wait for it. Reports the probe's p50/p99/max latency
//! and the load's responses per second.

use clap::Parser;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use torsion_bench::{quantile, report};

/// Measures the latency of a small request under load. Prints one
/// `RESULT key=value ...` line; stops by itself after --duration.
#[derive(Parser, Debug)]
struct Args {
    /// The server, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// The path the load fetches; `{n}` in it stands for 0 to
    /// --load-files - 1, taken in turn (to ask for more files than a
    /// server's cache holds).
    #[arg(long, default_value = "/big.txt")]
    load_path: String,
    /// How many files `{n}` ranges over.
    #[arg(long, default_value_t = 1)]
    load_files: usize,
    /// A header line the load sends (`Name: value`); repeatable.
    #[arg(long)]
    load_header: Vec<String>,
    /// Load connections (one thread each).
    #[arg(long, short = 'c', default_value_t = 20)]
    connections: usize,
    /// The path the probe fetches.
    #[arg(long, default_value = "/empty.txt")]
    probe_path: String,
    /// Milliseconds between probes.
    #[arg(long, default_value_t = 5)]
    interval_ms: u64,
    /// Seconds of load.
    #[arg(long, short = 'd', default_value_t = 5.0)]
    duration: f64,
}

/// Sends `request` on `s` and reads one response with a `Content-Length`
/// body, reusing `buf`. `Err` on any failure or a status other than 200.
fn fetch(s: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> std::io::Result<()> {
    let bad = |m: &str| std::io::Error::other(m.to_string());
    s.write_all(request)?;
    buf.clear();
    let mut chunk = vec![0u8; 256 * 1024];
    let (body_start, len) = loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(bad("not 200"));
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| bad("no content-length"))?;
            break (end + 4, len);
        }
    };
    let mut got = buf.len() - body_start;
    while got < len {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("closed mid-body"));
        }
        got += n;
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let headers: String = args
        .load_header
        .iter()
        .map(|h| format!("{h}\r\n"))
        .collect();
    let loads: Vec<Vec<u8>> = (0..args.load_files.max(1))
        .map(|n| {
            let path = args.load_path.replace("{n}", &n.to_string());
            format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\n{headers}\r\n",
                args.addr
            )
            .into_bytes()
        })
        .collect();
    let probe = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        args.probe_path, args.addr
    )
    .into_bytes();
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let responses = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let loaders: Vec<_> = (0..args.connections)
        .map(|k| {
            let (loads, addr) = (loads.clone(), args.addr);
            let (responses, errors) = (responses.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                // Each connection starts at another file.
                let mut next = k * 7;
                while Instant::now() < deadline {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    while Instant::now() < deadline {
                        next += 1;
                        if fetch(&mut s, &loads[next % loads.len()], &mut buf).is_err() {
                            errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        responses.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // Let the load start before timing the probe.
    std::thread::sleep(Duration::from_millis(200));
    let mut latencies_us = Vec::new();
    let mut probe_errors = 0u64;
    let mut buf = Vec::new();
    let mut conn: Option<TcpStream> = None;
    while Instant::now() < deadline {
        let s = match conn.as_mut() {
            Some(s) => s,
            None => match TcpStream::connect(args.addr) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = s.set_nodelay(true);
                    conn.insert(s)
                }
                Err(_) => {
                    probe_errors += 1;
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let start = Instant::now();
        match fetch(s, &probe, &mut buf) {
            Ok(()) => latencies_us.push(start.elapsed().as_micros() as u64),
            Err(_) => {
                probe_errors += 1;
                conn = None;
            }
        }
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
    let elapsed = args.duration - 0.2;
    for t in loaders {
        let _ = t.join();
    }
    latencies_us.sort_unstable();
    let ms = |q: f64| quantile(&latencies_us, q) as f64 / 1000.0;
    report(&[
        ("probes", latencies_us.len() as f64),
        ("probe_p50_ms", ms(0.5)),
        ("probe_p99_ms", ms(0.99)),
        (
            "probe_max_ms",
            latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        ),
        ("probe_errors", probe_errors as f64),
        (
            "load_responses_per_s",
            responses.load(Ordering::Relaxed) as f64 / elapsed,
        ),
        ("load_errors", errors.load(Ordering::Relaxed) as f64),
    ]);
}
