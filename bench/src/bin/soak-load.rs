//! The soak load: drives `torsion web`, `echo`, `chat` and `portforward`
//! at once for a set time with a mix of clients, samples each server's
//! RSS, descriptors and CPU time every second into a CSV, and at the end
//! checks that memory and descriptors stayed flat and that nothing was
//! lost. `bench/soak.sh` starts the servers, runs this and plots the CSV.
//!
//! The clients, per server, picked at random by each of `--workers` loops
//! (with a pause of 5–40 ms between two clients), plus `--long-lived`
//! loops of connections that stay 20–90 s:
//!
//! * echo and portforward (to an echo backend): short exchanges (send,
//!   read the same bytes back), bursts of twenty short connections,
//!   half-closes (send, shut the write side, read everything and then end
//!   of file), resets (SO_LINGER 0) in the middle of a transfer of up to
//!   1 MiB, stalls (connect, say nothing for 1–8 s), clients that send and
//!   never read for 2–12 s (the server must stop reading from them: if it
//!   takes 256 MiB it has no backpressure), connect-and-close;
//! * web: `Connection: close` GETs, bursts of twenty of them, keep-alive
//!   sequences with byte ranges, pipelined GETs, request heads that stall
//!   half-way for 1–8 s, a half-close after the request, resets in the
//!   middle of a 4 MiB body, clients that pipeline 4 MiB GETs and never
//!   read;
//! * chat: `--readers` readers that join first and read everything to
//!   the end; publishers whose lines come back to them (a line counts as
//!   sent once its sender saw it), some closing, some half-closing;
//!   bursts of ten joins; lurkers; publishers that reset; clients that
//!   send 900-byte lines and never read (the room may drop them: that is
//!   its `--max-buffer`).
//!
//! Nothing is lost means: every echoed byte came back byte-exact, every
//! HTTP response was complete and equal to the file (or its range), every
//! confirmed chat line reached every reader (count and a sum of the line
//! ids), and no reader was dropped. Every loop stops at `--duration`;
//! every client step is bounded by a 30 s timeout; the program ends by
//! itself.

use clap::Parser;
use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::BufReader;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::LocalSet;
use tokio::time::{sleep, timeout};
use torsion_bench::{median, procfs, runtime};

/// Runs the soak load against four servers and samples them every
/// second. Exits 0 when memory and descriptors stayed flat and nothing
/// was lost, 1 otherwise.
#[derive(Parser, Debug)]
struct Args {
    /// The `torsion echo` server.
    #[arg(long)]
    echo: SocketAddr,
    /// The `torsion chat` server.
    #[arg(long)]
    chat: SocketAddr,
    /// The `torsion web` server.
    #[arg(long)]
    web: SocketAddr,
    /// The `torsion portforward` server (forwarding to an echo server).
    #[arg(long)]
    portforward: SocketAddr,
    /// The directory `torsion web` serves; the load writes its files there.
    #[arg(long)]
    web_root: PathBuf,
    /// A process to sample, as NAME=PID; repeat. Names `echo`, `chat`,
    /// `web` and `portforward` are matched with their load.
    #[arg(long = "pid", value_parser = parse_pid, required = true)]
    pids: Vec<(String, u32)>,
    /// Seconds of load.
    #[arg(long, default_value_t = 600.0)]
    duration: f64,
    /// Seconds of idle sampling before the load.
    #[arg(long, default_value_t = 3.0)]
    idle: f64,
    /// Loops of short-lived clients per server.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Loops of long-lived connections per server.
    #[arg(long, default_value_t = 3)]
    long_lived: usize,
    /// Chat readers that stay from start to end.
    #[arg(long, default_value_t = 4)]
    readers: usize,
    /// Where to write the samples.
    #[arg(long)]
    csv: PathBuf,
    /// Where to write the summary (Markdown) as well as printing it.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Seed of the clients' choices and payloads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("expected NAME=PID")?;
    let pid = pid.parse().map_err(|e| format!("bad pid '{pid}': {e}"))?;
    Ok((name.to_string(), pid))
}

/// Every client step (connect, an exchange, a response) ends within this.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// A client that never reads and still got this much into the server
/// shows the server has no backpressure. More than the socket buffers on
/// the path can hold: through portforward there are four sockets each way,
/// and Linux lets a receive buffer grow to `tcp_rmem`'s maximum (32 MiB on
/// the bench machine) and a send buffer to `tcp_wmem`'s (4 MiB); the
/// soaks here saw at most 50 MiB. A server that keeps reading reaches it
/// within a second on loopback.
const NEVER_READ_CAP: u64 = 256 << 20;

/// What the clients of one server did; atomics because the sampler thread
/// reads `conns`.
#[derive(Default)]
struct Stats {
    conns: AtomicU64,
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    lost: AtomicU64,
    /// The most a never-reading client got into the server.
    max_unread: AtomicU64,
    /// Never-reading chat clients the room dropped.
    dropped: AtomicU64,
    kinds: Mutex<BTreeMap<&'static str, u64>>,
    failures: Mutex<Vec<String>>,
}

impl Stats {
    fn record(&self, name: &str, kind: &'static str, result: Result<(), String>) {
        *self.kinds.lock().unwrap().entry(kind).or_default() += 1;
        if let Err(why) = result {
            self.fail(name, kind, &why);
        }
    }

    fn fail(&self, name: &str, kind: &str, why: &str) {
        let n = self.lost.fetch_add(1, Relaxed);
        let msg = format!("{name}/{kind}: {why}");
        if n < 20 {
            eprintln!("LOST {msg}");
            self.failures.lock().unwrap().push(msg);
        }
    }
}

