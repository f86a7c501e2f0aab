//! What a bot measures per remote member (time to connected and to the
//! first frame, frames, packets, bitrate, loss from RTP sequence gaps) and
//! how it prints it: one line per member for people, JSON for scripts.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Loss from RTP sequence numbers: packets expected (from the first to the
/// highest sequence number seen) minus packets received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqCounter {
    first: Option<u64>,
    highest: u64,
    received: u64,
}

impl SeqCounter {
    /// Records the packets `range` (extended, 64-bit sequence numbers) as
    /// received. Late packets (below the highest) fill their gap.
    pub fn record(&mut self, range: RangeInclusive<u64>) {
        let (lo, hi) = (*range.start(), *range.end());
        if hi < lo {
            return;
        }
        match self.first {
            None => {
                self.first = Some(lo);
                self.highest = hi;
            }
            Some(first) => {
                if lo < first {
                    self.first = Some(lo);
                }
                self.highest = self.highest.max(hi);
            }
        }
        self.received += hi - lo + 1;
    }

    /// Packets received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets the sequence numbers say were sent.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.highest - f + 1)
    }

    /// Packets missing (never negative: duplicates do not make up for gaps).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Lost / expected, 0 when nothing was expected.
    pub fn loss_ratio(&self) -> f64 {
        match self.expected() {
            0 => 0.0,
            e => self.lost() as f64 / e as f64,
        }
    }
}

/// Counters for one direction of one kind (video or audio) from one member.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// Frames (video) or packets (audio) delivered by the depacketizer.
    pub frames: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// RTP sequence numbers seen.
    pub seq: SeqCounter,
}

/// Everything one bot measures about one remote member.
#[derive(Debug, Clone)]
pub struct PeerStats {
    /// When the link was made (our offer sent, or their offer received).
    pub created: Instant,
    /// When our `join` went out (for join → first frame).
    pub joined_at: Instant,
    /// ICE + DTLS up.
    pub connected_at: Option<Instant>,
    /// First video frame received.
    pub first_frame_at: Option<Instant>,
    /// Latest video frame received.
    pub last_frame_at: Option<Instant>,
    /// Video from the member.
    pub video: Inbound,
    /// Audio from the member.
    pub audio: Inbound,
    /// Video frames we wrote to this member.
    pub frames_sent: u64,
    /// Audio packets we wrote to this member.
    pub audio_sent: u64,
    /// Chat messages received from / sent to the member.
    pub chat_in: u64,
    /// Chat messages sent.
    pub chat_out: u64,
    /// The previous report's counters, for per-interval rates.
    last: Option<(Instant, u64, u64)>,
}

impl PeerStats {
    /// Fresh counters for a link made at `now`.
    pub fn new(now: Instant, joined_at: Instant) -> Self {
        Self {
            created: now,
            joined_at,
            connected_at: None,
            first_frame_at: None,
            last_frame_at: None,
            video: Inbound::default(),
            audio: Inbound::default(),
            frames_sent: 0,
            audio_sent: 0,
            chat_in: 0,
            chat_out: 0,
            last: None,
        }
    }

    /// Records one video frame.
    pub fn on_video(&mut self, now: Instant, bytes: usize, seq: RangeInclusive<u64>) {
        self.video.frames += 1;
        self.video.bytes += bytes as u64;
        self.video.seq.record(seq);
        self.first_frame_at.get_or_insert(now);
        self.last_frame_at = Some(now);
    }

    /// Records one audio packet.
    pub fn on_audio(&mut self, bytes: usize, seq: RangeInclusive<u64>) {
        self.audio.frames += 1;
        self.audio.bytes += bytes as u64;
        self.audio.seq.record(seq);
    }

