//! Framing: turning a byte stream into messages (Twisted's
//! `twisted.protocols.basic`).
//!
//! TCP delivers bytes, not messages: a protocol's `data_received` may get
//! half a line, or three lines and a half. This module does the splitting
//! once, correctly, so an application writes `line_received` or
//! `string_received` and never thinks about segment boundaries.
//!
//! # How the parts fit
//!
//! Each framing is two layers, in the sans-IO style:
//!
//! * a **decoder** — [`LineDecoder`], [`NetstringDecoder`],
//!   [`PrefixDecoder`] — plain code over bytes with no transport: it takes
//!   input, returns one message (or a framing error) at a time and how
//!   many bytes it used, and bounds what it buffers. Decoders give the
//!   same messages however the input is split; they never panic on
//!   hostile input.
//! * a **receiver** — [`LineReceiver`], [`LineOnlyReceiver`],
//!   [`NetstringReceiver`], [`Int8StringReceiver`],
//!   [`Int16StringReceiver`], [`Int32StringReceiver`] — a
//!   [`Protocol`](crate::Protocol) that feeds a decoder and calls a
//!   handler trait ([`LineHandler`], [`LineOnlyHandler`],
//!   [`StringHandler`]) the application implements.
//!
//! Handlers get a control object ([`LineControl`], [`StringControl`]) in
//! every callback: it sends messages and asks the receiver for things that
//! must happen between two messages — switching to raw mode, pausing
//! delivery, clearing the buffer, changing the maximum length — so a
//! handler never needs a reference to its own receiver. A
//! [`DeliveryHandle`] pauses and resumes delivery from anywhere (it is a
//! [`Producer`](crate::Producer), for flow control).
//!
//! # Limits and errors
//!
//! | receiver | default maximum | over the maximum | malformed |
//! |---|---|---|---|
//! | lines | 16 384 bytes | `line_length_exceeded` (closes) | — |
//! | netstrings | 99 999 bytes | `length_limit_exceeded` (closes) | `malformed` (closes) |
//! | `Int8` / `Int16` / `Int32` | 255 / 65 535 / 99 999 | `length_limit_exceeded` (closes) | — |
//!
//! The defaults close the connection and log why at `info`. A handler that
//! overrides them may answer and carry on: the over-long message is
//! skipped, and the next one decodes normally.
//!
//! Delimiters and prefixes match Twisted's, byte for byte: a torsion
//! receiver talks to a Twisted one.

mod delivery;
mod line;
mod string;

pub use delivery::DeliveryHandle;
pub use line::{
    LineControl, LineDecoder, LineEvent, LineHandler, LineOnlyHandler, LineOnlyReceiver,
    LineReceiver, LineSender, DEFAULT_DELIMITER, DEFAULT_MAX_LINE_LENGTH,
};
pub use string::{
    Framing, FramingError, Int16StringReceiver, Int32StringReceiver, Int8StringReceiver,
    NetstringDecoder, NetstringReceiver, Prefix, PrefixDecoder, StringControl, StringEvent,
    StringHandler, StringSender, StringTooLong, DEFAULT_MAX_STRING_LENGTH,
};
