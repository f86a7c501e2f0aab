//! The ICE servers handed to browsers in every `joined`.
//!
//! Two kinds, freely mixed:
//! - fixed servers: STUN, or TURN with static credentials
//!   (`--ice-server URL`, or `--ice-servers JSON` for full control);
//! - TURN servers with short-lived credentials (`--turn-url`, `--turn-secret`,
//!   and the embedded TURN server): the TURN REST API scheme that coturn's
//!   `use-auth-secret` checks. Each `joined` carries a fresh pair: username
//!   `<unix-expiry>:<member name>`, credential
//!   `base64(HMAC-SHA1(secret, username))`. The TURN server recomputes the
//!   credential from the username, so a changed name or expiry no longer
//!   matches, and an expiry in the past is refused.
//!
//! Pure: the time comes in as an argument.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ring::hmac;

/// Default lifetime of minted TURN credentials.
pub const DEFAULT_TURN_TTL: Duration = Duration::from_secs(3600);

/// A TURN username and credential, as put into an RTCIceServer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `<unix-expiry>:<user>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub credential: String,
}

/// Why a TURN REST username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The username does not start with a unix time.
    #[error("the username does not start with an expiry time")]
    Malformed,
    /// The expiry is in the past.
    #[error("the credentials expired {0} s ago")]
    Expired(u64),
    /// The credential does not match the username (wrong secret, or a
    /// username changed after minting).
    #[error("the credential does not match the username")]
    Mismatch,
}

/// The credential (TURN password) for `username` under `secret`.
pub fn credential_for(secret: &[u8], username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Mints credentials for `user` that expire at unix time `expires`.
pub fn mint(secret: &[u8], user: &str, expires: u64) -> Credentials {
    let username = format!("{expires}:{user}");
    let credential = credential_for(secret, &username);
    Credentials {
        username,
        credential,
    }
}

/// The password a TURN server expects for `username` at unix time `now`:
/// refuses usernames without an expiry and expired ones. (The TURN message
/// integrity check then compares it with what the client used.)
pub fn password_for(secret: &[u8], username: &str, now: u64) -> Result<String, CredentialError> {
    check_expiry(username, now)?;
    Ok(credential_for(secret, username))
}

fn check_expiry(username: &str, now: u64) -> Result<(), CredentialError> {
    let expiry = username.split(':').next().unwrap_or_default();
    let expiry: u64 = expiry.parse().map_err(|_| CredentialError::Malformed)?;
    if expiry < now {
        return Err(CredentialError::Expired(now - expiry));
    }
    Ok(())
}

/// Checks a username and credential pair at unix time `now`.
pub fn verify(
    secret: &[u8],
    username: &str,
    credential: &str,
    now: u64,
) -> Result<(), CredentialError> {
    check_expiry(username, now)?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(credential)
        .map_err(|_| CredentialError::Mismatch)?;
    // ring compares the tags in constant time.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    hmac::verify(&key, username.as_bytes(), &given).map_err(|_| CredentialError::Mismatch)
}

/// TURN servers whose credentials are minted per member.
#[derive(Clone)]
pub struct RestTurn {
    /// `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// The shared secret.
    pub secret: Arc<[u8]>,
    /// How long minted credentials stay valid.
    pub ttl: Duration,
}

impl fmt::Debug for RestTurn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestTurn")
            .field("urls", &self.urls)
            .field("secret", &"<hidden>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Everything that goes into `joined.iceServers`.
#[derive(Debug, Clone, Default)]
pub struct IceServers {
    /// Fixed RTCIceServer objects, each as compact JSON.
    fixed: Vec<String>,
    rest: Option<RestTurn>,
}

impl IceServers {
    /// Fixed servers only, from an `--ice-servers` value: a JSON array of
    /// RTCIceServer objects, each with `urls`.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let serde_json::Value::Array(list) = v else {
            return Err("must be a JSON array of RTCIceServer objects".into());
        };
        for server in &list {
            let urls = server
                .get("urls")
                .ok_or("every ICE server needs \"urls\"")?;
            let valid = urls.is_string()
                || urls
                    .as_array()
                    .is_some_and(|a| a.iter().all(serde_json::Value::is_string));
            if !valid {
                return Err("\"urls\" must be a string or an array of strings".into());
            }
        }
        Ok(Self {
            fixed: list.iter().map(serde_json::Value::to_string).collect(),
            rest: None,
        })
    }

    /// Adds a fixed server given as a URL (see [`parse_ice_url`]).
    pub fn push_url(&mut self, url: &str) -> Result<(), String> {
        self.push(parse_ice_url(url)?);
        Ok(())
    }

    /// Adds a fixed server already parsed from its URL.
    pub fn push(&mut self, server: IceServer) {
        self.fixed.push(server.0);
    }

    /// Adds TURN URLs whose credentials are minted from `secret`; all of
    /// them share one secret and one lifetime.
    pub fn add_rest(&mut self, urls: Vec<String>, secret: Arc<[u8]>, ttl: Duration) {
        match &mut self.rest {
            Some(rest) => rest.urls.extend(urls),
            None => {
                self.rest = Some(RestTurn { urls, secret, ttl });
            }
        }
    }

    /// The TURN servers whose credentials are minted, if any.
    fn minting(&self) -> Option<&RestTurn> {
        self.rest.as_ref().filter(|r| !r.urls.is_empty())
    }

    /// Whether minting needs the time.
    pub fn needs_time(&self) -> bool {
        self.minting().is_some()
    }

    /// The JSON array for member `name` at unix time `now`.
    pub fn render(&self, name: &str, now: u64) -> String {
        let minted = self.minting().map(|rest| {
            let creds = mint(&rest.secret, name, now.saturating_add(rest.ttl.as_secs()));
            serde_json::json!({
                "urls": rest.urls,
                "username": creds.username,
                "credential": creds.credential,
            })
            .to_string()
        });
        let mut out = String::from("[");
        for (i, server) in self.fixed.iter().chain(minted.as_ref()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(server);
        }
        out.push(']');
        out
    }
}

