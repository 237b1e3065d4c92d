//! Shared pieces of the torsion bench harness.
//!
//! The harness is a set of small programs (in `src/bin/`):
//!
//! * **load generators** — `echo-load`, `chat-load`, `idle-conns`,
//!   `http-download` — each drives one server for a bounded time over
//!   127.0.0.1 and prints one machine-readable [`RESULT`](report) line;
//! * **peers** — `tokio-echo`, `tokio-chat`, `hyper-hello` — what a user
//!   would pick instead of torsion, each on a current-thread or a
//!   multi-thread Tokio runtime;
//! * the **floor** — `floor` — the system calls of echo or of a fixed HTTP
//!   answer and nothing else: what the kernel charges every server;
//! * **in-process** — `timer-churn` — timers of torsion and of Tokio;
//! * the **runner** — `bench-runner` — starts every server pinned to CPU 0,
//!   every load pinned to CPU 1, measures the server's CPU time from
//!   `/proc`, repeats, and prints medians and torsion/peer ratios.
//!
//! `bench/run.sh` builds everything and calls the runner.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Prints the one line a load generator reports, `RESULT key=value ...`,
/// which the runner parses with [`parse_result`].
pub fn report(pairs: &[(&str, f64)]) {
    let mut line = String::from("RESULT");
    for (k, v) in pairs {
        let _ = write!(line, " {k}={v}");
    }
    println!("{line}");
}

/// Parses the `RESULT` line out of a load generator's output.
pub fn parse_result(output: &str) -> Option<BTreeMap<String, f64>> {
    let line = output.lines().rev().find(|l| l.starts_with("RESULT"))?;
    let mut map = BTreeMap::new();
    for field in line.split_whitespace().skip(1) {
        let (k, v) = field.split_once('=')?;
        map.insert(k.to_string(), v.parse().ok()?);
    }
    Some(map)
}

/// A Tokio runtime: current-thread for `threads <= 1`, else multi-thread
/// with that many workers.
pub fn runtime(threads: usize) -> io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// The value at quantile `q` (0..=1) of sorted samples, 0 when empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The median of `values` (the mean of the middle two for an even count);
/// `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Waits until something accepts TCP connections at `addr`, for at most
/// `timeout`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reading a process's counters from `/proc`.
pub mod procfs {
    use std::fs;
    use std::io;

    /// Clock ticks per second of `/proc/PID/stat`'s CPU times (`USER_HZ`).
    /// Linux reports them in units of 100 Hz on every architecture the
    /// harness runs on; `getconf CLK_TCK` confirms it when available.
    pub fn clock_ticks() -> f64 {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    }

    /// User plus system CPU time of process `pid` (all its threads), in
    /// clock ticks.
    pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
        cpu_split(pid).map(|s| s.user + s.system)
    }

    /// The user and system CPU time of process `pid` (all its threads), in
    /// clock ticks, apart: the system share is the kernel's work (system
    /// calls, and on loopback the TCP stack of both ends).
    pub fn cpu_split(pid: u32) -> io::Result<CpuTicks> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name may hold spaces and parentheses: fields are
        // counted after its closing parenthesis. utime and stime are the
        // 14th and 15th fields, the 12th and 13th after the name.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let get = |i: usize| -> io::Result<u64> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))
        };
        Ok(CpuTicks {
            user: get(11)?,
            system: get(12)?,
        })
    }

    /// CPU time in clock ticks, user and system apart.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct CpuTicks {
        /// Time in user space.
        pub user: u64,
        /// Time in the kernel on the process's behalf.
        pub system: u64,
    }

    impl std::ops::Add for CpuTicks {
        type Output = CpuTicks;
        fn add(self, o: CpuTicks) -> CpuTicks {
            CpuTicks {
                user: self.user + o.user,
                system: self.system + o.system,
            }
        }
    }

    /// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, ...), in KiB.
    pub fn status_kib(pid: &str, field: &str) -> io::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| {
                let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{pid}/status")))
    }

    /// The resident set size of process `pid`, in KiB.
    pub fn rss_kib(pid: u32) -> io::Result<u64> {
        status_kib(&pid.to_string(), "VmRSS")
    }

    /// How many descriptors process `pid` has open.
    pub fn open_fds(pid: u32) -> io::Result<usize> {
        Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count())
    }

    /// The direct children of process `pid` (nginx's workers).
    pub fn children(pid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                    out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
                }
            }
        }
        out
    }
}

/// `n` connections to `addr` with `TCP_NODELAY`, non-blocking, each
/// registered with `poll` for reading under the token of its index: the
/// start of every load that drives its connections on a bare mio loop.
pub fn connect_mio(
    poll: &mio::Poll,
    addr: SocketAddr,
    n: usize,
) -> io::Result<Vec<mio::net::TcpStream>> {
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(s);
        poll.registry()
            .register(&mut stream, mio::Token(i), mio::Interest::READABLE)?;
        streams.push(stream);
    }
    Ok(streams)
}

/// One read of a non-blocking stream: `Some(n)` bytes, `None` when it
/// would block; interrupted reads are retried and an end of stream is an
/// error (a load's server never closes first).
pub fn read_some(stream: &mut impl std::io::Read, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match stream.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_round_trip() {
        let out = "noise\nRESULT a=1 b=2.5\n";
        let r = parse_result(out).unwrap();
        assert_eq!(r["a"], 1.0);
        assert_eq!(r["b"], 2.5);
    }

    #[test]
    fn medians_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(quantile(&[1, 2, 3, 4, 5], 0.5), 3);
        assert_eq!(quantile(&[1, 2, 3, 4, 5], 1.0), 5);
    }

    #[test]
    fn reads_own_cpu_and_rss() {
        let me = std::process::id();
        procfs::cpu_ticks(me).unwrap();
        assert!(procfs::rss_kib(me).unwrap() > 0);
    }
}
