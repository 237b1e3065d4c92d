//! An echo client: connects, sends a few lines, prints what comes back,
//! and exits. The twin of Twisted's `echoclient.py`.
//!
//! ```text
//! cargo run --example echo_server &
//! cargo run --example echo_client
//! cargo run --example echo_client -- --connect tcp:host=127.0.0.1:port=8000 one two three
//! ```

use clap::Parser;
use std::cell::Cell;
use std::rc::Rc;
use torsion::{
    endpoints, Address, ClientFactory, ConnectError, ConnectionLost, Connector, Protocol, Reactor,
    Transport,
};

/// An echo client.
#[derive(Parser)]
struct Args {
    /// Where to connect, as an endpoint string.
    #[arg(long, default_value = "tcp:host=127.0.0.1:port=8000")]
    connect: String,
    /// The lines to send.
    #[arg(default_values = ["Hello, world!", "What a fine day it is.", "Bye-bye!"])]
    lines: Vec<String>,
}

/// Longest line the client accepts back.
const MAX_LINE: usize = 16 * 1024;

/// Sends the lines, then prints each echoed line until all are back.
struct EchoClient {
    lines: Vec<String>,
    echoed: usize,
    buf: Vec<u8>,
    transport: Option<Transport>,
}

impl Protocol for EchoClient {
    fn connection_made(&mut self, transport: Transport) {
        for line in &self.lines {
            transport.write_sequence(&[line.as_bytes(), b"\r\n"]);
        }
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            println!(
                "receive: {}",
                String::from_utf8_lossy(line.trim_ascii_end())
            );
            self.echoed += 1;
        }
        if self.echoed >= self.lines.len() || self.buf.len() > MAX_LINE {
            if let Some(t) = &self.transport {
                t.lose_connection();
            }
        }
    }
}

/// Builds the protocol, and stops the reactor once the connection is over.
struct EchoClientFactory {
    reactor: Reactor,
    lines: Vec<String>,
    failed: Rc<Cell<bool>>,
}

impl ClientFactory for EchoClientFactory {
    fn build_protocol(&mut self, _peer: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(EchoClient {
            lines: self.lines.clone(),
            echoed: 0,
            buf: Vec::new(),
            transport: None,
        }))
    }

    fn client_connection_failed(&mut self, _: &Connector, reason: &ConnectError) {
        eprintln!("connection failed: {reason}");
        self.failed.set(true);
        self.reactor.stop();
    }

    fn client_connection_lost(&mut self, _: &Connector, reason: &ConnectionLost) {
        println!("connection lost: {reason}");
        self.reactor.stop();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt::init();
    let reactor = Reactor::new()?;
    let failed = Rc::new(Cell::new(false));
    endpoints::client(&reactor, &args.connect)?.connect(EchoClientFactory {
        reactor: reactor.clone(),
        lines: args.lines,
        failed: failed.clone(),
    });
    reactor.run()?;
    if failed.get() {
        std::process::exit(1);
    }
    Ok(())
}
