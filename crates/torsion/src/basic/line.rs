//! Line framing: the sans-IO [`LineDecoder`] and the two receivers built
//! on it, [`LineReceiver`] and [`LineOnlyReceiver`].

use super::delivery::{feed_through, Backlog, DeliveryHandle, Gate, Resume};
use crate::protocol::{ConnectionLost, HalfClose, Protocol};
use crate::transport::Transport;
use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::rc::Rc;

/// The default line delimiter, as in Twisted: `\r\n`.
pub const DEFAULT_DELIMITER: &[u8] = b"\r\n";
/// The default maximum line length (delimiter excluded), as in Twisted.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 16384;

/// What [`LineDecoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// A complete line, without its delimiter.
    Line(&'a [u8]),
    /// A line longer than the maximum. Its bytes are skipped up to and
    /// including the next delimiter; the lines after it decode normally.
    TooLong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Normal,
    /// Skipping an over-long line up to its delimiter.
    Skipping,
}

/// A sans-IO line splitter with a bounded buffer.
///
/// Feed it bytes with [`decode`](Self::decode) as they arrive; it returns
/// one event at a time and how many input bytes it used. Lines that
/// arrive whole in one input are returned without a copy; only a partial
/// line at the end of an input is buffered, and never more than the
/// maximum length plus the delimiter's length: a line that grows past
/// the maximum is reported as [`LineEvent::TooLong`] as soon as that is
/// certain, and skipped.
///
/// The events are the same however the input is split: all at once, one
/// byte at a time, or anywhere in between. A line of exactly the maximum
/// length is accepted.
///
/// ```
/// use torsion::basic::{LineDecoder, LineEvent};
///
/// let mut d = LineDecoder::new(b"\r\n", 5);
/// let mut input: &[u8] = b"hello\r\nthis is too long\r\nok\r\npart";
/// let mut events = Vec::new();
/// loop {
///     let (used, event) = d.decode(input);
///     input = &input[used..];
///     match event {
///         Some(LineEvent::Line(l)) => events.push(String::from_utf8_lossy(l).into_owned()),
///         Some(LineEvent::TooLong) => events.push("<too long>".into()),
///         None => break, // everything used; "part" waits for its delimiter
///     }
/// }
/// assert_eq!(events, ["hello", "<too long>", "ok"]);
/// assert_eq!(d.buffered(), b"part");
/// ```
#[derive(Clone)]
pub struct LineDecoder {
    delimiter: Box<[u8]>,
    max_length: usize,
    buf: Vec<u8>,
    state: State,
    /// `buf` holds a line already returned; clear it on the next call.
    line_taken: bool,
}

impl LineDecoder {
    /// A decoder splitting on `delimiter`, accepting lines of at most
    /// `max_length` bytes (delimiter excluded).
    ///
    /// # Panics
    ///
    /// If `delimiter` is empty.
    pub fn new(delimiter: &[u8], max_length: usize) -> Self {
        assert!(!delimiter.is_empty(), "a line delimiter cannot be empty");
        LineDecoder {
            delimiter: delimiter.into(),
            max_length,
            buf: Vec::new(),
            state: State::Normal,
            line_taken: false,
        }
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }

    /// The maximum line length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Changes the maximum line length; it applies to the line being
    /// decoded too.
    pub fn set_max_length(&mut self, max_length: usize) {
        self.max_length = max_length;
    }

    /// The bytes of an incomplete line held so far (empty while skipping
    /// an over-long line).
    pub fn buffered(&self) -> &[u8] {
        if self.line_taken || self.state == State::Skipping {
            &[]
        } else {
            &self.buf
        }
    }

    /// Forgets the incomplete line (and stops skipping an over-long one);
    /// returns the bytes it held.
    pub fn reset(&mut self) -> Vec<u8> {
        let held = self.buffered().to_vec();
        self.buf = Vec::new();
        self.state = State::Normal;
        self.line_taken = false;
        held
    }

