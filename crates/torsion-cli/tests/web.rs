//! `torsion web` as a process, over real loopback sockets, with curl as
//! the client: GET, HEAD, ranges, conditional requests, keep-alive across
//! several URLs, the access log, startup errors, and a graceful stop that
//! finishes the download under way.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{first_difference, random_bytes, run_bounded, Server, BIN, LOOPBACK, PATIENCE};

/// A directory of its own, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("torsion-web-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(p.join("www/docs")).unwrap();
        Dir(p)
    }
    fn www(&self) -> PathBuf {
        self.0.join("www")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn web(root: &Path, extra: &[&str]) -> Server {
    Server::start(
        Command::new(BIN)
            .args(["web", "--listen", LOOPBACK, "--path"])
            .arg(root)
            .args(extra),
        1,
    )
}

fn have_curl() -> bool {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "curl is missing under CI: .ci/run must install it"
        );
        eprintln!("curl not found; skipping");
    }
    ok
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn curl_gets_files_heads_ranges_and_reuses_the_connection() {
    if !have_curl() {
        return;
    }
    let dir = Dir::new("curl");
    let blob = random_bytes(80, 3 << 20);
    fs::write(dir.www().join("blob.bin"), &blob).unwrap();
    fs::write(dir.www().join("index.html"), "<h1>home</h1>").unwrap();
    fs::write(dir.www().join("docs/notes.txt"), "notes\n").unwrap();
    let log = dir.0.join("access.log");
    let server = web(&dir.www(), &["--access-log", log.to_str().unwrap()]);
    let base = format!("http://{}", server.addr());

    let got = curl(&[&format!("{base}/blob.bin")]);
    assert!(
        got == blob,
        "differs at {:?}",
        first_difference(&got, &blob)
    );
    assert_eq!(curl(&[&format!("{base}/")]), b"<h1>home</h1>");

    let head = String::from_utf8(curl(&["--head", &format!("{base}/blob.bin")])).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains(&format!("Content-Length: {}\r\n", blob.len())));

    let part = curl(&["--range", "100-199", &format!("{base}/blob.bin")]);
    assert_eq!(part, &blob[100..200]);

    let listing = String::from_utf8(curl(&["--location", &format!("{base}/docs")])).unwrap();
    assert!(listing.contains("notes.txt"), "{listing}");

    let mut args = vec![
        "--write-out".to_string(),
        "%{http_code}:%{num_connects} ".to_string(),
    ];
    for path in ["/", "/blob.bin", "/docs/", "/docs/notes.txt", "/nope"] {
        args.extend([
            "--output".into(),
            "/dev/null".into(),
            format!("{base}{path}"),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let codes = String::from_utf8(curl(&args)).unwrap();
    assert_eq!(codes, "200:1 200:0 200:0 200:0 404:0 ");

    // The server writes a request's log line after its response went out,
    // so curl may be done first: wait (bounded) for the last line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let log = loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if text.contains("\"GET /nope HTTP/1.1\" 404 ") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    drop(server);
    assert!(log.lines().count() >= 10, "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("127.0.0.1 - - [") && l.contains("\"GET /nope HTTP/1.1\" 404 ")),
        "{log}"
    );
}

#[test]
fn a_missing_path_fails_at_startup_naming_it() {
    let out = run_bounded(Command::new(BIN).args([
        "web",
        "--listen",
        LOOPBACK,
        "--path",
        "/no/such/dir/for/torsion",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("/no/such/dir/for/torsion"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("listening on"), "{}", out.stderr);
}

/// Status, headers and body of one curl request (`--path-as-is`, so the
/// path goes out exactly as written), plus what curl says of it.
fn curl_raw(args: &[&str]) -> String {
    let mut all = vec!["--path-as-is", "--include"];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&curl(&all)).into_owned()
}

#[test]
fn curl_is_never_redirected_to_another_host_and_dot_segments_are_served() {
    if !have_curl() {
        return;
    }
    let dir = Dir::new("redirect");
    fs::create_dir_all(dir.www().join("evil.example")).unwrap();
    fs::write(dir.www().join("evil.example/index.html"), "still here").unwrap();
    fs::write(dir.www().join("top.txt"), "top\n").unwrap();
    let server = web(&dir.www(), &[]);
    let base = format!("http://{}", server.addr());

    let got = curl_raw(&[&format!("{base}//evil.example")]);
    assert!(got.starts_with("HTTP/1.1 301 "), "{got}");
    assert!(got.contains("\r\nLocation: ./evil.example/\r\n"), "{got}");
    // Followed as a browser would: to this server, not to evil.example
    // (curl removes the dot segment and the empty one it resolves to).
    let followed = curl_raw(&[
        "--location",
        "--max-redirs",
        "1",
        "--write-out",
        "\n%{num_redirects} %{url_effective}",
        &format!("{base}//evil.example"),
    ]);
    assert!(
        followed.ends_with(&format!("still here\n1 {base}/evil.example/")),
        "{followed}"
    );
    for path in [
        "/docs/../top.txt",
        "/./top.txt",
        "/../top.txt",
        "/docs/%2e%2e/top.txt",
    ] {
        let got = curl_raw(&[&format!("{base}{path}")]);
        assert!(got.starts_with("HTTP/1.1 200 "), "{path}: {got}");
        assert!(got.ends_with("\r\n\r\ntop\n"), "{path}: {got}");
        assert!(
            got.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{got}"
        );
    }
    let got = curl_raw(&["--request", "BREW", &format!("{base}/top.txt")]);
    assert!(got.starts_with("HTTP/1.1 501 "), "{got}");
    let got = curl_raw(&["--request", "OPTIONS", &format!("{base}/nope.txt")]);
    assert!(got.starts_with("HTTP/1.1 404 "), "{got}");
}

#[test]
fn hidden_files_and_cache_control_follow_their_flags() {
    if !have_curl() {
        return;
    }
    let dir = Dir::new("hidden");
    fs::create_dir_all(dir.www().join(".git")).unwrap();
    fs::write(dir.www().join(".git/config"), "[core]\n").unwrap();
    fs::write(dir.www().join("a.txt"), "a\n").unwrap();
    let plain = web(&dir.www(), &[]);
    let base = format!("http://{}", plain.addr());
    let got = curl_raw(&[&format!("{base}/.git/config")]);
    assert!(got.starts_with("HTTP/1.1 404 "), "{got}");
    let listing = curl_raw(&[&format!("{base}/")]);
    assert!(!listing.contains(".git"), "{listing}");
    let got = curl_raw(&[&format!("{base}/a.txt")]);
    assert!(!got.to_ascii_lowercase().contains("cache-control"), "{got}");
    drop(plain);

    let shown = web(
        &dir.www(),
        &["--show-hidden", "--cache-control", "public, max-age=60"],
    );
    let base = format!("http://{}", shown.addr());
    let got = curl_raw(&[&format!("{base}/.git/config")]);
    assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
    assert!(got.ends_with("[core]\n"), "{got}");
    assert!(
        got.contains("\r\nCache-Control: public, max-age=60\r\n"),
        "{got}"
    );
    let listing = curl_raw(&[&format!("{base}/")]);
    assert!(listing.contains(">.git/<"), "{listing}");
    drop(shown);

    let out = run_bounded(Command::new(BIN).args([
        "web",
        "--listen",
        LOOPBACK,
        "--path",
        dir.www().to_str().unwrap(),
        "--cache-control",
        "max-age=60\r\nSet-Cookie: x=1",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("--cache-control"), "{}", out.stderr);
}

#[test]
fn a_head_with_bare_cr_line_ends_is_answered_400_at_once() {
    let dir = Dir::new("bare-cr");
    let server = web(&dir.www(), &[]);
    let mut s = TcpStream::connect(server.addr()).unwrap();
    // Far below the 20 s head timeout, which the answer must not wait for.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\rHost: t\r\r").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400 "), "{out:?}");
}

#[test]
fn help_shows_the_defaults() {
    let out = run_bounded(Command::new(BIN).args(["web", "--help"]));
    assert!(out.status.success(), "{}", out.stderr);
    for needle in [
        "--listen",
        "tcp:8080",
        "--path",
        "--access-log",
        "--show-hidden",
        "--cache-control",
        "Examples:",
    ] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
    let out = run_bounded(Command::new(BIN).arg("--help"));
    assert!(out.stdout.contains("torsion web"), "{}", out.stdout);
}

#[test]
fn sigterm_lets_the_download_under_way_finish_then_exits_zero() {
    let dir = Dir::new("graceful");
    let blob = random_bytes(81, 32 << 20);
    fs::write(dir.www().join("big.bin"), &blob).unwrap();
    let mut server = web(&dir.www(), &[]);
    let mut s = TcpStream::connect_timeout(&server.addr(), PATIENCE).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The response has started...
    let mut first = vec![0u8; 4096];
    s.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));
    // ...when the server is asked to stop. It cannot have sent 32 MiB
    // into the socket yet: the rest must come after the signal.
    server.signal("TERM");
    assert!(
        server.wait_for_line("shutdown signal"),
        "{}",
        server.log_text()
    );
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let mut all = first;
    all.extend_from_slice(&rest);
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", blob.len())),
        "{head}"
    );
    let body = &all[split..];
    assert!(
        body == &blob[..],
        "download cut: got {} of {} bytes, first difference at {:?}",
        body.len(),
        blob.len(),
        first_difference(body, &blob)
    );
    let status = server.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(status.success(), "{status:?}");
}
