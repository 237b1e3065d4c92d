//! Load generator for echo servers (RFC 862).
//!
//! * `pingpong`: C connections each send an S-byte message, wait for all S
//!   bytes to come back, and send the next, for D seconds. Reports
//!   messages/s, MB/s (one direction) and the p50/p99 round-trip latency.
//! * `stream`: one connection writes 64 KiB blocks as fast as the server
//!   takes them while reading the echo back (full duplex) for D seconds.
//!   Reports MB/s echoed.
//!
//! One thread drives all the connections: ping-pong on a bare mio loop
//! (the fewest system calls per message, so the client core keeps up with
//! the server core), streaming on a current-thread Tokio runtime.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use torsion_bench::{quantile, report, runtime};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Request/response: send a message, wait for its echo, repeat.
    Pingpong,
    /// One connection, 64 KiB blocks, full duplex.
    Stream,
}

/// Measures an echo server: messages/s, MB/s and p50/p99 latency
/// (pingpong), or MB/s of full-duplex 64 KiB blocks (stream). Prints one
/// `RESULT key=value ...` line; every run stops by itself after
/// --duration (plus at most 5 s to drain).
#[derive(Parser, Debug)]
struct Args {
    /// The server, e.g. 127.0.0.1:7007.
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, value_enum, default_value = "pingpong")]
    mode: Mode,
    /// Connections (pingpong).
    #[arg(long, short = 'c', default_value_t = 100)]
    connections: usize,
    /// Message size in bytes (pingpong) or block size (stream).
    #[arg(long, short = 's', default_value_t = 64)]
    size: usize,
    /// Seconds of load.
    #[arg(long, short = 'd', default_value_t = 3.0)]
    duration: f64,
    /// Latency samples kept (the rest are counted only).
    #[arg(long, default_value_t = 4_000_000)]
    max_samples: usize,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    match args.mode {
        Mode::Pingpong => pingpong(&args),
        Mode::Stream => runtime(1)?.block_on(stream(&args)),
    }
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One ping-pong connection of the mio-driven load.
struct Conn {
    stream: mio::net::TcpStream,
    /// Bytes of the current echo received so far.
    got: usize,
    sent_at: Instant,
    count: u64,
}

/// Ping-pong on a hand-driven mio loop: per message one `write` and one
/// `read` (plus a share of one `epoll_wait`), about what the server
/// itself needs, so one client core keeps one server core busy.
fn pingpong(args: &Args) -> std::io::Result<()> {
    use mio::{Events, Poll};
    use std::io::Write;

    let mut poll = Poll::new()?;
    let mut conns: Vec<Conn> = torsion_bench::connect_mio(&poll, args.addr, args.connections)?
        .into_iter()
        .map(|stream| Conn {
            stream,
            got: 0,
            sent_at: Instant::now(),
            count: 0,
        })
        .collect();
    let msg = vec![b'x'; args.size];
    let mut buf = vec![0u8; args.size.max(64 * 1024)];
    let mut samples: Vec<u64> = Vec::with_capacity(args.max_samples.min(4 << 20));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    for c in conns.iter_mut() {
        c.sent_at = Instant::now();
        c.stream.write_all(&msg)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut open = conns.len();
    while open > 0 {
        let now = Instant::now();
        // A little past the deadline to collect the echoes in flight.
        if now >= deadline + Duration::from_millis(500) {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            while let Some(n) = torsion_bench::read_some(&mut c.stream, &mut buf)? {
                c.got += n;
                if c.got < args.size {
                    continue; // part of the echo: read on until it blocks
                }
                // One whole echo back (the server never sends more).
                c.got -= args.size;
                c.count += 1;
                let now = Instant::now();
                if samples.len() < args.max_samples {
                    samples.push((now - c.sent_at).as_nanos() as u64);
                }
                if now >= deadline {
                    open -= 1;
                    break;
                }
                c.sent_at = now;
                c.stream.write_all(&msg)?;
                // The next echo brings a new readiness edge; short reads
                // need no extra read that would only say WouldBlock.
                if n < buf.len() {
                    break;
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total: u64 = conns.iter().map(|c| c.count).sum();
    samples.sort_unstable();
    let mps = total as f64 / elapsed;
    report(&[
        ("ops", total as f64),
        ("secs", elapsed),
        ("msgs_per_s", mps),
        ("mb_per_s", mps * args.size as f64 / 1e6),
        ("p50_us", quantile(&samples, 0.50) as f64 / 1e3),
        ("p99_us", quantile(&samples, 0.99) as f64 / 1e3),
    ]);
    Ok(())
}

async fn stream(args: &Args) -> std::io::Result<()> {
    let size = if args.size < 1024 {
        64 * 1024
    } else {
        args.size
    };
    let s = connect(args.addr).await?;
    let (mut rd, mut wr) = s.into_split();
    let duration = Duration::from_secs_f64(args.duration);
    let start = Instant::now();
    let deadline = start + duration;
    let writer = tokio::spawn(async move {
        let block = vec![b'y'; size];
        let mut sent = 0u64;
        while Instant::now() < deadline {
            wr.write_all(&block).await?;
            sent += block.len() as u64;
        }
        wr.shutdown().await?;
        Ok::<_, std::io::Error>(sent)
    });
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    let mut at_deadline = None;
    let hard_stop = deadline + Duration::from_secs(5);
    loop {
        let now = Instant::now();
        if now >= hard_stop {
            break;
        }
        match tokio::time::timeout(hard_stop - now, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => received += n as u64,
            Ok(Err(e)) => return Err(e),
        }
        if at_deadline.is_none() && Instant::now() >= deadline {
            at_deadline = Some((received, start.elapsed().as_secs_f64()));
        }
    }
    let sent = writer.await.map_err(std::io::Error::other)??;
    // Throughput over the timed window: what came back by the deadline.
    let (window_bytes, window_secs) =
        at_deadline.unwrap_or((received, start.elapsed().as_secs_f64()));
    report(&[
        ("ops", received as f64 / size as f64),
        ("sent_bytes", sent as f64),
        ("echoed_bytes", received as f64),
        ("secs", window_secs),
        ("mb_per_s", window_bytes as f64 / window_secs / 1e6),
    ]);
    Ok(())
}
