//! What a TLS endpoint needs before its first byte: certificates, keys,
//! trust roots, ALPN, and the rustls configurations built from them.
//!
//! Everything here runs once, when a server or client is configured, and
//! reports problems then: a key file that is missing, holds no key, holds a
//! key of a kind rustls cannot use, or does not match its certificate is an
//! error naming the file and the problem, not a failed handshake later.
//!
//! Only TLS 1.3 and 1.2 are enabled, with rustls's `ring` provider.
//!
//! A server made here ([`ServerTls::new`]) chooses the cipher suite by its
//! own order of preference, not the client's (rustls's
//! `ignore_client_order`): its list puts AES-256-GCM first and offers
//! nothing weak, so a client that prefers a weaker suite does not get
//! it. It resumes sessions by stateless ticket (RFC 5077 in TLS 1.2, and
//! TLS 1.3 tickets) as well as by session id: the ticket key is random,
//! made with the configuration and rotated by rustls every six hours.
//! Each [`ServerTls`] has a key of its own, so a ticket is honoured only
//! by connections served with the configuration that issued it (one
//! worker of `torsion --workers N`, each of which builds its own): a
//! client that reaches another falls back to a full handshake. It offers
//! no ALPN protocol until told which ([`ServerTls::with_alpn`]; the HTTP
//! servers offer `http/1.1`), and then refuses a client that offers ALPN
//! and shares none.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a handshake may take before the connection is dropped, unless
/// configured otherwise: a peer that connects and never completes its
/// handshake holds a socket and memory, so it does not get to do so forever.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A TLS configuration could not be built: a file is unreadable or holds
/// the wrong thing, a name is malformed, or no trust roots were found.
///
/// Every message names the file (or value) and says what is wrong with it.
///
/// ```
/// use torsion::tls::{Identity, TlsConfigError};
/// let err = Identity::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
/// assert!(matches!(err, TlsConfigError::Unreadable { .. }));
/// assert!(err.to_string().contains("'/nonexistent/key.pem'"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A file could not be read.
    #[error("cannot read TLS {what} file '{}': {reason}", path.display())]
    Unreadable {
        /// What the file should hold: `private key`, `certificate`,
        /// `certificate chain` or `trust roots`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// A file (or PEM text) was read but does not hold what it should.
    #[error("TLS {what} {}: {problem}", Origin(path.as_deref()))]
    BadContent {
        /// What the file should hold, as for [`Unreadable`](Self::Unreadable).
        what: &'static str,
        /// The file, or `None` for PEM text given in memory.
        path: Option<PathBuf>,
        /// What is wrong with it.
        problem: String,
    },
    /// A server name is neither a DNS name nor an IP address.
    #[error("bad TLS server name '{name}': expected a DNS name or an IP address")]
    BadServerName {
        /// The name as given.
        name: String,
    },
    /// No trust roots could be found to verify servers with.
    #[error("no TLS trust roots: {reason}")]
    NoTrustRoots {
        /// Why none were found.
        reason: String,
    },
    /// rustls rejected the configuration.
    #[error("TLS configuration rejected: {reason}")]
    Rejected {
        /// What rustls said.
        reason: String,
    },
}

/// Names where a PEM object came from in an error message.
struct Origin<'a>(Option<&'a Path>);

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "file '{}'", p.display()),
            None => f.write_str("(PEM text)"),
        }
    }
}

/// The crypto provider every configuration here uses: rustls's `ring`.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The protocol versions torsion speaks: TLS 1.3 and TLS 1.2, nothing older.
static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

pub(crate) fn rejected(e: rustls::Error) -> TlsConfigError {
    TlsConfigError::Rejected {
        reason: e.to_string(),
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|e| TlsConfigError::Unreadable {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn bad(what: &'static str, path: Option<&Path>, problem: impl Into<String>) -> TlsConfigError {
    TlsConfigError::BadContent {
        what,
        path: path.map(Path::to_path_buf),
        problem: problem.into(),
    }
}

fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a PEM section has no end line (expected '{}')",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "malformed PEM begin line '{}'",
            String::from_utf8_lossy(line)
        ),
        pem::Error::Base64Decode(reason) => format!("bad base64 in a PEM section: {reason}"),
        other => format!("not valid PEM: {other}"),
    }
}

/// Every certificate in PEM text, in order.
fn parse_certs(
    what: &'static str,
    path: Option<&Path>,
    text: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(what, path, pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(bad(
            what,
            path,
            "no certificate found (expected a PEM block 'BEGIN CERTIFICATE')",
        ));
    }
    Ok(certs)
}

