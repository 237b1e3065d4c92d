//! String framing: netstrings and big-endian length prefixes, as sans-IO
//! decoders ([`NetstringDecoder`], [`PrefixDecoder`]) and as receivers
//! ([`NetstringReceiver`], [`Int8StringReceiver`], [`Int16StringReceiver`],
//! [`Int32StringReceiver`]) that hand whole strings to a
//! [`StringHandler`].

use super::delivery::{feed_through, Backlog, DeliveryHandle, Gate, Resume};
use crate::protocol::{ConnectionLost, HalfClose, Protocol};
use crate::transport::Transport;
use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::rc::{Rc, Weak};
use thiserror::Error;

/// The default maximum string length of netstrings and 32-bit prefixes,
/// as in Twisted.
pub const DEFAULT_MAX_STRING_LENGTH: usize = 99_999;

/// Why a stream of framed strings was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A string announced a length over the maximum. The decoder skips its
    /// bytes; what follows decodes normally.
    #[error("a string of {length} bytes is over the maximum length of {max}")]
    TooLong {
        /// The length the peer announced.
        length: u64,
        /// The maximum in force.
        max: usize,
    },
    /// A netstring's length held something other than digits before `:`.
    #[error("malformed netstring length: expected a digit or ':', got byte 0x{found:02x}")]
    BadLength {
        /// The offending byte.
        found: u8,
    },
    /// A netstring's length began with a zero and had more digits.
    #[error("malformed netstring length: leading zero")]
    LeadingZero,
    /// A netstring's length does not fit in 64 bits.
    #[error("malformed netstring length: more than 20 digits")]
    LengthOverflow,
    /// A netstring's payload was not followed by `,`.
    #[error("netstring not terminated by ',': got byte 0x{found:02x}")]
    MissingComma {
        /// The byte found where the comma belongs.
        found: u8,
    },
}

/// The result of one decoding step: a string, or why the input is bad.
pub type StringEvent<'a> = Result<&'a [u8], FramingError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NState {
    Length { value: u64, digits: u8 },
    Payload(usize),
    Comma,
    Skip(u64),
    SkipComma,
    Failed,
}

/// A sans-IO netstring decoder (`5:hello,`), strict as djb's definition:
/// digits only, no leading zeros, a comma after the payload.
///
/// [`decode`](Self::decode) works like [`LineDecoder::decode`](super::LineDecoder::decode):
/// it returns how many bytes it used and at most one event; `None` means
/// all input was used. Strings that arrive whole are returned without a
/// copy; otherwise at most the maximum length is buffered. A length over
/// the maximum is reported as [`FramingError::TooLong`] and the string is
/// skipped; a malformed length or a missing comma is reported once, after
/// which the decoder ignores all input (the stream cannot be trusted).
///
/// ```
/// use torsion::basic::{FramingError, NetstringDecoder};
///
/// let mut d = NetstringDecoder::new(5);
/// let mut input: &[u8] = b"5:hello,0:,6:toobig,2:ok,x";
/// let mut got = Vec::new();
/// loop {
///     let (used, event) = d.decode(input);
///     input = &input[used..];
///     match event {
///         Some(Ok(s)) => got.push(Ok(s.to_vec())),
///         Some(Err(e)) => got.push(Err(e)),
///         None => break,
///     }
/// }
/// assert_eq!(got, [
///     Ok(b"hello".to_vec()),
///     Ok(b"".to_vec()),
///     Err(FramingError::TooLong { length: 6, max: 5 }),
///     Ok(b"ok".to_vec()),
///     Err(FramingError::BadLength { found: b'x' }),
/// ]);
/// ```
#[derive(Clone, Debug)]
pub struct NetstringDecoder {
    max_length: usize,
    state: NState,
    buf: Vec<u8>,
    taken: bool,
}

const START: NState = NState::Length {
    value: 0,
    digits: 0,
};

impl NetstringDecoder {
    /// A decoder accepting strings of at most `max_length` bytes.
    pub fn new(max_length: usize) -> Self {
        NetstringDecoder {
            max_length,
            state: START,
            buf: Vec::new(),
            taken: false,
        }
    }

    /// The maximum string length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Changes the maximum string length, from the next string on.
    pub fn set_max_length(&mut self, max_length: usize) {
        self.max_length = max_length;
    }

