//! Connection limits: in total and per peer address.

use super::wrapper::{ConnectionPolicy, Policy, Wrapped, WrappingFactory};
use crate::address::Address;
use crate::protocol::ConnectionLost;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::rc::Rc;

/// Whom a per-peer limit counts as one peer: the IP address for TCP (any
/// port), the whole address otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PeerKey {
    Ip(IpAddr),
    Other(Address),
}

impl PeerKey {
    fn of(peer: &Address) -> PeerKey {
        match peer.socket_addr() {
            Some(a) => PeerKey::Ip(a.ip()),
            None => PeerKey::Other(peer.clone()),
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<PeerKey, usize>,
}

/// A policy that caps open connections, in total and per peer IP
/// address (Twisted's `LimitTotalConnectionsFactory` and
/// `LimitConnectionsByPeer` in one). A connection over a limit is refused:
/// closed at once, with a `warn` log line naming the peer and the limit.
///
/// A connection counts from the moment it is accepted until its
/// `connection_lost`.
///
/// ```
/// use torsion::policies::{LimitConnections, WrappingFactory};
/// use torsion::{Address, Factory, Protocol};
/// struct Nop;
/// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
///
/// let limit = LimitConnections::new().max_per_peer(2);
/// let mut f = WrappingFactory::new(|_: &Address| Nop, limit.clone());
/// let a: Address = "192.0.2.1:1000".parse::<std::net::SocketAddr>().unwrap().into();
/// let a2: Address = "192.0.2.1:1001".parse::<std::net::SocketAddr>().unwrap().into();
/// let b: Address = "192.0.2.2:1000".parse::<std::net::SocketAddr>().unwrap().into();
/// let _one = f.build_protocol(&a).unwrap();
/// let _two = f.build_protocol(&a2).unwrap();
/// assert!(f.build_protocol(&a).is_none()); // a third from 192.0.2.1
/// assert!(f.build_protocol(&b).is_some()); // another peer is fine
/// assert_eq!(limit.open(), 2); // the refused one and the dropped one are not counted
/// ```
#[derive(Clone)]
pub struct LimitConnections {
    max_total: Option<usize>,
    max_per_peer: Option<usize>,
    counts: Rc<RefCell<Counts>>,
}

impl LimitConnections {
    /// No limits yet; add them with [`max_total`](Self::max_total) and
    /// [`max_per_peer`](Self::max_per_peer).
    pub fn new() -> Self {
        LimitConnections {
            max_total: None,
            max_per_peer: None,
            counts: Rc::default(),
        }
    }

    /// At most `max` connections open at once.
    pub fn max_total(mut self, max: usize) -> Self {
        self.max_total = Some(max);
        self
    }

    /// At most `max` connections open at once from one IP address.
    pub fn max_per_peer(mut self, max: usize) -> Self {
        self.max_per_peer = Some(max);
        self
    }

    /// `factory`, limited by this policy.
    pub fn wrap<F>(self, factory: F) -> WrappingFactory<F, LimitConnections> {
        WrappingFactory::new(factory, self)
    }

    /// Connections open now (every clone of the policy shares the count).
    pub fn open(&self) -> usize {
        self.counts.borrow().total
    }

    /// Connections open now from `peer`'s IP address.
    pub fn open_from(&self, peer: &Address) -> usize {
        self.counts
            .borrow()
            .per_peer
            .get(&PeerKey::of(peer))
            .copied()
            .unwrap_or(0)
    }
}

impl Default for LimitConnections {
    fn default() -> Self {
        LimitConnections::new()
    }
}

impl fmt::Debug for LimitConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitConnections")
            .field("max_total", &self.max_total)
            .field("max_per_peer", &self.max_per_peer)
            .field("open", &self.open())
            .finish()
    }
}

impl Policy for LimitConnections {
    type Connection = Slot;

    fn admit(&mut self, peer: &Address) -> Option<Slot> {
        let key = PeerKey::of(peer);
        let mut counts = self.counts.borrow_mut();
        if let Some(max) = self.max_total {
            if counts.total >= max {
                tracing::warn!(%peer, limit = max, "refusing connection: {max} connections already open");
                return None;
            }
        }
        let from_peer = counts.per_peer.get(&key).copied().unwrap_or(0);
        if let Some(max) = self.max_per_peer {
            if from_peer >= max {
                tracing::warn!(%peer, limit = max, "refusing connection: {max} connections already open from this peer");
                return None;
            }
        }
        counts.total += 1;
        counts.per_peer.insert(key.clone(), from_peer + 1);
        Some(Slot {
            held: Some((key, self.counts.clone())),
        })
    }
}

/// One connection's place under a [`LimitConnections`]; given back when
/// the connection is lost (or the slot is dropped).
pub struct Slot {
    held: Option<(PeerKey, Rc<RefCell<Counts>>)>,
}

impl Slot {
    fn release(&mut self) {
        let Some((key, counts)) = self.held.take() else {
            return;
        };
        let mut counts = counts.borrow_mut();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_peer.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_peer.remove(&key);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("held", &self.held.is_some())
            .finish()
    }
}

impl ConnectionPolicy for Slot {
    fn connection_lost(&mut self, _: &Wrapped, _: &ConnectionLost) {
        self.release();
    }
}
