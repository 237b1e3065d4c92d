//! Factories that put TLS under the protocols another factory builds.
//!
//! A [`TlsFactory`] wraps a server [`Factory`], a [`TlsClientFactory`] a
//! [`ClientFactory`]: each protocol the wrapped factory builds runs over a
//! TLS session instead of the raw connection. Either starts encrypted, or
//! (`starttls`) in the clear until the protocol calls
//! [`start_tls_server`](super::start_tls_server) or
//! [`start_tls_client`](super::start_tls_client).

use super::config::{ClientTls, ServerTls, TlsConfigError};
use super::session::{Outcome, Start, TlsProtocol, TlsSession};
use super::TlsError;
use crate::address::Address;
use crate::connector::Connector;
use crate::protocol::{ClientFactory, ConnectError, ConnectionLost, Factory, Protocol};
use crate::reactor::{Inner, Reactor};
use rustls::pki_types::ServerName;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::rc::{Rc, Weak};
use std::sync::Arc;

/// A server factory whose protocols run over TLS.
///
/// The wrapped factory builds a protocol when a connection is accepted (so
/// it can refuse one before any handshake work); that protocol gets
/// `connection_made` once the handshake completes, with ALPN and SNI
/// settled, and never hears of a connection whose handshake failed.
///
/// ```no_run
/// use torsion::tls::{Identity, ServerTls, TlsFactory};
/// use torsion::{Address, Protocol, Reactor, TcpListen, Transport};
///
/// struct Hello;
/// impl Protocol for Hello {
///     fn connection_made(&mut self, t: Transport) {
///         t.write(b"hello, securely\r\n");
///         t.lose_connection(); // flushes, sends close_notify, closes
///     }
///     fn data_received(&mut self, _: &[u8]) {}
/// }
///
/// let reactor = Reactor::new()?;
/// let tls = ServerTls::new(Identity::from_pem_files("cert.pem", "key.pem")?);
/// reactor.listen_tcp(TcpListen::new(8443), TlsFactory::new(&reactor, tls, |_: &Address| Hello))?;
/// reactor.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TlsFactory {
    reactor: Weak<Inner>,
    tls: Option<ServerTls>,
    factory: Box<dyn Factory>,
}

impl fmt::Debug for TlsFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFactory")
            .field("tls", &self.tls)
            .finish()
    }
}

impl TlsFactory {
    /// Wraps `factory`: every connection is TLS from its first byte.
    pub fn new(reactor: &Reactor, tls: ServerTls, factory: impl Factory) -> TlsFactory {
        TlsFactory {
            reactor: reactor.downgrade(),
            tls: Some(tls),
            factory: Box::new(factory),
        }
    }

    /// Wraps `factory` for STARTTLS: connections begin in the clear, and a
    /// protocol switches its own to TLS with
    /// [`start_tls_server`](super::start_tls_server).
    pub fn starttls(reactor: &Reactor, factory: impl Factory) -> TlsFactory {
        TlsFactory {
            reactor: reactor.downgrade(),
            tls: None,
            factory: Box::new(factory),
        }
    }
}

impl Factory for TlsFactory {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        let reactor = Reactor::from_inner(self.reactor.upgrade()?);
        let inner = self.factory.build_protocol(peer)?;
        let (start, timeout) = match &self.tls {
            None => (Start::Plain(inner), None),
            Some(tls) => match rustls::ServerConnection::new(tls.config().clone()) {
                Ok(conn) => (Start::Server(conn, inner), tls.handshake_timeout()),
                Err(e) => {
                    tracing::error!(%peer, error = %e, "cannot start a TLS session; refusing the connection");
                    return None;
                }
            },
        };
        let session = TlsSession::new(&reactor, start, timeout, None);
        Some(Box::new(TlsProtocol(session)))
    }

    fn start_factory(&mut self) {
        self.factory.start_factory();
    }

    fn stop_factory(&mut self) {
        self.factory.stop_factory();
    }
}

struct ClientShared {
    factory: RefCell<Box<dyn ClientFactory>>,
    /// How the current connection fared, filled in by its session.
    outcome: Rc<RefCell<Outcome>>,
    /// The connector this factory serves, to hand it the TLS transport.
    connector: RefCell<Option<crate::connector::WeakConnector>>,
}

/// A client factory whose protocols run over TLS.
///
/// The server's certificate is verified against the trust roots of the
/// [`ClientTls`] and the name given. The wrapped factory builds its
/// protocol only once the handshake succeeded; a failed handshake (a
/// rejected certificate, a refused version) reaches it as
/// `client_connection_failed`, with a [`ConnectError`] that
/// [`TlsError::from_connect_error`] looks into:
///
/// * a TLS failure: [`ConnectError::Io`] of kind `InvalidData` (or
///   `UnexpectedEof` when the server hung up mid-handshake) whose source is
///   the [`TlsError`];
/// * a handshake that timed out: [`ConnectError::TimedOut`];
/// * the factory refusing after the handshake:
///   [`ConnectError::FactoryRefused`].
///
/// The connector's [`Connector::transport`] and [`Connector::connected`]
/// give the TLS transport once the handshake is done, and
/// [`Connector::disconnect`] closes the session with close_notify.
///
/// ```no_run
/// use torsion::tls::{ClientTls, TlsClientFactory};
/// use torsion::{Address, Protocol, Reactor, TcpConnect, Transport};
///
/// struct Get;
/// impl Protocol for Get {
///     fn connection_made(&mut self, t: Transport) {
///         t.write(b"GET / HTTP/1.0\r\nHost: example.org\r\n\r\n");
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         print!("{}", String::from_utf8_lossy(data));
///     }
/// }
///
/// let reactor = Reactor::new()?;
/// let factory = TlsClientFactory::new(&reactor, ClientTls::system_roots()?, "example.org", |_: &Address| Get)?;
/// reactor.connect_tcp(TcpConnect::new("example.org", 443), factory);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TlsClientFactory {
    reactor: Weak<Inner>,
    tls: Option<(ClientTls, ServerName<'static>, String)>,
    shared: Rc<ClientShared>,
}

