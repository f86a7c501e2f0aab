//! The SFU driver: members and rooms, datagram demultiplexing, down-PC
//! renegotiation, frame forwarding with layer choice, keyframe relaying and
//! failure handling. Policies (layer choice, keyframe coalescing, speaker
//! detection) live in their own modules; this one calls them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{
    Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig, RtcError,
};
use tracing::debug;

use crate::keyframe::KeyframeGate;
use crate::layer::choose_layer;
use crate::speaker::SpeakerDetector;
use crate::{Layer, MemberId, Pc, SfuConfig, SfuError, SfuOutput, SfuStats};

/// The error [`guarded`] reports for a panic inside str0m.
const PANICKED: &str = "str0m panicked";

/// Rate assumed for an audio track in bandwidth targets, bits/s.
const AUDIO_BPS: u64 = 64_000;

/// Longest room name accepted, bytes.
const MAX_ROOM_LEN: usize = 256;

/// Measures a byte rate over one-second windows.
#[derive(Debug, Clone)]
struct RateMeter {
    window_start: Instant,
    bytes: u64,
    bps: u64,
    /// A whole window has been measured.
    full: bool,
}

impl RateMeter {
    fn new(now: Instant) -> Self {
        RateMeter {
            window_start: now,
            bytes: 0,
            bps: 0,
            full: false,
        }
    }

    fn add(&mut self, bytes: usize, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= Duration::from_secs(1) {
            self.full = true;
            self.bps = self.bytes * 8 * 1000 / (elapsed.as_millis().max(1) as u64);
            self.bytes = 0;
            self.window_start = now;
        }
        self.bytes += bytes as u64;
    }

    /// The last full window's rate; `None` before the first window closed
    /// (a running figure over a few frames is mostly noise).
    fn bps(&self) -> Option<u64> {
        self.full.then_some(self.bps)
    }
}

/// One incoming stream layer of a published track.
#[derive(Debug)]
struct LayerIn {
    last_seen: Instant,
    rate: RateMeter,
}

/// A track a member publishes on its up PC.
#[derive(Debug)]
struct TrackIn {
    mid: Mid,
    kind: MediaKind,
    /// Incoming layers by rid (`None`: no simulcast).
    layers: HashMap<Option<Rid>, LayerIn>,
    /// Rids the offer declared (`a=simulcast`); empty without simulcast.
    declared: Vec<Rid>,
    /// When the first frame arrived. Until [`SfuConfig::layer_timeout`]
    /// after it, declared layers not yet seen count as available, so a
    /// subscriber does not start on whichever layer happened to come first.
    first_frame: Option<Instant>,
}

/// Negotiation state of a forwarded track on a subscriber's down PC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    /// Not yet in an offer.
    ToOpen,
    /// In the pending offer.
    Negotiating(Mid),
    /// Negotiated; media flows.
    Open(Mid),
    /// To be stopped in the next offer.
    ToStop(Mid),
    /// Stopped in the pending offer.
    NegotiatingStop(Mid),
}

/// A publisher's track as forwarded to one subscriber.
#[derive(Debug)]
struct TrackOut {
    publisher: MemberId,
    pub_mid: Mid,
    kind: MediaKind,
    state: OutState,
    /// The publisher left while the track was being negotiated.
    gone: bool,
    /// The incoming layer forwarded now; `None`: nothing yet (waiting for a
    /// keyframe) or off.
    current: Option<Option<Rid>>,
    /// Output media time shift applied to the incoming time (layer switches).
    offset: i64,
    /// Last written (output time, arrival time), for rebasing on switches.
    last_out: Option<(i64, Instant)>,
}

impl TrackOut {
    /// Counts against [`SfuConfig::max_tracks`].
    fn counts(&self) -> bool {
        !matches!(
            self.state,
            OutState::ToStop(_) | OutState::NegotiatingStop(_)
        ) && !self.gone
    }
}

/// One peer connection and its transport bookkeeping.
struct Peer {
    rtc: Rtc,
    timeout: Instant,
    connected: bool,
    /// When ICE went disconnected (cleared when it recovers).
    disconnected_since: Option<Instant>,
    /// When offer/answer completed, for the connect timeout.
    negotiated_at: Option<Instant>,
    /// Source addresses learnt from STUN.
    addrs: Vec<SocketAddr>,
    /// Our ICE ufrag on this PC (the first half of STUN USERNAMEs).
    ufrag: String,
    /// When the last datagram for this PC arrived.
    last_rx: Option<Instant>,
}

impl Peer {
    fn new(rtc: Rtc, ufrag: String, now: Instant) -> Self {
        Peer {
            rtc,
            timeout: now,
            connected: false,
            disconnected_since: None,
            negotiated_at: None,
            addrs: Vec::new(),
            ufrag,
            last_rx: None,
        }
    }
}

struct Member {
    room: String,
    stream_id: String,
    up: Option<Peer>,
    down: Peer,
    tracks_in: Vec<TrackIn>,
    tracks_out: Vec<TrackOut>,
    pending: Option<SdpPendingOffer>,
    wanted: HashMap<MemberId, Layer>,
    /// Latest down-PC bandwidth estimate, bits/s.
    bwe_bps: Option<u64>,
}

impl Member {
    fn peer(&self, pc: Pc) -> Option<&Peer> {
        match pc {
            Pc::Up => self.up.as_ref(),
            Pc::Down => Some(&self.down),
        }
    }

    fn peer_mut(&mut self, pc: Pc) -> Option<&mut Peer> {
        match pc {
            Pc::Up => self.up.as_mut(),
            Pc::Down => Some(&mut self.down),
        }
    }
}

struct Room {
    members: Vec<MemberId>,
    speaker: SpeakerDetector,
}

/// A keyframe request key: publisher, up mid, rid.
type LayerKey = (MemberId, Mid, Option<Rid>);

