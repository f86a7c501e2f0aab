//! The pure parts of `huddle load`: the join order, realistic payloads, the
//! per-member check of what arrives, and percentiles. No sockets, no clocks.
//!
//! Every relayed payload carries a marker with a per-direction sequence
//! number and the send time: an SDP gets an attribute line
//! `a=x-huddle-load:SEQ TS`, a candidate gets the extension attributes
//! `x-load-seq SEQ x-load-ts TS` at the end of its `candidate` string. Both
//! are valid syntax and opaque to the server. From sender A to receiver B,
//! sequence 1 is the offer (or the answer) and the candidates follow as 2, 3, …
//! so a receiver sees any loss, duplicate or reordering as a gap.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// A small deterministic random source (SplitMix64), so a run is repeatable
/// with `--seed`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// `n` lowercase hex digits.
    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit((self.next_u64() % 16) as u32, 16).unwrap_or('0'))
            .collect()
    }

    /// `n` characters of an ICE ufrag/pwd alphabet.
    fn token(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
        (0..n)
            .map(|_| ALPHABET[(self.next_u64() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

/// The order in which members join: the first member of every room, then the
/// second of every room, and so on, the way rooms fill up in parallel.
/// Returns `(room, member)` index pairs.
pub fn join_order(rooms: usize, room_size: usize) -> Vec<(usize, usize)> {
    (0..room_size)
        .flat_map(|m| (0..rooms).map(move |r| (r, m)))
        .collect()
}

/// Which SDP: decides the `a=setup` role and the marker's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpKind {
    /// An offer (from the newcomer).
    Offer,
    /// An answer (to the newcomer).
    Answer,
}

/// The marker line an SDP carries.
const SDP_MARK: &str = "a=x-huddle-load:";
/// The marker a candidate carries.
const CAND_SEQ: &str = " x-load-seq ";
const CAND_TS: &str = " x-load-ts ";

/// An SDP like a browser's for an audio + video + data-channel call, padded
/// with further video codecs to about `target` bytes (never less), carrying
/// the marker `seq`/`ts`.
pub fn sdp(kind: SdpKind, seq: u32, ts: u64, target: usize, rng: &mut Rng) -> String {
    let mut s = String::with_capacity(target + 512);
    let session = rng.range(1 << 60, u64::MAX >> 1);
    let ufrag = rng.token(4);
    let pwd = rng.token(24);
    let fingerprint: Vec<String> = (0..32).map(|_| rng.hex(2).to_uppercase()).collect();
    let setup = match kind {
        SdpKind::Offer => "actpass",
        SdpKind::Answer => "active",
    };
    let msid = format!(
        "{}-{}-{}-{}-{}",
        rng.hex(8),
        rng.hex(4),
        rng.hex(4),
        rng.hex(4),
        rng.hex(12)
    );
    let _ = write!(
        s,
        "v=0\r\no=- {session} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE 0 1 2\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS {msid}\r\n\
         {SDP_MARK}{seq} {ts}\r\n"
    );
    let common = |s: &mut String, mid: u32| {
        let _ = write!(
            s,
            "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n\
             a=ice-options:trickle\r\na=fingerprint:sha-256 {}\r\na=setup:{setup}\r\na=mid:{mid}\r\n",
            fingerprint.join(":")
        );
    };
    // Audio: Opus, RED, G.722, PCMU/PCMA, comfort noise, DTMF.
    s.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n");
    common(&mut s, 0);
    s.push_str(
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
         a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
         a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
         a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\n",
    );
    let audio_ssrc = rng.range(1, u32::MAX as u64);
    let track = format!("{}-{}", rng.hex(8), rng.hex(4));
    let _ = write!(
        s,
        "a=msid:{msid} {track}\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n\
         a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n\
         a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
         a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n\
         a=ssrc:{audio_ssrc} cname:{}\r\na=ssrc:{audio_ssrc} msid:{msid} {track}\r\n",
        rng.token(16)
    );
    // Video: VP8, VP9, H.264, AV1 with RTX, until the target size is reached.
    let codecs = [
        ("VP8/90000", ""),
        ("VP9/90000", "profile-id=0"),
        ("VP9/90000", "profile-id=2"),
        (
            "H264/90000",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        ),
        (
            "H264/90000",
            "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
        ),
        (
            "H264/90000",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
        ),
        ("AV1/90000", "level-idx=5;profile=0;tier=0"),
        (
            "H264/90000",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
        ),
    ];
    let mut video = String::new();
    let mut pts = Vec::new();
    let mut pt = 96;
    'fill: for round in 0.. {
        for (codec, fmtp) in codecs {
            // Base size so far plus what follows (≈ 700 bytes) must reach target.
            if round > 0 || pts.len() >= 4 {
                let estimate = s.len() + video.len() + 900 + pts.len() * 4;
                if estimate >= target || pt > 127 {
                    break 'fill;
                }
            }
            pts.push(pt);
            let _ = write!(
                video,
                "a=rtpmap:{pt} {codec}\r\na=rtcp-fb:{pt} goog-remb\r\na=rtcp-fb:{pt} transport-cc\r\n\
                 a=rtcp-fb:{pt} ccm fir\r\na=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\n"
            );
            if !fmtp.is_empty() {
                let _ = write!(video, "a=fmtp:{pt} {fmtp}\r\n");
            }
            let _ = write!(
                video,
                "a=rtpmap:{} rtx/90000\r\na=fmtp:{} apt={pt}\r\n",
                pt + 1,
                pt + 1
            );
            pts.push(pt + 1);
            pt += 2;
        }
    }
    let list: Vec<String> = pts.iter().map(u32::to_string).collect();
    let _ = write!(s, "m=video 9 UDP/TLS/RTP/SAVPF {}\r\n", list.join(" "));
    common(&mut s, 1);
    s.push_str(
        "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n\
         a=extmap:13 urn:3gpp:video-orientation\r\na=sendrecv\r\na=rtcp-mux\r\na=rtcp-rsize\r\n",
    );
    s.push_str(&video);
    let (v1, v2) = (rng.range(1, u32::MAX as u64), rng.range(1, u32::MAX as u64));
    let vtrack = format!("{}-{}", rng.hex(8), rng.hex(4));
    let _ = write!(
        s,
        "a=ssrc-group:FID {v1} {v2}\r\na=ssrc:{v1} cname:x\r\na=ssrc:{v1} msid:{msid} {vtrack}\r\n\
         a=ssrc:{v2} cname:x\r\na=ssrc:{v2} msid:{msid} {vtrack}\r\n"
    );
    // The data channel ("sendDataChannel").
    s.push_str("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
    common(&mut s, 2);
    s.push_str("a=sctp-port:5000\r\na=max-message-size:262144\r\n");
    while s.len() < target {
        // Rarely needed: a last attribute to reach the floor exactly.
        let _ = write!(s, "a=x-pad:{}\r\n", rng.hex(32));
    }
    s
}

/// SDPs made once at start, so that sending one costs a copy: each is kept
/// JSON-escaped, split around its marker line.
#[derive(Debug, Clone)]
pub struct SdpPool {
    offers: Vec<(String, String)>,
    answers: Vec<(String, String)>,
}

impl SdpPool {
    /// `variants` offers and as many answers, sizes drawn from `sizes`.
    pub fn new(sizes: (u64, u64), variants: usize, rng: &mut Rng) -> Self {
        let mut make = |kind| {
            (0..variants.max(1))
                .map(|_| {
                    let target = rng.range(sizes.0, sizes.1) as usize;
                    let text = sdp(kind, 0, 0, target, rng);
                    let mark = format!("{SDP_MARK}0 0\r\n");
                    let (head, tail) = text.split_once(&mark).expect("the marker is there");
                    (json_inner(head), json_inner(tail))
                })
                .collect()
        };
        let offers = make(SdpKind::Offer);
        let answers = make(SdpKind::Answer);
        Self { offers, answers }
    }

    /// The whole `offer`/`answer` message to `to_json` (a JSON string
    /// literal) carrying marker `seq`/`ts`.
    pub fn message(
        &self,
        kind: SdpKind,
        to_json: &str,
        seq: u32,
        ts: u64,
        rng: &mut Rng,
    ) -> String {
        let (list, kind) = match kind {
            SdpKind::Offer => (&self.offers, "offer"),
            SdpKind::Answer => (&self.answers, "answer"),
        };
        let (head, tail) = &list[(rng.next_u64() % list.len() as u64) as usize];
        let mut m = String::with_capacity(head.len() + tail.len() + 96);
        let _ = write!(
            m,
            "{{\"type\":\"{kind}\",\"to\":{to_json},\"sdp\":\"{head}{SDP_MARK}{seq} {ts}\\r\\n{tail}\"}}"
        );
        m
    }
}

/// The JSON string literal of `s`, without its quotes.
fn json_inner(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_owned()
}

/// One ICE candidate (`RTCIceCandidateInit` as JSON text) like a browser's:
/// host, server-reflexive or relay, UDP or TCP; about 200–260 bytes.
pub fn candidate(index: u32, seq: u32, ts: u64, rng: &mut Rng) -> String {
    let ufrag = rng.token(4);
    let foundation = rng.range(100_000_000, 4_000_000_000);
    let port = rng.range(40_000, 65_000);
    let ip = format!(
        "10.{}.{}.{}",
        rng.range(0, 255),
        rng.range(0, 255),
        rng.range(1, 254)
    );
    let line = match index % 4 {
        0 => format!("candidate:{foundation} 1 udp 2122260223 {ip} {port} typ host generation 0"),
        1 => format!(
            "candidate:{foundation} 1 tcp 1518280447 {ip} 9 typ host tcptype active generation 0"
        ),
        2 => format!(
            "candidate:{foundation} 1 udp 1686052607 203.0.113.{} {port} typ srflx raddr {ip} rport {} generation 0",
            rng.range(1, 254),
            rng.range(40_000, 65_000)
        ),
        _ => format!(
            "candidate:{foundation} 1 udp 41885439 198.51.100.{} {port} typ relay raddr 203.0.113.{} rport {} generation 0",
            rng.range(1, 254),
            rng.range(1, 254),
            rng.range(40_000, 65_000)
        ),
    };
    format!(
        "{{\"candidate\":\"{line} ufrag {ufrag} network-id 1 network-cost 10{CAND_SEQ}{seq}{CAND_TS}{ts}\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0,\"usernameFragment\":\"{ufrag}\"}}"
    )
}

fn digits_after(text: &str, mark: &str) -> Option<u64> {
    let at = text.find(mark)? + mark.len();
    let rest = &text[at..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The `(seq, ts)` marker of an SDP (as received, JSON-decoded or not).
pub fn sdp_marker(sdp: &str) -> Option<(u32, u64)> {
    let at = sdp.find(SDP_MARK)? + SDP_MARK.len();
    let rest = &sdp[at..];
    let (seq, rest) = rest.split_once(' ')?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some((seq.parse().ok()?, rest[..end].parse().ok()?))
}

/// The `(seq, ts)` marker of a candidate (its JSON text).
pub fn candidate_marker(json: &str) -> Option<(u32, u64)> {
    let seq = u32::try_from(digits_after(json, CAND_SEQ)?).ok()?;
    Some((seq, digits_after(json, CAND_TS)?))
}

/// What went wrong, by kind; the report counts each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    /// An expected message never arrived.
    Lost,
    /// A message arrived twice.
    Duplicate,
    /// A message arrived before one that was sent earlier, or a notification
    /// about a name came in an impossible order.
    OutOfOrder,
    /// A message nobody should have sent this member.
    Unexpected,
    /// The server answered with an `error`.
    ErrorReply,
    /// A connection failed, was refused, or closed early.
    Connection,
}

impl Problem {
    /// Every kind, for the report.
    pub const ALL: [Problem; 6] = [
        Problem::Lost,
        Problem::Duplicate,
        Problem::OutOfOrder,
        Problem::Unexpected,
        Problem::ErrorReply,
        Problem::Connection,
    ];

    /// The kind as a word in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Lost => "lost",
            Problem::Duplicate => "duplicate",
            Problem::OutOfOrder => "out_of_order",
            Problem::Unexpected => "unexpected",
            Problem::ErrorReply => "error_reply",
            Problem::Connection => "connection",
        }
    }
}

/// One finding, with the member that saw it and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind of problem.
    pub problem: Problem,
    /// Which member saw it (`room/name`).
    pub member: String,
    /// What exactly.
    pub detail: String,
}

/// A relayed message's type, as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
    /// A candidate.
    Candidate,
}