/// xorshift64*: payloads and choices, reproducible from `--seed`.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// Random bytes, between `lo` and `hi` of them.
    fn payload(&mut self, lo: u64, hi: u64) -> Vec<u8> {
        let n = self.range(lo, hi) as usize;
        self.bytes(n)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

async fn connect(addr: SocketAddr, st: &Stats) -> Result<TcpStream, String> {
    let s = timeout(OP_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_nodelay(true);
    st.conns.fetch_add(1, Relaxed);
    Ok(s)
}

/// Closes with a reset: SO_LINGER 0, then close.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

/// A connection as the web and chat clients use it: a buffered read
/// half and a write half.
type Halves = (BufReader<OwnedReadHalf>, OwnedWriteHalf);

/// Connects, and splits the stream into [`Halves`].
async fn connect_halves(addr: SocketAddr, st: &Stats) -> Result<Halves, String> {
    let (rd, wr) = connect(addr, st).await?.into_split();
    Ok((BufReader::new(rd), wr))
}

/// Puts the halves together again and closes with a reset.
fn reset_halves((rd, wr): Halves) {
    if let Ok(s) = rd.into_inner().reunite(wr) {
        reset(s);
    }
}

/// A long-lived client of the web or chat server: connects, then until
/// a random end 20–90 s on (never past `deadline`) takes a `step` and
/// pauses between `pause_ms.0` and `pause_ms.1` ms.
async fn stay(
    addr: SocketAddr,
    st: &Stats,
    rng: &mut Rng,
    deadline: Instant,
    pause_ms: (u64, u64),
    mut step: impl AsyncFnMut(&mut Halves, &mut Rng) -> Result<(), String>,
) -> Result<(), String> {
    let mut halves = connect_halves(addr, st).await?;
    let end = deadline.min(Instant::now() + rng.ms(20_000, 90_000));
    while Instant::now() < end {
        step(&mut halves, rng).await?;
        sleep(rng.ms(pause_ms.0, pause_ms.1)).await;
    }
    Ok(())
}

/// Leaves as a client at random does: half of the time with a reset,
/// else with a plain close.
fn leave(rng: &mut Rng, halves: Halves) -> Result<(), String> {
    if rng.chance(50) {
        reset_halves(halves);
    }
    Ok(())
}

async fn bounded<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Result<(), String> {
    timeout(OP_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

async fn write_counted<W: AsyncWrite + Unpin>(
    w: &mut W,
    data: &[u8],
    st: &Stats,
) -> Result<(), String> {
    for chunk in data.chunks(16 * 1024) {
        w.write_all(chunk)
            .await
            .map_err(|e| format!("write: {e}"))?;
        st.bytes_out.fetch_add(chunk.len() as u64, Relaxed);
    }
    Ok(())
}

/// Reads exactly `want.len()` bytes and checks they are `want`.
async fn read_expect<R: AsyncRead + Unpin>(
    r: &mut R,
    want: &[u8],
    st: &Stats,
) -> Result<(), String> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    while at < want.len() {
        let room = (want.len() - at).min(buf.len());
        let n = r
            .read(&mut buf[..room])
            .await
            .map_err(|e| format!("read after {at} of {} bytes: {e}", want.len()))?;
        if n == 0 {
            return Err(format!("end of stream after {at} of {} bytes", want.len()));
        }
        if buf[..n] != want[at..at + n] {
            return Err(format!("bytes differ in {at}..{}", at + n));
        }
        at += n;
        st.bytes_in.fetch_add(n as u64, Relaxed);
    }
    Ok(())
}

async fn expect_eof<R: AsyncRead + Unpin>(r: &mut R) -> Result<(), String> {
    let mut b = [0u8; 1];
    match r.read(&mut b).await {
        Ok(0) => Ok(()),
        Ok(_) => Err("bytes after the end".into()),
        Err(e) => Err(format!("{e} instead of end of stream")),
    }
}

/// Sends `payload` while reading it back; with `half_close`, shuts the
/// write side after it and expects end of file after the echo.
async fn exchange(
    s: &mut TcpStream,
    payload: &[u8],
    half_close: bool,
    st: &Stats,
) -> Result<(), String> {
    let (mut rd, mut wr) = s.split();
    let w = async {
        write_counted(&mut wr, payload, st).await?;
        if half_close {
            wr.shutdown().await.map_err(|e| format!("shutdown: {e}"))?;
        }
        Ok::<(), String>(())
    };
    let r = async {
        read_expect(&mut rd, payload, st).await?;
        if half_close {
            expect_eof(&mut rd).await?;
        }
        Ok(())
    };
    let (a, b) = tokio::join!(w, r);
    a.and(b)
}

/// Writes for `hold` without reading; returns what the peer took.
async fn write_never_read(
    s: &mut TcpStream,
    chunk: &[u8],
    hold: Duration,
    st: &Stats,
) -> Result<u64, String> {
    let end = Instant::now() + hold;
    let mut accepted = 0u64;
    while accepted < NEVER_READ_CAP {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match timeout(left, s.write(chunk)).await {
            Ok(Ok(n)) => accepted += n as u64,
            Ok(Err(e)) => return Err(format!("write: {e}")),
            Err(_) => break,
        }
    }
    st.bytes_out.fetch_add(accepted, Relaxed);
    st.max_unread.fetch_max(accepted, Relaxed);
    if accepted >= NEVER_READ_CAP {
        return Err(format!(
            "took {accepted} bytes from a client that never reads: no backpressure"
        ));
    }
    Ok(accepted)
}

// ---------------------------------------------------------------- echo

/// One short-lived client of an echo server (`torsion echo`, or
/// `torsion portforward` in front of one).
async fn echo_once(
    addr: SocketAddr,
    st: &Stats,
    rng: &mut Rng,
) -> (&'static str, Result<(), String>) {
    let roll = rng.below(100);
    let kind = match roll {
        0..=24 => "short",
        25..=39 => "burst",
        40..=57 => "half-close",
        58..=69 => "reset-mid",
        70..=79 => "stall",
        80..=84 => "never-read",
        _ => "connect-close",
    };
    let r = async {
        if kind == "burst" {
            // Twenty short connections in a row.
            for _ in 0..20 {
                let mut s = connect(addr, st).await?;
                let p = rng.payload(1, 1024);
                bounded(exchange(&mut s, &p, false, st)).await?;
            }
            return Ok(());
        }
        let mut s = connect(addr, st).await?;
        match kind {
            "short" => {
                let p = rng.payload(1, 32 * 1024);
                bounded(exchange(&mut s, &p, false, st)).await
            }
            "half-close" => {
                let p = rng.payload(0, 256 * 1024);
                bounded(exchange(&mut s, &p, true, st)).await
            }
            "reset-mid" => {
                let p = rng.payload(64 * 1024, 1 << 20);
                let cut = rng.range(1, p.len() as u64 - 1) as usize;
                let res = bounded(async {
                    let (mut rd, mut wr) = s.split();
                    let w = write_counted(&mut wr, &p, st);
                    let r = read_expect(&mut rd, &p[..cut], st);
                    tokio::pin!(w, r);
                    let mut written = false;
                    loop {
                        tokio::select! {
                            res = &mut r => return res,
                            res = &mut w, if !written => { written = true; res?; }
                        }
                    }
                })
                .await;
                reset(s);
                res
            }
            "stall" => {
                sleep(rng.ms(1000, 8000)).await;
                if rng.chance(50) {
                    let p = rng.payload(1, 4096);
                    bounded(exchange(&mut s, &p, rng.chance(50), st)).await
                } else {
                    Ok(())
                }
            }
            "never-read" => {
                let chunk = rng.bytes(64 * 1024);
                let hold = rng.ms(2000, 12000);
                write_never_read(&mut s, &chunk, hold, st).await?;
                if rng.chance(50) {
                    reset(s);
                }
                Ok(())
            }
            _ => {
                if rng.chance(50) {
                    reset(s);
                }
                Ok(())
            }
        }
    }
    .await;
    (kind, r)
}

/// A connection that stays up to 90 s, exchanging a few KiB every
/// 0.1–1 s, and ends with a half-close.
async fn echo_long(
    addr: SocketAddr,
    st: &Stats,
    rng: &mut Rng,
    deadline: Instant,
) -> Result<(), String> {
    let mut s = connect(addr, st).await?;
    let end = deadline.min(Instant::now() + rng.ms(20_000, 90_000));
    while Instant::now() < end {
        let p = rng.payload(1, 4096);
        bounded(exchange(&mut s, &p, false, st)).await?;
        sleep(rng.ms(100, 1000)).await;
    }
    let p = rng.payload(1, 4096);
    bounded(exchange(&mut s, &p, true, st)).await
}

// ---------------------------------------------------------------- web

/// The files the web load asks for, with their contents.
struct Files(Vec<(&'static str, Vec<u8>)>);

impl Files {
    fn make(root: &std::path::Path, rng: &mut Rng) -> std::io::Result<Files> {
        let text: Vec<u8> = (0..1000)
            .map(|i| b"abcdefghijklmnopqrstuvwxyz\n"[i % 27])
            .collect();
        let files = vec![
            ("empty", Vec::new()),
            ("small.txt", text),
            ("mid.bin", rng.bytes(100 * 1024)),
            ("big.bin", rng.bytes(4 << 20)),
        ];
        for (name, body) in &files {
            std::fs::write(root.join(name), body)?;
        }
        Ok(Files(files))
    }

    /// A file that is not the 4 MiB one, or any file with `big`.
    fn pick(&self, rng: &mut Rng, big: bool) -> usize {
        rng.below(if big { 4 } else { 3 }) as usize
    }
}

/// A GET (and what it must answer): a file, maybe a byte range of it.
struct Get {
    file: usize,
    range: Option<(usize, usize)>,
}

impl Get {
    fn random(files: &Files, rng: &mut Rng, big: bool) -> Get {
        let file = files.pick(rng, big);
        let len = files.0[file].1.len();
        let range = if len > 2 && rng.chance(30) {
            let a = rng.below(len as u64 - 1) as usize;
            let b = rng.range(a as u64, len as u64 - 1) as usize;
            Some((a, b))
        } else {
            None
        };
        Get { file, range }
    }

    fn request(&self, files: &Files, close: bool) -> String {
        let mut r = format!("GET /{} HTTP/1.1\r\nHost: soak\r\n", files.0[self.file].0);
        if let Some((a, b)) = self.range {
            let _ = write!(r, "Range: bytes={a}-{b}\r\n");
        }
        if close {
            r.push_str("Connection: close\r\n");
        }
        r.push_str("\r\n");
        r
    }

    /// Sends the request and checks the answer; with `close`, asks for
    /// `Connection: close` and expects the end of stream after it.
    async fn ask<R: AsyncBufRead + Unpin, W: AsyncWrite + Unpin>(
        &self,
        rd: &mut R,
        wr: &mut W,
        files: &Files,
        st: &Stats,
        close: bool,
    ) -> Result<(), String> {
        write_counted(wr, self.request(files, close).as_bytes(), st).await?;
        self.check(rd, files, st).await?;
        if close {
            expect_eof(rd).await
        } else {
            Ok(())
        }
    }

    /// Reads one response and checks it against the file.
    async fn check<R: AsyncBufRead + Unpin>(
        &self,
        r: &mut R,
        files: &Files,
        st: &Stats,
    ) -> Result<(), String> {
        let (status, length) = read_head(r).await?;
        let file = &files.0[self.file].1;
        let (want_status, want) = match self.range {
            None => (200, &file[..]),
            Some((a, b)) => (206, &file[a..=b]),
        };
        if status != want_status {
            return Err(format!(
                "status {status}, not {want_status}, for /{}",
                files.0[self.file].0
            ));
        }
        if length != Some(want.len()) {
            return Err(format!("Content-Length {length:?}, not {}", want.len()));
        }
        read_expect(r, want, st).await
    }
}

/// Reads a response head: the status and the Content-Length.
async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<(u16, Option<usize>), String> {
    let mut line = Vec::new();
    let mut status = None;
    let mut length = None;
    let mut total = 0;
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| format!("reading the head: {e}"))?;
        total += n;
        if n == 0 {
            return Err("end of stream in the response head".into());
        }
        if total > 16 * 1024 {
            return Err("response head over 16 KiB".into());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if status.is_none() {
            let code = text
                .strip_prefix("HTTP/1.1 ")
                .and_then(|t| t.get(..3))
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("bad status line {text:?}"))?;
            status = Some(code);
        } else if text.is_empty() {
            return Ok((status.unwrap_or(0), length));
        } else if let Some((k, v)) = text.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok();
            }
        }
    }
}

async fn web_once(
    addr: SocketAddr,
    files: &Files,
    st: &Stats,
    rng: &mut Rng,
) -> (&'static str, Result<(), String>) {
    let kind = match rng.below(100) {
        0..=19 => "close",
        20..=29 => "burst",
        30..=47 => "keep-alive",
        48..=59 => "pipeline",
        60..=69 => "stall-head",
        70..=77 => "half-close",
        78..=87 => "reset-mid",
        88..=92 => "never-read",
        _ => "connect-close",
    };
    let r = async {
        if kind == "burst" {
            // Twenty `Connection: close` GETs of small files in a row.
            for _ in 0..20 {
                let (mut rd, mut wr) = connect_halves(addr, st).await?;
                let g = Get {
                    file: rng.below(2) as usize,
                    range: None,
                };
                bounded(g.ask(&mut rd, &mut wr, files, st, true)).await?;
            }
            return Ok(());
        }
        let (mut rd, mut wr) = connect_halves(addr, st).await?;
        match kind {
            "close" => {
                let g = Get::random(files, rng, true);
                bounded(g.ask(&mut rd, &mut wr, files, st, true)).await
            }
            "keep-alive" => {
                for _ in 0..rng.range(2, 10) {
                    let big = rng.chance(20);
                    let g = Get::random(files, rng, big);
                    bounded(g.ask(&mut rd, &mut wr, files, st, false)).await?;
                }
                Ok(())
            }
            "pipeline" => {
                let gets: Vec<Get> = (0..rng.range(2, 8))
                    .map(|_| Get::random(files, rng, false))
                    .collect();
                let all: String = gets.iter().map(|g| g.request(files, false)).collect();
                bounded(async {
                    write_counted(&mut wr, all.as_bytes(), st).await?;
                    for g in &gets {
                        g.check(&mut rd, files, st).await?;
                    }
                    Ok(())
                })
                .await
            }
            "stall-head" => {
                let g = Get::random(files, rng, false);
                let req = g.request(files, false);
                let cut = rng.range(1, req.len() as u64 - 1) as usize;
                write_counted(&mut wr, &req.as_bytes()[..cut], st).await?;
                sleep(rng.ms(1000, 8000)).await;
                bounded(async {
                    write_counted(&mut wr, &req.as_bytes()[cut..], st).await?;
                    g.check(&mut rd, files, st).await
                })
                .await
            }
            "half-close" => {
                let g = Get::random(files, rng, true);
                bounded(async {
                    write_counted(&mut wr, g.request(files, false).as_bytes(), st).await?;
                    wr.shutdown().await.map_err(|e| format!("shutdown: {e}"))?;
                    g.check(&mut rd, files, st).await?;
                    expect_eof(&mut rd).await
                })
                .await
            }
            "reset-mid" => {
                let g = Get {
                    file: 3,
                    range: None,
                };
                let len = files.0[3].1.len();
                let cut = rng.range(1, len as u64 - 1) as usize;
                let res = bounded(async {
                    write_counted(&mut wr, g.request(files, false).as_bytes(), st).await?;
                    let (status, _) = read_head(&mut rd).await?;
                    if status != 200 {
                        return Err(format!("status {status}"));
                    }
                    read_expect(&mut rd, &files.0[3].1[..cut], st).await
                })
                .await;
                reset_halves((rd, wr));
                res
            }
            "never-read" => {
                let g = Get {
                    file: 3,
                    range: None,
                };
                let one = g.request(files, false);
                let all = one.repeat(rng.range(4, 16) as usize);
                let hold = rng.ms(2000, 12000);
                let _ = timeout(hold, write_counted(&mut wr, all.as_bytes(), st)).await;
                sleep(hold).await;
                leave(rng, (rd, wr))
            }
            _ => leave(rng, (rd, wr)),
        }
    }
    .await;
    (kind, r)
}

/// A keep-alive connection that stays up to 90 s with a GET every
/// 0.1–1 s.
async fn web_long(
    addr: SocketAddr,
    files: &Files,
    st: &Stats,
    rng: &mut Rng,
    deadline: Instant,
) -> Result<(), String> {
    let get = async |(rd, wr): &mut Halves, rng: &mut Rng| {
        let g = Get::random(files, rng, false);
        bounded(g.ask(rd, wr, files, st, false)).await
    };
    stay(addr, st, rng, deadline, (100, 1000), get).await
}

// ---------------------------------------------------------------- chat

/// What the chat readers must see: every line a publisher confirmed
/// (saw come back), as a count and a sum of mixed ids.
#[derive(Default)]
struct ChatBook {
    next_id: Cell<u64>,
    confirmed: Cell<u64>,
    confirmed_sum: Cell<u64>,
}

impl ChatBook {
    fn id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }
    fn confirm(&self, id: u64) {
        self.confirmed.set(self.confirmed.get() + 1);
        self.confirmed_sum
            .set(self.confirmed_sum.get().wrapping_add(mix(id)));
    }
}

