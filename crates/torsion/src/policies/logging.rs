//! Traffic logging: a hexdump of every byte each way, for debugging.

use super::wrapper::{ConnectionPolicy, Policy, Wrapped, WrappingFactory};
use crate::address::Address;
use crate::protocol::ConnectionLost;
use std::fmt::Write as _;

/// Formats `data` as a classic hexdump: offset, sixteen bytes in hex,
/// the same bytes as ASCII (`.` for the unprintable).
///
/// ```
/// use torsion::policies::hexdump;
/// assert_eq!(
///     hexdump(b"hello, world\r\n!"),
///     "00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0d 0a 21     |hello, world..!|\n"
/// );
/// ```
pub fn hexdump(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(16) * 78);
    for (i, row) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", i * 16);
        for j in 0..16 {
            if j == 8 {
                out.push(' ');
            }
            match row.get(j) {
                Some(b) => {
                    let _ = write!(out, " {b:02x}");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        out.extend(row.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

/// The target of the traffic log's events: enable it with a filter such
/// as `torsion::traffic=trace`.
pub const TRAFFIC_TARGET: &str = "torsion::traffic";

/// A policy that logs every byte each connection reads and writes, as a
/// hexdump at `trace` level under the [`TRAFFIC_TARGET`] target, plus one
/// line as each connection opens and closes (Twisted's
/// `TrafficLoggingFactory`). When that level is off it costs one check
/// per event.
///
/// ```
/// use torsion::policies::TrafficLog;
/// use torsion::{Address, Protocol};
/// struct Nop;
/// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
/// let factory = TrafficLog::new("echo").wrap(|_: &Address| Nop);
/// # let _ = factory;
/// ```
#[derive(Clone, Debug)]
pub struct TrafficLog {
    label: String,
    next_id: u64,
}

impl TrafficLog {
    /// Logs with `label` in every event, to tell factories apart.
    pub fn new(label: impl Into<String>) -> Self {
        TrafficLog {
            label: label.into(),
            next_id: 0,
        }
    }

    /// `factory`, its traffic logged.
    pub fn wrap<F>(self, factory: F) -> WrappingFactory<F, TrafficLog> {
        WrappingFactory::new(factory, self)
    }
}

impl Policy for TrafficLog {
    type Connection = TrafficLogConnection;

    fn admit(&mut self, peer: &Address) -> Option<TrafficLogConnection> {
        self.next_id += 1;
        Some(TrafficLogConnection {
            label: self.label.clone(),
            id: self.next_id,
            peer: peer.clone(),
        })
    }
}

/// The per-connection part of [`TrafficLog`].
#[derive(Debug)]
pub struct TrafficLogConnection {
    label: String,
    id: u64,
    peer: Address,
}

impl TrafficLogConnection {
    fn dump(&self, direction: &str, parts: &[&[u8]]) {
        if !tracing::enabled!(target: TRAFFIC_TARGET, tracing::Level::TRACE) {
            return;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let dump = hexdump(&parts.concat());
        tracing::trace!(
            target: TRAFFIC_TARGET,
            label = %self.label,
            conn = self.id,
            peer = %self.peer,
            direction,
            len,
            "\n{dump}"
        );
    }
}

impl ConnectionPolicy for TrafficLogConnection {
    fn connection_made(&mut self, _: &Wrapped) {
        tracing::trace!(target: TRAFFIC_TARGET, label = %self.label, conn = self.id, peer = %self.peer, "connection made");
    }

    fn data_received(&mut self, _: &Wrapped, data: &[u8]) {
        self.dump("in", &[data]);
    }

    fn data_written(&mut self, _: &Wrapped, data: &[&[u8]]) {
        self.dump("out", data);
    }

    fn read_connection_lost(&mut self, _: &Wrapped) {
        tracing::trace!(target: TRAFFIC_TARGET, label = %self.label, conn = self.id, "peer shut its write side");
    }

    fn connection_lost(&mut self, _: &Wrapped, reason: &ConnectionLost) {
        tracing::trace!(target: TRAFFIC_TARGET, label = %self.label, conn = self.id, %reason, "connection lost");
    }
}