    /// A snapshot for printing; rates are over the time since the previous
    /// snapshot (or since the first frame, for the first one). `final_`
    /// snapshots give rates from the first to the last frame received (the
    /// whole session) and leave the interval alone.
    pub fn snapshot(&mut self, bot: &str, peer: &str, now: Instant, final_: bool) -> PeerReport {
        let bytes = self.video.bytes + self.audio.bytes;
        let since_first = self
            .first_frame_at
            .map(|t| now.saturating_duration_since(t));
        let span = match (self.first_frame_at, self.last_frame_at) {
            (Some(first), Some(last)) if self.video.frames > 1 => Some(last - first),
            _ => None,
        };
        let (fps, kbps) = match (self.last, since_first, span) {
            (_, _, Some(span)) if final_ => rates(span, self.video.frames - 1, bytes),
            (Some((t, frames, b)), _, _) if !final_ => {
                rates(now - t, self.video.frames - frames, bytes - b)
            }
            (_, Some(d), _) => rates(d, self.video.frames, bytes),
            _ => (0.0, 0.0),
        };
        if !final_ {
            self.last = Some((now, self.video.frames, bytes));
        }
        let ms = |t: Option<Instant>, from: Instant| {
            t.map(|t| t.saturating_duration_since(from).as_millis() as u64)
        };
        PeerReport {
            bot: bot.to_owned(),
            peer: peer.to_owned(),
            connected_ms: ms(self.connected_at, self.created),
            first_frame_ms: ms(self.first_frame_at, self.created),
            join_to_first_frame_ms: ms(self.first_frame_at, self.joined_at),
            video_frames: self.video.frames,
            video_packets: self.video.seq.received(),
            video_lost: self.video.seq.lost(),
            audio_packets: self.audio.frames,
            audio_lost: self.audio.seq.lost(),
            fps: round1(fps),
            kbps: round1(kbps),
            video_loss_pct: round1(self.video.seq.loss_ratio() * 100.0),
            audio_loss_pct: round1(self.audio.seq.loss_ratio() * 100.0),
            frames_sent: self.frames_sent,
            chat_in: self.chat_in,
            chat_out: self.chat_out,
            final_,
        }
    }
}

fn rates(d: Duration, frames: u64, bytes: u64) -> (f64, f64) {
    let s = d.as_secs_f64();
    if s <= 0.0 {
        return (0.0, 0.0);
    }
    (frames as f64 / s, bytes as f64 * 8.0 / 1000.0 / s)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// What one bot reports about one remote member.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerReport {
    /// The reporting bot.
    pub bot: String,
    /// The remote member.
    pub peer: String,
    /// Link made → ICE and DTLS connected, in ms.
    pub connected_ms: Option<u64>,
    /// Link made → first video frame, in ms.
    pub first_frame_ms: Option<u64>,
    /// Our `join` → first video frame from this member, in ms.
    pub join_to_first_frame_ms: Option<u64>,
    /// Video frames received.
    pub video_frames: u64,
    /// Video RTP packets received.
    pub video_packets: u64,
    /// Video RTP packets missing (sequence gaps).
    pub video_lost: u64,
    /// Audio packets received.
    pub audio_packets: u64,
    /// Audio RTP packets missing.
    pub audio_lost: u64,
    /// Video frames per second (this interval, or the whole session at exit).
    pub fps: f64,
    /// Received media bitrate, kbit/s (same period).
    pub kbps: f64,
    /// Video packet loss, percent (whole session).
    pub video_loss_pct: f64,
    /// Audio packet loss, percent (whole session).
    pub audio_loss_pct: f64,
    /// Video frames we sent to this member.
    pub frames_sent: u64,
    /// Chat messages received from this member.
    pub chat_in: u64,
    /// Chat messages sent to this member.
    pub chat_out: u64,
    /// The report at exit (rates over the whole session).
    #[serde(rename = "final")]
    pub final_: bool,
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"))
}

impl PeerReport {
    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "{} <- {}: connected {}, first frame {} (join +{}); video {} frames {:.1} fps {:.1} kbit/s loss {:.1} %; audio {} packets loss {:.1} %",
            self.bot,
            self.peer,
            opt_ms(self.connected_ms),
            opt_ms(self.first_frame_ms),
            opt_ms(self.join_to_first_frame_ms),
            self.video_frames,
            self.fps,
            self.kbps,
            self.video_loss_pct,
            self.audio_packets,
            self.audio_loss_pct,
        )
    }

    /// One JSON object (a line of `--json` output).
    pub fn json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("serializable");
        v["type"] = "report".into();
        v.to_string()
    }
}