/// One RTCIceServer object, as compact JSON, made by [`parse_ice_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer(String);

impl IceServer {
    /// The RTCIceServer object as JSON.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// Parses an `--ice-server` URL into an RTCIceServer object.
///
/// `stun:HOST[:PORT]`, `stuns:…`, and `turn:USER:PASSWORD@HOST[:PORT][?transport=udp|tcp]`
/// (or `turns:`). TURN needs a username and password (browsers refuse TURN
/// without them); STUN takes none. The user and password cannot contain
/// `@` or `:`; use `--ice-servers` JSON for those.
pub fn parse_ice_url(url: &str) -> Result<IceServer, String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once(':').ok_or_else(|| {
        format!("{url:?}: expected stun:HOST[:PORT] or turn:USER:PASS@HOST[:PORT]")
    })?;
    let scheme = scheme.to_ascii_lowercase();
    let turn = match scheme.as_str() {
        "stun" | "stuns" => false,
        "turn" | "turns" => true,
        _ => {
            return Err(format!(
                "{url:?}: the scheme must be stun, stuns, turn or turns"
            ));
        }
    };
    let (creds, hostpart) = match rest.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, rest),
    };
    let host = hostpart.split('?').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("{url:?}: no host"));
    }
    if let Some(query) = hostpart.split_once('?').map(|(_, q)| q) {
        let ok = matches!(query, "transport=udp" | "transport=tcp");
        if !ok {
            return Err(format!(
                "{url:?}: the only query allowed is ?transport=udp or ?transport=tcp"
            ));
        }
    }
    let clean = format!("{scheme}:{hostpart}");
    match (turn, creds) {
        (false, None) => Ok(IceServer(serde_json::json!({ "urls": clean }).to_string())),
        (false, Some(_)) => Err(format!("{url:?}: STUN takes no credentials")),
        (true, None) => Err(format!(
            "{url:?}: TURN needs credentials: turn:USER:PASSWORD@HOST[:PORT] (or use --turn-secret for minted ones)"
        )),
        (true, Some(c)) => {
            let (user, pass) = c
                .split_once(':')
                .filter(|(u, p)| !u.is_empty() && !p.is_empty() && !p.contains(':'))
                .ok_or_else(|| format!("{url:?}: credentials must be USER:PASSWORD"))?;
            Ok(IceServer(
                serde_json::json!({ "urls": clean, "username": user, "credential": pass })
                    .to_string(),
            ))
        }
    }
}