/// Where a member stands with one other name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    /// Listed in `joined.peers`: expect an answer from it.
    Initial,
    /// Announced by `peer-joined`: expect an offer from it.
    Newcomer,
    /// Announced, then `peer-left`.
    Left,
}

/// Checks, for one member, everything it receives against the protocol and
/// the scenario. Feed events in arrival order, then call [`MemberCheck::finish`].
#[derive(Debug)]
pub struct MemberCheck {
    who: String,
    joined: bool,
    presence: HashMap<String, Presence>,
    /// Names in `joined.peers`, in order: the members this one offers to.
    initial: Vec<String>,
    /// Names announced by `peer-joined`, in order.
    newcomers: Vec<String>,
    /// Highest sequence number received from each sender.
    last_seq: HashMap<String, u32>,
    /// Names that sent this member an answer, and those that sent an offer.
    answered: Vec<String>,
    offered: Vec<String>,
    left: bool,
    findings: Vec<Finding>,
}

impl MemberCheck {
    /// A checker for member `who` (`room/name`, used in findings).
    pub fn new(who: impl Into<String>) -> Self {
        Self {
            who: who.into(),
            joined: false,
            presence: HashMap::new(),
            initial: Vec::new(),
            newcomers: Vec::new(),
            last_seq: HashMap::new(),
            answered: Vec::new(),
            offered: Vec::new(),
            left: false,
            findings: Vec::new(),
        }
    }