    /// Decodes from `input`. Returns how many bytes of `input` were used
    /// and the event they completed, if any. When the event is `None`,
    /// all of `input` was used (buffered or skipped): wait for more
    /// input. Otherwise call again with the rest, `&input[used..]`.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<LineEvent<'a>>) {
        if self.line_taken {
            self.buf.clear();
            self.line_taken = false;
        }
        let dl = self.delimiter.len();
        let mut off = 0;
        loop {
            let rest = &input[off..];
            if rest.is_empty() {
                return (input.len(), None);
            }
            // A delimiter that begins in the buffer and ends in the input,
            // else one inside the input.
            let found = span_match(&self.buf, rest, &self.delimiter)
                .map(|end| (end, self.buf.len() + end - dl, None))
                .or_else(|| {
                    find(rest, &self.delimiter).map(|i| (i + dl, self.buf.len() + i, Some(i)))
                });
            if let Some((used, line_len, in_input)) = found {
                off += used;
                if self.state == State::Skipping {
                    // The over-long line ends here; it was reported already.
                    self.buf.clear();
                    self.state = State::Normal;
                    continue;
                }
                if line_len > self.max_length {
                    self.buf.clear();
                    return (off, Some(LineEvent::TooLong));
                }
                return match in_input {
                    Some(i) if self.buf.is_empty() => (off, Some(LineEvent::Line(&rest[..i]))),
                    Some(i) => {
                        self.buf.extend_from_slice(&rest[..i]);
                        self.line_taken = true;
                        (off, Some(LineEvent::Line(&self.buf)))
                    }
                    None => {
                        self.buf.truncate(line_len);
                        self.line_taken = true;
                        (off, Some(LineEvent::Line(&self.buf)))
                    }
                };
            }
            // No delimiter yet: keep what may still be content, bounded.
            let partial = partial_suffix(&self.buf, rest, &self.delimiter);
            let known = self.buf.len() + rest.len() - partial;
            if self.state == State::Skipping || known > self.max_length {
                self.buf = tail(&self.buf, rest, partial);
                if self.state == State::Normal {
                    self.state = State::Skipping;
                    return (input.len(), Some(LineEvent::TooLong));
                }
            } else {
                self.buf.extend_from_slice(rest);
            }
            return (input.len(), None);
        }
    }
}

impl fmt::Debug for LineDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineDecoder")
            .field("delimiter", &String::from_utf8_lossy(&self.delimiter))
            .field("max_length", &self.max_length)
            .field("buffered", &self.buffered().len())
            .field("skipping", &(self.state == State::Skipping))
            .finish()
    }
}

/// The first occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let i = from + memchr::memchr(first, &hay[from..=hay.len() - needle.len()])?;
        if &hay[i + 1..i + needle.len()] == rest {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// A delimiter that starts in `buf` and is completed by the start of
/// `input`: returns how many input bytes complete it.
fn span_match(buf: &[u8], input: &[u8], d: &[u8]) -> Option<usize> {
    let dl = d.len();
    let first = buf.len().saturating_sub(dl - 1);
    (first..buf.len()).find_map(|s| {
        let in_buf = buf.len() - s;
        let need = dl - in_buf;
        (buf[s..] == d[..in_buf] && input.len() >= need && input[..need] == d[in_buf..])
            .then_some(need)
    })
}

/// The length of the longest suffix of `buf ++ input` that is a proper
/// prefix of `d` (bytes that may yet turn out to be a delimiter).
fn partial_suffix(buf: &[u8], input: &[u8], d: &[u8]) -> usize {
    let total = buf.len() + input.len();
    let at = |i: usize| {
        if i < buf.len() {
            buf[i]
        } else {
            input[i - buf.len()]
        }
    };
    (1..d.len().min(total + 1))
        .rev()
        .find(|&j| (0..j).all(|k| at(total - j + k) == d[k]))
        .unwrap_or(0)
}

/// The last `n` bytes of `buf ++ input`.
fn tail(buf: &[u8], input: &[u8], n: usize) -> Vec<u8> {
    if n <= input.len() {
        input[input.len() - n..].to_vec()
    } else {
        let from_buf = n - input.len();
        let mut v = buf[buf.len() - from_buf..].to_vec();
        v.extend_from_slice(input);
        v
    }
}

/// What a [`LineHandler`] asked for during one callback.
#[derive(Default)]
struct Effects {
    raw: Option<bool>,
    line_mode_at: Option<usize>,
    clear: bool,
    max_length: Option<usize>,
}

/// What a [`LineHandler`] may do from inside a callback: send lines,
/// switch between line and raw mode, pause delivery, clear the buffer.
///
/// Mode switches and the other requests take effect as soon as the
/// callback returns, in the middle of a buffer if need be: no byte is
/// lost or reordered.
pub struct LineControl<'a> {
    transport: &'a Transport,
    delimiter: &'a Rc<[u8]>,
    handle: &'a DeliveryHandle,
    raw_mode: bool,
    max_length: usize,
    /// Input that arrived and is not delivered yet.
    rest: &'a [u8],
    held: &'a [u8],
    effects: Effects,
}

