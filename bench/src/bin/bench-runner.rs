//! The bench runner: every scenario against torsion and its peers, in
//! turn, side by side in one run.
//!
//! For each scenario and each repeat it starts each server afresh, pinned
//! to CPU 0 (`taskset -c 0`), waits for its port, reads the server's CPU
//! time (user + system, all threads and child processes) from
//! `/proc/PID/stat`, runs the load pinned to CPU 1 (`taskset -c 1`), reads
//! the CPU time again, and stops the server (SIGTERM, then SIGKILL). The
//! server's CPU time divided by the operations the load reports is the
//! *CPU per operation*, the steady figure on a noisy machine. Servers bind
//! 127.0.0.1 only; every load stops by itself and is killed if it overruns.
//!
//! Repeats are interleaved (torsion, peer, torsion, peer, ...) so a drift
//! in the machine's speed hits both alike. The table shows medians, and
//! ratios torsion/peer taken within each repeat (the two runs adjacent in
//! time) and then the median of those; per-run figures go to `--raw`.
//!
//! A scenario whose server binary is missing (an example or a `torsion`
//! subcommand not written yet) is skipped with a note, not failed.

use clap::Parser;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use torsion_bench::{median, parse_result, procfs, wait_for_port};

/// Runs every bench scenario against torsion and its peers and prints a
/// table of medians and torsion/peer ratios (throughput and server CPU
/// time per operation).
#[derive(Parser, Debug)]
struct Args {
    /// The repository root (holds target/release/torsion and
    /// target/release/examples/).
    #[arg(long, default_value = "..")]
    root: PathBuf,
    /// Runs of each figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Idle connections to hold in the idle scenarios.
    #[arg(long, default_value_t = 19_000)]
    idle: usize,
    /// Only these scenarios (comma-separated): echo-pingpong, echo-stream,
    /// portforward-stream, chat-fanout, idle-echo, idle-http, idle-https, http-hello,
    /// https-hello, static-4k,
    /// static-1g, timers, workers.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Write the result table (markdown) here too.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write every run's raw figures here.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Niceness for servers and loads alike (negative needs root): other
    /// work on a shared machine then disturbs the runs less. 0 = leave it.
    #[arg(long, default_value_t = -10, allow_hyphen_values = true)]
    nice: i32,
    /// Another repository root (holding its own target/release/torsion
    /// and examples): each torsion server also runs from there, as a row
    /// named "... (baseline)" after the peers, interleaved with the rest,
    /// so a change to torsion is measured against the build before it in
    /// the same run. Its ratios are this tree's torsion over the baseline.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Append each server's pid here (so a wrapper can clean up).
    #[arg(long, env = "BENCH_PIDFILE")]
    pidfile: Option<PathBuf>,
}

/// A server to start for one run.
#[derive(Clone, Debug)]
struct Server {
    /// The name in the table.
    name: String,
    /// The program and its arguments; `{port}` is replaced by the port and
    /// `{dir}` by the scratch directory.
    argv: Vec<String>,
}

/// How a scenario loads a server.
#[derive(Clone, Debug)]
enum Load {
    /// A bench binary; `{port}`, `{pid}`, `{dur}` are substituted.
    Bin(String, Vec<String>),
    /// `wrk` with this many connections and this path; `pipeline`
    /// requests are sent per write (1 = plain keep-alive).
    Wrk {
        connections: usize,
        path: String,
        threads: usize,
        pipeline: usize,
        /// `https://` (the server's certificate is not checked).
        tls: bool,
    },
    /// No server: run the program itself pinned to CPU 0.
    InProcess(String, Vec<String>),
}

/// The figure a scenario is judged by.
#[derive(Clone, Copy, Debug)]
struct Primary {
    key: &'static str,
    unit: &'static str,
    /// Whether a larger value is better.
    higher_is_better: bool,
}

/// The server's RSS growth per idle connection, as idle-conns measures it.
const RSS_PER_CONNECTION: Primary = Primary {
    key: "bytes_per_conn",
    unit: "B/conn RSS",
    higher_is_better: false,
};

/// Requests per second, as wrk counts them.
const REQUESTS: Primary = Primary {
    key: "req_per_s",
    unit: "req/s",
    higher_is_better: true,
};

#[derive(Clone, Debug)]
struct Scenario {
    id: &'static str,
    title: String,
    load: Load,
    primary: Primary,
    /// What one operation is, for the CPU column.
    op: &'static str,
    /// Torsion first, then its peers; the first peer is the reference of
    /// the ratio.
    servers: Vec<Server>,
    skipped: Vec<String>,
    /// Where servers and load run.
    cpus: Cpus,
    /// A server the one measured talks to (the echo server behind
    /// `torsion portforward`): started afresh for each run on the load's
    /// CPU, on a port of its own that the measured server's arguments name
    /// as `{backend}`. Its CPU time is not counted.
    backend: Option<Server>,
}

/// The CPUs (a `taskset -c` list) the server and the load are pinned to.
#[derive(Clone, Copy, Debug)]
struct Cpus {
    server: &'static str,
    load: &'static str,
}

/// Each on a core of its own: the server on CPU 0, the load on CPU 1.
const APART: Cpus = Cpus {
    server: "0",
    load: "1",
};

/// The name of the floor server (`src/bin/floor.rs`): not a peer but the
/// price of the system calls alone, so a row of it shows how far below any
/// real server a target lies.
const FLOOR: &str = "floor: system calls only";

/// Idle TLS connections to hold at most (see the `idle-https` scenario).
const IDLE_TLS: usize = 5_000;

/// One run's figures.
type Figures = BTreeMap<String, f64>;

