//! Outgoing connections: a [`Connector`] and its attempts.
//!
//! A connector remembers where to connect and with which
//! [`ClientFactory`]; [`Connector::connect`] starts an attempt, and may be
//! called again after a failure or a lost connection (that is how
//! `ReconnectingClientFactory` reconnects). An attempt resolves the host
//! name on a helper thread (never blocking the reactor), then tries each
//! address in turn with a non-blocking connect, within an overall timeout.
//!
//! Every call into the factory comes from the reactor loop, never from
//! inside `connect()`, so a factory may call `connect()` from its own
//! callbacks.

use crate::address::Address;
use crate::defer::{Deferred, Failure, Trigger};
use crate::protocol::{ClientFactory, ConnectError, ConnectionLost};
use crate::reactor::{DelayedCall, Inner, Reactor, Source};
use crate::stream::{Socket, StreamConn};
use crate::transport::Transport;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

/// A host name lookup installed with [`Reactor::install_name_resolver`].
pub(crate) type NameResolver = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// Where a connector connects.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Tcp {
        host: String,
        port: u16,
        bind: Option<SocketAddr>,
    },
    Unix {
        path: PathBuf,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp { host, port, .. } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Target::Tcp { host, port, .. } => write!(f, "{host}:{port}"),
            Target::Unix { path } => write!(f, "unix:{}", path.display()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Connecting,
    Connected,
}

struct ConnectorInner {
    reactor: Weak<Inner>,
    target: Target,
    timeout: Option<Duration>,
    factory: RefCell<Box<dyn ClientFactory>>,
    state: Cell<State>,
    /// Bumped by every attempt, so a stale resolution or timer is ignored.
    attempt_id: Cell<u64>,
    attempt: RefCell<Option<Rc<PendingConnect>>>,
    timer: RefCell<Option<DelayedCall>>,
    transport: RefCell<Option<Transport>>,
    /// Deferreds waiting for the current attempt's outcome.
    waiters: RefCell<Vec<Trigger<Transport>>>,
    /// A wrapping factory (TLS) supplies the protocol's transport once its
    /// own setup is done, instead of the raw connection's.
    wrapped: Cell<bool>,
}

/// A connector reference that does not keep it alive (for wrapping
/// factories, which the connector itself owns).
#[derive(Clone)]
pub(crate) struct WeakConnector(Weak<ConnectorInner>);

impl WeakConnector {
    pub(crate) fn upgrade(&self) -> Option<Connector> {
        self.0.upgrade().map(|inner| Connector { inner })
    }
}

/// A handle on an outgoing connection: connect (again), stop, disconnect.
///
/// ```
/// use torsion::{Address, Protocol, Reactor, TcpConnect, TcpListen};
/// struct Nop;
/// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
///
/// let reactor = Reactor::new().unwrap();
/// let port = reactor
///     .listen_tcp(TcpListen::new(0).interface([127, 0, 0, 1]), |_: &Address| Nop)
///     .unwrap();
/// let addr = port.address().socket_addr().unwrap();
/// let connector = reactor.connect_tcp(TcpConnect::new("127.0.0.1", addr.port()), |_: &Address| Nop);
/// while !connector.is_connected() {
///     reactor.iterate(None).unwrap();
/// }
/// connector.disconnect();
/// ```
#[derive(Clone)]
pub struct Connector {
    inner: Rc<ConnectorInner>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.inner.target)
            .field("state", &self.inner.state.get())
            .finish()
    }
}

impl Connector {
    pub(crate) fn new(
        reactor: &Reactor,
        target: Target,
        timeout: Option<Duration>,
        factory: Box<dyn ClientFactory>,
    ) -> Connector {
        Connector {
            inner: Rc::new(ConnectorInner {
                reactor: reactor.downgrade(),
                target,
                timeout,
                factory: RefCell::new(factory),
                state: Cell::new(State::Idle),
                attempt_id: Cell::new(0),
                attempt: RefCell::new(None),
                timer: RefCell::new(None),
                transport: RefCell::new(None),
                waiters: RefCell::new(Vec::new()),
                wrapped: Cell::new(false),
            }),
        }
    }

    pub(crate) fn reactor(&self) -> Option<Reactor> {
        self.inner.reactor.upgrade().map(Reactor::from_inner)
    }

    /// Where this connector connects, as `host:port` or `unix:/path`.
    pub fn destination(&self) -> String {
        self.inner.target.to_string()
    }

