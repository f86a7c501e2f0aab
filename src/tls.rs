//! HTTPS/WSS: the certificate (PEM files, or a self-signed one kept in the
//! data directory) and the listener that terminates TLS in front of axum.
//!
//! Handshakes run in each connection's own task, so a slow or silent client
//! never holds up the others; at most `--max-tls-handshakes` run at once,
//! and one that takes longer than [`TLS_HANDSHAKE_TIMEOUT`] (waiting for its
//! turn included) is dropped.

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
use tokio::sync::Semaphore;
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
    /// The self-signed key can be read by other users.
    #[error(
        "{path} can be read by other users, so the key may have leaked: delete it (huddle makes a new certificate) or, if only you can have read it, chmod 600 it"
    )]
    KeyNotPrivate {
        /// The key file.
        path: PathBuf,
    },
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
    /// The names the certificate covers (DNS names of an operator's
    /// certificate; names and addresses of a self-signed one): their
    /// origins may open `/ws`.
    pub names: Vec<String>,
}

impl Tls {
    /// Loads or generates the certificate. `names` gives the DNS names and
    /// addresses a self-signed certificate must cover (asked only for one).
    ///
    /// A self-signed key readable by group or others is refused (it may have
    /// leaked); one whose certificate does not match it (a crash between
    /// writing the two) is made anew. An operator's key readable by others
    /// gets a warning: its permissions are the operator's business.
    pub fn load(source: &TlsSource, names: impl FnOnce() -> Vec<String>) -> Result<Self, TlsError> {
        match source {
            TlsSource::Files { cert, key } => {
                warn_if_readable_by_others(key);
                let certs = read_certs(cert)?;
                let names = dns_names(&certs[0]);
                let acceptor = acceptor(certs, read_key(key)?)?;
                Ok(Self {
                    acceptor,
                    self_signed: None,
                    names,
                })
            }
            TlsSource::SelfSigned { data_dir } => {
                let names = names();
                let now = SystemTime::now();
                let (cert, key) = self_signed(data_dir, &names, now)?;
                let acceptor = match acceptor(read_certs(&cert)?, read_key(&key)?) {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, dir = %data_dir.display(), "the self-signed certificate and key do not match; making new ones");
                        let (cert, key) = generate(data_dir, &names, now)?;
                        acceptor(read_certs(&cert)?, read_key(&key)?)?
                    }
                };
                Ok(Self {
                    acceptor,
                    self_signed: Some(cert),
                    names,
                })
            }
        }
    }
}

