//! Which web pages may open the signaling socket: the origin check of
//! `/ws`, as a pure policy.
//!
//! A browser sends `Origin` with every WebSocket upgrade. Comparing it with
//! the request's own `Host` (what huddle did first) lets DNS rebinding
//! through: a page on `http://evil.example:8080` whose name the attacker
//! re-points at the server sends `Host: evil.example:8080` too, so the two
//! always agree. The policy therefore compares the origin only with names
//! the server was *configured* with, never with anything in the request:
//!
//! - `--public-url` (the address users open, e.g. behind a reverse proxy);
//! - every `--allowed-origin`;
//! - the names of the TLS certificate (its DNS names, or the self-signed
//!   certificate's names and addresses), with the listener's scheme and port;
//! - the machine's own names with the listener's scheme and port: localhost,
//!   127.0.0.1 and \[::1\] always, the listen address, and when listening on a
//!   wildcard address (0.0.0.0, LAN use) the host name and every local
//!   address, the same list a self-signed certificate covers.
//!
//! An attacker cannot make a victim's browser send any of those origins
//! without controlling the name itself. A request without `Origin` is not
//! from a browser page and passes (browsers always send it on upgrades).

use std::fmt;
use std::net::IpAddr;

use axum::http::Uri;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The port a URL of this scheme means when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A web origin: scheme, host (lower case; IPv6 in brackets; may start with
/// `*.` for a certificate's wildcard name) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Lower-case host name or address.
    pub host: String,
    /// The port, default ports made explicit.
    pub port: u16,
}

/// Why a URL is not a usable origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Not a URL at all.
    #[error("not a URL (expected something like https://chat.example.com)")]
    NotAUrl,
    /// A scheme other than http or https.
    #[error("the scheme must be http or https")]
    Scheme,
    /// No host name.
    #[error("the URL has no host")]
    NoHost,
}

impl Origin {
    /// Parses the origin of a URL such as `https://chat.example.com/` or
    /// `http://192.0.2.7:8080` (a path is allowed and ignored).
    pub fn parse(url: &str) -> Result<Self, OriginError> {
        let uri: Uri = url.trim().parse().map_err(|_| OriginError::NotAUrl)?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(_) => return Err(OriginError::Scheme),
            None => return Err(OriginError::NotAUrl),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(OriginError::NoHost)?;
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(scheme.default_port()),
        })
    }

    /// The origin of `host` (a name or an address) served with `scheme` on `port`.
    pub fn new(scheme: Scheme, host: &str, port: u16) -> Self {
        let host = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => host.to_ascii_lowercase(),
        };
        Self { scheme, host, port }
    }

    /// Whether the page origin `other` is this one (a wildcard host
    /// `*.example.com` covers exactly one more label, as in certificates).
    fn covers(&self, other: &Origin) -> bool {
        if self.scheme != other.scheme || self.port != other.port {
            return false;
        }
        match self.host.strip_prefix("*.") {
            Some(parent) => other
                .host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => self.host == other.host,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// The origins allowed to open `/ws`. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Vec<Origin>,
    /// `--allowed-origin` values that are not URLs (like `null`), compared as text.
    literal: Vec<String>,
}

impl OriginPolicy {
    /// A policy allowing `origins` plus the operator's `--allowed-origin`
    /// values.
    pub fn new(origins: impl IntoIterator<Item = Origin>, allowed_origins: &[String]) -> Self {
        let mut policy = Self::default();
        for o in origins {
            policy.push(o);
        }
        for a in allowed_origins {
            match Origin::parse(a) {
                Ok(o) => policy.push(o),
                Err(_) => policy.literal.push(a.trim_end_matches('/').to_owned()),
            }
        }
        policy
    }

    fn push(&mut self, o: Origin) {
        if !self.allowed.contains(&o) {
            self.allowed.push(o);
        }
    }

    /// Whether an upgrade carrying this `Origin` header (None: no header)
    /// may proceed.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = origin.trim().trim_end_matches('/');
        if self.literal.iter().any(|l| l.eq_ignore_ascii_case(origin)) {
            return true;
        }
        // An origin is scheme://host[:port] and nothing more.
        let Ok(page) = Origin::parse(origin) else {
            return false;
        };
        let bare = origin
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.contains('/'));
        bare && self.allowed.iter().any(|a| a.covers(&page))
    }

    /// The allowed origins, for logs and docs.
    pub fn origins(&self) -> impl Iterator<Item = &Origin> {
        self.allowed.iter()
    }
}

/// The origins of the machine itself when it serves `scheme` on `port`:
/// one per name in `names` (host names and addresses, as
/// [`crate::tls::local_names`] lists them).
pub fn machine_origins(scheme: Scheme, names: &[String], port: u16) -> Vec<Origin> {
    names.iter().map(|n| Origin::new(scheme, n, port)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OriginPolicy {
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let mut origins = machine_origins(Scheme::Http, &names, 8080);
        origins.push(Origin::parse("https://chat.example.com/").unwrap());
        origins.push(Origin::new(Scheme::Http, "*.lan.example", 8080));
        OriginPolicy::new(origins, &["https://friend.example".to_owned()])
    }

    #[test]
    fn the_server_s_own_names_pass() {
        let p = policy();
        for ok in [
            "http://localhost:8080",
            "http://LOCALHOST:8080/",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "https://chat.example.com",
            "https://chat.example.com:443",
            "https://friend.example",
            "http://box.lan.example:8080",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        assert!(p.allows(None), "no Origin: not a browser page");
    }

    #[test]
    fn a_rebinding_page_is_refused_whatever_host_it_sends() {
        let p = policy();
        for bad in [
            "http://evil.example:8080",
            "http://localhost:8081",
            "https://localhost:8080",
            "http://chat.example.com",
            "https://chat.example.com.evil",
            "http://a.b.lan.example:8080",
            "http://lan.example:8080",
            "null",
            "",
            "http://localhost:8080/path",
            "javascript:alert(1)",
        ] {
            assert!(!p.allows(Some(bad)), "{bad}");
        }
    }

    #[test]
    fn origins_parse_and_print_without_default_ports() {
        let o = Origin::parse("https://Chat.Example.com:443/r/x").unwrap();
        assert_eq!(o.to_string(), "https://chat.example.com");
        assert_eq!(
            Origin::new(Scheme::Http, "::1", 8080).to_string(),
            "http://[::1]:8080"
        );
        assert_eq!(Origin::parse("ftp://x"), Err(OriginError::Scheme));
        assert_eq!(Origin::parse("chat.example.com"), Err(OriginError::NotAUrl));
    }

    #[test]
    fn literal_allowed_origins_still_work() {
        let p = OriginPolicy::new([], &["null".to_owned()]);
        assert!(p.allows(Some("null")));
        assert!(!p.allows(Some("http://x")));
    }
}
