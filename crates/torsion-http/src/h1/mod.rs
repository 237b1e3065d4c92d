//! HTTP/1.x without I/O: the request decoder, the response encoder and
//! the per-connection state machine that ties them together.
//!
//! Nothing in this module touches a socket or a clock: bytes and instants
//! go in, events and bytes come out. That is what lets every limit and
//! every smuggling defence be tested over plain byte strings, split at
//! every boundary, with time moved by hand. The [`Protocol`] glue that
//! [`Site::factory`](crate::Site::factory) builds is a thin layer on top.
//!
//! # Driving a [`ServerConnection`]
//!
//! * [`receive`](ServerConnection::receive) with bytes from the peer, and
//!   [`receive_eof`](ServerConnection::receive_eof) when it stops sending;
//! * [`send_response`](ServerConnection::send_response),
//!   [`send_data`](ServerConnection::send_data) and
//!   [`finish`](ServerConnection::finish) with the application's answer;
//! * [`direct_body_room`](ServerConnection::direct_body_room) and
//!   [`direct_body_sent`](ServerConnection::direct_body_sent) when the
//!   caller sends body bytes to the peer itself (`sendfile`): allowed
//!   only while the body goes to the wire unframed, and counted against
//!   the `Content-Length` so keep-alive and pipelining stay right;
//! * [`handle_timeout`](ServerConnection::handle_timeout) once the instant
//!   from [`poll_timeout`](ServerConnection::poll_timeout) has passed (ask
//!   again after every call);
//! * drain [`poll_event`](ServerConnection::poll_event) after `receive`,
//!   `finish` and `handle_timeout`; close the transport once
//!   [`is_closed`](ServerConnection::is_closed); stop reading while
//!   [`wants_read`](ServerConnection::wants_read) is false.
//!
//! Every call that may produce bytes takes an [`Output`] to write them
//! to: a `Transport`, or a `Vec<u8>` in tests.
//!
//! # Pipelining
//!
//! Requests are answered strictly in order, one at a time. Once a request
//! has been read in full, later bytes are only buffered — up to
//! [`Limits::max_pipelined`](crate::Limits::max_pipelined), then
//! `wants_read` turns false — until its response has finished; the next
//! request is then decoded from the buffer. Memory stays bounded however
//! many requests a client sends ahead.
//!
//! [`Protocol`]: torsion::Protocol

mod conn;
mod parse;
mod response;

pub(crate) use conn::{server_field, ConnConfig};
pub use conn::{Event, Framing, SendError, ServerConnection};
pub use parse::{BodyLength, ParseError, RequestHead};
pub use response::{reason_phrase, Output, ResponseHead};
