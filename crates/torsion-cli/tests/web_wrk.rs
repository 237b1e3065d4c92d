//! `torsion web` under `wrk` (a load generator nobody here wrote) for
//! 10 s with a few keep-alive connections, serving a small file: every
//! response must be a 2xx and no socket error may happen. The figures
//! are printed for the record; this is not a benchmark (see `bench/`).

mod support;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{wait_child, Server, BIN, LOOPBACK};

fn have_wrk() -> bool {
    // `wrk` with no arguments prints its usage and exits 1: being able
    // to run it is what counts.
    let ok = Command::new("wrk")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "wrk is missing under CI: .ci/run must install it"
        );
        eprintln!("wrk not found; skipping");
    }
    ok
}

/// What wrk reported.
#[derive(Debug, Default, PartialEq)]
struct Report {
    requests: u64,
    /// connect, read, write, timeout; all zero when wrk prints no line.
    socket_errors: [u64; 4],
    non_2xx_3xx: u64,
    requests_per_sec: f64,
}

fn parse_wrk(out: &str) -> Option<Report> {
    let mut r = Report::default();
    let mut saw_requests = false;
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            for (i, part) in rest.split(',').enumerate().take(4) {
                r.socket_errors[i] = part.split_whitespace().nth(1)?.parse().ok()?;
            }
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx_3xx = rest.trim().parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("Requests/sec:") {
            r.requests_per_sec = rest.trim().parse().ok()?;
        } else if line.contains(" requests in ") {
            r.requests = line.split_whitespace().next()?.parse().ok()?;
            saw_requests = true;
        }
    }
    saw_requests.then_some(r)
}

#[test]
fn wrk_output_is_parsed() {
    let ok = "Running 10s test @ http://127.0.0.1:1/x\n  2 threads and 8 connections\n\
              \x20 123456 requests in 10.00s, 45.67MB read\nRequests/sec:  12345.67\n\
              Transfer/sec:      4.56MB\n";
    assert_eq!(
        parse_wrk(ok),
        Some(Report {
            requests: 123456,
            requests_per_sec: 12345.67,
            ..Report::default()
        })
    );
    let bad = "  10 requests in 10.00s, 1MB read\n  Socket errors: connect 0, read 3, write 1, timeout 2\n\
               \x20 Non-2xx or 3xx responses: 5\nRequests/sec: 1.00\n";
    let r = parse_wrk(bad).unwrap();
    assert_eq!(r.socket_errors, [0, 3, 1, 2]);
    assert_eq!(r.non_2xx_3xx, 5);
    assert_eq!(parse_wrk("unable to connect"), None);
}

#[test]
fn wrk_for_ten_seconds_gets_only_2xx_and_no_socket_errors() {
    if !have_wrk() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("torsion-web-wrk-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let page = "<!DOCTYPE html>\n<title>wrk</title>\n<p>a small file, served again and again</p>\n";
    fs::write(dir.join("index.html"), page.repeat(8)).unwrap();
    let server = Server::start(
        Command::new(BIN)
            .args(["web", "--listen", LOOPBACK, "--path"])
            .arg(&dir),
        1,
    );
    let url = format!("http://{}/index.html", server.addr());
    let mut wrk = Command::new("wrk")
        .args(["--threads", "2", "--connections", "8", "--duration", "10s"])
        .args(["--timeout", "5s", "--latency", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wrk");
    let status = wait_child(&mut wrk, Duration::from_secs(40));
    if status.is_none() {
        let _ = wrk.kill();
    }
    let out = wrk.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = fs::remove_dir_all(&dir);
    eprintln!("{stdout}{stderr}");
    assert!(
        status.is_some_and(|s| s.success()),
        "wrk: {status:?}\n{stdout}\n{stderr}"
    );
    let report = parse_wrk(&stdout).unwrap_or_else(|| panic!("wrk said:\n{stdout}"));
    assert_eq!(report.socket_errors, [0; 4], "{stdout}");
    assert_eq!(report.non_2xx_3xx, 0, "{stdout}");
    assert!(report.requests >= 1000, "{stdout}");
    assert!(
        server.lines_containing("panic").is_empty(),
        "{}",
        server.log_text()
    );
}
