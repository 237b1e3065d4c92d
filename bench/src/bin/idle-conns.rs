//! Holds N idle connections to a server and reports how much the server's
//! resident memory grew per connection (`VmRSS` from `/proc/PID/status`).
//!
//! Connections come from several loopback source addresses (127.0.0.2,
//! 127.0.0.3, ...: the whole 127/8 is local and binds without setup), each
//! bound with socket2 before connecting, so the ephemeral ports of one
//! source address never run out.
//!
//! * `echo`: a connection is idle as soon as it is accepted.
//! * `http`: each connection first makes one keep-alive `GET` and reads the
//!   whole response, then idles — an idle HTTP keep-alive connection.
//! * `https`: the same over TLS (rustls with ring; the server's
//!   certificate is not checked: the bench makes its own for the run).
//!
//! Procedure: one warm-up connection (so one-time allocations such as a
//! shared read buffer are not charged to the rest), the server's RSS, N
//! connections, wait until the server holds N more descriptors and its RSS
//! is steady, the server's RSS again. Everything closes when the program
//! exits; it never runs longer than --timeout.

use clap::{Parser, ValueEnum};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use torsion_bench::{procfs, report};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Connect and say nothing.
    Echo,
    /// One keep-alive GET, then silence.
    Http,
    /// A TLS handshake and one keep-alive GET, then silence.
    Https,
}

/// A connection held idle: the socket, or the TLS session over it. Never
/// read again: holding it keeps the connection open until the program
/// exits.
#[allow(dead_code)]
enum Held {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

/// Takes any certificate: the server is the bench's own, on loopback, with
/// a certificate made for the run. Signatures are still checked, so the
/// handshake does all of its work.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client side of `https`.
fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    // Every connection a full handshake: no session is resumed.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// Connects from 127.0.0.`src` and, as `kind` asks, makes the one exchange.
fn open(
    kind: Kind,
    src: u8,
    to: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
    request: &[u8],
    buf: &mut [u8],
) -> std::io::Result<Held> {
    let mut s = connect_from(src, to)?;
    match kind {
        Kind::Echo => Ok(Held::Plain(s)),
        Kind::Http => {
            http_exchange(&mut s, request, buf)?;
            Ok(Held::Plain(s))
        }
        Kind::Https => {
            let name =
                rustls_pki_types::ServerName::try_from("localhost").expect("a valid server name");
            let conn =
                rustls::ClientConnection::new(tls.clone(), name).map_err(std::io::Error::other)?;
            let mut t = rustls::StreamOwned::new(conn, s);
            http_exchange(&mut t, request, buf)?;
            Ok(Held::Tls(Box::new(t)))
        }
    }
}

/// Measures the server's RSS growth per idle connection. Prints one
/// `RESULT key=value ...` line.
#[derive(Parser, Debug)]
struct Args {
    /// The server, e.g. 127.0.0.1:7007.
    #[arg(long)]
    addr: SocketAddr,
    /// The server's process id (its /proc entry is read).
    #[arg(long)]
    pid: u32,
    /// Idle connections to hold.
    #[arg(long, short = 'n', default_value_t = 19_000)]
    count: usize,
    /// Loopback source addresses to spread them over (127.0.0.2 on).
    #[arg(long, default_value_t = 4)]
    sources: u8,
    #[arg(long, value_enum, default_value = "echo")]
    kind: Kind,
    /// The request path for `http`.
    #[arg(long, default_value = "/")]
    path: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

fn connect_from(src: u8, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    // Closed with a reset at exit, not a FIN: a FIN would leave every
    // connection in TIME_WAIT for a minute, and the next runs' binds to
    // port 0 then search past tens of thousands of them (minutes of
    // kernel time over a full bench run).
    s.set_linger(Some(Duration::ZERO))?;
    let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, src)), 0);
    s.bind(&from.into())?;
    s.connect(&to.into())?;
    Ok(s.into())
}

/// Sends one GET and reads the response through its body.
fn http_exchange(
    s: &mut (impl Read + Write),
    request: &[u8],
    buf: &mut [u8],
) -> std::io::Result<()> {
    s.write_all(request)?;
    let mut have = 0;
    loop {
        let n = s.read(&mut buf[have..])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
        let text = &buf[..have];
        if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&text[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if have >= end + 4 + len {
                return Ok(());
            }
        }
        if have == buf.len() {
            return Err(std::io::Error::other("response larger than the buffer"));
        }
    }
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: torsion-bench\r\n\r\n",
        args.path, args.addr
    )
    .into_bytes();
    let mut buf = vec![0u8; 64 * 1024];
    let sources = args.sources.max(1);

    let tls = tls_config();
    let warm = match args.kind {
        Kind::Echo => {
            let mut warm = connect_from(2, args.addr)?;
            warm.write_all(b"warm-up")?;
            warm.read_exact(&mut buf[..7])?;
            Held::Plain(warm)
        }
        kind => open(kind, 2, args.addr, &tls, &request, &mut buf)?,
    };
    std::thread::sleep(Duration::from_millis(300));
    let fds_before = procfs::open_fds(args.pid)?;
    let rss_before = procfs::rss_kib(args.pid)?;

    let started = Instant::now();
    let mut conns = Vec::with_capacity(args.count);
    for i in 0..args.count {
        if Instant::now() >= deadline {
            break;
        }
        let src = 2 + (i % sources as usize) as u8;
        match open(args.kind, src, args.addr, &tls, &request, &mut buf) {
            Ok(s) => conns.push(s),
            Err(e) => {
                eprintln!("idle-conns: connection {i} failed: {e}");
                break;
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let held = conns.len();

    // Wait until the server has accepted them all and its memory settles.
    let mut last = 0;
    let mut steady = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let fds = procfs::open_fds(args.pid)?;
        let rss = procfs::rss_kib(args.pid)?;
        if fds >= fds_before + held && rss == last {
            steady += 1;
            if steady >= 2 {
                break;
            }
        } else {
            steady = 0;
        }
        last = rss;
    }
    let fds_after = procfs::open_fds(args.pid)?;
    let rss_after = procfs::rss_kib(args.pid)?;
    let grown = rss_after.saturating_sub(rss_before) as f64 * 1024.0;
    report(&[
        ("ops", held as f64),
        ("held", held as f64),
        (
            "server_fds_added",
            fds_after.saturating_sub(fds_before) as f64,
        ),
        ("rss_before_kib", rss_before as f64),
        ("rss_after_kib", rss_after as f64),
        (
            "bytes_per_conn",
            if held > 0 { grown / held as f64 } else { 0.0 },
        ),
        ("connect_secs", connect_secs),
    ]);
    drop(conns);
    drop(warm);
    Ok(())
}
