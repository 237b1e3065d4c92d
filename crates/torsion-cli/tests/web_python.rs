//! `torsion web` as a process, with Python's `http.client` as the client
//! (standard library only): eleven requests pipelined on one socket —
//! small and large files, HEAD, ranges, a 404, a redirect, a listing, a
//! gzipped page, a conditional request, `Connection: close` — answered
//! in order and checked byte for byte against the files served. The
//! script is `tests/python/pipeline.py`.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{random_bytes, wait_child, Server, BIN, LOOPBACK};

/// A directory of its own, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn have_python() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is missing under CI"
        );
        eprintln!("python3 not found; skipping");
    }
    ok
}

#[test]
fn python_http_client_reads_eleven_pipelined_responses_in_order() {
    if !have_python() {
        return;
    }
    let dir = Dir(std::env::temp_dir().join(format!("torsion-web-python-{}", std::process::id())));
    let _ = fs::remove_dir_all(&dir.0);
    fs::create_dir_all(dir.0.join("docs")).unwrap();
    fs::write(dir.0.join("index.txt"), "the index\n").unwrap();
    fs::write(dir.0.join("docs/notes.txt"), "notes\n").unwrap();
    let page = "<p>compress me, compress me, compress me</p>\n".repeat(100);
    fs::write(dir.0.join("notes.html"), page).unwrap();
    // Large enough to go by sendfile, across several producer steps.
    fs::write(dir.0.join("big.bin"), random_bytes(7, 3 << 20)).unwrap();
    let server = Server::start(
        Command::new(BIN)
            .args(["web", "--listen", LOOPBACK, "--path"])
            .arg(&dir.0),
        1,
    );
    let addr = server.addr();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/pipeline.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let status = wait_child(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.is_some_and(|s| s.success()),
        "python: {status:?}\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log_text()
    );
    let statuses: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        statuses,
        ["200", "200", "200", "206", "404", "301", "200", "206", "200", "304", "200", "ok"],
        "{stdout}"
    );
    assert!(stdout.ends_with("ok 11\n"), "{stdout}");
}
