//! Operator tokens (`--auth-secret`): HS256 JWTs that let their holder into
//! a room, minted by `huddle token` or the operator's own app.
//!
//! Claims (protocol v1.1, "Operator tokens"): `room` (a room name, or `"*"`
//! for any), `exp` (required, seconds since the epoch), optional `name` (the
//! member must use exactly this name, compared as names are) and `host`
//! (`true`: the holder becomes the room's host on joining).
//!
//! Pure: the current time is an argument, so the core can check tokens
//! against its injected clock. Signing and checking are `jsonwebtoken`'s.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The room claim that admits to every room.
pub const ANY_ROOM: &str = "*";

/// Shortest secret accepted: HS256 with fewer than 256 bits of key is weak.
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims of an operator token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The room it admits to, or [`ANY_ROOM`].
    pub room: String,
    /// Expiry, seconds since the unix epoch.
    pub exp: u64,
    /// The name the holder must use, if fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the holder becomes the room's host.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host: bool,
    /// Not valid before (seconds since the epoch), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Why a token was refused. Never carries the token or the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT of ours: bad encoding, another algorithm, missing claims.
    #[error("the access token is malformed")]
    Malformed,
    /// The signature does not match the server's secret.
    #[error("the access token is not signed by this server's secret")]
    BadSignature,
    /// `exp` has passed.
    #[error("the access token has expired")]
    Expired,
    /// `nbf` is still ahead.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// `room` names another room.
    #[error("the access token is for another room")]
    WrongRoom,
}

/// The secret that signs and checks tokens. Its `Debug` hides it.
#[derive(Clone)]
pub struct AuthKey {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(…)")
    }
}

/// A secret too short to sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("--auth-secret must be at least {MIN_SECRET_BYTES} bytes (try `openssl rand -hex 32`)")]
pub struct WeakSecret;

impl AuthKey {
    /// A key from the operator's secret.
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        Ok(Self {
            encoding: Arc::new(EncodingKey::from_secret(secret).map_err(|_| WeakSecret)?),
            decoding: Arc::new(DecodingKey::from_secret(secret).map_err(|_| WeakSecret)?),
        })
    }

    /// Signs `claims` (HS256).
    pub fn mint(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks a token's signature and times at `unix_now`, and that it
    /// admits to `room`. The name claim is left to the caller (it compares
    /// names as the room does).
    pub fn check(&self, token: &str, room: &str, unix_now: u64) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Times are checked below against the injected clock, not the
        // library's own reading of the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed,
            },
        )?;
        let claims = data.claims;
        if claims.exp <= unix_now {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > unix_now) {
            return Err(TokenError::NotYetValid);
        }
        if claims.room != ANY_ROOM && claims.room != room {
            return Err(TokenError::WrongRoom);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(room: &str, exp: u64) -> Claims {
        Claims {
            room: room.into(),
            exp,
            name: None,
            host: false,
            nbf: None,
        }
    }

    #[test]
    fn a_minted_token_checks_until_it_expires() {
        let key = AuthKey::new(SECRET).unwrap();
        let token = key.mint(&claims("team", 1_000));
        assert_eq!(key.check(&token, "team", 999).unwrap().room, "team");
        assert_eq!(key.check(&token, "team", 1_000), Err(TokenError::Expired));
        assert_eq!(key.check(&token, "other", 999), Err(TokenError::WrongRoom));
        let any = key.mint(&claims(ANY_ROOM, 1_000));
        assert!(key.check(&any, "whatever", 1).is_ok());
    }

    #[test]
    fn name_host_and_nbf_round_trip() {
        let key = AuthKey::new(SECRET).unwrap();
        let mut c = claims("r", 100);
        c.name = Some("Ann".into());
        c.host = true;
        c.nbf = Some(50);
        let token = key.mint(&c);
        assert_eq!(key.check(&token, "r", 60).unwrap(), c);
        assert_eq!(key.check(&token, "r", 40), Err(TokenError::NotYetValid));
    }

    #[test]
    fn forged_and_malformed_tokens_are_refused() {
        let key = AuthKey::new(SECRET).unwrap();
        let other = AuthKey::new(b"another secret, also 32 bytes long").unwrap();
        let forged = other.mint(&claims("r", 100));
        assert_eq!(key.check(&forged, "r", 1), Err(TokenError::BadSignature));
        let token = key.mint(&claims("r", 100));
        // Tampered payload: the signature no longer matches.
        let mut parts: Vec<&str> = token.split('.').collect();
        let tampered_payload = {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"room":"*","exp":99999999999}"#)
        };
        parts[1] = &tampered_payload;
        assert_eq!(
            key.check(&parts.join("."), "r", 1),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "x", "a.b.c", "e30.e30.", &token[..token.len() - 3]] {
            assert!(key.check(bad, "r", 1).is_err(), "{bad}");
        }
        // alg "none" and a missing exp are refused.
        use base64::Engine as _;
        let b64 = |s: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(br#"{"room":"r","exp":99999999999}"#)
        );
        assert_eq!(key.check(&none, "r", 1), Err(TokenError::Malformed));
        let no_exp = key.mint_raw(br#"{"room":"r"}"#);
        assert_eq!(key.check(&no_exp, "r", 1), Err(TokenError::Malformed));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(AuthKey::new(b"short").unwrap_err(), WeakSecret);
    }

    impl AuthKey {
        /// Signs arbitrary JSON claims (for tests of malformed claims).
        fn mint_raw(&self, claims: &[u8]) -> String {
            let value: serde_json::Value = serde_json::from_slice(claims).unwrap();
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &value, &self.encoding).unwrap()
        }
    }
}
