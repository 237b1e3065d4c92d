//! Endpoint descriptions: one configuration language for every server and
//! client.
//!
//! A program built on torsion should not invent its own way of saying where
//! to listen or where to connect. Following Twisted's `serverFromString` and
//! `clientFromString`, every server and client is configured with a short
//! *endpoint string* such as `tcp:8080`, `tcp6:443:interface=\:\:1`,
//! `unix:/run/app.sock:mode=660`, `ssl:443:privateKey=key.pem:certKey=cert.pem`,
//! `tcp:host=example.com:port=80:timeout=2.5` or `tls:example.com:443`.
//! Command-line flags, configuration files and tests all speak this one
//! language, and a program that gains a new kind of endpoint gets it
//! everywhere at once. This module turns such strings into typed
//! descriptions ([`ServerDescription`], [`ClientDescription`]) with
//! [`parse_server`] and [`parse_client`], and prints descriptions back as
//! canonical strings through their [`Display`](fmt::Display) impls.
//!
//! # Grammar
//!
//! The grammar is Twisted's:
//!
//! * The string is split into fields on every `:` that is not escaped. A
//!   backslash escapes the character after it, whatever it is: `\:` is a
//!   literal colon, `\=` a literal equals sign, `\\` a backslash. A lone
//!   backslash at the very end is an error.
//! * The first field is the *kind*: `tcp`, `tcp6`, `unix`, and for TLS
//!   `ssl` (servers) and `tls` (clients) (lowercase, case matters).
//! * Every other field is either `key=value`, split at its first unescaped
//!   `=`, or a *positional argument* when it has no unescaped `=`.
//! * Positional arguments fill the kind's positional parameters in order
//!   (`port` for a TCP or SSL server, `host` then `port` for a TCP or TLS
//!   client, the path for UNIX sockets). Naming one parameter twice, by key or both
//!   positionally and by key, is an error, as are too many positional
//!   arguments, keys the kind does not know and empty fields.
//!
//! IPv6 addresses contain colons, so in an endpoint string their colons must
//! be escaped: `tcp6:8080:interface=\:\:1`.
//!
//! # How parsing works
//!
//! Parsing runs in three steps, and the first error found is returned:
//!
//! 1. *Tokenizing* splits the string into fields and undoes the escapes,
//!    remembering for each field whether it was `key=value` or positional.
//! 2. *Collecting* looks the kind up, assigns each field to one of the
//!    kind's parameters, and rejects unknown keys, duplicates and extra
//!    positional arguments.
//! 3. *Converting* checks that required parameters are there and turns each
//!    value into its type (port, IP address, file mode, duration, flag,
//!    path), naming the parameter and the offending value when one is
//!    malformed.
//!
//! Parsing reads no file: an `ssl:` description names its key and
//! certificate files, and [`endpoints::server`](super::server) reads them.
//!
//! Every error is an [`EndpointError`] whose message quotes the bad part of
//! the description. Parsing never panics, whatever the input.
//!
//! # Printing
//!
//! [`ServerDescription`] and [`ClientDescription`] print as canonical
//! endpoint strings: the kind, then the required parameters, then the
//! optional ones that differ from their defaults, with `:`, `=` and `\`
//! escaped in values. Parsing the printed string gives back an equal
//! description, for every description that parsing can produce.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where a server listens, as parsed from an endpoint string by
/// [`parse_server`].
///
/// Printing a description with [`Display`](fmt::Display) gives its
/// canonical endpoint string, which parses back to an equal description.
///
/// ```
/// use torsion::endpoints::{parse_server, ServerDescription};
///
/// let server = parse_server("tcp:8080:backlog=128")?;
/// assert_eq!(
///     server,
///     ServerDescription::Tcp { port: 8080, interface: None, backlog: Some(128), ipv6: false }
/// );
/// assert_eq!(server.to_string(), "tcp:8080:backlog=128");
/// # Ok::<(), torsion::endpoints::EndpointError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerDescription {
    /// A TCP server: `tcp:PORT[:interface=IP][:backlog=N]`, or `tcp6:` for
    /// IPv6.
    Tcp {
        /// The port to listen on; 0 asks the system for any free port.
        port: u16,
        /// The local address to listen on; `None` means all interfaces
        /// (`0.0.0.0` for `tcp`, `::` for `tcp6`). An IPv4 address for
        /// `tcp`, an IPv6 address for `tcp6`.
        interface: Option<IpAddr>,
        /// The listen backlog, 1 to 65535; `None` leaves the engine's
        /// default.
        backlog: Option<u32>,
        /// Whether this is a `tcp6` endpoint (IPv6) rather than `tcp`
        /// (IPv4).
        ipv6: bool,
    },
    /// A UNIX-domain stream server:
    /// `unix:PATH[:mode=OCTAL][:backlog=N][:lockfile=0|1]`.
    Unix {
        /// The filesystem path of the socket.
        path: PathBuf,
        /// The permission bits of the socket file (at most `0o7777`);
        /// `None` leaves the default.
        mode: Option<u32>,
        /// The listen backlog, 1 to 65535; `None` leaves the engine's
        /// default.
        backlog: Option<u32>,
        /// Whether a lock file should guard the socket path against a second
        /// server. Accepted and recorded as Twisted has it; `true` unless the
        /// string says `lockfile=0`.
        lockfile: bool,
    },
    /// A TLS server over TCP, in Twisted's grammar:
    /// `ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem[:extraCertChain=CHAIN.pem][:interface=IP][:backlog=N][:alpn=P1,P2]`.
    ///
    /// As in Twisted, `privateKey` defaults to `server.pem` and `certKey`
    /// to the `privateKey` file (one PEM file may hold both). `alpn` is
    /// torsion's own: the ALPN protocol names offered, most preferred
    /// first (`alpn=h2,http/1.1`).
    Ssl {
        /// The port to listen on; 0 asks the system for any free port.
        port: u16,
        /// The PEM file holding the private key (PKCS#8, PKCS#1 or SEC1).
        private_key: PathBuf,
        /// The PEM file holding the certificate (then any intermediates).
        cert_key: PathBuf,
        /// A PEM file of further intermediate certificates, sent after
        /// `cert_key`'s.
        extra_cert_chain: Option<PathBuf>,
        /// The local address to listen on (IPv4, or IPv6 with its colons
        /// escaped); `None` means all IPv4 interfaces.
        interface: Option<IpAddr>,
        /// The listen backlog, 1 to 65535; `None` leaves the engine's
        /// default.
        backlog: Option<u32>,
        /// ALPN protocol names to offer, most preferred first; empty
        /// leaves the choice to the program (`torsion web` offers
        /// `http/1.1`, the others none).
        alpn: Vec<String>,
    },
}

/// Where a client connects, as parsed from an endpoint string by
/// [`parse_client`].
///
/// Printing a description with [`Display`](fmt::Display) gives its
/// canonical endpoint string, which parses back to an equal description.
///
/// ```
/// use std::time::Duration;
/// use torsion::endpoints::{parse_client, ClientDescription};
///
/// let client = parse_client("unix:/run/app.sock:timeout=2.5")?;
/// assert_eq!(
///     client,
///     ClientDescription::Unix {
///         path: "/run/app.sock".into(),
///         timeout: Some(Duration::from_millis(2500)),
///         check_pid: false,
///     }
/// );
/// assert_eq!(client.to_string(), "unix:path=/run/app.sock:timeout=2.5");
/// # Ok::<(), torsion::endpoints::EndpointError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientDescription {
    /// A TCP client: `tcp:host=H:port=P[:timeout=S][:bindAddress=IP]`, or
    /// `tcp6:` for IPv6.
    Tcp {
        /// The host to connect to: a name, or an IP address literal (an IPv6
        /// literal for `tcp6`, written with its colons escaped).
        host: String,
        /// The port to connect to.
        port: u16,
        /// How long to wait for the connection to be established; `None`
        /// leaves the engine's default.
        timeout: Option<Duration>,
        /// The local address to bind before connecting; `None` lets the
        /// system choose.
        bind_address: Option<IpAddr>,
        /// Whether this is a `tcp6` endpoint (IPv6) rather than `tcp`
        /// (IPv4).
        ipv6: bool,
    },
    /// A UNIX-domain stream client: `unix:path=PATH[:timeout=S][:checkPID=0|1]`.
    Unix {
        /// The filesystem path of the socket.
        path: PathBuf,
        /// How long to wait for the connection to be established; `None`
        /// leaves the engine's default.
        timeout: Option<Duration>,
        /// Whether to check the server's lock file for a live process before
        /// connecting. Accepted and recorded as Twisted has it; `false`
        /// unless the string says `checkPID=1`.
        check_pid: bool,
    },
    /// A TLS client over TCP:
    /// `tls:host=H:port=P[:trustRoots=CA.pem][:timeout=S][:bindAddress=IP]`
    /// (`host` and `port` may be positional). The server's certificate must
    /// be valid for `host`, issued by a CA in `trustRoots` or, without it,
    /// by one the system trusts.
    Tls {
        /// The host to connect to, and the name the server's certificate
        /// must carry: a DNS name or an IP address.
        host: String,
        /// The port to connect to.
        port: u16,
        /// A PEM file of the CA certificates to trust instead of the
        /// system's.
        trust_roots: Option<PathBuf>,
        /// How long to wait for the connection, and then again for the
        /// handshake; `None` leaves the defaults.
        timeout: Option<Duration>,
        /// The local address to bind before connecting; `None` lets the
        /// system choose.
        bind_address: Option<IpAddr>,
    },
}

