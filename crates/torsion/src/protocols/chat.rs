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
//! A line may end in LF or CRLF (a terminal's `socat` or `nc` sends LF,
//! telnet CRLF); every line the room sends ends in CRLF. The line limit,
//! [`max_line_length`](ChatRoom::max_line_length), counts the text
//! without its ending.
//!
//! # Flow control
//!
//! A client that reads slowly slows the room down instead of being cut
//! off. Each client's connection has the room as its producer, with
//! [`max_buffered`](ChatRoom::max_buffered) as the high-water mark of
//! bytes waiting to be sent to it (a quarter of it as the low-water
//! mark). When one client's queue passes the high-water mark, the room
//! stops delivering lines from every client and stops reading from them
//! (the lines already read wait in their receivers, their senders' data in
//! the kernel, so TCP slows them down); once every queue is back under the
//! low-water mark, delivery and reading resume, in order, and no line is
//! lost. The room notices a crossed mark as the line that crosses it is
//! written, so a queue passes the mark by about one line per sender.
//!
//! A client that takes nothing at all would stop the room for good, so a
//! client whose queue stays over the high-water mark and has not shrunk
//! for [`stall_timeout`](ChatRoom::stall_timeout) (by default
//! [`DEFAULT_STALL_TIMEOUT`]) is disconnected, with a warning naming it;
//! the others see it leave and the room goes on. The time runs on the
//! room's reactor, so tests drive it with a [`Clock`](crate::task::Clock).

use crate::address::Address;
use crate::basic::{DeliveryHandle, LineControl, LineHandler, LineReceiver, LineSender};
use crate::protocol::{ConnectionLost, Factory};
use crate::reactor::{DelayedCall, Reactor, WeakReactor};
use crate::transport::Producer;
use std::cell::RefCell;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

/// The default longest line a client may send.
pub const DEFAULT_MAX_LINE: usize = 1024;
/// The default high-water mark: bytes waiting for one client above which
/// the room stops reading from everyone.
pub const DEFAULT_MAX_BUFFERED: usize = 1 << 20;
/// The default time a client may hold the room up without taking any of
/// what waits for it before it is dropped.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How every line the room sends ends.
const CRLF: &[u8] = b"\r\n";

struct Member {
    id: u64,
    sender: LineSender,
    delivery: DeliveryHandle,
    /// Set while its queue is over the high-water mark.
    behind: Option<Behind>,
}

/// A member the room waits for: its queue when last measured, and the
/// timer that measures it again.
struct Behind {
    queued: usize,
    check: Option<DelayedCall>,
}

struct Room {
    members: Vec<Member>,
    next_id: u64,
    max_line: usize,
    max_buffered: usize,
    stall_timeout: Duration,
    reactor: WeakReactor,
    /// The line being broadcast, whole; kept for its memory.
    scratch: Vec<u8>,
}

impl Room {
    fn is_paused(&self) -> bool {
        self.members.iter().any(|m| m.behind.is_some())
    }

    fn member(&mut self, id: u64) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    fn deliveries(&self) -> Vec<DeliveryHandle> {
        self.members.iter().map(|m| m.delivery.clone()).collect()
    }
}

/// The state a chat room's connections share: who is in it, and its
/// limits. Clone it freely: clones are the same room.
///
/// ```
/// use torsion::protocols::chat::ChatRoom;
/// use torsion::testing::StringTransport;
/// use torsion::{Address, Factory, Reactor};
///
/// let reactor = Reactor::new().unwrap();
/// let room = ChatRoom::new(&reactor);
/// let mut factory = room.factory();
/// let peer = |p: u16| Address::Tcp(([127, 0, 0, 1], p).into());
/// let (mut alice, a) = (factory.build_protocol(&peer(1)).unwrap(), StringTransport::new().with_peer(peer(1)));
/// let (mut bob, b) = (factory.build_protocol(&peer(2)).unwrap(), StringTransport::new().with_peer(peer(2)));
/// a.connect(&mut *alice);
/// b.connect(&mut *bob);
/// assert_eq!(room.len(), 2);
/// a.clear();
/// b.clear();
/// alice.data_received(b"hi bob\n");
/// assert_eq!(a.value(), b"<127.0.0.1:1> hi bob\r\n");
/// assert_eq!(b.value(), b"<127.0.0.1:1> hi bob\r\n");
/// ```
#[derive(Clone)]
pub struct ChatRoom {
    room: Rc<RefCell<Room>>,
}