struct Running {
    child: Child,
    name: String,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU ticks of the server and its children (nginx's worker).
    fn cpu_ticks(&self) -> procfs::CpuTicks {
        let pid = self.pid();
        let mut t = procfs::cpu_split(pid).unwrap_or_default();
        for c in procfs::children(pid) {
            t = t + procfs::cpu_split(c).unwrap_or_default();
        }
        t
    }

    fn stop(mut self) {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("  {} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Env {
    args: Args,
    root: PathBuf,
    bin: PathBuf,
    scratch: PathBuf,
    clk_tck: f64,
    raw: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(40_000)
}

fn subst(s: &str, vars: &[(&str, String)]) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

impl Env {
    /// `nice -n N taskset -c CPU`, ready for the program and its arguments.
    /// Both exec the program, so the child's pid is the program's.
    fn pinned(&self, cpu: &str) -> Command {
        let mut c = Command::new("nice");
        c.args(["-n", &self.args.nice.to_string(), "taskset", "-c", cpu]);
        c
    }

    fn start(
        &self,
        server: &Server,
        port: u16,
        backend: Option<u16>,
        cpus: &str,
    ) -> Result<Running, String> {
        let mut vars = vec![
            ("port", port.to_string()),
            ("dir", self.scratch.display().to_string()),
        ];
        if let Some(b) = backend {
            vars.push(("backend", b.to_string()));
        }
        let argv: Vec<String> = server.argv.iter().map(|a| subst(a, &vars)).collect();
        let log = fs::File::create(self.scratch.join(format!("{}.log", server.name)))
            .map_err(|e| e.to_string())?;
        let child = self
            .pinned(cpus)
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", argv.join(" ")))?;
        let running = Running {
            child,
            name: server.name.clone(),
        };
        if let Some(p) = &self.args.pidfile {
            if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(p) {
                let _ = writeln!(f, "{}", running.pid());
            }
        }
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        if let Err(e) = wait_for_port(addr, Duration::from_secs(10)) {
            let log = fs::read_to_string(self.scratch.join(format!("{}.log", server.name)))
                .unwrap_or_default();
            return Err(format!(
                "{} never listened on {addr}: {e}; its log: {}",
                server.name,
                log.trim()
            ));
        }
        // nginx forks its worker after the master binds: wait for it.
        std::thread::sleep(Duration::from_millis(150));
        Ok(running)
    }

    /// Runs `argv` pinned to CPU `cpu`, killing it after `limit`; returns
    /// its standard output.
    fn run_pinned(&self, cpu: &str, argv: &[String], limit: Duration) -> Result<String, String> {
        let mut child = self
            .pinned(cpu)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", argv.join(" ")))?;
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{} overran {limit:?}; killed", argv[0]));
                }
            }
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}): {}{}",
                argv[0],
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(stdout)
    }

    fn load_argv(&self, load: &Load, port: u16, pid: u32) -> Vec<String> {
        let dur = self.args.duration;
        let vars = [
            ("port", port.to_string()),
            ("pid", pid.to_string()),
            ("dur", dur.to_string()),
            ("idle", self.args.idle.to_string()),
        ];
        match load {
            Load::Bin(name, args) | Load::InProcess(name, args) => {
                let mut v = vec![self.bin.join(name).display().to_string()];
                v.extend(args.iter().map(|a| subst(a, &vars)));
                v
            }
            Load::Wrk {
                connections,
                path,
                threads,
                pipeline,
                tls,
            } => {
                let mut v = vec![
                    "wrk".into(),
                    format!("-t{threads}"),
                    format!("-c{connections}"),
                    format!("-d{}s", dur.ceil() as u64),
                    "--latency".into(),
                ];
                if *pipeline > 1 {
                    let script = self.scratch.join(format!("pipeline-{pipeline}.lua"));
                    let lua = format!(
                        "init = function(args)\n  local r = {{}}\n  for i = 1, {pipeline} do r[i] = wrk.format(\"GET\", \"{path}\") end\n  req = table.concat(r)\nend\nrequest = function() return req end\n"
                    );
                    if fs::write(&script, lua).is_ok() {
                        v.push("-s".into());
                        v.push(script.display().to_string());
                    }
                }
                let scheme = if *tls { "https" } else { "http" };
                v.push(format!("{scheme}://127.0.0.1:{port}{path}"));
                v
            }
        }
    }

    /// One run of one server under one scenario's load.
    fn run_once(&mut self, sc: &Scenario, server: &Server) -> Result<Figures, String> {
        let limit = Duration::from_secs_f64(self.args.duration + 90.0);
        if let Load::InProcess(..) = sc.load {
            let argv = self.load_argv(&sc.load, 0, 0);
            let mut argv = argv;
            argv.extend(server.argv.iter().cloned());
            let out = self.run_pinned("0", &argv, limit)?;
            return parse_result(&out).ok_or_else(|| format!("no RESULT line in: {out}"));
        }
        let backend = match &sc.backend {
            Some(b) => {
                let port = free_port();
                Some((self.start(b, port, None, sc.cpus.load)?, port))
            }
            None => None,
        };
        let port = free_port();
        let running = self.start(server, port, backend.as_ref().map(|b| b.1), sc.cpus.server)?;
        let argv = self.load_argv(&sc.load, port, running.pid());
        let before = running.cpu_ticks();
        let t0 = Instant::now();
        let out = self.run_pinned(sc.cpus.load, &argv, limit);
        let wall = t0.elapsed().as_secs_f64();
        let after = running.cpu_ticks();
        running.stop();
        if let Some((b, _)) = backend {
            b.stop();
        }
        let out = out?;
        let mut fig = match sc.load {
            Load::Wrk { .. } => parse_wrk(&out)?,
            _ => parse_result(&out).ok_or_else(|| format!("no RESULT line in: {out}"))?,
        };
        let user = after.user.saturating_sub(before.user) as f64;
        let system = after.system.saturating_sub(before.system) as f64;
        let cpu = (user + system) / self.clk_tck;
        fig.insert("server_cpu_s".into(), cpu);
        if user + system > 0.0 {
            fig.insert("server_kernel_share".into(), system / (user + system));
        }
        fig.insert("load_wall_s".into(), wall);
        let ops = fig.get("ops").copied().unwrap_or(0.0);
        if ops > 0.0 {
            fig.insert("cpu_us_per_op".into(), cpu * 1e6 / ops);
        }
        Ok(fig)
    }
}

/// Parses wrk's report: requests/s, transfer, latency percentiles, errors.
fn parse_wrk(out: &str) -> Result<Figures, String> {
    let mut f = Figures::new();
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            f.insert("req_per_s".into(), v.trim().parse().unwrap_or(0.0));
        } else if let Some(v) = t.strip_prefix("Transfer/sec:") {
            f.insert("mb_per_s".into(), parse_size(v.trim()) / 1e6);
        } else if let Some(rest) = t.strip_suffix("read") {
            // "123456 requests in 3.00s, 12.34MB read"
            if let Some((n, _)) = rest.split_once(" requests in ") {
                f.insert("ops".into(), n.trim().parse().unwrap_or(0.0));
            }
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            f.insert("non_2xx".into(), v.trim().parse().unwrap_or(0.0));
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            let total: f64 = v
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<f64>().ok())
                .sum();
            f.insert("socket_errors".into(), total);
        } else {
            for (pct, key) in [("50%", "p50_us"), ("99%", "p99_us")] {
                if let Some(v) = t.strip_prefix(pct) {
                    if let Some(us) = parse_duration_us(v.trim()) {
                        f.insert(key.into(), us);
                    }
                }
            }
        }
    }
    if !f.contains_key("req_per_s") {
        return Err(format!("could not read wrk's output: {out}"));
    }
    Ok(f)
}

