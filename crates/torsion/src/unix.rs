//! Unix stream sockets: listening and connecting.
//!
//! A Unix listening socket is a file. If a previous process died without
//! removing it, binding fails with "address in use" although nobody
//! listens; [`Reactor::listen_unix`] tells the two apart by trying to
//! connect: a refused connection means the file is stale, and it is
//! removed. A live listener is never displaced. The file is removed when
//! the port stops listening.

use crate::address::Address;
use crate::connector::{Connector, Target};
use crate::listener::{ListenSocket, Listener, ListeningPort};
use crate::protocol::{ClientFactory, Factory};
use crate::reactor::Reactor;
use crate::tcp::DEFAULT_BACKLOG;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where and how to listen on a Unix socket.
///
/// ```
/// use torsion::UnixListen;
/// let l = UnixListen::new("/run/torsion.sock").mode(0o660);
/// # let _ = l;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixListen {
    /// The socket file's path.
    pub path: PathBuf,
    /// The socket file's permission bits; the umask decides if `None`.
    pub mode: Option<u32>,
    /// The listen backlog.
    pub backlog: u32,
}

impl UnixListen {
    /// Listen at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UnixListen {
            path: path.into(),
            mode: None,
            backlog: DEFAULT_BACKLOG,
        }
    }

    /// Sets the socket file's permission bits (for example `0o660`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Sets the listen backlog.
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }
}

/// Where and how to connect to a Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixConnect {
    /// The socket file's path.
    pub path: PathBuf,
    /// Give up if not connected within this time.
    pub timeout: Option<Duration>,
}

impl UnixConnect {
    /// Connect to the socket at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UnixConnect {
            path: path.into(),
            timeout: None,
        }
    }

    /// Sets a timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Removes `path` if it is a socket file nobody listens on.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by a listening process", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale socket file");
            std::fs::remove_file(path)
        }
        Err(e) => Err(e),
    }
}

impl Reactor {
    /// Listens on a Unix stream socket.
    ///
    /// ```
    /// use torsion::{Address, Protocol, Reactor, UnixListen};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let dir = std::env::temp_dir().join(format!("torsion-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let reactor = Reactor::new().unwrap();
    /// let port = reactor.listen_unix(UnixListen::new(dir.join("s.sock")).mode(0o600), |_: &Address| Nop).unwrap();
    /// port.stop_listening(); // removes the socket file
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn listen_unix(
        &self,
        listen: UnixListen,
        factory: impl Factory,
    ) -> io::Result<ListeningPort> {
        remove_stale_socket(&listen.path)?;
        let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        socket.bind(&socket2::SockAddr::unix(&listen.path)?)?;
        if let Some(mode) = listen.mode {
            if let Err(e) =
                std::fs::set_permissions(&listen.path, std::fs::Permissions::from_mode(mode))
            {
                let _ = std::fs::remove_file(&listen.path);
                return Err(e);
            }
        }
        if let Err(e) = socket.listen(listen.backlog.min(i32::MAX as u32) as i32) {
            let _ = std::fs::remove_file(&listen.path);
            return Err(e);
        }
        let std_listener: std::os::unix::net::UnixListener = socket.into();
        let socket = mio::net::UnixListener::from_std(std_listener);
        let address = Address::Unix(Some(listen.path.clone()));
        Listener::start(
            self,
            ListenSocket::Unix(socket),
            address,
            Box::new(factory),
            Some(listen.path),
        )
    }

    /// Connects to a Unix stream socket.
    pub fn connect_unix(&self, connect: UnixConnect, factory: impl ClientFactory) -> Connector {
        let target = Target::Unix { path: connect.path };
        let connector = Connector::new(self, target, connect.timeout, Box::new(factory));
        connector.connect();
        connector
    }
}
