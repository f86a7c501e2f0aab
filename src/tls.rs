//! HTTPS/WSS: the certificate (PEM files, or a self-signed one kept in the
//! data directory) and the listener that terminates TLS in front of axum.
//!
//! Handshakes run in their own tasks, so a slow or silent client never holds
//! up the others; a handshake that takes longer than
//! [`TLS_HANDSHAKE_TIMEOUT`] is dropped.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

/// How long a client may take to finish the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a generated self-signed certificate is valid.
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// File names in the data directory.
const CERT_FILE: &str = "self-signed-cert.pem";
const KEY_FILE: &str = "self-signed-key.pem";
const NAMES_FILE: &str = "self-signed-names.txt";

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files given by the operator (`--tls-cert`, `--tls-key`).
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// A self-signed certificate generated on first start and kept in this
    /// directory (`--tls-self-signed`, `--data-dir`).
    SelfSigned {
        /// The data directory.
        data_dir: PathBuf,
    },
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}")]
    File {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the certificate and key.
    #[error("the certificate and key do not work together")]
    Rustls(#[from] rustls::Error),
    /// Generating a certificate failed.
    #[error("cannot generate a self-signed certificate")]
    Generate(#[from] rcgen::Error),
}

fn file_err(path: &Path) -> impl FnOnce(io::Error) -> TlsError + '_ {
    move |source| TlsError::File {
        path: path.to_owned(),
        source,
    }
}

/// A loaded certificate: the rustls configuration and what to tell the user.
pub struct Tls {
    /// The acceptor.
    pub acceptor: TlsAcceptor,
    /// For a self-signed certificate: its PEM file (users may import it).
    pub self_signed: Option<PathBuf>,
}

impl Tls {
    /// Loads or generates the certificate. `names` gives the DNS names and
    /// addresses a self-signed certificate must cover (asked only for one).
    pub fn load(source: &TlsSource, names: impl FnOnce() -> Vec<String>) -> Result<Self, TlsError> {
        let (certs, key, self_signed) = match source {
            TlsSource::Files { cert, key } => (read_certs(cert)?, read_key(key)?, None),
            TlsSource::SelfSigned { data_dir } => {
                let (cert, key) = self_signed(data_dir, &names(), SystemTime::now())?;
                (read_certs(&cert)?, read_key(&key)?, Some(cert))
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            self_signed,
        })
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(file_err(path))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "no CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(file_err(path))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        what: format!("no usable private key ({e})"),
    })
}

/// The names a certificate for this machine should cover: localhost, the
/// host name, and every local address (all of them when `listen` is a
/// wildcard address, else the one it names).
pub fn local_names(listen: IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    if let Some(host) = host_name() {
        names.push(host);
    }
    let mut ips: Vec<IpAddr> = vec![
        IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    if listen.is_unspecified() {
        ips.extend(local_addresses());
    } else {
        ips.push(listen);
    }
    for ip in ips {
        let s = ip.to_string();
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

/// The machine's host name, if it has a usable one.
pub fn host_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = raw.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name != "localhost"
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then_some(name)
}

/// Every address of the machine's interfaces, loopback excluded.
pub fn local_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list
            .into_iter()
            .map(|i| i.ip())
            .filter(|ip| !ip.is_loopback())
            // Link-local IPv6 addresses need a zone in URLs; skip them.
            .filter(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
            .collect(),
        Err(e) => {
            warn!(error = %e, "cannot list the network interfaces");
            Vec::new()
        }
    }
}

/// Returns the certificate and key files in `dir`, generating them when
/// they are missing, expire within a week, or do not cover `names`.
pub fn self_signed(
    dir: &Path,
    names: &[String],
    now: SystemTime,
) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join(CERT_FILE);
    let key = dir.join(KEY_FILE);
    let meta = dir.join(NAMES_FILE);
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if let Ok(text) = std::fs::read_to_string(&meta) {
        let mut lines = text.lines();
        let not_after: u64 = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
        let covered: Vec<&str> = lines.collect();
        let fresh = not_after > now_s + 7 * 24 * 3600;
        let covers = names.iter().all(|n| covered.contains(&n.as_str()));
        if fresh && covers && cert.exists() && key.exists() {
            debug!(cert = %cert.display(), "reusing the self-signed certificate");
            return Ok((cert, key));
        }
        info!("the self-signed certificate is old or misses a name; making a new one");
    }
    std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "huddle (self-signed)");
    params.distinguished_name = dn;
    let start = now - Duration::from_secs(3600);
    params.not_before = start.into();
    params.not_after = (now + SELF_SIGNED_VALIDITY).into();
    let key_pair = rcgen::KeyPair::generate()?;
    let generated = params.self_signed(&key_pair)?;
    write_private(&key, key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert, generated.pem()).map_err(file_err(&cert))?;
    let not_after = now_s + SELF_SIGNED_VALIDITY.as_secs();
    let mut listing = format!("{not_after}\n");
    for n in names {
        listing.push_str(n);
        listing.push('\n');
    }
    std::fs::write(&meta, listing).map_err(file_err(&meta))?;
    info!(cert = %cert.display(), names = names.join(" "), "generated a self-signed certificate");
    Ok((cert, key))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(file_err(path))?;
    f.write_all(data).map_err(file_err(path))
}