impl fmt::Debug for TlsClientFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientFactory")
            .field("tls", &self.tls.as_ref().map(|(t, _, n)| (t, n)))
            .finish()
    }
}

impl TlsClientFactory {
    /// Wraps `factory`: every connection is TLS from its first byte, and
    /// the server must present a certificate for `server_name` (a DNS name
    /// or an IP address).
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::BadServerName`] when `server_name` is neither.
    pub fn new(
        reactor: &Reactor,
        tls: ClientTls,
        server_name: &str,
        factory: impl ClientFactory,
    ) -> Result<TlsClientFactory, TlsConfigError> {
        let name = super::config::server_name(server_name)?;
        Ok(TlsClientFactory::for_name(
            reactor,
            tls,
            name,
            server_name,
            factory,
        ))
    }

    /// Like [`new`](Self::new), with the name checked already.
    pub(crate) fn for_name(
        reactor: &Reactor,
        tls: ClientTls,
        name: ServerName<'static>,
        text: &str,
        factory: impl ClientFactory,
    ) -> TlsClientFactory {
        TlsClientFactory {
            reactor: reactor.downgrade(),
            tls: Some((tls, name, text.to_string())),
            shared: TlsClientFactory::shared(factory),
        }
    }

    /// Wraps `factory` for STARTTLS: connections begin in the clear, and a
    /// protocol switches its own to TLS with
    /// [`start_tls_client`](super::start_tls_client).
    pub fn starttls(reactor: &Reactor, factory: impl ClientFactory) -> TlsClientFactory {
        TlsClientFactory {
            reactor: reactor.downgrade(),
            tls: None,
            shared: TlsClientFactory::shared(factory),
        }
    }

    fn shared(factory: impl ClientFactory) -> Rc<ClientShared> {
        Rc::new(ClientShared {
            factory: RefCell::new(Box::new(factory)),
            outcome: Rc::default(),
            connector: RefCell::new(None),
        })
    }
}

impl ClientFactory for TlsClientFactory {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        let reactor = Reactor::from_inner(self.reactor.upgrade()?);
        *self.shared.outcome.borrow_mut() = Outcome {
            connector: self.shared.connector.borrow().clone(),
            ..Outcome::default()
        };
        let outcome = Some(self.shared.outcome.clone());
        let session = match &self.tls {
            None => {
                let inner = self.shared.factory.borrow_mut().build_protocol(peer)?;
                TlsSession::new(&reactor, Start::Plain(inner), None, outcome)
            }
            Some((tls, name, text)) => {
                let conn = match rustls::ClientConnection::new(tls.config().clone(), name.clone()) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "cannot start a TLS session");
                        return None;
                    }
                };
                let shared = Rc::downgrade(&self.shared);
                let maker = Box::new(move |peer: &Address| {
                    let shared = shared.upgrade()?;
                    let protocol = shared.factory.borrow_mut().build_protocol(peer);
                    protocol
                });
                TlsSession::new(
                    &reactor,
                    Start::Client(conn, text.clone(), maker),
                    tls.handshake_timeout(),
                    outcome,
                )
            }
        };
        Some(Box::new(TlsProtocol(session)))
    }

    fn started_connecting(&mut self, connector: &Connector) {
        // The connector hands out (and disconnects) the TLS transport, not
        // the raw connection under it.
        connector.set_wrapped();
        *self.shared.connector.borrow_mut() = Some(connector.downgrade());
        self.shared
            .factory
            .borrow_mut()
            .started_connecting(connector);
    }

    fn client_connection_failed(&mut self, connector: &Connector, reason: &ConnectError) {
        self.shared
            .factory
            .borrow_mut()
            .client_connection_failed(connector, reason);
    }

    fn client_connection_lost(&mut self, connector: &Connector, reason: &ConnectionLost) {
        let outcome = std::mem::take(&mut *self.shared.outcome.borrow_mut());
        let mut factory = self.shared.factory.borrow_mut();
        if outcome.made {
            let reason = outcome.lost.unwrap_or_else(|| reason.clone());
            factory.client_connection_lost(connector, &reason);
            return;
        }
        let error = if outcome.refused {
            ConnectError::FactoryRefused
        } else {
            match outcome.failure {
                Some(TlsError::HandshakeTimeout) => ConnectError::TimedOut,
                Some(e) => ConnectError::Io(Arc::new(e.into_io())),
                None => ConnectError::Io(Arc::new(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!(
                        "the TLS handshake did not complete: {}",
                        outcome.raw.as_ref().unwrap_or(reason)
                    ),
                ))),
            }
        };
        factory.client_connection_failed(connector, &error);
    }
}
