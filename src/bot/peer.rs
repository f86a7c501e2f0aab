//! One peer connection from a bot to one remote member: a str0m [`Rtc`]
//! plus what the bot keeps about it (its media cursors, its data channel,
//! its statistics).
//!
//! Sans-IO like str0m itself: every method takes `now`, network packets come
//! in as bytes, and everything to do comes out in [`PeerOutput`] (datagrams
//! to send, events for the participant). The participant owns the sockets,
//! the clock and the signaling.
//!
//! Roles follow the protocol: the joiner offers ([`Peer::offer`]) with audio,
//! video and the `sendDataChannel` data channel; the member answers
//! ([`Peer::answer`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use super::media::{Cursor, Track};
use super::report::PeerStats;

/// The label of the data channel the web client uses.
pub const CHANNEL_LABEL: &str = "sendDataChannel";
/// Longest chat text sent (as the web client).
pub const MAX_CHAT_TEXT: usize = 2000;

/// A problem with one peer connection (the participant drops the link).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The remote SDP could not be parsed or applied.
    #[error("bad SDP from {0}: {1}")]
    Sdp(String, String),
    /// str0m refused an operation.
    #[error("WebRTC error with {0}: {1}")]
    Rtc(String, str0m::RtcError),
    /// No local address to offer.
    #[error("no usable local address for a host candidate: {0}")]
    Candidate(String),
}

/// Something the participant should act on.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerEvent {
    /// ICE and DTLS are up.
    Connected,
    /// The data channel opened.
    ChannelOpen,
    /// A chat message arrived on the data channel.
    Chat {
        /// The text.
        text: String,
    },
    /// The member raised (`up`) or lowered its hand.
    Hand {
        /// Raised.
        up: bool,
    },
    /// The member sent a reaction (one of [`REACTIONS`]).
    Reaction {
        /// The emoji.
        emoji: String,
    },
    /// The member offered a file, which the bot declined (it has no one to
    /// accept it, and no disk to put it on).
    FileDeclined {
        /// The file's name as offered.
        name: String,
    },
    /// The first video frame arrived.
    FirstFrame,
    /// ICE gave up on the connection.
    Disconnected,
}

/// What a call into a [`Peer`] produced.
#[derive(Debug, Default)]
pub struct PeerOutput {
    /// Datagrams to send: (from local address, to, bytes).
    pub transmits: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// Events, in order.
    pub events: Vec<PeerEvent>,
}

/// What the bot sends.
#[derive(Debug, Clone, Copy)]
pub struct MediaPlan<'a> {
    /// Video to loop, or none (`--no-media`).
    pub video: Option<&'a Track>,
    /// Audio to loop, or none.
    pub audio: Option<&'a Track>,
}

/// One peer connection.
pub struct Peer {
    name: String,
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    /// The member's DTLS fingerprint, once a description of its arrived.
    remote_fp: Option<String>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    audio_pt: Option<Pt>,
    video_pt: Option<Pt>,
    channel: Option<ChannelId>,
    channel_open: bool,
    sending: bool,
    media_start: Option<Instant>,
    video_cursor: Cursor,
    audio_cursor: Cursor,
    timeout: Instant,
    failed: bool,
    /// What we measured.
    pub stats: PeerStats,
}

fn rtc_config() -> str0m::RtcConfig {
    // VP8 and Opus only: what the fixtures are, and what every browser sends.
    Rtc::builder()
        .clear_codecs()
        .enable_vp8(true)
        .enable_opus(true, false)
        .set_stats_interval(None)
}

fn new_rtc(now: Instant, local: &[SocketAddr]) -> Result<Rtc, PeerError> {
    let mut rtc = rtc_config().build(now);
    let mut any = false;
    for addr in local {
        // str0m gathers nothing itself: one host candidate per bound socket.
        let c = Candidate::host(*addr, "udp").map_err(|e| PeerError::Candidate(e.to_string()))?;
        any |= rtc.add_local_candidate(c).is_some();
    }
    if !any {
        return Err(PeerError::Candidate(format!("{local:?}")));
    }
    Ok(rtc)
}

impl Peer {
    fn new(name: &str, rtc: Rtc, now: Instant, joined_at: Instant, sending: bool) -> Self {
        Self {
            name: name.to_owned(),
            rtc,
            pending: None,
            remote_fp: None,
            audio_mid: None,
            video_mid: None,
            audio_pt: None,
            video_pt: None,
            channel: None,
            channel_open: false,
            sending,
            media_start: None,
            video_cursor: Cursor::default(),
            audio_cursor: Cursor::default(),
            timeout: now,
            failed: false,
            stats: PeerStats::new(now, joined_at),
        }
    }

