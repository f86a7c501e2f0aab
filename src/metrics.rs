//! Prometheus metrics: what the server counts, and the text served at
//! `GET /metrics` (Prometheus text exposition format 0.0.4).
//!
//! Hand-written rather than through the `metrics` crate's global recorder:
//! every signaling event already happens under the hub's one lock, so the
//! counters are plain integers ([`crate::core::Stats`] in the core, the rest
//! in the hub) and the handle-time [`Histogram`] is a fixed array of buckets.
//! Counting costs an add, recording a duration one short search; there is no
//! atomic, no per-sample buffer and no upkeep task on the relay path. A scrape
//! copies a [`Snapshot`] out under the lock and formats it outside.
//!
//! Every metric is documented for operators in `docs/metrics.md`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::core::{Departure, Stats};
use crate::protocol::{ErrorCode, RelayKind};

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the handle-time buckets, in nanoseconds (1 µs … 100 ms).
pub const HANDLE_TIME_BUCKETS_NS: [u64; 15] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    100_000_000,
];

/// A histogram of durations with the fixed buckets [`HANDLE_TIME_BUCKETS_NS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: [u64; HANDLE_TIME_BUCKETS_NS.len() + 1],
    sum_ns: u64,
}

impl Histogram {
    /// Counts one observation.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = HANDLE_TIME_BUCKETS_NS.partition_point(|&bound| bound < ns);
        self.counts[i] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of all observations.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }

    /// Cumulative counts per upper bound, as Prometheus wants them; the last
    /// entry (bound `None`) is `+Inf` and equals [`Histogram::count`].
    pub fn cumulative(&self) -> Vec<(Option<Duration>, u64)> {
        let mut total = 0;
        self.counts
            .iter()
            .enumerate()
            .map(|(i, n)| {
                total += n;
                let bound = HANDLE_TIME_BUCKETS_NS
                    .get(i)
                    .map(|&ns| Duration::from_nanos(ns));
                (bound, total)
            })
            .collect()
    }
}

/// Why the WebSocket layer refused a frame and closed the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRefusal {
    /// A binary frame (close 1003).
    Binary,
    /// A message above `--max-frame-bytes` (close 1009).
    TooBig,
}

impl FrameRefusal {
    /// Every reason, in index order.
    pub const ALL: [FrameRefusal; 2] = [FrameRefusal::Binary, FrameRefusal::TooBig];

    /// The reason as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameRefusal::Binary => "binary",
            FrameRefusal::TooBig => "too-big",
        }
    }
}

/// Why an HTTP upgrade to `/ws` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRefusal {
    /// `--max-connections` connections were open (HTTP 503).
    MaxConnections,
    /// A cross-origin request from an origin not allowed (HTTP 403).
    Origin,
    /// The server is shutting down (HTTP 503).
    ShuttingDown,
}

impl UpgradeRefusal {
    /// Every reason, in index order.
    pub const ALL: [UpgradeRefusal; 3] = [
        UpgradeRefusal::MaxConnections,
        UpgradeRefusal::Origin,
        UpgradeRefusal::ShuttingDown,
    ];

    /// The reason as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            UpgradeRefusal::MaxConnections => "max-connections",
            UpgradeRefusal::Origin => "origin",
            UpgradeRefusal::ShuttingDown => "shutting-down",
        }
    }
}

/// Figures of the process itself, read from `/proc` at scrape time (Linux).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident memory, bytes.
    pub resident_bytes: Option<u64>,
    /// Open file descriptors (sockets included).
    pub open_fds: Option<u64>,
    /// The open-file (soft) limit.
    pub max_fds: Option<u64>,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads the figures that this platform offers; the others stay `None`.
    pub fn read() -> Self {
        let resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kib| kib * 1024);
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        let max_fds = rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft);
        // Fields 14 and 15 of /proc/self/stat, in clock ticks (USER_HZ = 100
        // on every Linux configuration in use); the command name before them
        // may contain spaces, so count from the closing parenthesis.
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 2..];
                let fields: Vec<&str> = rest.split(' ').collect();
                let utime: u64 = fields.get(11)?.parse().ok()?;
                let stime: u64 = fields.get(12)?.parse().ok()?;
                Some((utime + stime) as f64 / 100.0)
            });
        Self {
            resident_bytes,
            open_fds,
            max_fds,
            cpu_seconds,
        }
    }
}