/// Checks a `--turn-url` (a `turn:` or `turns:` URL without credentials).
pub fn parse_turn_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("turn:") || lower.starts_with("turns:")) {
        return Err(format!("{url:?}: must be a turn: or turns: URL"));
    }
    if url.contains('@') {
        return Err(format!(
            "{url:?}: no credentials here; they are minted from --turn-secret"
        ));
    }
    // Reuse the URL checks with dummy credentials.
    let (scheme, rest) = url.split_once(':').unwrap_or_default();
    parse_ice_url(&format!("{scheme}:u:p@{rest}"))?;
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"north-wind";
    const NOW: u64 = 1_800_000_000;

    #[test]
    fn minted_credentials_check_until_they_expire() {
        let c = mint(SECRET, "alice", NOW + 3600);
        assert_eq!(c.username, format!("{}:alice", NOW + 3600));
        assert_eq!(verify(SECRET, &c.username, &c.credential, NOW), Ok(()));
        assert_eq!(
            verify(SECRET, &c.username, &c.credential, NOW + 3600),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, &c.username, &c.credential, NOW + 3601),
            Err(CredentialError::Expired(1))
        );
    }

    #[test]
    fn the_scheme_is_coturns() {
        // coturn's use-auth-secret: password = base64(hmac-sha1(secret, username)).
        // Known answer computed with: printf '%s' 1800003600:alice |
        //   openssl dgst -sha1 -hmac north-wind -binary | base64
        assert_eq!(
            credential_for(SECRET, "1800003600:alice"),
            "vM5EID8HelKycm1fVLDFOvkP7No="
        );
    }

    #[test]
    fn a_wrong_secret_or_a_tampered_username_is_refused() {
        let c = mint(SECRET, "alice", NOW + 60);
        assert_eq!(
            verify(b"other", &c.username, &c.credential, NOW),
            Err(CredentialError::Mismatch)
        );
        let renamed = c.username.replace("alice", "mallory");
        assert_eq!(
            verify(SECRET, &renamed, &c.credential, NOW),
            Err(CredentialError::Mismatch)
        );
        let later = format!("{}:alice", NOW + 999_999);
        assert_eq!(
            verify(SECRET, &later, &c.credential, NOW),
            Err(CredentialError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &c.username, "not base64!", NOW),
            Err(CredentialError::Mismatch)
        );
    }

    #[test]
    fn usernames_without_an_expiry_are_refused() {
        for u in ["alice", ":alice", "soon:alice", ""] {
            assert_eq!(
                password_for(SECRET, u, NOW),
                Err(CredentialError::Malformed),
                "{u:?}"
            );
        }
        // A bare timestamp (webrtc-rs' form) is fine.
        assert!(password_for(SECRET, &(NOW + 5).to_string(), NOW).is_ok());
    }

    #[test]
    fn render_mints_per_member_after_the_fixed_servers() {
        let mut ice = IceServers::from_json(r#"[{"urls":"stun:stun.example.org"}]"#).unwrap();
        assert_eq!(
            ice.render("alice", NOW),
            r#"[{"urls":"stun:stun.example.org"}]"#
        );
        ice.add_rest(
            vec!["turn:t.example.org:3478?transport=udp".into()],
            Arc::from(SECRET),
            Duration::from_secs(3600),
        );
        let v: serde_json::Value = serde_json::from_str(&ice.render("al\"ice", NOW)).unwrap();
        assert_eq!(v[0]["urls"], "stun:stun.example.org");
        assert_eq!(v[1]["urls"][0], "turn:t.example.org:3478?transport=udp");
        let username = v[1]["username"].as_str().unwrap();
        assert_eq!(username, format!("{}:al\"ice", NOW + 3600));
        let credential = v[1]["credential"].as_str().unwrap();
        assert_eq!(verify(SECRET, username, credential, NOW), Ok(()));
        assert!(
            !format!("{ice:?}").contains("north-wind"),
            "the secret stays out of logs"
        );
    }

    #[test]
    fn ice_urls() {
        assert_eq!(
            parse_ice_url("stun:stun.example.org:3478")
                .unwrap()
                .as_json(),
            r#"{"urls":"stun:stun.example.org:3478"}"#
        );
        assert_eq!(
            parse_ice_url("turn:bob:s3cret@turn.example.org:3478?transport=tcp")
                .unwrap()
                .as_json(),
            r#"{"credential":"s3cret","urls":"turn:turn.example.org:3478?transport=tcp","username":"bob"}"#
        );
        for bad in [
            "turn:turn.example.org",
            "stun:u:p@stun.example.org",
            "http://example.org",
            "turn:bob@turn.example.org",
            "stun:",
            "stun:h?x=1",
            "nonsense",
        ] {
            assert!(parse_ice_url(bad).is_err(), "{bad}");
        }
        assert!(parse_turn_url("turn:turn.example.org:3478?transport=udp").is_ok());
        assert!(parse_turn_url("turn:u:p@turn.example.org").is_err());
        assert!(parse_turn_url("stun:turn.example.org").is_err());
    }
}