    /// The transport of the current connection, while connected.
    pub fn transport(&self) -> Option<Transport> {
        self.inner.transport.borrow().clone()
    }

    pub(crate) fn downgrade(&self) -> WeakConnector {
        WeakConnector(Rc::downgrade(&self.inner))
    }

    /// Called by a wrapping factory: the transport to hand out (and to
    /// close with [`disconnect`](Self::disconnect)) is the wrapper's, and
    /// it arrives through [`supply_transport`](Self::supply_transport).
    pub(crate) fn set_wrapped(&self) {
        self.inner.wrapped.set(true);
    }

    /// The wrapper's transport is ready (a TLS handshake completed).
    pub(crate) fn supply_transport(&self, transport: Transport) {
        *self.inner.transport.borrow_mut() = Some(transport.clone());
        let waiters = std::mem::take(&mut *self.inner.waiters.borrow_mut());
        for w in waiters {
            let _ = w.callback(transport.clone());
        }
    }

    /// A Deferred that fires with the transport once a connection is up
    /// (at once if one is), or fails with the [`ConnectError`] of the
    /// attempt under way. With no attempt under way and no connection, it
    /// fails with [`ConnectError::Cancelled`].
    ///
    /// ```
    /// use torsion::{Address, Protocol, Reactor, TcpConnect, TcpListen};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let reactor = Reactor::new().unwrap();
    /// let port = reactor.listen_tcp(TcpListen::new(0).interface([127, 0, 0, 1]), |_: &Address| Nop).unwrap();
    /// let connector = reactor.connect_tcp(port.address().socket_addr().unwrap(), |_: &Address| Nop);
    /// let r = reactor.clone();
    /// let _ = connector.connected().add_both(move |result| {
    ///     assert!(result.is_ok());
    ///     r.stop();
    ///     Ok::<(), torsion::defer::Failure>(())
    /// });
    /// reactor.run().unwrap();
    /// ```
    pub fn connected(&self) -> Deferred<Transport> {
        let d = Deferred::new();
        match self.inner.state.get() {
            State::Connected => match self.transport() {
                Some(t) => {
                    let _ = d.callback(t);
                }
                // Connected underneath; the wrapper's setup is under way.
                None => self.inner.waiters.borrow_mut().push(d.trigger()),
            },
            State::Connecting => self.inner.waiters.borrow_mut().push(d.trigger()),
            State::Idle => {
                let _ = d.errback(Failure::new(ConnectError::Cancelled));
            }
        }
        d
    }

    /// Whether a connection is up.
    pub fn is_connected(&self) -> bool {
        self.inner.state.get() == State::Connected
    }

    /// Whether an attempt is under way.
    pub fn is_connecting(&self) -> bool {
        self.inner.state.get() == State::Connecting
    }

    /// Starts a connection attempt, unless one is under way or a
    /// connection is up. The factory hears `started_connecting`, then
    /// either builds a protocol or hears `client_connection_failed`.
    pub fn connect(&self) {
        let Some(reactor) = self.reactor() else {
            return;
        };
        if self.inner.state.get() != State::Idle {
            return;
        }
        self.inner.state.set(State::Connecting);
        let id = self.inner.attempt_id.get() + 1;
        self.inner.attempt_id.set(id);
        // Told at once unless the factory is running now (it called
        // connect() from one of its own callbacks): then on the next step.
        // Either way before the attempt can succeed or fail, which needs a
        // turn of the loop, so the factory always hears "started" first.
        let started = match self.inner.factory.try_borrow_mut() {
            Ok(mut factory) => {
                factory.started_connecting(self);
                true
            }
            Err(_) => false,
        };
        if !started {
            let me = self.clone();
            reactor.call_soon(move || me.inner.factory.borrow_mut().started_connecting(&me));
        }
        if let Some(t) = self.inner.timeout {
            let me = self.clone();
            let timer = reactor.call_later(t, move || {
                if me.inner.attempt_id.get() == id && me.is_connecting() {
                    me.fail(ConnectError::TimedOut);
                }
            });
            *self.inner.timer.borrow_mut() = Some(timer);
        }
        match self.inner.target.clone() {
            Target::Tcp { host, port, bind } => {
                let literal = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>();
                if let Ok(ip) = literal {
                    self.try_addresses(&reactor, VecDeque::from([SocketAddr::new(ip, port)]), bind);
                    return;
                }
                let me = self.clone();
                let r = reactor.clone();
                let name = host.clone();
                let resolver = reactor.name_resolver();
                reactor.run_in_thread(
                    move || {
                        match resolver {
                            Some(resolve) => resolve(&name, port).map(VecDeque::from),
                            None => (name.as_str(), port)
                                .to_socket_addrs()
                                .map(|a| a.collect::<VecDeque<_>>()),
                        }
                        .map_err(|e| e.to_string())
                    },
                    move |result| {
                        if me.inner.attempt_id.get() != id || !me.is_connecting() {
                            return;
                        }
                        match result.and_then(|r| r) {
                            Ok(addrs) if !addrs.is_empty() => me.try_addresses(&r, addrs, bind),
                            Ok(_) => me.fail(ConnectError::Resolve {
                                host,
                                reason: "no addresses".into(),
                            }),
                            Err(reason) => me.fail(ConnectError::Resolve { host, reason }),
                        }
                    },
                );
            }
            Target::Unix { path } => {
                let result = mio::net::UnixStream::connect(&path).map(|s| Socket::Unix(s.into()));
                let peer = Address::Unix(Some(path));
                match result {
                    Ok(socket) => {
                        self.wait_connected(&reactor, socket, peer, VecDeque::new(), None)
                    }
                    Err(e) => self.fail(classify(e, peer)),
                }
            }
        }
    }

