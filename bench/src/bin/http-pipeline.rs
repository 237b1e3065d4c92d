//! A cheap HTTP/1.1 load: C keep-alive connections, each sending DEPTH
//! pipelined GETs of one path in one write, waiting for all DEPTH
//! responses, and sending the next batch, for D seconds.
//!
//! It exists to measure a server that has more cores than the load could
//! otherwise leave it (`--workers` on a 2-core machine): instead of
//! parsing every response as wrk does, it learns the length of the
//! response once (every response to the same static file is the same
//! length: the `Date` value has a fixed width) and then only counts
//! bytes, checking that each batch's first response starts with
//! `HTTP/1.1 200`. One thread drives every connection on a bare mio loop.
//! It reports requests/s and its own CPU time, so the share of the
//! machine the load took is known.

use clap::Parser;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use torsion_bench::report;

/// Pipelined keep-alive GETs of one path; prints one `RESULT` line.
#[derive(Parser, Debug)]
struct Args {
    /// The server, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// The path to GET; every response to it must be the same length.
    #[arg(long, default_value = "/")]
    path: String,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 100)]
    connections: usize,
    /// Requests sent together on a connection before reading responses.
    #[arg(long, default_value_t = 16)]
    depth: usize,
    /// Seconds of load.
    #[arg(long, short = 'd', default_value_t = 3.0)]
    duration: f64,
}

/// The length of one whole response: head plus `Content-Length` body.
fn response_length(addr: SocketAddr, request: &[u8]) -> std::io::Result<usize> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            return Err(std::io::Error::other(format!("not a 200: {head}")));
        }
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or_else(|| std::io::Error::other("no Content-Length"))?;
        return Ok(end + 4 + len);
    }
}

struct Conn {
    stream: mio::net::TcpStream,
    /// Bytes of the current batch received.
    got: usize,
    /// Whether the next read starts a batch (to check its status line).
    batch_start: bool,
    done: u64,
}

fn main() -> std::io::Result<()> {
    use mio::{Events, Poll};
    let args = Args::parse();
    let one = format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", args.path, args.addr);
    let per_response = response_length(args.addr, one.as_bytes())?;
    let batch_request = one.repeat(args.depth).into_bytes();
    let batch_len = per_response * args.depth;

    let mut poll = Poll::new()?;
    let mut conns: Vec<Conn> = torsion_bench::connect_mio(&poll, args.addr, args.connections)?
        .into_iter()
        .map(|stream| Conn {
            stream,
            got: 0,
            batch_start: true,
            done: 0,
        })
        .collect();
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    for c in conns.iter_mut() {
        c.stream.write_all(&batch_request)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut open = conns.len();
    while open > 0 && Instant::now() < deadline + Duration::from_secs(5) {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            while let Some(n) = torsion_bench::read_some(&mut c.stream, &mut buf)? {
                if c.batch_start && !buf[..n].starts_with(b"HTTP/1.1 200") {
                    return Err(std::io::Error::other(format!(
                        "a batch began with {:?}",
                        String::from_utf8_lossy(&buf[..n.min(40)])
                    )));
                }
                c.batch_start = false;
                c.got += n;
                if c.got > batch_len {
                    return Err(std::io::Error::other("more bytes than the batch asked"));
                }
                if c.got < batch_len {
                    continue;
                }
                c.got = 0;
                c.done += args.depth as u64;
                if Instant::now() >= deadline {
                    open -= 1;
                    break;
                }
                c.batch_start = true;
                c.stream.write_all(&batch_request)?;
                break;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total: u64 = conns.iter().map(|c| c.done).sum();
    report(&[
        ("ops", total as f64),
        ("secs", elapsed),
        ("req_per_s", total as f64 / elapsed),
        ("response_bytes", per_response as f64),
        ("load_cpu_s", own_cpu_seconds()),
    ]);
    Ok(())
}

/// This process's user+system CPU time, from `/proc/self/stat`.
fn own_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) in parens.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 (the state, field 3, is first
    // after the name).
    (ticks(11) + ticks(12)) / 100.0
}