    fn find(&mut self, problem: Problem, detail: String) {
        self.findings.push(Finding {
            problem,
            member: self.who.clone(),
            detail,
        });
    }

    /// Names in `joined.peers`.
    pub fn initial_peers(&self) -> &[String] {
        &self.initial
    }

    /// Whether an answer has arrived from every initial peer.
    pub fn call_set_up(&self) -> bool {
        self.joined && self.answered.len() == self.initial.len()
    }

    /// `joined` arrived with these peers.
    pub fn joined(&mut self, peers: &[String]) {
        if self.joined {
            self.find(Problem::Duplicate, "a second joined".into());
            return;
        }
        self.joined = true;
        for p in peers {
            if self.presence.insert(p.clone(), Presence::Initial).is_some() {
                self.find(Problem::Duplicate, format!("{p} twice in joined.peers"));
            } else {
                self.initial.push(p.clone());
            }
        }
    }

    /// `peer-joined` arrived.
    pub fn peer_joined(&mut self, name: &str) {
        if !self.joined {
            self.find(
                Problem::OutOfOrder,
                format!("peer-joined({name}) before joined"),
            );
            return;
        }
        match self.presence.get(name) {
            None => {
                self.presence.insert(name.to_owned(), Presence::Newcomer);
                self.newcomers.push(name.to_owned());
            }
            Some(Presence::Left) => self.find(
                Problem::Unexpected,
                format!("peer-joined({name}) after its peer-left"),
            ),
            Some(_) => self.find(Problem::Duplicate, format!("peer-joined({name}) again")),
        }
    }