/// The first private key in PEM text: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
fn parse_key(path: Option<&Path>, text: &[u8]) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    const WHAT: &str = "private key";
    match PrivateKeyDer::from_pem_slice(text) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let encrypted = text.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED");
            Err(bad(
                WHAT,
                path,
                if encrypted {
                    "the key is encrypted; give an unencrypted key \
                     (for example: openssl pkey -in key.pem -out plain.pem)"
                } else {
                    "no private key found (expected a PEM block 'PRIVATE KEY' (PKCS#8), \
                     'RSA PRIVATE KEY' (PKCS#1) or 'EC PRIVATE KEY' (SEC1))"
                },
            ))
        }
        Err(e) => Err(bad(WHAT, path, pem_problem(&e))),
    }
}

/// Pairs certificates with their key, checking that the key is usable and
/// matches the first certificate.
fn certified_key(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    key_path: Option<&Path>,
    cert_path: Option<&Path>,
) -> Result<CertifiedKey, TlsConfigError> {
    let signing = provider().key_provider.load_private_key(key).map_err(|e| {
        bad(
            "private key",
            key_path,
            format!("the key cannot be used for TLS ({e}); supported are RSA, ECDSA P-256/P-384 and Ed25519 keys"),
        )
    })?;
    let certified = CertifiedKey::new(certs, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        // The key could not tell its public half: nothing to compare.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(_) => Err(bad(
            "certificate",
            cert_path,
            match key_path {
                Some(k) => format!(
                    "the certificate does not belong to the private key in '{}'",
                    k.display()
                ),
                None => "the certificate does not belong to the private key".to_string(),
            },
        )),
    }
}

/// A certificate chain and its private key: what a server presents.
///
/// Build one from PEM files (or PEM text). Keys may be PKCS#8
/// (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1
/// (`BEGIN EC PRIVATE KEY`); the certificate file holds the server's
/// certificate first, then any intermediates. The key must match the
/// certificate.
#[derive(Clone)]
pub struct Identity {
    key: Arc<CertifiedKey>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.key.cert.len())
            .finish()
    }
}

impl Identity {
    /// Reads a certificate chain and a private key from PEM files. The two
    /// may be one file holding both.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError`] naming the file that is unreadable, holds no
    /// certificate or key, holds a key rustls cannot use, or whose key and
    /// certificate do not match.
    pub fn from_pem_files(
        certificate: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
    ) -> Result<Identity, TlsConfigError> {
        Identity::from_pem_files_with_chain(certificate, private_key, None)
    }

    /// Like [`from_pem_files`](Self::from_pem_files), with intermediate
    /// certificates from a further PEM file appended to the chain (Twisted's
    /// `extraCertChain`).
    ///
    /// # Errors
    ///
    /// As for [`from_pem_files`](Self::from_pem_files), and for an unreadable
    /// or certificate-less chain file.
    pub fn from_pem_files_with_chain(
        certificate: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
        extra_chain: Option<&Path>,
    ) -> Result<Identity, TlsConfigError> {
        let key_path = private_key.as_ref();
        let cert_path = certificate.as_ref();
        let key = parse_key(Some(key_path), &read_file("private key", key_path)?)?;
        let mut certs = parse_certs(
            "certificate",
            Some(cert_path),
            &read_file("certificate", cert_path)?,
        )?;
        if let Some(chain) = extra_chain {
            certs.extend(parse_certs(
                "certificate chain",
                Some(chain),
                &read_file("certificate chain", chain)?,
            )?);
        }
        let key = certified_key(certs, key, Some(key_path), Some(cert_path))?;
        Ok(Identity { key: Arc::new(key) })
    }

    /// Builds an identity from PEM text: the certificate chain, then the
    /// private key.
    ///
    /// # Errors
    ///
    /// As for [`from_pem_files`](Self::from_pem_files), without file names.
    pub fn from_pem(certificate: &[u8], private_key: &[u8]) -> Result<Identity, TlsConfigError> {
        let key = parse_key(None, private_key)?;
        let certs = parse_certs("certificate", None, certificate)?;
        let key = certified_key(certs, key, None, None)?;
        Ok(Identity { key: Arc::new(key) })
    }

    /// The certificate chain, the server's own certificate first.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.key.cert
    }
}

/// Always the same certificate.
#[derive(Debug)]
struct Single(Arc<CertifiedKey>);