    /// Whether a malformed input stopped the decoder for good.
    pub fn has_failed(&self) -> bool {
        self.state == NState::Failed
    }

    /// Decodes from `input`; see the type's documentation.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<StringEvent<'a>>) {
        if self.taken {
            self.buf.clear();
            self.taken = false;
        }
        let mut off = 0;
        while off < input.len() {
            let rest = &input[off..];
            match self.state {
                NState::Failed => return (input.len(), None),
                NState::Length { value, digits } => {
                    let b = rest[0];
                    off += 1;
                    match b {
                        b'0'..=b'9' if digits > 0 && value == 0 => {
                            return self.fail(off, FramingError::LeadingZero)
                        }
                        b'0'..=b'9' => {
                            let next = value
                                .checked_mul(10)
                                .and_then(|v| v.checked_add(u64::from(b - b'0')));
                            match next {
                                Some(v) if digits < 20 => {
                                    self.state = NState::Length {
                                        value: v,
                                        digits: digits + 1,
                                    }
                                }
                                _ => return self.fail(off, FramingError::LengthOverflow),
                            }
                        }
                        b':' if digits > 0 => {
                            if value > self.max_length as u64 {
                                self.state = NState::Skip(value);
                                let max = self.max_length;
                                return (
                                    off,
                                    Some(Err(FramingError::TooLong { length: value, max })),
                                );
                            }
                            // Fits: value <= max_length, a usize.
                            self.state = NState::Payload(value as usize);
                        }
                        found => return self.fail(off, FramingError::BadLength { found }),
                    }
                }
                NState::Payload(len) => {
                    if self.buf.is_empty() && rest.len() > len {
                        off += len + 1;
                        if rest[len] != b',' {
                            let found = rest[len];
                            return self.fail(off, FramingError::MissingComma { found });
                        }
                        self.state = START;
                        return (off, Some(Ok(&rest[..len])));
                    }
                    let n = (len - self.buf.len()).min(rest.len());
                    self.buf.extend_from_slice(&rest[..n]);
                    off += n;
                    if self.buf.len() == len {
                        self.state = NState::Comma;
                    }
                }
                NState::Comma => {
                    off += 1;
                    if rest[0] != b',' {
                        return self.fail(off, FramingError::MissingComma { found: rest[0] });
                    }
                    self.state = START;
                    self.taken = true;
                    return (off, Some(Ok(&self.buf)));
                }
                NState::Skip(left) => {
                    let n = left.min(rest.len() as u64);
                    off += n as usize;
                    self.state = if n == left {
                        NState::SkipComma
                    } else {
                        NState::Skip(left - n)
                    };
                }
                NState::SkipComma => {
                    off += 1;
                    if rest[0] != b',' {
                        return self.fail(off, FramingError::MissingComma { found: rest[0] });
                    }
                    self.state = START;
                }
            }
        }
        (input.len(), None)
    }

    fn fail(&mut self, used: usize, e: FramingError) -> (usize, Option<StringEvent<'_>>) {
        self.state = NState::Failed;
        self.buf = Vec::new();
        (used, Some(Err(e)))
    }
}

/// The width of a big-endian length prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prefix {
    /// One byte: strings up to 255 bytes.
    U8,
    /// Two bytes: strings up to 65 535 bytes.
    U16,
    /// Four bytes: strings up to 4 GiB − 1.
    U32,
}

impl Prefix {
    /// The prefix's size in bytes.
    pub fn size(self) -> usize {
        match self {
            Prefix::U8 => 1,
            Prefix::U16 => 2,
            Prefix::U32 => 4,
        }
    }

    /// The longest string the prefix can announce.
    pub fn max_value(self) -> u64 {
        match self {
            Prefix::U8 => u64::from(u8::MAX),
            Prefix::U16 => u64::from(u16::MAX),
            Prefix::U32 => u64::from(u32::MAX),
        }
    }

