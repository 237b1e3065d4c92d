//! Pausing and resuming delivery: the part every receiver shares.
//!
//! A receiver keeps its parser and handler in one `RefCell` behind an
//! `Rc`, so that a [`DeliveryHandle`] held elsewhere (a timer, another
//! connection's producer slot) can resume it. The pause flag lives outside
//! that cell, in a [`Gate`], so a handler may pause or resume while the
//! receiver is running it: the receiver's delivery loop reads the flag
//! after every message.

use crate::transport::{Producer, Transport};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::{Rc, Weak};

/// The pause state a receiver and its handles share.
#[derive(Default)]
pub(crate) struct Gate {
    paused: Cell<bool>,
    stopped: Cell<bool>,
    transport: RefCell<Option<Transport>>,
}

impl Gate {
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.get() || self.stopped.get()
    }

    pub(crate) fn set_transport(&self, transport: Transport) {
        *self.transport.borrow_mut() = Some(transport);
    }

    fn transport(&self) -> Option<Transport> {
        self.transport.borrow().clone()
    }

    pub(crate) fn pause(&self) {
        if !self.paused.replace(true) {
            if let Some(t) = self.transport() {
                t.pause_producing();
            }
        }
    }
}

/// What a [`DeliveryHandle`] resumes: a receiver that delivers what it
/// buffered while paused.
pub(crate) trait Resume {
    /// Delivers buffered messages now, unless the receiver is running (it
    /// then sees the cleared pause flag itself when its handler returns).
    fn resume_delivery(&self);
}

/// A handle that pauses and resumes a receiver's delivery of messages
/// (Twisted's `LineReceiver.pauseProducing` / `resumeProducing`).
///
/// Pausing stops the receiver from handing further messages to its
/// handler (the rest of what already arrived stays buffered) and stops the
/// transport from reading. Resuming delivers what was buffered, then reads
/// again. The handle is a [`Producer`], so it can be registered with
/// another connection: a receiver that forwards what it gets to a slow
/// peer is paused while that peer's queue is full.
///
/// Get one from a receiver's `delivery()` method or from the control a
/// handler is given.
///
/// ```
/// use torsion::basic::{LineControl, LineHandler, LineReceiver};
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
///
/// #[derive(Default)]
/// struct Slow(Vec<Vec<u8>>);
/// impl LineHandler for Slow {
///     fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
///         self.0.push(line.to_vec());
///         ctl.pause(); // one line at a time
///     }
/// }
///
/// let st = StringTransport::new();
/// let mut r = LineReceiver::new(Slow::default());
/// st.connect(&mut r);
/// r.data_received(b"one\r\ntwo\r\n");
/// assert_eq!(r.handler().0.len(), 1);
/// assert!(st.is_reading_paused());
/// r.delivery().resume();
/// assert_eq!(r.handler().0.len(), 2);
/// ```
#[derive(Clone)]
pub struct DeliveryHandle {
    gate: Rc<Gate>,
    target: Weak<dyn Resume>,
}

impl DeliveryHandle {
    pub(crate) fn new(gate: Rc<Gate>, target: Weak<dyn Resume>) -> Self {
        DeliveryHandle { gate, target }
    }

    /// Stops delivering messages and stops the transport reading. Calling
    /// it while paused does nothing.
    pub fn pause(&self) {
        self.gate.pause();
    }

    /// Delivers what was buffered while paused, then lets the transport
    /// read again. Calling it while not paused does nothing. Called from
    /// inside the receiver's own handler, delivery goes on once the
    /// handler returns.
    pub fn resume(&self) {
        if self.gate.stopped.get() || !self.gate.paused.replace(false) {
            return;
        }
        if let Some(t) = self.gate.transport() {
            t.resume_producing();
        }
        if let Some(target) = self.target.upgrade() {
            target.resume_delivery();
        }
    }

    /// Whether delivery is paused.
    pub fn is_paused(&self) -> bool {
        self.gate.is_paused()
    }
}

impl Producer for DeliveryHandle {
    fn pause_producing(&self) {
        self.pause();
    }

    fn resume_producing(&self) {
        self.resume();
    }

    /// The consumer this receiver fed is gone: deliver nothing more and
    /// close the connection (flushing what it queued).
    fn stop_producing(&self) {
        self.gate.stopped.set(true);
        if let Some(t) = self.gate.transport() {
            t.lose_connection();
        }
    }
}

impl fmt::Debug for DeliveryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryHandle")
            .field("paused", &self.gate.paused.get())
            .field("stopped", &self.gate.stopped.get())
            .finish()
    }
}

/// Input held back while delivery is paused. Bounded: a transport keeps
/// reading only until the pause reaches it, so at most one read's worth
/// (plus what a parser buffers) can pile up; past [`limit`](Self::limit)
/// the peer is treated as hostile.
#[derive(Default)]
pub(crate) struct Backlog {
    pub(crate) bytes: Vec<u8>,
}

/// Bytes a paused receiver holds before it gives up on the connection.
pub(crate) const BACKLOG_LIMIT: usize = 1 << 20;

impl Backlog {
    /// Runs `run` over the backlog followed by `data`; keeps what `run`
    /// left (it returns how much it consumed). Returns `false` if the
    /// backlog outgrew its limit.
    pub(crate) fn feed(&mut self, data: &[u8], run: impl FnOnce(&[u8]) -> usize) -> bool {
        if self.bytes.is_empty() {
            let used = run(data);
            if used < data.len() {
                self.bytes.extend_from_slice(&data[used..]);
            }
        } else {
            self.bytes.extend_from_slice(data);
            let buf = std::mem::take(&mut self.bytes);
            let used = run(&buf).min(buf.len());
            if used < buf.len() {
                let mut buf = buf;
                buf.drain(..used);
                // Keep the new backlog if `run` made one (it cannot: the
                // backlog was taken), else reuse the old buffer.
                if self.bytes.is_empty() {
                    self.bytes = buf;
                } else {
                    buf.extend_from_slice(&self.bytes);
                    self.bytes = buf;
                }
            }
        }
        self.bytes.len() <= BACKLOG_LIMIT
    }
}

/// Feeds `data` to a receiver `core` through its backlog: what waited
/// first, then `data`, each run through `run`. A peer that piles up more
/// than [`BACKLOG_LIMIT`] while delivery is paused is cut off. Shared by
/// the line and the string receivers.
pub(crate) fn feed_through<C>(
    core: &mut C,
    backlog: fn(&mut C) -> &mut Backlog,
    transport: Option<Transport>,
    data: &[u8],
    run: fn(&mut C, &Transport, &[u8]) -> usize,
) {
    let Some(transport) = transport else {
        tracing::debug!("data before connection_made ignored");
        return;
    };
    let mut waiting = std::mem::take(backlog(core));
    let ok = waiting.feed(data, |input| run(core, &transport, input));
    *backlog(core) = waiting;
    if !ok {
        tracing::warn!(peer = %transport.peer(), "closing connection: too much input while paused");
        *backlog(core) = Backlog::default();
        transport.abort_connection();
    }
}
