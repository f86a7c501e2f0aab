//! Active speaker detection from RFC 6464 audio levels. Pure; time is an
//! argument.
//!
//! str0m reports the level as negative dBov: 0 is the loudest, -127 silence.
//! Each member's level is smoothed over time; the loudest member above a
//! threshold becomes the speaker only if it beats the current speaker by a
//! margin (hysteresis) and the current speaker has held the floor for a
//! minimum time. Silence never clears the speaker: the last one stays.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::MemberId;

/// Tunables of [`SpeakerDetector`].
#[derive(Debug, Clone)]
pub struct SpeakerConfig {
    /// Time constant of the level smoothing. Default 300 ms.
    pub smoothing: Duration,
    /// Smoothed level (dBov) at or above which a member counts as speaking.
    /// Default -50.
    pub threshold_dbov: f32,
    /// How much louder (dB) a member must be than the current speaker to take
    /// over. Default 6.
    pub margin_db: f32,
    /// Minimum time between two speaker changes. Default 1 s.
    pub min_hold: Duration,
    /// A member whose last level is older than this counts as silent.
    /// Default 1 s.
    pub stale_after: Duration,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            smoothing: Duration::from_millis(300),
            threshold_dbov: -50.0,
            margin_db: 6.0,
            min_hold: Duration::from_secs(1),
            stale_after: Duration::from_secs(1),
        }
    }
}

const SILENCE: f32 = -127.0;

/// The speaker of one room.
#[derive(Debug, Clone)]
pub struct SpeakerDetector {
    config: SpeakerConfig,
    levels: HashMap<MemberId, (f32, Instant)>,
    current: Option<MemberId>,
    last_switch: Option<Instant>,
}

impl SpeakerDetector {
    /// A detector with nobody speaking.
    pub fn new(config: SpeakerConfig) -> Self {
        SpeakerDetector {
            config,
            levels: HashMap::new(),
            current: None,
            last_switch: None,
        }
    }

    /// The current speaker.
    pub fn current(&self) -> Option<MemberId> {
        self.current
    }

    /// Feeds one audio level (negative dBov, 0 loudest) of `member` at `now`.
    /// Returns the new speaker when it changed.
    pub fn update(
        &mut self,
        member: MemberId,
        level_dbov: i8,
        now: Instant,
    ) -> Option<Option<MemberId>> {
        let x = f32::from(level_dbov.clamp(-127, 0));
        let tau = self.config.smoothing.as_secs_f32().max(1e-3);
        let entry = self.levels.entry(member).or_insert((SILENCE, now));
        let dt = now.saturating_duration_since(entry.1).as_secs_f32();
        // A first sample (dt 0) still moves the level a little, so a burst of
        // samples at one instant does not count as nothing.
        let alpha = (dt / tau).clamp(0.05, 1.0);
        entry.0 += (x - entry.0) * alpha;
        entry.1 = now;
        self.evaluate(now)
    }

    /// Forgets `member`. Returns `Some(None)` when it was the speaker.
    pub fn remove(&mut self, member: MemberId) -> Option<Option<MemberId>> {
        self.levels.remove(&member);
        if self.current == Some(member) {
            self.current = None;
            return Some(None);
        }
        None
    }

    /// Whether `member` is among the `k` loudest members at `now`, or is the
    /// current speaker. Members with no fresh level rank as silent; ties go
    /// to the lower id.
    pub fn in_top(&self, member: MemberId, k: usize, now: Instant) -> bool {
        if self.current == Some(member) {
            return true;
        }
        let mine = self.level(member, now);
        let louder = self
            .levels
            .keys()
            .filter(|m| **m != member)
            .filter(|m| {
                let l = self.level(**m, now);
                l > mine || (l == mine && **m < member)
            })
            .count();
        louder < k
    }

    fn level(&self, member: MemberId, now: Instant) -> f32 {
        match self.levels.get(&member) {
            Some((level, at)) if now.saturating_duration_since(*at) < self.config.stale_after => {
                *level
            }
            _ => SILENCE,
        }
    }

