//! Keyframe request coalescing: one request per key (publisher layer) per
//! interval, however many subscribers ask. Pure; time is an argument.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Lets at most one keyframe request per key through every `interval`.
#[derive(Debug, Clone)]
pub struct KeyframeGate<K> {
    interval: Duration,
    last: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> KeyframeGate<K> {
    /// A gate letting one request per key through every `interval`.
    pub fn new(interval: Duration) -> Self {
        KeyframeGate {
            interval,
            last: HashMap::new(),
        }
    }

    /// Whether a request for `key` may be sent at `now`. Does not record it:
    /// call [`KeyframeGate::sent`] once it actually went out.
    pub fn allows(&self, key: &K, now: Instant) -> bool {
        match self.last.get(key) {
            None => true,
            Some(t) => now.saturating_duration_since(*t) >= self.interval,
        }
    }

    /// Records that a request for `key` went out at `now`.
    pub fn sent(&mut self, key: K, now: Instant) {
        self.last.insert(key, now);
    }

    /// Forgets every key `keep` returns false for (a publisher left).
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.last.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_interval_per_key() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::new(Duration::from_millis(500));
        assert!(gate.allows(&1, t0));
        gate.sent(1, t0);
        assert!(!gate.allows(&1, t0 + Duration::from_millis(499)));
        assert!(
            gate.allows(&2, t0 + Duration::from_millis(1)),
            "keys are independent"
        );
        assert!(gate.allows(&1, t0 + Duration::from_millis(500)));
        gate.retain(|k| *k != 1);
        assert!(gate.allows(&1, t0));
    }
}