/// The selective forwarding unit. See the crate documentation for the model.
pub struct Sfu {
    config: SfuConfig,
    local_addrs: Vec<SocketAddr>,
    crypto: Arc<CryptoProvider>,
    cert: Option<DtlsCert>,
    members: HashMap<MemberId, Member>,
    rooms: HashMap<String, Room>,
    addrs: HashMap<SocketAddr, (MemberId, Pc)>,
    /// Our ICE ufrag → PC, for STUN from addresses not seen yet.
    ufrags: HashMap<String, (MemberId, Pc)>,
    outputs: VecDeque<SfuOutput>,
    keyframes: KeyframeGate<LayerKey>,
    stats: SfuStats,
    /// Events drained from PCs, not yet handled.
    events: VecDeque<(MemberId, Pc, Event)>,
    renegotiate: HashSet<MemberId>,
    failed: Vec<(MemberId, String)>,
}

impl Sfu {
    /// A new SFU advertising `local_addrs` as its host candidates (the public
    /// address(es) of the one UDP socket the caller reads and writes).
    pub fn new(config: SfuConfig, local_addrs: Vec<SocketAddr>, now: Instant) -> Self {
        let _ = now;
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        // One certificate for all PCs: generating a key per PC is the
        // costliest part of creating an Rtc.
        let cert = crypto.dtls_provider.generate_certificate();
        Sfu {
            keyframes: KeyframeGate::new(config.keyframe_interval),
            config,
            local_addrs,
            crypto,
            cert,
            members: HashMap::new(),
            rooms: HashMap::new(),
            addrs: HashMap::new(),
            ufrags: HashMap::new(),
            outputs: VecDeque::new(),
            stats: SfuStats::default(),
            events: VecDeque::new(),
            renegotiate: HashSet::new(),
            failed: Vec::new(),
        }
    }