    /// A link to member NAME that we offer: audio and video (send and
    /// receive) unless `sending` is false, and the data channel. Returns the
    /// peer and the offer's SDP text.
    pub fn offer(
        name: &str,
        local: &[SocketAddr],
        sending: bool,
        now: Instant,
        joined_at: Instant,
    ) -> Result<(Self, String), PeerError> {
        let rtc = new_rtc(now, local)?;
        let mut peer = Self::new(name, rtc, now, joined_at, sending);
        let mut api = peer.rtc.sdp_api();
        if sending {
            let stream = Some("huddle-bot".to_owned());
            peer.audio_mid = Some(api.add_media(
                MediaKind::Audio,
                Direction::SendRecv,
                stream.clone(),
                None,
                None,
            ));
            peer.video_mid =
                Some(api.add_media(MediaKind::Video, Direction::SendRecv, stream, None, None));
        }
        peer.channel = Some(api.add_channel(CHANNEL_LABEL.to_owned()));
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| PeerError::Sdp(name.to_owned(), "nothing to offer".into()))?;
        peer.pending = Some(pending);
        Ok((peer, offer.to_sdp_string()))
    }

    /// A link to member NAME that answers its offer. Returns the peer and
    /// the answer's SDP text.
    pub fn answer(
        name: &str,
        local: &[SocketAddr],
        sending: bool,
        offer_sdp: &str,
        now: Instant,
        joined_at: Instant,
    ) -> Result<(Self, String), PeerError> {
        let rtc = new_rtc(now, local)?;
        let mut peer = Self::new(name, rtc, now, joined_at, sending);
        let answer = peer.accept_offer(offer_sdp)?;
        Ok((peer, answer))
    }

    /// Applies another offer on this connection (a renegotiation or an ICE
    /// restart from the member); returns the answer.
    pub fn accept_offer(&mut self, offer_sdp: &str) -> Result<String, PeerError> {
        let offer = SdpOffer::from_sdp_string(offer_sdp)
            .map_err(|e| PeerError::Sdp(self.name.clone(), e.to_string()))?;
        // An offer while ours is outstanding: theirs wins (we roll back).
        self.pending = None;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| PeerError::Sdp(self.name.clone(), e.to_string()))?;
        if self.remote_fp.is_none() {
            self.remote_fp = sdp_fingerprint(offer_sdp);
        }
        Ok(answer.to_sdp_string())
    }

    /// Applies the member's answer to our offer. An answer we did not ask
    /// for is ignored.
    pub fn accept_answer(&mut self, answer_sdp: &str) -> Result<(), PeerError> {
        let Some(pending) = self.pending.take() else {
            tracing::debug!(peer = %self.name, "answer without an offer outstanding: ignored");
            return Ok(());
        };
        let answer = SdpAnswer::from_sdp_string(answer_sdp)
            .map_err(|e| PeerError::Sdp(self.name.clone(), e.to_string()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| PeerError::Rtc(self.name.clone(), e))?;
        self.remote_fp = sdp_fingerprint(answer_sdp);
        Ok(())
    }

    /// Our local candidates as RTCIceCandidateInit objects, for trickling.
    pub fn local_candidates(&self, local: &[SocketAddr]) -> Vec<Value> {
        local
            .iter()
            .filter_map(|a| Candidate::host(*a, "udp").ok())
            .map(|c| json!({"candidate": c.to_sdp_string(), "sdpMid": "0", "sdpMLineIndex": 0}))
            .collect()
    }

    /// Adds a trickled remote candidate (an RTCIceCandidateInit). `None` or
    /// an empty candidate string (end of candidates) and candidates str0m
    /// cannot use (mDNS `.local` names, TCP) are skipped.
    pub fn add_remote_candidate(&mut self, init: Option<&Value>) {
        let Some(text) = init
            .and_then(|v| v.get("candidate"))
            .and_then(Value::as_str)
        else {
            return;
        };
        if text.trim().is_empty() {
            return;
        }
        match Candidate::from_sdp_string(text) {
            Ok(c) => self.rtc.add_remote_candidate(c),
            Err(e) => {
                tracing::debug!(peer = %self.name, candidate = text, error = %e, "candidate skipped")
            }
        }
    }

    /// True if this datagram belongs to this connection.
    pub fn accepts(&self, input: &Input<'_>) -> bool {
        self.rtc.accepts(input)
    }

    /// Feeds a datagram that [`Peer::accepts`] (see [`receive_input`]).
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>, out: &mut PeerOutput) {
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!(peer = %self.name, error = %e, "input refused");
        }
        self.drain(now, out);
    }

    /// Advances time: str0m's timers, and the media due by `now`.
    pub fn tick(&mut self, now: Instant, media: MediaPlan<'_>, out: &mut PeerOutput) {
        if now >= self.timeout {
            if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(peer = %self.name, error = %e, "timeout input refused");
            }
            self.drain(now, out);
        }
        self.pump_media(now, media, out);
    }

    /// Drains str0m (run after every mutation). Keeps going to `Timeout`.
    pub fn drain(&mut self, now: Instant, out: &mut PeerOutput) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    out.transmits
                        .push((t.source, t.destination, t.contents.to_vec()));
                }
                Ok(Output::Event(e)) => self.on_event(now, e, out),
                Err(e) => {
                    tracing::warn!(peer = %self.name, error = %e, "peer connection failed");
                    self.failed = true;
                    self.timeout = now + Duration::from_secs(3600);
                    out.events.push(PeerEvent::Disconnected);
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, now: Instant, e: Event, out: &mut PeerOutput) {
        match e {
            Event::Connected if self.stats.connected_at.is_none() => {
                self.stats.connected_at = Some(now);
                self.media_start = Some(now);
                out.events.push(PeerEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                out.events.push(PeerEvent::Disconnected);
            }
            Event::MediaAdded(m) => match m.kind {
                MediaKind::Audio => self.audio_mid = Some(m.mid),
                MediaKind::Video => self.video_mid = Some(m.mid),
            },
            Event::MediaData(d) => {
                let seq = *(*d.seq_range.start())..=*(*d.seq_range.end());
                if Some(d.mid) == self.video_mid {
                    let first = self.stats.first_frame_at.is_none();
                    self.stats.on_video(now, d.data.len(), seq);
                    if first {
                        out.events.push(PeerEvent::FirstFrame);
                    }
                } else if Some(d.mid) == self.audio_mid {
                    self.stats.on_audio(d.data.len(), seq);
                }
            }
            Event::ChannelOpen(id, label) if label == CHANNEL_LABEL => {
                self.channel = Some(id);
                self.channel_open = true;
                out.events.push(PeerEvent::ChannelOpen);
            }
            Event::ChannelData(d) => {
                if Some(d.id) != self.channel || d.binary || d.data.len() > 65536 {
                    return;
                }
                if let Some(text) = chat_text(&d.data) {
                    self.stats.chat_in += 1;
                    out.events.push(PeerEvent::Chat { text });
                } else if let Some(ev) = hand_or_reaction(&d.data) {
                    out.events.push(ev);
                } else if let Some((decline, name)) = decline_file(&d.data) {
                    if let Some(mut ch) = self.rtc.channel(d.id) {
                        let _ = ch.write(false, decline.as_bytes());
                    }
                    out.events.push(PeerEvent::FileDeclined { name });
                }
            }
            Event::ChannelClose(id) if Some(id) == self.channel => {
                self.channel_open = false;
            }
            _ => {}
        }
    }

    /// Sends a chat message on the data channel (if open); true if sent.
    pub fn send_chat(
        &mut self,
        now: Instant,
        text: &str,
        sent_ms: u64,
        out: &mut PeerOutput,
    ) -> bool {
        let Some(msg) = chat_message(text, sent_ms) else {
            return false;
        };
        let (Some(id), true) = (self.channel, self.channel_open) else {
            return false;
        };
        let ok = match self.rtc.channel(id) {
            Some(mut ch) => ch.write(false, msg.as_bytes()).is_ok(),
            None => false,
        };
        self.drain(now, out);
        if ok {
            self.stats.chat_out += 1;
        }
        ok
    }

    fn pump_media(&mut self, now: Instant, media: MediaPlan<'_>, out: &mut PeerOutput) {
        let Some(start) = self.media_start else {
            return;
        };
        if !self.sending || self.failed {
            return;
        }
        let elapsed = now.saturating_duration_since(start);
        if let (Some(track), Some(mid)) = (media.video, self.video_mid) {
            while let Some((item, ticks)) = self.video_cursor.take_due(track, elapsed) {
                let at = start + super::media::ticks_to_duration(ticks, track.clock());
                if self.write(
                    mid,
                    Codec::Vp8,
                    true,
                    at,
                    MediaTime::new(ticks, Frequency::NINETY_KHZ),
                    item,
                ) {
                    self.stats.frames_sent += 1;
                }
                self.drain(now, out);
            }
        }
        if let (Some(track), Some(mid)) = (media.audio, self.audio_mid) {
            while let Some((item, ticks)) = self.audio_cursor.take_due(track, elapsed) {
                let at = start + super::media::ticks_to_duration(ticks, track.clock());
                if self.write(
                    mid,
                    Codec::Opus,
                    false,
                    at,
                    MediaTime::new(ticks, Frequency::FORTY_EIGHT_KHZ),
                    item,
                ) {
                    self.stats.audio_sent += 1;
                }
                self.drain(now, out);
            }
        }
    }

    fn write(
        &mut self,
        mid: Mid,
        codec: Codec,
        video: bool,
        at: Instant,
        time: MediaTime,
        item: &super::media::Item,
    ) -> bool {
        let cached = if video { self.video_pt } else { self.audio_pt };
        let Some(writer) = self.rtc.writer(mid) else {
            return false;
        };
        let pt = match cached {
            Some(pt) => pt,
            None => {
                let Some(pt) = writer
                    .payload_params()
                    .find(|p| p.spec().codec == codec)
                    .map(|p| p.pt())
                else {
                    return false;
                };
                if video {
                    self.video_pt = Some(pt);
                } else {
                    self.audio_pt = Some(pt);
                }
                pt
            }
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return false;
        };
        match writer.write(pt, at, time, item.data.clone()) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(peer = %self.name, error = %e, "media write refused");
                false
            }
        }
    }

    /// When this peer next needs [`Peer::tick`].
    pub fn next_deadline(&self, media: MediaPlan<'_>) -> Instant {
        let mut t = self.timeout;
        if let (Some(start), true, false) = (self.media_start, self.sending, self.failed) {
            if let (Some(v), Some(_)) = (media.video, self.video_mid) {
                t = t.min(start + self.video_cursor.next_due(v));
            }
            if let (Some(a), Some(_)) = (media.audio, self.audio_mid) {
                t = t.min(start + self.audio_cursor.next_due(a));
            }
        }
        t
    }

    /// Closes the connection (RTCP BYE, SCTP shutdown, DTLS close_notify).
    pub fn close(&mut self, now: Instant, out: &mut PeerOutput) {
        let _ = self.rtc.close();
        self.drain(now, out);
    }

    /// True if OFFER_SDP renegotiates this connection (an ICE restart, a
    /// change of media): negotiated before, no offer of ours outstanding,
    /// and the same DTLS fingerprint. Otherwise it is a new connection
    /// from the member (str0m would keep the old fingerprint and fail).
    pub fn can_take_offer(&self, offer_sdp: &str) -> bool {
        self.remote_fp.is_some()
            && self.pending.is_none()
            && !self.failed
            && sdp_fingerprint(offer_sdp) == self.remote_fp
    }

    /// True once the connection failed for good.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// True while ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.rtc.is_connected()
    }

    /// True once the data channel is open.
    pub fn channel_open(&self) -> bool {
        self.channel_open
    }
}