fn parse_duration_us(s: &str) -> Option<f64> {
    let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(num_end);
    let n: f64 = n.parse().ok()?;
    Some(match unit.trim() {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        _ => return None,
    })
}

fn parse_size(s: &str) -> f64 {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(num_end);
    let n: f64 = n.parse().unwrap_or(0.0);
    n * match unit.trim() {
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    }
}

/// Writes the static files the file scenarios serve: 4 KiB and 1 GiB of
/// pseudo-random bytes (a 1 MiB random block repeated, so writing 1 GiB
/// takes about a second).
fn make_files(dir: &Path, big: bool) -> std::io::Result<()> {
    let www = dir.join("www");
    fs::create_dir_all(&www)?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for chunk in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    fs::write(www.join("small.bin"), &block[..4096])?;
    fs::write(www.join("hello.txt"), "Hello, World!")?;
    let big_file = www.join("big.bin");
    if big && fs::metadata(&big_file).map(|m| m.len()).ok() != Some(1 << 30) {
        let mut f = std::io::BufWriter::new(fs::File::create(&big_file)?);
        for _ in 0..1024 {
            f.write_all(&block)?;
        }
        f.flush()?;
    }
    Ok(())
}

/// Makes `tls/key.pem` and `tls/cert.pem` in `dir`: a P-256 key and a
/// self-signed certificate for `localhost`, with the `openssl` command.
fn make_tls_files(dir: &Path) -> Result<(), String> {
    let tls = dir.join("tls");
    fs::create_dir_all(&tls).map_err(|e| e.to_string())?;
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout"])
        .arg(tls.join("key.pem"))
        .arg("-out")
        .arg(tls.join("cert.pem"))
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// nginx with one worker, access log off, sendfile on, serving `{dir}/www`
/// on 127.0.0.1:`{port}`; the config is written per port at start.
fn nginx_server(scratch: &Path) -> Server {
    let script = scratch.join("nginx.sh");
    let body = r#"#!/bin/sh
# Generated by bench-runner: nginx, one worker, on 127.0.0.1:$1 only.
set -e
port=$1; dir=$2; conf=$dir/nginx-$port
mkdir -p $conf/tmp
cat > $conf/nginx.conf <<EOF
worker_processes 1;
daemon off;
pid $conf/nginx.pid;
error_log $conf/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    default_type application/octet-stream;
    client_body_temp_path $conf/tmp/body;
    proxy_temp_path $conf/tmp/proxy;
    fastcgi_temp_path $conf/tmp/fastcgi;
    uwsgi_temp_path $conf/tmp/uwsgi;
    scgi_temp_path $conf/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $dir/www;
    }
}
EOF
exec nginx -p $conf -c $conf/nginx.conf -e $conf/error.log
"#;
    let _ = fs::write(&script, body);
    Server {
        name: "nginx (1 worker)".into(),
        argv: vec![
            "sh".into(),
            script.display().to_string(),
            "{port}".into(),
            "{dir}".into(),
        ],
    }
}

fn exists(p: &Path) -> bool {
    p.is_file()
}