    /// `peer-left` arrived.
    pub fn peer_left(&mut self, name: &str) {
        match self.presence.get(name) {
            None => self.find(
                Problem::OutOfOrder,
                format!("peer-left({name}) before hearing of {name}"),
            ),
            Some(Presence::Left) => {
                self.find(Problem::Duplicate, format!("peer-left({name}) again"))
            }
            Some(_) => {
                self.presence.insert(name.to_owned(), Presence::Left);
            }
        }
    }

    /// A relayed message arrived from `from` with marker `seq`.
    pub fn relay(&mut self, kind: Relay, from: &str, seq: u32) {
        let Some(&presence) = self.presence.get(from) else {
            self.find(
                Problem::OutOfOrder,
                format!("{kind:?} from {from} before hearing of {from}"),
            );
            return;
        };
        if presence == Presence::Left {
            self.find(
                Problem::OutOfOrder,
                format!("{kind:?} from {from} after its peer-left"),
            );
            return;
        }
        let last = self.last_seq.get(from).copied().unwrap_or(0);
        if seq <= last {
            let problem = if seq == last {
                Problem::Duplicate
            } else {
                Problem::OutOfOrder
            };
            self.find(
                problem,
                format!("{kind:?} #{seq} from {from} after #{last}"),
            );
            return;
        }
        if seq > last + 1 {
            self.find(
                Problem::Lost,
                format!(
                    "messages #{}..=#{} from {from} missing (got #{seq}, a {kind:?})",
                    last + 1,
                    seq - 1
                ),
            );
        }
        self.last_seq.insert(from.to_owned(), seq);
        match (kind, presence, seq) {
            (Relay::Offer, Presence::Newcomer, 1) => self.offered.push(from.to_owned()),
            (Relay::Answer, Presence::Initial, 1) => self.answered.push(from.to_owned()),
            (Relay::Candidate, _, s) if s > 1 => {}
            _ => self.find(
                Problem::Unexpected,
                format!("{kind:?} #{seq} from {from}, who is a {presence:?} peer"),
            ),
        }
    }

    /// `left` arrived.
    pub fn left(&mut self) {
        if self.left {
            self.find(Problem::Duplicate, "a second left".into());
        }
        self.left = true;
    }

