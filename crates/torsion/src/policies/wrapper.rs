//! The wrapping factory and protocol wrapper every policy builds on.

use crate::address::Address;
use crate::connector::Connector;
use crate::protocol::{ClientFactory, ConnectError, ConnectionLost, Factory, HalfClose, Protocol};
use crate::transport::{Producer, Transport, TransportBackend};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

/// A policy's per-connection part: hooks the [`ProtocolWrapper`] calls
/// around the wrapped protocol's events and writes.
///
/// Every hook has a default that does nothing. The hooks get a
/// [`Wrapped`] handle on the connection; they must not write through the
/// *wrapped* protocol's transport (they never see it), only through
/// [`Wrapped::transport`], the real one.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use torsion::policies::{ConnectionPolicy, ProtocolWrapper, Wrapped};
/// use torsion::testing::StringTransport;
/// use torsion::{Protocol, Transport};
///
/// /// Counts bytes both ways.
/// struct Count(Rc<Cell<usize>>);
/// impl ConnectionPolicy for Count {
///     fn data_received(&mut self, _: &Wrapped, data: &[u8]) {
///         self.0.set(self.0.get() + data.len());
///     }
///     fn data_written(&mut self, _: &Wrapped, data: &[&[u8]]) {
///         self.0.set(self.0.get() + data.iter().map(|d| d.len()).sum::<usize>());
///     }
/// }
///
/// #[derive(Default)]
/// struct Echo(Option<Transport>);
/// impl Protocol for Echo {
///     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
///     fn data_received(&mut self, d: &[u8]) { self.0.as_ref().unwrap().write(d); }
/// }
///
/// let total = Rc::new(Cell::new(0));
/// let mut p = ProtocolWrapper::new(Box::new(Echo::default()), Count(total.clone()));
/// let st = StringTransport::new();
/// st.connect(&mut p);
/// p.data_received(b"hello");
/// assert_eq!(st.value(), b"hello");
/// assert_eq!(total.get(), 10);
/// ```
pub trait ConnectionPolicy: 'static {
    /// The connection is up; called before the wrapped protocol's
    /// `connection_made`.
    fn connection_made(&mut self, conn: &Wrapped) {
        let _ = conn;
    }

    /// Bytes arrived; called before the wrapped protocol sees them.
    fn data_received(&mut self, conn: &Wrapped, data: &[u8]) {
        let _ = (conn, data);
    }

    /// The wrapped protocol wrote `data` (one write or one gathering
    /// write); called before the bytes go to the real transport.
    fn data_written(&mut self, conn: &Wrapped, data: &[&[u8]]) {
        let _ = (conn, data);
    }

    /// The peer shut its write side.
    fn read_connection_lost(&mut self, conn: &Wrapped) {
        let _ = conn;
    }

    /// The connection is gone; called after the wrapped protocol's
    /// `connection_lost`.
    fn connection_lost(&mut self, conn: &Wrapped, reason: &ConnectionLost) {
        let _ = (conn, reason);
    }
}

/// A policy's shared part: decides whether to take a connection, and
/// makes the per-connection part for those it takes.
///
/// Refusing (returning `None`) closes the connection at once; a policy
/// that refuses logs why.
pub trait Policy: 'static {
    /// The per-connection part.
    type Connection: ConnectionPolicy;

    /// A connection from `peer` arrived: take it, or refuse it.
    fn admit(&mut self, peer: &Address) -> Option<Self::Connection>;
}

/// Per-connection state shared by the wrapper, the transport it gives the
/// wrapped protocol, the producer proxy and the policy's [`Wrapped`]
/// handles.
#[derive(Default)]
struct Shared {
    real: RefCell<Option<Transport>>,
    peer: RefCell<Option<Address>>,
    /// The wrapped protocol paused reading.
    inner_read_paused: Cell<bool>,
    /// Votes of policies that paused reading.
    policy_read_pauses: Cell<u32>,
    producer: RefCell<Option<(Rc<dyn Producer>, bool)>>,
    /// The real transport paused the registered producer (water marks).
    engine_paused: Cell<bool>,
    /// Votes of policies that paused the registered producer.
    policy_producer_pauses: Cell<u32>,
    /// What the wrapped streaming producer was last told.
    producer_paused: Cell<bool>,
    /// A pull producer's chunk request held back while paused.
    pull_owed: Cell<bool>,
}