fn mix(id: u64) -> u64 {
    let mut x = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A line the load sends: `TAG ID PAD` where PAD is derived from ID, so a
/// reader can tell a whole line from a damaged one.
fn chat_line(tag: char, id: u64, long: bool) -> Vec<u8> {
    let c = (b'a' + (id % 26) as u8) as char;
    let n = if long { 900 } else { (id % 60) as usize };
    format!("{tag} {id} {}\r\n", c.to_string().repeat(n)).into_bytes()
}

/// Parses a line the room delivered, `<HOST:PORT> TAG ID PAD`; `None` for
/// the room's own notices (`* ...`). An `Err` is a damaged line.
fn parse_chat(line: &[u8]) -> Option<Result<(char, u64), String>> {
    let text = std::str::from_utf8(line).ok()?;
    let text = text.strip_suffix("\r\n")?;
    let rest = text.strip_prefix('<')?;
    let (_, body) = rest.split_once("> ")?;
    let mut parts = body.splitn(3, ' ');
    let tag = parts.next()?.chars().next()?;
    let id: u64 = match parts.next().and_then(|p| p.parse().ok()) {
        Some(id) => id,
        None => return Some(Err(format!("damaged line {body:?}"))),
    };
    let pad = parts.next().unwrap_or("");
    let want = chat_line(tag, id, pad.len() == 900);
    if want != format!("{body}\r\n").as_bytes() {
        return Some(Err(format!("damaged line {body:?}")));
    }
    Some(Ok((tag, id)))
}

/// Reads chat lines into `seen` until every id of `own` came back, end of
/// file, or the timeout.
async fn read_own<R: AsyncBufRead + Unpin>(
    rd: &mut R,
    own: &mut HashSet<u64>,
    st: &Stats,
) -> Result<(), String> {
    let mut line = Vec::new();
    while !own.is_empty() {
        line.clear();
        let n = rd
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| format!("read: {e} with {} own lines unseen", own.len()))?;
        if n == 0 {
            return Err(format!("end of stream with {} own lines unseen", own.len()));
        }
        st.bytes_in.fetch_add(n as u64, Relaxed);
        match parse_chat(&line) {
            Some(Ok((_, id))) => {
                own.remove(&id);
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok(())
}

/// Sends lines tagged `c` and waits until each came back; they then
/// count as confirmed.
async fn publish<R: AsyncBufRead + Unpin, W: AsyncWrite + Unpin>(
    rd: &mut R,
    wr: &mut W,
    n: u64,
    book: &ChatBook,
    st: &Stats,
    rng: &mut Rng,
    half_close: bool,
) -> Result<(), String> {
    let mut own = HashSet::new();
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = book.id();
        own.insert(id);
        ids.push(id);
        write_counted(wr, &chat_line('c', id, false), st).await?;
        sleep(rng.ms(0, 50)).await;
    }
    if half_close {
        wr.shutdown().await.map_err(|e| format!("shutdown: {e}"))?;
    }
    read_own(rd, &mut own, st).await?;
    for id in ids {
        book.confirm(id);
    }
    Ok(())
}

async fn chat_once(
    addr: SocketAddr,
    book: &ChatBook,
    st: &Stats,
    rng: &mut Rng,
) -> (&'static str, Result<(), String>) {
    let kind = match rng.below(100) {
        0..=29 => "publish",
        30..=44 => "half-close",
        45..=56 => "reset",
        57..=69 => "lurk",
        70..=74 => "never-read",
        75..=84 => "burst",
        _ => "connect-close",
    };
    let r = async {
        if kind == "burst" {
            // Ten joins in a row, each leaving once welcomed.
            for _ in 0..10 {
                let s = connect(addr, st).await?;
                let mut rd = BufReader::new(s);
                let mut line = Vec::new();
                bounded(async {
                    rd.read_until(b'\n', &mut line)
                        .await
                        .map_err(|e| format!("read: {e}"))?;
                    if !line.starts_with(b"* welcome") {
                        return Err(format!(
                            "{:?} instead of the welcome",
                            String::from_utf8_lossy(&line)
                        ));
                    }
                    Ok(())
                })
                .await?;
            }
            return Ok(());
        }
        let (mut rd, mut wr) = connect_halves(addr, st).await?;
        match kind {
            "publish" | "half-close" => {
                let n = rng.range(1, 20);
                bounded(publish(
                    &mut rd,
                    &mut wr,
                    n,
                    book,
                    st,
                    rng,
                    kind == "half-close",
                ))
                .await?;
                if kind == "half-close" {
                    // Everything after our lines, then the end.
                    bounded(async {
                        let mut sink = vec![0u8; 64 * 1024];
                        loop {
                            match rd.read(&mut sink).await {
                                Ok(0) => return Ok(()),
                                Ok(_) => {}
                                Err(e) => return Err(format!("{e} instead of end of stream")),
                            }
                        }
                    })
                    .await?;
                }
                Ok(())
            }
            "reset" => {
                for _ in 0..rng.range(1, 10) {
                    write_counted(&mut wr, &chat_line('x', book.id(), false), st).await?;
                }
                sleep(rng.ms(0, 200)).await;
                reset_halves((rd, wr));
                Ok(())
            }
            "lurk" => {
                let until = Instant::now() + rng.ms(1000, 10_000);
                let mut sink = vec![0u8; 64 * 1024];
                while let Ok(r) = tokio::time::timeout_at(until.into(), rd.read(&mut sink)).await {
                    match r {
                        Ok(0) => return Err("the room closed a lurker".into()),
                        Ok(n) => {
                            st.bytes_in.fetch_add(n as u64, Relaxed);
                        }
                        Err(e) => return Err(format!("read: {e}")),
                    }
                }
                if rng.chance(30) {
                    reset_halves((rd, wr));
                }
                Ok(())
            }
            "never-read" => {
                // 900-byte lines at ~100 a second, never reading.
                let until = Instant::now() + rng.ms(2000, 12_000);
                while Instant::now() < until {
                    let line = chat_line('n', book.id(), true);
                    match timeout(Duration::from_millis(200), wr.write_all(&line)).await {
                        Ok(Ok(())) => {
                            st.bytes_out.fetch_add(line.len() as u64, Relaxed);
                        }
                        Ok(Err(_)) => {
                            // The room dropped us: it holds --max-buffer
                            // for a client, no more.
                            st.dropped.fetch_add(1, Relaxed);
                            return Ok(());
                        }
                        Err(_) => {}
                    }
                    sleep(Duration::from_millis(10)).await;
                }
                leave(rng, (rd, wr))
            }
            _ => leave(rng, (rd, wr)),
        }
    }
    .await;
    (kind, r)
}

/// A member that stays up to 90 s and publishes a line every 0.2–1 s.
async fn chat_long(
    addr: SocketAddr,
    book: &ChatBook,
    st: &Stats,
    rng: &mut Rng,
    deadline: Instant,
) -> Result<(), String> {
    let line = async |(rd, wr): &mut Halves, rng: &mut Rng| {
        bounded(publish(rd, wr, 1, book, st, rng, false)).await
    };
    stay(addr, st, rng, deadline, (200, 1000), line).await
}

/// What a reader saw of the confirmed lines.
#[derive(Default)]
struct ReaderTally {
    count: Cell<u64>,
    sum: Cell<u64>,
    error: std::cell::RefCell<Option<String>>,
}

/// A reader from before the first line to after the last: counts every
/// `c` line until `stop`.
async fn chat_reader(s: TcpStream, tally: Rc<ReaderTally>, stop: Rc<Cell<bool>>, st: Arc<Stats>) {
    let mut rd = BufReader::new(s);
    let mut line = Vec::new();
    while !stop.get() {
        // read_until keeps what it read in `line` when the timeout cuts it
        // short; the next call goes on from there.
        match timeout(Duration::from_millis(200), rd.read_until(b'\n', &mut line)).await {
            Err(_) => continue,
            Ok(Ok(0)) => {
                *tally.error.borrow_mut() = Some("the room closed a reader".into());
                return;
            }
            Ok(Err(e)) => {
                *tally.error.borrow_mut() = Some(format!("a reader's read failed: {e}"));
                return;
            }
            Ok(Ok(_)) => {}
        }
        if line.last() != Some(&b'\n') {
            continue;
        }
        st.bytes_in.fetch_add(line.len() as u64, Relaxed);
        match parse_chat(&line) {
            Some(Ok(('c', id))) => {
                tally.count.set(tally.count.get() + 1);
                tally.sum.set(tally.sum.get().wrapping_add(mix(id)));
            }
            Some(Err(e)) => {
                *tally.error.borrow_mut() = Some(e);
                return;
            }
            _ => {}
        }
        line.clear();
    }
}

// ---------------------------------------------------------------- sampling

#[derive(Clone, Copy)]
struct Sample {
    t: f64,
    server: usize,
    rss_kib: u64,
    fds: u64,
    cpu_ticks: u64,
    cpu_pct: f64,
    phase: u8,
}

/// What a sample was taken during: before the load, under it, while the
/// clients under way at the deadline finish, after they all closed.
const PHASES: [&str; 4] = ["idle", "load", "wind-down", "after"];

/// Samples every process once a second until `stop`, writing each row.
fn sampler(
    pids: Vec<(String, u32)>,
    stats: Vec<Option<Arc<Stats>>>,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    csv: PathBuf,
    start: Instant,
) -> std::io::Result<Vec<Sample>> {
    let hz = procfs::clock_ticks();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    writeln!(out, "t_s,server,phase,rss_kib,fds,cpu_ticks,cpu_pct,conns")?;
    let mut samples = Vec::new();
    let mut last: Vec<Option<(f64, u64)>> = vec![None; pids.len()];
    let mut k = 0u64;
    while !stop.load(Relaxed) {
        let t = start.elapsed().as_secs_f64();
        let ph = phase.load(Relaxed);
        for (i, (name, pid)) in pids.iter().enumerate() {
            let (Ok(rss), Ok(fds), Ok(cpu)) = (
                procfs::rss_kib(*pid),
                procfs::open_fds(*pid),
                procfs::cpu_ticks(*pid),
            ) else {
                eprintln!("soak: cannot read /proc/{pid} ({name}): has it exited?");
                continue;
            };
            let cpu_pct = match last[i] {
                Some((t0, c0)) if t > t0 => (cpu - c0) as f64 / hz / (t - t0) * 100.0,
                _ => 0.0,
            };
            last[i] = Some((t, cpu));
            let conns = stats[i].as_ref().map_or(0, |s| s.conns.load(Relaxed));
            let s = Sample {
                t,
                server: i,
                rss_kib: rss,
                fds: fds as u64,
                cpu_ticks: cpu,
                cpu_pct,
                phase: ph,
            };
            writeln!(
                out,
                "{:.1},{name},{},{rss},{fds},{cpu},{cpu_pct:.1},{conns}",
                t, PHASES[ph as usize]
            )?;
            samples.push(s);
        }
        out.flush()?;
        k += 1;
        let next = start + Duration::from_secs(k);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(samples)
}

// ---------------------------------------------------------------- main

fn main() {
    let args = Args::parse();
    match run(args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak-load: {e}");
            std::process::exit(2);
        }
    }
}

const SERVERS: [&str; 4] = ["echo", "chat", "web", "portforward"];

fn run(args: Args) -> std::io::Result<bool> {
    let mut rng = Rng::new(args.seed);
    let files = Rc::new(Files::make(&args.web_root, &mut rng)?);
    let stats: Vec<Arc<Stats>> = SERVERS.iter().map(|_| Arc::new(Stats::default())).collect();
    let per_pid: Vec<Option<Arc<Stats>>> = args
        .pids
        .iter()
        .map(|(name, _)| {
            SERVERS
                .iter()
                .position(|s| s == name)
                .map(|i| stats[i].clone())
        })
        .collect();
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let sampling = {
        let (pids, phase, stop, csv) = (
            args.pids.clone(),
            phase.clone(),
            stop.clone(),
            args.csv.clone(),
        );
        std::thread::spawn(move || sampler(pids, per_pid, phase, stop, csv, start))
    };

    std::thread::sleep(Duration::from_secs_f64(args.idle));
    let load_start = start.elapsed().as_secs_f64();
    let idle_fds = fds_now(&args.pids);
    phase.store(1, Relaxed);
    let rt = runtime(1)?;
    let chat_result = LocalSet::new().block_on(&rt, load(&args, files, &stats, &mut rng, &phase));
    let load_end = load_start + args.duration;
    phase.store(3, Relaxed);

    // Descriptors back to where they were before the load: wait for up
    // to 30 s (connections closing on the server's side take a turn or two).
    let settle = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle && fds_now(&args.pids) != idle_fds {
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Relaxed);
    let samples = sampling
        .join()
        .map_err(|_| std::io::Error::other("the sampler panicked"))??;

    let report = summarize(&args, &stats, &samples, load_start, load_end, &chat_result);
    print!("{}", report.0);
    if let Some(path) = &args.summary {
        std::fs::write(path, &report.0)?;
    }
    Ok(report.1)
}

fn fds_now(pids: &[(String, u32)]) -> Vec<usize> {
    pids.iter()
        .map(|(_, p)| procfs::open_fds(*p).unwrap_or(0))
        .collect()
}

/// What the chat readers saw against what was confirmed.
struct ChatResult {
    confirmed: u64,
    readers: Vec<(u64, bool, Option<String>)>,
}

async fn load(
    args: &Args,
    files: Rc<Files>,
    stats: &[Arc<Stats>],
    rng: &mut Rng,
    phase: &Arc<AtomicU8>,
) -> ChatResult {
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    {
        let phase = phase.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(deadline.into()).await;
            phase.store(2, Relaxed);
        });
    }
    let book = Rc::new(ChatBook::default());
    let stop_readers = Rc::new(Cell::new(false));
    let mut tallies = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..args.readers {
        match connect(args.chat, &stats[1]).await {
            Ok(s) => {
                let tally = Rc::new(ReaderTally::default());
                tallies.push(tally.clone());
                readers.push(tokio::task::spawn_local(chat_reader(
                    s,
                    tally,
                    stop_readers.clone(),
                    stats[1].clone(),
                )));
            }
            Err(e) => stats[1].fail("chat", "reader", &e),
        }
    }
    sleep(Duration::from_millis(500)).await;

    let mut tasks = Vec::new();
    for w in 0..args.workers + args.long_lived {
        let long = w >= args.workers;
        for server in 0..4 {
            let mut rng = Rng::new(rng.next());
            let st = stats[server].clone();
            let files = files.clone();
            let book = book.clone();
            let addr = [args.echo, args.chat, args.web, args.portforward][server];
            let name = SERVERS[server];
            tasks.push(tokio::task::spawn_local(async move {
                while Instant::now() < deadline {
                    if long {
                        let r = match server {
                            0 | 3 => echo_long(addr, &st, &mut rng, deadline).await,
                            1 => chat_long(addr, &book, &st, &mut rng, deadline).await,
                            _ => web_long(addr, &files, &st, &mut rng, deadline).await,
                        };
                        st.record(name, "long-lived", r);
                    } else {
                        let (kind, r) = match server {
                            0 | 3 => echo_once(addr, &st, &mut rng).await,
                            1 => chat_once(addr, &book, &st, &mut rng).await,
                            _ => web_once(addr, &files, &st, &mut rng).await,
                        };
                        st.record(name, kind, r);
                        sleep(rng.ms(5, 40)).await;
                    }
                }
            }));
        }
    }
    // Every client step is bounded by OP_TIMEOUT; wait that long at most.
    let hard = deadline + OP_TIMEOUT + Duration::from_secs(15);
    for t in tasks {
        if tokio::time::timeout_at(hard.into(), t).await.is_err() {
            eprintln!("soak: a client loop did not end in time");
        }
    }

    // Let every confirmed line reach every reader (bounded), then leave.
    let confirmed = book.confirmed.get();
    let drain = Instant::now() + Duration::from_secs(20);
    while Instant::now() < drain
        && tallies
            .iter()
            .any(|t| t.error.borrow().is_none() && t.count.get() < confirmed)
    {
        sleep(Duration::from_millis(100)).await;
    }
    stop_readers.set(true);
    for r in readers {
        let _ = r.await;
    }
    let sum = book.confirmed_sum.get();
    ChatResult {
        confirmed,
        readers: tallies
            .iter()
            .map(|t| (t.count.get(), t.sum.get() == sum, t.error.borrow().clone()))
            .collect(),
    }
}

