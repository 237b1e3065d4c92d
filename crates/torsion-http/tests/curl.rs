//! Interoperability with a real client nobody here wrote: `curl`, run as
//! a child process against the server on 127.0.0.1 (port 0). GET and HEAD,
//! byte-exact downloads, single and multiple ranges, conditional
//! requests, redirects, keep-alive across several URLs in one curl run,
//! chunked uploads (with `100-continue`), and `--compressed` fetching a
//! precompressed `.gz` and a body gzipped on the fly.
//!
//! `.ci/run` installs curl. Without it these tests say so and pass,
//! except under CI (`CI` set), where a missing curl is a failure.

mod common;

use common::*;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use torsion::Reactor;
use torsion_http::{File, Method, Render, Request, Resource, Site, Tree};

fn have_curl() -> bool {
    let ok = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
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

/// Echoes request bodies back (for uploads).
struct Echo;
impl Resource for Echo {
    fn is_leaf(&self) -> bool {
        true
    }
    fn allowed_methods(&self, _: &Request) -> Vec<Method> {
        vec![Method::Post, Method::Put]
    }
    fn render_post(&self, r: &Request) -> Render {
        let te = r.header("transfer-encoding").unwrap_or("none").to_string();
        let _ = r.set_header("X-Request-TE", te);
        Render::Body(r.content().to_vec())
    }
    fn render_put(&self, r: &Request) -> Render {
        self.render_post(r)
    }
}

struct Server {
    reactor: Reactor,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn server(name: &str) -> Server {
    let dir = std::env::temp_dir().join(format!("torsion-http-curl-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("files/docs")).unwrap();
    let data: Vec<u8> = (0..1_234_567u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(dir.join("files/blob.bin"), &data).unwrap();
    fs::write(dir.join("files/hello.txt"), "Hello, curl!\n").unwrap();
    fs::write(dir.join("files/docs/a.txt"), "a").unwrap();
    let root = Tree::new();
    root.put_child("files", Rc::new(File::new(dir.join("files")).unwrap()));
    root.put_child("echo", Rc::new(Echo));
    let reactor = Reactor::new().unwrap();
    let site = Site::new(Rc::new(root));
    let addr = listen_site(&reactor, &site);
    Server { reactor, addr, dir }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Runs curl with `args` while the reactor turns.
    fn curl(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let t = thread::spawn(move || {
            let mut cmd = Command::new("curl");
            cmd.args(["--silent", "--show-error", "--max-time", "60"])
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                });
            let mut child = cmd.spawn().unwrap();
            if let Some(input) = stdin {
                use std::io::Write;
                let mut pipe = child.stdin.take().unwrap();
                let feeder = thread::spawn(move || {
                    let _ = pipe.write_all(&input);
                });
                let out = child.wait_with_output().unwrap();
                feeder.join().unwrap();
                d.store(true, Ordering::Release);
                return out;
            }
            let out = child.wait_with_output().unwrap();
            d.store(true, Ordering::Release);
            out
        });
        spin_until(&self.reactor, || done.load(Ordering::Acquire));
        let out = t.join().unwrap();
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn file(&self, rel: &str) -> Vec<u8> {
        fs::read(self.dir.join("files").join(rel)).unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn curl_downloads_byte_exact() {
    if !have_curl() {
        return;
    }
    let s = server("get");
    let out = s.curl(&[&s.url("/files/blob.bin")], None);
    assert_eq!(out.stdout, s.file("blob.bin"));
    let out = s.curl(&[&s.url("/files/hello.txt")], None);
    assert_eq!(out.stdout, b"Hello, curl!\n");
}

#[test]
fn curl_compressed_gets_a_precompressed_gz_and_an_on_the_fly_gzip() {
    if !have_curl() {
        return;
    }
    use std::io::Write;
    let s = server("gzip");
    let css: Vec<u8> = (0..3000)
        .flat_map(|i| format!(".c{i} {{ margin: {}px }}\n", i % 17).into_bytes())
        .collect();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&css).unwrap();
    let css_gz = e.finish().unwrap();
    fs::write(s.path("files/site.css"), &css).unwrap();
    fs::write(s.path("files/site.css.gz"), &css_gz).unwrap();
    fs::write(s.path("files/other.css"), &css).unwrap();
    let headers = s.path("headers.txt");
    let dump = headers.to_str().unwrap();

    // curl asks for gzip and decodes it: the file's bytes come out.
    let out = s.curl(
        &[
            "--compressed",
            "--dump-header",
            dump,
            &s.url("/files/site.css"),
        ],
        None,
    );
    assert!(out.stdout == css, "decoded body differs");
    let head = fs::read_to_string(&headers).unwrap();
    assert!(head.contains("Content-Encoding: gzip\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", css_gz.len())),
        "the .gz's length: {head}"
    );
    // What went over the wire is the .gz file itself.
    let out = s.curl(
        &[
            "--header",
            "Accept-Encoding: gzip",
            &s.url("/files/site.css"),
        ],
        None,
    );
    assert!(out.stdout == css_gz, "not the .gz file's bytes");

    // Without a .gz, compressed on the fly; curl decodes that too.
    let out = s.curl(
        &[
            "--compressed",
            "--dump-header",
            dump,
            &s.url("/files/other.css"),
        ],
        None,
    );
    assert!(out.stdout == css, "decoded body differs");
    let head = fs::read_to_string(&headers).unwrap();
    assert!(head.contains("Content-Encoding: gzip\r\n"), "{head}");
    assert!(head.contains("Vary: Accept-Encoding\r\n"), "{head}");
}

#[test]
fn curl_head_shows_the_headers_of_get() {
    if !have_curl() {
        return;
    }
    let s = server("head");
    let out = s.curl(&["--head", &s.url("/files/blob.bin")], None);
    let head = text(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 1234567\r\n"), "{head}");
    assert!(head.contains("Accept-Ranges: bytes\r\n"));
    assert!(head.contains("Content-Type: application/octet-stream\r\n"));
    assert!(head.contains("\r\nDate: "));
    assert!(head.contains("\r\nServer: torsion/"));
}

#[test]
fn curl_ranges_single_and_multiple() {
    if !have_curl() {
        return;
    }
    let s = server("range");
    let blob = s.file("blob.bin");
    let out = s.curl(&["--range", "1000-1999", &s.url("/files/blob.bin")], None);
    assert_eq!(out.stdout, &blob[1000..2000]);
    let out = s.curl(&["--range", "-100", &s.url("/files/blob.bin")], None);
    assert_eq!(out.stdout, &blob[blob.len() - 100..]);
    let out = s.curl(
        &[
            "--include",
            "--range",
            "0-1,7-10",
            &s.url("/files/hello.txt"),
        ],
        None,
    );
    let body = text(&out.stdout);
    assert!(
        body.starts_with("HTTP/1.1 206 Partial Content\r\n"),
        "{body}"
    );
    assert!(body.contains("Content-Type: multipart/byteranges; boundary="));
    assert!(body.contains("Content-Range: bytes 0-1/13\r\n\r\nHe"));
    assert!(body.contains("Content-Range: bytes 7-10/13\r\n\r\ncurl"));
    let out = s.curl(
        &[
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
            "--range",
            "500-",
            &s.url("/files/hello.txt"),
        ],
        None,
    );
    assert_eq!(text(&out.stdout), "416");
}

#[test]
fn curl_conditional_requests_and_redirects() {
    if !have_curl() {
        return;
    }
    let s = server("cond");
    let out = s.curl(&["--head", &s.url("/files/hello.txt")], None);
    let head = text(&out.stdout);
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .unwrap()
        .trim()
        .to_string();
    let code = |extra: &[&str]| {
        let mut args = vec!["--output", "/dev/null", "--write-out", "%{http_code}"];
        args.extend_from_slice(extra);
        let url = s.url("/files/hello.txt");
        args.push(&url);
        text(&s.curl(&args, None).stdout)
    };
    let inm = format!("If-None-Match: {etag}");
    assert_eq!(code(&["--header", &inm]), "304");
    assert_eq!(code(&["--header", "If-None-Match: \"other\""]), "200");
    // --time-cond sends If-Modified-Since with the file's own time.
    let file = s.path("files/hello.txt");
    assert_eq!(code(&["--time-cond", file.to_str().unwrap()]), "304");

    let out = s.curl(
        &[
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code} %{redirect_url}",
            &s.url("/files/docs"),
        ],
        None,
    );
    assert_eq!(text(&out.stdout), format!("301 {}", s.url("/files/docs/")));
    let out = s.curl(&["--location", &s.url("/files/docs")], None);
    assert!(text(&out.stdout).contains("a.txt"));
}

#[test]
fn curl_reuses_one_connection_for_several_urls() {
    if !have_curl() {
        return;
    }
    let s = server("keepalive");
    let urls = [
        s.url("/files/hello.txt"),
        s.url("/files/blob.bin"),
        s.url("/files/docs/"),
        s.url("/files/missing"),
        s.url("/files/hello.txt"),
    ];
    let mut args = vec!["--write-out", "%{http_code}:%{num_connects} "];
    for u in &urls {
        args.push("--output");
        args.push("/dev/null");
        args.push(u);
    }
    let out = s.curl(&args, None);
    // One connection made for the first transfer, none for the rest.
    assert_eq!(text(&out.stdout), "200:1 200:0 200:0 404:0 200:0 ");
}

#[test]
fn curl_chunked_uploads_are_received_byte_exact() {
    if !have_curl() {
        return;
    }
    let s = server("upload");
    let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    // PUT from stdin: curl sends it chunked (and asks 100-continue).
    let out = s.curl(
        &["--upload-file", "-", "--include", &s.url("/echo")],
        Some(payload.clone()),
    );
    let split = out
        .stdout
        .windows(4)
        .rposition(|w| w == b"\r\n\r\n")
        .unwrap();
    let (head, body) = (&out.stdout[..split], &out.stdout[split + 4..]);
    assert!(
        text(head).contains("X-Request-TE: chunked"),
        "{}",
        text(head)
    );
    assert_eq!(body, &payload[..]);

    // POST of a file with an explicit chunked Transfer-Encoding.
    let upload = s.path("upload.bin");
    fs::write(&upload, &payload[..300_000]).unwrap();
    let arg = format!("@{}", upload.display());
    let out = s.curl(
        &[
            "--data-binary",
            &arg,
            "--header",
            "Transfer-Encoding: chunked",
            "--header",
            "Content-Type: application/octet-stream",
            &s.url("/echo"),
        ],
        None,
    );
    assert_eq!(out.stdout, &payload[..300_000]);
    let _ = Path::new(&upload);
}