    /// An `error` arrived.
    pub fn error(&mut self, code: &str, message: &str) {
        self.find(Problem::ErrorReply, format!("error {code}: {message}"));
    }

    /// A problem found outside the message stream (connection, timeout).
    pub fn other(&mut self, problem: Problem, detail: String) {
        self.find(problem, detail);
    }

    /// Ends the check. `room` names every other member of the room that
    /// joined; `sent_to_me` how many relayed messages each sent to this one;
    /// `left_before_me` the members that left before this one did (each must
    /// have been announced by `peer-left`).
    pub fn finish(
        mut self,
        room: &[String],
        sent_to_me: &HashMap<String, u32>,
        left_before_me: &[String],
        expect_left: bool,
    ) -> Vec<Finding> {
        if !self.joined {
            return self.findings;
        }
        for other in room {
            if !self.presence.contains_key(other) {
                self.find(
                    Problem::Lost,
                    format!("never told about {other} (neither joined.peers nor peer-joined)"),
                );
            }
        }
        let initial = self.initial.clone();
        for p in &initial {
            if !self.answered.contains(p) {
                self.find(Problem::Lost, format!("no answer from {p}"));
            }
        }
        let newcomers = self.newcomers.clone();
        for p in &newcomers {
            if !self.offered.contains(p) {
                self.find(Problem::Lost, format!("no offer from {p}"));
            }
        }
        let mut senders: Vec<(&String, &u32)> = sent_to_me.iter().collect();
        senders.sort();
        for (from, &sent) in senders {
            let got = self.last_seq.get(from).copied().unwrap_or(0);
            if got < sent {
                self.find(
                    Problem::Lost,
                    format!(
                        "{} of {sent} messages from {from} never arrived (#{}..=#{sent})",
                        sent - got,
                        got + 1
                    ),
                );
            }
        }
        for p in left_before_me {
            if self.presence.get(p) != Some(&Presence::Left) {
                self.find(Problem::Lost, format!("no peer-left({p})"));
            }
        }
        let extra: Vec<String> = self
            .presence
            .iter()
            .filter(|(n, p)| **p == Presence::Left && !left_before_me.contains(n))
            .map(|(n, _)| n.clone())
            .collect();
        for n in extra {
            self.find(
                Problem::Unexpected,
                format!("peer-left({n}) while {n} was still in the room"),
            );
        }
        if expect_left && !self.left {
            self.find(Problem::Lost, "no left after leave".into());
        }
        self.findings
    }
}

/// Percentiles of a set of samples (any unit).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (sorted in place); all zero when empty.
    pub fn of(samples: &mut [f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let n = samples.len();
            let k = ((p / 100.0) * n as f64).ceil() as usize;
            samples[k.clamp(1, n) - 1]
        };
        Self {
            count: samples.len(),
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: samples[samples.len() - 1],
        }
    }
}

