//! torsion-http: an HTTP/1.1 server for torsion, in the model of
//! twisted.web.
//!
//! A [`Site`] serves a tree of [`Resource`]s. Each request walks the tree
//! one path segment at a time ([`Children::put`] for static children,
//! [`Resource::get_child`] for dynamic ones) and the resource it reaches
//! renders it by method ([`Resource::render_get`], ...). A render returns
//! the whole body, or [`Render::NotDoneYet`] and answers later through the
//! [`Request`] — from a timer, or a [`Producer`](torsion::Producer) that
//! the connection paces. [`File`] serves a directory the way
//! `twist web --path .` does.
//!
//! # Layers
//!
//! ```text
//!  Site ─ Resource tree ─ Request          application model (site.rs, resource.rs, request.rs)
//!    │ one Request per request read in full
//!  channel: Protocol glue                  bytes ⇄ transport, timer, read pausing, shutdown
//!    │ receive / poll_event / send_* / handle_timeout
//!  h1::ServerConnection                    sans-IO: framing, limits, keep-alive, pipelining
//!    │
//!  h1 parser (httparse for heads)          strict request decoding, bounded buffers
//! ```
//!
//! The bottom two layers do no I/O and read no clock: they are driven with
//! bytes and `Instant`s, so every limit and every request-smuggling
//! defence is tested over plain byte strings, split at every boundary
//! (see [`h1`]).
//!
//! # How a request flows
//!
//! 1. The engine hands bytes to the channel, which feeds
//!    [`h1::ServerConnection::receive`]. Malformed or over-limit input is
//!    answered there (400, 413, 414, 431, 501, 505) and the connection
//!    closes; `Expect: 100-continue` is answered there too.
//! 2. The channel drains [`Event`]s: a head, body pieces (chunked coding
//!    removed, within [`Limits::max_body`]), an end. It builds a
//!    [`Request`] and asks the [`Site`] to render it.
//! 3. The site walks the tree — the path's segments decoded, dot
//!    segments removed as RFC 3986 removes them — and renders, catching
//!    panics: a panic or a [`Render::Error`] is logged and answered with
//!    a plain `500`; a method the resource does not allow is `405` (with
//!    the same `Allow` an `OPTIONS` gets), one nobody knows `501`.
//! 4. [`Request::write`] and [`Request::finish`] go back down through the
//!    connection, which frames the body (`Content-Length`, chunked, or
//!    close-delimited for HTTP/1.0), adds `Date` and `Server`, and keeps
//!    the connection open or closes it. Pipelined requests are answered
//!    strictly in order, one at a time. [`Request::send_file`] sends a
//!    file's bytes with `sendfile` when the body goes to the socket
//!    unframed, counting them against the `Content-Length` all the same.
//!
//! # Hello, world
//!
//! ```no_run
//! use std::rc::Rc;
//! use torsion::{endpoints, Reactor};
//! use torsion_http::{Render, Request, Resource, Site};
//!
//! struct Hello;
//!
//! impl Resource for Hello {
//!     fn is_leaf(&self) -> bool {
//!         true
//!     }
//!     fn render_get(&self, request: &Request) -> Render {
//!         request.set_header("Content-Type", "text/plain").unwrap();
//!         "Hello, World!\n".into()
//!     }
//! }
//!
//! let reactor = Reactor::new()?;
//! reactor.install_signal_handlers()?;
//! let site = Site::new(Rc::new(Hello));
//! endpoints::server(&reactor, "tcp:8080").unwrap().listen(site.factory(&reactor))?;
//! reactor.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Answering later
//!
//! ```
//! use std::time::Duration;
//! use torsion_http::{Render, Request, Resource};
//!
//! /// Twisted's `NOT_DONE_YET`: answer after a timer.
//! struct Slow;
//!
//! impl Resource for Slow {
//!     fn render_get(&self, request: &Request) -> Render {
//!         let r = request.clone();
//!         if let Some(reactor) = request.reactor() {
//!             reactor.call_later(Duration::from_secs(1), move || {
//!                 r.write(b"sorry to keep you waiting\n");
//!                 r.finish();
//!             });
//!         }
//!         Render::NotDoneYet
//!     }
//! }
//! ```
//!
//! # Twisted → torsion-http
//!
//! | twisted.web | torsion-http |
//! |---|---|
//! | `server.Site(root)` | [`Site::new`], then [`Site::factory`] |
//! | `resource.Resource`, `putChild` | [`Tree`], [`Tree::put_child`] / [`Children::put`] |
//! | `getChild(path, request)`, `isLeaf` | [`Resource::get_child`], [`Resource::is_leaf`] |
//! | `render_GET(request)` | [`Resource::render_get`] |
//! | `server.NOT_DONE_YET` | [`Render::NotDoneYet`] |
//! | `request.write`, `request.finish` | [`Request::write`], [`Request::finish`] |
//! | `request.notifyFinish()` | [`Request::notify_finish`] |
//! | `request.args`, `request.getCookie` | [`Request::args`], [`Request::cookie`] |
//! | `request.setResponseCode`, `setHeader` | [`Request::set_response_code`], [`Request::set_header`] |
//! | `request.redirect`, `util.Redirect` | [`Request::redirect`], [`Redirect`] |
//! | `static.File`, `static.Data` | [`File`], [`Data`] |
//! | `resource.ErrorPage`, `NoResource` | [`ErrorPage`], [`ErrorPage::not_found`] |
//! | `vhost.NameVirtualHost` | [`VirtualHosts`] |
//! | `combinedLogFormatter` | [`Site::access_log`] |
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_code)]

mod channel;
mod cookie;
mod date;
#[doc(hidden)]
pub mod fuzzing;
pub mod h1;
mod headers;
mod limits;
pub mod range;
mod request;
mod resource;
mod site;
mod static_files;
mod text;

pub use channel::{HttpFactory, SHUTDOWN_GRACE};
pub use cookie::{Cookie, InvalidCookie, SameSite};
pub use h1::{Event, ParseError};
pub use headers::{Headers, InvalidHeader, Method, Version};
pub use limits::Limits;
pub use request::{Finished, Request};
pub use resource::{
    child_of, Children, Data, ErrorPage, Redirect, Render, Resource, Tree, VirtualHosts,
};
pub use site::{Site, SERVER_NAME};
pub use static_files::{File, CHUNK, DEFAULT_GZIP_CACHE_BYTES};

/// The ALPN protocol names an HTTP/1.1 server offers over TLS: give them
/// to its endpoint, so a client that offers ALPN (curl, browsers, testssl)
/// is told `http/1.1`.
///
/// ```no_run
/// use std::rc::Rc;
/// use torsion::{endpoints, Reactor};
/// use torsion_http::{Data, Site, ALPN};
/// let reactor = Reactor::new()?;
/// let site = Site::new(Rc::new(Data::new("hi", "text/plain")));
/// endpoints::server(&reactor, "ssl:8443:privateKey=key.pem:certKey=cert.pem")?
///     .with_alpn(ALPN)
///     .listen(site.factory(&reactor))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const ALPN: &[&[u8]] = &[b"http/1.1"];
pub use text::{html_escape, parse_urlencoded, percent_decode};
