//! A clean TLS close when the reactor shuts down.
//!
//! At shutdown the reactor asks every raw connection to close, and a raw
//! connection knows nothing of the TLS session on it: closed that way, the
//! peer would see the stream end without close_notify, a truncation. So
//! each reactor that has TLS sessions gets one `Before` shutdown trigger,
//! which closes every live session through its own transport (flush,
//! close_notify, close) before the reactor closes the raw connections.
//!
//! The registry is per thread (a reactor is), keyed by the reactor, and
//! holds only weak references: it keeps nothing alive.

use super::session::TlsSession;
use crate::reactor::{Inner, Phase, Reactor, SystemEvent};
use crate::transport::TransportBackend;
use std::cell::RefCell;
use std::rc::{Rc, Weak};

struct Sessions {
    reactor: Weak<Inner>,
    /// A trigger is registered for the next shutdown.
    armed: bool,
    live: Vec<Weak<TlsSession>>,
    /// `live.len()` after the last sweep of dead entries.
    swept: usize,
}

thread_local! {
    static REGISTRY: RefCell<Vec<Sessions>> = const { RefCell::new(Vec::new()) };
}

/// Remembers `session` so that `reactor`'s shutdown closes it cleanly.
pub(crate) fn track(reactor: &Reactor, session: &Rc<TlsSession>) {
    let key = reactor.downgrade();
    let arm = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.retain(|s| s.reactor.strong_count() > 0);
        let index = match r.iter().position(|s| Weak::ptr_eq(&s.reactor, &key)) {
            Some(i) => i,
            None => {
                r.push(Sessions {
                    reactor: key.clone(),
                    armed: false,
                    live: Vec::new(),
                    swept: 0,
                });
                r.len() - 1
            }
        };
        let entry = &mut r[index];
        // Sweep closed sessions now and then: amortised constant time.
        if entry.live.len() >= 2 * entry.swept.max(32) {
            entry.live.retain(|s| s.strong_count() > 0);
            entry.swept = entry.live.len();
        }
        entry.live.push(Rc::downgrade(session));
        !std::mem::replace(&mut entry.armed, true)
    });
    if arm {
        reactor.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |_guard| {
            close_all(&key)
        });
    }
}

fn close_all(key: &Weak<Inner>) {
    let live = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        match r.iter_mut().find(|s| Weak::ptr_eq(&s.reactor, key)) {
            Some(entry) => {
                entry.armed = false;
                entry.swept = 0;
                std::mem::take(&mut entry.live)
            }
            None => Vec::new(),
        }
    });
    for session in live.iter().filter_map(Weak::upgrade) {
        session.lose_connection();
    }
}