impl ResolvesServerCert for Single {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Chooses a certificate by the name the client asked for (SNI), falling
/// back to another resolver (the default certificate) for other names and
/// for clients that send none.
#[derive(Debug)]
struct ByName {
    /// Lowercase names; `*.example.org` matches one label.
    names: Vec<(String, Arc<CertifiedKey>)>,
    fallback: Arc<dyn ResolvesServerCert>,
}

impl ByName {
    fn find(&self, asked: &str) -> Option<Arc<CertifiedKey>> {
        let asked = asked.trim_end_matches('.').to_ascii_lowercase();
        let exact = self.names.iter().find(|(n, _)| *n == asked);
        let wildcard = || {
            let (_, parent) = asked.split_once('.')?;
            self.names
                .iter()
                .find(|(n, _)| n.strip_prefix("*.") == Some(parent))
        };
        exact.or_else(wildcard).map(|(_, k)| k.clone())
    }
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(key) = hello.server_name().and_then(|n| self.find(n)) {
            return Some(key);
        }
        self.fallback.resolve(hello)
    }
}

/// The TLS settings of a server: its certificates (one default, more
/// chosen by SNI), ALPN protocols, and handshake timeout.
///
/// Cheap to clone; every connection shares one rustls configuration.
///
/// ```no_run
/// use torsion::tls::{Identity, ServerTls};
/// let tls = ServerTls::new(Identity::from_pem_files("cert.pem", "key.pem")?)
///     .with_name("mail.example.org", Identity::from_pem_files("mail.pem", "mail-key.pem")?)?
///     .with_alpn(&[b"h2", b"http/1.1"]);
/// # Ok::<(), torsion::tls::TlsConfigError>(())
/// ```
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    handshake_timeout: Option<Duration>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("alpn", &AlpnList(&self.config.alpn_protocols))
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

/// Shows ALPN protocol names as text where they are text.
struct AlpnList<'a>(&'a [Vec<u8>]);

impl fmt::Debug for AlpnList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|p| String::from_utf8_lossy(p)))
            .finish()
    }
}

impl ServerTls {
    /// A server that presents `identity` to every client.
    pub fn new(identity: Identity) -> ServerTls {
        ServerTls::with_resolver(Arc::new(Single(identity.key)))
    }