/// Whether `torsion web` exists and how it takes its options.
fn torsion_web(torsion: &Path) -> Option<Server> {
    let out = Command::new(torsion)
        .args(["web", "--help"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let help = String::from_utf8_lossy(&out.stdout);
    if !help.contains("--path") {
        return None;
    }
    Some(Server {
        name: "torsion web".into(),
        argv: vec![
            torsion.display().to_string(),
            "--log-level".into(),
            "warn".into(),
            "web".into(),
            "--path".into(),
            "{dir}/www".into(),
            "--listen".into(),
            "tcp:{port}:interface=127.0.0.1".into(),
        ],
    })
}

fn scenarios(env: &Env) -> Vec<Scenario> {
    let root = &env.root;
    let bin = &env.bin;
    let torsion = root.join("target/release/torsion");
    let chat = root.join("target/release/examples/chat_server");
    let hello = root.join("target/release/examples/hello_world");
    let b = |name: &str| bin.join(name).display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    let torsion_echo = Server {
        name: "torsion echo".into(),
        argv: vec![
            torsion.display().to_string(),
            "--log-level".into(),
            "warn".into(),
            "echo".into(),
            "--listen".into(),
            "tcp:{port}:interface=127.0.0.1".into(),
        ],
    };
    let tokio = |prog: &str, threads: usize, label: &str| Server {
        name: format!(
            "{label} ({})",
            if threads <= 1 {
                "current-thread"
            } else {
                "multi-thread, 2 workers"
            }
        ),
        argv: vec![
            b(prog),
            "--listen".into(),
            "127.0.0.1:{port}".into(),
            "--threads".into(),
            threads.to_string(),
        ],
    };
    // Tokio's echo reading `kib` KiB at a time (8 KiB unless told).
    let tokio_echo_reads = |kib: usize| {
        let mut t = tokio("tokio-echo", 1, "Tokio echo");
        t.name = format!("Tokio echo, {kib} KiB buffer (current-thread)");
        t.argv.extend(["--buf".into(), (kib * 1024).to_string()]);
        t
    };
    // The system calls alone: what the kernel charges any server here.
    let floor = |mode: &str| Server {
        name: format!("{FLOOR} ({mode})"),
        argv: vec![
            b("floor"),
            "--mode".into(),
            mode.into(),
            "--listen".into(),
            "127.0.0.1:{port}".into(),
        ],
    };
    // idle-conns holding `count` connections of `kind` (the run's
    // `--idle` unless given).
    let idle = |count: Option<usize>, kind: &str| {
        let count = count.map_or_else(|| "{idle}".to_string(), |n| n.to_string());
        Load::Bin(
            "idle-conns".into(),
            s(&[
                "--addr",
                "127.0.0.1:{port}",
                "--pid",
                "{pid}",
                "-n",
                &count,
                "--kind",
                kind,
            ]),
        )
    };
    // wrk's keep-alive load: 100 connections on one thread.
    let wrk = |path: &str, tls: bool| Load::Wrk {
        connections: 100,
        path: path.into(),
        threads: 1,
        pipeline: 1,
        tls,
    };
    // The echo floor reading `kib` KiB at a time.
    let floor_reads = |kib: usize| {
        let mut f = floor("echo");
        f.name = format!("{FLOOR} (echo, {kib} KiB reads)");
        f.argv
            .extend(["--read-size".into(), (kib * 1024).to_string()]);
        f
    };
    let torsion_hello = Server {
        name: "torsion hello_world".into(),
        argv: vec![
            hello.display().to_string(),
            "--listen".into(),
            "tcp:{port}:interface=127.0.0.1".into(),
        ],
    };
    // `torsion chat` where the command has it, else the chat example.
    let chat_cmd = Command::new(&torsion)
        .args(["chat", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    let torsion_chat = if chat_cmd {
        Server {
            name: "torsion chat".into(),
            argv: vec![
                torsion.display().to_string(),
                "--log-level".into(),
                "warn".into(),
                "chat".into(),
                "--listen".into(),
                "tcp:{port}:interface=127.0.0.1".into(),
            ],
        }
    } else {
        Server {
            name: "torsion chat_server example".into(),
            argv: vec![
                chat.display().to_string(),
                "--listen".into(),
                "tcp:{port}:interface=127.0.0.1".into(),
            ],
        }
    };
    let web = torsion_web(&torsion);
    let nginx = nginx_server(&env.scratch);
    let have_nginx = Command::new("nginx").arg("-v").output().is_ok();
    let have_wrk = Command::new("wrk").arg("--version").output().is_ok();
    let need_openssl = (
        Command::new("openssl").arg("version").output().is_ok(),
        "openssl (to make the certificate) is not installed".to_string(),
    );

    let mut out = Vec::new();
    let mut add = |mut sc: Scenario, need: Vec<(bool, String)>| {
        let missing: Vec<String> = need
            .into_iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, m)| m)
            .collect();
        if !missing.is_empty() {
            sc.skipped = missing;
            sc.servers.clear();
        }
        out.push(sc);
    };
    let have_torsion = (
        exists(&torsion),
        format!("{} is missing", torsion.display()),
    );

    add(
        Scenario {
            id: "echo-pingpong",
            title: "Echo ping-pong, 100 connections, 64 B messages".into(),
            load: Load::Bin(
                "echo-load".into(),
                s(&[
                    "--addr",
                    "127.0.0.1:{port}",
                    "--mode",
                    "pingpong",
                    "-c",
                    "100",
                    "-s",
                    "64",
                    "-d",
                    "{dur}",
                ]),
            ),
            primary: Primary {
                key: "msgs_per_s",
                unit: "msg/s",
                higher_is_better: true,
            },
            op: "message",
            servers: vec![
                torsion_echo.clone(),
                tokio("tokio-echo", 1, "Tokio echo"),
                tokio("tokio-echo", 2, "Tokio echo"),
                floor("echo"),
            ],
            skipped: vec![],
            cpus: APART,
            backend: None,
        },
        vec![have_torsion.clone()],
    );
    add(
        Scenario {
            id: "echo-stream",
            title: "Echo streaming, 1 connection, 64 KiB blocks, full duplex".into(),
            load: Load::Bin(
                "echo-load".into(),
                s(&[
                    "--addr",
                    "127.0.0.1:{port}",
                    "--mode",
                    "stream",
                    "-s",
                    "65536",
                    "-d",
                    "{dur}",
                ]),
            ),
            primary: Primary {
                key: "mb_per_s",
                unit: "MB/s",
                higher_is_better: true,
            },
            op: "64 KiB block",
            // Tokio reading 64 KiB at a time (the reference of issue 24's
            // targets) and 8 KiB (`tokio::io::copy`'s size, issue 7's);
            // the floor at torsion's read size: the load's core sets the
            // rate here, and how often a server reads moves the load's own
            // kernel work (see BENCHMARKS.md).
            servers: vec![
                torsion_echo.clone(),
                tokio_echo_reads(64),
                tokio_echo_reads(8),
                floor_reads(64),
            ],
            skipped: vec![],
            cpus: APART,
            backend: None,
        },
        vec![have_torsion.clone()],
    );
    // The same streaming load through `torsion portforward` to an echo
    // server (the floor, reading 64 KiB: the cheapest echo there is). The
    // backend runs on the load's CPU, so the forwarder has a core of its
    // own; only the forwarder's CPU is counted.
    let mut echo_backend = floor_reads(64);
    echo_backend.name = "echo backend (floor, 64 KiB reads)".into();
    add(
        Scenario {
            id: "portforward-stream",
            title: "Port forwarding to an echo server, 1 connection, 64 KiB blocks, full duplex"
                .into(),
            load: Load::Bin(
                "echo-load".into(),
                s(&[
                    "--addr",
                    "127.0.0.1:{port}",
                    "--mode",
                    "stream",
                    "-s",
                    "65536",
                    "-d",
                    "{dur}",
                ]),
            ),
            primary: Primary {
                key: "mb_per_s",
                unit: "MB/s",
                higher_is_better: true,
            },
            op: "64 KiB block",
            servers: vec![Server {
                name: "torsion portforward".into(),
                argv: vec![
                    torsion.display().to_string(),
                    "--log-level".into(),
                    "warn".into(),
                    "portforward".into(),
                    "--listen".into(),
                    "tcp:{port}:interface=127.0.0.1".into(),
                    "--connect".into(),
                    "tcp:host=127.0.0.1:port={backend}".into(),
                ],
            }],
            skipped: vec![],
            cpus: APART,
            backend: Some(echo_backend),
        },
        vec![have_torsion.clone()],
    );
    add(
        Scenario {
            id: "chat-fanout",
            title: "Chat fan-out, 100 subscribers + 1 publisher".into(),
            load: Load::Bin(
                "chat-load".into(),
                s(&["--addr", "127.0.0.1:{port}", "-k", "100", "-d", "{dur}"]),
            ),
            primary: Primary {
                key: "lines_per_s",
                unit: "lines/s",
                higher_is_better: true,
            },
            op: "delivered line",
            servers: vec![
                torsion_chat.clone(),
                tokio("tokio-chat", 1, "Tokio chat"),
                {
                    let mut s = tokio("tokio-chat", 1, "Tokio chat, one write per line");
                    s.argv.push("--no-batch".into());
                    s
                },
            ],
            skipped: vec![],
            cpus: APART,
            backend: None,
        },
        vec![(
            exists(&chat),
            format!(
                "{} is missing (cargo build --release --examples)",
                chat.display()
            ),
        )],
    );
    add(
        Scenario {
            id: "idle-echo",
            title: format!("Idle echo connections ({} held)", env.args.idle),
            load: idle(None, "echo"),
            primary: RSS_PER_CONNECTION,
            op: "connection",
            servers: vec![torsion_echo.clone(), tokio("tokio-echo", 1, "Tokio echo")],
            skipped: vec![],
            cpus: APART,
            backend: None,
        },
        vec![have_torsion.clone()],
    );
    // TLS 1.3 on both sides with rustls and ring; the key and certificate
    // are made for the run (see `make_tls_files`).
    let key = "{dir}/tls/key.pem";
    let cert = "{dir}/tls/cert.pem";
    let tls_servers = vec![
        Server {
            name: "torsion hello_world (ssl:)".into(),
            argv: vec![
                hello.display().to_string(),
                "--listen".into(),
                format!("ssl:{{port}}:privateKey={key}:certKey={cert}:interface=127.0.0.1"),
            ],
        },
        Server {
            name: "hyper hello + tokio-rustls (current-thread)".into(),
            argv: vec![
                b("hyper-hello"),
                "--listen".into(),
                "127.0.0.1:{port}".into(),
                "--tls-cert".into(),
                cert.into(),
                "--tls-key".into(),
                key.into(),
            ],
        },
    ];
    // Fewer than the plain scenarios: every one costs a handshake, and the
    // load holds a rustls client per connection.
    let idle_tls = env.args.idle.min(IDLE_TLS);
    let idle_https = Scenario {
        id: "idle-https",
        title: format!("Idle HTTPS keep-alive connections ({idle_tls} held)"),
        load: idle(Some(idle_tls), "https"),
        primary: RSS_PER_CONNECTION,
        op: "connection (handshake and one GET)",
        servers: tls_servers.clone(),
        skipped: vec![],
        cpus: APART,
        backend: None,
    };
    let idle_http = Scenario {
        id: "idle-http",
        title: format!("Idle HTTP keep-alive connections ({} held)", env.args.idle),
        load: idle(None, "http"),
        primary: RSS_PER_CONNECTION,
        op: "connection",
        servers: vec![
            torsion_hello.clone(),
            tokio("hyper-hello", 1, "hyper hello"),
        ],
        skipped: vec![],
        cpus: APART,
        backend: None,
    };
    let need_hello = (
        exists(&hello),
        format!(
            "{} is missing (examples/hello_world.rs not written yet?)",
            hello.display()
        ),
    );
    add(idle_http, vec![need_hello.clone()]);
    add(idle_https, vec![need_hello.clone(), need_openssl.clone()]);
    add(
        Scenario {
            id: "http-hello",
            title: "HTTP hello world, keep-alive, wrk -c100".into(),
            load: wrk("/", false),
            primary: REQUESTS,
            op: "request",
            servers: vec![
                torsion_hello,
                tokio("hyper-hello", 1, "hyper hello"),
                tokio("hyper-hello", 2, "hyper hello"),
                floor("http"),
            ],
            skipped: vec![],
            cpus: APART,
            backend: None,
        },
        vec![
            need_hello.clone(),
            (have_wrk, "wrk is not installed".into()),
        ],
    );
    add(
        Scenario {
            id: "https-hello",
            title: "HTTPS hello world, keep-alive, wrk -c100 (TLS 1.3, rustls with ring)".into(),
            load: wrk("/", true),
            primary: REQUESTS,
            op: "request",
            servers: tls_servers,
            skipped: vec![],
            cpus: APART,
            backend: None,
        },
        vec![
            need_hello,
            (have_wrk, "wrk is not installed".into()),
            need_openssl.clone(),
        ],
    );
    let web_servers = |w: &Option<Server>| match w {
        Some(w) => vec![w.clone(), nginx.clone()],
        None => vec![],
    };
    add(
        Scenario {
            id: "static-4k",
            title: "Static 4 KiB file, keep-alive, wrk -c100".into(),
            load: wrk("/small.bin", false),
            primary: REQUESTS,
            op: "request",
            servers: web_servers(&web),
            skipped: vec![],
            cpus: APART,
            backend: None,
        },
        vec![
            (
                web.is_some(),
                "`torsion web --path` does not exist yet".into(),
            ),
            (have_nginx, "nginx is not installed".into()),
            (have_wrk, "wrk is not installed".into()),
        ],
    );
    add(
        Scenario {
            id: "static-1g",
            title: "Static 1 GiB file, 1 keep-alive connection, 1 MiB reads".into(),
            load: Load::Bin(
                "http-download".into(),
                s(&[
                    "--addr",
                    "127.0.0.1:{port}",
                    "--path",
                    "/big.bin",
                    "-c",
                    "1",
                    "-d",
                    "{dur}",
                ]),
            ),
            primary: Primary {
                key: "mb_per_s",
                unit: "MB/s",
                higher_is_better: true,
            },
            op: "MiB",
            servers: web_servers(&web),
            skipped: vec![],
            cpus: APART,
            backend: None,
        },
        vec![
            (
                web.is_some(),
                "`torsion web --path` does not exist yet".into(),
            ),
            (have_nginx, "nginx is not installed".into()),
        ],
    );
    // `--workers`: this machine has two cores and no third for the load,
    // so servers and load share both. The load pipelines 16 requests per
    // write and only counts response bytes (`http-pipeline`), so it takes
    // a small share of the machine; it reports that share.
    let web_workers = |n: usize| {
        web.clone().map(|mut w| {
            w.name = format!("torsion web --workers {n}");
            w.argv
                .splice(1..1, ["--workers".to_string(), n.to_string()]);
            w
        })
    };
    add(
        Scenario {
            id: "workers",
            title: "`--workers`: 13-byte file via `torsion web`, 100 connections × 16 pipelined GETs (`http-pipeline`); servers and load share CPUs 0–1".into(),
            load: Load::Bin(
                "http-pipeline".into(),
                s(&[
                    "--addr",
                    "127.0.0.1:{port}",
                    "--path",
                    "/hello.txt",
                    "-c",
                    "100",
                    "--depth",
                    "16",
                    "-d",
                    "{dur}",
                ]),
            ),
            primary: Primary {
                key: "req_per_s",
                unit: "req/s",
                higher_is_better: true,
            },
            op: "request",
            servers: web_workers(2).into_iter().chain(web_workers(1)).collect(),
            skipped: vec![],
            cpus: Cpus {
                server: "0,1",
                load: "0,1",
            },
            backend: None,
        },
        vec![(
            web.is_some(),
            "`torsion web --path` does not exist yet".into(),
        )],
    );
    let timer = |name: &str, imp: &str| Server {
        name: name.into(),
        argv: vec!["--impl".into(), imp.into()],
    };
    add(
        Scenario {
            id: "timers",
            title: "Timers: 1,000,000 scheduled, half cancelled, rest fired (in process, CPU 0)"
                .into(),
            load: Load::InProcess("timer-churn".into(), s(&["-n", "1000000"])),
            primary: Primary {
                key: "schedule_cancel_ms",
                unit: "ms to schedule+cancel",
                higher_is_better: false,
            },
            op: "timer",
            servers: vec![
                timer("torsion call_later", "torsion"),
                timer("tokio-util DelayQueue", "tokio-delayqueue"),
                timer("tokio spawn+sleep", "tokio-spawn"),
            ],
            skipped: vec![],
            cpus: APART,
            backend: None,
        },
        vec![],
    );
    out
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        let s = format!("{:.0}", v);
        // Thousands separators for readability.
        let (sign, digits) = s.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &s));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Medians of every key over runs.
fn medians(runs: &[Figures]) -> Figures {
    let mut keys: Vec<&String> = runs.iter().flat_map(|r| r.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let v: Vec<f64> = runs.iter().filter_map(|r| r.get(k).copied()).collect();
            (k.clone(), median(&v))
        })
        .collect()
}

