//! TLS for any protocol, with rustls: the protocol never knows its
//! transport is encrypted.
//!
//! # Why a protocol wrapper
//!
//! Twisted puts TLS on any protocol by changing an endpoint string, and so
//! does torsion. TLS here is not a kind of socket but a layer between two
//! protocols, like Twisted's `TLSMemoryBIOProtocol`: a session sits on the
//! raw TCP (or Unix) connection as its protocol, runs a rustls
//! `ServerConnection` or `ClientConnection` over the bytes, and gives the
//! user's protocol a [`Transport`] of its own. That transport keeps the
//! whole transport contract:
//!
//! * `write` and `write_sequence` encrypt and hand the records to the raw
//!   connection at once (a write sequence becomes as few records as fit);
//!   plaintext written while a handshake runs waits for it.
//! * `lose_connection` flushes, sends close_notify, then closes;
//!   `half_close` sends close_notify and shuts the write side;
//!   `abort_connection` resets at once.
//! * `pause_producing` stops reading (ciphertext already read waits, and
//!   nothing is delivered) and `resume_producing` delivers what waited,
//!   ahead of new input, on a later turn.
//! * A registered producer's water marks count both plaintext waiting for
//!   the handshake and ciphertext queued on the raw connection.
//! * `peer` and `host` are the raw connection's addresses.
//! * `connection_lost` tells a clean TLS close (the peer's close_notify
//!   arrived, or this side closed) from a truncation: a stream that ended
//!   without close_notify is a [`ConnectionLost::Error`] whose source is
//!   [`TlsError::Truncated`], so a protocol that frames by end of file
//!   cannot be fooled by an attacker cutting the connection.
//!
//! ```text
//!   user protocol ◀─ plaintext ─ TLS session (rustls) ◀─ ciphertext ─ raw TCP/Unix connection
//!        │ write                     ▲    │ records                      ▲
//!        └── Transport (TLS) ────────┘    └──────── Transport (raw) ─────┘
//! ```
//!
//! # The parts
//!
//! * [`Identity`], [`ServerTls`], [`ClientTls`]: certificates, keys, trust
//!   roots, SNI and ALPN, read and checked when configured (a bad key file
//!   is an error then, naming the file). TLS 1.3 and 1.2 only, with
//!   rustls's `ring` provider.
//! * [`TlsFactory`] and [`TlsClientFactory`] wrap the factories a reactor
//!   listens and connects with, so every protocol they build runs over
//!   TLS; [`listen_tcp`] and [`connect_tcp`] do the wrapping in one call.
//!   The `ssl:` and `tls:` endpoint strings of
//!   [`endpoints`](crate::endpoints) use them.
//! * [`start_tls_server`] and [`start_tls_client`] switch a connection
//!   that began in the clear (made with `TlsFactory::starttls` or
//!   `TlsClientFactory::starttls`) to TLS: STARTTLS for SMTP, IMAP and the
//!   like.
//! * [`info`] and [`negotiated_protocol`] tell a protocol what was agreed:
//!   version, cipher suite, ALPN protocol, SNI name, peer certificates.
//!
//! # Which roots a client trusts
//!
//! [`ClientTls::system_roots`] trusts the operating system's certificate
//! store, read with `rustls-native-certs`: an administrator adds a company
//! CA or removes a distrusted one in one place, for torsion as for curl
//! and every other program, and the list follows the system's security
//! updates instead of torsion's release cycle. `trustRoots=ca.pem` (or
//! [`ClientTls::trust_roots_pem_file`]) trusts only the CAs in a file.
//!
//! # Example: an echo server over TLS, and a client
//!
//! ```no_run
//! use torsion::tls::{self, ClientTls, Identity, ServerTls};
//! use torsion::{Address, Protocol, Reactor, TcpConnect, TcpListen, Transport};
//!
//! struct Echo(Option<Transport>);
//! impl Protocol for Echo {
//!     fn connection_made(&mut self, t: Transport) {
//!         // The handshake is done: ALPN and SNI are known here.
//!         println!("ALPN: {:?}", tls::negotiated_protocol(&t));
//!         self.0 = Some(t);
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         if let Some(t) = &self.0 {
//!             t.write(data);
//!         }
//!     }
//! }
//!
//! let reactor = Reactor::new()?;
//! let server = ServerTls::new(Identity::from_pem_files("cert.pem", "key.pem")?);
//! tls::listen_tcp(&reactor, TcpListen::new(7443), server, |_: &Address| Echo(None))?;
//! let client = ClientTls::trust_roots_pem_file("ca.pem")?;
//! tls::connect_tcp(&reactor, TcpConnect::new("localhost", 7443), client, |_: &Address| Echo(None))?;
//! reactor.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Limits
//!
//! * STARTTLS switches after the protocol's `data_received` call that
//!   asked for it returns: bytes the peer sent behind the request in the
//!   same segment were already delivered in the clear, so (as the STARTTLS
//!   protocols require) a peer must wait for the go-ahead before its
//!   handshake.
//! * A client connector's [`Connector::transport`](crate::Connector::transport)
//!   is the TLS transport, there only once the handshake is done;
//!   [`Connector::is_connected`](crate::Connector::is_connected) is true
//!   from the TCP connection on.

mod config;
mod factory;
mod session;
mod shutdown;

pub(crate) use config::server_name;
pub use config::{ClientTls, Identity, ServerTls, TlsConfigError, DEFAULT_HANDSHAKE_TIMEOUT};
pub use factory::{TlsClientFactory, TlsFactory};
/// The rustls this module is built on, for configurations made by hand
/// ([`ServerTls::from_config`], [`ClientTls::from_config`]) and for the
/// certificate errors in [`TlsError`].
pub use rustls;

use crate::connector::Connector;
use crate::listener::ListeningPort;
use crate::protocol::{ClientFactory, ConnectError, ConnectionLost, Factory};
use crate::reactor::Reactor;
use crate::tcp::{TcpConnect, TcpListen};
use crate::transport::Transport;
use rustls::pki_types::CertificateDer;
use session::TlsSession;
use std::io;

/// Why a TLS connection failed or ended badly.
///
/// It reaches a protocol as the source of a [`ConnectionLost::Error`], and
/// a client factory as the source of a [`ConnectError::Io`];
/// [`from_connection_lost`](Self::from_connection_lost) and
/// [`from_connect_error`](Self::from_connect_error) find it there.
///
/// ```
/// use std::sync::Arc;
/// use torsion::tls::{rustls::CertificateError, TlsError};
/// use torsion::ConnectionLost;
///
/// fn describe(reason: &ConnectionLost) -> &'static str {
///     match TlsError::from_connection_lost(reason) {
///         Some(TlsError::Truncated) => "cut short: do not trust the end of the data",
///         Some(TlsError::Certificate(CertificateError::UnknownIssuer)) => "untrusted server",
///         Some(_) => "other TLS failure",
///         None if reason.is_clean() => "clean close",
///         None => "transport failure",
///     }
/// }
/// let truncated = ConnectionLost::Error(Arc::new(TlsError::Truncated.into_io()));
/// assert_eq!(describe(&truncated), "cut short: do not trust the end of the data");
/// assert_eq!(describe(&ConnectionLost::Clean), "clean close");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// This side rejected the peer's certificate: an unknown issuer, a
    /// wrong name, an expired certificate...
    #[error("TLS certificate rejected: {0}")]
    Certificate(rustls::CertificateError),
    /// The peer sent a fatal alert: it rejected this side's certificate,
    /// or could agree on no protocol version, cipher suite or ALPN
    /// protocol.
    #[error("the TLS peer sent a fatal alert: {0:?}")]
    Alert(rustls::AlertDescription),
    /// The stream ended without the peer's close_notify: what arrived may
    /// have been cut short.
    #[error("TLS connection truncated: the peer closed the stream without sending close_notify")]
    Truncated,
    /// The peer closed the connection during the handshake.
    #[error("the peer closed the connection during the TLS handshake")]
    HandshakeEof,
    /// The handshake did not complete within its timeout.
    #[error("the TLS handshake did not complete in time")]
    HandshakeTimeout,
    /// Any other TLS failure: a protocol violation, an unsupported
    /// version...
    #[error("TLS error: {0}")]
    Protocol(rustls::Error),
}