    fn read(self, header: &[u8; 4]) -> u64 {
        match self {
            Prefix::U8 => u64::from(header[0]),
            Prefix::U16 => u64::from(u16::from_be_bytes([header[0], header[1]])),
            Prefix::U32 => u64::from(u32::from_be_bytes(*header)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PState {
    Header,
    Payload(usize),
    Skip(u64),
}

/// A sans-IO decoder of strings each preceded by its length as a
/// big-endian unsigned integer of 1, 2 or 4 bytes (Twisted's
/// `Int8StringReceiver` and friends).
///
/// Same contract as [`NetstringDecoder::decode`]; a length over the
/// maximum is reported as [`FramingError::TooLong`] and its string skipped.
///
/// ```
/// use torsion::basic::{FramingError, Prefix, PrefixDecoder};
/// let mut d = PrefixDecoder::new(Prefix::U16, 4);
/// let mut input: &[u8] = b"\x00\x02hi\x00\x05hello\x00\x00";
/// let mut got = Vec::new();
/// loop {
///     let (used, event) = d.decode(input);
///     input = &input[used..];
///     match event {
///         Some(e) => got.push(e.map(|s| s.to_vec())),
///         None => break,
///     }
/// }
/// assert_eq!(got, [
///     Ok(b"hi".to_vec()),
///     Err(FramingError::TooLong { length: 5, max: 4 }),
///     Ok(Vec::new()),
/// ]);
/// ```
#[derive(Clone, Debug)]
pub struct PrefixDecoder {
    prefix: Prefix,
    max_length: usize,
    header: [u8; 4],
    have: usize,
    state: PState,
    buf: Vec<u8>,
    taken: bool,
}

impl PrefixDecoder {
    /// A decoder for `prefix`-sized lengths accepting strings of at most
    /// `max_length` bytes.
    pub fn new(prefix: Prefix, max_length: usize) -> Self {
        PrefixDecoder {
            prefix,
            max_length,
            header: [0; 4],
            have: 0,
            state: PState::Header,
            buf: Vec::new(),
            taken: false,
        }
    }

    /// The prefix width.
    pub fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// The maximum string length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Changes the maximum string length, from the next string on.
    pub fn set_max_length(&mut self, max_length: usize) {
        self.max_length = max_length;
    }

    /// Decodes from `input`; see [`NetstringDecoder::decode`].
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<StringEvent<'a>>) {
        if self.taken {
            self.buf.clear();
            self.taken = false;
        }
        let mut off = 0;
        loop {
            if let PState::Payload(len) = self.state {
                if self.buf.len() == len {
                    self.state = PState::Header;
                    self.taken = true;
                    return (off, Some(Ok(&self.buf)));
                }
            }
            let rest = &input[off..];
            if rest.is_empty() {
                return (input.len(), None);
            }
            match self.state {
                PState::Header => {
                    let size = self.prefix.size();
                    let n = (size - self.have).min(rest.len());
                    self.header[self.have..self.have + n].copy_from_slice(&rest[..n]);
                    self.have += n;
                    off += n;
                    if self.have == size {
                        self.have = 0;
                        let len = self.prefix.read(&self.header);
                        if len > self.max_length as u64 {
                            // len > max >= 0: there are bytes to skip.
                            self.state = PState::Skip(len);
                            let max = self.max_length;
                            return (off, Some(Err(FramingError::TooLong { length: len, max })));
                        }
                        // Fits: len <= max_length, a usize.
                        let len = len as usize;
                        let rest = &input[off..];
                        if rest.len() >= len {
                            return (off + len, Some(Ok(&rest[..len])));
                        }
                        self.state = PState::Payload(len);
                    }
                }
                PState::Payload(len) => {
                    let n = (len - self.buf.len()).min(rest.len());
                    self.buf.extend_from_slice(&rest[..n]);
                    off += n;
                }
                PState::Skip(left) => {
                    let n = left.min(rest.len() as u64);
                    off += n as usize;
                    self.state = if n == left {
                        PState::Header
                    } else {
                        PState::Skip(left - n)
                    };
                }
            }
        }
    }
}

/// How strings are framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Netstrings: `5:hello,`.
    Netstring,
    /// A big-endian length prefix of the given width.
    Prefixed(Prefix),
}

/// A string too long for its framing's length prefix.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("a string of {length} bytes does not fit a {prefix:?} length prefix")]
pub struct StringTooLong {
    /// The string's length.
    pub length: usize,
    /// The prefix it did not fit.
    pub prefix: Prefix,
}

impl Framing {
    /// Writes `string` framed, in one gathering write.
    ///
    /// ```
    /// use torsion::basic::{Framing, Prefix};
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// Framing::Netstring.send(&st.transport(), b"hi").unwrap();
    /// Framing::Prefixed(Prefix::U16).send(&st.transport(), b"hi").unwrap();
    /// assert_eq!(st.value(), b"2:hi,\x00\x02hi");
    /// assert!(Framing::Prefixed(Prefix::U8).send(&st.transport(), &[0; 256]).is_err());
    /// ```
    pub fn send(self, transport: &Transport, string: &[u8]) -> Result<(), StringTooLong> {
        let mut header = [0u8; 24];
        match self {
            Framing::Netstring => {
                let n = write_decimal(&mut header, string.len() as u64);
                header[n] = b':';
                transport.write_sequence(&[&header[..=n], string, b","]);
            }
            Framing::Prefixed(prefix) => {
                let len = string.len() as u64;
                if len > prefix.max_value() {
                    return Err(StringTooLong {
                        length: string.len(),
                        prefix,
                    });
                }
                let bytes = len.to_be_bytes();
                transport.write_sequence(&[&bytes[8 - prefix.size()..], string]);
            }
        }
        Ok(())
    }
}

/// Writes `v` in decimal at the start of `out`; returns the digit count.
fn write_decimal(out: &mut [u8; 24], mut v: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = digits[n - 1 - i];
    }
    n
}

/// Sends framed strings on one connection; cheap to clone and keep.
///
/// ```
/// use torsion::basic::{Framing, StringSender};
/// use torsion::testing::StringTransport;
/// let st = StringTransport::new();
/// let s = StringSender::new(st.transport(), Framing::Netstring);
/// s.send_string(b"abc").unwrap();
/// assert_eq!(st.value(), b"3:abc,");
/// ```
#[derive(Clone, Debug)]
pub struct StringSender {
    transport: Transport,
    framing: Framing,
}

impl StringSender {
    /// Sends on `transport` with `framing`.
    pub fn new(transport: Transport, framing: Framing) -> Self {
        StringSender { transport, framing }
    }