/// Counts findings by kind.
pub fn count_problems(findings: &[Finding]) -> BTreeMap<&'static str, u64> {
    let mut counts: BTreeMap<&'static str, u64> =
        Problem::ALL.iter().map(|p| (p.as_str(), 0)).collect();
    for f in findings {
        *counts.entry(f.problem.as_str()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rooms_fill_in_parallel() {
        assert_eq!(
            join_order(2, 3),
            [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
        );
    }

    #[test]
    fn sdp_has_a_realistic_size_and_its_marker() {
        let mut rng = Rng::new(7);
        for target in [3 * 1024, 4 * 1024, 6 * 1024] {
            for kind in [SdpKind::Offer, SdpKind::Answer] {
                let s = sdp(kind, 1, 123_456, target, &mut rng);
                assert!(s.len() >= target, "{} < {target}", s.len());
                assert!(s.len() < target + 700, "{} ≫ {target}", s.len());
                assert!(s.starts_with("v=0\r\n"));
                assert_eq!(s.matches("m=").count(), 3);
                assert_eq!(sdp_marker(&s), Some((1, 123_456)));
                // It survives JSON encoding (the \r\n become escapes).
                let json = serde_json::to_string(&s).unwrap();
                assert_eq!(sdp_marker(&json), Some((1, 123_456)));
            }
        }
    }

    #[test]
    fn pooled_sdp_messages_are_valid_json_with_their_marker() {
        let mut rng = Rng::new(3);
        let pool = SdpPool::new((3072, 6144), 4, &mut rng);
        for kind in [SdpKind::Offer, SdpKind::Answer] {
            for seq in 1..5 {
                let m = pool.message(kind, "\"bob\"", seq, 777, &mut rng);
                let v: serde_json::Value = serde_json::from_str(&m).unwrap();
                assert_eq!(v["to"], "bob");
                let sdp = v["sdp"].as_str().unwrap();
                assert!((3072..6144 + 700).contains(&sdp.len()), "{}", sdp.len());
                assert!(sdp.contains("\r\na=x-huddle-load:"));
                assert_eq!(sdp_marker(sdp), Some((seq, 777)));
                assert_eq!(sdp_marker(&m), Some((seq, 777)));
            }
            let t = if kind == SdpKind::Offer {
                "offer"
            } else {
                "answer"
            };
            let m = pool.message(kind, "\"x\"", 1, 1, &mut rng);
            assert!(m.starts_with(&format!("{{\"type\":\"{t}\"")));
        }
    }

    #[test]
    fn candidates_look_real_and_carry_their_marker() {
        let mut rng = Rng::new(1);
        for i in 0..12 {
            let c = candidate(i, i + 2, 99, &mut rng);
            let v: serde_json::Value = serde_json::from_str(&c).unwrap();
            let line = v["candidate"].as_str().unwrap();
            assert!(line.starts_with("candidate:"));
            assert!(line.contains(" typ "));
            assert!((150..320).contains(&c.len()), "{} bytes: {c}", c.len());
            assert_eq!(candidate_marker(&c), Some((i + 2, 99)));
        }
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        v.reverse();
        let p = Percentiles::of(&mut v);
        assert_eq!(
            (p.count, p.p50, p.p90, p.p99, p.max),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        let p = Percentiles::of(&mut [5.0]);
        assert_eq!((p.p50, p.p99, p.max), (5.0, 5.0, 5.0));
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }

    /// b joins a room where a is; c joins after b; a leaves first.
    #[test]
    fn a_clean_story_has_no_findings() {
        let mut b = MemberCheck::new("r/b");
        b.joined(&names(&["a"]));
        b.relay(Relay::Answer, "a", 1);
        b.relay(Relay::Candidate, "a", 2);
        b.peer_joined("c");
        b.relay(Relay::Offer, "c", 1);
        b.relay(Relay::Candidate, "c", 2);
        b.relay(Relay::Candidate, "c", 3);
        assert!(b.call_set_up());
        b.peer_left("a");
        b.left();
        let sent = HashMap::from([("a".to_owned(), 2), ("c".to_owned(), 3)]);
        let f = b.finish(&names(&["a", "c"]), &sent, &names(&["a"]), true);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn loss_duplicates_and_disorder_are_found() {
        let mut m = MemberCheck::new("r/m");
        m.joined(&names(&["a", "b"]));
        m.relay(Relay::Answer, "a", 1);
        m.relay(Relay::Candidate, "a", 3); // #2 lost
        m.relay(Relay::Candidate, "a", 3); // duplicate
        m.relay(Relay::Candidate, "a", 2); // late: out of order
        m.relay(Relay::Offer, "x", 1); // nobody told us about x
        m.peer_joined("c");
        m.peer_joined("c"); // duplicate
        m.peer_left("z"); // never present
        assert!(!m.call_set_up()); // b never answered
        let sent = HashMap::from([("a".to_owned(), 4), ("b".to_owned(), 3)]);
        let f = m.finish(&names(&["a", "b", "c"]), &sent, &[], false);
        let counts = count_problems(&f);
        // lost: #2 from a; no answer from b; no offer from c; a's #4; all 3 of b's.
        assert_eq!(counts["lost"], 5, "{f:#?}");
        assert_eq!(counts["duplicate"], 2, "{f:#?}");
        assert_eq!(counts["out_of_order"], 3, "{f:#?}");
        assert_eq!(counts["unexpected"], 0, "{f:#?}");
    }

    #[test]
    fn missing_peer_left_and_wrong_kinds_are_found() {
        let mut m = MemberCheck::new("r/m");
        m.joined(&names(&["a"]));
        m.relay(Relay::Offer, "a", 1); // a is an initial peer: it answers, never offers
        m.error("rate-limited", "slow down");
        let sent = HashMap::from([("a".to_owned(), 1)]);
        let f = m.finish(&names(&["a", "b"]), &sent, &names(&["a"]), true);
        let c = count_problems(&f);
        assert_eq!(c["unexpected"], 1, "{f:#?}");
        assert_eq!(c["error_reply"], 1);
        // never told about b; no answer from a; no peer-left(a); no left.
        assert_eq!(c["lost"], 4, "{f:#?}");
    }
}