impl TlsError {
    pub(crate) fn from_rustls(e: rustls::Error) -> TlsError {
        match e {
            rustls::Error::InvalidCertificate(c) => TlsError::Certificate(c),
            rustls::Error::AlertReceived(a) => TlsError::Alert(a),
            other => TlsError::Protocol(other),
        }
    }

    /// Wraps the error in an [`io::Error`] (of kind `UnexpectedEof` for a
    /// truncation or a hang-up during the handshake, `TimedOut` for a
    /// handshake timeout, `InvalidData` otherwise), as it travels in a
    /// [`ConnectionLost::Error`] or a [`ConnectError::Io`].
    pub fn into_io(self) -> io::Error {
        let kind = match self {
            TlsError::Truncated | TlsError::HandshakeEof => io::ErrorKind::UnexpectedEof,
            TlsError::HandshakeTimeout => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }

    /// The TLS error a connection ended with, if it ended with one.
    pub fn from_connection_lost(reason: &ConnectionLost) -> Option<&TlsError> {
        match reason {
            ConnectionLost::Error(e) => e.get_ref()?.downcast_ref(),
            _ => None,
        }
    }

    /// The TLS error a connection attempt failed with, if it failed with
    /// one.
    pub fn from_connect_error(error: &ConnectError) -> Option<&TlsError> {
        match error {
            ConnectError::Io(e) => e.get_ref()?.downcast_ref(),
            _ => None,
        }
    }
}

/// What a TLS handshake settled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol version: TLS 1.3 or TLS 1.2.
    pub version: rustls::ProtocolVersion,
    /// The cipher suite.
    pub cipher_suite: rustls::CipherSuite,
    /// The ALPN protocol agreed on, if any.
    pub alpn: Option<Vec<u8>>,
    /// On a server, the name the client asked for (SNI); on a client, the
    /// name the server's certificate was verified against.
    pub server_name: Option<String>,
    /// The peer's certificate chain, its own first (empty for a client
    /// that showed none).
    pub peer_certificates: Vec<CertificateDer<'static>>,
}

