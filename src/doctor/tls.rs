//! TLS for `huddle doctor`: which certificates it trusts (Mozilla's roots,
//! `--ca-cert`, or anything with `--insecure`), the handshake, and what a
//! failed verification means in an operator's words.
//!
//! The verifier wraps rustls' own (webpki) and remembers its verdict, so a
//! handshake under `--insecure` still reports what a browser would say
//! about the certificate.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme,
};

/// A certificate that expires sooner than this gets a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// Why the trust settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--ca-cert {path}: {why}")]
pub struct CaError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub why: String,
}

/// Which server certificates the doctor accepts.
#[derive(Clone)]
pub struct Trust {
    verifier: Arc<WebPkiServerVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    insecure: bool,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

/// A finished handshake.
pub struct Handshake {
    /// The TLS stream.
    pub stream: TlsStream<TcpStream>,
    /// "TLS 1.3" or the like.
    pub version: String,
    /// What the leaf certificate says.
    pub cert: Option<CertSummary>,
    /// The verification error `--insecure` let through.
    pub overlooked: Option<rustls::Error>,
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsFailure {
    /// The host cannot be a TLS server name.
    #[error("{0:?} cannot be checked against a certificate")]
    Name(String),
    /// The certificate did not verify.
    #[error("certificate: {0}")]
    Certificate(rustls::Error),
    /// The handshake itself failed (not TLS, alert, version…).
    #[error("{0}")]
    Protocol(rustls::Error),
    /// The connection failed.
    #[error("{0}")]
    Io(std::io::Error),
}

impl Trust {
    /// Mozilla's roots, plus the certificates in `ca_cert`; `insecure`
    /// accepts any certificate (but still reports what is wrong with it).
    pub fn new(ca_cert: Option<&Path>, insecure: bool) -> Result<Self, CaError> {
        let roots = crate::client::trusted_roots(ca_cert).map_err(|why| CaError {
            path: ca_cert.map(|p| p.display().to_string()).unwrap_or_default(),
            why,
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| CaError {
                    path: ca_cert.map(|p| p.display().to_string()).unwrap_or_default(),
                    why: e.to_string(),
                })?;
        Ok(Self {
            verifier,
            provider,
            insecure,
        })
    }

    /// Whether `--insecure` was given.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// A TLS handshake over `tcp` with the server named `host`.
    pub async fn handshake(&self, tcp: TcpStream, host: &str) -> Result<Handshake, TlsFailure> {
        let name =
            ServerName::try_from(host.to_owned()).map_err(|_| TlsFailure::Name(host.to_owned()))?;
        let recorder = Arc::new(Recorder {
            inner: self.verifier.clone(),
            insecure: self.insecure,
            seen: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsFailure::Protocol)?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let result = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await;
        let seen = recorder.seen.lock().map(|s| s.clone()).unwrap_or(None);
        match result {
            Ok(stream) => {
                let (_, conn) = stream.get_ref();
                let version = conn
                    .protocol_version()
                    .map(|v| match v {
                        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
                        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_else(|| "TLS".into());
                let cert = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| CertSummary::parse(c.as_ref()));
                Ok(Handshake {
                    stream,
                    version,
                    cert,
                    overlooked: seen,
                })
            }
            Err(e) => {
                if let Some(cert_error) = seen {
                    return Err(TlsFailure::Certificate(cert_error));
                }
                let tls_error = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .cloned();
                Err(match tls_error {
                    Some(t) => TlsFailure::Protocol(t),
                    None => TlsFailure::Io(e),
                })
            }
        }
    }
}

/// webpki's verifier, remembering its verdict; with `insecure` it lets
/// every certificate through.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    insecure: bool,
    seen: Mutex<Option<rustls::Error>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(e) => {
                if let Ok(mut seen) = self.seen.lock() {
                    *seen = Some(e.clone());
                }
                if self.insecure {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(e)
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What a leaf certificate says, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// DNS names and addresses it covers.
    pub names: Vec<String>,
    /// Its end of validity, unix seconds.
    pub not_after: i64,
    /// Issuer and subject are the same (self-signed).
    pub self_signed: bool,
}

impl CertSummary {
    /// Reads a DER certificate (`None` if it cannot be parsed).
    pub fn parse(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_owned()),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                            names.push(std::net::Ipv4Addr::from(v4).to_string());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                            names.push(std::net::Ipv6Addr::from(v6).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(Self {
            names,
            not_after: cert.validity().not_after.timestamp(),
            self_signed: cert.issuer() == cert.subject(),
        })
    }

    /// "for a, b (self-signed), valid until 2027-01-01 (40 days)", at unix
    /// time `now`; and whether it expires within [`EXPIRY_WARNING`].
    pub fn describe(&self, now: i64) -> (String, bool) {
        let mut names = self.names.clone();
        let more = names.len().saturating_sub(4);
        names.truncate(4);
        let mut s = if names.is_empty() {
            "certificate without subject names".to_owned()
        } else {
            format!("certificate for {}", names.join(", "))
        };
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
        if self.self_signed {
            s.push_str(" (self-signed)");
        }
        let left = self.not_after - now;
        s.push_str(&format!(
            ", valid until {} ({})",
            date(self.not_after),
            if left >= 0 {
                format!("{} days left", left / 86_400)
            } else {
                "expired".to_owned()
            }
        ));
        let soon = left < EXPIRY_WARNING.as_secs() as i64;
        (s, soon)
    }
}

/// A unix time as a UTC date.
fn date(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .split('T')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The current unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What a failed handshake with `host` means, and what to do: (found,
/// advice). `self_signed_hint` names where huddle keeps its own
/// self-signed certificate.
pub fn explain(failure: &TlsFailure, host: &str) -> (String, String) {
    match failure {
        TlsFailure::Name(n) => (
            format!("{n:?} is not a name a certificate can be checked against"),
            "use the host name the certificate was issued for".into(),
        ),
        TlsFailure::Certificate(e) => explain_certificate(e, host),
        TlsFailure::Protocol(rustls::Error::InvalidMessage(_)) => (
            "the server answered, but not with TLS".into(),
            "this port probably serves plain HTTP: use http:// (or the HTTPS port)".into(),
        ),
        TlsFailure::Protocol(rustls::Error::AlertReceived(alert)) => (
            format!("the server refused the TLS handshake ({alert:?})"),
            "check the server's TLS setup (certificate and key, --tls-cert/--tls-key) and its logs"
                .into(),
        ),
        TlsFailure::Protocol(e) => (
            format!("the TLS handshake failed: {e}"),
            "check the server's TLS setup and that this port serves HTTPS".into(),
        ),
        TlsFailure::Io(e) => (
            format!("the connection broke during the TLS handshake: {e}"),
            "the port may serve plain HTTP (use http://), or something between here and the \
             server cuts TLS"
                .into(),
        ),
    }
}

/// A certificate verification error in plain words: (found, advice).
pub fn explain_certificate(e: &rustls::Error, host: &str) -> (String, String) {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return (
            format!("the certificate was refused: {e}"),
            "check the certificate chain the server sends".into(),
        );
    };
    match cert {
        CertificateError::UnknownIssuer => (
            "untrusted certificate: it is not signed by an authority this machine trusts \
             (self-signed, a private CA, or a missing intermediate certificate)"
                .into(),
            "browsers will warn too. Use a certificate from a public CA (e.g. Let's Encrypt) with \
             its full chain, or, to check anyway, pass --ca-cert with the CA's certificate (for \
             huddle --tls-self-signed: DATA_DIR/self-signed-cert.pem) or --insecure"
                .into(),
        ),
        CertificateError::NotValidForName => (
            format!("wrong name: the certificate is not valid for {host}"),
            format!("use a certificate that names {host}, or open the server by a name it covers"),
        ),
        CertificateError::NotValidForNameContext { presented, .. } => (
            format!(
                "wrong name: the certificate is for {}, not for {host}",
                if presented.is_empty() {
                    "no name at all".to_owned()
                } else {
                    presented.join(", ")
                }
            ),
            format!("use a certificate that names {host}, or open the server by a name it covers"),
        ),
        CertificateError::Expired => (
            "expired certificate".into(),
            "renew the certificate (certbot renew) and restart huddle".into(),
        ),
        CertificateError::ExpiredContext { time, not_after } => (
            format!(
                "expired certificate: it ended on {} ({} days ago)",
                date(not_after.as_secs() as i64),
                time.as_secs().saturating_sub(not_after.as_secs()) / 86_400
            ),
            "renew the certificate (certbot renew) and restart huddle".into(),
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
            "the certificate is not valid yet".into(),
            "check the clocks of this machine and of the server (run NTP)".into(),
        ),
        CertificateError::Revoked => (
            "the certificate was revoked".into(),
            "get a new certificate".into(),
        ),
        other => (
            format!("the certificate was refused: {other:?}"),
            "check the certificate chain the server sends".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_errors_in_plain_words() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let (found, advice) = explain_certificate(&unknown, "h");
        assert!(found.starts_with("untrusted certificate"), "{found}");
        assert!(advice.contains("--ca-cert"), "{advice}");
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("meet.example.org").unwrap(),
            presented: vec!["other.example.org".into()],
        });
        let (found, _) = explain_certificate(&name, "meet.example.org");
        assert_eq!(
            found,
            "wrong name: the certificate is for other.example.org, not for meet.example.org"
        );
        let expired = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000 + 3 * 86_400)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000)),
        });
        let (found, advice) = explain_certificate(&expired, "h");
        assert_eq!(
            found,
            "expired certificate: it ended on 2023-11-14 (3 days ago)"
        );
        assert!(advice.contains("renew"));
        let (found, advice) = explain(
            &TlsFailure::Protocol(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType,
            )),
            "h",
        );
        assert!(found.contains("not with TLS") && advice.contains("http://"));
    }

    #[test]
    fn certificate_summaries() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        let s = CertSummary::parse(cert.der()).unwrap();
        assert_eq!(s.names, ["localhost", "127.0.0.1"]);
        assert!(s.self_signed);
        let (text, soon) = s.describe(s.not_after - 30 * 86_400);
        assert!(
            text.starts_with("certificate for localhost, 127.0.0.1 (self-signed), valid until "),
            "{text}"
        );
        assert!(text.ends_with("(30 days left)"), "{text}");
        assert!(!soon);
        assert!(s.describe(s.not_after - 86_400).1);
        assert!(s.describe(s.not_after + 1).0.ends_with("(expired)"));
        assert_eq!(CertSummary::parse(b"not a certificate"), None);
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("huddle-doctor-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        let e = Trust::new(Some(&empty), false).unwrap_err().to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let e = Trust::new(Some(&dir.join("missing.pem")), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        assert!(Trust::new(None, true).unwrap().insecure());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
