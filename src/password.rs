//! Room passwords: hashed with Argon2id (the `argon2` crate's defaults,
//! OWASP's recommended m=19 MiB, t=2, p=1) and a fresh random salt, kept
//! only as the PHC string, checked by the crate's constant-time compare.
//!
//! Hashing costs about 13 ms of CPU on purpose (benches/core.rs), so it never runs
//! under the hub's lock or on the async runtime's threads: [`Hasher`] runs
//! it on the blocking pool, at most `--max-password-hashes` at a time.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use tokio::sync::Semaphore;

/// The PHC string of `password` with a fresh salt.
pub fn hash(password: &str) -> Arc<str> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    let salt = SaltString::encode_b64(&bytes).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
        .into()
}

/// Whether `password` is the one `phc` was made from.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Runs hashes off the async threads, a bounded number at once.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    /// At most `concurrency` hashes at once (at least one).
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        // The permit goes with the work: a caller that stops waiting (its
        // connection closed) does not free a slot while the hash still runs.
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .expect("password hashing does not panic")
    }

    /// [`hash`], off the async threads.
    pub async fn hash(&self, password: String) -> Arc<str> {
        self.run(move || hash(&password)).await
    }

    /// [`verify`], off the async threads.
    pub async fn verify(&self, password: String, phc: Arc<str>) -> bool {
        self.run(move || verify(&password, &phc)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify() {
        let a = hash("correct horse");
        let b = hash("correct horse");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(!a.contains("correct horse"));
        assert!(verify("correct horse", &a) && verify("correct horse", &b));
        assert!(!verify("correct hors", &a));
        assert!(!verify("", &a));
        assert!(!verify("x", "not a phc string"));
    }

    #[tokio::test]
    async fn the_hasher_runs_off_the_runtime() {
        let hasher = Hasher::new(1);
        let phc = hasher.hash("pw".into()).await;
        assert!(hasher.verify("pw".into(), phc.clone()).await);
        assert!(!hasher.verify("wrong".into(), phc).await);
    }
}