/// What the TLS handshake of a protocol's connection settled, or `None`
/// when the transport is not TLS, or not yet (before `start_tls`'s
/// handshake completes).
pub fn info(transport: &Transport) -> Option<TlsInfo> {
    transport.downcast_backend::<TlsSession>()?.info()
}

/// The ALPN protocol the handshake agreed on (`b"h2"`, `b"http/1.1"`), if
/// the transport is TLS and one was agreed.
pub fn negotiated_protocol(transport: &Transport) -> Option<Vec<u8>> {
    info(transport)?.alpn
}

/// Whether the transport runs TLS (or is starting it).
pub fn is_tls(transport: &Transport) -> bool {
    transport
        .downcast_backend::<TlsSession>()
        .is_some_and(TlsSession::is_tls)
}

/// Why `start_tls` could not switch a connection to TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartTlsError {
    /// The transport cannot start TLS: its connection was not made by a
    /// `starttls` factory ([`TlsFactory::starttls`],
    /// [`TlsClientFactory::starttls`]).
    #[error("this transport cannot start TLS (make its connection with a starttls factory)")]
    NotStartable,
    /// The connection runs TLS already.
    #[error("the connection runs TLS already")]
    AlreadyTls,
    /// The connection is closed or closing.
    #[error("the connection is closed or closing")]
    Closed,
    /// The configuration is unusable (a bad server name...).
    #[error(transparent)]
    Config(#[from] TlsConfigError),
}