/// The median, over the repeats, of `a`'s figure over `b`'s in the same
/// repeat, for every figure both have: runs of one repeat are adjacent in
/// time, so a drift in the machine's speed cancels out of each ratio.
fn paired(a: &[Figures], b: &[Figures]) -> Figures {
    let mut ratios: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for ra in a {
        let Some(rb) = b.iter().find(|rb| rb.get("repeat") == ra.get("repeat")) else {
            continue;
        };
        for (k, va) in ra {
            if k == "repeat" {
                continue;
            }
            if let Some(vb) = rb.get(k) {
                let r = ratio(*va, *vb);
                if r.is_finite() {
                    ratios.entry(k.clone()).or_default().push(r);
                }
            }
        }
    }
    ratios.into_iter().map(|(k, v)| (k, median(&v))).collect()
}

struct Outcome {
    scenario: Scenario,
    /// Per server: the runs that succeeded and the errors.
    results: Vec<(Server, Vec<Figures>, Vec<String>)>,
}

fn main() {
    let args = Args::parse();
    let root = fs::canonicalize(&args.root).unwrap_or_else(|_| args.root.clone());
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let scratch = std::env::temp_dir().join(format!("torsion-bench-{}", std::process::id()));
    if let Err(e) = fs::create_dir_all(&scratch) {
        eprintln!("bench-runner: cannot create {}: {e}", scratch.display());
        std::process::exit(1);
    }
    let mut env = Env {
        clk_tck: procfs::clock_ticks(),
        root,
        bin,
        scratch: scratch.clone(),
        raw: String::new(),
        args,
    };
    let mut all = scenarios(&env);
    if let Some(base) = &env.args.baseline {
        let base = fs::canonicalize(base).unwrap_or_else(|_| base.clone());
        for sc in &mut all {
            let extra = baseline_servers(&sc.servers, &env.root, &base);
            sc.servers.extend(extra);
        }
    }
    let wanted = |id: &str| env.args.only.is_empty() || env.args.only.iter().any(|o| o == id);
    let selected: Vec<Scenario> = all.into_iter().filter(|s| wanted(s.id)).collect();
    let serves_files =
        |s: &Scenario| (s.id.starts_with("static") || s.id == "workers") && !s.servers.is_empty();
    if selected.iter().any(serves_files) {
        let big = selected.iter().any(|s| s.id == "static-1g");
        eprintln!(
            "writing the static files (13 B, 4 KiB{}) into {}",
            if big { ", 1 GiB" } else { "" },
            scratch.display()
        );
        if let Err(e) = make_files(&scratch, big) {
            eprintln!("bench-runner: cannot write the static files: {e}");
        }
    }

    let uses_tls = |s: &Scenario| s.id.contains("https") && !s.servers.is_empty();
    if selected.iter().any(uses_tls) {
        if let Err(e) = make_tls_files(&scratch) {
            eprintln!("bench-runner: cannot make the TLS key and certificate: {e}");
        }
    }

    let started = Instant::now();
    let mut outcomes = Vec::new();
    for sc in selected {
        eprintln!("== {} ==", sc.title);
        for why in &sc.skipped {
            eprintln!("  skipped: {why}");
        }
        let mut results: Vec<(Server, Vec<Figures>, Vec<String>)> = sc
            .servers
            .iter()
            .map(|s| (s.clone(), Vec::new(), Vec::new()))
            .collect();
        for rep in 0..env.args.repeats {
            for (server, runs, errors) in results.iter_mut() {
                match env.run_once(&sc, server) {
                    Ok(mut fig) => {
                        let p = fig.get(sc.primary.key).copied().unwrap_or(f64::NAN);
                        let cpu = fig.get("cpu_us_per_op").copied().unwrap_or(f64::NAN);
                        eprintln!(
                            "  run {}: {:<40} {:>12} {}   server CPU {} µs/{}",
                            rep + 1,
                            server.name,
                            fmt_num(p),
                            sc.primary.unit,
                            fmt_num(cpu),
                            sc.op
                        );
                        let _ = writeln!(
                            env.raw,
                            "{}\t{}\trun {}\t{}",
                            sc.id,
                            server.name,
                            rep + 1,
                            fig.iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        );
                        fig.insert("repeat".into(), rep as f64);
                        runs.push(fig);
                    }
                    Err(e) => {
                        eprintln!("  run {}: {} FAILED: {e}", rep + 1, server.name);
                        let _ = writeln!(
                            env.raw,
                            "{}\t{}\trun {}\tFAILED {e}",
                            sc.id,
                            server.name,
                            rep + 1
                        );
                        errors.push(e);
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        outcomes.push(Outcome {
            scenario: sc,
            results,
        });
    }
    let elapsed = started.elapsed();
    let table = render(&env, &outcomes, elapsed);
    println!("{table}");
    if let Some(p) = &env.args.out {
        if let Err(e) = fs::write(p, &table) {
            eprintln!("bench-runner: cannot write {}: {e}", p.display());
        }
    }
    if let Some(p) = &env.args.raw {
        if let Err(e) = fs::write(p, &env.raw) {
            eprintln!("bench-runner: cannot write {}: {e}", p.display());
        }
    }
    let _ = fs::remove_dir_all(&scratch);
}

/// The servers among `servers` that run a program built by the root
/// workspace at `root` (`target/`: torsion and its examples, not the
/// bench's own peers), run instead from the one at `base` and named
/// "... (baseline)".
fn baseline_servers(servers: &[Server], root: &Path, base: &Path) -> Vec<Server> {
    servers
        .iter()
        .filter_map(|server| {
            let program = Path::new(server.argv.first()?);
            let rel = program.strip_prefix(root.join("target")).ok()?;
            let mut b = server.clone();
            b.argv[0] = base.join("target").join(rel).display().to_string();
            b.name = format!("{} (baseline)", server.name);
            Some(b)
        })
        .collect()
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 && a.is_finite() {
        a / b
    } else {
        f64::NAN
    }
}

fn render(env: &Env, outcomes: &[Outcome], elapsed: Duration) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Medians of {} runs each, {} s of load per run; servers on CPU 0, load on CPU 1. \
         Ratios are torsion / the peer named, the median over the repeats of the two servers' \
         figures in the same repeat (adjacent in time, so a drift of the machine's speed \
         cancels); targets are judged against the peer named first in each group \
         (throughput: higher is better for torsion; CPU per operation: lower is better). \
         Total time {:.0} s.\n",
        env.args.repeats,
        env.args.duration,
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        t,
        "| scenario | server | runs | median | unit | p50 / p99 latency | server CPU per op | ratio (figure) | ratio (CPU/op) | notes |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|");
    let mut targets: Vec<String> = Vec::new();
    for o in outcomes {
        let sc = &o.scenario;
        if o.results.is_empty() {
            let _ = writeln!(
                t,
                "| {} | *skipped: {}* | | | | | | | | |",
                sc.title,
                sc.skipped.join("; ")
            );
            continue;
        }
        let meds: Vec<Figures> = o.results.iter().map(|(_, runs, _)| medians(runs)).collect();
        let reference = meds.get(1).cloned().unwrap_or_default();
        let torsion = meds.first().cloned().unwrap_or_default();
        for (i, ((server, runs, errors), m)) in o.results.iter().zip(&meds).enumerate() {
            let p = m.get(sc.primary.key).copied().unwrap_or(f64::NAN);
            let cpu = m.get("cpu_us_per_op").copied().unwrap_or(f64::NAN);
            let lat = match (m.get("p50_us"), m.get("p99_us")) {
                (Some(a), Some(b)) => format!("{} / {} µs", fmt_num(*a), fmt_num(*b)),
                _ => String::new(),
            };
            // An idle connection's CPU is its setup, which only a TLS
            // handshake makes worth a column.
            let cpu_s = if sc.id == "timers" || (sc.id.starts_with("idle") && sc.id != "idle-https")
            {
                String::new()
            } else {
                match m.get("server_kernel_share") {
                    Some(k) => format!("{} µs/{} ({:.0} % kernel)", fmt_num(cpu), sc.op, k * 100.0),
                    None => format!("{} µs/{}", fmt_num(cpu), sc.op),
                }
            };
            let (r1, r2) = if i == 0 {
                (String::new(), String::new())
            } else {
                let vs = paired(&o.results[0].1, runs);
                let r_fig = vs.get(sc.primary.key).copied().unwrap_or(f64::NAN);
                let r_cpu = vs.get("cpu_us_per_op").copied().unwrap_or(f64::NAN);
                (
                    format!("{:.2}×", r_fig),
                    if cpu_s.is_empty() {
                        String::new()
                    } else {
                        format!("{:.2}×", r_cpu)
                    },
                )
            };
            let runs_s = if errors.is_empty() {
                runs.len().to_string()
            } else {
                format!("{} ({} failed)", runs.len(), errors.len())
            };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                if i == 0 { sc.title.as_str() } else { "" },
                server.name,
                runs_s,
                fmt_num(p),
                if sc.primary.higher_is_better {
                    format!("{} (higher is better)", sc.primary.unit)
                } else {
                    format!("{} (lower is better)", sc.primary.unit)
                },
                lat,
                cpu_s,
                r1,
                r2,
                notes(sc, m)
            );
        }
        let peer_runs = o.results.get(1).map_or(&[][..], |(_, runs, _)| &runs[..]);
        let vs_peer = paired(&o.results[0].1, peer_runs);
        let floor = o
            .results
            .iter()
            .find(|(server, _, _)| server.name.starts_with(FLOOR))
            .map(|(_, runs, _)| paired(runs, peer_runs));
        targets.extend(judge(sc, &torsion, &reference, &vs_peer, floor.as_ref()));
    }
    if !targets.is_empty() {
        let _ = writeln!(t, "\nTargets of issues 7 and 24 (medians of this run):\n");
        for line in targets {
            let _ = writeln!(t, "- {line}");
        }
    }
    t
}