/// How far the last third's median may rise above the middle third's:
/// a share of it and an amount. RSS in KiB: 5 % plus 1 MiB.
const RSS_TOLERANCE: (f64, f64) = (0.05, 1024.0);
/// Descriptors: 10 % plus 8 (their count follows the clients under way).
const FDS_TOLERANCE: (f64, f64) = (0.10, 8.0);

/// Whether `last` stayed within `tolerance` (share, amount) of `mid`.
fn flat(mid: f64, last: f64, (share, amount): (f64, f64)) -> bool {
    last <= mid * (1.0 + share) + amount
}

fn median_of(samples: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(&samples.iter().map(|s| f(s)).collect::<Vec<_>>())
}

/// Least-squares slope of `f` over `samples`, per minute.
fn slope_per_min(samples: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let mt = samples.iter().map(|s| s.t).sum::<f64>() / n;
    let my = samples.iter().map(|s| f(s)).sum::<f64>() / n;
    let num: f64 = samples.iter().map(|s| (s.t - mt) * (f(s) - my)).sum();
    let den: f64 = samples.iter().map(|s| (s.t - mt).powi(2)).sum();
    num / den * 60.0
}

/// The flatness rules, fixed before any run:
///
/// * RSS flat: the median RSS of the last third of the load is at most 5 %
///   plus 1 MiB above the median of the middle third (the first third is
///   the warm-up);
/// * descriptors flat: the same with 10 % plus 8 descriptors (their count
///   follows the number of clients, which is steady by design);
/// * descriptors back: once the clients are gone the count is the one
///   before the load (idle median), exactly.
fn summarize(
    args: &Args,
    stats: &[Arc<Stats>],
    samples: &[Sample],
    load_start: f64,
    load_end: f64,
    chat: &ChatResult,
) -> (String, bool) {
    let hz = procfs::clock_ticks();
    let third = (load_end - load_start) / 3.0;
    let (t1, t2) = (load_start + third, load_start + 2.0 * third);
    let mut ok = true;
    let mut out = String::new();
    let mib = |k: f64| k / 1024.0;
    let _ = writeln!(
        out,
        "\n## Soak: {:.0} s of load, thirds at {:.0} s and {:.0} s (the first is the warm-up)\n",
        load_end - load_start,
        t1 - load_start,
        t2 - load_start
    );
    let _ = writeln!(
        out,
        "| server | RSS idle | RSS mid third | RSS last third | RSS max | RSS slope, last two thirds | RSS after | fds idle | fds mid / last / max | fds after | CPU mean / max | CPU s | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, (name, _)) in args.pids.iter().enumerate() {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.server == i).collect();
        let idle: Vec<&Sample> = mine.iter().copied().filter(|s| s.phase == 0).collect();
        let loaded: Vec<&Sample> = mine.iter().copied().filter(|s| s.phase == 1).collect();
        let mid: Vec<&Sample> = loaded
            .iter()
            .copied()
            .filter(|s| s.t >= t1 && s.t < t2)
            .collect();
        let last: Vec<&Sample> = loaded.iter().copied().filter(|s| s.t >= t2).collect();
        let after = mine.iter().copied().rfind(|s| s.phase == 3);
        let tail: Vec<&Sample> = loaded.iter().copied().filter(|s| s.t >= t1).collect();
        let (Some(after), false, false) = (after, mid.is_empty(), last.is_empty()) else {
            let _ = writeln!(
                out,
                "| {name} | too few samples | | | | | | | | | | | FAIL |"
            );
            ok = false;
            continue;
        };
        let rss = |s: &Sample| s.rss_kib as f64;
        let fds = |s: &Sample| s.fds as f64;
        let (rss_idle, rss_mid, rss_last) = (
            median_of(&idle, rss),
            median_of(&mid, rss),
            median_of(&last, rss),
        );
        let rss_max = loaded.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64;
        let (fds_idle, fds_mid, fds_last) = (
            median_of(&idle, fds),
            median_of(&mid, fds),
            median_of(&last, fds),
        );
        let fds_max = loaded.iter().map(|s| s.fds).max().unwrap_or(0);
        let cpu_mean = loaded.iter().map(|s| s.cpu_pct).sum::<f64>() / loaded.len().max(1) as f64;
        let cpu_max = loaded.iter().map(|s| s.cpu_pct).fold(0.0, f64::max);
        let cpu_s = match (loaded.first(), loaded.last()) {
            (Some(a), Some(b)) => (b.cpu_ticks - a.cpu_ticks) as f64 / hz,
            _ => 0.0,
        };
        let rss_flat = flat(rss_mid, rss_last, RSS_TOLERANCE);
        let fds_flat = flat(fds_mid, fds_last, FDS_TOLERANCE);
        let fds_back = after.fds as f64 == fds_idle;
        let mut verdict = Vec::new();
        if !rss_flat {
            verdict.push("RSS GREW");
        }
        if !fds_flat {
            verdict.push("FDS GREW");
        }
        if !fds_back {
            verdict.push("FDS NOT BACK");
        }
        ok &= verdict.is_empty();
        let _ = writeln!(
            out,
            "| {name} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:+.0} KiB/min | {:.1} MiB | {fds_idle:.0} | {fds_mid:.0} / {fds_last:.0} / {fds_max} | {} | {cpu_mean:.1} % / {cpu_max:.0} % | {cpu_s:.1} | {} |",
            mib(rss_idle),
            mib(rss_mid),
            mib(rss_last),
            mib(rss_max),
            slope_per_min(&tail, rss),
            mib(after.rss_kib as f64),
            after.fds,
            if verdict.is_empty() { "flat".to_string() } else { verdict.join(", ") }
        );
    }

    let _ = writeln!(out, "\n| load on | connections | bytes sent | bytes received, checked | lost | clients by kind |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (i, name) in SERVERS.iter().enumerate() {
        let st = &stats[i];
        let kinds: Vec<String> = st
            .kinds
            .lock()
            .unwrap()
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let lost = st.lost.load(Relaxed);
        ok &= lost == 0;
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} MB | {:.1} MB | {lost} | {} |",
            st.conns.load(Relaxed),
            st.bytes_out.load(Relaxed) as f64 / 1e6,
            st.bytes_in.load(Relaxed) as f64 / 1e6,
            kinds.join(", ")
        );
    }
    let _ = writeln!(out);
    for (i, name) in SERVERS.iter().enumerate() {
        let st = &stats[i];
        if i == 0 || i == 3 {
            let _ = writeln!(
                out,
                "- {name}: the most a never-reading client got into the server: {:.1} MiB",
                st.max_unread.load(Relaxed) as f64 / (1 << 20) as f64
            );
        }
        for f in st.failures.lock().unwrap().iter() {
            let _ = writeln!(out, "- LOST {f}");
        }
    }
    let _ = writeln!(
        out,
        "- chat: {} lines confirmed by their senders; never-reading clients the room dropped: {}",
        chat.confirmed,
        stats[1].dropped.load(Relaxed)
    );
    for (r, (count, sum_ok, error)) in chat.readers.iter().enumerate() {
        let whole = *count == chat.confirmed && *sum_ok && error.is_none();
        ok &= whole;
        let _ = writeln!(
            out,
            "- chat reader {r}: {count} of {} lines, ids {}{}",
            chat.confirmed,
            if *sum_ok { "match" } else { "DIFFER" },
            error
                .as_ref()
                .map(|e| format!(", LOST: {e}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "\nverdict: {}", if ok { "PASS" } else { "FAIL" });
    (out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_lines_parse_back_and_damage_shows() {
        for (tag, id, long) in [('c', 0, false), ('c', 12345, false), ('n', 7, true)] {
            let mut delivered = b"<127.0.0.1:40000> ".to_vec();
            delivered.extend_from_slice(&chat_line(tag, id, long));
            assert_eq!(parse_chat(&delivered), Some(Ok((tag, id))));
            // One byte of the padding lost or changed.
            let mut short = delivered.clone();
            short.remove(delivered.len() - 3);
            if id % 60 != 0 || long {
                assert!(matches!(parse_chat(&short), Some(Err(_))), "{short:?}");
            }
        }
        assert!(matches!(
            parse_chat(b"<127.0.0.1:1> c 99 z\r\n"),
            Some(Err(_))
        ));
        // The room's own notices are not the load's lines.
        assert_eq!(parse_chat(b"* 127.0.0.1:1 joined\r\n"), None);
    }

    #[test]
    fn flatness_rule() {
        assert!(flat(10_000.0, 10_000.0, RSS_TOLERANCE));
        assert!(flat(10_000.0, 11_524.0, RSS_TOLERANCE));
        assert!(!flat(10_000.0, 11_600.0, RSS_TOLERANCE));
        assert!(flat(20.0, 30.0, FDS_TOLERANCE));
        assert!(!flat(20.0, 31.0, FDS_TOLERANCE));
    }

    #[test]
    fn slope_is_per_minute() {
        let samples: Vec<Sample> = (0..60)
            .map(|t| Sample {
                t: t as f64,
                server: 0,
                rss_kib: 1000 + 2 * t,
                fds: 10,
                cpu_ticks: 0,
                cpu_pct: 0.0,
                phase: 1,
            })
            .collect();
        let refs: Vec<&Sample> = samples.iter().collect();
        let slope = slope_per_min(&refs, |s| s.rss_kib as f64);
        assert!((slope - 120.0).abs() < 1e-6, "{slope}");
        assert_eq!(median_of(&refs, |s| s.fds as f64), 10.0);
    }

    #[test]
    fn rng_ranges_hold() {
        let mut rng = Rng::new(7);
        for _ in 0..10_000 {
            let v = rng.range(3, 9);
            assert!((3..=9).contains(&v));
        }
        assert_eq!(rng.bytes(13).len(), 13);
        assert_eq!(Rng::new(1).next(), Rng::new(1).next());
    }
}