    /// Tries `addrs` in order until one connects.
    fn try_addresses(
        &self,
        reactor: &Reactor,
        mut addrs: VecDeque<SocketAddr>,
        bind: Option<SocketAddr>,
    ) {
        let mut last = None;
        while let Some(addr) = addrs.pop_front() {
            match start_tcp_connect(addr, bind) {
                Ok(socket) => {
                    return self.wait_connected(reactor, socket, Address::Tcp(addr), addrs, bind);
                }
                Err(e) => last = Some(classify(e, Address::Tcp(addr))),
            }
        }
        self.fail(last.unwrap_or(ConnectError::Io(Arc::new(
            io::ErrorKind::AddrNotAvailable.into(),
        ))));
    }

    fn wait_connected(
        &self,
        reactor: &Reactor,
        socket: Socket,
        peer: Address,
        rest: VecDeque<SocketAddr>,
        bind: Option<SocketAddr>,
    ) {
        let pending = Rc::new(PendingConnect {
            connector: self.clone(),
            token: Cell::new(usize::MAX),
            socket: RefCell::new(Some(socket)),
            peer,
            rest: RefCell::new(rest),
            bind,
        });
        let token = reactor.insert_source(Source::Connecting(pending.clone()));
        pending.token.set(token);
        let registered = match pending.socket.borrow_mut().as_mut() {
            Some(s) => reactor.registry().register(
                &mut s.source(),
                mio::Token(token),
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            ),
            None => Ok(()),
        };
        if let Err(e) = registered {
            reactor.remove_source(token);
            return self.fail(ConnectError::Io(Arc::new(e)));
        }
        *self.inner.attempt.borrow_mut() = Some(pending);
    }

    /// Stops an attempt under way; the factory hears
    /// `client_connection_failed` with [`ConnectError::Cancelled`].
    pub fn stop_connecting(&self) {
        if self.is_connecting() {
            self.fail(ConnectError::Cancelled);
        }
    }

    /// Stops an attempt under way, or closes the connection (flushing
    /// first) if one is up.
    pub fn disconnect(&self) {
        match self.inner.state.get() {
            State::Connecting => self.stop_connecting(),
            State::Connected => {
                if let Some(t) = self.transport() {
                    t.lose_connection();
                }
            }
            State::Idle => {}
        }
    }

    fn end_attempt(&self, reactor: &Reactor) {
        if let Some(t) = self.inner.timer.borrow_mut().take() {
            t.cancel();
        }
        if let Some(p) = self.inner.attempt.borrow_mut().take() {
            if let Some(s) = p.socket.borrow_mut().take() {
                let _ = reactor.registry().deregister(&mut s.source());
            }
            reactor.remove_source(p.token.get());
        }
    }

    fn fail(&self, reason: ConnectError) {
        let Some(reactor) = self.reactor() else {
            return;
        };
        self.end_attempt(&reactor);
        self.inner.state.set(State::Idle);
        let id = self.inner.attempt_id.get() + 1;
        self.inner.attempt_id.set(id);
        tracing::debug!(destination = %self.inner.target, error = %reason, "connecting failed");
        let waiters = std::mem::take(&mut *self.inner.waiters.borrow_mut());
        for w in waiters {
            let _ = w.errback(Failure::new(reason.clone()));
        }
        let me = self.clone();
        reactor.call_soon(move || {
            me.inner
                .factory
                .borrow_mut()
                .client_connection_failed(&me, &reason);
        });
    }