impl<'a> LineControl<'a> {
    /// The connection's transport.
    pub fn transport(&self) -> &'a Transport {
        self.transport
    }

    /// Writes `line` followed by the delimiter, in one gathering write.
    pub fn send_line(&self, line: &[u8]) {
        self.transport.write_sequence(&[line, &self.delimiter[..]]);
    }

    /// A handle that sends lines on this connection, to keep.
    pub fn sender(&self) -> LineSender {
        LineSender {
            transport: self.transport.clone(),
            delimiter: self.delimiter.clone(),
        }
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter[..]
    }

    /// Everything after the current line (or raw chunk) goes to
    /// [`LineHandler::raw_data_received`], until
    /// [`set_line_mode`](Self::set_line_mode).
    pub fn set_raw_mode(&mut self) {
        self.effects.raw = Some(true);
        self.effects.line_mode_at = None;
    }

    /// Back to lines after the current raw chunk. Called from
    /// [`raw_data_received`](LineHandler::raw_data_received), the whole
    /// chunk counts as raw; see [`set_line_mode_at`](Self::set_line_mode_at)
    /// to hand part of it back.
    pub fn set_line_mode(&mut self) {
        self.effects.raw = Some(false);
        self.effects.line_mode_at = None;
    }

    /// Called from [`raw_data_received`](LineHandler::raw_data_received):
    /// the handler used the chunk's first `used` bytes as raw data; the
    /// rest is decoded as lines.
    pub fn set_line_mode_at(&mut self, used: usize) {
        self.effects.raw = Some(false);
        self.effects.line_mode_at = Some(used);
    }

    /// Whether the receiver is (or, after this callback, will be) in raw
    /// mode.
    pub fn is_raw_mode(&self) -> bool {
        self.effects.raw.unwrap_or(self.raw_mode)
    }

    /// Stops delivering after this callback and stops the transport
    /// reading, until the [`DeliveryHandle`] resumes it.
    pub fn pause(&mut self) {
        self.handle.pause();
    }

    /// A handle to pause and resume delivery later.
    pub fn delivery(&self) -> DeliveryHandle {
        self.handle.clone()
    }

    /// Forgets every byte received and not yet delivered (the rest of
    /// this input and any incomplete line) and returns them.
    pub fn clear_line_buffer(&mut self) -> Vec<u8> {
        self.effects.clear = true;
        let mut v = self.held.to_vec();
        v.extend_from_slice(self.rest);
        v
    }

    /// The maximum line length.
    pub fn max_length(&self) -> usize {
        self.effects.max_length.unwrap_or(self.max_length)
    }

    /// Changes the maximum line length from the next line on.
    pub fn set_max_length(&mut self, max_length: usize) {
        self.effects.max_length = Some(max_length);
    }
}

impl fmt::Debug for LineControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineControl")
            .field("raw_mode", &self.is_raw_mode())
            .field("max_length", &self.max_length())
            .finish()
    }
}

/// Sends lines on one connection: a transport and a delimiter, cheap to
/// clone and keep (a chat room keeps one per client).
///
/// ```
/// use torsion::basic::LineSender;
/// use torsion::testing::StringTransport;
/// let st = StringTransport::new();
/// let sender = LineSender::new(st.transport(), b"\n");
/// sender.send_line(b"hello");
/// assert_eq!(st.value(), b"hello\n");
/// ```
#[derive(Clone, Debug)]
pub struct LineSender {
    transport: Transport,
    delimiter: Rc<[u8]>,
}

impl LineSender {
    /// Sends on `transport`, ending lines with `delimiter`.
    pub fn new(transport: Transport, delimiter: &[u8]) -> Self {
        LineSender {
            transport,
            delimiter: delimiter.into(),
        }
    }

    /// The delimiter that ends each line sent.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }

    /// Writes `line` and the delimiter in one gathering write.
    pub fn send_line(&self, line: &[u8]) {
        self.transport.write_sequence(&[line, &self.delimiter]);
    }

    /// Writes `prefix`, `line` and the delimiter in one gathering write.
    pub fn send_line_with_prefix(&self, prefix: &[u8], line: &[u8]) {
        self.transport
            .write_sequence(&[prefix, line, &self.delimiter]);
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
}

/// The application side of a [`LineReceiver`]: Twisted's `lineReceived`
/// and friends.
///
/// Only [`line_received`](Self::line_received) must be written.
///
/// ```
/// use torsion::basic::{LineControl, LineHandler, LineReceiver};
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
///
/// /// Answers every line in upper case; "quit" ends the session.
/// struct Shout;
/// impl LineHandler for Shout {
///     fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
///         if line == b"quit" {
///             ctl.transport().lose_connection();
///         } else {
///             ctl.send_line(&line.to_ascii_uppercase());
///         }
///     }
/// }
///
/// let st = StringTransport::new();
/// let mut r = LineReceiver::new(Shout);
/// st.connect(&mut r);
/// r.data_received(b"hel");
/// r.data_received(b"lo\r\nquit\r\nignored\r\n");
/// assert_eq!(st.value(), b"HELLO\r\n");
/// assert!(st.lose_connection_called());
/// ```
pub trait LineHandler: 'static {
    /// The connection is up.
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        let _ = ctl;
    }

    /// A complete line arrived (without its delimiter).
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>);

    /// Bytes arrived in raw mode. The default discards them.
    fn raw_data_received(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
        let _ = (data, ctl);
    }

    /// A line grew past the maximum length. It is skipped up to its
    /// delimiter either way; the default also closes the connection (after
    /// logging why). Override it to answer with an error and go on.
    fn line_length_exceeded(&mut self, ctl: &mut LineControl<'_>) {
        tracing::info!(
            peer = %ctl.transport().peer(),
            max_length = ctl.max_length(),
            "closing connection: line longer than the maximum"
        );
        ctl.transport().lose_connection();
    }

    /// The peer shut its write side. An incomplete last line is not
    /// delivered ([`LineControl::clear_line_buffer`] returns it).
    fn read_connection_lost(&mut self, ctl: &mut LineControl<'_>) -> HalfClose {
        let _ = ctl;
        HalfClose::Close
    }

    /// The connection is gone.
    fn connection_lost(&mut self, reason: ConnectionLost) {
        let _ = reason;
    }
}

struct LineCore<H> {
    handler: H,
    decoder: LineDecoder,
    /// The decoder's delimiter, shared with the senders handed out.
    delimiter: Rc<[u8]>,
    raw: bool,
    backlog: Backlog,
    transport: Option<Transport>,
    gate: Rc<Gate>,
    handle: DeliveryHandle,
}

impl<H: LineHandler> LineCore<H> {
    /// Applies what the handler asked for; returns whether the rest of
    /// the input was cleared.
    fn apply(&mut self, effects: Effects) -> bool {
        if let Some(m) = effects.max_length {
            self.decoder.set_max_length(m);
        }
        if let Some(raw) = effects.raw {
            self.raw = raw;
        }
        if effects.clear {
            self.decoder.reset();
        }
        effects.clear
    }

    fn feed(&mut self, data: &[u8]) {
        let transport = self.transport.clone();
        feed_through(self, |c| &mut c.backlog, transport, data, Self::run);
    }

    /// Delivers from `input` until it is used up, delivery is paused, or
    /// the connection is closing. Returns how many bytes were used (all
    /// of them when closing: the rest is dropped, as nobody will read it).
    fn run(&mut self, transport: &Transport, input: &[u8]) -> usize {
        let mut at = 0;
        loop {
            if !transport.is_open() {
                return input.len();
            }
            if self.gate.is_paused() || at == input.len() {
                return at;
            }
            let LineCore {
                handler,
                decoder,
                delimiter,
                handle,
                raw,
                ..
            } = self;
            let max_length = decoder.max_length();
            let effects = if *raw {
                let chunk = &input[at..];
                let mut ctl = LineControl {
                    transport,
                    delimiter,
                    handle,
                    raw_mode: true,
                    max_length,
                    rest: &[],
                    held: &[],
                    effects: Effects::default(),
                };
                handler.raw_data_received(chunk, &mut ctl);
                let effects = ctl.effects;
                at += effects
                    .line_mode_at
                    .map_or(chunk.len(), |n| n.min(chunk.len()));
                effects
            } else {
                let (used, event) = decoder.decode(&input[at..]);
                at += used;
                let Some(event) = event else {
                    continue;
                };
                let mut ctl = LineControl {
                    transport,
                    delimiter,
                    handle,
                    raw_mode: false,
                    max_length,
                    rest: &input[at..],
                    held: &[],
                    effects: Effects::default(),
                };
                match event {
                    LineEvent::Line(line) => handler.line_received(line, &mut ctl),
                    LineEvent::TooLong => handler.line_length_exceeded(&mut ctl),
                }
                ctl.effects
            };
            if self.apply(effects) {
                return input.len();
            }
        }
    }
}