/// The frames one member received from another in a media load run, next
/// to the frames the other sent it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairResult {
    /// The room.
    pub room: String,
    /// Receiver.
    pub to: String,
    /// Sender.
    pub from: String,
    /// Frames the sender wrote to the receiver.
    pub sent: u64,
    /// Frames the receiver got.
    pub received: u64,
    /// received / sent (1 when nothing was sent).
    pub ratio: f64,
    /// Frames per second received, since the first frame.
    pub fps: f64,
    /// Video packet loss from sequence gaps, percent.
    pub loss_pct: f64,
    /// The receiver's join → first frame from the sender, ms (only when the
    /// receiver joined after the sender).
    pub join_to_first_frame_ms: Option<u64>,
}

impl PairResult {
    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "{} {} <- {}: {}/{} frames ({:.1} %), {:.1} fps, loss {:.1} %",
            self.room,
            self.to,
            self.from,
            self.received,
            self.sent,
            self.ratio * 100.0,
            self.fps,
            self.loss_pct
        )
    }
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// The summary of a media load run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSummary {
    /// Rooms.
    pub rooms: usize,
    /// Members per room.
    pub room_size: usize,
    /// Receiving pairs measured.
    pub pairs: usize,
    /// Pairs that received at least `threshold` of the frames sent.
    pub pairs_ok: usize,
    /// The threshold (0.9 = 90 %).
    pub threshold: f64,
    /// Lowest received/sent ratio of any pair.
    pub min_ratio: f64,
    /// Median fps over pairs.
    pub median_fps: f64,
    /// Median join → first frame over pairs, ms.
    pub median_join_to_first_frame_ms: Option<f64>,
    /// Pairs that never got a frame.
    pub pairs_without_frames: usize,
}

impl LoadSummary {
    /// Summarizes PAIRS against THRESHOLD.
    pub fn of(rooms: usize, room_size: usize, pairs: &[PairResult], threshold: f64) -> Self {
        let mut fps: Vec<f64> = pairs.iter().map(|p| p.fps).collect();
        let mut ttff: Vec<f64> = pairs
            .iter()
            .filter_map(|p| p.join_to_first_frame_ms.map(|v| v as f64))
            .collect();
        Self {
            rooms,
            room_size,
            pairs: pairs.len(),
            pairs_ok: pairs.iter().filter(|p| p.ratio >= threshold).count(),
            threshold,
            min_ratio: pairs.iter().map(|p| p.ratio).fold(1.0, f64::min),
            median_fps: median(&mut fps).unwrap_or(0.0),
            median_join_to_first_frame_ms: median(&mut ttff),
            pairs_without_frames: pairs.iter().filter(|p| p.received == 0).count(),
        }
    }

    /// True when every pair received at least the threshold.
    pub fn all_ok(&self) -> bool {
        self.pairs_ok == self.pairs
    }

    /// A few lines for people.
    pub fn text(&self) -> String {
        format!(
            "{} rooms x {} members: {}/{} receiving pairs got >= {:.0} % of the frames sent (lowest {:.1} %, {} got none); median {:.1} fps; median join -> first frame {}",
            self.rooms,
            self.room_size,
            self.pairs_ok,
            self.pairs,
            self.threshold * 100.0,
            self.min_ratio * 100.0,
            self.pairs_without_frames,
            self.median_fps,
            self.median_join_to_first_frame_ms
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.0} ms")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_from_sequence_gaps() {
        let mut c = SeqCounter::default();
        assert_eq!((c.expected(), c.lost(), c.loss_ratio()), (0, 0, 0.0));
        c.record(100..=102); // a frame of three packets
        c.record(103..=103);
        assert_eq!((c.received(), c.expected(), c.lost()), (4, 4, 0));
        c.record(106..=107); // 104, 105 missing
        assert_eq!((c.received(), c.expected(), c.lost()), (6, 8, 2));
        assert!((c.loss_ratio() - 0.25).abs() < 1e-9);
        c.record(104..=105); // late: the gap fills
        assert_eq!(c.lost(), 0);
        c.record(98..=98); // earlier than the first seen
        assert_eq!((c.expected(), c.lost()), (10, 1));
        c.record(107..=107); // a duplicate never hides a gap below zero
        assert_eq!(c.lost(), 0);
        #[allow(clippy::reversed_empty_ranges)]
        c.record(5..=4); // empty range: ignored
        assert_eq!(c.received(), 10);
    }

