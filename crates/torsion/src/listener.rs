//! Listening sockets: accept connections and hand them to a factory.
//!
//! One [`Listener`] serves TCP and Unix stream sockets alike. Accepting is
//! edge-triggered, so each readiness event accepts until the kernel's queue
//! is empty, yielding to other work after a batch.
//!
//! # Running out of descriptors
//!
//! When `accept` fails with `EMFILE` or `ENFILE` the connection stays in the
//! kernel's backlog. The listener logs once, stops accepting, and tries
//! again when one of the reactor's connections closes (a descriptor came
//! free) or, at the latest, after [`STARVED_RETRY`]. It never spins and
//! never closes its listening socket.

use crate::address::Address;
use crate::protocol::Factory;
use crate::reactor::{DelayedCall, Inner, Reactor, Source, Task};
use crate::stream::{Socket, StreamConn};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::Duration;

/// How long a listener starved of descriptors waits before it tries again
/// (unless a connection closes first).
pub const STARVED_RETRY: Duration = Duration::from_millis(250);
const ACCEPTS_PER_TURN: usize = 128;

pub(crate) enum ListenSocket {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

impl ListenSocket {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            ListenSocket::Tcp(l) => l,
            ListenSocket::Unix(l) => l,
        }
    }

    fn accept(&self) -> io::Result<(Socket, Address)> {
        match self {
            ListenSocket::Tcp(l) => {
                let (s, peer) = l.accept()?;
                // Small writes go out at once; protocols batch with
                // write_sequence when they want to.
                let _ = s.set_nodelay(true);
                Ok((Socket::Tcp(s.into()), Address::Tcp(peer)))
            }
            ListenSocket::Unix(l) => {
                let (s, peer) = l.accept()?;
                let path = peer.as_pathname().map(|p| p.to_path_buf());
                Ok((Socket::Unix(s.into()), Address::Unix(path)))
            }
        }
    }
}

pub(crate) struct Listener {
    me: Weak<Listener>,
    reactor: Weak<Inner>,
    token: Cell<usize>,
    socket: RefCell<Option<ListenSocket>>,
    factory: RefCell<Box<dyn Factory>>,
    address: Address,
    /// A Unix socket file to remove when listening stops.
    unlink: Option<PathBuf>,
    starved: Cell<bool>,
    retry: RefCell<Option<DelayedCall>>,
}