impl Shared {
    fn real(&self) -> Option<Transport> {
        self.real.borrow().clone()
    }

    fn update_reading(&self) {
        let Some(t) = self.real() else { return };
        if self.inner_read_paused.get() || self.policy_read_pauses.get() > 0 {
            t.pause_producing();
        } else {
            t.resume_producing();
        }
    }

    /// Brings the wrapped producer in line with the votes. Calls user code:
    /// no borrow of this state is held while it runs.
    fn update_producer(&self) {
        let Some((p, streaming)) = self.producer.borrow().clone() else {
            return;
        };
        let policy = self.policy_producer_pauses.get() > 0;
        if streaming {
            let want = policy || self.engine_paused.get();
            if want != self.producer_paused.get() {
                self.producer_paused.set(want);
                if want {
                    p.pause_producing();
                } else {
                    p.resume_producing();
                }
            }
        } else if !policy && self.pull_owed.replace(false) {
            p.resume_producing();
        }
    }
}

/// A policy's handle on one wrapped connection: the real transport, and
/// votes to pause reading or the wrapped protocol's producer. Reading
/// resumes only when neither the wrapped protocol nor any policy wants it
/// paused; likewise the producer.
#[derive(Clone)]
pub struct Wrapped {
    shared: Rc<Shared>,
}

impl Wrapped {
    /// The real transport (`None` before the connection is made).
    pub fn transport(&self) -> Option<Transport> {
        self.shared.real()
    }

    /// The peer's address, as given to the factory.
    pub fn peer(&self) -> Option<Address> {
        self.shared.peer.borrow().clone()
    }

    /// Adds a vote to pause reading from the peer.
    pub fn pause_reading(&self) {
        let s = &self.shared;
        s.policy_read_pauses.set(s.policy_read_pauses.get() + 1);
        s.update_reading();
    }

    /// Takes back a vote of [`pause_reading`](Self::pause_reading).
    pub fn resume_reading(&self) {
        let s = &self.shared;
        s.policy_read_pauses
            .set(s.policy_read_pauses.get().saturating_sub(1));
        s.update_reading();
    }

    /// Adds a vote to pause the producer the wrapped protocol registered
    /// (now, or when it registers one).
    pub fn pause_producer(&self) {
        let s = &self.shared;
        s.policy_producer_pauses
            .set(s.policy_producer_pauses.get() + 1);
        s.update_producer();
    }

    /// Takes back a vote of [`pause_producer`](Self::pause_producer).
    pub fn resume_producer(&self) {
        let s = &self.shared;
        s.policy_producer_pauses
            .set(s.policy_producer_pauses.get().saturating_sub(1));
        s.update_producer();
    }

    /// Whether reading is paused (by anyone).
    pub fn is_reading_paused(&self) -> bool {
        self.shared.inner_read_paused.get() || self.shared.policy_read_pauses.get() > 0
    }

    /// Whether two handles name the same connection.
    pub fn same_as(&self, other: &Wrapped) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }
}

impl fmt::Debug for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wrapped")
            .field("peer", &self.peer())
            .field("reading_paused", &self.is_reading_paused())
            .finish()
    }
}

/// The transport the wrapped protocol gets: forwards to the real one,
/// telling the policy about writes and keeping pause votes apart.
struct WrappedBackend<C> {
    shared: Rc<Shared>,
    policy: Rc<RefCell<C>>,
}

impl<C: ConnectionPolicy> WrappedBackend<C> {
    fn written(&self, data: &[&[u8]]) {
        // The policy is never running here (its hooks cannot reach this
        // transport), so the borrow succeeds; if not, skip the hook rather
        // than panic.
        if let Ok(mut p) = self.policy.try_borrow_mut() {
            p.data_written(
                &Wrapped {
                    shared: self.shared.clone(),
                },
                data,
            );
        }
    }
}

impl<C: ConnectionPolicy> TransportBackend for WrappedBackend<C> {
    fn write(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.written(&[data]);
        if let Some(t) = self.shared.real() {
            t.write(data);
        }
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        self.written(data);
        if let Some(t) = self.shared.real() {
            t.write_sequence(data);
        }
    }