/// Why an endpoint string could not be parsed.
///
/// Every variant names the part of the description that is wrong, and its
/// message quotes it.
///
/// ```
/// use torsion::endpoints::{parse_server, EndpointError};
///
/// let err = parse_server("tcp:http").unwrap_err();
/// assert_eq!(err, EndpointError::BadPort { value: "http".into() });
/// assert_eq!(err.to_string(), "bad port 'http': expected a number from 0 to 65535");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The description is the empty string.
    #[error("empty endpoint description")]
    Empty,
    /// The first field names no kind of endpoint torsion knows.
    #[error("unknown endpoint kind '{kind}' (known: {KINDS})")]
    UnknownKind {
        /// The kind as written, escapes undone.
        kind: String,
    },
    /// The kind exists for the other side: `tls` (a client kind) given
    /// where a server is described, or `ssl` (a server kind) given where a
    /// client is.
    #[error("'{kind}' is not a {side} endpoint kind: {hint}")]
    WrongSide {
        /// The kind as written.
        kind: String,
        /// The side being described: `server` or `client`.
        side: String,
        /// What to write instead.
        hint: String,
    },
    /// A `key=value` field uses a key the kind does not have.
    #[error("unknown parameter '{key}' for a {kind} endpoint{}", known_keys(.kind))]
    UnknownKey {
        /// The endpoint kind and side, like `tcp server` or `unix client`.
        kind: String,
        /// The unknown key, escapes undone.
        key: String,
    },
    /// A parameter is given twice: by the same key twice, or both as a
    /// positional argument and by key.
    #[error("parameter '{key}' given more than once")]
    DuplicateKey {
        /// The parameter's name.
        key: String,
    },
    /// There are more positional arguments than the kind has positional
    /// parameters.
    #[error("too many arguments for a {kind} endpoint: unexpected '{extra}'")]
    TooManyArguments {
        /// The endpoint kind and side, like `tcp server` or `unix client`.
        kind: String,
        /// The first positional argument that has no parameter to fill.
        extra: String,
    },
    /// A required parameter is missing.
    #[error("{kind} endpoint needs '{what}'")]
    Missing {
        /// The endpoint kind and side, like `tcp server` or `unix client`.
        kind: String,
        /// The name of the missing parameter.
        what: String,
    },
    /// A port is not a decimal number from 0 to 65535.
    #[error("bad port '{value}': expected a number from 0 to 65535")]
    BadPort {
        /// The port as written, escapes undone.
        value: String,
    },
    /// A parameter's value is malformed or out of range.
    #[error("bad {key} '{value}': expected {expected}")]
    BadValue {
        /// The parameter's name, like `backlog` or `interface`.
        key: String,
        /// The value as written, escapes undone.
        value: String,
        /// What a good value looks like.
        expected: String,
    },
    /// The description breaks the grammar: a trailing backslash, an empty
    /// field, an empty key, a missing kind.
    #[error("bad endpoint description '{description}': {reason}")]
    Syntax {
        /// The whole description as given.
        description: String,
        /// What is wrong with it, quoting the bad part where there is one.
        reason: String,
    },
    /// A TLS endpoint's files could not be used: a key, certificate or
    /// trust-roots file is missing, unreadable, malformed or mismatched.
    /// The message names the file and the problem. Only
    /// [`endpoints::server`](super::server) and
    /// [`endpoints::client`](super::client) read files; the parsers do not.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsConfigError),
}

/// The endpoint kinds, as error messages list them.
const KINDS: &str = "tcp, tcp6, unix, ssl, tls";

/// Parses a server endpoint string: where and how to listen.
///
/// The description is split into fields on unescaped `:` (a backslash
/// escapes the next character, so IPv6 colons are written `\:`); the first
/// field is the kind, the others are positional arguments or `key=value`.
/// The kinds are `tcp:PORT[:interface=IPV4][:backlog=N]`,
/// `tcp6:PORT[:interface=IPV6][:backlog=N]`,
/// `unix:PATH[:mode=OCTAL][:backlog=N][:lockfile=0|1]` and
/// `ssl:PORT[:privateKey=PATH][:certKey=PATH][:extraCertChain=PATH][:interface=IP][:backlog=N][:alpn=P1,P2]`
/// (TLS; `privateKey` defaults to `server.pem`, `certKey` to the
/// `privateKey` file). No file is read here.
///
/// # Errors
///
/// An [`EndpointError`] naming the first problem found.
///
/// ```
/// use std::net::{IpAddr, Ipv6Addr};
/// use torsion::endpoints::{parse_server, ServerDescription};
///
/// let server = parse_server(r"tcp6:8080:interface=\:\:1")?;
/// assert_eq!(
///     server,
///     ServerDescription::Tcp {
///         port: 8080,
///         interface: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
///         backlog: None,
///         ipv6: true,
///     }
/// );
///
/// let server = parse_server(r"unix:/tmp/a\:b.sock:mode=0660")?;
/// assert_eq!(
///     server,
///     ServerDescription::Unix {
///         path: "/tmp/a:b.sock".into(),
///         mode: Some(0o660),
///         backlog: None,
///         lockfile: true,
///     }
/// );
///
/// assert!(parse_server("tcp:http").is_err());
/// # Ok::<(), torsion::endpoints::EndpointError>(())
/// ```
pub fn parse_server(description: &str) -> Result<ServerDescription, EndpointError> {
    let (kind, fields) = tokenize(description)?;
    match kind.as_str() {
        "tcp" => tcp_server(description, &fields, false),
        "tcp6" => tcp_server(description, &fields, true),
        "unix" => unix_server(description, &fields),
        "ssl" => ssl_server(description, &fields),
        "tls" => Err(EndpointError::WrongSide {
            kind,
            side: "server".into(),
            hint: "a TLS server is 'ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem'".into(),
        }),
        _ => Err(EndpointError::UnknownKind { kind }),
    }
}

/// Parses a client endpoint string: where and how to connect.
///
/// The description is split into fields on unescaped `:` (a backslash
/// escapes the next character, so IPv6 colons are written `\:`); the first
/// field is the kind, the others are positional arguments or `key=value`.
/// The kinds are `tcp:host=HOST:port=PORT[:timeout=SECONDS][:bindAddress=IP]` (`host` and
/// `port` may also be given positionally, in that order), the same with
/// `tcp6:`, `unix:path=PATH[:timeout=SECONDS][:checkPID=0|1]` (`path` may
/// be positional) and
/// `tls:host=HOST:port=PORT[:trustRoots=PATH][:timeout=SECONDS][:bindAddress=IP]`
/// (TLS; `host` and `port` may be positional). No file is read here.
///
/// # Errors
///
/// An [`EndpointError`] naming the first problem found.
///
/// ```
/// use std::time::Duration;
/// use torsion::endpoints::{parse_client, ClientDescription};
///
/// let client = parse_client("tcp:host=example.com:port=80:timeout=2.5")?;
/// assert_eq!(
///     client,
///     ClientDescription::Tcp {
///         host: "example.com".into(),
///         port: 80,
///         timeout: Some(Duration::from_millis(2500)),
///         bind_address: None,
///         ipv6: false,
///     }
/// );
/// // Positional arguments fill `host`, then `port`.
/// assert_eq!(parse_client("tcp:example.com:80:timeout=2.5")?, client);
///
/// let err = parse_client("tcp:host=example.com").unwrap_err();
/// assert_eq!(err.to_string(), "tcp client endpoint needs 'port'");
/// # Ok::<(), torsion::endpoints::EndpointError>(())
/// ```
pub fn parse_client(description: &str) -> Result<ClientDescription, EndpointError> {
    let (kind, fields) = tokenize(description)?;
    match kind.as_str() {
        "tcp" => tcp_client(description, &fields, false),
        "tcp6" => tcp_client(description, &fields, true),
        "unix" => unix_client(description, &fields),
        "tls" => tls_client(description, &fields),
        "ssl" => Err(EndpointError::WrongSide {
            kind,
            side: "client".into(),
            hint: "a TLS client is 'tls:host=HOST:port=PORT' (or 'tls:HOST:PORT')".into(),
        }),
        _ => Err(EndpointError::UnknownKind { kind }),
    }
}

impl FromStr for ServerDescription {
    type Err = EndpointError;

    /// Same as [`parse_server`].
    fn from_str(description: &str) -> Result<Self, Self::Err> {
        parse_server(description)
    }
}

impl FromStr for ClientDescription {
    type Err = EndpointError;

    /// Same as [`parse_client`].
    fn from_str(description: &str) -> Result<Self, Self::Err> {
        parse_client(description)
    }
}

