//! A chat room: every line a client sends goes to every connected client,
//! prefixed with the sender's address. The twin of the chat server in
//! Twisted's documentation.
//!
//! ```text
//! cargo run --example chat_server
//! socat - TCP:127.0.0.1:8001          # in two or more terminals
//! ```

use clap::Parser;
use std::cell::RefCell;
use std::rc::Rc;
use torsion::{endpoints, Address, ConnectionLost, Protocol, Reactor, Transport};

/// A line-based chat room.
#[derive(Parser)]
struct Args {
    /// Where to listen, as an endpoint string.
    #[arg(long, default_value = "tcp:8001:interface=127.0.0.1")]
    listen: String,
}

/// Longest line a client may send; a longer one ends its connection.
const MAX_LINE: usize = 1024;
/// Bytes a client may leave unread before it is dropped from the room.
const MAX_UNREAD: usize = 1024 * 1024;

/// The state every connection shares: who is in the room.
type Room = Rc<RefCell<Vec<Transport>>>;

/// Writes `line`, prefixed, to everyone in the room.
fn broadcast(room: &Room, prefix: &str, line: &[u8]) {
    // Writing never calls back into a protocol, so holding the borrow
    // while writing to every transport is safe.
    for t in room.borrow().iter() {
        t.write_sequence(&[prefix.as_bytes(), line, b"\r\n"]);
        if t.buffered() > MAX_UNREAD {
            t.abort_connection(); // a client that never reads is dropped
        }
    }
}

/// One client in the room.
struct Chatter {
    room: Room,
    name: String,
    buf: Vec<u8>,
    transport: Option<Transport>,
}

impl Protocol for Chatter {
    fn connection_made(&mut self, transport: Transport) {
        transport.write(b"* welcome to the room\r\n");
        self.room.borrow_mut().push(transport.clone());
        broadcast(&self.room, "* ", format!("{} joined", self.name).as_bytes());
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            broadcast(
                &self.room,
                &format!("<{}> ", self.name),
                line.trim_ascii_end(),
            );
        }
        if self.buf.len() > MAX_LINE {
            if let Some(t) = &self.transport {
                t.write(b"* line too long, goodbye\r\n");
                t.lose_connection();
            }
            self.buf.clear();
        }
    }

    fn connection_lost(&mut self, _reason: ConnectionLost) {
        if let Some(me) = &self.transport {
            self.room.borrow_mut().retain(|t| !t.same_as(me));
        }
        broadcast(&self.room, "* ", format!("{} left", self.name).as_bytes());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt::init();
    let reactor = Reactor::new()?;
    reactor.install_signal_handlers()?;

    let room = Room::default();
    let factory = move |peer: &Address| Chatter {
        room: room.clone(),
        name: peer.to_string(),
        buf: Vec::new(),
        transport: None,
    };
    let port = endpoints::server(&reactor, &args.listen)?.listen(factory)?;
    println!("chat server listening on {}", port.address());

    reactor.run()?;
    Ok(())
}