    fn lose_connection(&self) {
        if let Some(t) = self.shared.real() {
            t.lose_connection();
        }
    }

    fn abort_connection(&self) {
        if let Some(t) = self.shared.real() {
            t.abort_connection();
        }
    }

    fn timeout_connection(&self) {
        if let Some(t) = self.shared.real() {
            t.timeout_connection();
        }
    }

    fn half_close(&self) -> bool {
        self.shared.real().is_some_and(|t| t.half_close())
    }

    fn peer(&self) -> Address {
        match self.shared.real() {
            Some(t) => t.peer(),
            None => Address::Memory("unconnected".into()),
        }
    }

    fn host(&self) -> Address {
        match self.shared.real() {
            Some(t) => t.host(),
            None => Address::Memory("unconnected".into()),
        }
    }

    fn pause_producing(&self) {
        self.shared.inner_read_paused.set(true);
        self.shared.update_reading();
    }

    fn resume_producing(&self) {
        self.shared.inner_read_paused.set(false);
        self.shared.update_reading();
    }

    fn register_producer(&self, producer: Rc<dyn Producer>, streaming: bool) {
        let s = &self.shared;
        *s.producer.borrow_mut() = Some((producer, streaming));
        s.engine_paused.set(false);
        s.producer_paused.set(false);
        s.pull_owed.set(false);
        if let Some(t) = s.real() {
            t.register_producer(Rc::new(ProducerProxy { shared: s.clone() }), streaming);
        }
        // A policy that paused producers before this one registered.
        if streaming && s.policy_producer_pauses.get() > 0 {
            s.update_producer();
        }
    }

    fn unregister_producer(&self) {
        let old = self.shared.producer.borrow_mut().take();
        if let Some(t) = self.shared.real() {
            t.unregister_producer();
        }
        drop(old);
    }

    fn set_write_buffer_limits(&self, high: usize, low: usize) {
        if let Some(t) = self.shared.real() {
            t.set_write_buffer_limits(high, low);
        }
    }

    fn buffered(&self) -> usize {
        self.shared.real().map_or(0, |t| t.buffered())
    }

    fn is_open(&self) -> bool {
        self.shared.real().is_some_and(|t| t.is_open())
    }
}

/// Registered with the real transport in the wrapped producer's place, so
/// the engine's water marks and the policies' votes combine.
struct ProducerProxy {
    shared: Rc<Shared>,
}

impl Producer for ProducerProxy {
    fn pause_producing(&self) {
        self.shared.engine_paused.set(true);
        self.shared.update_producer();
    }

    fn resume_producing(&self) {
        let s = &self.shared;
        s.engine_paused.set(false);
        let streaming = s.producer.borrow().as_ref().map(|(_, st)| *st);
        if streaming == Some(false) {
            // A pull producer: the engine asks for one more chunk.
            s.pull_owed.set(true);
        }
        s.update_producer();
    }

    fn stop_producing(&self) {
        let p = self.shared.producer.borrow_mut().take();
        if let Some((p, _)) = p {
            p.stop_producing();
        }
    }
}

/// Wraps a protocol: the policy's hooks run around its events, and it
/// writes through a transport that reports to the policy (Twisted's
/// `policies.ProtocolWrapper`).
///
/// The wrapped protocol gets its own [`Transport`] handle, which forwards
/// to the real one. See [`ConnectionPolicy`] for an example.
pub struct ProtocolWrapper<C> {
    inner: Box<dyn Protocol>,
    policy: Rc<RefCell<C>>,
    shared: Rc<Shared>,
}

impl<C: ConnectionPolicy> ProtocolWrapper<C> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: Box<dyn Protocol>, policy: C) -> Self {
        ProtocolWrapper {
            inner,
            policy: Rc::new(RefCell::new(policy)),
            shared: Rc::new(Shared::default()),
        }
    }

    /// The policy's per-connection part.
    ///
    /// # Panics
    ///
    /// If called from inside one of the policy's hooks.
    pub fn policy(&self) -> std::cell::Ref<'_, C> {
        self.policy.borrow()
    }

    /// A handle on the connection, as the policy sees it.
    pub fn wrapped(&self) -> Wrapped {
        Wrapped {
            shared: self.shared.clone(),
        }
    }

    fn with_policy(&self, f: impl FnOnce(&mut C, &Wrapped)) {
        if let Ok(mut p) = self.policy.try_borrow_mut() {
            f(&mut p, &self.wrapped());
        }
    }
}