impl<H: LineHandler> Resume for RefCell<LineCore<H>> {
    fn resume_delivery(&self) {
        if let Ok(mut core) = self.try_borrow_mut() {
            core.feed(&[]);
        }
    }
}

/// Twisted's `LineReceiver`: splits the byte stream into lines for a
/// [`LineHandler`], and can switch to raw mode and back in mid-stream.
///
/// * The delimiter is `\r\n` unless [`with_delimiter`](Self::with_delimiter)
///   says otherwise; lines longer than [`DEFAULT_MAX_LINE_LENGTH`] (or
///   [`with_max_length`](Self::with_max_length)) go to
///   [`LineHandler::line_length_exceeded`], which closes the connection by
///   default. The receiver never buffers more than the maximum line length
///   plus the delimiter.
/// * [`LineControl::set_raw_mode`] inside a callback makes everything after
///   the current line go to [`LineHandler::raw_data_received`], the rest
///   of the current input included; [`LineControl::set_line_mode_at`]
///   switches back, handing back the bytes the handler did not use.
/// * [`LineControl::pause`] (or the [`DeliveryHandle`]) stops delivery
///   and reading; resuming delivers what was held back first.
/// * Once the handler closes the connection, the lines still buffered are
///   not delivered.
///
/// The handler lives inside the receiver; reach it with
/// [`handler`](Self::handler) and [`handler_mut`](Self::handler_mut)
/// (not from inside its own callbacks).
///
/// ```
/// use torsion::basic::{LineControl, LineHandler, LineReceiver};
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
///
/// /// "SIZE n" announces n raw bytes, then lines again.
/// #[derive(Default)]
/// struct Upload { want: usize, got: Vec<u8>, lines: Vec<Vec<u8>> }
/// impl LineHandler for Upload {
///     fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
///         match line.strip_prefix(b"SIZE ") {
///             Some(n) => {
///                 self.want = std::str::from_utf8(n).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
///                 ctl.set_raw_mode();
///             }
///             None => self.lines.push(line.to_vec()),
///         }
///     }
///     fn raw_data_received(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
///         let take = data.len().min(self.want - self.got.len());
///         self.got.extend_from_slice(&data[..take]);
///         if self.got.len() == self.want {
///             ctl.set_line_mode_at(take);
///         }
///     }
/// }
///
/// let st = StringTransport::new();
/// let mut r = LineReceiver::new(Upload::default()).with_delimiter(b"\n");
/// st.connect(&mut r);
/// r.data_received(b"SIZE 4\nab\ncd\nafter\n");
/// assert_eq!(r.handler().got, b"ab\nc");
/// assert_eq!(r.handler().lines, [b"d".to_vec(), b"after".to_vec()]);
/// ```
pub struct LineReceiver<H> {
    core: Rc<RefCell<LineCore<H>>>,
}

impl<H: LineHandler> LineReceiver<H> {
    /// A receiver with the default delimiter and maximum line length.
    pub fn new(handler: H) -> Self {
        let gate = Rc::new(Gate::default());
        let core = Rc::new_cyclic(|me: &std::rc::Weak<RefCell<LineCore<H>>>| {
            let target: std::rc::Weak<dyn Resume> = me.clone();
            RefCell::new(LineCore {
                handler,
                decoder: LineDecoder::new(DEFAULT_DELIMITER, DEFAULT_MAX_LINE_LENGTH),
                delimiter: Rc::from(DEFAULT_DELIMITER),
                raw: false,
                backlog: Backlog::default(),
                transport: None,
                gate: gate.clone(),
                handle: DeliveryHandle::new(gate.clone(), target),
            })
        });
        LineReceiver { core }
    }