/// The rustls acceptor for a chain and its key (rustls checks that they
/// belong together).
fn acceptor(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // `stun.turn` (RFC 7443) for TURN clients that say so; the listener
    // tells the others by their first bytes (src/sniff.rs).
    config.alpn_protocols = vec![b"http/1.1".to_vec(), crate::sniff::ALPN_STUN_TURN.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The DNS names of a certificate (its subject alternative names).
fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    match webpki::EndEntityCert::try_from(cert) {
        Ok(ee) => ee.valid_dns_names().map(str::to_ascii_lowercase).collect(),
        Err(e) => {
            warn!(error = ?e, "cannot read the certificate's names; only the machine's own names may open /ws (set --public-url)");
            Vec::new()
        }
    }
}

/// Whether a file's mode lets group or others read or write it.
fn readable_by_others(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o077 != 0
}

fn warn_if_readable_by_others(key: &Path) {
    if std::fs::metadata(key).is_ok_and(|m| readable_by_others(&m)) {
        warn!(
            key = %key.display(),
            "the TLS private key is readable by other users; make it private (chmod 600)"
        );
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

/// The address a socket bound to LOCAL advertises: CONFIGURED if given,
/// else the bound address, else (bound to every interface) the machine's
/// first address of the same family. `None` when there is none.
pub fn advertised_ip(configured: Option<IpAddr>, local: std::net::SocketAddr) -> Option<IpAddr> {
    match configured {
        Some(ip) => Some(ip),
        None if !local.ip().is_unspecified() => Some(local.ip()),
        None => local_addresses()
            .into_iter()
            .find(|ip| ip.is_ipv4() == local.is_ipv4()),
    }
}

/// Returns the certificate and key files in `dir`, generating them when
/// they are missing, expire within a week, or do not cover `names`.
///
/// A key found with permissions for group or others is refused with
/// [`TlsError::KeyNotPrivate`]: it may have been read, and silently
/// tightening it would hide that.
pub fn self_signed(
    dir: &Path,
    names: &[String],
    now: SystemTime,
) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join(CERT_FILE);
    let key = dir.join(KEY_FILE);
    let meta = dir.join(NAMES_FILE);
    if let Ok(m) = std::fs::metadata(&key)
        && readable_by_others(&m)
    {
        return Err(TlsError::KeyNotPrivate { path: key });
    }
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
    generate(dir, names, now)
}

/// Makes a new self-signed certificate and key in `dir`.
///
/// Each file is written to a temporary file, synced, and renamed over the
/// old one, key first, then certificate, then the list of names (which
/// says the pair is complete): a crash leaves either the old files, or a
/// new key with an old certificate, which [`Tls::load`] notices (they do
/// not match) and repairs, never a half-written file.
fn generate(dir: &Path, names: &[String], now: SystemTime) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join(CERT_FILE);
    let key = dir.join(KEY_FILE);
    let meta = dir.join(NAMES_FILE);
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
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
    let not_after = now_s + SELF_SIGNED_VALIDITY.as_secs();
    let mut listing = format!("{not_after}\n");
    for n in names {
        listing.push_str(n);
        listing.push('\n');
    }
    // The names go first: a stale list would make the next start reuse
    // a pair it should not, so it is removed until the pair is complete.
    let _ = std::fs::remove_file(&meta);
    write_atomically(&key, key_pair.serialize_pem().as_bytes())?;
    write_atomically(&cert, generated.pem().as_bytes())?;
    write_atomically(&meta, listing.as_bytes())?;
    // The renames are durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    info!(cert = %cert.display(), names = names.join(" "), "generated a self-signed certificate");
    Ok((cert, key))
}

/// Writes `data` to `path` through a temporary file in the same directory
/// (made only its owner can read, whatever the umask), synced, then
/// renamed over `path`: readers see the old file or the new one, whole,
/// and the result is mode 0600 even if the old file was not.
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(file_err(&tmp))?;
    let written = f.write_all(data).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(TlsError::File {
            path: path.to_owned(),
            source: e,
        });
    }
    Ok(())
}

/// A connection, plain or TLS.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The ALPN protocol agreed in the TLS handshake, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.get_ref().1.alpn_protocol(),
        }
    }

    /// Whether this is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
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

/// The server's listener: accepts TCP connections; a [`Handshaker`] turns
/// each into a [`Stream`] (plain, or after its TLS handshake) inside the
/// connection's own task, so a slow or silent client never holds up the
/// others.
pub struct Listener {
    tcp: TcpListener,
    handshaker: Handshaker,
}

/// Turns an accepted TCP connection into a [`Stream`]: nothing to do for
/// plain HTTP; for HTTPS, the TLS handshake, at most `--max-tls-handshakes`
/// at once and within [`TLS_HANDSHAKE_TIMEOUT`] (waiting for a turn
/// included).
#[derive(Clone)]
pub struct Handshaker {
    acceptor: Option<TlsAcceptor>,
    permits: Arc<Semaphore>,
}

impl Listener {
    /// Wraps `tcp`, terminating TLS with `acceptor` if given, with at most
    /// `max_handshakes` handshakes in progress at once.
    pub fn new(tcp: TcpListener, acceptor: Option<TlsAcceptor>, max_handshakes: usize) -> Self {
        Self {
            tcp,
            handshaker: Handshaker {
                acceptor,
                permits: Arc::new(Semaphore::new(max_handshakes.max(1))),
            },
        }
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.handshaker.acceptor.is_some()
    }

