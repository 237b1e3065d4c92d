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
use std::rc::Rc;
use torsion::{Address, Producer, Protocol, Reactor, Transport};

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

/// One echo connection.
#[derive(Default)]
struct Echo {
    transport: Option<Transport>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        // The connection's reading produces the output it sends, so it is
        // its own producer: paused above the high-water mark.
        transport.register_producer(Rc::new(ReadSide(transport.clone())), true);
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }

    // `read_connection_lost` keeps its default, `HalfClose::Close`: flush
    // what is queued, then close. That is exactly RFC 862's behaviour.
}

/// Pauses and resumes reading from the connection whose output queue
/// fills and drains.
struct ReadSide(Transport);

impl Producer for ReadSide {
    fn pause_producing(&self) {
        self.0.pause_producing();
    }

    fn resume_producing(&self) {
        self.0.resume_producing();
    }

    fn stop_producing(&self) {}
}