    /// A server-side PC, registered under its ICE ufrag for demultiplexing.
    fn new_peer(&mut self, member: MemberId, pc: Pc, now: Instant) -> Peer {
        let creds = IceCreds::new();
        let ufrag = creds.ufrag.clone();
        let mut config = RtcConfig::new()
            .set_local_ice_credentials(creds)
            .set_ice_lite(true)
            .set_crypto_provider(self.crypto.clone());
        if let Some(cert) = &self.cert {
            config = config.set_dtls_cert(cert.clone());
        }
        if pc == Pc::Down {
            config = config.enable_bwe(Some(Bitrate::bps(self.config.initial_bitrate_bps)));
        }
        let mut rtc = config.build(now);
        for addr in &self.local_addrs {
            if let Ok(c) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        self.ufrags.insert(ufrag.clone(), (member, pc));
        Peer::new(rtc, ufrag, now)
    }

    /// Adds `member` to `room`. Its tracks will carry `stream_id` as their
    /// MediaStream id on the others' down PCs. The member gets its first
    /// [`SfuOutput::DownOffer`] once the room has tracks for it.
    pub fn join(
        &mut self,
        room: &str,
        member: MemberId,
        stream_id: &str,
        now: Instant,
    ) -> Result<(), SfuError> {
        if self.members.contains_key(&member) {
            return Err(SfuError::AlreadyJoined(member));
        }
        if room.is_empty() || room.len() > MAX_ROOM_LEN {
            return Err(SfuError::InvalidRoom);
        }
        let valid_id = !stream_id.is_empty()
            && stream_id.len() <= 64
            && stream_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_id {
            return Err(SfuError::InvalidStreamId(stream_id.to_string()));
        }
        if self.members.len() >= self.config.max_members {
            return Err(SfuError::TooManyMembers(self.config.max_members));
        }
        let existing: Vec<MemberId> = self
            .rooms
            .get(room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        if existing.len() >= self.config.max_room_members {
            return Err(SfuError::RoomFull(self.config.max_room_members));
        }
        if existing.iter().any(|m| {
            self.members
                .get(m)
                .is_some_and(|m| m.stream_id == stream_id)
        }) {
            return Err(SfuError::StreamIdTaken(stream_id.to_string()));
        }
        let published: Vec<(MemberId, Mid, MediaKind)> = existing
            .iter()
            .filter_map(|id| self.members.get(id).map(|m| (id, m)))
            .flat_map(|(id, m)| m.tracks_in.iter().map(move |t| (*id, t.mid, t.kind)))
            .collect();
        self.check_tracks(published.len())?;

        let tracks_out = published
            .into_iter()
            .map(|(publisher, pub_mid, kind)| new_track_out(publisher, pub_mid, kind))
            .collect();
        let down = self.new_peer(member, Pc::Down, now);
        self.members.insert(
            member,
            Member {
                room: room.to_string(),
                stream_id: stream_id.to_string(),
                up: None,
                down,
                tracks_in: Vec::new(),
                tracks_out,
                pending: None,
                wanted: HashMap::new(),
                // Until the first estimate, the starting point is the estimate.
                bwe_bps: Some(self.config.initial_bitrate_bps),
            },
        );
        self.rooms
            .entry(room.to_string())
            .or_insert_with(|| Room {
                members: Vec::new(),
                speaker: SpeakerDetector::new(self.config.speaker.clone()),
            })
            .members
            .push(member);
        self.renegotiate.insert(member);
        self.drain(member, Pc::Down, now);
        self.run(now);
        Ok(())
    }

    fn check_tracks(&self, adding: usize) -> Result<(), SfuError> {
        let current = self.forwarded_tracks();
        if current + adding > self.config.max_tracks {
            return Err(SfuError::TrackLimit {
                current,
                adding,
                max: self.config.max_tracks,
            });
        }
        Ok(())
    }

    /// Accepts the member's offer for its up PC (browser → server) and returns
    /// the answer. A later offer on the same PC renegotiates it.
    pub fn up_offer(
        &mut self,
        member: MemberId,
        sdp: &str,
        now: Instant,
    ) -> Result<String, SfuError> {
        if sdp.len() > self.config.max_sdp_len {
            return Err(SfuError::Sdp(format!(
                "longer than {} bytes",
                self.config.max_sdp_len
            )));
        }
        let Some(m) = self.members.get(&member) else {
            return Err(SfuError::UnknownMember(member));
        };
        let offer = parse_guarded(|| SdpOffer::from_sdp_string(sdp)).map_err(SfuError::Sdp)?;
        // Track limit: every new media line is forwarded to every other member.
        let offered = sdp
            .lines()
            .filter(|l| l.starts_with("m=audio") || l.starts_with("m=video"))
            .count();
        if offered > self.config.max_tracks_per_member {
            return Err(SfuError::PublishLimit {
                offered,
                max: self.config.max_tracks_per_member,
            });
        }
        let new = offered.saturating_sub(m.tracks_in.len());
        let others = self
            .rooms
            .get(&m.room)
            .map_or(0, |r| r.members.len().saturating_sub(1));
        self.check_tracks(new * others)?;

        let fresh = m.up.is_none();
        if fresh {
            let peer = self.new_peer(member, Pc::Up, now);
            if let Some(m) = self.members.get_mut(&member) {
                m.up = Some(peer);
            }
        }
        let Some(up) = self.members.get_mut(&member).and_then(|m| m.up.as_mut()) else {
            return Err(SfuError::UnknownMember(member));
        };
        let answer = match guarded(|| up.rtc.sdp_api().accept_offer(offer)) {
            Ok(a) => a,
            Err(e) => {
                if fresh
                    && let Some(m) = self.members.get_mut(&member)
                    && let Some(up) = m.up.take()
                {
                    self.ufrags.remove(&up.ufrag);
                }
                if e == PANICKED {
                    self.failed.push((member, e.clone()));
                    self.run(now);
                }
                return Err(SfuError::Negotiation(e));
            }
        };
        up.negotiated_at.get_or_insert(now);
        self.drain(member, Pc::Up, now);
        self.run(now);
        Ok(answer.to_sdp_string())
    }

    /// Applies the member's answer to the pending [`SfuOutput::DownOffer`].
    /// Changes made meanwhile go out in the next offer.
    pub fn down_answer(
        &mut self,
        member: MemberId,
        sdp: &str,
        now: Instant,
    ) -> Result<(), SfuError> {
        if sdp.len() > self.config.max_sdp_len {
            return Err(SfuError::Sdp(format!(
                "longer than {} bytes",
                self.config.max_sdp_len
            )));
        }
        let m = self
            .members
            .get_mut(&member)
            .ok_or(SfuError::UnknownMember(member))?;
        if m.pending.is_none() {
            return Err(SfuError::NoPendingOffer(member));
        }
        let answer = parse_guarded(|| SdpAnswer::from_sdp_string(sdp)).map_err(SfuError::Sdp)?;
        let pending = m.pending.take().ok_or(SfuError::NoPendingOffer(member))?;
        let result = guarded(|| m.down.rtc.sdp_api().accept_answer(pending, answer));
        match result {
            Ok(()) => {
                for t in &mut m.tracks_out {
                    if let OutState::Negotiating(mid) = t.state {
                        t.state = if t.gone {
                            OutState::ToStop(mid)
                        } else {
                            OutState::Open(mid)
                        };
                    }
                }
                m.tracks_out
                    .retain(|t| !matches!(t.state, OutState::NegotiatingStop(_)));
                m.down.negotiated_at.get_or_insert(now);
            }
            Err(e) => {
                // str0m dropped the offer; what it carried goes into the next.
                for t in &mut m.tracks_out {
                    if let OutState::Negotiating(_) = t.state {
                        t.state = OutState::ToOpen;
                    }
                }
                m.tracks_out.retain(|t| {
                    !(matches!(t.state, OutState::NegotiatingStop(_))
                        || (t.gone && t.state == OutState::ToOpen))
                });
                self.renegotiate.insert(member);
                self.drain(member, Pc::Down, now);
                self.run(now);
                if e == PANICKED {
                    self.failed.push((member, e.clone()));
                    self.run(now);
                }
                return Err(SfuError::Negotiation(e));
            }
        }
        self.renegotiate.insert(member);
        self.drain(member, Pc::Down, now);
        self.run(now);
        Ok(())
    }

    /// A trickled remote candidate. The server is ICE-lite and learns client
    /// addresses from their checks, so a valid candidate is accepted and
    /// otherwise ignored; an empty one (end of candidates) too.
    pub fn candidate(
        &mut self,
        member: MemberId,
        pc: Pc,
        candidate: &str,
        now: Instant,
    ) -> Result<(), SfuError> {
        let _ = (pc, now);
        if !self.members.contains_key(&member) {
            return Err(SfuError::UnknownMember(member));
        }
        let c = candidate.trim();
        let c = c.strip_prefix("a=").unwrap_or(c);
        if c.is_empty() || c == "end-of-candidates" {
            return Ok(());
        }
        let c = if c.starts_with("candidate:") {
            c.to_string()
        } else {
            format!("candidate:{c}")
        };
        parse_guarded(|| Candidate::from_sdp_string(&c)).map_err(SfuError::Candidate)?;
        Ok(())
    }

    /// Sets the layer `member` wants of `publisher`'s video. [`Layer::Off`]
    /// stops forwarding that video to it. It applies from the next frame
    /// (a switch waits for a keyframe of the new layer). Ignored unless both
    /// are members of the same room.
    pub fn set_layer(&mut self, member: MemberId, publisher: MemberId, layer: Layer) {
        let same_room = match (self.members.get(&member), self.members.get(&publisher)) {
            (Some(m), Some(p)) => m.room == p.room && member != publisher,
            _ => false,
        };
        if same_room && let Some(m) = self.members.get_mut(&member) {
            m.wanted.insert(publisher, layer);
        }
    }

    /// Removes `member`: its tracks are stopped on the others' down PCs (which
    /// get a new offer). Unknown members are ignored.
    pub fn leave(&mut self, member: MemberId, now: Instant) {
        self.remove_member(member);
        self.run(now);
    }

    /// Feeds one received datagram. Returns false when no member accepts it
    /// (the caller drops it).
    ///
    /// `destination` should be the advertised address the datagram was sent
    /// to. str0m drops STUN that does not arrive on one of its candidates, so
    /// an address that is not one of `local_addrs` (a socket bound to
    /// `0.0.0.0`, or behind a 1:1 NAT) is mapped to the advertised address of
    /// the same family, preferring the same port.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let destination = self.advertised(destination);
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, data) else {
            self.stats.packets_dropped += 1;
            return false;
        };
        let input = Input::Receive(now, receive);
        let known = self
            .addrs
            .get(&source)
            .copied()
            .filter(|(m, pc)| self.peer(*m, *pc).is_some_and(|p| p.rtc.accepts(&input)));
        let is_stun = data.len() >= 20 && data[0] < 2;
        let target = known.or_else(|| {
            if !is_stun {
                return None;
            }
            // By our ufrag in the USERNAME first; a linear scan as a fallback.
            let by_ufrag = stun_local_ufrag(data)
                .and_then(|u| self.ufrags.get(u).copied())
                .filter(|(m, pc)| self.peer(*m, *pc).is_some_and(|p| p.rtc.accepts(&input)));
            if by_ufrag.is_some() {
                return by_ufrag;
            }
            self.stats.demux_scans += 1;
            self.members.iter().find_map(|(id, m)| {
                [Pc::Up, Pc::Down]
                    .into_iter()
                    .find(|pc| m.peer(*pc).is_some_and(|p| p.rtc.accepts(&input)))
                    .map(|pc| (*id, pc))
            })
        });
        let Some((member, pc)) = target else {
            self.stats.packets_dropped += 1;
            return false;
        };
        if is_stun && known.is_none() {
            if let Some((old_m, old_pc)) = self.addrs.insert(source, (member, pc))
                && let Some(p) = self
                    .members
                    .get_mut(&old_m)
                    .and_then(|m| m.peer_mut(old_pc))
            {
                p.addrs.retain(|a| *a != source);
            }
            if let Some(p) = self.peer_mut(member, pc) {
                p.addrs.push(source);
            }
        }
        self.stats.packets_in += 1;
        self.stats.bytes_in += data.len() as u64;
        let Some(peer) = self.peer_mut(member, pc) else {
            return false;
        };
        peer.last_rx = Some(now);
        if let Err(e) = guarded(|| peer.rtc.handle_input(input)) {
            self.failed.push((member, format!("{pc:?} PC input: {e}")));
        }
        self.drain(member, pc, now);
        self.run(now);
        true
    }

