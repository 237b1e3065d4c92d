//! `torsion echo`: the RFC 862 echo service.
//!
//! Every byte a client sends comes back. When the client shuts its write
//! side, the engine's default [`HalfClose::Close`](torsion::HalfClose)
//! flushes everything still queued and then closes, so the client reads
//! all of its bytes and then end of file.
//!
//! A client that sends faster than it reads cannot make the server buffer
//! without bound: the connection is registered as its own producer, so
//! the engine stops reading from it while more than the high-water mark
//! waits to be sent back, and reads again once the queue drains.

use crate::serve::{self, serve_workers};
use torsion::protocols::wire::Echo;
use torsion::{Address, Reactor};

/// Run an RFC 862 echo server: every byte a client sends comes back.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  torsion echo
  torsion echo --listen tcp:7007:interface=127.0.0.1 --listen unix:/tmp/echo.sock
  printf 'hello\\n' | socat - TCP:127.0.0.1:7007")]
pub(crate) struct Args {
    /// Where to listen, as an endpoint string; repeat to listen on several.
    #[arg(long = "listen", value_name = "ENDPOINT", default_value = "tcp:7007")]
    listen: Vec<String>,
}

/// Runs the echo server until a signal stops it.
pub(crate) fn run(args: Args) -> Result<(), serve::Error> {
    serve_workers(&args.listen, || {
        |_reactor: &Reactor| |_peer: &Address| Echo::default()
    })
}
