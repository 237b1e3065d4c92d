//! A chat room: every line a client sends goes to every connected client,
//! prefixed with the sender's address. The twin of the chat server in
//! Twisted's documentation, on torsion's `LineReceiver`.
//!
//! ```text
//! cargo run --example chat_server
//! socat - TCP:127.0.0.1:8001          # in two or more terminals
//! ```
//!
//! Lines end at LF, with a CR before it taken off, so both a terminal's
//! `socat` (LF) and telnet (CRLF) are understood; the room's own lines end
//! in LF.
//!
//! The room itself is `torsion::protocols::chat` (what `torsion chat`
//! serves); this example shows the handler such a room is made of: a
//! `LineHandler` whose `line_received` writes to every member's
//! `LineSender`.

use clap::Parser;
use std::cell::RefCell;
use std::rc::Rc;
use torsion::basic::{LineControl, LineHandler, LineReceiver, LineSender};
use torsion::{endpoints, Address, ConnectionLost, Reactor};

/// A line-based chat room.
#[derive(Parser)]
struct Args {
    /// Where to listen, as an endpoint string.
    #[arg(long, default_value = "tcp:8001:interface=127.0.0.1")]
    listen: String,
}

/// Longest line a client may send; a longer one is refused.
const MAX_LINE: usize = 1024;
/// Bytes a client may leave unread before it is dropped from the room.
const MAX_UNREAD: usize = 1024 * 1024;

/// The state every connection shares: who is in the room.
type Room = Rc<RefCell<Vec<LineSender>>>;

/// Writes `prefix` + `line` to everyone in the room.
fn broadcast(room: &Room, prefix: &str, line: &[u8]) {
    // Writing never calls back into a protocol, so holding the borrow
    // while writing to every transport is safe.
    for member in room.borrow().iter() {
        member.send_line_with_prefix(prefix.as_bytes(), line);
        if member.transport().buffered() > MAX_UNREAD {
            member.transport().abort_connection(); // it does not read
        }
    }
}

/// One client in the room.
struct Chatter {
    room: Room,
    name: String,
    me: Option<LineSender>,
}

impl LineHandler for Chatter {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        ctl.send_line(b"* welcome to the room");
        broadcast(&self.room, "* ", format!("{} joined", self.name).as_bytes());
        let me = ctl.sender();
        self.room.borrow_mut().push(me.clone());
        self.me = Some(me);
    }

    fn line_received(&mut self, line: &[u8], _ctl: &mut LineControl<'_>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        broadcast(&self.room, &format!("<{}> ", self.name), line);
    }

    fn line_length_exceeded(&mut self, ctl: &mut LineControl<'_>) {
        ctl.send_line(b"* line too long, not sent");
    }

    fn connection_lost(&mut self, _reason: ConnectionLost) {
        if let Some(me) = &self.me {
            self.room
                .borrow_mut()
                .retain(|m| !m.transport().same_as(me.transport()));
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
    let factory = move |peer: &Address| {
        LineReceiver::new(Chatter {
            room: room.clone(),
            name: peer.to_string(),
            me: None,
        })
        .with_delimiter(b"\n")
        .with_max_length(MAX_LINE)
    };
    let port = endpoints::server(&reactor, &args.listen)?.listen(factory)?;
    println!("chat server listening on {}", port.address());

    reactor.run()?;
    Ok(())
}