/// What else a row should say: timers' other phases and memory, how many
/// idle connections were held, errors the load saw.
fn notes(sc: &Scenario, m: &Figures) -> String {
    let g = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
    let mut parts = Vec::new();
    match sc.id {
        "timers" => parts.push(format!(
            "fire {} ms; peak {} MiB ({} B/timer)",
            fmt_num(g("fire_ms")),
            fmt_num(g("peak_mib")),
            fmt_num(g("peak_bytes_per_timer"))
        )),
        id if id.starts_with("idle") => parts.push(format!("{} held", fmt_num(g("held")))),
        "echo-pingpong" => parts.push(format!("{} MB/s", fmt_num(g("mb_per_s")))),
        "chat-fanout" => parts.push(format!("{} lines published", fmt_num(g("published")))),
        "workers" => parts.push(format!(
            "server {} CPU-s, load {} CPU-s in {} s",
            fmt_num(g("server_cpu_s")),
            fmt_num(g("load_cpu_s")),
            fmt_num(g("secs"))
        )),
        _ => {}
    }
    for k in ["non_2xx", "socket_errors", "errors"] {
        if g(k) > 0.0 {
            parts.push(format!("{k}: {}", fmt_num(g(k))));
        }
    }
    parts.join("; ")
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**not met**"
    }
}