    fn with_resolver(resolver: Arc<dyn ResolvesServerCert>) -> ServerTls {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .expect("rustls's ring provider supports TLS 1.2 and 1.3");
        let mut config = builder.with_no_client_auth().with_cert_resolver(resolver);
        // The server's order of preference, as testssl expects.
        config.ignore_client_order = true;
        // Stateless tickets besides session ids; fails only if the system
        // cannot give random bytes, and then resumption by id remains.
        match rustls::crypto::ring::Ticketer::new() {
            Ok(ticketer) => config.ticketer = ticketer,
            Err(e) => tracing::warn!(error = %e, "TLS session tickets off: no ticket key"),
        }
        ServerTls {
            config: Arc::new(config),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Wraps a rustls configuration made by hand (client certificates,
    /// session tickets, a custom resolver...). Its protocol versions and
    /// provider are used as they are.
    pub fn from_config(config: Arc<ServerConfig>) -> ServerTls {
        ServerTls {
            config,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Presents `identity` to clients that ask for `name` by SNI. `name` is
    /// a DNS name, or `*.` and a DNS name to match any one label there.
    /// Other clients get the certificates chosen before.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::BadServerName`] if `name` is not a DNS name.
    pub fn with_name(
        mut self,
        name: &str,
        identity: Identity,
    ) -> Result<ServerTls, TlsConfigError> {
        let plain = name.strip_prefix("*.").unwrap_or(name);
        if !matches!(ServerName::try_from(plain), Ok(ServerName::DnsName(_))) {
            return Err(TlsConfigError::BadServerName {
                name: name.to_string(),
            });
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut config = (*self.config).clone();
        config.cert_resolver = Arc::new(ByName {
            names: vec![(name, identity.key)],
            fallback: config.cert_resolver.clone(),
        });
        self.config = Arc::new(config);
        Ok(self)
    }

    /// Offers these ALPN protocols, most preferred first (`h2`,
    /// `http/1.1`). A client that offers ALPN and shares none of them is
    /// refused; one that offers none is served without ALPN.
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> ServerTls {
        let mut config = (*self.config).clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        self.config = Arc::new(config);
        self
    }

    /// Sets how long a handshake may take (`None`: forever). The default is
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> ServerTls {
        self.handshake_timeout = timeout;
        self
    }

    /// The rustls configuration connections are made with.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    pub(crate) fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }
}

/// The TLS settings of a client: which roots it trusts, the ALPN protocols
/// it offers, and its handshake timeout. Servers are verified against the
/// trust roots and must present a certificate for the name connected to.
///
/// Cheap to clone; connections share one rustls configuration.
///
/// ```no_run
/// use torsion::tls::ClientTls;
/// let public = ClientTls::system_roots()?.with_alpn(&[b"http/1.1"]);
/// let private = ClientTls::trust_roots_pem_file("ca.pem")?;
/// # Ok::<(), torsion::tls::TlsConfigError>(())
/// ```
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    handshake_timeout: Option<Duration>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("alpn", &AlpnList(&self.config.alpn_protocols))
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

/// The system's trust roots, read once per process.
fn system_store() -> Result<Arc<RootCertStore>, TlsConfigError> {
    static STORE: OnceLock<Result<Arc<RootCertStore>, TlsConfigError>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let mut reason = "the system certificate store holds no usable certificate \
                                  (install ca-certificates, or trust a CA with trustRoots=)"
                    .to_string();
                if let Some(e) = found.errors.first() {
                    reason.push_str(&format!("; first error: {e}"));
                }
                return Err(TlsConfigError::NoTrustRoots { reason });
            }
            Ok(Arc::new(store))
        })
        .clone()
}

impl ClientTls {
    /// Trusts the operating system's certificate authorities (read with
    /// `rustls-native-certs`, once per process; `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` override where they are looked for).
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::NoTrustRoots`] when the system store holds no
    /// usable certificate.
    pub fn system_roots() -> Result<ClientTls, TlsConfigError> {
        Ok(ClientTls::with_roots(system_store()?))
    }

    /// Trusts only the certificate authorities in a PEM file.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError`] naming the file if it is unreadable or holds no
    /// usable certificate.
    pub fn trust_roots_pem_file(path: impl AsRef<Path>) -> Result<ClientTls, TlsConfigError> {
        let path = path.as_ref();
        let text = read_file("trust roots", path)?;
        ClientTls::roots_from(Some(path), &text)
    }

    /// Trusts only the certificate authorities in PEM text.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::BadContent`] if the text holds no usable
    /// certificate.
    pub fn trust_roots_pem(pem: &[u8]) -> Result<ClientTls, TlsConfigError> {
        ClientTls::roots_from(None, pem)
    }

    fn roots_from(path: Option<&Path>, text: &[u8]) -> Result<ClientTls, TlsConfigError> {
        let certs = parse_certs("trust roots", path, text)?;
        let mut store = RootCertStore::empty();
        for cert in certs {
            store.add(cert).map_err(|e| {
                bad(
                    "trust roots",
                    path,
                    format!("a certificate cannot be used as a trust root: {e}"),
                )
            })?;
        }
        Ok(ClientTls::with_roots(Arc::new(store)))
    }

    fn with_roots(roots: Arc<RootCertStore>) -> ClientTls {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .expect("rustls's ring provider supports TLS 1.2 and 1.3");
        let config = builder.with_root_certificates(roots).with_no_client_auth();
        ClientTls {
            config: Arc::new(config),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Wraps a rustls configuration made by hand (client certificates, a
    /// custom verifier...).
    pub fn from_config(config: Arc<ClientConfig>) -> ClientTls {
        ClientTls {
            config,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Offers these ALPN protocols, most preferred first. The server's
    /// choice is [`negotiated_protocol`](super::negotiated_protocol).
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> ClientTls {
        let mut config = (*self.config).clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        self.config = Arc::new(config);
        self
    }

    /// Sets how long a handshake may take (`None`: forever). The default is
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> ClientTls {
        self.handshake_timeout = timeout;
        self
    }

    /// The rustls configuration connections are made with.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    pub(crate) fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }
}

/// Checks a name to verify a server's certificate against: a DNS name or
/// an IP address literal (brackets around IPv6 allowed).
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, TlsConfigError> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare)
        .map(|n| n.to_owned())
        .map_err(|_| TlsConfigError::BadServerName {
            name: name.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_accept_dns_names_and_ip_literals() {
        assert!(server_name("example.org").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("::1").is_ok());
        let err = server_name("not a name").unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad TLS server name 'not a name': expected a DNS name or an IP address"
        );
    }

    #[test]
    fn pem_text_without_a_key_says_what_it_expected() {
        let err = Identity::from_pem(b"", b"hello").unwrap_err();
        assert!(err.to_string().contains("no private key found"), "{err}");
        assert!(err.to_string().contains("(PEM text)"), "{err}");
        let err = Identity::from_pem(
            b"",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
    }

    #[test]
    fn trust_roots_need_a_certificate() {
        let err = ClientTls::trust_roots_pem(b"nothing here").unwrap_err();
        assert!(err.to_string().contains("no certificate found"), "{err}");
    }
}