impl ChatRoom {
    /// An empty room with the default limits, timing stalled clients on
    /// `reactor`'s clock.
    pub fn new(reactor: &Reactor) -> Self {
        ChatRoom {
            room: Rc::new(RefCell::new(Room {
                members: Vec::new(),
                next_id: 0,
                max_line: DEFAULT_MAX_LINE,
                max_buffered: DEFAULT_MAX_BUFFERED,
                stall_timeout: DEFAULT_STALL_TIMEOUT,
                reactor: reactor.weak(),
                scratch: Vec::new(),
            })),
        }
    }

    /// Lines longer than `bytes` (without their LF or CRLF) are refused
    /// (the sender is told).
    pub fn max_line_length(self, bytes: usize) -> Self {
        self.room.borrow_mut().max_line = bytes;
        self
    }

    /// While more than `bytes` wait to be sent to any client, the room
    /// reads from nobody; it reads again once every client has less than
    /// a quarter of it waiting. Applies to the clients that join after.
    pub fn max_buffered(self, bytes: usize) -> Self {
        self.room.borrow_mut().max_buffered = bytes;
        self
    }

    /// A client over the [`max_buffered`](Self::max_buffered) mark whose
    /// queue does not shrink for `timeout` is disconnected (measured on
    /// the room's reactor, once a period: a client is dropped after at
    /// least one whole period without progress).
    ///
    /// ```
    /// use std::time::Duration;
    /// use torsion::protocols::chat::ChatRoom;
    /// use torsion::Reactor;
    ///
    /// let reactor = Reactor::new().unwrap();
    /// let room = ChatRoom::new(&reactor)
    ///     .max_buffered(256 * 1024)
    ///     .stall_timeout(Duration::from_secs(10));
    /// assert!(!room.is_paused());
    /// ```
    pub fn stall_timeout(self, timeout: Duration) -> Self {
        self.room.borrow_mut().stall_timeout = timeout;
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

    /// Whether the room has stopped reading because a client is behind.
    pub fn is_paused(&self) -> bool {
        self.room.borrow().is_paused()
    }

    /// A factory that puts every client it accepts in this room.
    pub fn factory(&self) -> impl Factory {
        let room = self.clone();
        move |_: &Address| room.chatter()
    }

    /// The protocol for one client.
    pub fn chatter(&self) -> LineReceiver<Chatter> {
        let max = self.room.borrow().max_line;
        // Split at LF; a CR before it is taken off in `line_received`, and
        // counts against the limit only there.
        LineReceiver::new(Chatter {
            room: self.clone(),
            id: None,
            name: String::new(),
        })
        .with_delimiter(b"\n")
        .with_max_length(max.saturating_add(1))
    }

    /// Sends `prefix` + `line` + CRLF to everyone (or everyone but
    /// `except`).
    fn broadcast(&self, prefix: &[u8], line: &[u8], except: Option<u64>) {
        // Put together once, written to each member as one piece: a
        // member's write then copies one slice, not three.
        let mut msg = std::mem::take(&mut self.room.borrow_mut().scratch);
        msg.clear();
        msg.extend_from_slice(prefix);
        msg.extend_from_slice(line);
        msg.extend_from_slice(CRLF);
        let room = self.room.borrow();
        // Members this line took over the mark; allocates only if any.
        let mut over = Vec::new();
        for m in &room.members {
            if Some(m.id) == except {
                continue;
            }
            let t = m.sender.transport();
            if t.is_open() {
                t.write(&msg);
                if m.behind.is_none() && t.buffered() > room.max_buffered {
                    over.push(m.id);
                }
            }
        }
        drop(room);
        msg.clear();
        if msg.capacity() <= MAX_SCRATCH {
            self.room.borrow_mut().scratch = msg;
        }
        for id in over {
            self.passed_the_mark(id);
        }
    }

    /// A broadcast left more than the mark queued for member `id`: stop
    /// the senders now, before the rest of their input is delivered.
    ///
    /// The transport reports a crossed mark only after it flushed (and
    /// writes made while a connection's input is being delivered are
    /// flushed when that delivery returns), by which time the senders'
    /// reads of the whole turn would have gone out. The queue seen here
    /// may still hold bytes the kernel takes at that flush, so the room
    /// looks again once it is done: still over the mark, it waits for the
    /// transport to say the queue drained; not, it resumes at once (the
    /// transport, having seen no crossing, will say nothing).
    fn passed_the_mark(&self, id: u64) {
        self.fell_behind(id);
        let Some(reactor) = self.room.borrow().reactor.upgrade() else {
            return;
        };
        let room = Rc::downgrade(&self.room);
        reactor.call_soon(move || {
            let Some(room) = room.upgrade() else { return };
            let room = ChatRoom { room };
            let drained = {
                let mut r = room.room.borrow_mut();
                let mark = r.max_buffered;
                r.member(id)
                    .is_some_and(|m| m.behind.is_some() && m.sender.transport().buffered() <= mark)
            };
            if drained {
                room.caught_up(id);
            }
        });
    }

    /// Member `id`'s queue passed the high-water mark: stop every sender
    /// (if none was stopped yet) and start timing it.
    fn fell_behind(&self, id: u64) {
        let pause = {
            let mut room = self.room.borrow_mut();
            let was_paused = room.is_paused();
            let (timeout, reactor) = (room.stall_timeout, room.reactor.upgrade());
            let Some(m) = room.member(id) else { return };
            if m.behind.is_some() {
                return;
            }
            let check = reactor.map(|r| self.schedule_check(&r, id, timeout));
            let t = m.sender.transport();
            tracing::debug!(peer = %t.peer(), queued = t.buffered(), "chat: a client is behind; the room waits for it");
            m.behind = Some(Behind {
                queued: t.buffered(),
                check,
            });
            (!was_paused).then(|| room.deliveries())
        };
        for d in pause.into_iter().flatten() {
            d.pause();
        }
    }

    /// Member `id` caught up (or left): resume every sender if nobody else
    /// is behind.
    fn caught_up(&self, id: u64) {
        let resume = {
            let mut room = self.room.borrow_mut();
            let Some(behind) = room.member(id).and_then(|m| m.behind.take()) else {
                return;
            };
            if let Some(c) = behind.check {
                c.cancel();
            }
            (!room.is_paused()).then(|| room.deliveries())
        };
        // Outside the borrow: resuming delivers the lines held back, which
        // broadcasts them.
        for d in resume.into_iter().flatten() {
            d.resume();
        }
    }

    fn schedule_check(&self, reactor: &Reactor, id: u64, timeout: Duration) -> DelayedCall {
        let room = Rc::downgrade(&self.room);
        reactor.call_later(timeout, move || {
            if let Some(room) = room.upgrade() {
                ChatRoom { room }.check_progress(id);
            }
        })
    }

    /// A stall period of member `id` ended: drop it if its queue did not
    /// shrink, else time it again.
    fn check_progress(&self, id: u64) {
        let stalled = {
            let mut room = self.room.borrow_mut();
            let timeout = room.stall_timeout;
            let reactor = room.reactor.upgrade();
            let Some(m) = room.member(id) else { return };
            let t = m.sender.transport().clone();
            let Some(behind) = m.behind.as_mut() else {
                return;
            };
            let queued = t.buffered();
            if queued < behind.queued {
                behind.queued = queued;
                behind.check = reactor.map(|r| self.schedule_check(&r, id, timeout));
                return;
            }
            tracing::warn!(
                peer = %t.peer(),
                queued,
                stall_timeout = ?timeout,
                "chat: dropping a client that made no progress: nothing it was sent was taken for the stall timeout while the room waited for it"
            );
            t
        };
        stalled.abort_connection();
        self.caught_up(id);
    }
}

/// The largest broadcast buffer a room keeps between lines.
const MAX_SCRATCH: usize = 4096;

impl fmt::Debug for ChatRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.room.borrow();
        f.debug_struct("ChatRoom")
            .field("members", &r.members.len())
            .field("max_line", &r.max_line)
            .field("max_buffered", &r.max_buffered)
            .field("stall_timeout", &r.stall_timeout)
            .field("paused", &r.is_paused())
            .finish()
    }
}