/// The first `a=fingerprint:` of an SDP (hash function and value,
/// lowercased), if any.
pub fn sdp_fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Builds an [`Input`] for a received datagram, or `None` if it is not
/// something WebRTC can use.
pub fn receive_input<'a>(
    now: Instant,
    source: SocketAddr,
    destination: SocketAddr,
    data: &'a [u8],
) -> Option<Input<'a>> {
    Receive::new(Protocol::Udp, source, destination, data)
        .ok()
        .map(|r| Input::Receive(now, r))
}

/// The web client's chat message for TEXT (trimmed, at most
/// [`MAX_CHAT_TEXT`] characters), or `None` for an empty text.
pub fn chat_message(text: &str, sent_ms: u64) -> Option<String> {
    let t: String = text.trim().chars().take(MAX_CHAT_TEXT).collect();
    if t.is_empty() {
        return None;
    }
    Some(json!({"type":"chat","text":t,"sent":sent_ms}).to_string())
}

/// The text of a data-channel message if it is a chat message; other
/// types (and anything unreadable) are ignored, as the web client does.
pub fn chat_text(data: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(data).ok()?;
    if v.get("type")?.as_str()? != "chat" {
        return None;
    }
    let text = v.get("text")?.as_str()?;
    if text.is_empty() {
        return None;
    }
    Some(text.chars().take(MAX_CHAT_TEXT).collect())
}