    fn evaluate(&mut self, now: Instant) -> Option<Option<MemberId>> {
        let (loudest, loudest_level) = self
            .levels
            .keys()
            .map(|m| (*m, self.level(*m, now)))
            // Ties go to the lower id, so the result does not depend on map order.
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
        if loudest_level < self.config.threshold_dbov || Some(loudest) == self.current {
            return None;
        }
        if let Some(current) = self.current {
            let held = self
                .last_switch
                .is_none_or(|t| now.saturating_duration_since(t) >= self.config.min_hold);
            let current_level = self.level(current, now);
            let beats = loudest_level >= current_level + self.config.margin_db
                || current_level < self.config.threshold_dbov;
            if !held || !beats {
                return None;
            }
        }
        self.current = Some(loudest);
        self.last_switch = Some(now);
        Some(self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    /// Feeds `levels` (member, dBov) every 20 ms for `duration`; returns the
    /// changes seen and the end time.
    fn talk(
        d: &mut SpeakerDetector,
        mut now: Instant,
        duration: Duration,
        levels: &[(MemberId, i8)],
    ) -> (Vec<Option<MemberId>>, Instant) {
        let end = now + duration;
        let mut changes = vec![];
        while now < end {
            for (m, l) in levels {
                if let Some(c) = d.update(*m, *l, now) {
                    changes.push(c);
                }
            }
            now += MS20;
        }
        (changes, now)
    }

    #[test]
    fn loudest_speaker_wins_with_hysteresis() {
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        let t0 = Instant::now();
        let (c, t) = talk(&mut d, t0, Duration::from_secs(1), &[(1, -20), (2, -127)]);
        assert_eq!(c, vec![Some(1)]);
        // 2 is only 3 dB louder: no change.
        let (c, t) = talk(&mut d, t, Duration::from_secs(2), &[(1, -23), (2, -20)]);
        assert!(c.is_empty(), "{c:?}");
        // 2 is much louder: it takes over, once.
        let (c, t) = talk(&mut d, t, Duration::from_secs(2), &[(1, -60), (2, -15)]);
        assert_eq!(c, vec![Some(2)]);
        // Silence keeps the last speaker.
        let (c, _) = talk(&mut d, t, Duration::from_secs(2), &[(1, -127), (2, -127)]);
        assert!(c.is_empty());
        assert_eq!(d.current(), Some(2));
        assert_eq!(d.remove(2), Some(None));
        assert_eq!(d.remove(1), None);
    }

    #[test]
    fn top_k_ranks_by_smoothed_level() {
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        let t0 = Instant::now();
        let (_, t) = talk(
            &mut d,
            t0,
            Duration::from_secs(1),
            &[(1, -20), (2, -40), (3, -60), (4, -127)],
        );
        assert_eq!(d.current(), Some(1));
        let top2: Vec<MemberId> = (1..=4).filter(|m| d.in_top(*m, 2, t)).collect();
        assert_eq!(top2, vec![1, 2]);
        // The speaker is always in, even with k = 0.
        assert!(d.in_top(1, 0, t));
        assert!(!d.in_top(2, 0, t));
        // Unknown members rank as silent.
        assert!(!d.in_top(9, 2, t));
    }

    #[test]
    fn quiet_rooms_have_no_speaker_and_blips_do_not_flap() {
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        let t0 = Instant::now();
        let (c, t) = talk(&mut d, t0, Duration::from_secs(1), &[(1, -90), (2, -100)]);
        assert!(c.is_empty());
        assert_eq!(d.current(), None);
        let (c, t) = talk(&mut d, t, Duration::from_secs(1), &[(1, -10), (2, -100)]);
        assert_eq!(c, vec![Some(1)]);
        // A 40 ms blip from 2 is smoothed away.
        let (c, _) = talk(&mut d, t, Duration::from_millis(40), &[(1, -10), (2, 0)]);
        assert!(c.is_empty(), "{c:?}");
    }
}