    fn established(&self, reactor: &Reactor, pending: &PendingConnect, socket: Socket) {
        if let Some(t) = self.inner.timer.borrow_mut().take() {
            t.cancel();
        }
        self.inner.attempt.borrow_mut().take();
        let protocol = self
            .inner
            .factory
            .borrow_mut()
            .build_protocol(&pending.peer);
        let Some(protocol) = protocol else {
            drop(socket);
            reactor.remove_source(pending.token.get());
            return self.fail(ConnectError::FactoryRefused);
        };
        self.inner.state.set(State::Connected);
        match StreamConn::start(
            reactor,
            socket,
            protocol,
            Some(pending.token.get()),
            Some(self.clone()),
        ) {
            Ok(conn) => {
                if !self.inner.wrapped.get() {
                    self.supply_transport(Transport::new(conn));
                }
            }
            Err(e) => self.fail(ConnectError::Io(Arc::new(e))),
        }
    }

    /// The connection ended; called after the protocol's `connection_lost`.
    pub(crate) fn connection_lost(&self, reason: &ConnectionLost) {
        self.inner.transport.borrow_mut().take();
        self.inner.state.set(State::Idle);
        // Waiters still here were waiting on a wrapper that never finished.
        let waiters = std::mem::take(&mut *self.inner.waiters.borrow_mut());
        for w in waiters {
            let _ = w.errback(Failure::new(reason.clone()));
        }
        self.inner
            .factory
            .borrow_mut()
            .client_connection_lost(self, reason);
    }
}

fn classify(e: io::Error, peer: Address) -> ConnectError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectError::Refused(peer),
        io::ErrorKind::TimedOut => ConnectError::TimedOut,
        _ => ConnectError::Io(Arc::new(e)),
    }
}

fn start_tcp_connect(addr: SocketAddr, bind: Option<SocketAddr>) -> io::Result<Socket> {
    use socket2::{Domain, Protocol, Socket as RawSocket, Type};
    let socket = RawSocket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(b) = bind {
        socket.bind(&b.into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(Socket::Tcp(socket.into()))
}

/// One connect in flight, waiting for the socket to become writable.
pub(crate) struct PendingConnect {
    connector: Connector,
    token: Cell<usize>,
    socket: RefCell<Option<Socket>>,
    peer: Address,
    rest: RefCell<VecDeque<SocketAddr>>,
    bind: Option<SocketAddr>,
}

impl PendingConnect {
    pub(crate) fn ready(self: &Rc<Self>, reactor: &Reactor) {
        let outcome = match self.socket.borrow().as_ref() {
            Some(s) => s.connect_outcome(),
            None => return,
        };
        match outcome {
            None => {} // spurious: still connecting
            Some(Ok(())) => {
                let socket = self.socket.borrow_mut().take();
                if let Some(socket) = socket {
                    self.connector.established(reactor, self, socket);
                }
            }
            Some(Err(e)) => {
                if let Some(s) = self.socket.borrow_mut().take() {
                    let _ = reactor.registry().deregister(&mut s.source());
                }
                reactor.remove_source(self.token.get());
                self.connector.inner.attempt.borrow_mut().take();
                let rest = std::mem::take(&mut *self.rest.borrow_mut());
                if rest.is_empty() {
                    self.connector.fail(classify(e, self.peer.clone()));
                } else {
                    self.connector.try_addresses(reactor, rest, self.bind);
                }
            }
        }
    }

    pub(crate) fn cancel(&self) {
        self.connector.stop_connecting();
    }
}

impl Socket {
    /// `None` while a non-blocking connect is still in progress.
    fn connect_outcome(&self) -> Option<io::Result<()>> {
        let (err, peer) = match self {
            Socket::Tcp(s) => (s.take_error(), s.peer_addr().map(|_| ())),
            Socket::Unix(s) => (s.take_error(), s.peer_addr().map(|_| ())),
        };
        match (err, peer) {
            (Ok(Some(e)), _) | (Err(e), _) => Some(Err(e)),
            (Ok(None), Ok(())) => Some(Ok(())),
            (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => None,
            (Ok(None), Err(e)) => Some(Err(e)),
        }
    }
}