/// What the room registers as the producer of each client's connection:
/// the transport tells it when that client's queue passes the high-water
/// mark and when it drains below the low-water mark.
struct Backpressure {
    room: Weak<RefCell<Room>>,
    id: u64,
}

impl Backpressure {
    fn room(&self) -> Option<ChatRoom> {
        self.room.upgrade().map(|room| ChatRoom { room })
    }
}

impl Producer for Backpressure {
    fn pause_producing(&self) {
        if let Some(room) = self.room() {
            room.fell_behind(self.id);
        }
    }

    fn resume_producing(&self) {
        if let Some(room) = self.room() {
            room.caught_up(self.id);
        }
    }

    /// The connection is gone: the room no longer waits for it.
    fn stop_producing(&self) {
        if let Some(room) = self.room() {
            room.caught_up(self.id);
        }
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

impl Chatter {
    fn refuse_long_line(&self, sender: &LineSender) {
        let max = self.room.room.borrow().max_line;
        tracing::info!(peer = %self.name, max, "chat: refused an over-long line");
        sender.send_line(format!("* line too long (over {max} bytes), not sent").as_bytes());
    }
}

impl LineHandler for Chatter {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        let transport = ctl.transport().clone();
        self.name = transport.peer().to_string();
        let sender = LineSender::new(transport.clone(), CRLF);
        let delivery = ctl.delivery();
        let (id, high, paused) = {
            let mut room = self.room.room.borrow_mut();
            let id = room.next_id;
            room.next_id += 1;
            let paused = room.is_paused();
            room.members.push(Member {
                id,
                sender: sender.clone(),
                delivery: delivery.clone(),
                behind: None,
            });
            (id, room.max_buffered, paused)
        };
        self.id = Some(id);
        transport.set_write_buffer_limits(high, high / 4);
        transport.register_producer(
            Rc::new(Backpressure {
                room: Rc::downgrade(&self.room.room),
                id,
            }),
            true,
        );
        if paused {
            // The room waits for someone: this client waits with the rest.
            delivery.pause();
        }
        let here = self.room.len();
        sender
            .send_line(format!("* welcome, you are {} ({here} in the room)", self.name).as_bytes());
        self.room
            .broadcast(b"* ", format!("{} joined", self.name).as_bytes(), Some(id));
        tracing::debug!(peer = %self.name, here, "chat: joined");
    }

    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.room.room.borrow().max_line {
            // One byte over with LF alone: the decoder allowed for a CR.
            self.refuse_long_line(&LineSender::new(ctl.transport().clone(), CRLF));
            return;
        }
        let prefix = format!("<{}> ", self.name);
        self.room.broadcast(prefix.as_bytes(), line, None);
    }

    fn line_length_exceeded(&mut self, ctl: &mut LineControl<'_>) {
        self.refuse_long_line(&LineSender::new(ctl.transport().clone(), CRLF));
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        let Some(id) = self.id.take() else { return };
        // No longer waited for, if it was; then gone.
        self.room.caught_up(id);
        self.room.room.borrow_mut().members.retain(|m| m.id != id);
        self.room
            .broadcast(b"* ", format!("{} left", self.name).as_bytes(), None);
        tracing::debug!(peer = %self.name, %reason, "chat: left");
    }
}

/// What [`ChatRoom::chatter`] builds, for naming it in types.
pub type ChatProtocol = LineReceiver<Chatter>;