    /// Where the listener is bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// What turns accepted connections into streams.
    pub fn handshaker(&self) -> Handshaker {
        self.handshaker.clone()
    }

    /// The next TCP connection, with `TCP_NODELAY` set.
    pub async fn accept(&self) -> (TcpStream, SocketAddr) {
        loop {
            match self.tcp.accept().await {
                Ok((s, a)) => {
                    // Signaling messages are small and latency-bound:
                    // without TCP_NODELAY, Nagle holds a frame written
                    // right after another until the first is
                    // acknowledged, and the peer's delayed ACK makes
                    // that up to 40 ms.
                    let _ = s.set_nodelay(true);
                    return (s, a);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a bit.
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

impl Handshaker {
    /// The connection as a stream, or `None` when its TLS handshake failed
    /// or did not finish in time.
    pub async fn handshake(&self, tcp: TcpStream, peer: SocketAddr) -> Option<Stream> {
        let Some(acceptor) = &self.acceptor else {
            return Some(Stream::Plain(tcp));
        };
        let handshake = async {
            // Waiting for a turn costs a task and a socket, but no CPU and
            // no handshake state.
            let _permit = self.permits.acquire().await.ok()?;
            match acceptor.accept(tcp).await {
                Ok(tls) => Some(tls),
                Err(e) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    None
                }
            }
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
            Ok(tls) => tls.map(|t| Stream::Tls(Box::new(t))),
            Err(_) => {
                debug!(%peer, "TLS handshake timed out");
                None
            }
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

    fn self_signed_source(dir: &Path) -> TlsSource {
        TlsSource::SelfSigned {
            data_dir: dir.to_owned(),
        }
    }

    fn names() -> Vec<String> {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    }

    #[test]
    fn a_found_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tmp("leaky");
        let (_, key) = self_signed(&dir, &names(), SystemTime::now()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Tls::load(&self_signed_source(&dir), names)
            .err()
            .expect("refused");
        assert!(matches!(err, TlsError::KeyNotPrivate { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("self-signed-key.pem") && text.contains("chmod 600"),
            "{text}"
        );
        // Deleting it, as the message says, makes a new private one.
        std::fs::remove_file(&key).unwrap();
        std::fs::remove_file(dir.join(NAMES_FILE)).unwrap();
        Tls::load(&self_signed_source(&dir), names).unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_found_key_with_loose_permissions_is_refused_and_a_new_one_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tmp("rewrite");
        std::fs::create_dir_all(&dir).unwrap();
        // A key file left world-readable by something else, and no names
        // file: huddle refuses rather than reusing or silently rewriting it.
        std::fs::write(dir.join(KEY_FILE), "old").unwrap();
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        assert!(matches!(
            self_signed(&dir, &names(), SystemTime::now()),
            Err(TlsError::KeyNotPrivate { .. })
        ));
        // Made fresh, the key is 0600 and no temporary file is left behind.
        std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
        let (_, key) = self_signed(&dir, &names(), SystemTime::now()).unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_key_that_does_not_match_its_certificate_is_replaced() {
        // As if huddle crashed after renaming a new key into place but
        // before the certificate: the key is another one.
        let dir = tmp("mismatch");
        let other = tmp("mismatch-other");
        let now = SystemTime::now();
        let (cert, key) = self_signed(&dir, &names(), now).unwrap();
        let (_, other_key) = self_signed(&other, &names(), now).unwrap();
        std::fs::copy(&other_key, &key).unwrap();
        let before = std::fs::read(&cert).unwrap();
        let tls = Tls::load(&self_signed_source(&dir), names).expect("repaired");
        assert_eq!(tls.names, names());
        assert_ne!(std::fs::read(&cert).unwrap(), before, "a new pair");
        // And the new pair loads as is.
        Tls::load(&self_signed_source(&dir), names).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&other);
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