/// The issue's targets for one scenario, judged on this run's medians.
///
/// `vs` holds the paired ratios of torsion's figures to the peer's (see
/// [`paired`]); with a `floor` row (its paired ratios to the peer), a
/// target also says where the floor lies: the floor's CPU per operation
/// over the peer's is the lowest any server on the same system calls could
/// reach.
fn judge(
    sc: &Scenario,
    tor: &Figures,
    peer: &Figures,
    vs: &Figures,
    floor: Option<&Figures>,
) -> Vec<String> {
    let g = |f: &Figures, k: &str| f.get(k).copied().unwrap_or(f64::NAN);
    let floor_note = |key: &str| match floor {
        Some(f) => format!(
            " (the floor, system calls only: {:.2}× the peer's {})",
            g(f, key),
            if key == "cpu_us_per_op" {
                "CPU"
            } else {
                "rate"
            }
        ),
        None => String::new(),
    };
    let mut v = Vec::new();
    match sc.id {
        "echo-pingpong" => {
            let r = g(vs, "msgs_per_s");
            let c = g(vs, "cpu_us_per_op");
            let p99 = g(vs, "p99_us");
            v.push(format!(
                "Echo ping-pong ≥ 1.10× Tokio current-thread msg/s: {r:.2}×{} — {}",
                floor_note("msgs_per_s"),
                verdict(r >= 1.10)
            ));
            v.push(format!(
                "Echo ping-pong ≤ 0.85× Tokio CPU per message: {c:.2}×{} — {}",
                floor_note("cpu_us_per_op"),
                verdict(c <= 0.85)
            ));
            v.push(format!(
                // Judged, as the other targets, on the ratio within each
                // repeat; the medians of the two servers' p99 are shown
                // beside it and may disagree with it when runs swing.
                "Echo ping-pong p99 no worse than Tokio: {p99:.2}× (medians {} vs {} µs) — {}",
                fmt_num(g(tor, "p99_us")),
                fmt_num(g(peer, "p99_us")),
                verdict(p99 <= 1.0)
            ));
        }
        "echo-stream" => {
            // Issue 24's targets, against Tokio reading 64 KiB at a time.
            let r = g(vs, "mb_per_s");
            let c = g(vs, "cpu_us_per_op");
            v.push(format!(
                "Echo streaming ≥ 1.0× the MB/s of Tokio with a 64 KiB buffer: {r:.2}×{} — {}",
                floor_note("mb_per_s"),
                verdict(r >= 1.0)
            ));
            v.push(format!(
                "Echo streaming ≤ 0.8× the CPU per MB of Tokio with a 64 KiB buffer: {c:.2}×{} — {}",
                floor_note("cpu_us_per_op"),
                verdict(c <= 0.8)
            ));
        }
        "http-hello" => {
            let r = g(vs, "req_per_s");
            let c = g(vs, "cpu_us_per_op");
            v.push(format!(
                "HTTP hello ≥ 1.10× hyper current-thread req/s: {r:.2}×{} — {}",
                floor_note("req_per_s"),
                verdict(r >= 1.10)
            ));
            v.push(format!(
                "HTTP hello ≤ 0.85× hyper CPU per request: {c:.2}×{} — {}",
                floor_note("cpu_us_per_op"),
                verdict(c <= 0.85)
            ));
        }
        "static-4k" => {
            let r = g(vs, "req_per_s");
            v.push(format!(
                "Static 4 KiB ≥ 1.0× nginx req/s: {r:.2}× — {}",
                verdict(r >= 1.0)
            ));
        }
        "workers" => {
            let r = g(vs, "req_per_s");
            v.push(format!(
                "`--workers 2` ≥ 1.8× `--workers 1` req/s: {r:.2}× with the load sharing the two cores — {}",
                verdict(r >= 1.8)
            ));
        }
        "static-1g" => {
            let r = g(vs, "mb_per_s");
            v.push(format!(
                "Static 1 GiB ≥ 0.9× nginx MB/s: {r:.2}× — {}",
                verdict(r >= 0.9)
            ));
        }
        "chat-fanout" => {
            let c = g(vs, "cpu_us_per_op");
            v.push(format!(
                "Chat fan-out ≤ 0.8× Tokio CPU per delivered line: {c:.2}× — {}",
                verdict(c <= 0.8)
            ));
        }
        "idle-echo" | "idle-http" => {
            let (what, limit) = if sc.id == "idle-echo" {
                ("Idle echo", 256.0)
            } else {
                ("Idle HTTP keep-alive", 512.0)
            };
            let b = g(tor, "bytes_per_conn");
            let held = g(tor, "held");
            v.push(format!(
                "{what} ≤ {limit} B RSS per connection: {} B ({} held) — {}",
                fmt_num(b),
                fmt_num(held),
                verdict(b <= limit && held >= 19_000.0)
            ));
        }
        "timers" => {
            let ms = g(tor, "schedule_cancel_ms");
            v.push(format!(
                "Timers: 1,000,000 scheduled and half cancelled < 1 s: {} ms (then {} ms to fire the rest; peak {} MiB) — {}",
                fmt_num(ms),
                fmt_num(g(tor, "fire_ms")),
                fmt_num(g(tor, "peak_mib")),
                verdict(ms < 1000.0)
            ));
        }
        _ => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(repeat: usize, rate: f64) -> Figures {
        Figures::from([
            ("repeat".to_string(), repeat as f64),
            ("rate".to_string(), rate),
        ])
    }

    #[test]
    fn baseline_rows_run_the_same_programs_from_the_other_tree() {
        let servers = [
            Server {
                name: "torsion echo".into(),
                argv: vec!["/new/target/release/torsion".into(), "echo".into()],
            },
            Server {
                name: "Tokio echo".into(),
                argv: vec!["/new/bench/target/release/tokio-echo".into()],
            },
            Server {
                name: "nginx".into(),
                argv: vec!["nginx".into()],
            },
        ];
        let b = baseline_servers(&servers, Path::new("/new"), Path::new("/old"));
        assert_eq!(b.len(), 1, "only torsion's programs get a baseline row");
        assert_eq!(b[0].name, "torsion echo (baseline)");
        assert_eq!(b[0].argv, ["/old/target/release/torsion", "echo"]);
    }

    #[test]
    fn paired_ratios_cancel_a_drift_between_repeats() {
        // The machine halves its speed after the first repeat: both servers
        // slow alike, and each repeat's ratio stays 1.25.
        let a = [run(0, 125.0), run(1, 62.5), run(2, 62.5)];
        let b = [run(0, 100.0), run(1, 50.0), run(2, 50.0)];
        assert_eq!(paired(&a, &b)["rate"], 1.25);
        // A repeat one side lost is left out, not paired with another.
        let b = [run(0, 100.0), run(2, 25.0)];
        assert_eq!(paired(&a, &b)["rate"], (1.25 + 2.5) / 2.0);
    }
}
