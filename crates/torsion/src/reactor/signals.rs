//! SIGINT and SIGTERM as poller events.
//!
//! signal-hook writes a byte to a socket pair from its signal handler (the
//! self-pipe trick); the read end sits in the poller like any socket, so a
//! signal becomes an ordinary readiness event handled on the reactor
//! thread, where it is safe to start the shutdown sequence.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;

pub(crate) struct SignalPipe {
    read: mio::net::UnixStream,
    ids: Vec<signal_hook::SigId>,
}

impl SignalPipe {
    pub(crate) fn new() -> io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut ids = Vec::new();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            ids.push(signal_hook::low_level::pipe::register(
                sig,
                write.try_clone()?,
            )?);
        }
        Ok(SignalPipe {
            read: mio::net::UnixStream::from_std(read),
            ids,
        })
    }

    pub(crate) fn source(&mut self) -> &mut mio::net::UnixStream {
        &mut self.read
    }

    /// Reads every pending notification; `true` if there was any.
    pub(crate) fn drain(&mut self) -> bool {
        let mut buf = [0u8; 64];
        let mut any = false;
        loop {
            match self.read.read(&mut buf) {
                Ok(0) => return any,
                Ok(_) => any = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return any,
            }
        }
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
