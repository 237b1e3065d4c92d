//! The TLS session (`torsion::tls`) fed hostile records by its peer.
//!
//! Each run makes a server connection the way an `ssl:` endpoint does
//! ([`TlsFactory`] over an accepted connection, here a
//! [`StringTransport`] on a [`MemoryReactor`]), completes a real rustls
//! handshake with an in-memory rustls client (the certificate is made
//! once per process with rcgen), then plays the input as what the peer
//! does next.
//!
//! Input: one byte of flags (bit 0: the client speaks TLS 1.2, else 1.3;
//! bit 1: no handshake, every byte goes to the server raw from the start;
//! bit 2: the server's application echoes what it reads), then
//! operations of a kind byte, a length byte and that many bytes: `0` the
//! real client sends them as application data, `1` they go to the server
//! as raw ciphertext (records, fragments of records, garbage), `2` the
//! client sends close_notify, `3` the peer ends the stream. Checked:
//!
//! * the application reads a prefix of what the real client sent —
//!   nothing forged, nothing reordered — and the client reads back a
//!   prefix of what the application echoed;
//! * a whole record forged by the peer after the handshake makes the
//!   session fail and close; once it has, nothing more is delivered;
//! * what the server writes, and the heap one read makes it allocate,
//!   stay within bounds proportional to the input;
//! * when the stream ends the application is told, once.

use crate::alloc;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use torsion::testing::{MemoryReactor, StringTransport};
use torsion::tls::rustls::pki_types::{CertificateDer, ServerName};
use torsion::tls::rustls::{self, ClientConfig, ClientConnection, RootCertStore};
use torsion::tls::{Identity, ServerTls, TlsFactory};
use torsion::{Address, ConnectionLost, Protocol, Transport};

/// The server's certificate and key (PEM), and the certificate (DER).
struct Pki {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("rcgen makes a certificate");
        Pki {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            cert_der: made.cert.der().clone(),
        }
    })
}

fn client_config(tls12: bool) -> Arc<ClientConfig> {
    static CONFIGS: OnceLock<[Arc<ClientConfig>; 2]> = OnceLock::new();
    let configs = CONFIGS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots
            .add(pki().cert_der.clone())
            .expect("the certificate is a root");
        let make = |versions: &[&'static rustls::SupportedProtocolVersion]| {
            Arc::new(
                ClientConfig::builder_with_protocol_versions(versions)
                    .with_root_certificates(roots.clone())
                    .with_no_client_auth(),
            )
        };
        [
            make(&[&rustls::version::TLS13]),
            make(&[&rustls::version::TLS12]),
        ]
    });
    configs[usize::from(tls12)].clone()
}

/// The server's application: records what it reads and how it ended.
#[derive(Default)]
struct Seen {
    made: bool,
    read: Vec<u8>,
    lost: Vec<ConnectionLost>,
}

struct App {
    seen: Rc<RefCell<Seen>>,
    transport: Option<Transport>,
    echo: bool,
}

impl Protocol for App {
    fn connection_made(&mut self, t: Transport) {
        self.seen.borrow_mut().made = true;
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.seen.borrow_mut().read.extend_from_slice(data);
        if self.echo {
            if let Some(t) = &self.transport {
                t.write(data);
            }
        }
    }
    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.seen.borrow_mut().lost.push(reason);
    }
}

/// The server side under test and its peer.
struct Link {
    memory: MemoryReactor,
    server: Box<dyn Protocol>,
    st: StringTransport,
    seen: Rc<RefCell<Seen>>,
    /// `None` once the client has failed or is not used.
    client: Option<ClientConnection>,
    /// Plaintext the client sent, and read back.
    sent: Vec<u8>,
    echoed: Vec<u8>,
    /// Bytes given to the server, and written by it.
    fed: usize,
    written: usize,
}