fn startable(transport: &Transport) -> Result<&TlsSession, StartTlsError> {
    transport
        .downcast_backend::<TlsSession>()
        .ok_or(StartTlsError::NotStartable)
}

/// Switches a connection that began in the clear to TLS, as the server.
///
/// Everything written before the call goes in the clear; everything
/// written after waits for the handshake and goes encrypted. The peer's
/// next bytes must be its TLS handshake.
///
/// ```
/// use torsion::tls::{self, ServerTls};
/// use torsion::{Protocol, Transport};
///
/// /// A line protocol that answers `STARTTLS` and switches.
/// struct Server {
///     transport: Option<Transport>,
///     tls: ServerTls,
/// }
///
/// impl Protocol for Server {
///     fn connection_made(&mut self, t: Transport) {
///         self.transport = Some(t);
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         let Some(t) = &self.transport else { return };
///         if data == b"STARTTLS\r\n" {
///             t.write(b"220 go ahead\r\n"); // in the clear
///             if let Err(e) = tls::start_tls_server(t, &self.tls) {
///                 eprintln!("cannot start TLS: {e}");
///                 t.lose_connection();
///             }
///         }
///     }
/// }
/// # let _ = |tls: ServerTls| Server { transport: None, tls };
/// ```
///
/// # Errors
///
/// [`StartTlsError`] if the transport cannot start TLS, already runs it or
/// is closing.
pub fn start_tls_server(transport: &Transport, tls: &ServerTls) -> Result<(), StartTlsError> {
    let session = startable(transport)?;
    let conn = rustls::ServerConnection::new(tls.config().clone()).map_err(config::rejected)?;
    session.start(conn.into(), None, tls.handshake_timeout())
}

/// Switches a connection that began in the clear to TLS, as the client,
/// verifying that the server's certificate is valid for `server_name`.
///
/// Everything written before the call goes in the clear; everything
/// written after waits for the handshake and goes encrypted. A failed
/// handshake ends the connection with a [`TlsError`] in
/// `connection_lost`.
///
/// # Errors
///
/// [`StartTlsError`] if the transport cannot start TLS, already runs it or
/// is closing, or `server_name` is not a DNS name or IP address.
pub fn start_tls_client(
    transport: &Transport,
    tls: &ClientTls,
    server_name: &str,
) -> Result<(), StartTlsError> {
    let session = startable(transport)?;
    let name = config::server_name(server_name)?;
    let conn =
        rustls::ClientConnection::new(tls.config().clone(), name).map_err(config::rejected)?;
    session.start(
        conn.into(),
        Some(server_name.to_string()),
        tls.handshake_timeout(),
    )
}

/// Listens for TCP connections and serves each over TLS; `factory` builds
/// the protocols (see [`TlsFactory`]).
///
/// # Errors
///
/// As for [`Reactor::listen_tcp`].
pub fn listen_tcp(
    reactor: &Reactor,
    listen: impl Into<TcpListen>,
    tls: ServerTls,
    factory: impl Factory,
) -> io::Result<ListeningPort> {
    reactor.listen_tcp(listen, TlsFactory::new(reactor, tls, factory))
}

/// Connects over TCP and runs TLS on the connection, verifying the server
/// against the host name connected to (see [`TlsClientFactory`] for how
/// failures are reported).
///
/// # Errors
///
/// [`TlsConfigError::BadServerName`] when the host is neither a DNS name
/// nor an IP address.
pub fn connect_tcp(
    reactor: &Reactor,
    connect: TcpConnect,
    tls: ClientTls,
    factory: impl ClientFactory,
) -> Result<Connector, TlsConfigError> {
    let factory = TlsClientFactory::new(reactor, tls, &connect.host, factory)?;
    Ok(reactor.connect_tcp(connect, factory))
}