    #[test]
    fn snapshots_rates_and_lines() {
        let t0 = Instant::now();
        let mut s = PeerStats::new(t0, t0 - Duration::from_millis(50));
        s.connected_at = Some(t0 + Duration::from_millis(120));
        let mut seq = 0;
        for i in 0..30u64 {
            // 15 fps, 1000 bytes, 2 packets per frame; frame 10 lost.
            if i != 10 {
                s.on_video(
                    t0 + Duration::from_millis(200 + i * 1000 / 15),
                    1000,
                    seq..=seq + 1,
                );
            }
            seq += 2;
        }
        let now = t0 + Duration::from_millis(200 + 2000);
        let r = s.snapshot("bot-1", "alice", now, false);
        assert_eq!(r.connected_ms, Some(120));
        assert_eq!(r.first_frame_ms, Some(200));
        assert_eq!(r.join_to_first_frame_ms, Some(250));
        assert_eq!((r.video_frames, r.video_packets, r.video_lost), (29, 58, 2));
        assert_eq!(r.fps, 14.5);
        assert_eq!(r.kbps, 116.0);
        assert_eq!(r.video_loss_pct, 3.3);
        let line = r.line();
        assert!(line.starts_with("bot-1 <- alice: connected 120 ms, first frame 200 ms (join +250 ms); video 29 frames 14.5 fps"), "{line}");
        let j: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(j["type"], "report");
        assert_eq!(j["peer"], "alice");
        assert_eq!(j["final"], false);
        // The next interval has no frames: 0 fps.
        let r2 = s.snapshot("bot-1", "alice", now + Duration::from_secs(1), false);
        assert_eq!(r2.fps, 0.0);
        // The final report covers the whole session: first to last frame,
        // 28 intervals in 29 * 1000 / 15 ms (frame 10 missing).
        let f = s.snapshot("bot-1", "alice", now + Duration::from_secs(1), true);
        assert!(f.final_);
        assert!((f.fps - 28.0 / (29.0 / 15.0)).abs() < 0.1, "{}", f.fps);
        let none = PeerStats::new(t0, t0).snapshot("b", "c", t0, false);
        assert!(none.line().contains("connected -, first frame -"));
    }

    #[test]
    fn load_summary() {
        let pair = |ratio: f64, received: u64, fps: f64, t: Option<u64>| PairResult {
            room: "r".into(),
            to: "a".into(),
            from: "b".into(),
            sent: 100,
            received,
            ratio,
            fps,
            loss_pct: 0.0,
            join_to_first_frame_ms: t,
        };
        let pairs = [
            pair(1.0, 100, 15.0, Some(300)),
            pair(0.95, 95, 14.0, Some(500)),
            pair(0.5, 50, 7.0, None),
            pair(0.0, 0, 0.0, None),
        ];
        let s = LoadSummary::of(1, 2, &pairs, 0.9);
        assert_eq!((s.pairs, s.pairs_ok, s.pairs_without_frames), (4, 2, 1));
        assert_eq!(s.min_ratio, 0.0);
        assert_eq!(s.median_fps, 10.5);
        assert_eq!(s.median_join_to_first_frame_ms, Some(400.0));
        assert!(!s.all_ok());
        assert!(
            s.text()
                .starts_with("1 rooms x 2 members: 2/4 receiving pairs"),
            "{}",
            s.text()
        );
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
    }
}