impl Link {
    fn new(tls12: bool, echo: bool, with_client: bool) -> Link {
        let memory = MemoryReactor::new().expect("a memory reactor");
        let p = pki();
        let identity = Identity::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes())
            .expect("rcgen's certificate and key load");
        let seen = Rc::new(RefCell::new(Seen::default()));
        let s = seen.clone();
        let factory = TlsFactory::new(
            &memory.reactor(),
            ServerTls::new(identity),
            move |_: &Address| App {
                seen: s.clone(),
                transport: None,
                echo,
            },
        );
        let port = memory.listen_tcp(443, factory).expect("a memory listen");
        let (server, st) = port
            .accept_string(Address::Memory("fuzz".into()))
            .expect("the factory builds a protocol");
        let client = with_client.then(|| {
            let name = ServerName::try_from("localhost").expect("a server name");
            ClientConnection::new(client_config(tls12), name).expect("a client connection")
        });
        Link {
            memory,
            server,
            st,
            seen,
            client,
            sent: Vec::new(),
            echoed: Vec::new(),
            fed: 0,
            written: 0,
        }
    }

    /// Gives `data` to the server as one read, checking what that read
    /// allocates.
    fn feed(&mut self, data: &[u8]) {
        if data.is_empty() || self.st.lost_reason().is_some() {
            return;
        }
        self.fed += data.len();
        let before = alloc::live();
        alloc::reset_peak();
        self.server.data_received(data);
        let _ = self.memory.run_until_idle();
        let grew = alloc::peak() - before;
        // rustls's records are at most 16 KiB plus overhead, and the
        // session's plaintext buffer is 64 KiB, lent per thread.
        let limit = 256 * 1024 + 4 * data.len() as isize;
        assert!(
            grew <= limit,
            "a read of {} bytes made the server allocate {grew}",
            data.len()
        );
    }

    /// Client → server: what the client has to send.
    fn client_to_server(&mut self) {
        let Some(c) = self.client.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while c.wants_write() {
            if c.write_tls(&mut out).is_err() {
                break;
            }
        }
        self.feed(&out);
    }

    /// Server → client: what the server wrote; the client fails (and is
    /// dropped) if the server's bytes are not TLS it accepts.
    fn server_to_client(&mut self) {
        let out = self.st.take();
        self.written += out.len();
        let Some(c) = self.client.as_mut() else {
            return;
        };
        let mut rest = &out[..];
        while !rest.is_empty() {
            match c.read_tls(&mut rest) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if c.process_new_packets().is_err() {
                self.client = None;
                return;
            }
            let mut buf = [0u8; 4096];
            loop {
                match c.reader().read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.echoed.extend_from_slice(&buf[..n]),
                }
            }
        }
    }

    fn exchange(&mut self) {
        for _ in 0..8 {
            self.client_to_server();
            self.server_to_client();
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&flags, mut ops)) = data.split_first() else {
        return;
    };
    let (tls12, raw_only, echo) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
    let mut link = Link::new(tls12, echo, !raw_only);
    if !raw_only {
        link.exchange();
        let done = link.client.as_ref().is_some_and(|c| !c.is_handshaking());
        assert!(
            done && link.seen.borrow().made,
            "the in-memory handshake did not complete"
        );
    }
    let mut closing_read = None;
    // The stream is at a record boundary: nothing raw has gone before.
    let mut aligned = !raw_only;
    while let [kind, len, rest @ ..] = ops {
        let n = usize::from(*len).min(rest.len());
        let (bytes, next) = rest.split_at(n);
        ops = next;
        match kind & 3 {
            0 => {
                if let Some(c) = link.client.as_mut() {
                    if c.writer().write_all(bytes).is_ok() {
                        link.sent.extend_from_slice(bytes);
                    }
                }
                link.client_to_server();
            }
            1 => {
                link.feed(bytes);
                if aligned && forged_record(bytes) {
                    assert!(
                        link.st.lose_connection_called() || link.st.aborted(),
                        "a whole forged record {:02x?} left the session open",
                        &bytes[..5]
                    );
                }
                aligned &= bytes.is_empty();
            }
            2 => {
                if let Some(c) = link.client.as_mut() {
                    c.send_close_notify();
                }
                link.client_to_server();
            }
            _ => break,
        }
        link.server_to_client();
        check(&link, &mut closing_read);
    }
    // The stream ends: end of file, then the connection is gone.
    if link.st.lost_reason().is_none() {
        let _ = link.server.read_connection_lost();
        let _ = link.memory.run_until_idle();
        link.st.finish(&mut *link.server, ConnectionLost::Clean);
        let _ = link.memory.run_until_idle();
    }
    link.server_to_client();
    check(&link, &mut closing_read);
    let seen = link.seen.borrow();
    if seen.made {
        assert_eq!(
            seen.lost.len(),
            1,
            "the application heard of the end {} times",
            seen.lost.len()
        );
    } else {
        assert!(seen.read.is_empty() && seen.lost.is_empty());
    }
}

/// Whether `bytes` begin with a whole record (header and body) that no
/// one but the client could have encrypted: after the handshake every
/// such record must fail and close the session. ChangeCipherSpec is left
/// out, as a TLS 1.3 peer may send it in compatibility mode.
fn forged_record(bytes: &[u8]) -> bool {
    match bytes {
        [kind, _, _, hi, lo, body @ ..] => {
            *kind != 20 && usize::from(u16::from_be_bytes([*hi, *lo])) <= body.len()
        }
        _ => false,
    }
}

fn check(link: &Link, closing_read: &mut Option<usize>) {
    let seen = link.seen.borrow();
    assert!(
        link.sent.starts_with(&seen.read),
        "the application read {} bytes that the client did not send in that order",
        seen.read.len()
    );
    if !seen.read.is_empty() {
        assert!(seen.made, "data before connection_made");
    }
    let echoed = if seen.read.is_empty() {
        &[][..]
    } else {
        &seen.read[..]
    };
    assert!(
        echoed.starts_with(&link.echoed),
        "the client read what was not echoed"
    );
    let limit = 4 * link.fed + 16 * 1024;
    assert!(
        link.written <= limit,
        "the server wrote {} bytes for {} read",
        link.written,
        link.fed
    );
    if link.st.lose_connection_called() || link.st.aborted() {
        match closing_read {
            Some(n) => assert_eq!(
                *n,
                seen.read.len(),
                "data delivered after the session closed"
            ),
            None => *closing_read = Some(seen.read.len()),
        }
    }
}