impl<C> fmt::Debug for ProtocolWrapper<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolWrapper")
            .field("peer", &self.shared.peer.borrow())
            .finish()
    }
}

impl<C: ConnectionPolicy> Protocol for ProtocolWrapper<C> {
    fn connection_made(&mut self, transport: Transport) {
        *self.shared.peer.borrow_mut() = Some(transport.peer());
        *self.shared.real.borrow_mut() = Some(transport);
        self.with_policy(|p, w| p.connection_made(w));
        let inner = Transport::new(Rc::new(WrappedBackend {
            shared: self.shared.clone(),
            policy: self.policy.clone(),
        }));
        self.inner.connection_made(inner);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.with_policy(|p, w| p.data_received(w, data));
        self.inner.data_received(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.with_policy(|p, w| p.read_connection_lost(w));
        self.inner.read_connection_lost()
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.inner.connection_lost(reason.clone());
        self.with_policy(|p, w| p.connection_lost(w, &reason));
        // Break the cycle between the state and the producer it holds.
        self.shared.producer.borrow_mut().take();
    }
}

/// A factory whose protocols are wrapped with a policy (Twisted's
/// `policies.WrappingFactory`). It is a [`Factory`] when the inner one is,
/// and a [`ClientFactory`] when the inner one is.
///
/// Policies nest: `WrappingFactory::new(WrappingFactory::new(f, a), b)`
/// applies `b` outside `a`.
///
/// ```
/// use torsion::policies::{LimitConnections, WrappingFactory};
/// use torsion::{Address, Factory, Protocol};
/// struct Nop;
/// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
///
/// let mut f = WrappingFactory::new(|_: &Address| Nop, LimitConnections::new().max_total(1));
/// let peer: Address = "192.0.2.1:4000".parse::<std::net::SocketAddr>().unwrap().into();
/// let first = f.build_protocol(&peer);
/// assert!(first.is_some());
/// assert!(f.build_protocol(&peer).is_none()); // over the limit
/// drop(first); // a connection that ends frees its place
/// assert!(f.build_protocol(&peer).is_some());
/// ```
pub struct WrappingFactory<F, P> {
    inner: F,
    policy: P,
}

impl<F, P: Policy> WrappingFactory<F, P> {
    /// Wraps the protocols `inner` builds with `policy`.
    pub fn new(inner: F, policy: P) -> Self {
        WrappingFactory { inner, policy }
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The wrapped factory.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    fn wrap(
        &mut self,
        peer: &Address,
        build: impl FnOnce(&mut F, &Address) -> Option<Box<dyn Protocol>>,
    ) -> Option<Box<dyn Protocol>> {
        let conn = self.policy.admit(peer)?;
        let inner = build(&mut self.inner, peer)?;
        Some(Box::new(ProtocolWrapper::new(inner, conn)))
    }
}

impl<F: fmt::Debug, P> fmt::Debug for WrappingFactory<F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappingFactory")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<F: Factory, P: Policy> Factory for WrappingFactory<F, P> {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        self.wrap(peer, |f, peer| Factory::build_protocol(f, peer))
    }

    fn start_factory(&mut self) {
        self.inner.start_factory()
    }

    fn stop_factory(&mut self) {
        self.inner.stop_factory()
    }
}

impl<F: ClientFactory, P: Policy> ClientFactory for WrappingFactory<F, P> {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        self.wrap(peer, |f, peer| ClientFactory::build_protocol(f, peer))
    }

    fn started_connecting(&mut self, connector: &Connector) {
        self.inner.started_connecting(connector)
    }

    fn client_connection_failed(&mut self, connector: &Connector, reason: &ConnectError) {
        self.inner.client_connection_failed(connector, reason)
    }

    fn client_connection_lost(&mut self, connector: &Connector, reason: &ConnectionLost) {
        self.inner.client_connection_lost(connector, reason)
    }
}