    /// Writes `string` framed; fails if the length prefix cannot hold it.
    pub fn send_string(&self, string: &[u8]) -> Result<(), StringTooLong> {
        self.framing.send(&self.transport, string)
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
}

/// What a [`StringHandler`] may do from inside a callback.
pub struct StringControl<'a> {
    transport: &'a Transport,
    framing: Framing,
    handle: &'a DeliveryHandle,
    max_length: usize,
    new_max: Option<usize>,
}

impl<'a> StringControl<'a> {
    /// The connection's transport.
    pub fn transport(&self) -> &'a Transport {
        self.transport
    }

    /// Writes `string`, framed like what this receiver reads.
    pub fn send_string(&self, string: &[u8]) -> Result<(), StringTooLong> {
        self.framing.send(self.transport, string)
    }

    /// A handle that sends strings on this connection, to keep.
    pub fn sender(&self) -> StringSender {
        StringSender::new(self.transport.clone(), self.framing)
    }

    /// Stops delivering after this callback and stops reading, until the
    /// [`DeliveryHandle`] resumes.
    pub fn pause(&mut self) {
        self.handle.pause();
    }

    /// A handle to pause and resume delivery later.
    pub fn delivery(&self) -> DeliveryHandle {
        self.handle.clone()
    }

    /// The maximum string length.
    pub fn max_length(&self) -> usize {
        self.new_max.unwrap_or(self.max_length)
    }

    /// Changes the maximum string length from the next string on.
    pub fn set_max_length(&mut self, max_length: usize) {
        self.new_max = Some(max_length);
    }
}

impl fmt::Debug for StringControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StringControl")
            .field("framing", &self.framing)
            .field("max_length", &self.max_length())
            .finish()
    }
}