    /// Splits on `delimiter` instead of `\r\n`.
    ///
    /// # Panics
    ///
    /// If `delimiter` is empty.
    pub fn with_delimiter(self, delimiter: &[u8]) -> Self {
        {
            let mut core = self.core.borrow_mut();
            let max = core.decoder.max_length();
            core.decoder = LineDecoder::new(delimiter, max);
            core.delimiter = Rc::from(delimiter);
        }
        self
    }

    /// Accepts lines of at most `max_length` bytes (delimiter excluded).
    pub fn with_max_length(self, max_length: usize) -> Self {
        self.core.borrow_mut().decoder.set_max_length(max_length);
        self
    }

    /// The handler.
    ///
    /// # Panics
    ///
    /// If called from inside the handler's own callbacks.
    pub fn handler(&self) -> Ref<'_, H> {
        Ref::map(self.core.borrow(), |c| &c.handler)
    }

    /// The handler, mutably.
    ///
    /// # Panics
    ///
    /// If called from inside the handler's own callbacks.
    pub fn handler_mut(&self) -> RefMut<'_, H> {
        RefMut::map(self.core.borrow_mut(), |c| &mut c.handler)
    }

    /// A handle to pause and resume delivery.
    pub fn delivery(&self) -> DeliveryHandle {
        self.core.borrow().handle.clone()
    }

    /// Whether the receiver is in raw mode.
    pub fn is_raw_mode(&self) -> bool {
        self.core.borrow().raw
    }
}

impl<H: LineHandler + Default> Default for LineReceiver<H> {
    fn default() -> Self {
        LineReceiver::new(H::default())
    }
}

impl<H> fmt::Debug for LineReceiver<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.core.try_borrow() {
            Ok(c) => f
                .debug_struct("LineReceiver")
                .field("decoder", &c.decoder)
                .field("raw", &c.raw)
                .field("paused", &c.gate.is_paused())
                .finish(),
            Err(_) => f.write_str("LineReceiver(running)"),
        }
    }
}

impl<H: LineHandler> Protocol for LineReceiver<H> {
    fn connection_made(&mut self, transport: Transport) {
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return;
        };
        core.gate.set_transport(transport.clone());
        core.transport = Some(transport.clone());
        let core = &mut *core;
        let mut ctl = LineControl {
            transport: &transport,
            delimiter: &core.delimiter,
            handle: &core.handle,
            raw_mode: core.raw,
            max_length: core.decoder.max_length(),
            rest: &[],
            held: &[],
            effects: Effects::default(),
        };
        core.handler.connection_made(&mut ctl);
        let effects = ctl.effects;
        core.apply(effects);
    }

    fn data_received(&mut self, data: &[u8]) {
        match self.core.try_borrow_mut() {
            Ok(mut core) => core.feed(data),
            Err(_) => tracing::error!("LineReceiver called re-entrantly; data dropped"),
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return HalfClose::Close;
        };
        let Some(transport) = core.transport.clone() else {
            return HalfClose::Close;
        };
        let core = &mut *core;
        let held = core.decoder.buffered().to_vec();
        let rest = std::mem::take(&mut core.backlog.bytes);
        let mut ctl = LineControl {
            transport: &transport,
            delimiter: &core.delimiter,
            handle: &core.handle,
            raw_mode: core.raw,
            max_length: core.decoder.max_length(),
            rest: &rest,
            held: &held,
            effects: Effects::default(),
        };
        let choice = core.handler.read_connection_lost(&mut ctl);
        let effects = ctl.effects;
        if !core.apply(effects) {
            core.backlog.bytes = rest;
        }
        choice
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        if let Ok(mut core) = self.core.try_borrow_mut() {
            core.backlog = Backlog::default();
            core.handler.connection_lost(reason);
        }
    }
}