/// A connection, plain or TLS.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The server's listener: plain TCP, or TCP with TLS handshakes done in
/// their own tasks.
pub enum Listener {
    /// Plain HTTP.
    Plain(TcpListener),
    /// HTTPS: finished handshakes arrive on the channel.
    Tls {
        /// Where the listener is bound.
        local: SocketAddr,
        /// Connections that finished their handshake.
        ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
        /// Stops the accept task when the listener goes.
        _accept: AbortOnDrop,
    },
}

/// Aborts a task when dropped.
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Listener {
    /// Wraps `tcp`, terminating TLS with `acceptor` if given.
    pub fn new(tcp: TcpListener, acceptor: Option<TlsAcceptor>) -> io::Result<Self> {
        let Some(acceptor) = acceptor else {
            return Ok(Self::Plain(tcp));
        };
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(256);
        let task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a bit.
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self::Tls {
            local,
            ready,
            _accept: AbortOnDrop(task),
        })
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls { .. })
    }
}

impl axum::serve::Listener for Listener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            Self::Plain(tcp) => loop {
                match TcpListener::accept(tcp).await {
                    Ok((s, a)) => {
                        // Signaling messages are small and latency-bound:
                        // without TCP_NODELAY, Nagle holds a frame written
                        // right after another until the first is
                        // acknowledged, and the peer's delayed ACK makes
                        // that up to 40 ms.
                        let _ = s.set_nodelay(true);
                        return (Stream::Plain(s), a);
                    }
                    Err(e) => {
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            },
            Self::Tls { ready, .. } => match ready.recv().await {
                Some((s, a)) => (Stream::Tls(Box::new(s)), a),
                // The accept task ended: nothing more will come.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match self {
            Self::Plain(tcp) => tcp.local_addr(),
            Self::Tls { local, .. } => Ok(*local),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("huddle-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_self_signed_certificate_is_made_once_and_reused() {
        let dir = tmp("reuse");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let now = SystemTime::now();
        let (cert, key) = self_signed(&dir, &names, now).unwrap();
        let first = std::fs::read(&cert).unwrap();
        assert!(
            Tls::load(
                &TlsSource::SelfSigned {
                    data_dir: dir.clone()
                },
                || names.clone()
            )
            .is_ok()
        );
        // Same names: reused.
        self_signed(&dir, &names, now).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first);
        // The key is private.
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A new address: regenerated.
        let more = vec!["localhost".to_owned(), "10.1.2.3".to_owned()];
        self_signed(&dir, &more, now).unwrap();
        assert_ne!(std::fs::read(&cert).unwrap(), first);
        // Close to expiry: regenerated.
        let again = std::fs::read(&cert).unwrap();
        self_signed(&dir, &more, now + SELF_SIGNED_VALIDITY).unwrap();
        assert_ne!(std::fs::read(&cert).unwrap(), again);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_pem_files_get_clear_errors() {
        let dir = tmp("bad");
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let err = Tls::load(
            &TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            Vec::new,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("cert.pem") && err.contains("no CERTIFICATE"),
            "{err}"
        );
        let missing = dir.join("missing.pem");
        let err = Tls::load(&TlsSource::Files { cert: missing, key }, Vec::new)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn local_names_cover_localhost_and_the_listen_address() {
        let names = local_names("192.0.2.7".parse().unwrap());
        for n in ["localhost", "127.0.0.1", "::1", "192.0.2.7"] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
    }
}
