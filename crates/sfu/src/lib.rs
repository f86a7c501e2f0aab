//! huddle's selective forwarding unit (SFU), sans-IO, on [str0m].
//!
//! The crate owns media routing for rooms in SFU mode. It knows nothing of
//! sockets, threads or clocks: the caller feeds it datagrams
//! ([`Sfu::handle_datagram`]) and time ([`Sfu::handle_timeout`]), forwards
//! signaling ([`Sfu::up_offer`], [`Sfu::down_answer`]) and drains
//! [`Sfu::poll_output`] after every call.
//!
//! # Model
//!
//! Each member has two peer connections with the server:
//!
//! - the **up** PC carries the member's own media to the server. The browser
//!   offers (sendonly), the server answers;
//! - the **down** PC carries everybody else's media to the member. The server
//!   offers ([`SfuOutput::DownOffer`]), the browser answers.
//!
//! One offerer per PC means no glare. The server is ICE-lite and learns the
//! client's addresses from its STUN checks, so remote candidates are not
//! needed.
//!
//! # Driving it
//!
//! Feed every datagram to [`Sfu::handle_datagram`], call
//! [`Sfu::handle_timeout`] when [`Sfu::next_deadline`] passes, and drain
//! [`Sfu::poll_output`] after each call. Serve deadlines on time: str0m
//! paces each down PC to its bandwidth estimate, and a driver that runs
//! timeouts several milliseconds late makes pacing bursty and the estimate
//! fall.
//!
//! # Layout
//!
//! - `sfu.rs`: the [`Sfu`] driver: members, rooms, demultiplexing,
//!   renegotiation and forwarding.
//! - `layer.rs`: which simulcast layer a subscriber gets (pure).
//! - `keyframe.rs`: keyframe request coalescing (pure).
//! - `speaker.rs`: active speaker detection from audio levels (pure).
//!
//! # Message sequence
//!
//! ```text
//! caller                       Sfu
//!   join(room, a, "ma")  ──▶
//!   up_offer(a, offer)   ──▶   ◀── answer
//!   datagrams/timeouts   ◀─▶   Transmit, Connected{a, Up}
//!   join(room, b, "mb")  ──▶   DownOffer{b}   (once a's tracks are open)
//!   down_answer(b, ans)  ──▶   … a's media forwarded to b …
//!   leave(a)             ──▶   DownOffer{b}   (a's m-lines stopped)
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod keyframe;
mod layer;
mod sfu;
mod speaker;

use std::time::Duration;

pub use keyframe::KeyframeGate;
pub use layer::choose_layer;
pub use sfu::Sfu;
pub use speaker::{SpeakerConfig, SpeakerDetector};

use std::net::SocketAddr;

/// A member, identified by the caller (the signaling core's connection id, say).
pub type MemberId = u64;

/// Named limits and tunables of the SFU. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Cap on forwarded tracks (publisher track × subscriber) across the whole
    /// SFU. Joins and track additions past it are refused with
    /// [`SfuError::TrackLimit`]. Default 400 (LiveKit's per-CPU figure).
    pub max_tracks: usize,
    /// Room size above which subscribers default to [`Layer::Low`] instead of
    /// [`Layer::High`] for publishers they have not chosen a layer for.
    /// Default 10.
    pub low_above: usize,
    /// Starting point of each down PC's bandwidth estimate, bits/s.
    /// Default 1 000 000.
    pub initial_bitrate_bps: u64,
    /// Audio and video m-lines one member may publish on its up PC.
    /// Default 8.
    pub max_tracks_per_member: usize,
    /// Members in one room. Default 100.
    pub max_room_members: usize,
    /// Members in the whole SFU. Default 1000.
    pub max_members: usize,
    /// Longest SDP accepted from a client, bytes. Default 64 KiB.
    pub max_sdp_len: usize,
    /// Minimum gap between two keyframe requests sent to one publisher layer.
    /// Default 500 ms.
    pub keyframe_interval: Duration,
    /// A simulcast layer not seen for this long counts as unavailable.
    /// Default 1 s.
    pub layer_timeout: Duration,
    /// How long a PC may stay ICE-disconnected before the member is failed.
    /// Default 5 s.
    pub disconnect_grace: Duration,
    /// How long a connected PC may receive nothing (browsers send STUN
    /// consent checks every few seconds) before the member is failed; str0m's
    /// own ICE-lite timeout is slower. Default 10 s.
    pub silence_timeout: Duration,
    /// How long a PC may take to connect after its offer/answer before the
    /// member is failed. Default 30 s.
    pub connect_timeout: Duration,
    /// Share of a subscriber's bandwidth estimate spent on video when
    /// capping layers, in percent. Default 85.
    pub bwe_video_share_percent: u64,
    /// Bitrates assumed for the low, mid and high layers (bits/s) until a
    /// layer's own rate has been measured over a second, when capping by the
    /// bandwidth estimate. Default 150 k, 500 k, 1.5 M.
    pub nominal_layer_bps: [u64; 3],
    /// Forward only the audio of the `k` loudest members of a room (and the
    /// current speaker) to each subscriber; `None` forwards all audio.
    /// Levels come from the RFC 6464 extension, smoothed as for the speaker.
    /// Cuts the audio packet rate in big rooms. Default `None`.
    pub audio_top_k: Option<usize>,
    /// Active speaker detection settings.
    pub speaker: SpeakerConfig,
}