/// The application side of a [`LineOnlyReceiver`].
///
/// ```
/// use torsion::basic::{LineOnlyHandler, LineOnlyReceiver, LineSender};
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
///
/// struct Echo;
/// impl LineOnlyHandler for Echo {
///     fn line_received(&mut self, line: &[u8], out: &LineSender) {
///         out.send_line(line);
///     }
/// }
/// let st = StringTransport::new();
/// let mut r = LineOnlyReceiver::new(Echo);
/// st.connect(&mut r);
/// r.data_received(b"a\r\nb\r");
/// r.data_received(b"\n");
/// assert_eq!(st.value(), b"a\r\nb\r\n");
/// ```
pub trait LineOnlyHandler: 'static {
    /// The connection is up.
    fn connection_made(&mut self, out: &LineSender) {
        let _ = out;
    }

    /// A complete line arrived (without its delimiter).
    fn line_received(&mut self, line: &[u8], out: &LineSender);

    /// A line grew past the maximum; it is skipped. The default logs and
    /// closes the connection.
    fn line_length_exceeded(&mut self, out: &LineSender) {
        tracing::info!(
            peer = %out.transport().peer(),
            "closing connection: line longer than the maximum"
        );
        out.transport().lose_connection();
    }

    /// The peer shut its write side.
    fn read_connection_lost(&mut self, out: &LineSender) -> HalfClose {
        let _ = out;
        HalfClose::Close
    }

    /// The connection is gone.
    fn connection_lost(&mut self, reason: ConnectionLost) {
        let _ = reason;
    }
}

/// Twisted's `LineOnlyReceiver`: lines only, no raw mode and no pausing,
/// and so no shared cell: the handler is a plain field.
///
/// Same framing rules as [`LineReceiver`] (delimiter, maximum length,
/// bounded buffer, split-independent results).
///
/// ```
/// use torsion::basic::{LineOnlyHandler, LineOnlyReceiver, LineSender};
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
///
/// #[derive(Default)]
/// struct Collect(Vec<Vec<u8>>);
/// impl LineOnlyHandler for Collect {
///     fn line_received(&mut self, line: &[u8], _: &LineSender) {
///         self.0.push(line.to_vec());
///     }
/// }
/// let st = StringTransport::new();
/// let mut r = LineOnlyReceiver::new(Collect::default()).with_delimiter(b"\n").with_max_length(3);
/// st.connect(&mut r);
/// r.data_received(b"abc\nabcd\n");
/// assert_eq!(r.handler().0, [b"abc".to_vec()]);
/// assert!(st.lose_connection_called()); // "abcd" was too long
/// ```
pub struct LineOnlyReceiver<H> {
    handler: H,
    decoder: LineDecoder,
    out: Option<LineSender>,
}

impl<H: LineOnlyHandler> LineOnlyReceiver<H> {
    /// A receiver with the default delimiter and maximum line length.
    pub fn new(handler: H) -> Self {
        LineOnlyReceiver {
            handler,
            decoder: LineDecoder::new(DEFAULT_DELIMITER, DEFAULT_MAX_LINE_LENGTH),
            out: None,
        }
    }

    /// Splits on `delimiter` instead of `\r\n`.
    ///
    /// # Panics
    ///
    /// If `delimiter` is empty.
    pub fn with_delimiter(mut self, delimiter: &[u8]) -> Self {
        self.decoder = LineDecoder::new(delimiter, self.decoder.max_length());
        self
    }

    /// Accepts lines of at most `max_length` bytes (delimiter excluded).
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.decoder.set_max_length(max_length);
        self
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
}

impl<H> fmt::Debug for LineOnlyReceiver<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineOnlyReceiver")
            .field("decoder", &self.decoder)
            .finish()
    }
}

impl<H: LineOnlyHandler> Protocol for LineOnlyReceiver<H> {
    fn connection_made(&mut self, transport: Transport) {
        let out = LineSender::new(transport, self.decoder.delimiter());
        self.handler.connection_made(&out);
        self.out = Some(out);
    }

    fn data_received(&mut self, mut data: &[u8]) {
        let Some(out) = &self.out else {
            return;
        };
        while out.transport().is_open() {
            let (used, event) = self.decoder.decode(data);
            data = &data[used..];
            match event {
                Some(LineEvent::Line(line)) => self.handler.line_received(line, out),
                Some(LineEvent::TooLong) => self.handler.line_length_exceeded(out),
                None => return,
            }
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        match &self.out {
            Some(out) => self.handler.read_connection_lost(out),
            None => HalfClose::Close,
        }
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.handler.connection_lost(reason);
    }
}
