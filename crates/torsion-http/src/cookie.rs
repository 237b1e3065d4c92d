//! Cookies (RFC 6265): reading the `Cookie` header of a request and
//! building a `Set-Cookie` header for a response.
//!
//! A `Set-Cookie` value is assembled from parts an application may take
//! from users, so every part is checked: a `;` or a line break in a value
//! would let one cookie set attributes of another, or a new header.

use crate::headers::is_token;
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// A cookie attribute that cannot be sent.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidCookie {
    /// The name is not a token.
    #[error("invalid cookie name {0:?}")]
    Name(String),
    /// The value holds a character outside `cookie-octet`.
    #[error("invalid value for cookie {0:?}")]
    Value(String),
    /// The `Path` or `Domain` holds a `;` or a control character.
    #[error("invalid attribute for cookie {0:?}")]
    Attribute(String),
}

/// The `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`
    Strict,
    /// `SameSite=Lax`
    Lax,
    /// `SameSite=None` (browsers require `Secure` with it).
    None,
}

/// A cookie to set on the client.
///
/// ```
/// use std::time::Duration;
/// use torsion_http::{Cookie, SameSite};
/// let c = Cookie::new("session", "abc123")
///     .path("/")
///     .max_age(Duration::from_secs(3600))
///     .http_only(true)
///     .same_site(SameSite::Lax);
/// assert_eq!(
///     c.to_header().unwrap(),
///     "session=abc123; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
/// );
/// assert!(Cookie::new("a", "b; Domain=evil").to_header().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    name: String,
    value: String,
    path: Option<String>,
    domain: Option<String>,
    max_age: Option<Duration>,
    expires: Option<SystemTime>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
}

impl Cookie {
    /// A session cookie `name=value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Cookie {
            name: name.into(),
            value: value.into(),
            path: None,
            domain: None,
            max_age: None,
            expires: None,
            secure: false,
            http_only: false,
            same_site: None,
        }
    }

    /// Sets `Path`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets `Domain`.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets `Max-Age` (whole seconds).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Sets `Expires`.
    pub fn expires(mut self, at: SystemTime) -> Self {
        self.expires = Some(at);
        self
    }

    /// Sets or clears `Secure`.
    pub fn secure(mut self, on: bool) -> Self {
        self.secure = on;
        self
    }

    /// Sets or clears `HttpOnly`.
    pub fn http_only(mut self, on: bool) -> Self {
        self.http_only = on;
        self
    }

    /// Sets `SameSite`.
    pub fn same_site(mut self, s: SameSite) -> Self {
        self.same_site = Some(s);
        self
    }

    /// The `Set-Cookie` value, or why it cannot be sent.
    pub fn to_header(&self) -> Result<String, InvalidCookie> {
        if !is_token(self.name.as_bytes()) {
            return Err(InvalidCookie::Name(self.name.clone()));
        }
        let inner = self
            .value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(&self.value);
        if !inner.bytes().all(is_cookie_octet) {
            return Err(InvalidCookie::Value(self.name.clone()));
        }
        let mut s = format!("{}={}", self.name, self.value);
        for (attr, v) in [("Path", &self.path), ("Domain", &self.domain)] {
            if let Some(v) = v {
                if v.bytes().any(|b| b == b';' || b < 0x20 || b == 0x7f) {
                    return Err(InvalidCookie::Attribute(self.name.clone()));
                }
                s.push_str(&format!("; {attr}={v}"));
            }
        }
        if let Some(age) = self.max_age {
            s.push_str(&format!("; Max-Age={}", age.as_secs()));
        }
        if let Some(at) = self.expires {
            s.push_str(&format!("; Expires={}", httpdate::fmt_http_date(at)));
        }
        if self.secure {
            s.push_str("; Secure");
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if let Some(ss) = self.same_site {
            s.push_str(match ss {
                SameSite::Strict => "; SameSite=Strict",
                SameSite::Lax => "; SameSite=Lax",
                SameSite::None => "; SameSite=None",
            });
        }
        Ok(s)
    }
}

/// `cookie-octet` of RFC 6265 §4.1.1.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// Parses the `Cookie` request headers into (name, value) pairs, in order.
pub(crate) fn parse_cookie_header<'a>(
    values: impl Iterator<Item = &'a str>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in values {
        for pair in v.split(';') {
            let pair = pair.trim();
            if let Some((n, v)) = pair.split_once('=') {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|x| x.strip_suffix('"'))
                    .unwrap_or(v);
                out.push((n.trim().to_string(), v.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let c = parse_cookie_header(["a=1; b=\"two\"", "c = 3;;junk"].into_iter());
        assert_eq!(
            c,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "two".into()),
                ("c".into(), "3".into())
            ]
        );
    }

    #[test]
    fn refuses_injection() {
        assert!(Cookie::new("a b", "v").to_header().is_err());
        assert!(Cookie::new("a", "v\r\nX: y").to_header().is_err());
        assert!(Cookie::new("a", "v").path("/; Secure").to_header().is_err());
        assert!(Cookie::new("a", "\"quoted\"").to_header().is_ok());
    }
}
