//! An echo server: every byte a client sends comes back. The twin of
//! Twisted's `echoserv.py`.
//!
//! ```text
//! cargo run --example echo_server                      # tcp:8000 on 127.0.0.1
//! cargo run --example echo_client                      # in another terminal
//! cargo run --example echo_server -- --listen unix:/tmp/echo.sock
//! ```

use clap::Parser;
use torsion::{endpoints, Address, Protocol, Reactor, Transport};

/// An echo server.
#[derive(Parser)]
struct Args {
    /// Where to listen, as an endpoint string.
    #[arg(long, default_value = "tcp:8000:interface=127.0.0.1")]
    listen: String,
}

/// One connection: write back whatever arrives.
#[derive(Default)]
struct Echo {
    transport: Option<Transport>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt::init(); // RUST_LOG=debug shows the engine's log
    let reactor = Reactor::new()?;
    reactor.install_signal_handlers()?; // Ctrl-C stops gracefully

    // A closure from the peer's address to a protocol is a factory.
    let port = endpoints::server(&reactor, &args.listen)?.listen(|_: &Address| Echo::default())?;
    println!("echo server listening on {}", port.address());

    reactor.run()?;
    Ok(())
}
