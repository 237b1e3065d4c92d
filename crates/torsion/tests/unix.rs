//! Unix stream sockets over real sockets in a temporary directory.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;
use torsion::{Address, Reactor, UnixConnect, UnixListen};

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("torsion-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn echo_over_a_unix_socket_with_file_mode() {
    let dir = TempDir::new("echo");
    let path = dir.path("echo.sock");
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let port = reactor
        .listen_unix(UnixListen::new(&path).mode(0o640), move |_: &Address| {
            Scripted::echo(&l)
        })
        .unwrap();
    assert_eq!(port.address(), Address::Unix(Some(path.clone())));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let payload = random_bytes(300_000, 3);
    let (p, sp) = (payload.clone(), path.clone());
    let t = thread::spawn(move || {
        let s = UnixStream::connect(&sp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            w.write_all(&p).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        let mut r = s;
        r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    assert!(t.join().unwrap() == payload);
    assert_eq!(lost(&log), Some("clean"));
    port.stop_listening();
    assert!(!path.exists(), "the socket file outlived the port");
}

#[test]
fn a_stale_socket_file_does_not_block_a_restart() {
    let dir = TempDir::new("stale");
    let path = dir.path("s.sock");
    // A listener that "died": its file stays, nobody listens.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_unix(UnixListen::new(&path), |_: &Address| {
            Scripted::new(&Log::default())
        })
        .unwrap();
    assert!(port.is_listening());
    UnixStream::connect(&path).unwrap();
}

#[test]
fn a_live_listener_is_not_displaced() {
    let dir = TempDir::new("live");
    let path = dir.path("s.sock");
    let _live = UnixListener::bind(&path).unwrap();
    let reactor = Reactor::new().unwrap();
    let err = reactor
        .listen_unix(UnixListen::new(&path), |_: &Address| {
            Scripted::new(&Log::default())
        })
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(path.exists());
}

#[test]
fn a_regular_file_in_the_way_is_an_error_not_deleted() {
    let dir = TempDir::new("file");
    let path = dir.path("not-a-socket");
    std::fs::write(&path, b"precious").unwrap();
    let reactor = Reactor::new().unwrap();
    assert!(reactor
        .listen_unix(UnixListen::new(&path), |_: &Address| {
            Scripted::new(&Log::default())
        })
        .is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn connect_unix_and_half_close_both_ways() {
    let dir = TempDir::new("client");
    let path = dir.path("c.sock");
    let reactor = Reactor::new().unwrap();
    let server_log = Log::default();
    let sl = server_log.clone();
    let _port = reactor
        .listen_unix(UnixListen::new(&path), move |_: &Address| {
            Scripted::new(&sl).made(|t| {
                t.write(b"server done");
                t.half_close();
            })
        })
        .unwrap();
    let client_log = Log::default();
    let cl = client_log.clone();
    let connector = reactor.connect_unix(UnixConnect::new(&path), move |_: &Address| {
        Scripted::new(&cl).keep_writing_on_eof().data(|t, _| {
            t.write(b"client reply");
            t.lose_connection();
        })
    });
    spin_until(&reactor, || {
        lost_count(&client_log) == 1 && lost_count(&server_log) == 1
    });
    assert_eq!(data_of(&client_log), b"server done");
    assert_eq!(data_of(&server_log), b"client reply");
    assert_eq!(lost(&client_log), Some("clean"));
    assert_eq!(lost(&server_log), Some("clean"));
    assert!(!connector.is_connected());
}

#[test]
fn connecting_to_a_missing_socket_fails() {
    let dir = TempDir::new("missing");
    let reactor = Reactor::new().unwrap();
    let failed = std::rc::Rc::new(std::cell::RefCell::new(None));
    let f = failed.clone();
    struct Recorder(std::rc::Rc<std::cell::RefCell<Option<String>>>);
    impl torsion::ClientFactory for Recorder {
        fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn torsion::Protocol>> {
            None
        }
        fn client_connection_failed(&mut self, _: &torsion::Connector, e: &torsion::ConnectError) {
            *self.0.borrow_mut() = Some(e.to_string());
        }
    }
    reactor.connect_unix(UnixConnect::new(dir.path("nobody.sock")), Recorder(f));
    spin_until(&reactor, || failed.borrow().is_some());
    assert!(failed.borrow().as_ref().unwrap().contains("No such file"));
}