/// The application side of the string receivers
/// ([`NetstringReceiver`], [`Int8StringReceiver`], [`Int16StringReceiver`],
/// [`Int32StringReceiver`]): Twisted's `stringReceived`.
///
/// ```
/// use torsion::basic::{Int32StringReceiver, StringControl, StringHandler};
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
///
/// /// Sends every string back reversed.
/// struct Reverse;
/// impl StringHandler for Reverse {
///     fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
///         let r: Vec<u8> = s.iter().rev().copied().collect();
///         ctl.send_string(&r).unwrap();
///     }
/// }
/// let st = StringTransport::new();
/// let mut r = Int32StringReceiver::new(Reverse);
/// st.connect(&mut r);
/// r.data_received(b"\x00\x00\x00\x03abc");
/// assert_eq!(st.value(), b"\x00\x00\x00\x03cba");
/// ```
pub trait StringHandler: 'static {
    /// The connection is up.
    fn connection_made(&mut self, ctl: &mut StringControl<'_>) {
        let _ = ctl;
    }

    /// A complete string arrived.
    fn string_received(&mut self, string: &[u8], ctl: &mut StringControl<'_>);

    /// The peer announced a string of `length` bytes, over the maximum. The
    /// string is skipped either way; the default also logs and closes the
    /// connection.
    fn length_limit_exceeded(&mut self, length: u64, ctl: &mut StringControl<'_>) {
        tracing::info!(
            peer = %ctl.transport().peer(),
            length,
            max_length = ctl.max_length(),
            "closing connection: string over the maximum length"
        );
        ctl.transport().lose_connection();
    }

    /// The input is malformed (netstrings only); nothing more will be
    /// delivered on this connection. The default logs the reason and
    /// closes the connection.
    fn malformed(&mut self, error: &FramingError, ctl: &mut StringControl<'_>) {
        tracing::info!(peer = %ctl.transport().peer(), %error, "closing connection");
        ctl.transport().lose_connection();
    }

    /// The peer shut its write side.
    fn read_connection_lost(&mut self, ctl: &mut StringControl<'_>) -> HalfClose {
        let _ = ctl;
        HalfClose::Close
    }

    /// The connection is gone.
    fn connection_lost(&mut self, reason: ConnectionLost) {
        let _ = reason;
    }
}

enum Decoder {
    Netstring(NetstringDecoder),
    Prefixed(PrefixDecoder),
}

impl Decoder {
    fn decode<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<StringEvent<'a>>) {
        match self {
            Decoder::Netstring(d) => d.decode(input),
            Decoder::Prefixed(d) => d.decode(input),
        }
    }

    fn max_length(&self) -> usize {
        match self {
            Decoder::Netstring(d) => d.max_length(),
            Decoder::Prefixed(d) => d.max_length(),
        }
    }

    fn set_max_length(&mut self, max: usize) {
        match self {
            Decoder::Netstring(d) => d.set_max_length(max),
            Decoder::Prefixed(d) => d.set_max_length(max),
        }
    }

    fn framing(&self) -> Framing {
        match self {
            Decoder::Netstring(_) => Framing::Netstring,
            Decoder::Prefixed(d) => Framing::Prefixed(d.prefix()),
        }
    }
}

struct StringCore<H> {
    handler: H,
    decoder: Decoder,
    backlog: Backlog,
    transport: Option<Transport>,
    gate: Rc<Gate>,
    handle: DeliveryHandle,
}

impl<H: StringHandler> StringCore<H> {
    fn new(handler: H, decoder: Decoder) -> Rc<RefCell<Self>> {
        let gate = Rc::new(Gate::default());
        Rc::new_cyclic(|me: &Weak<RefCell<Self>>| {
            let target: Weak<dyn Resume> = me.clone();
            RefCell::new(StringCore {
                handler,
                decoder,
                backlog: Backlog::default(),
                transport: None,
                gate: gate.clone(),
                handle: DeliveryHandle::new(gate.clone(), target),
            })
        })
    }

    fn feed(&mut self, data: &[u8]) {
        let transport = self.transport.clone();
        feed_through(self, |c| &mut c.backlog, transport, data, Self::run);
    }

    fn run(&mut self, transport: &Transport, input: &[u8]) -> usize {
        let mut at = 0;
        loop {
            if !transport.is_open() {
                return input.len();
            }
            if self.gate.is_paused() || at == input.len() {
                return at;
            }
            let StringCore {
                handler,
                decoder,
                handle,
                ..
            } = self;
            let framing = decoder.framing();
            let max_length = decoder.max_length();
            let (used, event) = decoder.decode(&input[at..]);
            at += used;
            let Some(event) = event else {
                continue;
            };
            let mut ctl = StringControl {
                transport,
                framing,
                handle,
                max_length,
                new_max: None,
            };
            match event {
                Ok(s) => handler.string_received(s, &mut ctl),
                Err(FramingError::TooLong { length, .. }) => {
                    handler.length_limit_exceeded(length, &mut ctl)
                }
                Err(e) => handler.malformed(&e, &mut ctl),
            }
            if let Some(m) = ctl.new_max {
                self.decoder.set_max_length(m);
            }
        }
    }