/// Everything `/metrics` shows, copied out at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The core's event counters.
    pub core: Stats,
    /// Open signaling connections.
    pub connections: usize,
    /// Rooms that exist.
    pub rooms: usize,
    /// Members in all rooms, live and held.
    pub members: usize,
    /// Members within their grace period.
    pub members_held: usize,
    /// Bytes queued for those members, all together.
    pub held_bytes: usize,
    /// Signaling connections opened since start.
    pub connections_opened: u64,
    /// Connections cut because their outbound queue was full.
    pub slow_consumers: u64,
    /// Frames refused by the WebSocket layer, indexed like [`FrameRefusal::ALL`].
    pub frames_refused: [u64; FrameRefusal::ALL.len()],
    /// Upgrades refused, indexed like [`UpgradeRefusal::ALL`].
    pub upgrades_refused: [u64; UpgradeRefusal::ALL.len()],
    /// Time spent handling each client message.
    pub handle_time: Histogram,
    /// Room passwords hashed (a host set one).
    pub password_hashes: u64,
    /// Joiners' passwords checked against a room's.
    pub password_checks: u64,
    /// Of those, the wrong ones.
    pub wrong_passwords: u64,
    /// The media server's figures, when it runs.
    pub media: Option<crate::media::MediaSnapshot>,
    /// The process's own figures.
    pub process: ProcessStats,
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    fn sample(&mut self, suffix: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.out, "{}{suffix}", self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn family<'a>(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out, name }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Seconds as Prometheus writes them.
fn seconds(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// Formats a snapshot in the Prometheus text format.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let o = &mut out;
    let c = &s.core;

    family(
        o,
        "huddle_build_info",
        "gauge",
        "Always 1; the version label tells which huddle runs.",
    )
    .sample("", &[("version", env!("CARGO_PKG_VERSION"))], 1);

    family(
        o,
        "huddle_connections",
        "gauge",
        "Open signaling (WebSocket) connections.",
    )
    .sample("", &[], s.connections);
    family(
        o,
        "huddle_connections_opened_total",
        "counter",
        "Signaling connections opened since start.",
    )
    .sample("", &[], s.connections_opened);
    let mut f = family(
        o,
        "huddle_upgrades_refused_total",
        "counter",
        "WebSocket upgrades refused, by reason.",
    );
    for r in UpgradeRefusal::ALL {
        f.sample(
            "",
            &[("reason", r.as_str())],
            s.upgrades_refused[r as usize],
        );
    }
    family(
        o,
        "huddle_rooms",
        "gauge",
        "Rooms that exist (a room exists while it has members).",
    )
    .sample("", &[], s.rooms);
    family(
        o,
        "huddle_members",
        "gauge",
        "Members in all rooms, including those within their grace period.",
    )
    .sample("", &[], s.members);
    family(
        o,
        "huddle_members_held",
        "gauge",
        "Members whose connection was lost and who keep their place for the grace period.",
    )
    .sample("", &[], s.members_held);
    family(
        o,
        "huddle_resume_queued_bytes",
        "gauge",
        "Bytes of relayed messages queued for members within their grace period (bounded by --resume-budget-bytes).",
    )
    .sample("", &[], s.held_bytes);

    family(
        o,
        "huddle_joins_total",
        "counter",
        "New memberships (joined without resumed), room changes included.",
    )
    .sample("", &[], c.joins);
    family(
        o,
        "huddle_resumes_total",
        "counter",
        "Members that took their place back with their token.",
    )
    .sample("", &[], c.resumes);
    let mut f = family(
        o,
        "huddle_leaves_total",
        "counter",
        "Members that left a room, by reason.",
    );
    for d in Departure::ALL {
        f.sample("", &[("reason", d.as_str())], c.leaves(d));
    }
    family(
        o,
        "huddle_grace_expiries_total",
        "counter",
        "Grace periods that ended without a resume (the member left).",
    )
    .sample("", &[], c.leaves(Departure::GraceExpired));
    family(o, "huddle_connections_lost_total", "counter", "Members whose connection was lost (no close frame) while in a room; each starts a grace period.")
        .sample("", &[], c.lost);

    let mut f = family(
        o,
        "huddle_relayed_messages_total",
        "counter",
        "Relayed messages accepted, by type (delivered or queued for a held member).",
    );
    for k in RelayKind::ALL {
        f.sample("", &[("type", k.type_str())], c.relayed(k));
    }
    family(
        o,
        "huddle_queued_messages_total",
        "counter",
        "Relayed messages queued for a member within its grace period.",
    )
    .sample("", &[], c.queued);
    let mut f = family(
        o,
        "huddle_errors_total",
        "counter",
        "error replies sent to clients, by code.",
    );
    for code in ErrorCode::ALL {
        f.sample("", &[("code", code.as_str())], c.errors(code));
    }
    family(
        o,
        "huddle_rate_limited_messages_total",
        "counter",
        "Messages dropped by the rate limiter.",
    )
    .sample("", &[], c.rate_limited);
    family(
        o,
        "huddle_rate_limit_closes_total",
        "counter",
        "Connections closed (1008) for exceeding the rate limit for too long.",
    )
    .sample("", &[], c.rate_limit_closes);
    family(
        o,
        "huddle_slow_consumers_total",
        "counter",
        "Connections cut (1013) because their outbound queue was full.",
    )
    .sample("", &[], s.slow_consumers);
    family(
        o,
        "huddle_lobby_knocks_total",
        "counter",
        "Joiners put in a locked room's lobby.",
    )
    .sample("", &[], c.knocks);
    let mut f = family(
        o,
        "huddle_lobby_decisions_total",
        "counter",
        "Waiting joiners let in (admit or unlock) or turned away (deny).",
    );
    f.sample("", &[("decision", "admitted")], c.admitted);
    f.sample("", &[("decision", "denied")], c.denied);
    family(
        o,
        "huddle_password_hashes_total",
        "counter",
        "Room passwords hashed (Argon2id) because a host set one.",
    )
    .sample("", &[], s.password_hashes);
    let mut f = family(
        o,
        "huddle_password_checks_total",
        "counter",
        "Joiners' room passwords checked, by result.",
    );
    f.sample(
        "",
        &[("result", "right")],
        s.password_checks - s.wrong_passwords,
    );
    f.sample("", &[("result", "wrong")], s.wrong_passwords);
    let mut f = family(
        o,
        "huddle_frames_refused_total",
        "counter",
        "Frames refused by the WebSocket layer, by reason; each closes its connection.",
    );
    for r in FrameRefusal::ALL {
        f.sample("", &[("reason", r.as_str())], s.frames_refused[r as usize]);
    }

    let mut f = family(
        o,
        "huddle_message_handle_seconds",
        "histogram",
        "Time spent handling one client message inside the server: parse, wait for the lock, the core, queueing every output.",
    );
    for (bound, n) in s.handle_time.cumulative() {
        let le = bound.map_or_else(|| "+Inf".to_owned(), seconds);
        f.sample("_bucket", &[("le", &le)], n);
    }
    f.sample("_sum", &[], seconds(s.handle_time.sum()));
    f.sample("_count", &[], s.handle_time.count());

    if let Some(m) = &s.media {
        render_media(o, m, c);
    }

    let p = &s.process;
    if let Some(v) = p.resident_bytes {
        family(
            o,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        )
        .sample("", &[], v);
    }
    if let Some(v) = p.open_fds {
        family(
            o,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        )
        .sample("", &[], v);
    }
    if let Some(v) = p.max_fds {
        family(
            o,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
        )
        .sample("", &[], v);
    }
    if let Some(v) = p.cpu_seconds {
        family(
            o,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        )
        .sample("", &[], v);
    }
    out
}

/// The media server's families (only when it runs).
fn render_media(o: &mut String, m: &crate::media::MediaSnapshot, c: &Stats) {
    let f = &m.sfu;
    family(
        o,
        "huddle_sfu_moves_total",
        "counter",
        "Rooms that moved from the mesh to the media server.",
    )
    .sample("", &[], c.sfu_moves);
    family(
        o,
        "huddle_sfu_data_messages_total",
        "counter",
        "Data messages relayed in media-server rooms (chat and the like).",
    )
    .sample("", &[], c.data);
    let gauges: [(&str, &str, u64); 3] = [
        (
            "huddle_sfu_members",
            "Members on the media server.",
            f.members as u64,
        ),
        (
            "huddle_sfu_rooms",
            "Rooms on the media server.",
            f.rooms as u64,
        ),
        (
            "huddle_sfu_forwarded_tracks",
            "Tracks forwarded now (each publisher's track times each subscriber; capped by --sfu-max-tracks).",
            f.forwarded_tracks as u64,
        ),
    ];
    for (name, help, v) in gauges {
        family(o, name, "gauge", help).sample("", &[], v);
    }
    let counters: [(&str, &str, u64); 13] = [
        (
            "huddle_sfu_commands_dropped_total",
            "Media commands dropped because the media server's queue was full (--sfu-queue).",
            m.commands_dropped,
        ),
        (
            "huddle_sfu_datagrams_received_total",
            "UDP datagrams the media socket received.",
            m.datagrams_in,
        ),
        (
            "huddle_sfu_datagrams_unknown_total",
            "Received datagrams no media connection accepted.",
            m.datagrams_unknown,
        ),
        (
            "huddle_sfu_datagrams_sent_total",
            "UDP datagrams the media socket sent.",
            m.datagrams_out,
        ),
        (
            "huddle_sfu_send_dropped_total",
            "Datagrams dropped because the socket's send buffer was full.",
            m.send_dropped,
        ),
        (
            "huddle_sfu_refused_total",
            "Requests the media server refused: a bad SDP (the member stays), or capacity and other refusals (the member is out of the room).",
            m.refused,
        ),
        (
            "huddle_sfu_bytes_received_total",
            "Bytes of datagrams accepted.",
            f.bytes_in,
        ),
        (
            "huddle_sfu_bytes_sent_total",
            "Bytes of datagrams sent.",
            f.bytes_out,
        ),
        (
            "huddle_sfu_frames_received_total",
            "Media frames received from publishers.",
            f.frames_in,
        ),
        (
            "huddle_sfu_frames_forwarded_total",
            "Media frames written to subscribers.",
            f.frames_out,
        ),
        (
            "huddle_sfu_keyframe_requests_total",
            "Keyframe requests sent to publishers, after coalescing.",
            f.keyframe_requests_sent,
        ),
        (
            "huddle_sfu_layer_switches_total",
            "Simulcast layer switches.",
            f.layer_switches,
        ),
        (
            "huddle_sfu_members_failed_total",
            "Members whose media connection failed.",
            f.members_failed,
        ),
    ];
    for (name, help, v) in counters {
        family(o, name, "counter", help).sample("", &[], v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_bounds_and_cumulative() {
        let mut h = Histogram::default();
        h.record(Duration::from_nanos(1_000)); // ≤ 1 µs
        h.record(Duration::from_nanos(1_001)); // ≤ 2.5 µs
        h.record(Duration::from_micros(30)); // ≤ 50 µs
        h.record(Duration::from_secs(1)); // +Inf
        let cum = h.cumulative();
        assert_eq!(cum.len(), HANDLE_TIME_BUCKETS_NS.len() + 1);
        assert_eq!(cum[0], (Some(Duration::from_micros(1)), 1));
        assert_eq!(cum[1], (Some(Duration::from_nanos(2_500)), 2));
        assert_eq!(cum[4].1, 2); // ≤ 25 µs
        assert_eq!(cum[5].1, 3); // ≤ 50 µs
        assert_eq!(cum.last(), Some(&(None, 4)));
        assert_eq!(h.count(), 4);
        assert_eq!(
            h.sum(),
            Duration::from_nanos(1_000_000_000 + 30_000 + 2_001)
        );
    }

    #[test]
    fn rendering_follows_the_text_format() {
        let mut s = Snapshot {
            connections: 3,
            ..Snapshot::default()
        };
        s.core.errors[ErrorCode::NameTaken as usize] = 2;
        s.handle_time.record(Duration::from_micros(3));
        let text = render(&s);
        assert!(text.contains("# TYPE huddle_connections gauge\nhuddle_connections 3\n"));
        assert!(text.contains("huddle_errors_total{code=\"name-taken\"} 2\n"));
        assert!(text.contains("huddle_errors_total{code=\"bad-message\"} 0\n"));
        assert!(text.contains("huddle_message_handle_seconds_bucket{le=\"0.0000025\"} 0\n"));
        assert!(text.contains("huddle_message_handle_seconds_bucket{le=\"0.000005\"} 1\n"));
        assert!(text.contains("huddle_message_handle_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("huddle_message_handle_seconds_sum 0.000003\n"));
        assert!(text.contains("huddle_message_handle_seconds_count 1\n"));
        // No media server: none of its families.
        assert!(!text.contains("huddle_sfu_"));
        let with_media = render(&Snapshot {
            media: Some(crate::media::MediaSnapshot {
                datagrams_in: 7,
                ..Default::default()
            }),
            ..Snapshot::default()
        });
        assert!(with_media.contains("# TYPE huddle_sfu_datagrams_received_total counter\nhuddle_sfu_datagrams_received_total 7\n"));
        assert!(with_media.contains("huddle_sfu_forwarded_tracks 0\n"));
        // Every sample line belongs to a family declared just before it.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let fam = declared.last().expect("a TYPE line first");
                assert!(name.starts_with(fam.as_str()), "{name} under {fam}");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
