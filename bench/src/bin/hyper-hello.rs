//! The hyper peer of torsion's HTTP hello world: hyper 1.x's own
//! "hello world" server — HTTP/1.1 with keep-alive, one task per
//! connection, a `service_fn` answering `Hello, World!` as text/plain.

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;
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
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(hello))
                    .await;
            });
        }
    })
}
