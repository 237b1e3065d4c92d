//! A chat room: every line a client sends goes to every client in the
//! room, prefixed with the sender's address — the chat server of
//! Twisted's documentation, made a real service.
//!
//! A [`ChatRoom`] is the state every connection shares; its
//! [`factory`](ChatRoom::factory) builds one [`LineReceiver`] per client,
//! with a [`Chatter`] as its handler. What the room sends:
//!
//! ```text
//! * welcome, you are 127.0.0.1:40000 (2 in the room)    to a client that joins
//! * 127.0.0.1:40000 joined                               to the others
//! <127.0.0.1:40000> hello                                a line, to everyone
//! * line too long (over 1024 bytes), not sent            to a sender, for an over-long line
//! * 127.0.0.1:40000 left                                 to the others
//! ```
//!
//! A client that stops reading cannot make the room buffer without bound:
//! once more than [`max_buffered`](ChatRoom::max_buffered) bytes wait to
//! be sent to it, it is disconnected (and the others see it leave).

use crate::address::Address;
use crate::basic::{LineControl, LineHandler, LineReceiver, LineSender};
use crate::protocol::{ConnectionLost, Factory};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// The default longest line a client may send.
pub const DEFAULT_MAX_LINE: usize = 1024;
/// The default bytes that may wait for one client before it is dropped.
pub const DEFAULT_MAX_BUFFERED: usize = 1 << 20;

struct Member {
    id: u64,
    sender: LineSender,
}

struct Room {
    members: Vec<Member>,
    next_id: u64,
    max_line: usize,
    max_buffered: usize,
    /// The line being broadcast, whole; kept for its memory.
    scratch: Vec<u8>,
}

/// The state a chat room's connections share: who is in it, and its
/// limits. Clone it freely: clones are the same room.
///
/// ```
/// use torsion::protocols::chat::ChatRoom;
/// use torsion::testing::StringTransport;
/// use torsion::{Address, Factory};
///
/// let room = ChatRoom::new();
/// let mut factory = room.factory();
/// let peer = |p: u16| Address::Tcp(([127, 0, 0, 1], p).into());
/// let (mut alice, a) = (factory.build_protocol(&peer(1)).unwrap(), StringTransport::new().with_peer(peer(1)));
/// let (mut bob, b) = (factory.build_protocol(&peer(2)).unwrap(), StringTransport::new().with_peer(peer(2)));
/// a.connect(&mut *alice);
/// b.connect(&mut *bob);
/// assert_eq!(room.len(), 2);
/// a.clear();
/// b.clear();
/// alice.data_received(b"hi bob\r\n");
/// assert_eq!(a.value(), b"<127.0.0.1:1> hi bob\r\n");
/// assert_eq!(b.value(), b"<127.0.0.1:1> hi bob\r\n");
/// ```
#[derive(Clone)]
pub struct ChatRoom {
    room: Rc<RefCell<Room>>,
}

impl ChatRoom {
    /// An empty room with the default limits.
    pub fn new() -> Self {
        ChatRoom {
            room: Rc::new(RefCell::new(Room {
                members: Vec::new(),
                next_id: 0,
                max_line: DEFAULT_MAX_LINE,
                max_buffered: DEFAULT_MAX_BUFFERED,
                scratch: Vec::new(),
            })),
        }
    }

    /// Lines longer than `bytes` are refused (the sender is told).
    pub fn max_line_length(self, bytes: usize) -> Self {
        self.room.borrow_mut().max_line = bytes;
        self
    }

    /// A client with more than `bytes` waiting to be sent to it is
    /// disconnected.
    pub fn max_buffered(self, bytes: usize) -> Self {
        self.room.borrow_mut().max_buffered = bytes;
        self
    }