impl SfuConfig {
    /// [`SfuConfig::nominal_layer_bps`] of one layer (0 for `Off`).
    pub fn nominal_bps(&self, layer: Layer) -> u64 {
        match layer {
            Layer::Off => 0,
            Layer::Low => self.nominal_layer_bps[0],
            Layer::Mid => self.nominal_layer_bps[1],
            Layer::High => self.nominal_layer_bps[2],
        }
    }
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            max_tracks: 400,
            low_above: 10,
            initial_bitrate_bps: 1_000_000,
            max_tracks_per_member: 8,
            max_room_members: 100,
            max_members: 1000,
            max_sdp_len: 64 * 1024,
            keyframe_interval: Duration::from_millis(500),
            layer_timeout: Duration::from_secs(1),
            disconnect_grace: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(30),
            silence_timeout: Duration::from_secs(10),
            bwe_video_share_percent: 85,
            nominal_layer_bps: [150_000, 500_000, 1_500_000],
            audio_top_k: None,
            speaker: SpeakerConfig::default(),
        }
    }
}

/// Which of a member's two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pc {
    /// Browser → server; the browser offers.
    Up,
    /// Server → browser; the server offers.
    Down,
}

/// A simulcast layer a subscriber wants of a publisher's video.
///
/// Ordered `Off < Low < Mid < High`. The rids are `"l"`, `"m"` and `"h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Forward no video of that publisher.
    Off,
    /// rid `l`.
    Low,
    /// rid `m`.
    Mid,
    /// rid `h`.
    High,
}

impl Layer {
    /// The layer a rid stands for; `None` for rids this SFU does not rank.
    pub fn from_rid(rid: &str) -> Option<Layer> {
        match rid {
            "l" | "q" | "low" => Some(Layer::Low),
            "m" | "mid" => Some(Layer::Mid),
            "h" | "f" | "high" => Some(Layer::High),
            _ => None,
        }
    }

    /// The canonical rid of this layer (`None` for [`Layer::Off`]).
    pub fn rid(self) -> Option<&'static str> {
        match self {
            Layer::Off => None,
            Layer::Low => Some("l"),
            Layer::Mid => Some("m"),
            Layer::High => Some("h"),
        }
    }
}

/// What the SFU asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuOutput {
    /// Send `data` from the local `source` address to `destination`.
    Transmit {
        /// Local address (one of those given to [`Sfu::new`]).
        source: SocketAddr,
        /// The client's address.
        destination: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Send this offer to the member as coming from `@server`; its answer goes
    /// to [`Sfu::down_answer`].
    DownOffer {
        /// Who gets the offer.
        member: MemberId,
        /// The SDP offer.
        sdp: String,
    },
    /// The active speaker of a room changed (`None`: nobody).
    Speaker {
        /// The room.
        room: String,
        /// The new speaker.
        member: Option<MemberId>,
    },
    /// One of a member's PCs connected (ICE and DTLS done).
    Connected {
        /// The member.
        member: MemberId,
        /// Which PC.
        pc: Pc,
    },
    /// The member's transport failed; it has already been removed from the SFU.
    Failed {
        /// The member.
        member: MemberId,
        /// Why, for logs.
        reason: String,
    },
}

