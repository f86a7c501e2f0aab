//! Stateless nonces (huddle patch, see PATCHES.md).
//!
//! The original server kept every nonce it handed out in a map that only
//! shrank when the nonce came back, so each unauthenticated request cost
//! memory until restart. Here a nonce is its own proof, as in coturn: the
//! issue time and an HMAC-SHA256 over that time and the client's transport
//! address, under a key made at start-up. Checking it needs nothing but the
//! key, and a nonce only works from the address it was given to.

use std::net::{IpAddr, SocketAddr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::time::{Duration, Instant};

/// Bytes of the issue time at the front of a nonce.
const TIME_LEN: usize = 8;
/// Bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// Issues and checks nonces without remembering them.
pub struct NonceKey {
    key: hmac::Key,
    epoch: Instant,
    lifetime: Duration,
}

impl NonceKey {
    /// A fresh random key; nonces stay valid for `lifetime`.
    pub fn new(lifetime: Duration) -> Self {
        let mut secret = [0u8; 32];
        // The system RNG fails only on a broken OS; the server cannot work
        // there anyway, and a fixed key would silently weaken every nonce.
        SystemRandom::new()
            .fill(&mut secret)
            .expect("system random number generator");
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            epoch: Instant::now(),
            lifetime,
        }
    }

    fn now(&self) -> u64 {
        Instant::now().duration_since(self.epoch).as_secs()
    }

    /// What the tag signs: the issue time and the client's address.
    fn signed(issued: &[u8], client: SocketAddr) -> Vec<u8> {
        let mut msg = Vec::with_capacity(TIME_LEN + 16 + 2);
        msg.extend_from_slice(issued);
        match client.ip() {
            IpAddr::V4(ip) => msg.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => msg.extend_from_slice(&ip.octets()),
        }
        msg.extend_from_slice(&client.port().to_be_bytes());
        msg
    }

    /// A nonce for `client` (54 characters of URL-safe base64).
    pub fn issue(&self, client: SocketAddr) -> String {
        let issued = self.now();
        let mut raw = [0u8; TIME_LEN + TAG_LEN];
        raw[..TIME_LEN].copy_from_slice(&issued.to_be_bytes());
        let tag = hmac::sign(&self.key, &Self::signed(&raw[..TIME_LEN], client));
        raw[TIME_LEN..].copy_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` was issued by this key to `client` and has not
    /// expired.
    pub fn check(&self, nonce: &str, client: SocketAddr) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        if raw.len() != TIME_LEN + TAG_LEN {
            return false;
        }
        let mut time = [0u8; TIME_LEN];
        time.copy_from_slice(&raw[..TIME_LEN]);
        let issued = u64::from_be_bytes(time);
        let now = self.now();
        if issued > now || now - issued >= self.lifetime.as_secs() {
            return false;
        }
        // Compared in constant time by ring.
        hmac::verify(&self.key, &Self::signed(&raw[..TIME_LEN], client), &raw[TIME_LEN..]).is_ok()
    }
}