fn is_descriptor_exhaustion(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let Some(code) = e.raw_os_error() else {
        return false;
    };
    [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
        .iter()
        .any(|errno| errno.raw_os_error() == code)
}

impl Listener {
    pub(crate) fn start(
        reactor: &Reactor,
        socket: ListenSocket,
        address: Address,
        factory: Box<dyn Factory>,
        unlink: Option<PathBuf>,
    ) -> io::Result<ListeningPort> {
        let listener = Rc::new_cyclic(|me| Listener {
            me: me.clone(),
            reactor: reactor.downgrade(),
            token: Cell::new(usize::MAX),
            socket: RefCell::new(Some(socket)),
            factory: RefCell::new(factory),
            address,
            unlink,
            starved: Cell::new(false),
            retry: RefCell::new(None),
        });
        let token = reactor.insert_source(Source::Listener(listener.clone()));
        listener.token.set(token);
        let registered = match listener.socket.borrow_mut().as_mut() {
            Some(s) => {
                reactor
                    .registry()
                    .register(s.source(), mio::Token(token), mio::Interest::READABLE)
            }
            None => Ok(()),
        };
        if let Err(e) = registered {
            reactor.remove_source(token);
            return Err(e);
        }
        listener.factory.borrow_mut().start_factory();
        tracing::debug!(address = %listener.address, "listening");
        Ok(ListeningPort { listener })
    }

    fn reactor(&self) -> Option<Reactor> {
        self.reactor.upgrade().map(Reactor::from_inner)
    }

    /// The socket is readable: accept what is waiting.
    pub(crate) fn accept_ready(self: &Rc<Self>, reactor: &Reactor) {
        if reactor.is_shutting_down() {
            return;
        }
        for _ in 0..ACCEPTS_PER_TURN {
            let accepted = match self.socket.borrow().as_ref() {
                Some(s) => s.accept(),
                None => return,
            };
            match accepted {
                Ok((socket, peer)) => {
                    if self.starved.replace(false) {
                        tracing::info!(address = %self.address, "descriptors available again; accepting");
                    }
                    self.serve(reactor, socket, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) if is_descriptor_exhaustion(&e) => {
                    if !self.starved.replace(true) {
                        tracing::warn!(
                            address = %self.address,
                            error = %e,
                            "out of file descriptors; pausing accept until one is freed"
                        );
                    }
                    self.wait_for_descriptors(reactor);
                    return;
                }
                Err(e) => {
                    tracing::error!(address = %self.address, error = %e, "accept failed");
                    return;
                }
            }
        }
        // More may be waiting; let other connections run first.
        reactor.push(Task::Accept(self.clone()));
    }

    fn wait_for_descriptors(self: &Rc<Self>, reactor: &Reactor) {
        reactor.note_starved(self.clone());
        let mut retry = self.retry.borrow_mut();
        if retry.as_ref().is_some_and(|r| r.active()) {
            return;
        }
        let me = self.me.clone();
        let r = reactor.clone();
        *retry = Some(reactor.call_later(STARVED_RETRY, move || {
            if let Some(l) = me.upgrade() {
                l.accept_ready(&r);
            }
        }));
    }

    fn serve(&self, reactor: &Reactor, socket: Socket, peer: Address) {
        let protocol = self.factory.borrow_mut().build_protocol(&peer);
        let Some(protocol) = protocol else {
            tracing::info!(%peer, address = %self.address, "factory refused connection");
            return;
        };
        if let Err(e) = StreamConn::start(reactor, socket, protocol, None, None) {
            tracing::error!(%peer, error = %e, "could not register an accepted connection");
        }
    }

    pub(crate) fn stop_listening(&self) {
        let Some(mut socket) = self.socket.borrow_mut().take() else {
            return;
        };
        if let Some(reactor) = self.reactor() {
            let _ = reactor.registry().deregister(socket.source());
            reactor.remove_source(self.token.get());
            // The factory may be running right now (a protocol it built
            // stops the port): tell it on the next step.
            let me = self.me.clone();
            reactor.call_soon(move || {
                if let Some(l) = me.upgrade() {
                    l.factory.borrow_mut().stop_factory();
                }
            });
        }
        if let Some(r) = self.retry.borrow_mut().take() {
            r.cancel();
        }
        drop(socket);
        if let Some(path) = &self.unlink {
            let _ = std::fs::remove_file(path);
        }
        tracing::debug!(address = %self.address, "stopped listening");
    }
}

/// A port that is listening: ask its address, stop it.
///
/// ```
/// use torsion::{Address, Protocol, Reactor, TcpListen};
/// struct Nop;
/// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
///
/// let reactor = Reactor::new().unwrap();
/// let port = reactor
///     .listen_tcp(TcpListen::new(0).interface([127, 0, 0, 1]), |_: &Address| Nop)
///     .unwrap();
/// let addr = port.address().socket_addr().unwrap();
/// assert_ne!(addr.port(), 0); // port 0 picked a free port
/// port.stop_listening();
/// ```
pub struct ListeningPort {
    listener: Rc<Listener>,
}

impl ListeningPort {
    /// The address the port listens on, with the real port number when
    /// port 0 was asked for.
    pub fn address(&self) -> Address {
        self.listener.address.clone()
    }

    /// Stops accepting and closes the listening socket (a Unix socket's
    /// file is removed). Connections already accepted go on.
    pub fn stop_listening(&self) {
        self.listener.stop_listening()
    }

    /// Whether the port still listens.
    pub fn is_listening(&self) -> bool {
        self.listener.socket.borrow().is_some()
    }
}

impl fmt::Debug for ListeningPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListeningPort")
            .field("address", &self.listener.address)
            .finish()
    }
}
