//! Per-connection rate limiting: a token bucket plus flood tracking.
//!
//! The bucket holds up to `burst` messages and refills at `rate` per second.
//! A message that finds it empty is dropped. Drops closer together than
//! [`EPISODE_GAP`] form one flood episode: the client gets one
//! `rate-limited` error per episode second, and an episode that lasts
//! `flood_close_after` ends the connection (close 1008).

use std::time::{Duration, Instant};

/// Drops further apart than this start a new flood episode.
pub const EPISODE_GAP: Duration = Duration::from_secs(1);

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: handle it.
    Accept,
    /// Over the limit: drop it and tell the client (`rate-limited`).
    DropAndWarn,
    /// Over the limit: drop it silently (already warned in this episode second).
    Drop,
    /// Flooding for too long: close the connection with 1008.
    Close,
}

/// The limiter state of one connection.
#[derive(Debug, Clone)]
pub struct Limiter {
    tokens: f64,
    last_refill: Instant,
    flood_since: Option<Instant>,
    last_drop: Option<Instant>,
    last_warning: Option<Instant>,
}

impl Limiter {
    /// A full bucket.
    pub fn new(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            last_refill: now,
            flood_since: None,
            last_drop: None,
            last_warning: None,
        }
    }

    /// Decides about one message arriving at `now`.
    pub fn check(&mut self, rate: u32, burst: u32, close_after: Duration, now: Instant) -> Verdict {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.last_refill = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Accept;
        }
        let new_episode = self
            .last_drop
            .is_none_or(|t| now.saturating_duration_since(t) > EPISODE_GAP);
        if new_episode {
            self.flood_since = Some(now);
        }
        self.last_drop = Some(now);
        let since = self.flood_since.unwrap_or(now);
        if now.saturating_duration_since(since) >= close_after {
            return Verdict::Close;
        }
        if self
            .last_warning
            .is_none_or(|t| new_episode || now.saturating_duration_since(t) >= EPISODE_GAP)
        {
            self.last_warning = Some(now);
            Verdict::DropAndWarn
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOSE: Duration = Duration::from_secs(5);

    #[test]
    fn burst_then_sustained_rate() {
        let t0 = Instant::now();
        let mut l = Limiter::new(10, t0);
        for _ in 0..10 {
            assert_eq!(l.check(5, 10, CLOSE, t0), Verdict::Accept);
        }
        assert_eq!(l.check(5, 10, CLOSE, t0), Verdict::DropAndWarn);
        assert_eq!(l.check(5, 10, CLOSE, t0), Verdict::Drop);
        // 200 ms later one token (5/s) has come back.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(l.check(5, 10, CLOSE, t1), Verdict::Accept);
        assert_eq!(l.check(5, 10, CLOSE, t1), Verdict::Drop);
    }

    #[test]
    fn one_warning_per_second_of_flooding_then_close() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1, t0);
        assert_eq!(l.check(1, 1, CLOSE, t0), Verdict::Accept);
        let mut warnings = 0;
        let mut closed_at = None;
        // 100 messages a second against a limit of 1 a second.
        for i in 1..=1000u64 {
            let now = t0 + Duration::from_millis(i * 10);
            match l.check(1, 1, CLOSE, now) {
                Verdict::DropAndWarn => warnings += 1,
                Verdict::Close => {
                    closed_at = Some(i * 10);
                    break;
                }
                _ => {}
            }
        }
        let closed_at = closed_at.expect("a flood is closed");
        assert!((5000..5100).contains(&closed_at), "{closed_at}");
        assert!((4..=6).contains(&warnings), "{warnings}");
    }

    #[test]
    fn a_quiet_second_ends_the_episode() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1, t0);
        let mut now = t0;
        // Bursts of 3 every 1.5 s: each burst overflows, but the flood never lasts.
        for _ in 0..20 {
            for _ in 0..3 {
                assert_ne!(l.check(1, 1, CLOSE, now), Verdict::Close);
            }
            now += Duration::from_millis(1500);
        }
    }
}
