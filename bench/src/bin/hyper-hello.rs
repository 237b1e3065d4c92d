//! The hyper peer of torsion's HTTP hello world: hyper 1.x's own
//! "hello world" server — HTTP/1.1 with keep-alive, one task per
//! connection, a `service_fn` answering `Hello, World!` as text/plain.
//! With `--tls-cert` and `--tls-key` it speaks HTTPS through
//! tokio-rustls, on rustls with the ring provider as torsion's `ssl:`
//! endpoints are.

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use torsion_bench::runtime;

/// hyper 1.x hello-world server (the comparison peer of torsion's HTTP
/// hello world).
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (127.0.0.1 only in the harness).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Runtime worker threads: 1 = current-thread runtime, N > 1 =
    /// multi-thread runtime with N workers.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// PEM certificate chain: serve HTTPS (with `--tls-key`).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// The TLS acceptor of `--tls-cert` and `--tls-key`, if given.
fn acceptor(args: &Args) -> std::io::Result<Option<TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let bad = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(&e))?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

async fn hello(_: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(resp)
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let tls = acceptor(&args)?;
    runtime(args.threads)?.block_on(async move {
        let listener = TcpListener::bind(args.listen).await?;
        eprintln!("hyper-hello listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                let http = http1::Builder::new();
                let _ = match tls {
                    None => {
                        http.serve_connection(TokioIo::new(stream), service_fn(hello))
                            .await
                    }
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => {
                            http.serve_connection(TokioIo::new(stream), service_fn(hello))
                                .await
                        }
                        Err(_) => return,
                    },
                };
            });
        }
    })
}
