//! The client side of a connection to a huddle server, shared by
//! `huddle bot` and `huddle load`: the socket URL from what a user types,
//! and the WebSocket connection, plain (`ws://`) or TLS (`wss://`).
//!
//! TLS trusts the usual public roots (Mozilla's, built in) and, with
//! `--ca-file`, the certificates in a PEM file: a private CA, or the
//! self-signed certificate of a `huddle --tls-self-signed` server.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// A connection to the server.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a server address or a CA file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server address is not usable.
    #[error("bad server address {url:?}: {why}")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The CA file cannot be read or holds no certificate.
    #[error("--ca-file {path}: {why}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// The `/ws` URL for a server address: `ws://` or `wss://host:port/ws` as it
/// is, or a site's base URL (`http://host:port`, `https://host/huddle`) with
/// `/ws` added.
pub fn socket_url(server: &str) -> Result<String, ClientError> {
    let bad = |why: &str| ClientError::BadUrl {
        url: server.to_owned(),
        why: why.to_owned(),
    };
    let s = server.trim();
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| bad("expected http(s)://host[:port] or ws(s)://host[:port]/ws"))?;
    let scheme = scheme.to_ascii_lowercase();
    let (ws_scheme, is_socket) = match scheme.as_str() {
        "ws" => ("ws", true),
        "wss" => ("wss", true),
        "http" => ("ws", false),
        "https" => ("wss", false),
        _ => return Err(bad("the scheme must be http, https, ws or wss")),
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let path = match path.trim_end_matches('/') {
        "" => "/ws".to_owned(),
        p if is_socket || p.ends_with("/ws") => p.to_owned(),
        p => format!("{p}/ws"),
    };
    Ok(format!("{ws_scheme}://{host}{path}"))
}

/// A server to connect to: its socket URL and how to open it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `ws://…/ws` or `wss://…/ws`.
    pub url: String,
    /// Which certificates TLS trusts.
    pub connect: Connect,
}

impl Endpoint {
    /// From a `--server` value (see [`socket_url`]) and a `--ca-file`.
    pub fn new(server: &str, ca_file: Option<&Path>) -> Result<Self, ClientError> {
        Ok(Self {
            url: socket_url(server)?,
            connect: Connect::new(ca_file)?,
        })
    }

    /// Opens the WebSocket (see [`Connect::connect`]).
    pub async fn connect(
        &self,
        config: Option<WebSocketConfig>,
    ) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        self.connect.connect(&self.url, config).await
    }
}

/// How to connect: which certificates TLS trusts. Cheap to clone.
#[derive(Clone)]
pub struct Connect {
    connector: Option<Connector>,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("tls", &self.connector.is_some())
            .finish()
    }
}

/// Mozilla's roots (webpki-roots), plus every certificate in the PEM file
/// `ca_file` if given; why that file cannot be used otherwise. Shared by
/// `huddle bot`, `huddle load` and `huddle doctor`.
pub fn trusted_roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| e.to_string())?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err("no CERTIFICATE block found (expected a PEM file)".into());
        }
        for cert in certs {
            roots.add(cert).map_err(|e| e.to_string())?;
        }
    }
    Ok(roots)
}

impl Connect {
    /// Trusts the public roots, and the certificates in `ca_file` if given.
    pub fn new(ca_file: Option<&Path>) -> Result<Self, ClientError> {
        let roots = trusted_roots(ca_file).map_err(|why| ClientError::CaFile {
            path: ca_file.map(|p| p.display().to_string()).unwrap_or_default(),
            why,
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::CaFile {
                path: String::new(),
                why: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            connector: Some(Connector::Rustls(Arc::new(config))),
        })
    }

    /// Opens the WebSocket at `url` (from [`socket_url`]), with TCP_NODELAY.
    pub async fn connect(
        &self,
        url: &str,
        config: Option<WebSocketConfig>,
    ) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            url,
            config,
            true,
            self.connector.clone(),
        )
        .await?;
        Ok(ws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_urls() {
        assert_eq!(socket_url("ws://h:1/ws").unwrap(), "ws://h:1/ws");
        assert_eq!(socket_url("ws://h:1").unwrap(), "ws://h:1/ws");
        assert_eq!(socket_url("wss://h/x/ws").unwrap(), "wss://h/x/ws");
        assert_eq!(socket_url("http://h:1").unwrap(), "ws://h:1/ws");
        assert_eq!(socket_url("http://h:1/").unwrap(), "ws://h:1/ws");
        assert_eq!(socket_url("HTTP://h:1/ws").unwrap(), "ws://h:1/ws");
        assert_eq!(socket_url("https://h/huddle").unwrap(), "wss://h/huddle/ws");
        for bad in ["h:1", "ftp://h", "http:///ws", ""] {
            assert!(
                matches!(socket_url(bad), Err(ClientError::BadUrl { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("huddle-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        let e = Connect::new(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let e = Connect::new(Some(&dir.join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        assert!(Connect::new(None).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