    /// How many clients are in the room.
    pub fn len(&self) -> usize {
        self.room.borrow().members.len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A factory that puts every client it accepts in this room.
    pub fn factory(&self) -> impl Factory {
        let room = self.clone();
        move |_: &Address| room.chatter()
    }

    /// The protocol for one client.
    pub fn chatter(&self) -> LineReceiver<Chatter> {
        let max = self.room.borrow().max_line;
        LineReceiver::new(Chatter {
            room: self.clone(),
            id: None,
            name: String::new(),
        })
        .with_max_length(max)
    }

    /// Sends `prefix` + `line` to everyone (or everyone but `except`),
    /// dropping clients that fell too far behind.
    fn broadcast(&self, prefix: &[u8], line: &[u8], except: Option<u64>) {
        // Put together once, written to each member as one piece: a
        // member's write then copies one slice, not three.
        let mut msg = std::mem::take(&mut self.room.borrow_mut().scratch);
        let mut delimiter: Option<&[u8]> = None;
        let room = self.room.borrow();
        for m in &room.members {
            if Some(m.id) == except {
                continue;
            }
            let t = m.sender.transport();
            if !t.is_open() {
                continue;
            }
            if delimiter != Some(m.sender.delimiter()) {
                delimiter = Some(m.sender.delimiter());
                msg.clear();
                msg.extend_from_slice(prefix);
                msg.extend_from_slice(line);
                msg.extend_from_slice(m.sender.delimiter());
            }
            t.write(&msg);
            if t.buffered() > room.max_buffered {
                tracing::warn!(
                    peer = %t.peer(),
                    buffered = t.buffered(),
                    limit = room.max_buffered,
                    "chat: dropping a client that does not read"
                );
                t.abort_connection();
            }
        }
        drop(room);
        msg.clear();
        if msg.capacity() <= MAX_SCRATCH {
            self.room.borrow_mut().scratch = msg;
        }
    }
}

/// The largest broadcast buffer a room keeps between lines.
const MAX_SCRATCH: usize = 4096;

impl Default for ChatRoom {
    fn default() -> Self {
        ChatRoom::new()
    }
}

impl fmt::Debug for ChatRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.room.borrow();
        f.debug_struct("ChatRoom")
            .field("members", &r.members.len())
            .field("max_line", &r.max_line)
            .field("max_buffered", &r.max_buffered)
            .finish()
    }
}

/// One client of a [`ChatRoom`]: the [`LineHandler`] of its connection.
pub struct Chatter {
    room: ChatRoom,
    id: Option<u64>,
    name: String,
}

impl fmt::Debug for Chatter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chatter").field("name", &self.name).finish()
    }
}

impl LineHandler for Chatter {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        self.name = ctl.transport().peer().to_string();
        let id = {
            let mut room = self.room.room.borrow_mut();
            let id = room.next_id;
            room.next_id += 1;
            room.members.push(Member {
                id,
                sender: ctl.sender(),
            });
            id
        };
        self.id = Some(id);
        let here = self.room.len();
        ctl.send_line(format!("* welcome, you are {} ({here} in the room)", self.name).as_bytes());
        self.room
            .broadcast(b"* ", format!("{} joined", self.name).as_bytes(), Some(id));
        tracing::debug!(peer = %self.name, here, "chat: joined");
    }

    fn line_received(&mut self, line: &[u8], _ctl: &mut LineControl<'_>) {
        let prefix = format!("<{}> ", self.name);
        self.room.broadcast(prefix.as_bytes(), line, None);
    }

    fn line_length_exceeded(&mut self, ctl: &mut LineControl<'_>) {
        tracing::info!(peer = %self.name, max = ctl.max_length(), "chat: refused an over-long line");
        ctl.send_line(
            format!(
                "* line too long (over {} bytes), not sent",
                ctl.max_length()
            )
            .as_bytes(),
        );
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        let Some(id) = self.id.take() else { return };
        self.room.room.borrow_mut().members.retain(|m| m.id != id);
        self.room
            .broadcast(b"* ", format!("{} left", self.name).as_bytes(), None);
        tracing::debug!(peer = %self.name, %reason, "chat: left");
    }
}

/// What [`ChatRoom::chatter`] builds, for naming it in types.
pub type ChatProtocol = LineReceiver<Chatter>;