    /// Drives time: every PC whose deadline has passed, and the connect and
    /// disconnect timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        for (id, m) in &self.members {
            for pc in [Pc::Up, Pc::Down] {
                let Some(p) = m.peer(pc) else { continue };
                if p.timeout <= now {
                    due.push((*id, pc));
                }
                if let Some(t) = p.disconnected_since
                    && now.saturating_duration_since(t) >= self.config.disconnect_grace
                {
                    self.failed
                        .push((*id, format!("{pc:?} PC: ICE disconnected")));
                }
                if !p.connected
                    && let Some(t) = p.negotiated_at
                    && now.saturating_duration_since(t) >= self.config.connect_timeout
                {
                    self.failed
                        .push((*id, format!("{pc:?} PC: not connected in time")));
                }
                if p.connected
                    && let Some(t) = p.last_rx
                    && now.saturating_duration_since(t) >= self.config.silence_timeout
                {
                    self.failed.push((*id, format!("{pc:?} PC: silent")));
                }
            }
        }
        for (member, pc) in due {
            let Some(p) = self.peer_mut(member, pc) else {
                continue;
            };
            if let Err(e) = guarded(|| p.rtc.handle_input(Input::Timeout(now))) {
                self.failed
                    .push((member, format!("{pc:?} PC timeout: {e}")));
            }
            self.drain(member, pc, now);
        }
        self.run(now);
    }

    /// The next output, if any. Drain it after every call.
    pub fn poll_output(&mut self) -> Option<SfuOutput> {
        self.outputs.pop_front()
    }

    /// When [`Sfu::handle_timeout`] should be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for m in self.members.values() {
            for pc in [Pc::Up, Pc::Down] {
                let Some(p) = m.peer(pc) else { continue };
                consider(p.timeout);
                if let Some(t) = p.disconnected_since {
                    consider(t + self.config.disconnect_grace);
                }
                if !p.connected
                    && let Some(t) = p.negotiated_at
                {
                    consider(t + self.config.connect_timeout);
                }
                if p.connected
                    && let Some(t) = p.last_rx
                {
                    consider(t + self.config.silence_timeout);
                }
            }
        }
        next
    }

    /// Counters and gauges.
    pub fn stats(&self) -> SfuStats {
        SfuStats {
            members: self.members.len(),
            rooms: self.rooms.len(),
            forwarded_tracks: self.forwarded_tracks(),
            ..self.stats.clone()
        }
    }

    /// Forwarded tracks (publisher track × subscriber), as capped by
    /// [`SfuConfig::max_tracks`].
    pub fn forwarded_tracks(&self) -> usize {
        self.members
            .values()
            .map(|m| m.tracks_out.iter().filter(|t| t.counts()).count())
            .sum()
    }

    /// The members of `room`, in join order.
    pub fn room_members(&self, room: &str) -> Vec<MemberId> {
        self.rooms
            .get(room)
            .map(|r| r.members.clone())
            .unwrap_or_default()
    }

    /// The active speaker of `room`.
    pub fn speaker(&self, room: &str) -> Option<MemberId> {
        self.rooms.get(room).and_then(|r| r.speaker.current())
    }

    // ---- internals ----

    /// See [`Sfu::handle_datagram`].
    fn advertised(&self, destination: SocketAddr) -> SocketAddr {
        if self.local_addrs.contains(&destination) {
            return destination;
        }
        let same_family = |a: &&SocketAddr| a.is_ipv4() == destination.is_ipv4();
        self.local_addrs
            .iter()
            .filter(same_family)
            .find(|a| a.port() == destination.port())
            .or_else(|| self.local_addrs.iter().find(same_family))
            .copied()
            .unwrap_or(destination)
    }

    fn peer(&self, member: MemberId, pc: Pc) -> Option<&Peer> {
        self.members.get(&member).and_then(|m| m.peer(pc))
    }

    fn peer_mut(&mut self, member: MemberId, pc: Pc) -> Option<&mut Peer> {
        self.members.get_mut(&member).and_then(|m| m.peer_mut(pc))
    }

    /// Drains every touched PC, handles its events, renegotiates, and removes
    /// failed members, until nothing is left to do.
    fn run(&mut self, now: Instant) {
        loop {
            if let Some((member, pc, event)) = self.events.pop_front() {
                self.handle_event(member, pc, event, now);
                continue;
            }
            if !self.failed.is_empty() {
                let failed = std::mem::take(&mut self.failed);
                for (member, reason) in failed {
                    if self.remove_member(member) {
                        debug!(member, %reason, "member failed");
                        self.stats.members_failed += 1;
                        self.outputs.push_back(SfuOutput::Failed { member, reason });
                    }
                }
                continue;
            }
            if !self.renegotiate.is_empty() {
                let members: Vec<MemberId> = self.renegotiate.drain().collect();
                for m in members {
                    self.negotiate(m, now);
                }
                continue;
            }
            break;
        }
    }

    /// Polls one PC until its timeout, queueing its transmits and events.
    ///
    /// str0m requires a full drain after every mutation of an `Rtc` before
    /// the next one, so every mutation here is directly followed by this.
    fn drain(&mut self, member: MemberId, pc: Pc, now: Instant) {
        let Some(m) = self.members.get_mut(&member) else {
            return;
        };
        let Some(peer) = m.peer_mut(pc) else {
            return;
        };
        loop {
            match guarded(|| peer.rtc.poll_output()) {
                Ok(Output::Timeout(t)) => {
                    peer.timeout = t.max(now);
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    self.stats.packets_out += 1;
                    self.stats.bytes_out += t.contents.len() as u64;
                    self.outputs.push_back(SfuOutput::Transmit {
                        source: t.source,
                        destination: t.destination,
                        data: t.contents.to_vec(),
                    });
                }
                Ok(Output::Event(e)) => self.events.push_back((member, pc, e)),
                Err(e) => {
                    self.failed.push((member, format!("{pc:?} PC: {e}")));
                    break;
                }
            }
        }
        if !peer.rtc.is_alive() {
            self.failed.push((member, format!("{pc:?} PC closed")));
        }
    }

    fn handle_event(&mut self, member: MemberId, pc: Pc, event: Event, now: Instant) {
        match event {
            Event::Connected => {
                if let Some(p) = self.peer_mut(member, pc) {
                    p.connected = true;
                }
                self.outputs.push_back(SfuOutput::Connected { member, pc });
            }
            Event::IceConnectionStateChange(state) => {
                if let Some(p) = self.peer_mut(member, pc) {
                    if state == IceConnectionState::Disconnected {
                        p.disconnected_since.get_or_insert(now);
                    } else {
                        p.disconnected_since = None;
                    }
                }
            }
            Event::MediaAdded(added) if pc == Pc::Up && added.direction.is_receiving() => {
                let declared = added
                    .simulcast
                    .map(|s| s.recv.iter().chain(s.send.iter()).map(|l| l.rid).collect())
                    .unwrap_or_default();
                self.track_added(member, added.mid, added.kind, declared);
            }
            Event::MediaChanged(changed) if pc == Pc::Up => {
                if changed.direction.is_receiving() {
                    let kind = self
                        .peer(member, pc)
                        .and_then(|p| p.rtc.media(changed.mid))
                        .map(|m| m.kind());
                    if let Some(kind) = kind {
                        self.track_added(member, changed.mid, kind, Vec::new());
                    }
                } else {
                    self.track_removed(member, changed.mid);
                }
            }
            Event::MediaData(data) if pc == Pc::Up => self.media_in(member, data, now),
            Event::KeyframeRequest(req) if pc == Pc::Down => {
                let Some(t) = self.members.get(&member).and_then(|m| {
                    m.tracks_out
                        .iter()
                        .find(|t| t.state == OutState::Open(req.mid))
                }) else {
                    return;
                };
                let (publisher, pub_mid) = (t.publisher, t.pub_mid);
                let rid = t.current.flatten();
                self.request_keyframe((publisher, pub_mid, rid), req.kind, now);
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) if pc == Pc::Down => {
                if let Some(m) = self.members.get_mut(&member) {
                    m.bwe_bps = Some(estimate.as_u64());
                }
                self.update_bwe_target(member, now);
            }
            _ => {}
        }
    }

    /// Tells `sub`'s down-PC bandwidth estimator what it would like to send:
    /// the top layer of every video it forwards plus its audio, so the
    /// estimator probes up to it.
    fn update_bwe_target(&mut self, sub: MemberId, now: Instant) {
        let Some(s) = self.members.get(&sub) else {
            return;
        };
        let mut desired: u64 = 0;
        for t in s
            .tracks_out
            .iter()
            .filter(|t| matches!(t.state, OutState::Open(_)))
        {
            let rate = self
                .members
                .get(&t.publisher)
                .and_then(|p| p.tracks_in.iter().find(|i| i.mid == t.pub_mid))
                .and_then(|i| i.layers.values().filter_map(|l| l.rate.bps()).max())
                .unwrap_or(0);
            desired += match t.kind {
                MediaKind::Audio => rate.max(AUDIO_BPS),
                MediaKind::Video => rate,
            };
        }
        // Headroom over the measured rates; and something to probe towards
        // before any media was measured.
        let desired = (desired + desired / 5).max(self.config.initial_bitrate_bps);
        if let Some(s) = self.members.get_mut(&sub) {
            s.down
                .rtc
                .bwe()
                .set_bitrate(Bitrate::ZERO, Bitrate::bps(desired));
            self.drain(sub, Pc::Down, now);
        }
    }

    /// A publisher's up PC gained a track: forward it to the room.
    fn track_added(&mut self, publisher: MemberId, mid: Mid, kind: MediaKind, declared: Vec<Rid>) {
        let Some(p) = self.members.get_mut(&publisher) else {
            return;
        };
        if p.tracks_in.iter().any(|t| t.mid == mid) {
            return;
        }
        // The hard cap. `up_offer` refuses what it can foresee, but offers
        // that raced each other before any track opened land here.
        let room = p.room.clone();
        let subscribers = self.room_members(&room).len().saturating_sub(1);
        if self.forwarded_tracks() + subscribers > self.config.max_tracks {
            debug!(publisher, %mid, "track not forwarded: max_tracks");
            self.stats.tracks_refused += 1;
            return;
        }
        let Some(p) = self.members.get_mut(&publisher) else {
            return;
        };
        p.tracks_in.push(TrackIn {
            mid,
            kind,
            layers: HashMap::new(),
            declared,
            first_frame: None,
        });
        for sub in self.room_members(&room) {
            if sub == publisher {
                continue;
            }
            if let Some(s) = self.members.get_mut(&sub) {
                s.tracks_out.push(new_track_out(publisher, mid, kind));
                self.renegotiate.insert(sub);
            }
        }
    }

    /// Puts pending track changes of `member`'s down PC into an offer, unless
    /// one is outstanding.
    fn negotiate(&mut self, member: MemberId, now: Instant) {
        let Some(m) = self.members.get(&member) else {
            return;
        };
        if m.pending.is_some() {
            return;
        }
        let wanted: Vec<(usize, Option<String>)> = m
            .tracks_out
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t.state, OutState::ToOpen | OutState::ToStop(_)))
            .map(|(i, t)| {
                (
                    i,
                    self.members.get(&t.publisher).map(|p| p.stream_id.clone()),
                )
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let Some(m) = self.members.get_mut(&member) else {
            return;
        };
        let mut api = m.down.rtc.sdp_api();
        for (i, stream) in wanted {
            let t = &mut m.tracks_out[i];
            match t.state {
                OutState::ToOpen => {
                    let Some(stream) = stream else { continue };
                    let prefix = if t.kind == MediaKind::Audio { 'a' } else { 'v' };
                    let track_id = format!("{prefix}{}-{stream}", t.pub_mid);
                    let mid = api.add_media(
                        t.kind,
                        Direction::SendOnly,
                        Some(stream),
                        Some(track_id),
                        None,
                    );
                    t.state = OutState::Negotiating(mid);
                }
                OutState::ToStop(mid) => {
                    api.stop_media(mid);
                    t.state = OutState::NegotiatingStop(mid);
                }
                _ => {}
            }
        }
        // Publishers that left before their track was offered.
        m.tracks_out
            .retain(|t| t.state != OutState::ToOpen || !t.gone);
        if !api.has_changes() {
            drop(api);
            m.tracks_out
                .retain(|t| !matches!(t.state, OutState::NegotiatingStop(_)));
            return;
        }
        let Some((offer, pending)) = api.apply() else {
            // Nothing to offer after all: undo, so a later change retries.
            for t in &mut m.tracks_out {
                if let OutState::Negotiating(_) = t.state {
                    t.state = OutState::ToOpen;
                }
            }
            m.tracks_out
                .retain(|t| !matches!(t.state, OutState::NegotiatingStop(_)));
            return;
        };
        m.pending = Some(pending);
        self.stats.down_offers += 1;
        self.outputs.push_back(SfuOutput::DownOffer {
            member,
            sdp: offer.to_sdp_string(),
        });
        self.drain(member, Pc::Down, now);
    }

    /// Removes a member and stops its tracks elsewhere. False if unknown.
    fn remove_member(&mut self, member: MemberId) -> bool {
        let Some(m) = self.members.remove(&member) else {
            return false;
        };
        for pc in [Pc::Up, Pc::Down] {
            if let Some(p) = m.peer(pc) {
                self.ufrags.remove(&p.ufrag);
                for a in &p.addrs {
                    if self.addrs.get(a) == Some(&(member, pc)) {
                        self.addrs.remove(a);
                    }
                }
            }
        }
        self.events.retain(|(id, _, _)| *id != member);
        self.renegotiate.remove(&member);
        self.keyframes.retain(|k| k.0 != member);
        let mut speaker_change = None;
        let mut others = Vec::new();
        if let Some(room) = self.rooms.get_mut(&m.room) {
            room.members.retain(|id| *id != member);
            speaker_change = room.speaker.remove(member);
            others = room.members.clone();
            if room.members.is_empty() {
                self.rooms.remove(&m.room);
            }
        }
        if let Some(change) = speaker_change {
            self.outputs.push_back(SfuOutput::Speaker {
                room: m.room.clone(),
                member: change,
            });
        }
        for sub in others {
            if let Some(s) = self.members.get_mut(&sub) {
                s.wanted.remove(&member);
            }
            self.stop_forwarding(sub, member, None);
        }
        true
    }

    /// Stops `publisher`'s track `mid` (all its tracks for `None`) on
    /// `sub`'s down PC.
    fn stop_forwarding(&mut self, sub: MemberId, publisher: MemberId, mid: Option<Mid>) {
        let Some(s) = self.members.get_mut(&sub) else {
            return;
        };
        let mut changed = false;
        for t in s
            .tracks_out
            .iter_mut()
            .filter(|t| t.publisher == publisher && mid.is_none_or(|m| m == t.pub_mid))
        {
            match t.state {
                OutState::Open(mid) => {
                    t.state = OutState::ToStop(mid);
                    changed = true;
                }
                OutState::ToOpen | OutState::Negotiating(_) => t.gone = true,
                _ => {}
            }
        }
        s.tracks_out
            .retain(|t| !(t.gone && t.state == OutState::ToOpen));
        if changed {
            self.renegotiate.insert(sub);
        }
    }

    /// A publisher stopped sending a track (its re-offer made it inactive).
    fn track_removed(&mut self, publisher: MemberId, mid: Mid) {
        let Some(p) = self.members.get_mut(&publisher) else {
            return;
        };
        let before = p.tracks_in.len();
        p.tracks_in.retain(|t| t.mid != mid);
        if p.tracks_in.len() == before {
            return;
        }
        let room = p.room.clone();
        self.keyframes.retain(|k| !(k.0 == publisher && k.1 == mid));
        for sub in self.room_members(&room) {
            if sub != publisher {
                self.stop_forwarding(sub, publisher, Some(mid));
            }
        }
    }

    /// A frame from a publisher: meter it, feed the speaker detector, and
    /// write it to every subscriber that should get it.
    fn media_in(&mut self, publisher: MemberId, data: MediaData, now: Instant) {
        self.stats.frames_in += 1;
        let Some(p) = self.members.get_mut(&publisher) else {
            return;
        };
        let Some(track) = p.tracks_in.iter_mut().find(|t| t.mid == data.mid) else {
            return;
        };
        let kind = track.kind;
        let layer = track.layers.entry(data.rid).or_insert_with(|| LayerIn {
            last_seen: now,
            rate: RateMeter::new(now),
        });
        layer.last_seen = now;
        layer.rate.add(data.data.len(), now);
        let simulcast = !track.declared.is_empty() || track.layers.keys().any(|r| r.is_some());
        let first_frame = *track.first_frame.get_or_insert(now);
        let starting = now.saturating_duration_since(first_frame) < self.config.layer_timeout;
        let mut available: Vec<(Layer, u64, Option<Rid>)> = track
            .layers
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.last_seen) < self.config.layer_timeout)
            .filter_map(|(rid, l)| {
                let layer = match rid {
                    Some(r) => Layer::from_rid(r)?,
                    None => Layer::High,
                };
                let rate = l
                    .rate
                    .bps()
                    .unwrap_or_else(|| self.config.nominal_bps(layer));
                Some((layer, rate, *rid))
            })
            .collect();
        if starting {
            for rid in &track.declared {
                if !track.layers.contains_key(&Some(*rid))
                    && let Some(layer) = Layer::from_rid(rid)
                {
                    available.push((layer, self.config.nominal_bps(layer), Some(*rid)));
                }
            }
        }
        let room = p.room.clone();
        let mut keyframe_wanted: Vec<LayerKey> = Vec::new();

        if kind == MediaKind::Audio
            && let Some(level) = data.ext_vals.audio_level
            && let Some(r) = self.rooms.get_mut(&room)
            && let Some(change) = r.speaker.update(publisher, level, now)
        {
            self.outputs.push_back(SfuOutput::Speaker {
                room: room.clone(),
                member: change,
            });
        }
        if kind == MediaKind::Video && !data.contiguous {
            keyframe_wanted.push((publisher, data.mid, data.rid));
        }

        // Audio top-k: a publisher outside the loudest k is not forwarded.
        if kind == MediaKind::Audio
            && let Some(k) = self.config.audio_top_k
            && !self
                .rooms
                .get(&room)
                .is_some_and(|r| r.speaker.in_top(publisher, k, now))
        {
            self.stats.audio_frames_culled += 1;
            return;
        }
        let subscribers = self.room_members(&room);
        let room_size = subscribers.len();
        for sub in subscribers {
            if sub == publisher {
                continue;
            }
            let Some(s) = self.members.get_mut(&sub) else {
                continue;
            };
            if !s.down.connected {
                continue;
            }
            let default_layer = if room_size > self.config.low_above {
                Layer::Low
            } else {
                Layer::High
            };
            let wanted = s.wanted.get(&publisher).copied().unwrap_or(default_layer);
            // Only simulcast video needs the budget. It is shared by the videos
            // open and not switched off.
            let budget = if simulcast && kind == MediaKind::Video {
                let video_open = s
                    .tracks_out
                    .iter()
                    .filter(|t| t.kind == MediaKind::Video && matches!(t.state, OutState::Open(_)))
                    .filter(|t| s.wanted.get(&t.publisher) != Some(&Layer::Off))
                    .count()
                    .max(1) as u64;
                s.bwe_bps
                    .map(|b| b * self.config.bwe_video_share_percent / 100 / video_open)
            } else {
                None
            };
            let Some(t) = s
                .tracks_out
                .iter_mut()
                .find(|t| t.publisher == publisher && t.pub_mid == data.mid)
            else {
                continue;
            };
            let OutState::Open(out_mid) = t.state else {
                continue;
            };

            let mut time = data.time;
            if kind == MediaKind::Video {
                let target: Option<Option<Rid>> = if simulcast {
                    let layers: Vec<(Layer, u64)> =
                        available.iter().map(|(l, r, _)| (*l, *r)).collect();
                    choose_layer(&layers, wanted, budget).and_then(|l| {
                        available
                            .iter()
                            .find(|(al, _, _)| *al == l)
                            .map(|(_, _, rid)| *rid)
                    })
                } else if wanted == Layer::Off {
                    None
                } else {
                    Some(data.rid)
                };
                let Some(target) = target else {
                    t.current = None;
                    continue;
                };
                if t.current != Some(target) {
                    if data.rid == target && data.is_keyframe() {
                        if t.current.is_some() {
                            self.stats.layer_switches += 1;
                        }
                        t.current = Some(target);
                        // Continue the output timeline across the switch.
                        let freq = data.time.frequency().get() as i64;
                        let input = data.time.numer() as i64;
                        t.offset = match t.last_out {
                            Some((out, at)) => {
                                let gap = now.saturating_duration_since(at).as_micros() as i64
                                    * freq
                                    / 1_000_000;
                                out + gap.max(1) - input
                            }
                            None => 0,
                        };
                    } else {
                        keyframe_wanted.push((publisher, data.mid, target));
                    }
                }
                if t.current != Some(data.rid) {
                    continue;
                }
                let out = (data.time.numer() as i64 + t.offset).max(0);
                t.last_out = Some((out, now));
                time = MediaTime::new(out as u64, data.time.frequency());
            }
            let Some(writer) = s.down.rtc.writer(out_mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            match writer.write(pt, data.network_time, time, data.data.clone()) {
                Ok(()) => self.stats.frames_out += 1,
                Err(e) => debug!(sub, %e, "write to down PC failed"),
            }
            self.drain(sub, Pc::Down, now);
        }
        let mut seen: HashSet<LayerKey> = HashSet::new();
        for key in keyframe_wanted.into_iter().filter(|k| seen.insert(*k)) {
            self.request_keyframe(key, KeyframeRequestKind::Pli, now);
        }
    }

    /// Asks a publisher for a keyframe of one layer, at most once per
    /// [`SfuConfig::keyframe_interval`].
    fn request_keyframe(&mut self, key: LayerKey, kind: KeyframeRequestKind, now: Instant) {
        if !self.keyframes.allows(&key, now) {
            self.stats.keyframe_requests_coalesced += 1;
            return;
        }
        let (publisher, mid, rid) = key;
        let Some(up) = self.members.get_mut(&publisher).and_then(|m| m.up.as_mut()) else {
            return;
        };
        let Some(mut writer) = up.rtc.writer(mid) else {
            return;
        };
        let kind = if writer.is_request_keyframe_possible(kind) {
            kind
        } else if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
            KeyframeRequestKind::Pli
        } else if writer.is_request_keyframe_possible(KeyframeRequestKind::Fir) {
            KeyframeRequestKind::Fir
        } else {
            return;
        };
        match writer.request_keyframe(rid, kind) {
            Ok(()) => {
                self.keyframes.sent(key, now);
                self.stats.keyframe_requests_sent += 1;
                self.drain(publisher, Pc::Up, now);
            }
            // A layer never received yet (str0m#773): nothing to ask.
            Err(RtcError::NoReceiverSource(_)) => {}
            Err(e) => debug!(publisher, %e, "keyframe request failed"),
        }
    }
}

