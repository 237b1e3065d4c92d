//! Load generator for line-broadcast chat servers: K subscribers and one
//! publisher join the room; the publisher sends lines for D seconds and
//! every client (the publisher too, since a chat room echoes to its
//! sender) counts the lines it receives. Reports delivered lines/s.
//!
//! The publisher is windowed: it keeps at most W of its own lines in
//! flight (sent and not yet seen back), so the server never has to buffer
//! without bound and no client is ever dropped for reading too slowly.
//! With 100 subscribers the clients' reading, on one core, limits the
//! rate; the figure to compare is the server's CPU per delivered line.

use clap::Parser;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::LocalSet;
use torsion_bench::{report, runtime};

/// Measures a chat server's fan-out: delivered lines/s with K subscribers
/// and one windowed publisher. Prints one `RESULT key=value ...` line;
/// stops by itself after --duration (plus at most 5 s to drain).
#[derive(Parser, Debug)]
struct Args {
    /// The server, e.g. 127.0.0.1:8001.
    #[arg(long)]
    addr: SocketAddr,
    /// Subscribers (clients that only read).
    #[arg(long, short = 'k', default_value_t = 100)]
    subscribers: usize,
    /// Seconds of load.
    #[arg(long, short = 'd', default_value_t = 3.0)]
    duration: f64,
    /// The publisher's lines in flight.
    #[arg(long, short = 'w', default_value_t = 32)]
    window: u64,
    /// Bytes per published line, CRLF included.
    #[arg(long, default_value_t = 32)]
    line: usize,
}

/// Counts the lines `s` delivers into `count` until end of file, an
/// error, or `stop`.
async fn count_lines(
    mut s: tokio::net::tcp::OwnedReadHalf,
    count: Rc<Cell<u64>>,
    stop: Instant,
    notify: Option<Rc<Notify>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        if now >= stop {
            return;
        }
        match tokio::time::timeout(stop - now, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                let lines = memchr_count(&buf[..n]);
                count.set(count.get() + lines);
                if let Some(n) = &notify {
                    n.notify_one();
                }
            }
            _ => return,
        }
    }
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let rt = runtime(1)?;
    LocalSet::new().block_on(&rt, run(args))
}

async fn run(args: Args) -> std::io::Result<()> {
    let duration = Duration::from_secs_f64(args.duration);
    let hard_stop = Instant::now() + duration + Duration::from_secs(8);
    // Join everyone first, then let the join announcements settle.
    let mut counters = Vec::new();
    let mut readers = Vec::new();
    let mut write_halves = Vec::new();
    for _ in 0..args.subscribers {
        let s = TcpStream::connect(args.addr).await?;
        s.set_nodelay(true)?;
        let (rd, wr) = s.into_split();
        let c = Rc::new(Cell::new(0));
        counters.push(c.clone());
        readers.push(tokio::task::spawn_local(count_lines(
            rd, c, hard_stop, None,
        )));
        write_halves.push(wr); // subscribers never write; keep them open
    }
    let publisher = TcpStream::connect(args.addr).await?;
    publisher.set_nodelay(true)?;
    let (prd, mut pwr) = publisher.into_split();
    let own = Rc::new(Cell::new(0));
    let progress = Rc::new(Notify::new());
    readers.push(tokio::task::spawn_local(count_lines(
        prd,
        own.clone(),
        hard_stop,
        Some(progress.clone()),
    )));
    // Wait until every client has been welcomed and has seen the
    // publisher join.
    let settle = Instant::now() + Duration::from_secs(5);
    while Instant::now() < settle && (own.get() < 1 || counters.iter().any(|c| c.get() < 2)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let base: u64 = counters.iter().map(|c| c.get()).sum::<u64>() + own.get();
    let own_base = own.get();

    // CRLF, which every chat server here takes (torsion's also takes a
    // bare LF), so the load is the same for all of them.
    let mut payload = vec![b'm'; args.line.max(3) - 2];
    payload.extend_from_slice(b"\r\n");
    let start = Instant::now();
    let deadline = start + duration;
    let mut sent = 0u64;
    while Instant::now() < deadline {
        let seen = own.get() - own_base;
        if sent - seen < args.window {
            pwr.write_all(&payload).await?;
            sent += 1;
        } else {
            // Wait for our own lines to come back (bounded by the deadline).
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left, progress.notified()).await;
        }
    }
    // Let the last lines arrive everywhere (bounded).
    let drain = Instant::now() + Duration::from_secs(2);
    while own.get() - own_base < sent && Instant::now() < drain {
        let _ = tokio::time::timeout(Duration::from_millis(10), progress.notified()).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let delivered: u64 = counters.iter().map(|c| c.get()).sum::<u64>() + own.get() - base;
    for r in readers {
        r.abort();
    }
    drop(write_halves);
    report(&[
        ("ops", delivered as f64),
        ("published", sent as f64),
        ("secs", elapsed),
        ("lines_per_s", delivered as f64 / elapsed),
        ("clients", (args.subscribers + 1) as f64),
    ]);
    Ok(())
}
