//! TLS through the command: `torsion web --listen ssl:...` with curl as the
//! client, `torsion portforward` terminating and originating TLS, and
//! `torsion echo` over an `ssl:` endpoint with Python's `ssl` module. The CA
//! and the server's certificate are made with the `openssl` command when
//! the test runs: no key material is committed.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use support::{first_difference, random_bytes, run_bounded, Server, BIN};

/// A directory of its own with a throwaway CA and a certificate for
/// localhost and 127.0.0.1; removed on drop.
struct Pki(PathBuf);

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("torsion-tls-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("www")).unwrap();
        let pki = Pki(dir);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        pki.openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=torsion test CA",
                ],
            ]
            .concat(),
        );
        pki.openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        fs::write(
            pki.path("ext.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        pki.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ]);
        pki
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.0)
            .output()
            .expect("openssl runs (.ci/run installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    fn endpoint(&self) -> String {
        format!(
            "ssl:0:interface=127.0.0.1:privateKey={}:certKey={}",
            self.path("server.key").display(),
            self.path("server.pem").display()
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn curl(args: &[&str]) -> support::Output {
    run_bounded(
        Command::new("curl")
            .args(["--silent", "--show-error"])
            .args(args),
    )
}

#[test]
fn curl_fetches_a_file_over_https_byte_exact() {
    let pki = Pki::new("web");
    let blob = random_bytes(11, 3 << 20);
    fs::write(pki.path("www/blob.bin"), &blob).unwrap();
    let www = pki.path("www");
    let endpoint = pki.endpoint();
    let server = Server::start(
        Command::new(BIN)
            .args(["web", "--listen", &endpoint, "--path"])
            .arg(&www),
        1,
    );
    let port = server.addr().port();
    let url = format!("https://localhost:{port}/blob.bin");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let out_file = pki.path("got.bin");
    let got = curl(&[
        "--cacert",
        pki.path("ca.pem").to_str().unwrap(),
        "--resolve",
        &resolve,
        "--output",
        out_file.to_str().unwrap(),
        "--write-out",
        "%{http_code} %{ssl_verify_result}",
        &url,
    ]);
    assert!(got.status.success(), "curl failed: {}", got.stderr);
    assert_eq!(got.stdout, "200 0");
    let body = fs::read(&out_file).unwrap();
    assert_eq!(body.len(), blob.len());
    assert!(
        body == blob,
        "bytes differ at {:?}",
        first_difference(&body, &blob)
    );

    // Without the CA, curl refuses the certificate.
    let refused = curl(&["--resolve", &resolve, "--output", "/dev/null", &url]);
    assert!(!refused.status.success());
}

#[test]
fn echo_over_an_ssl_endpoint_talks_to_pythons_ssl_module() {
    let pki = Pki::new("echo");
    let endpoint = pki.endpoint();
    let server = Server::start(Command::new(BIN).args(["echo", "--listen", &endpoint]), 1);
    let port = server.addr().port();
    // Python's own TLS stack, verifying the name and the CA, TLS 1.3 only.
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"ping over tls\n" * 1000)
        got = b""
        while len(got) < 14000:
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
        print(tls.version(), got == b"ping over tls\n" * 1000)
"#;
    let out = run_bounded(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(pki.path("ca.pem"))
            .arg(port.to_string()),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "TLSv1.3 True");
}

/// `openssl s_client` to `port` with `args`, verifying the server with
/// the test CA; its output (it ends at once, as its input is empty).
fn s_client(pki: &Pki, port: u16, args: &[&std::ffi::OsStr]) -> String {
    let out = run_bounded(
        Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-servername", "localhost", "-CAfile"])
            .arg(pki.path("ca.pem"))
            .arg("-verify_return_error")
            .args(args),
    );
    let text = out.stdout + &out.stderr;
    assert!(out.status.success(), "s_client failed:\n{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    text
}

/// [`s_client`] offering `http/1.1` by ALPN.
fn s_client_alpn(pki: &Pki, port: u16) -> String {
    s_client(pki, port, &["-alpn".as_ref(), "http/1.1".as_ref()])
}

#[test]
fn web_answers_alpn_with_http11_and_echo_with_nothing() {
    let pki = Pki::new("alpn");
    let web = Server::start(
        Command::new(BIN)
            .args(["web", "--listen", &pki.endpoint(), "--path"])
            .arg(pki.path("www")),
        1,
    );
    let text = s_client_alpn(&pki, web.addr().port());
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");

    // Echo carries any bytes: it names no protocol, and a client that
    // offers one is still served.
    let echo = ssl_echo(&pki);
    let text = s_client_alpn(&pki, echo.addr().port());
    assert!(text.contains("No ALPN negotiated"), "{text}");

    // The endpoint string can name protocols, for any command.
    let named = Server::start(
        Command::new(BIN).args([
            "echo",
            "--listen",
            &format!("{}:alpn=x-echo,http/1.1", pki.endpoint()),
        ]),
        1,
    );
    let text = s_client_alpn(&pki, named.addr().port());
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
}

/// `torsion portforward --listen LISTEN --connect CONNECT`.
fn forwarder(listen: &str, connect: &str) -> Server {
    Server::start(
        Command::new(BIN).args(["portforward", "--listen", listen, "--connect", connect]),
        1,
    )
}

/// `torsion echo` on an `ssl:` endpoint with the test certificate.
fn ssl_echo(pki: &Pki) -> Server {
    Server::start(
        Command::new(BIN).args(["echo", "--listen", &pki.endpoint()]),
        1,
    )
}

/// Sends `data` through `addr` in plain TCP and reads back as much, with
/// the write side shut after the last byte.
fn echo_through(addr: std::net::SocketAddr, data: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, support::PATIENCE).unwrap();
    s.set_read_timeout(Some(support::PATIENCE)).unwrap();
    let mut writer = s.try_clone().unwrap();
    let data = data.to_vec();
    let sender = std::thread::spawn(move || {
        writer.write_all(&data).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    sender.join().unwrap();
    got
}

#[test]
fn portforward_terminates_tls_in_front_of_a_plain_echo() {
    // Python's TLS client -> portforward (ssl: listener) -> echo (tcp).
    let pki = Pki::new("pf-terminate");
    let echo = Server::echo();
    let target = format!("tcp:host=127.0.0.1:port={}", echo.addr().port());
    let fwd = forwarder(&pki.endpoint(), &target);
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
data = bytes((i * 7 + i // 251) % 256 for i in range(3 * 1024 * 1024))
block = 64 * 1024
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        got = bytearray()
        for at in range(0, len(data), block):
            tls.sendall(data[at:at + block])
            while len(got) < min(at + block, len(data)):
                chunk = tls.recv(65536)
                if not chunk:
                    raise SystemExit("closed early at %d" % len(got))
                got += chunk
        print(tls.version(), bytes(got) == data, len(got))
"#;
    let out = run_bounded(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(pki.path("ca.pem"))
            .arg(fwd.addr().port().to_string()),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!("TLSv1.3 True {}", 3 * 1024 * 1024)
    );
}

#[test]
fn portforward_originates_tls_to_an_ssl_echo() {
    // Plain client -> portforward (tcp) -> tls: connect -> echo (ssl:),
    // the echo's certificate checked against the test CA.
    let pki = Pki::new("pf-originate");
    let echo = ssl_echo(&pki);
    let target = format!(
        "tls:host=localhost:port={}:trustRoots={}",
        echo.addr().port(),
        pki.path("ca.pem").display()
    );
    let fwd = forwarder(support::LOOPBACK, &target);
    let data = random_bytes(11, 2 * 1024 * 1024 + 17);
    let got = echo_through(fwd.addr(), &data);
    assert_eq!(got.len(), data.len());
    assert_eq!(first_difference(&got, &data), None);
}

#[test]
fn portforward_refuses_a_tls_target_with_an_untrusted_certificate() {
    // The forwarder's tls: connect trusts only the system roots here, so
    // the test CA's certificate fails: the client is closed, the reason
    // logged, nothing forwarded in clear.
    let pki = Pki::new("pf-untrusted");
    let echo = ssl_echo(&pki);
    let target = format!("tls:host=localhost:port={}", echo.addr().port());
    let fwd = forwarder(support::LOOPBACK, &target);
    let got = echo_through(fwd.addr(), b"must not arrive\n");
    assert!(got.is_empty(), "got {got:?}");
    assert!(
        fwd.wait_for_line("certificate"),
        "the forwarder says why: {}",
        fwd.log_text()
    );
}

/// [`s_client`] over TLS 1.2, saving the session to or resuming it from
/// `session` (`flag` is `-sess_out` or `-sess_in`).
fn s_client_session(pki: &Pki, port: u16, flag: &str, session: &std::path::Path) -> String {
    s_client(
        pki,
        port,
        &["-tls1_2".as_ref(), flag.as_ref(), session.as_os_str()],
    )
}

/// With `--workers`, every worker shares one TLS configuration: a
/// session (by ticket or by id) made on one resumes on any other, so
/// resumption does not depend on which worker the kernel picks.
#[test]
fn workers_share_one_session_cache_and_ticket_key() {
    let pki = Pki::new("workers-tls");
    let web = Server::start(
        Command::new(BIN)
            .args([
                "--workers",
                "2",
                "web",
                "--listen",
                &pki.endpoint(),
                "--path",
            ])
            .arg(pki.path("www")),
        1,
    );
    let port = web.addr().port();
    let session = pki.path("session.pem");
    let first = s_client_session(&pki, port, "-sess_out", &session);
    assert!(first.contains("New, TLSv1.2"), "{first}");
    // Each new connection goes to either worker (SO_REUSEPORT hashes the
    // client's port): with one key per worker, about half would be new.
    for attempt in 0..16 {
        let text = s_client_session(&pki, port, "-sess_in", &session);
        assert!(
            text.contains("Reused, TLSv1.2"),
            "attempt {attempt} was not resumed:\n{text}"
        );
    }
}