/// The receiver's ufrag from a STUN message's USERNAME attribute
/// (`receiver:sender`, RFC 8445 §7.2.2). Bounds-checked; `None` for anything
/// that is not a well-formed STUN message with a USERNAME.
fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    if data.len() < 20 || data[4..8] != MAGIC {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let body = data.get(20..20 + len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + alen)?;
        if kind == USERNAME {
            let name = std::str::from_utf8(value).ok()?;
            return name.split(':').next();
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    None
}

/// Parses client text with a str0m parser, a panic included in the errors.
fn parse_guarded<T, E: std::fmt::Display>(f: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(PANICKED.to_string()),
    }
}

/// Runs a str0m call that sees network or client input, turning a panic
/// inside str0m into an error: one bad peer must not take the SFU down.
/// The `Rtc` is not trusted afterwards (callers fail the member).
fn guarded<T>(f: impl FnOnce() -> Result<T, RtcError>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(PANICKED.to_string()),
    }
}

fn new_track_out(publisher: MemberId, pub_mid: Mid, kind: MediaKind) -> TrackOut {
    TrackOut {
        publisher,
        pub_mid,
        kind,
        state: OutState::ToOpen,
        gone: false,
        current: None,
        offset: 0,
        last_out: None,
    }
}

/// The shell moves the `Sfu` into its own thread or task: it must stay `Send`.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Sfu>();
};

#[cfg(test)]
mod tests {
    use super::stun_local_ufrag;

    fn stun(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attrs {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        m.extend_from_slice(&[9; 12]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn ufrag_from_username() {
        let m = stun(&[(0x0024, b"\x01\x02\x03\x04"), (0x0006, b"srv1:cli")]);
        assert_eq!(stun_local_ufrag(&m), Some("srv1"));
        assert_eq!(stun_local_ufrag(&stun(&[(0x8028, b"abcd")])), None);
    }

    #[test]
    fn ufrag_parser_survives_truncation_and_lies() {
        let m = stun(&[(0x0024, b"\x01\x02\x03"), (0x0006, b"srv1:cli")]);
        for n in 0..m.len() {
            let _ = stun_local_ufrag(&m[..n]);
        }
        let mut lying = m.clone();
        lying[3] = 0xff; // message length beyond the datagram
        assert_eq!(stun_local_ufrag(&lying), None);
        let mut bad_attr = m;
        bad_attr[22] = 0xff; // attribute length beyond the body
        assert_eq!(stun_local_ufrag(&bad_attr), None);
    }
}