impl fmt::Display for ServerDescription {
    /// Writes the canonical endpoint string: `tcp:PORT`, `tcp6:PORT` or
    /// `unix:PATH`, then the optional parameters that are set, in a fixed
    /// order, with `:`, `=` and `\` escaped in values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerDescription::Tcp {
                port,
                interface,
                backlog,
                ipv6,
            } => {
                write!(f, "{}:{port}", tcp_kind(*ipv6))?;
                if let Some(interface) = interface {
                    write!(f, ":interface={}", Escaped(&interface.to_string()))?;
                }
                if let Some(backlog) = backlog {
                    write!(f, ":backlog={backlog}")?;
                }
            }
            ServerDescription::Unix {
                path,
                mode,
                backlog,
                lockfile,
            } => {
                write!(f, "unix:{}", Escaped(&path.to_string_lossy()))?;
                if let Some(mode) = mode {
                    write!(f, ":mode={mode:04o}")?;
                }
                if let Some(backlog) = backlog {
                    write!(f, ":backlog={backlog}")?;
                }
                if !lockfile {
                    f.write_str(":lockfile=0")?;
                }
            }
            ServerDescription::Ssl {
                port,
                private_key,
                cert_key,
                extra_cert_chain,
                interface,
                backlog,
                alpn,
            } => {
                write!(
                    f,
                    "ssl:{port}:privateKey={}:certKey={}",
                    Escaped(&private_key.to_string_lossy()),
                    Escaped(&cert_key.to_string_lossy())
                )?;
                if let Some(chain) = extra_cert_chain {
                    write!(f, ":extraCertChain={}", Escaped(&chain.to_string_lossy()))?;
                }
                if let Some(interface) = interface {
                    write!(f, ":interface={}", Escaped(&interface.to_string()))?;
                }
                if let Some(backlog) = backlog {
                    write!(f, ":backlog={backlog}")?;
                }
                if !alpn.is_empty() {
                    write!(f, ":alpn={}", Escaped(&alpn.join(",")))?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for ClientDescription {
    /// Writes the canonical endpoint string: `tcp:host=HOST:port=PORT`,
    /// `tcp6:...` or `unix:path=PATH`, then the optional parameters that are
    /// set, in a fixed order, with `:`, `=` and `\` escaped in values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientDescription::Tcp {
                host,
                port,
                timeout,
                bind_address,
                ipv6,
            } => {
                write!(f, "{}:host={}:port={port}", tcp_kind(*ipv6), Escaped(host))?;
                if let Some(timeout) = timeout {
                    write!(f, ":timeout={}", Seconds(*timeout))?;
                }
                if let Some(bind_address) = bind_address {
                    write!(f, ":bindAddress={}", Escaped(&bind_address.to_string()))?;
                }
            }
            ClientDescription::Unix {
                path,
                timeout,
                check_pid,
            } => {
                write!(f, "unix:path={}", Escaped(&path.to_string_lossy()))?;
                if let Some(timeout) = timeout {
                    write!(f, ":timeout={}", Seconds(*timeout))?;
                }
                if *check_pid {
                    f.write_str(":checkPID=1")?;
                }
            }
            ClientDescription::Tls {
                host,
                port,
                trust_roots,
                timeout,
                bind_address,
            } => {
                write!(f, "tls:host={}:port={port}", Escaped(host))?;
                if let Some(roots) = trust_roots {
                    write!(f, ":trustRoots={}", Escaped(&roots.to_string_lossy()))?;
                }
                if let Some(timeout) = timeout {
                    write!(f, ":timeout={}", Seconds(*timeout))?;
                }
                if let Some(bind_address) = bind_address {
                    write!(f, ":bindAddress={}", Escaped(&bind_address.to_string()))?;
                }
            }
        }
        Ok(())
    }
}

fn tcp_kind(ipv6: bool) -> &'static str {
    if ipv6 {
        "tcp6"
    } else {
        "tcp"
    }
}

/// Writes a value with the characters that are special in endpoint strings
/// (`:`, `=`, `\`) escaped by a backslash.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if matches!(c, ':' | '=' | '\\') {
                f.write_char('\\')?;
            }
            f.write_char(c)?;
        }
        Ok(())
    }
}

/// Writes a duration as decimal seconds: `30`, `2.5`, `0.000000001`.
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs())?;
        let nanos = self.0.subsec_nanos();
        if nanos != 0 {
            let digits = format!("{nanos:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Step 1: tokenizing.

/// One field after the kind, escapes undone.
#[derive(Debug, Default)]
struct Field {
    /// The key, when the field had an unescaped `=`.
    key: Option<String>,
    /// The value after the `=`, or the whole field when there is no key.
    value: String,
    /// The field as written, escapes kept, for error messages.
    raw: String,
}

/// Splits a description into its kind and its other fields.
fn tokenize(description: &str) -> Result<(String, Vec<Field>), EndpointError> {
    if description.is_empty() {
        return Err(EndpointError::Empty);
    }
    let mut fields = Vec::new();
    let mut current = Field::default();
    let mut chars = description.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(escaped) = chars.next() else {
                    return Err(syntax(
                        description,
                        "it ends with a lone backslash (write '\\\\' for a backslash)".to_owned(),
                    ));
                };
                current.raw.push('\\');
                current.raw.push(escaped);
                current.value.push(escaped);
            }
            ':' => fields.push(std::mem::take(&mut current)),
            '=' if current.key.is_none() => {
                current.raw.push('=');
                current.key = Some(std::mem::take(&mut current.value));
            }
            other => {
                current.raw.push(other);
                current.value.push(other);
            }
        }
    }
    fields.push(current);

    let mut fields = fields.into_iter();
    let kind = match fields.next() {
        Some(Field {
            key: Some(key),
            value,
            ..
        }) => format!("{key}={value}"),
        Some(Field {
            key: None, value, ..
        }) => value,
        None => String::new(),
    };
    if kind.is_empty() {
        return Err(syntax(
            description,
            format!("the endpoint kind before the first ':' is missing (known: {KINDS})"),
        ));
    }
    Ok((kind, fields.collect()))
}

fn syntax(description: &str, reason: String) -> EndpointError {
    EndpointError::Syntax {
        description: description.to_owned(),
        reason,
    }
}

// ---------------------------------------------------------------------------
// Step 2: collecting fields into parameters.

/// The parameters of one kind of endpoint on one side.
struct Spec {
    /// The kind and side, as error messages name it: `tcp server`.
    label: &'static str,
    /// The parameters positional arguments fill, in order.
    positional: &'static [&'static str],
    /// Every parameter the kind accepts by key.
    keys: &'static [&'static str],
}

const TCP_SERVER: Spec = Spec {
    label: "tcp server",
    positional: &["port"],
    keys: &["port", "interface", "backlog"],
};

const TCP6_SERVER: Spec = Spec {
    label: "tcp6 server",
    ..TCP_SERVER
};

const UNIX_SERVER: Spec = Spec {
    label: "unix server",
    positional: &["address"],
    keys: &["address", "mode", "backlog", "lockfile"],
};

const TCP_CLIENT: Spec = Spec {
    label: "tcp client",
    positional: &["host", "port"],
    keys: &["host", "port", "timeout", "bindAddress"],
};

const TCP6_CLIENT: Spec = Spec {
    label: "tcp6 client",
    ..TCP_CLIENT
};

const UNIX_CLIENT: Spec = Spec {
    label: "unix client",
    positional: &["path"],
    keys: &["path", "timeout", "checkPID"],
};

const SSL_SERVER: Spec = Spec {
    label: "ssl server",
    positional: &["port"],
    keys: &[
        "port",
        "privateKey",
        "certKey",
        "extraCertChain",
        "interface",
        "backlog",
        "alpn",
    ],
};

const TLS_CLIENT: Spec = Spec {
    label: "tls client",
    positional: &["host", "port"],
    keys: &["host", "port", "trustRoots", "timeout", "bindAddress"],
};

const SPECS: [&Spec; 8] = [
    &TCP_SERVER,
    &TCP6_SERVER,
    &UNIX_SERVER,
    &SSL_SERVER,
    &TCP_CLIENT,
    &TCP6_CLIENT,
    &UNIX_CLIENT,
    &TLS_CLIENT,
];

/// The tail of an [`EndpointError::UnknownKey`] message listing the keys of
/// the endpoint kind labelled `label`, or nothing for a label no spec has.
fn known_keys(label: &str) -> String {
    SPECS
        .iter()
        .find(|spec| spec.label == label)
        .map(|spec| format!(" (known: {})", spec.keys.join(", ")))
        .unwrap_or_default()
}

