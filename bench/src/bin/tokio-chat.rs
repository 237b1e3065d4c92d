//! The Tokio peer of torsion's chat server (`examples/chat_server.rs`):
//! every line a client sends goes to every connected client, the sender
//! included, prefixed with `<ADDRESS> `; joins are announced to those
//! already in the room and leaves to those who stay, and a newcomer is
//! welcomed first. Lines end in `\n` (a `\r` before it is dropped); the
//! server sends `\r\n`, like torsion's `LineReceiver`.
//!
//! The idiomatic Tokio shape: a `broadcast` channel for the room, and per
//! client a reader task (lines in, onto the channel) and a writer task
//! (channel out, onto the socket). The writer gathers whatever lines are
//! already waiting into one `write_all`, as a careful Tokio user would
//! (`--no-batch`: one `write_all` per line, like Tokio's chat example). A
//! client that falls more than the channel's capacity behind loses lines
//! (`Lagged`), where torsion's example drops a client 1 MiB behind; the
//! harness's publisher is windowed so neither ever happens in a run.

use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use torsion_bench::runtime;

/// Longest line a client may send; a longer one ends its connection.
const MAX_LINE: usize = 1024;

/// Tokio line-broadcast chat server (the comparison peer of torsion's
/// chat example).
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (127.0.0.1 only in the harness).
    #[arg(long, default_value = "127.0.0.1:8002")]
    listen: SocketAddr,
    /// Runtime worker threads: 1 = current-thread runtime, N > 1 =
    /// multi-thread runtime with N workers.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// One `write_all` per line instead of gathering the lines already
    /// waiting (the shape of Tokio's own chat example, which sends each
    /// line through its own `Framed` write).
    #[arg(long)]
    no_batch: bool,
    /// Lines the room's channel holds before a slow client lags.
    #[arg(long, default_value_t = 4096)]
    capacity: usize,
}

fn line(prefix: &str, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(prefix.len() + body.len() + 2);
    b.put_slice(prefix.as_bytes());
    b.put_slice(body);
    b.put_slice(b"\r\n");
    b.freeze()
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    runtime(args.threads)?.block_on(async move {
        let listener = TcpListener::bind(args.listen).await?;
        eprintln!("tokio-chat listening on {}", listener.local_addr()?);
        let (room, _) = broadcast::channel::<Bytes>(args.capacity);
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let name = peer.to_string();
            let (rd, mut wr) = socket.into_split();
            // Announce first, then subscribe: the newcomer is not told of
            // its own arrival.
            let tx = room.clone();
            let _ = tx.send(line("* ", format!("{name} joined").as_bytes()));
            let mut rx = room.subscribe();

            // Writer: the room's lines out to this client.
            let batch = !args.no_batch;
            let writer = tokio::spawn(async move {
                if wr.write_all(b"* welcome to the room\r\n").await.is_err() {
                    return;
                }
                let mut out = BytesMut::new();
                loop {
                    match rx.recv().await {
                        Ok(l) => out.put_slice(&l),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                    if batch {
                        while let Ok(l) = rx.try_recv() {
                            out.put_slice(&l);
                        }
                    }
                    if wr.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            });

            // Reader: this client's lines into the room.
            tokio::spawn(async move {
                let prefix = format!("<{name}> ");
                let mut rd = BufReader::new(rd);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match (&mut rd)
                        .take(MAX_LINE as u64 + 1)
                        .read_until(b'\n', &mut buf)
                        .await
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) if buf.last() != Some(&b'\n') => break, // too long
                        Ok(_) => {
                            let _ = tx.send(line(&prefix, buf.trim_ascii_end()));
                        }
                    }
                }
                writer.abort();
                let _ = tx.send(line("* ", format!("{name} left").as_bytes()));
            });
        }
    })
}
