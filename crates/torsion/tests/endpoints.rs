//! Endpoint strings driving real listens and connects.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use torsion::{endpoints, Address, Reactor};

#[test]
fn tcp_server_and_client_endpoints_talk() {
    let reactor = Reactor::new().unwrap();
    let server_log = Log::default();
    let sl = server_log.clone();
    let endpoint = endpoints::server(&reactor, "tcp:0:interface=127.0.0.1:backlog=16").unwrap();
    let port = endpoint
        .listen(move |_: &Address| Scripted::echo(&sl))
        .unwrap();
    let addr = port.address().socket_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let client_log = Log::default();
    let cl = client_log.clone();
    let description = format!(
        "tcp:host=127.0.0.1:port={}:timeout=5:bindAddress=127.0.0.1",
        addr.port()
    );
    let client = endpoints::client(&reactor, &description).unwrap();
    let connector =
        client.connect(move |_: &Address| Scripted::new(&cl).made(|t| t.write(b"via endpoints")));
    spin_until(&reactor, || data_of(&client_log) == b"via endpoints");
    connector.disconnect();
    spin_until(&reactor, || lost_count(&server_log) == 1);
}

#[test]
fn unix_server_endpoint_sets_the_mode() {
    let dir = std::env::temp_dir().join(format!("torsion-ep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ep.sock");
    let reactor = Reactor::new().unwrap();
    let description = format!("unix:{}:mode=660", path.display());
    let port = endpoints::server(&reactor, &description)
        .unwrap()
        .listen(|_: &Address| Scripted::new(&Log::default()))
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let log = Log::default();
    let l = log.clone();
    let client = endpoints::client(&reactor, &format!("unix:path={}", path.display())).unwrap();
    let c = client.connect(move |_: &Address| Scripted::new(&l));
    spin_until(&reactor, || c.is_connected());
    port.stop_listening();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_strings_name_the_bad_part() {
    let reactor = Reactor::new().unwrap();
    for (bad, part) in [
        ("", "empty"),
        ("udp:53", "'udp'"),
        ("tcp:http", "'http'"),
        ("tcp:70000", "'70000'"),
        ("tcp:80:colour=blue", "'colour'"),
        ("tcp:80:interface=nowhere", "'nowhere'"),
        ("unix:/tmp/x:mode=999", "'999'"),
        ("ssl:443", "TLS"),
    ] {
        let err = endpoints::server(&reactor, bad).unwrap_err().to_string();
        assert!(err.contains(part), "{bad:?} gave {err:?}");
    }
    for (bad, part) in [
        ("tcp:host=example.org", "'port'"),
        ("tcp:host=h:port=1:timeout=soon", "'soon'"),
        ("unix:path=/p:color=1", "'color'"),
    ] {
        let err = endpoints::client(&reactor, bad).unwrap_err().to_string();
        assert!(err.contains(part), "{bad:?} gave {err:?}");
    }
}

#[test]
fn endpoints_hand_back_deferreds_of_the_port_and_the_protocol() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use torsion::{Protocol, Transport};

    #[derive(Default)]
    struct Talker {
        transport: Option<Transport>,
        heard: Vec<u8>,
    }
    impl Protocol for Talker {
        fn connection_made(&mut self, t: Transport) {
            self.transport = Some(t);
        }
        fn data_received(&mut self, d: &[u8]) {
            self.heard.extend_from_slice(d);
        }
    }

    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let port = Rc::new(RefCell::new(None));
    let p = port.clone();
    endpoints::server(&reactor, "tcp:0:interface=127.0.0.1")
        .unwrap()
        .listen_deferred(move |_: &Address| Scripted::echo(&l))
        .add_callback(move |listening| *p.borrow_mut() = Some(listening));
    let addr = port
        .borrow()
        .as_ref()
        .unwrap()
        .address()
        .socket_addr()
        .unwrap();

    let talker = Rc::new(RefCell::new(None));
    let t = talker.clone();
    endpoints::client(&reactor, &format!("tcp:127.0.0.1:{}", addr.port()))
        .unwrap()
        .connect_protocol(Talker::default)
        .add_callback(move |protocol| {
            protocol.borrow().transport.as_ref().unwrap().write(b"ping");
            *t.borrow_mut() = Some(protocol);
        });
    spin_until(&reactor, || {
        talker
            .borrow()
            .as_ref()
            .is_some_and(|p| p.borrow().heard == b"ping")
    });

    // A refused connection fails the Deferred with the ConnectError.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = Rc::new(RefCell::new(false));
    let r = refused.clone();
    endpoints::client(&reactor, &format!("tcp:127.0.0.1:{free}"))
        .unwrap()
        .connect_protocol(Talker::default)
        .add_errback(move |f| {
            *r.borrow_mut() = f.check::<torsion::ConnectError>();
            Err(f)
        })
        .add_errback(|_| Ok(Rc::new(RefCell::new(Talker::default()))));
    spin_until(&reactor, || *refused.borrow());
}

#[test]
fn a_timeout_too_long_for_the_clock_connects_instead_of_panicking() {
    let reactor = Reactor::new().unwrap();
    let server_log = Log::default();
    let sl = server_log.clone();
    let (_port, addr) = listen(&reactor, move || Scripted::echo(&sl));
    for host in ["127.0.0.1", "localhost"] {
        let description = format!(
            "tcp:host={host}:port={}:timeout=18446744073709551615",
            addr.port()
        );
        let client_log = Log::default();
        let cl = client_log.clone();
        let client = endpoints::client(&reactor, &description).unwrap();
        let connector =
            client.connect(move |_: &Address| Scripted::new(&cl).made(|t| t.write(b"hi")));
        spin_until(&reactor, || data_of(&client_log) == b"hi");
        connector.disconnect();
        spin_until(&reactor, || lost_count(&client_log) == 1);
    }
}