/// The parameters given in a description, each at most once.
struct Params {
    label: &'static str,
    given: Vec<(&'static str, String)>,
}

impl Params {
    /// Assigns every field to one of `spec`'s parameters.
    fn collect(description: &str, spec: &Spec, fields: &[Field]) -> Result<Self, EndpointError> {
        let mut given: Vec<(&'static str, String)> = Vec::with_capacity(fields.len());
        let mut positional = spec.positional.iter();
        for (index, field) in fields.iter().enumerate() {
            let name = match &field.key {
                None if field.raw.is_empty() => {
                    return Err(syntax(
                        description,
                        format!(
                            "field {} is empty (two ':' in a row, or a ':' at the end)",
                            index + 2
                        ),
                    ));
                }
                None => match positional.next() {
                    Some(name) => *name,
                    None => {
                        return Err(EndpointError::TooManyArguments {
                            kind: spec.label.to_owned(),
                            extra: field.value.clone(),
                        });
                    }
                },
                Some(key) if key.is_empty() => {
                    return Err(syntax(
                        description,
                        format!("the parameter '{}' has an empty key", field.raw),
                    ));
                }
                Some(key) => match spec.keys.iter().find(|known| **known == key.as_str()) {
                    Some(name) => *name,
                    None => {
                        return Err(EndpointError::UnknownKey {
                            kind: spec.label.to_owned(),
                            key: key.clone(),
                        });
                    }
                },
            };
            if given.iter().any(|(seen, _)| *seen == name) {
                return Err(EndpointError::DuplicateKey {
                    key: name.to_owned(),
                });
            }
            given.push((name, field.value.clone()));
        }
        Ok(Params {
            label: spec.label,
            given,
        })
    }

    /// Takes the value of an optional parameter.
    fn take(&mut self, name: &str) -> Option<String> {
        let index = self.given.iter().position(|(seen, _)| *seen == name)?;
        Some(self.given.swap_remove(index).1)
    }

    /// Takes the value of a required parameter.
    fn required(&mut self, name: &str) -> Result<String, EndpointError> {
        self.take(name).ok_or_else(|| EndpointError::Missing {
            kind: self.label.to_owned(),
            what: name.to_owned(),
        })
    }
}

// ---------------------------------------------------------------------------
// Step 3: converting values, kind by kind.

fn tcp_server(
    description: &str,
    fields: &[Field],
    ipv6: bool,
) -> Result<ServerDescription, EndpointError> {
    let spec = if ipv6 { &TCP6_SERVER } else { &TCP_SERVER };
    let mut params = Params::collect(description, spec, fields)?;
    let port = parse_port(&params.required("port")?)?;
    let interface = params
        .take("interface")
        .map(|value| parse_interface(&value, ipv6))
        .transpose()?;
    let backlog = params
        .take("backlog")
        .map(|v| parse_backlog(&v))
        .transpose()?;
    Ok(ServerDescription::Tcp {
        port,
        interface,
        backlog,
        ipv6,
    })
}

fn unix_server(description: &str, fields: &[Field]) -> Result<ServerDescription, EndpointError> {
    let mut params = Params::collect(description, &UNIX_SERVER, fields)?;
    let path = parse_path("address", params.required("address")?)?;
    let mode = params.take("mode").map(|v| parse_mode(&v)).transpose()?;
    let backlog = params
        .take("backlog")
        .map(|v| parse_backlog(&v))
        .transpose()?;
    let lockfile = params
        .take("lockfile")
        .map(|v| parse_flag("lockfile", &v))
        .transpose()?
        .unwrap_or(true);
    Ok(ServerDescription::Unix {
        path,
        mode,
        backlog,
        lockfile,
    })
}

fn tcp_client(
    description: &str,
    fields: &[Field],
    ipv6: bool,
) -> Result<ClientDescription, EndpointError> {
    let spec = if ipv6 { &TCP6_CLIENT } else { &TCP_CLIENT };
    let mut params = Params::collect(description, spec, fields)?;
    let host = params.required("host")?;
    if host.is_empty() {
        return Err(bad_value("host", &host, "a host name or IP address"));
    }
    let port = parse_port(&params.required("port")?)?;
    let timeout = params
        .take("timeout")
        .map(|v| parse_timeout(&v))
        .transpose()?;
    let bind_address = params
        .take("bindAddress")
        .map(|value| {
            value.parse::<IpAddr>().map_err(|_| {
                bad_value(
                    "bindAddress",
                    &value,
                    "an IP address like 192.0.2.1 or \\:\\:1 (colons escaped)",
                )
            })
        })
        .transpose()?;
    Ok(ClientDescription::Tcp {
        host,
        port,
        timeout,
        bind_address,
        ipv6,
    })
}

fn unix_client(description: &str, fields: &[Field]) -> Result<ClientDescription, EndpointError> {
    let mut params = Params::collect(description, &UNIX_CLIENT, fields)?;
    let path = parse_path("path", params.required("path")?)?;
    let timeout = params
        .take("timeout")
        .map(|v| parse_timeout(&v))
        .transpose()?;
    let check_pid = params
        .take("checkPID")
        .map(|v| parse_flag("checkPID", &v))
        .transpose()?
        .unwrap_or(false);
    Ok(ClientDescription::Unix {
        path,
        timeout,
        check_pid,
    })
}

/// The key file an `ssl:` server reads when none is named, as in Twisted.
const DEFAULT_PRIVATE_KEY: &str = "server.pem";

fn ssl_server(description: &str, fields: &[Field]) -> Result<ServerDescription, EndpointError> {
    let mut params = Params::collect(description, &SSL_SERVER, fields)?;
    let port = parse_port(&params.required("port")?)?;
    let private_key = parse_path(
        "privateKey",
        params
            .take("privateKey")
            .unwrap_or_else(|| DEFAULT_PRIVATE_KEY.to_owned()),
    )?;
    let cert_key = match params.take("certKey") {
        Some(value) => parse_path("certKey", value)?,
        None => private_key.clone(),
    };
    let extra_cert_chain = params
        .take("extraCertChain")
        .map(|v| parse_path("extraCertChain", v))
        .transpose()?;
    let interface = params
        .take("interface")
        .map(|value| parse_any_ip("interface", &value))
        .transpose()?;
    let backlog = params
        .take("backlog")
        .map(|v| parse_backlog(&v))
        .transpose()?;
    let alpn = params
        .take("alpn")
        .map(|v| parse_alpn(&v))
        .transpose()?
        .unwrap_or_default();
    Ok(ServerDescription::Ssl {
        port,
        private_key,
        cert_key,
        extra_cert_chain,
        interface,
        backlog,
        alpn,
    })
}

fn tls_client(description: &str, fields: &[Field]) -> Result<ClientDescription, EndpointError> {
    let mut params = Params::collect(description, &TLS_CLIENT, fields)?;
    let host = params.required("host")?;
    if host.is_empty() {
        return Err(bad_value("host", &host, "a host name or IP address"));
    }
    let port = parse_port(&params.required("port")?)?;
    let trust_roots = params
        .take("trustRoots")
        .map(|v| parse_path("trustRoots", v))
        .transpose()?;
    let timeout = params
        .take("timeout")
        .map(|v| parse_timeout(&v))
        .transpose()?;
    let bind_address = params
        .take("bindAddress")
        .map(|value| parse_any_ip("bindAddress", &value))
        .transpose()?;
    Ok(ClientDescription::Tls {
        host,
        port,
        trust_roots,
        timeout,
        bind_address,
    })
}

/// An IPv4 or IPv6 address (colons escaped in the description).
fn parse_any_ip(key: &str, value: &str) -> Result<IpAddr, EndpointError> {
    value.parse::<IpAddr>().map_err(|_| {
        bad_value(
            key,
            value,
            "an IP address like 192.0.2.1 or \\:\\:1 (colons escaped)",
        )
    })
}

fn bad_value(key: &str, value: &str, expected: &str) -> EndpointError {
    EndpointError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

/// Whether `value` is one or more ASCII decimal digits and nothing else (no
/// sign, no spaces).
fn is_decimal(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

fn parse_port(value: &str) -> Result<u16, EndpointError> {
    let port = if is_decimal(value) {
        value.parse().ok()
    } else {
        None
    };
    port.ok_or_else(|| EndpointError::BadPort {
        value: value.to_owned(),
    })
}

fn parse_backlog(value: &str) -> Result<u32, EndpointError> {
    let backlog = if is_decimal(value) {
        value.parse::<u32>().ok()
    } else {
        None
    };
    match backlog {
        Some(backlog @ 1..=65535) => Ok(backlog),
        _ => Err(bad_value(
            "backlog",
            value,
            "a whole number from 1 to 65535",
        )),
    }
}

fn parse_mode(value: &str) -> Result<u32, EndpointError> {
    let octal = !value.is_empty() && value.bytes().all(|b| matches!(b, b'0'..=b'7'));
    let mode = if octal {
        u32::from_str_radix(value, 8).ok()
    } else {
        None
    };
    match mode {
        Some(mode @ 0..=0o7777) => Ok(mode),
        _ => Err(bad_value(
            "mode",
            value,
            "an octal file mode from 0 to 7777, like 660 or 0660",
        )),
    }
}

fn parse_flag(key: &str, value: &str) -> Result<bool, EndpointError> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(bad_value(key, value, "0 or 1")),
    }
}

fn parse_interface(value: &str, ipv6: bool) -> Result<IpAddr, EndpointError> {
    if ipv6 {
        value.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| {
            bad_value(
                "interface",
                value,
                "an IPv6 address with its colons escaped, like \\:\\:1",
            )
        })
    } else {
        value.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| {
            bad_value(
                "interface",
                value,
                "an IPv4 address like 127.0.0.1 (use tcp6 for IPv6)",
            )
        })
    }
}

/// Parses ALPN protocol names separated by commas (`h2,http/1.1`): each
/// 1 to 255 bytes of visible ASCII (RFC 7301 allows any bytes; names in
/// use are such text, and a comma or space in one is surely a typo).
fn parse_alpn(value: &str) -> Result<Vec<String>, EndpointError> {
    let names: Vec<String> = value.split(',').map(str::to_owned).collect();
    let ok = names
        .iter()
        .all(|n| (1..=255).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_graphic()));
    if ok {
        Ok(names)
    } else {
        Err(bad_value(
            "alpn",
            value,
            "protocol names of visible ASCII separated by commas, such as h2,http/1.1",
        ))
    }
}

fn parse_path(key: &str, value: String) -> Result<PathBuf, EndpointError> {
    if value.is_empty() {
        Err(bad_value(key, &value, "a non-empty path"))
    } else if value.contains('\0') {
        Err(bad_value(key, &value, "a path without NUL characters"))
    } else {
        Ok(PathBuf::from(value))
    }
}

