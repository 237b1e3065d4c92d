//! Addresses of the two ends of a connection.
//!
//! One enum covers every kind of transport torsion has, so a protocol can
//! log or compare its peer without knowing whether it runs over TCP, a Unix
//! socket or a test double.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where one end of a connection is.
///
/// ```
/// use torsion::Address;
/// let a = Address::Tcp("127.0.0.1:8080".parse().unwrap());
/// assert_eq!(a.to_string(), "127.0.0.1:8080");
/// assert_eq!(a.socket_addr().map(|s| s.port()), Some(8080));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// An IPv4 or IPv6 socket address.
    Tcp(SocketAddr),
    /// A Unix socket with a path in the file system; `None` for an unnamed
    /// socket (the usual client side of a Unix connection).
    Unix(Option<PathBuf>),
    /// An in-memory endpoint of a test double, named by the test.
    Memory(String),
}

impl Address {
    /// The IP socket address, for TCP addresses.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Address::Tcp(a) => Some(*a),
            _ => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            Address::Unix(None) => write!(f, "unix:(unnamed)"),
            Address::Memory(name) => write!(f, "memory:{name}"),
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Self {
        Address::Tcp(a)
    }
}