/// Counters and gauges, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Members present.
    pub members: usize,
    /// Rooms with at least one member.
    pub rooms: usize,
    /// Forwarded tracks (publisher track × subscriber), the figure
    /// [`SfuConfig::max_tracks`] caps.
    pub forwarded_tracks: usize,
    /// Datagrams accepted by some member.
    pub packets_in: u64,
    /// Bytes of accepted datagrams.
    pub bytes_in: u64,
    /// Datagrams output for transmission.
    pub packets_out: u64,
    /// Bytes output for transmission.
    pub bytes_out: u64,
    /// Datagrams no member accepted.
    pub packets_dropped: u64,
    /// STUN datagrams from new addresses that the ufrag index did not place
    /// and that were matched by asking every PC (should stay near 0).
    pub demux_scans: u64,
    /// Media frames received from publishers.
    pub frames_in: u64,
    /// Media frames written to subscribers.
    pub frames_out: u64,
    /// Audio frames not forwarded by [`SfuConfig::audio_top_k`].
    pub audio_frames_culled: u64,
    /// Published tracks not forwarded because [`SfuConfig::max_tracks`] was
    /// reached when they opened (offers that raced past `up_offer`'s check).
    pub tracks_refused: u64,
    /// Keyframe requests sent to publishers (after coalescing).
    pub keyframe_requests_sent: u64,
    /// Keyframe requests suppressed by coalescing.
    pub keyframe_requests_coalesced: u64,
    /// Simulcast layer switches performed.
    pub layer_switches: u64,
    /// Down offers emitted.
    pub down_offers: u64,
    /// Members failed (transport error, timeout).
    pub members_failed: u64,
}

/// Why an SFU call was refused. The SFU state is unchanged unless noted.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// No such member (never joined, left or failed).
    #[error("unknown member {0}")]
    UnknownMember(MemberId),
    /// `join` for a member id already present.
    #[error("member {0} has already joined")]
    AlreadyJoined(MemberId),
    /// The stream id is empty or has characters outside the msid token set.
    #[error("invalid stream id {0:?}: use 1-64 characters of [A-Za-z0-9_.-]")]
    InvalidStreamId(String),
    /// The room name is empty or too long.
    #[error("invalid room name")]
    InvalidRoom,
    /// Another member of the room uses the same stream id.
    #[error("stream id {0:?} is already used in this room")]
    StreamIdTaken(String),
    /// The room is full ([`SfuConfig::max_room_members`]).
    #[error("room is full ({0} members)")]
    RoomFull(usize),
    /// The SFU is full ([`SfuConfig::max_members`]).
    #[error("SFU is full ({0} members)")]
    TooManyMembers(usize),
    /// Admitting this would forward more than [`SfuConfig::max_tracks`] tracks.
    #[error("forwarded-track limit reached: {current} + {adding} > {max}")]
    TrackLimit {
        /// Tracks forwarded now.
        current: usize,
        /// Tracks the request would add.
        adding: usize,
        /// The limit.
        max: usize,
    },
    /// The up offer has more audio/video m-lines than
    /// [`SfuConfig::max_tracks_per_member`].
    #[error("offer publishes {offered} tracks, at most {max} are allowed")]
    PublishLimit {
        /// Media lines offered.
        offered: usize,
        /// The limit.
        max: usize,
    },
    /// The SDP could not be parsed, or is too long.
    #[error("malformed SDP: {0}")]
    Sdp(String),
    /// The SDP parsed but str0m refused it.
    #[error("SDP refused: {0}")]
    Negotiation(String),
    /// An answer arrived while no down offer was pending.
    #[error("no down offer is pending for member {0}")]
    NoPendingOffer(MemberId),
    /// The candidate string does not parse.
    #[error("malformed ICE candidate: {0}")]
    Candidate(String),
}