/// Parses non-negative decimal seconds: `30`, `2.5`, `.5`, `5.`. Digits
/// past the ninth after the point are below a nanosecond and are dropped.
fn parse_timeout(value: &str) -> Result<Duration, EndpointError> {
    let bad = || bad_value("timeout", value, "a number of seconds like 30 or 2.5");
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits_only(whole) || !digits_only(fraction) {
        return Err(bad());
    }
    let secs = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().map_err(|_| bad())?
    };
    let mut nanos: u32 = 0;
    for digit in fraction.bytes().chain(std::iter::repeat(b'0')).take(9) {
        nanos = nanos * 10 + u32::from(digit - b'0');
    }
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    fn v6(text: &str) -> Option<IpAddr> {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    }

    fn tcp_server(port: u16) -> ServerDescription {
        ServerDescription::Tcp {
            port,
            interface: None,
            backlog: None,
            ipv6: false,
        }
    }

    fn unix_server(path: &str) -> ServerDescription {
        ServerDescription::Unix {
            path: path.into(),
            mode: None,
            backlog: None,
            lockfile: true,
        }
    }

    fn tcp_client(host: &str, port: u16) -> ClientDescription {
        ClientDescription::Tcp {
            host: host.to_owned(),
            port,
            timeout: None,
            bind_address: None,
            ipv6: false,
        }
    }

    fn unix_client(path: &str) -> ClientDescription {
        ClientDescription::Unix {
            path: path.into(),
            timeout: None,
            check_pid: false,
        }
    }

    fn server_ok(description: &str) -> ServerDescription {
        match parse_server(description) {
            Ok(server) => server,
            Err(err) => panic!("{description:?} should parse as a server: {err}"),
        }
    }

    fn client_ok(description: &str) -> ClientDescription {
        match parse_client(description) {
            Ok(client) => client,
            Err(err) => panic!("{description:?} should parse as a client: {err}"),
        }
    }

    fn server_err(description: &str) -> EndpointError {
        match parse_server(description) {
            Ok(server) => panic!("{description:?} should not parse as a server: {server:?}"),
            Err(err) => err,
        }
    }

    fn client_err(description: &str) -> EndpointError {
        match parse_client(description) {
            Ok(client) => panic!("{description:?} should not parse as a client: {client:?}"),
            Err(err) => err,
        }
    }

    /// Asserts that the error's message contains every one of `parts`.
    fn assert_mentions(err: &EndpointError, parts: &[&str]) {
        let message = err.to_string();
        for part in parts {
            assert!(
                message.contains(part),
                "message {message:?} should mention {part:?}"
            );
        }
    }

    fn assert_bad_value(err: &EndpointError, key: &str, value: &str) {
        match err {
            EndpointError::BadValue {
                key: k, value: v, ..
            } => {
                assert_eq!((k.as_str(), v.as_str()), (key, value), "{err}");
            }
            other => panic!("expected BadValue for {key}={value:?}, got {other:?}"),
        }
        assert_mentions(err, &[&format!("bad {key} '{value}'")]);
    }

    // --- good server descriptions -------------------------------------------

    #[test]
    fn tcp_server_positional_port() {
        assert_eq!(server_ok("tcp:8080"), tcp_server(8080));
        assert_eq!(server_ok("tcp:0"), tcp_server(0));
        assert_eq!(server_ok("tcp:65535"), tcp_server(65535));
        assert_eq!(server_ok("tcp:0080"), tcp_server(80));
    }

    #[test]
    fn tcp_server_keyed_port() {
        assert_eq!(server_ok("tcp:port=443"), tcp_server(443));
    }

    #[test]
    fn tcp_server_all_parameters() {
        let expected = ServerDescription::Tcp {
            port: 80,
            interface: v4(127, 0, 0, 1),
            backlog: Some(100),
            ipv6: false,
        };
        assert_eq!(
            server_ok("tcp:80:interface=127.0.0.1:backlog=100"),
            expected
        );
        assert_eq!(
            server_ok("tcp:backlog=100:interface=127.0.0.1:port=80"),
            expected
        );
        // A positional argument may come after keyed ones.
        assert_eq!(
            server_ok("tcp:interface=127.0.0.1:backlog=100:80"),
            expected
        );
    }

    #[test]
    fn tcp_server_backlog_bounds() {
        let backlog = |d: &str| match server_ok(d) {
            ServerDescription::Tcp { backlog, .. } => backlog,
            other => panic!("not tcp: {other:?}"),
        };
        assert_eq!(backlog("tcp:1:backlog=1"), Some(1));
        assert_eq!(backlog("tcp:1:backlog=65535"), Some(65535));
    }

    #[test]
    fn tcp6_server_default_interface() {
        assert_eq!(
            server_ok("tcp6:8080"),
            ServerDescription::Tcp {
                port: 8080,
                interface: None,
                backlog: None,
                ipv6: true,
            }
        );
    }

    #[test]
    fn tcp6_server_escaped_interfaces() {
        let interface = |d: &str| match server_ok(d) {
            ServerDescription::Tcp {
                interface, ipv6, ..
            } => {
                assert!(ipv6);
                interface
            }
            other => panic!("not tcp: {other:?}"),
        };
        assert_eq!(interface(r"tcp6:8080:interface=\:\:1"), v6("::1"));
        assert_eq!(interface(r"tcp6:8080:interface=\:\:"), v6("::"));
        assert_eq!(
            interface(r"tcp6:port=8080:interface=fe80\:\:1\:2:backlog=5"),
            v6("fe80::1:2")
        );
        assert_eq!(
            interface(r"tcp6:80:interface=\:\:ffff\:192.0.2.1"),
            v6("::ffff:192.0.2.1")
        );
    }

    #[test]
    fn unix_server_positional_and_keyed_path() {
        assert_eq!(server_ok("unix:/tmp/sock"), unix_server("/tmp/sock"));
        assert_eq!(
            server_ok("unix:address=/tmp/sock"),
            unix_server("/tmp/sock")
        );
        assert_eq!(
            server_ok("unix:relative.sock"),
            unix_server("relative.sock")
        );
    }

    #[test]
    fn unix_server_escapes_in_path() {
        assert_eq!(
            server_ok(r"unix:/tmp/a\:b.sock"),
            unix_server("/tmp/a:b.sock")
        );
        assert_eq!(
            server_ok(r"unix:/tmp/back\\slash"),
            unix_server(r"/tmp/back\slash")
        );
        assert_eq!(server_ok(r"unix:/tmp/a\=b"), unix_server("/tmp/a=b"));
        // Any escaped character stands for itself.
        assert_eq!(server_ok(r"unix:/tmp/\x"), unix_server("/tmp/x"));
        // Only the first unescaped '=' splits key from value.
        assert_eq!(server_ok("unix:address=/tmp/a=b"), unix_server("/tmp/a=b"));
    }

    #[test]
    fn unix_server_all_parameters() {
        assert_eq!(
            server_ok("unix:address=/var/run/x.sock:mode=660:backlog=10:lockfile=0"),
            ServerDescription::Unix {
                path: "/var/run/x.sock".into(),
                mode: Some(0o660),
                backlog: Some(10),
                lockfile: false,
            }
        );
    }

    #[test]
    fn unix_server_modes_and_lockfile() {
        let mode = |d: &str| match server_ok(d) {
            ServerDescription::Unix { mode, .. } => mode,
            other => panic!("not unix: {other:?}"),
        };
        assert_eq!(mode("unix:/s:mode=660"), Some(0o660));
        assert_eq!(mode("unix:/s:mode=0660"), Some(0o660));
        assert_eq!(mode("unix:/s:mode=7777"), Some(0o7777));
        assert_eq!(mode("unix:/s:mode=0"), Some(0));
        assert_eq!(mode("unix:/s:mode=00000644"), Some(0o644));
        let lockfile = |d: &str| match server_ok(d) {
            ServerDescription::Unix { lockfile, .. } => lockfile,
            other => panic!("not unix: {other:?}"),
        };
        assert!(lockfile("unix:/s"));
        assert!(lockfile("unix:/s:lockfile=1"));
        assert!(!lockfile("unix:/s:lockfile=0"));
    }

    #[test]
    fn from_str_matches_parse() {
        assert_eq!(
            "tcp:80".parse::<ServerDescription>(),
            parse_server("tcp:80")
        );
        assert_eq!(
            "tcp:h:80".parse::<ClientDescription>(),
            parse_client("tcp:h:80")
        );
    }

    // --- good client descriptions -------------------------------------------

    #[test]
    fn tcp_client_keyed_positional_and_mixed() {
        let expected = tcp_client("example.com", 80);
        assert_eq!(client_ok("tcp:host=example.com:port=80"), expected);
        assert_eq!(client_ok("tcp:port=80:host=example.com"), expected);
        assert_eq!(client_ok("tcp:example.com:80"), expected);
        assert_eq!(client_ok("tcp:example.com:port=80"), expected);
        assert_eq!(client_ok("tcp:192.0.2.7:80"), tcp_client("192.0.2.7", 80));
    }

    #[test]
    fn tcp_client_timeouts() {
        let timeout = |d: &str| match client_ok(d) {
            ClientDescription::Tcp { timeout, .. } => timeout,
            other => panic!("not tcp: {other:?}"),
        };
        assert_eq!(timeout("tcp:h:1"), None);
        assert_eq!(
            timeout("tcp:h:1:timeout=2.5"),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(timeout("tcp:h:1:timeout=30"), Some(Duration::from_secs(30)));
        assert_eq!(timeout("tcp:h:1:timeout=0"), Some(Duration::ZERO));
        assert_eq!(
            timeout("tcp:h:1:timeout=.5"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(timeout("tcp:h:1:timeout=5."), Some(Duration::from_secs(5)));
        assert_eq!(
            timeout("tcp:h:1:timeout=0.000000001"),
            Some(Duration::from_nanos(1))
        );
        // Below a nanosecond is dropped.
        assert_eq!(
            timeout("tcp:h:1:timeout=1.0000000019"),
            Some(Duration::new(1, 1))
        );
        assert_eq!(
            timeout("tcp:h:1:timeout=18446744073709551615.999999999"),
            Some(Duration::new(u64::MAX, 999_999_999))
        );
    }

    #[test]
    fn tcp_client_bind_address() {
        let bind = |d: &str| match client_ok(d) {
            ClientDescription::Tcp { bind_address, .. } => bind_address,
            other => panic!("not tcp: {other:?}"),
        };
        assert_eq!(bind("tcp:h:1:bindAddress=192.168.1.1"), v4(192, 168, 1, 1));
        assert_eq!(bind(r"tcp:h:1:bindAddress=\:\:1"), v6("::1"));
        assert_eq!(bind(r"tcp6:h:1:bindAddress=\:\:1"), v6("::1"));
    }

    #[test]
    fn tcp_client_all_parameters() {
        assert_eq!(
            client_ok(r"tcp:host=example.com:port=80:timeout=2.5:bindAddress=10.0.0.2"),
            ClientDescription::Tcp {
                host: "example.com".into(),
                port: 80,
                timeout: Some(Duration::from_millis(2500)),
                bind_address: v4(10, 0, 0, 2),
                ipv6: false,
            }
        );
    }

    #[test]
    fn tcp6_client_hosts() {
        assert_eq!(
            client_ok(r"tcp6:host=\:\:1:port=80"),
            ClientDescription::Tcp {
                host: "::1".into(),
                port: 80,
                timeout: None,
                bind_address: None,
                ipv6: true,
            }
        );
        assert_eq!(
            client_ok("tcp6:ipv6.example.com:443"),
            ClientDescription::Tcp {
                host: "ipv6.example.com".into(),
                port: 443,
                timeout: None,
                bind_address: None,
                ipv6: true,
            }
        );
    }

    #[test]
    fn unix_client_forms() {
        assert_eq!(
            client_ok("unix:path=/var/run/s.sock"),
            unix_client("/var/run/s.sock")
        );
        assert_eq!(
            client_ok("unix:/var/run/s.sock"),
            unix_client("/var/run/s.sock")
        );
        assert_eq!(client_ok(r"unix:/tmp/a\:b"), unix_client("/tmp/a:b"));
        assert_eq!(
            client_ok("unix:/s:timeout=1.25:checkPID=1"),
            ClientDescription::Unix {
                path: "/s".into(),
                timeout: Some(Duration::from_millis(1250)),
                check_pid: true,
            }
        );
        assert_eq!(client_ok("unix:/s:checkPID=0"), unix_client("/s"));
    }

    // --- printing ------------------------------------------------------------

    #[test]
    fn server_display_is_canonical() {
        assert_eq!(server_ok("tcp:port=0080").to_string(), "tcp:80");
        assert_eq!(
            server_ok(r"tcp6:backlog=5:interface=\:\:1:8080").to_string(),
            r"tcp6:8080:interface=\:\:1:backlog=5"
        );
        assert_eq!(
            server_ok("tcp:80:interface=127.0.0.1").to_string(),
            "tcp:80:interface=127.0.0.1"
        );
        assert_eq!(
            server_ok(r"unix:address=/tmp/a\:b.sock:lockfile=0:mode=660").to_string(),
            r"unix:/tmp/a\:b.sock:mode=0660:lockfile=0"
        );
        assert_eq!(
            server_ok(r"unix:/a\=b\\c:lockfile=1:backlog=7").to_string(),
            r"unix:/a\=b\\c:backlog=7"
        );
        assert_eq!(server_ok("unix:/s:mode=7").to_string(), "unix:/s:mode=0007");
    }

    #[test]
    fn client_display_is_canonical() {
        assert_eq!(
            client_ok(r"tcp:example.com:80:bindAddress=\:\:1:timeout=2.50").to_string(),
            r"tcp:host=example.com:port=80:timeout=2.5:bindAddress=\:\:1"
        );
        assert_eq!(
            client_ok(r"tcp6:\:\:1:80").to_string(),
            r"tcp6:host=\:\:1:port=80"
        );
        assert_eq!(
            client_ok("unix:/p:checkPID=1:timeout=30.000").to_string(),
            "unix:path=/p:timeout=30:checkPID=1"
        );
        assert_eq!(
            client_ok("unix:/p:timeout=0.000000001").to_string(),
            "unix:path=/p:timeout=0.000000001"
        );
    }

    // --- bad descriptions: grammar and kinds -----------------------------------

    #[test]
    fn empty_description() {
        assert_eq!(server_err(""), EndpointError::Empty);
        assert_eq!(client_err(""), EndpointError::Empty);
        assert_eq!(
            EndpointError::Empty.to_string(),
            "empty endpoint description"
        );
    }

    #[test]
    fn unknown_kinds() {
        let err = server_err("foo:80");
        assert_eq!(err, EndpointError::UnknownKind { kind: "foo".into() });
        assert_eq!(
            err.to_string(),
            "unknown endpoint kind 'foo' (known: tcp, tcp6, unix, ssl, tls)"
        );
        for (description, kind) in [
            ("TCP:80", "TCP"),
            ("tor:host=x", "tor"),
            ("systemd:domain=INET:index=0", "systemd"),
            ("udp", "udp"),
            (r"tc\:p:80", "tc:p"),
            ("a=b:80", "a=b"),
        ] {
            let expected = EndpointError::UnknownKind { kind: kind.into() };
            assert_eq!(server_err(description), expected);
            assert_eq!(client_err(description), expected);
            assert_mentions(&expected, &[&format!("'{kind}'")]);
        }
    }

    fn ssl_server(port: u16, key: &str, cert: &str) -> ServerDescription {
        ServerDescription::Ssl {
            port,
            private_key: key.into(),
            cert_key: cert.into(),
            extra_cert_chain: None,
            interface: None,
            backlog: None,
            alpn: Vec::new(),
        }
    }

    fn tls_client(host: &str, port: u16) -> ClientDescription {
        ClientDescription::Tls {
            host: host.into(),
            port,
            trust_roots: None,
            timeout: None,
            bind_address: None,
        }
    }

    #[test]
    fn ssl_server_in_twisteds_grammar() {
        assert_eq!(
            server_ok("ssl:443:privateKey=key.pem:certKey=cert.pem"),
            ssl_server(443, "key.pem", "cert.pem")
        );
        assert_eq!(
            server_ok("ssl:port=443:certKey=cert.pem:privateKey=key.pem"),
            ssl_server(443, "key.pem", "cert.pem")
        );
        assert_eq!(
            server_ok(
                r"ssl:8443:privateKey=/etc/k\:1.pem:certKey=c.pem:extraCertChain=chain.pem:interface=127.0.0.1:backlog=64"
            ),
            ServerDescription::Ssl {
                port: 8443,
                private_key: "/etc/k:1.pem".into(),
                cert_key: "c.pem".into(),
                extra_cert_chain: Some("chain.pem".into()),
                interface: v4(127, 0, 0, 1),
                backlog: Some(64),
                alpn: Vec::new(),
            }
        );
        let alpn = |d: &str| match server_ok(d) {
            ServerDescription::Ssl { alpn, .. } => alpn,
            other => panic!("not ssl: {other:?}"),
        };
        assert_eq!(alpn("ssl:443:alpn=h2,http/1.1"), ["h2", "http/1.1"]);
        assert_eq!(alpn("ssl:443:alpn=x-torsion"), ["x-torsion"]);
        assert_eq!(alpn(r"ssl:443:alpn=a\:b"), ["a:b"]);
        assert!(alpn("ssl:443").is_empty());
        let interface = |d: &str| match server_ok(d) {
            ServerDescription::Ssl { interface, .. } => interface,
            other => panic!("not ssl: {other:?}"),
        };
        assert_eq!(interface(r"ssl:443:interface=\:\:1"), v6("::1"));
    }

    #[test]
    fn ssl_server_key_defaults_follow_twisted() {
        // privateKey defaults to server.pem, certKey to the privateKey file.
        assert_eq!(
            server_ok("ssl:443"),
            ssl_server(443, "server.pem", "server.pem")
        );
        assert_eq!(
            server_ok("ssl:443:privateKey=both.pem"),
            ssl_server(443, "both.pem", "both.pem")
        );
        assert_eq!(
            server_ok("ssl:443:certKey=cert.pem"),
            ssl_server(443, "server.pem", "cert.pem")
        );
    }

    #[test]
    fn tls_client_keyed_and_positional() {
        let expected = tls_client("example.org", 443);
        assert_eq!(client_ok("tls:host=example.org:port=443"), expected);
        assert_eq!(client_ok("tls:example.org:443"), expected);
        assert_eq!(client_ok("tls:example.org:port=443"), expected);
        assert_eq!(
            client_ok(
                r"tls:localhost:8443:trustRoots=/tmp/ca\:x.pem:timeout=2.5:bindAddress=127.0.0.1"
            ),
            ClientDescription::Tls {
                host: "localhost".into(),
                port: 8443,
                trust_roots: Some("/tmp/ca:x.pem".into()),
                timeout: Some(Duration::from_millis(2500)),
                bind_address: v4(127, 0, 0, 1),
            }
        );
        assert_eq!(client_ok(r"tls:\:\:1:443"), tls_client("::1", 443));
    }

    #[test]
    fn tls_display_is_canonical() {
        assert_eq!(
            server_ok("ssl:backlog=5:443:interface=127.0.0.1:extraCertChain=ch.pem").to_string(),
            "ssl:443:privateKey=server.pem:certKey=server.pem:extraCertChain=ch.pem:interface=127.0.0.1:backlog=5"
        );
        assert_eq!(
            server_ok(r"ssl:443:privateKey=a\:b.pem:interface=\:\:1").to_string(),
            r"ssl:443:privateKey=a\:b.pem:certKey=a\:b.pem:interface=\:\:1"
        );
        assert_eq!(
            client_ok("tls:example.org:443:timeout=30:trustRoots=ca.pem").to_string(),
            "tls:host=example.org:port=443:trustRoots=ca.pem:timeout=30"
        );
    }

    #[test]
    fn tls_kinds_on_the_wrong_side_say_what_to_write() {
        let err = server_err("tls:443");
        assert!(matches!(err, EndpointError::WrongSide { .. }), "{err:?}");
        assert_mentions(&err, &["'tls'", "server", "ssl:PORT"]);
        let err = client_err("ssl:host=example.org:port=443");
        assert!(matches!(err, EndpointError::WrongSide { .. }), "{err:?}");
        assert_mentions(&err, &["'ssl'", "client", "tls:host="]);
    }

    #[test]
    fn bad_tls_parameters() {
        assert_eq!(
            server_err("ssl:443:sslmethod=TLSv1_METHOD"),
            EndpointError::UnknownKey {
                kind: "ssl server".into(),
                key: "sslmethod".into(),
            }
        );
        assert_mentions(
            &server_err("ssl:443:dhParameters=dh.pem"),
            &["(known: port, privateKey, certKey, extraCertChain, interface, backlog, alpn)"],
        );
        for bad in [
            "",
            "h2,",
            ",h2",
            "h2,,http/1.1",
            "http 1.1",
            "h2;q=1,caf\u{e9}",
        ] {
            assert_bad_value(&server_err(&format!("ssl:443:alpn={bad}")), "alpn", bad);
        }
        assert_bad_value(
            &server_err(&format!("ssl:443:alpn={}", "x".repeat(256))),
            "alpn",
            &"x".repeat(256),
        );
        assert_bad_value(&server_err("ssl:443:privateKey="), "privateKey", "");
        assert_bad_value(&server_err("ssl:443:certKey="), "certKey", "");
        assert_bad_value(&server_err("ssl:443:extraCertChain="), "extraCertChain", "");
        assert_bad_value(
            &server_err("ssl:443:interface=localhost"),
            "interface",
            "localhost",
        );
        assert_bad_value(&server_err("ssl:443:backlog=0"), "backlog", "0");
        assert_eq!(
            server_err("ssl:https"),
            EndpointError::BadPort {
                value: "https".into()
            }
        );
        assert_eq!(
            server_err("ssl:privateKey=k.pem"),
            EndpointError::Missing {
                kind: "ssl server".into(),
                what: "port".into(),
            }
        );
        assert_eq!(
            client_err("tls:host=example.org"),
            EndpointError::Missing {
                kind: "tls client".into(),
                what: "port".into(),
            }
        );
        assert_bad_value(&client_err("tls:host=:port=443"), "host", "");
        assert_bad_value(&client_err("tls:h:443:trustRoots="), "trustRoots", "");
        assert_bad_value(&client_err("tls:h:443:timeout=soon"), "timeout", "soon");
        assert_bad_value(
            &client_err("tls:h:443:bindAddress=nowhere"),
            "bindAddress",
            "nowhere",
        );
        assert_eq!(
            client_err("tls:h:443:certificate=c.pem"),
            EndpointError::UnknownKey {
                kind: "tls client".into(),
                key: "certificate".into(),
            }
        );
        assert!(matches!(
            client_err("tls:h:443:extra"),
            EndpointError::TooManyArguments { .. }
        ));
    }

    #[test]
    fn missing_kind() {
        let err = server_err(":80");
        assert!(matches!(err, EndpointError::Syntax { .. }), "{err:?}");
        assert_mentions(&err, &["':80'", "kind"]);
        assert!(matches!(client_err(":"), EndpointError::Syntax { .. }));
    }

    #[test]
    fn trailing_backslash() {
        let err = server_err(r"unix:/tmp/x\");
        assert_eq!(
            err,
            EndpointError::Syntax {
                description: r"unix:/tmp/x\".into(),
                reason: r"it ends with a lone backslash (write '\\' for a backslash)".into(),
            }
        );
        assert_mentions(&err, &[r"'unix:/tmp/x\'", "backslash"]);
        assert!(matches!(
            client_err(r"tcp:h:80\"),
            EndpointError::Syntax { .. }
        ));
        assert!(matches!(server_err(r"\"), EndpointError::Syntax { .. }));
        // An escaped backslash at the end is fine.
        assert_eq!(server_ok(r"unix:/tmp/x\\"), unix_server(r"/tmp/x\"));
    }

    #[test]
    fn empty_key() {
        let err = server_err("tcp:80:=x");
        assert!(matches!(err, EndpointError::Syntax { .. }), "{err:?}");
        assert_mentions(&err, &["'=x'", "empty key"]);
        let err = client_err("unix:/p:=");
        assert!(matches!(err, EndpointError::Syntax { .. }), "{err:?}");
        assert_mentions(&err, &["'='", "empty key"]);
    }

    #[test]
    fn empty_fields() {
        for description in ["tcp:80:", "tcp:80::backlog=1", "tcp:", "unix:", "unix::/p"] {
            let err = server_err(description);
            assert!(matches!(err, EndpointError::Syntax { .. }), "{err:?}");
            assert_mentions(&err, &[&format!("'{description}'"), "empty"]);
        }
        assert!(matches!(
            client_err("tcp:h::80"),
            EndpointError::Syntax { .. }
        ));
    }

    #[test]
    fn unknown_keys() {
        let err = server_err("tcp:80:colour=red");
        assert_eq!(
            err,
            EndpointError::UnknownKey {
                kind: "tcp server".into(),
                key: "colour".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "unknown parameter 'colour' for a tcp server endpoint \
             (known: port, interface, backlog)"
        );
        for (description, kind, key) in [
            ("tcp6:80:timeout=1", "tcp6 server", "timeout"),
            ("unix:/s:path=/p", "unix server", "path"),
            ("unix:/s:checkPID=1", "unix server", "checkPID"),
            ("tcp:80:Backlog=1", "tcp server", "Backlog"),
            (r"tcp:80:a\=b=c", "tcp server", "a=b"),
        ] {
            let err = server_err(description);
            assert_eq!(
                err,
                EndpointError::UnknownKey {
                    kind: kind.into(),
                    key: key.into(),
                }
            );
            assert_mentions(&err, &[&format!("'{key}'"), kind]);
        }
        for (description, kind, key) in [
            ("tcp:h:80:interface=1.2.3.4", "tcp client", "interface"),
            (
                "tcp6:h:80:bindaddress=\\:\\:1",
                "tcp6 client",
                "bindaddress",
            ),
            ("unix:/s:address=/p", "unix client", "address"),
            ("unix:/s:lockfile=1", "unix client", "lockfile"),
        ] {
            let err = client_err(description);
            assert_eq!(
                err,
                EndpointError::UnknownKey {
                    kind: kind.into(),
                    key: key.into(),
                }
            );
            assert_mentions(&err, &[&format!("'{key}'"), kind]);
        }
        assert_mentions(
            &client_err("unix:/s:mode=1"),
            &["(known: path, timeout, checkPID)"],
        );
    }

    #[test]
    fn unknown_key_message_for_a_foreign_label() {
        let err = EndpointError::UnknownKey {
            kind: "quic server".into(),
            key: "x".into(),
        };
        assert_eq!(
            err.to_string(),
            "unknown parameter 'x' for a quic server endpoint"
        );
    }

    #[test]
    fn duplicate_keys() {
        for (description, key) in [
            ("tcp:80:port=81", "port"),
            ("tcp:port=80:port=81", "port"),
            ("tcp:port=80:81", "port"),
            ("tcp:80:backlog=1:backlog=2", "backlog"),
            ("unix:/a:address=/b", "address"),
            ("unix:/a:lockfile=1:lockfile=1", "lockfile"),
        ] {
            let err = server_err(description);
            assert_eq!(err, EndpointError::DuplicateKey { key: key.into() });
            assert_eq!(
                err.to_string(),
                format!("parameter '{key}' given more than once")
            );
        }
        for (description, key) in [
            ("tcp:host=a:port=1:b", "host"),
            ("tcp:a:1:port=2", "port"),
            ("tcp:a:1:timeout=1:timeout=2", "timeout"),
            ("unix:/a:path=/b", "path"),
            ("unix:/a:checkPID=0:checkPID=0", "checkPID"),
        ] {
            let err = client_err(description);
            assert_eq!(err, EndpointError::DuplicateKey { key: key.into() });
            assert_mentions(&err, &[&format!("'{key}'")]);
        }
    }

    #[test]
    fn too_many_arguments() {
        let err = server_err("tcp:80:81");
        assert_eq!(
            err,
            EndpointError::TooManyArguments {
                kind: "tcp server".into(),
                extra: "81".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "too many arguments for a tcp server endpoint: unexpected '81'"
        );
        assert_eq!(
            server_err(r"unix:/a:/b\:c"),
            EndpointError::TooManyArguments {
                kind: "unix server".into(),
                extra: "/b:c".into(),
            }
        );
        let err = client_err("tcp6:h:80:extra");
        assert_eq!(
            err,
            EndpointError::TooManyArguments {
                kind: "tcp6 client".into(),
                extra: "extra".into(),
            }
        );
        assert_mentions(&err, &["'extra'", "tcp6 client"]);
        assert!(matches!(
            client_err("unix:/a:/b"),
            EndpointError::TooManyArguments { .. }
        ));
    }

    #[test]
    fn missing_parameters() {
        let err = client_err("tcp:host=example.com");
        assert_eq!(
            err,
            EndpointError::Missing {
                kind: "tcp client".into(),
                what: "port".into(),
            }
        );
        assert_eq!(err.to_string(), "tcp client endpoint needs 'port'");
        for (description, kind, what) in [
            ("tcp", "tcp server", "port"),
            ("tcp6:backlog=5", "tcp6 server", "port"),
            ("unix", "unix server", "address"),
            ("unix:mode=600", "unix server", "address"),
        ] {
            let err = server_err(description);
            assert_eq!(
                err,
                EndpointError::Missing {
                    kind: kind.into(),
                    what: what.into(),
                }
            );
            assert_eq!(err.to_string(), format!("{kind} endpoint needs '{what}'"));
        }
        for (description, kind, what) in [
            ("tcp", "tcp client", "host"),
            ("tcp:port=80", "tcp client", "host"),
            ("tcp6:example.com", "tcp6 client", "port"),
            ("unix:timeout=1", "unix client", "path"),
        ] {
            let err = client_err(description);
            assert_eq!(
                err,
                EndpointError::Missing {
                    kind: kind.into(),
                    what: what.into(),
                }
            );
            assert_eq!(err.to_string(), format!("{kind} endpoint needs '{what}'"));
        }
    }

    // --- bad descriptions: values --------------------------------------------

    #[test]
    fn bad_ports() {
        let err = server_err("tcp:http");
        assert_eq!(
            err,
            EndpointError::BadPort {
                value: "http".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "bad port 'http': expected a number from 0 to 65535"
        );
        for (description, value) in [
            ("tcp:65536", "65536"),
            ("tcp:-1", "-1"),
            ("tcp:+80", "+80"),
            ("tcp: 80", " 80"),
            ("tcp:80 ", "80 "),
            ("tcp:8.0", "8.0"),
            ("tcp:port=", ""),
            ("tcp6:99999999999999999999999", "99999999999999999999999"),
            (r"tcp:8\:0", "8:0"),
        ] {
            let err = server_err(description);
            assert_eq!(
                err,
                EndpointError::BadPort {
                    value: value.into()
                }
            );
            assert_mentions(&err, &[&format!("'{value}'")]);
        }
        assert_eq!(
            client_err("tcp:h:port=x"),
            EndpointError::BadPort { value: "x".into() }
        );
        assert_eq!(
            client_err("tcp6:h:70000"),
            EndpointError::BadPort {
                value: "70000".into()
            }
        );
    }

    #[test]
    fn bad_interfaces() {
        assert_bad_value(
            &server_err("tcp:80:interface=localhost"),
            "interface",
            "localhost",
        );
        assert_bad_value(&server_err(r"tcp:80:interface=\:\:1"), "interface", "::1");
        assert_bad_value(
            &server_err("tcp6:80:interface=127.0.0.1"),
            "interface",
            "127.0.0.1",
        );
        assert_bad_value(&server_err("tcp:80:interface=1.2.3"), "interface", "1.2.3");
        assert_bad_value(&server_err("tcp:80:interface="), "interface", "");
        assert_bad_value(
            &server_err(r"tcp6:80:interface=fe80\:\:1%eth0"),
            "interface",
            "fe80::1%eth0",
        );
        assert_mentions(&server_err(r"tcp:80:interface=\:\:1"), &["tcp6"]);
    }

    #[test]
    fn bad_backlogs() {
        for value in ["0", "65536", "x", "-1", "+5", "", "4294967296", "1.5"] {
            assert_bad_value(
                &server_err(&format!("tcp:80:backlog={value}")),
                "backlog",
                value,
            );
            assert_bad_value(
                &server_err(&format!("unix:/s:backlog={value}")),
                "backlog",
                value,
            );
        }
    }

    #[test]
    fn bad_modes() {
        for value in [
            "8",
            "0o660",
            "17777",
            "rw",
            "",
            "-1",
            "0x1ff",
            "99999999999999",
        ] {
            let err = server_err(&format!("unix:/s:mode={value}"));
            assert_bad_value(&err, "mode", value);
            assert_mentions(&err, &["octal"]);
        }
    }

    #[test]
    fn bad_flags() {
        for value in ["2", "yes", "true", "", "01"] {
            let err = server_err(&format!("unix:/s:lockfile={value}"));
            assert_bad_value(&err, "lockfile", value);
            assert_mentions(&err, &["0 or 1"]);
            assert_bad_value(
                &client_err(&format!("unix:/s:checkPID={value}")),
                "checkPID",
                value,
            );
        }
    }

    #[test]
    fn bad_timeouts() {
        for value in [
            "-1",
            "abc",
            "1e3",
            "inf",
            "NaN",
            "",
            ".",
            "1.2.3",
            " 1",
            "+1",
            "1,5",
            "18446744073709551616",
        ] {
            assert_bad_value(
                &client_err(&format!("tcp:h:80:timeout={value}")),
                "timeout",
                value,
            );
            assert_bad_value(
                &client_err(&format!("unix:/s:timeout={value}")),
                "timeout",
                value,
            );
        }
    }

    #[test]
    fn bad_bind_addresses() {
        assert_bad_value(
            &client_err("tcp:h:80:bindAddress=localhost"),
            "bindAddress",
            "localhost",
        );
        assert_bad_value(
            &client_err(r"tcp:h:80:bindAddress=1.2.3.4\:80"),
            "bindAddress",
            "1.2.3.4:80",
        );
        assert_bad_value(&client_err("tcp6:h:80:bindAddress="), "bindAddress", "");
    }

    #[test]
    fn bad_hosts_and_paths() {
        assert_bad_value(&client_err("tcp:host=:port=80"), "host", "");
        assert_bad_value(&server_err("unix:address="), "address", "");
        assert_bad_value(&client_err("unix:path="), "path", "");
        assert_bad_value(&server_err("unix:/a\0b"), "address", "/a\0b");
        assert_bad_value(&client_err("unix:path=\0"), "path", "\0");
    }

    #[test]
    fn errors_name_the_first_problem() {
        // Grammar first, then parameters, then values in a fixed order.
        assert!(matches!(
            server_err(r"tcp:http:colour=red\"),
            EndpointError::Syntax { .. }
        ));
        assert!(matches!(
            server_err("tcp:http:colour=red"),
            EndpointError::UnknownKey { .. }
        ));
        assert!(matches!(
            server_err("tcp:http:backlog=0"),
            EndpointError::BadPort { .. }
        ));
    }

    // --- properties ----------------------------------------------------------

    /// Strings made mostly of the characters that matter to the grammar,
    /// behind a known kind, so that generated input reaches past the kind.
    fn endpointish() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                Just(""),
                Just("tcp:"),
                Just("tcp6:"),
                Just("unix:"),
                Just("ssl:"),
                Just("tls:")
            ],
            "[a-zA-Z0-9:=\\\\.\\-+ /%\u{0}é]{0,40}",
        )
            .prop_map(|(kind, rest)| format!("{kind}{rest}"))
    }

    /// Non-empty strings without NUL: the paths and hosts parsing accepts.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z/:=\\\\. ]{1,20}",
            any::<String>().prop_filter("non-empty, no NUL", |s| {
                !s.is_empty() && !s.contains('\0')
            }),
        ]
    }

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..100_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            (0u64..100).prop_map(Duration::from_millis),
        ]
    }

    fn server_description() -> impl Strategy<Value = ServerDescription> {
        prop_oneof![
            (
                any::<u16>(),
                proptest::option::of(any::<Ipv4Addr>()),
                proptest::option::of(1u32..=65535),
            )
                .prop_map(|(port, interface, backlog)| ServerDescription::Tcp {
                    port,
                    interface: interface.map(IpAddr::V4),
                    backlog,
                    ipv6: false,
                }),
            (
                any::<u16>(),
                proptest::option::of(any::<Ipv6Addr>()),
                proptest::option::of(1u32..=65535),
            )
                .prop_map(|(port, interface, backlog)| ServerDescription::Tcp {
                    port,
                    interface: interface.map(IpAddr::V6),
                    backlog,
                    ipv6: true,
                }),
            (
                text(),
                proptest::option::of(0u32..=0o7777),
                proptest::option::of(1u32..=65535),
                any::<bool>(),
            )
                .prop_map(|(path, mode, backlog, lockfile)| ServerDescription::Unix {
                    path: path.into(),
                    mode,
                    backlog,
                    lockfile,
                }),
            (
                any::<u16>(),
                text(),
                text(),
                proptest::option::of(text()),
                proptest::option::of(any::<IpAddr>()),
                proptest::option::of(1u32..=65535),
                proptest::collection::vec("[!-~]{1,12}", 0..3),
            )
                .prop_map(|(port, key, cert, chain, interface, backlog, alpn)| {
                    ServerDescription::Ssl {
                        port,
                        private_key: key.into(),
                        cert_key: cert.into(),
                        extra_cert_chain: chain.map(PathBuf::from),
                        interface,
                        backlog,
                        alpn: alpn.into_iter().filter(|n| !n.contains(',')).collect(),
                    }
                }),
        ]
    }

    fn client_description() -> impl Strategy<Value = ClientDescription> {
        prop_oneof![
            (
                text(),
                any::<u16>(),
                proptest::option::of(duration()),
                proptest::option::of(any::<IpAddr>()),
                any::<bool>(),
            )
                .prop_map(|(host, port, timeout, bind_address, ipv6)| {
                    ClientDescription::Tcp {
                        host,
                        port,
                        timeout,
                        bind_address,
                        ipv6,
                    }
                }),
            (text(), proptest::option::of(duration()), any::<bool>()).prop_map(
                |(path, timeout, check_pid)| ClientDescription::Unix {
                    path: path.into(),
                    timeout,
                    check_pid,
                }
            ),
            (
                text(),
                any::<u16>(),
                proptest::option::of(text()),
                proptest::option::of(duration()),
                proptest::option::of(any::<IpAddr>()),
            )
                .prop_map(|(host, port, roots, timeout, bind_address)| {
                    ClientDescription::Tls {
                        host,
                        port,
                        trust_roots: roots.map(PathBuf::from),
                        timeout,
                        bind_address,
                    }
                }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parsers_never_panic_on_arbitrary_strings(s in any::<String>()) {
            let _ = parse_server(&s);
            let _ = parse_client(&s);
        }

        #[test]
        fn parsers_never_panic_on_endpoint_like_strings(s in endpointish()) {
            let _ = parse_server(&s);
            let _ = parse_client(&s);
        }

        #[test]
        fn server_display_round_trips(server in server_description()) {
            let printed = server.to_string();
            prop_assert_eq!(parse_server(&printed), Ok(server), "printed as {:?}", printed);
        }

        #[test]
        fn client_display_round_trips(client in client_description()) {
            let printed = client.to_string();
            prop_assert_eq!(parse_client(&printed), Ok(client), "printed as {:?}", printed);
        }

        #[test]
        fn printing_what_parses_is_stable(s in endpointish()) {
            if let Ok(server) = parse_server(&s) {
                let printed = server.to_string();
                prop_assert_eq!(parse_server(&printed), Ok(server.clone()));
                prop_assert_eq!(parse_server(&printed).map(|d| d.to_string()), Ok(printed));
            }
            if let Ok(client) = parse_client(&s) {
                let printed = client.to_string();
                prop_assert_eq!(parse_client(&printed), Ok(client.clone()));
                prop_assert_eq!(parse_client(&printed).map(|d| d.to_string()), Ok(printed));
            }
        }
    }
}