/// The reactions the web client offers; others are dropped, as it does.
pub const REACTIONS: [&str; 6] = ["👍", "👏", "😂", "❤️", "🎉", "😮"];

/// A `hand` or `reaction` data-channel message (protocol.md, "Chat and other
/// data between browsers"), or `None` for anything else.
pub fn hand_or_reaction(data: &[u8]) -> Option<PeerEvent> {
    let v: Value = serde_json::from_slice(data).ok()?;
    match v.get("type")?.as_str()? {
        "hand" => Some(PeerEvent::Hand {
            up: v.get("up")?.as_bool()?,
        }),
        "reaction" => {
            let emoji = v.get("emoji")?.as_str()?;
            REACTIONS.contains(&emoji).then(|| PeerEvent::Reaction {
                emoji: emoji.to_owned(),
            })
        }
        _ => None,
    }
}

/// For a `file-offer` (protocol.md, "Chat and other data between
/// browsers"): the `file-decline` to send back, and the offered name (cut to
/// 255 characters). The sender then never opens the file's channel.
pub fn decline_file(data: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(data).ok()?;
    if v.get("type")?.as_str()? != "file-offer" {
        return None;
    }
    let id = v.get("id")?.as_str()?;
    let id_ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !id_ok {
        return None;
    }
    let name: String = v
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("file")
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect();
    Some((json!({"type":"file-decline","id":id}).to_string(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_offers_are_declined() {
        let (reply, name) =
            decline_file(br#"{"type":"file-offer","id":"a1_b-2","name":"x\u0007.zip","size":3}"#)
                .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&reply).unwrap(),
            json!({"type":"file-decline","id":"a1_b-2"})
        );
        assert_eq!(name, "x.zip");
        for other in [
            &br#"{"type":"file-offer","id":"a b","name":"x","size":3}"#[..],
            br#"{"type":"file-offer","name":"x","size":3}"#,
            br#"{"type":"file-accept","id":"a"}"#,
            br#"{"type":"chat","text":"hi"}"#,
            b"nope",
        ] {
            assert_eq!(decline_file(other), None);
        }
    }

    #[test]
    fn hands_and_reactions_are_read_and_others_ignored() {
        assert_eq!(
            hand_or_reaction(br#"{"type":"hand","up":true,"at":5}"#),
            Some(PeerEvent::Hand { up: true })
        );
        assert_eq!(
            hand_or_reaction(br#"{"type":"hand","up":false}"#),
            Some(PeerEvent::Hand { up: false })
        );
        assert_eq!(
            hand_or_reaction("{\"type\":\"reaction\",\"emoji\":\"🎉\"}".as_bytes()),
            Some(PeerEvent::Reaction {
                emoji: "🎉".into()
            })
        );
        for other in [
            &br#"{"type":"reaction","emoji":"<b>"}"#[..],
            br#"{"type":"hand","up":"yes"}"#,
            br#"{"type":"media","audio":true,"video":false}"#,
            br#"{"type":"file-offer"}"#,
            b"nope",
        ] {
            assert_eq!(hand_or_reaction(other), None);
        }
    }

    #[test]
    fn chat_wire_format() {
        let m: Value = serde_json::from_str(&chat_message("  hi there ", 42).unwrap()).unwrap();
        assert_eq!(m, json!({"type":"chat","text":"hi there","sent":42}));
        assert_eq!(chat_message("   ", 1), None);
        let long = "x".repeat(3000);
        let m: Value = serde_json::from_str(&chat_message(&long, 1).unwrap()).unwrap();
        assert_eq!(m["text"].as_str().unwrap().len(), MAX_CHAT_TEXT);
        assert_eq!(
            chat_text(br#"{"type":"chat","text":"yo","sent":1}"#),
            Some("yo".into())
        );
        assert_eq!(chat_text(br#"{"type":"typing"}"#), None);
        assert_eq!(chat_text(br#"{"type":"chat","text":""}"#), None);
        assert_eq!(chat_text(br#"{"type":"chat","text":5}"#), None);
        assert_eq!(chat_text(b"not json"), None);
    }

    /// Two peers wired back to back in memory, faster than real time: the
    /// offer/answer, ICE, DTLS, the data channel and media all work without
    /// a socket.
    #[test]
    fn two_peers_in_memory_connect_chat_and_send_media() {
        let video = super::super::media::parse_ivf(super::super::media::DEFAULT_VIDEO).unwrap();
        let audio =
            super::super::media::parse_ogg_opus(super::super::media::DEFAULT_AUDIO).unwrap();
        let plan = MediaPlan {
            video: Some(&video),
            audio: Some(&audio),
        };
        let a_addr: SocketAddr = "127.0.0.1:10001".parse().unwrap();
        let b_addr: SocketAddr = "127.0.0.1:10002".parse().unwrap();
        let t0 = Instant::now();
        let (mut a, offer) = Peer::offer("b", &[a_addr], true, t0, t0).unwrap();
        let (mut b, answer) = Peer::answer("a", &[b_addr], true, &offer, t0, t0).unwrap();
        a.accept_answer(&answer).unwrap();
        for c in b.local_candidates(&[b_addr]) {
            a.add_remote_candidate(Some(&c));
        }
        let mut now = t0;
        let mut a_events = Vec::new();
        let mut b_events = Vec::new();
        let mut said = false;
        for _ in 0..4000 {
            now += Duration::from_millis(5);
            let mut oa = PeerOutput::default();
            let mut ob = PeerOutput::default();
            a.tick(now, plan, &mut oa);
            b.tick(now, plan, &mut ob);
            // Deliver what each sent, until both are quiet.
            while !oa.transmits.is_empty() || !ob.transmits.is_empty() {
                for (from, to, data) in std::mem::take(&mut oa.transmits) {
                    assert_eq!(to, b_addr);
                    let input = receive_input(now, from, to, &data).unwrap();
                    assert!(b.accepts(&input));
                    b.handle_input(now, input, &mut ob);
                }
                for (from, to, data) in std::mem::take(&mut ob.transmits) {
                    let input = receive_input(now, from, to, &data).unwrap();
                    a.handle_input(now, input, &mut oa);
                }
            }
            a_events.append(&mut oa.events);
            b_events.append(&mut ob.events);
            if !said && b.channel_open() {
                said = b.send_chat(now, "hello a", 1, &mut ob);
                assert!(said);
                for (from, to, data) in std::mem::take(&mut ob.transmits) {
                    let input = receive_input(now, from, to, &data).unwrap();
                    a.handle_input(now, input, &mut oa);
                }
                a_events.append(&mut oa.events);
            }
            if a.stats.video.frames >= 30 && b.stats.video.frames >= 30 && a.stats.chat_in > 0 {
                break;
            }
        }
        assert!(a.is_connected() && b.is_connected());
        assert!(
            a_events.contains(&PeerEvent::Connected) && b_events.contains(&PeerEvent::Connected)
        );
        assert!(
            a_events.contains(&PeerEvent::ChannelOpen)
                && b_events.contains(&PeerEvent::ChannelOpen)
        );
        assert!(
            a_events.contains(&PeerEvent::Chat {
                text: "hello a".into()
            }),
            "{a_events:?}"
        );
        assert!(
            a_events.contains(&PeerEvent::FirstFrame) && b_events.contains(&PeerEvent::FirstFrame)
        );
        assert!(
            a.stats.video.frames >= 30,
            "a got {} frames",
            a.stats.video.frames
        );
        assert!(
            b.stats.video.frames >= 30,
            "b got {} frames",
            b.stats.video.frames
        );
        assert!(a.stats.audio.frames > 50 && b.stats.audio.frames > 50);
        assert_eq!(a.stats.video.seq.lost(), 0);
        assert!(b.stats.frames_sent >= a.stats.video.frames);

        // The same member offering again renegotiates; another connection
        // (a new certificate) does not.
        assert!(b.can_take_offer(&offer));
        let (_, other) = Peer::offer("b", &[a_addr], true, now, now).unwrap();
        assert!(!b.can_take_offer(&other));
        assert!(
            !Peer::offer("x", &[a_addr], true, now, now)
                .unwrap()
                .0
                .can_take_offer(&offer)
        );
    }

    #[test]
    fn fingerprints() {
        let sdp = "v=0\r\na=group:BUNDLE 0\r\na=fingerprint:sha-256 AB:CD\r\nm=audio 9\r\na=fingerprint:sha-256 EF\r\n";
        assert_eq!(sdp_fingerprint(sdp).as_deref(), Some("sha-256 ab:cd"));
        assert_eq!(sdp_fingerprint("v=0\r\n"), None);
    }
}