    fn with_control<R>(
        &mut self,
        f: impl FnOnce(&mut H, &mut StringControl<'_>) -> R,
    ) -> Option<R> {
        let transport = self.transport.clone()?;
        let mut ctl = StringControl {
            transport: &transport,
            framing: self.decoder.framing(),
            handle: &self.handle,
            max_length: self.decoder.max_length(),
            new_max: None,
        };
        let r = f(&mut self.handler, &mut ctl);
        if let Some(m) = ctl.new_max {
            self.decoder.set_max_length(m);
        }
        Some(r)
    }
}

impl<H: StringHandler> Resume for RefCell<StringCore<H>> {
    fn resume_delivery(&self) {
        if let Ok(mut core) = self.try_borrow_mut() {
            core.feed(&[]);
        }
    }
}

fn made<H: StringHandler>(core: &RefCell<StringCore<H>>, transport: Transport) {
    let Ok(mut core) = core.try_borrow_mut() else {
        return;
    };
    core.gate.set_transport(transport.clone());
    core.transport = Some(transport);
    core.with_control(|h, ctl| h.connection_made(ctl));
}

fn received<H: StringHandler>(core: &RefCell<StringCore<H>>, data: &[u8]) {
    match core.try_borrow_mut() {
        Ok(mut core) => core.feed(data),
        Err(_) => tracing::error!("string receiver called re-entrantly; data dropped"),
    }
}

fn read_lost<H: StringHandler>(core: &RefCell<StringCore<H>>) -> HalfClose {
    match core.try_borrow_mut() {
        Ok(mut core) => core
            .with_control(|h, ctl| h.read_connection_lost(ctl))
            .unwrap_or(HalfClose::Close),
        Err(_) => HalfClose::Close,
    }
}

fn lost<H: StringHandler>(core: &RefCell<StringCore<H>>, reason: ConnectionLost) {
    if let Ok(mut core) = core.try_borrow_mut() {
        core.backlog = Backlog::default();
        core.handler.connection_lost(reason);
    }
}

macro_rules! string_receiver {
    ($(#[$doc:meta])* $name:ident, $decoder:expr, $default_max:expr) => {
        $(#[$doc])*
        pub struct $name<H> {
            core: Rc<RefCell<StringCore<H>>>,
        }

        impl<H: StringHandler> $name<H> {
            /// A receiver with the default maximum length.
            pub fn new(handler: H) -> Self {
                let max: usize = $default_max;
                let decoder: fn(usize) -> Decoder = $decoder;
                $name {
                    core: StringCore::new(handler, decoder(max)),
                }
            }

            /// Accepts strings of at most `max_length` bytes.
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
        }

        impl<H: StringHandler + Default> Default for $name<H> {
            fn default() -> Self {
                $name::new(H::default())
            }
        }

        impl<H> fmt::Debug for $name<H> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.core.try_borrow() {
                    Ok(c) => f
                        .debug_struct(stringify!($name))
                        .field("framing", &c.decoder.framing())
                        .field("max_length", &c.decoder.max_length())
                        .finish(),
                    Err(_) => f.write_str(concat!(stringify!($name), "(running)")),
                }
            }
        }

        impl<H: StringHandler> Protocol for $name<H> {
            fn connection_made(&mut self, transport: Transport) {
                made(&self.core, transport)
            }

            fn data_received(&mut self, data: &[u8]) {
                received(&self.core, data)
            }

            fn read_connection_lost(&mut self) -> HalfClose {
                read_lost(&self.core)
            }

            fn connection_lost(&mut self, reason: ConnectionLost) {
                lost(&self.core, reason)
            }
        }
    };
}

string_receiver!(
    /// Twisted's `NetstringReceiver`: delivers netstrings (`5:hello,`) to a
    /// [`StringHandler`]; [`StringControl::send_string`] sends them.
    ///
    /// The maximum length defaults to [`DEFAULT_MAX_STRING_LENGTH`]. An
    /// over-long string goes to [`StringHandler::length_limit_exceeded`];
    /// a malformed length or a missing comma to [`StringHandler::malformed`]
    /// (both close the connection by default, logging the reason).
    ///
    /// ```
    /// use torsion::basic::{NetstringReceiver, StringControl, StringHandler};
    /// use torsion::testing::StringTransport;
    /// use torsion::Protocol;
    ///
    /// #[derive(Default)]
    /// struct Keep(Vec<Vec<u8>>);
    /// impl StringHandler for Keep {
    ///     fn string_received(&mut self, s: &[u8], _: &mut StringControl<'_>) {
    ///         self.0.push(s.to_vec());
    ///     }
    /// }
    /// let st = StringTransport::new();
    /// let mut r = NetstringReceiver::new(Keep::default());
    /// st.connect(&mut r);
    /// r.data_received(b"3:abc,1:");
    /// r.data_received(b"d,2:e");
    /// r.data_received(b"fX");
    /// assert_eq!(r.handler().0, [b"abc".to_vec(), b"d".to_vec()]);
    /// assert!(st.lose_connection_called()); // no comma after "ef"
    /// ```
    NetstringReceiver,
    |max| Decoder::Netstring(NetstringDecoder::new(max)),
    DEFAULT_MAX_STRING_LENGTH
);

string_receiver!(
    /// Twisted's `Int8StringReceiver`: strings after a one-byte length.
    /// The maximum length defaults to 255.
    ///
    /// ```
    /// use torsion::basic::{Int8StringReceiver, StringControl, StringHandler};
    /// use torsion::testing::StringTransport;
    /// use torsion::Protocol;
    /// struct Echo;
    /// impl StringHandler for Echo {
    ///     fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
    ///         ctl.send_string(s).unwrap();
    ///     }
    /// }
    /// let st = StringTransport::new();
    /// let mut r = Int8StringReceiver::new(Echo);
    /// st.connect(&mut r);
    /// r.data_received(b"\x02hi");
    /// assert_eq!(st.value(), b"\x02hi");
    /// ```
    Int8StringReceiver,
    |max| Decoder::Prefixed(PrefixDecoder::new(Prefix::U8, max)),
    255
);

string_receiver!(
    /// Twisted's `Int16StringReceiver`: strings after a two-byte
    /// big-endian length. The maximum length defaults to 65 535.
    ///
    /// ```
    /// use torsion::basic::{Int16StringReceiver, StringControl, StringHandler};
    /// use torsion::testing::StringTransport;
    /// use torsion::Protocol;
    /// struct Echo;
    /// impl StringHandler for Echo {
    ///     fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
    ///         ctl.send_string(s).unwrap();
    ///     }
    /// }
    /// let st = StringTransport::new();
    /// let mut r = Int16StringReceiver::new(Echo);
    /// st.connect(&mut r);
    /// r.data_received(b"\x00\x02hi");
    /// assert_eq!(st.value(), b"\x00\x02hi");
    /// ```
    Int16StringReceiver,
    |max| Decoder::Prefixed(PrefixDecoder::new(Prefix::U16, max)),
    65_535
);

string_receiver!(
    /// Twisted's `Int32StringReceiver`: strings after a four-byte
    /// big-endian length. The maximum length defaults to
    /// [`DEFAULT_MAX_STRING_LENGTH`]; an over-long string goes to
    /// [`StringHandler::length_limit_exceeded`] (by default: close).
    ///
    /// ```
    /// use torsion::basic::{Int32StringReceiver, StringControl, StringHandler};
    /// use torsion::testing::StringTransport;
    /// use torsion::Protocol;
    /// struct Nop;
    /// impl StringHandler for Nop {
    ///     fn string_received(&mut self, _: &[u8], _: &mut StringControl<'_>) {}
    /// }
    /// let st = StringTransport::new();
    /// let mut r = Int32StringReceiver::new(Nop).with_max_length(10);
    /// st.connect(&mut r);
    /// r.data_received(b"\x00\x00\x00\x0b");
    /// assert!(st.lose_connection_called());
    /// ```
    Int32StringReceiver,
    |max| Decoder::Prefixed(PrefixDecoder::new(Prefix::U32, max)),
    DEFAULT_MAX_STRING_LENGTH
);
