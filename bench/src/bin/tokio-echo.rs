//! The Tokio peer of `torsion echo`: an RFC 862 echo server as the Tokio
//! documentation writes it — one task per connection, a read loop into a
//! per-connection buffer, `write_all` of what was read.
//!
//! The buffer is 8 KiB by default, the size `tokio::io::copy` uses; it is
//! allocated when the connection is accepted, as in Tokio's examples.

use clap::Parser;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use torsion_bench::runtime;

/// Tokio echo server (the comparison peer of `torsion echo`).
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (127.0.0.1 only in the harness).
    #[arg(long, default_value = "127.0.0.1:7008")]
    listen: SocketAddr,
    /// Runtime worker threads: 1 = current-thread runtime, N > 1 =
    /// multi-thread runtime with N workers.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Per-connection read buffer, bytes.
    #[arg(long, default_value_t = 8192)]
    buf: usize,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    runtime(args.threads)?.block_on(async move {
        let listener = TcpListener::bind(args.listen).await?;
        eprintln!("tokio-echo listening on {}", listener.local_addr()?);
        loop {
            let (mut socket, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait, then go on.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let size = args.buf;
            tokio::spawn(async move {
                let mut buf = vec![0u8; size];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if socket.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
