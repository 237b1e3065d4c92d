//! Python's `http.client` (standard library only) uploads chunked bodies
//! with `encode_chunked=True` over a real loopback socket to an echo
//! resource served in this process: small and 1 MiB bodies in pieces of
//! many sizes, an empty piece, `Expect: 100-continue`, an empty body —
//! all on one kept-alive connection. The script is
//! `tests/python/chunked_upload.py`.

mod common;

use common::{listen_site, spin_until};
use std::process::{Command, Stdio};
use std::rc::Rc;
use torsion::Reactor;
use torsion_http::{Method, Render, Request, Resource, Site, Tree};

/// Answers with the body it read, and the request's transfer coding.
struct Echo;

impl Echo {
    fn echo(&self, request: &Request) -> Render {
        let te = request.header("transfer-encoding").unwrap_or("none");
        request
            .set_header("X-Request-Transfer-Encoding", te)
            .unwrap();
        request
            .set_header("Content-Type", "application/octet-stream")
            .unwrap();
        Render::Body(request.content().to_vec())
    }
}

impl Resource for Echo {
    fn is_leaf(&self) -> bool {
        true
    }
    fn allowed_methods(&self, _: &Request) -> Vec<Method> {
        vec![Method::Post, Method::Put]
    }
    fn render_post(&self, request: &Request) -> Render {
        self.echo(request)
    }
    fn render_put(&self, request: &Request) -> Render {
        self.echo(request)
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
fn python_chunked_uploads_are_echoed_byte_exact_on_one_connection() {
    if !have_python() {
        return;
    }
    let reactor = Reactor::new().unwrap();
    let root = Tree::new();
    root.put_child("echo", Rc::new(Echo));
    let addr = listen_site(&reactor, &Site::new(Rc::new(root)));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/chunked_upload.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    // The reactor turns here while the client runs; bounded by
    // spin_until's 20 s.
    let mut status = None;
    spin_until(&reactor, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.is_some_and(|s| s.success()),
        "python: {status:?}\n{stdout}\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{stdout}");
    for line in &lines[..6] {
        assert!(
            line.starts_with("200 ") && line.ends_with(" chunked"),
            "{line}"
        );
    }
    assert_eq!(lines[6], "ok 6");
}
