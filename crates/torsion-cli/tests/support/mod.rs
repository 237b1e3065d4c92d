//! Helpers for the process-level tests: run the `torsion` binary, read its
//! log, and always kill it.
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_torsion");

/// Where the servers under test listen: loopback only, any free port.
pub const LOOPBACK: &str = "tcp:0:interface=127.0.0.1";

/// How long any single wait in these tests may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Options that make `torsion` log, as it stops, how many turns its
/// reactor's loop made (one poll of the system each): see
/// [`Server::stop_counting_turns`].
pub const COUNT_TURNS: [&str; 2] = ["--log-level", "info,torsion::reactor=debug"];

/// The lines a child wrote to stderr, shared with the thread reading them.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

/// A running `torsion` process. Dropping it kills the process.
pub struct Server {
    child: Child,
    log: Arc<Log>,
    /// The thread copying stderr into `log`, until the child closes it.
    reader: Option<thread::JoinHandle<()>>,
    /// Every address the server logged as listening on, in order.
    pub addresses: Vec<String>,
}

impl Server {
    /// `torsion echo --listen tcp:0:interface=127.0.0.1`.
    pub fn echo() -> Server {
        Server::start(Command::new(BIN).args(["echo", "--listen", LOOPBACK]), 1)
    }

    /// Runs `cmd` with stderr captured, and waits until it has logged
    /// `listeners` "listening on" lines.
    pub fn start(cmd: &mut Command, listeners: usize) -> Server {
        let mut child = cmd
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[torsion] {line}");
                sink.lines.lock().unwrap().push(line);
                sink.grew.notify_all();
            }
        });
        let mut server = Server {
            child,
            log,
            reader: Some(reader),
            addresses: Vec::new(),
        };
        let deadline = Instant::now() + PATIENCE;
        if server
            .wait_for_count("listening on ", listeners, deadline)
            .is_none()
        {
            panic!(
                "torsion did not log {listeners} listening address(es); status {:?}; log:\n{}",
                server.child.try_wait(),
                server.log_text()
            );
        }
        server.addresses = server
            .lines_containing("listening on ")
            .iter()
            .filter_map(|l| {
                let rest = l.split("listening on ").nth(1)?;
                rest.split_whitespace().next().map(str::to_string)
            })
            .collect();
        server
    }

    /// The first TCP address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addresses
            .iter()
            .find_map(|a| a.parse().ok())
            .expect("the server listens on a TCP address")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.log.lines.lock().unwrap().join("\n")
    }

    /// The logged lines that contain `needle`.
    pub fn lines_containing(&self, needle: &str) -> Vec<String> {
        let lines = self.log.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// Waits until at least `count` logged lines contain `needle`; `None`
    /// if that did not happen by `deadline`.
    pub fn wait_for_count(&self, needle: &str, count: usize, deadline: Instant) -> Option<()> {
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if lines.iter().filter(|l| l.contains(needle)).count() >= count {
                return Some(());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // Short waits: the reader thread may have ended with the child.
            let wait = (deadline - now).min(Duration::from_millis(50));
            lines = self.log.grew.wait_timeout(lines, wait).unwrap().0;
        }
    }

    /// Waits up to `PATIENCE` for a logged line containing `needle`.
    pub fn wait_for_line(&self, needle: &str) -> bool {
        self.wait_for_count(needle, 1, Instant::now() + PATIENCE)
            .is_some()
    }

    /// Sends a signal by name (`TERM`, `INT`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// The turns of the reactor's loop the process logged as it stopped
    /// (started with [`COUNT_TURNS`]); with `--workers`, the most any of
    /// its reactors made. A count of wakeups, not a time: a loop that
    /// sleeps while it waits makes a few, one that spins makes thousands
    /// a second however loaded the machine is.
    pub fn turns_logged(&self) -> u64 {
        let lines = self.lines_containing("reactor stopped");
        assert!(
            !lines.is_empty(),
            "no \"reactor stopped\" line (started with COUNT_TURNS?):\n{}",
            self.log_text()
        );
        lines
            .iter()
            .map(|line| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix("turns="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no turns=N in {line:?}"))
            })
            .max()
            .unwrap_or(0)
    }

    /// Stops the process with SIGTERM, waits for it to exit cleanly, and
    /// returns [`turns_logged`](Self::turns_logged).
    pub fn stop_counting_turns(&mut self) -> u64 {
        self.signal("TERM");
        let status = self.wait_exit(PATIENCE);
        assert!(
            status.is_some_and(|s| s.success()),
            "{status:?} after SIGTERM:\n{}",
            self.log_text()
        );
        // The child has exited, but its last lines may still be on their
        // way through the pipe: read them all before looking.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.turns_logged()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Kills a child process when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a finished process said.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it if it takes longer than `PATIENCE`.
pub fn run_bounded(cmd: &mut Command) -> Output {
    let child = cmd
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut guard = KillOnDrop(child);
    let mut out = guard.0.stdout.take().expect("stdout is piped");
    let mut err = guard.0.stderr.take().expect("stderr is piped");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_child(&mut guard.0, PATIENCE).expect("the command finished in time");
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `len` pseudo-random bytes from `seed` (splitmix64): the same seed gives
/// the same bytes, different seeds different bytes.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Index of the first differing byte, for readable failures.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}
