//! A simulated network: str0m `Rtc`s play the browsers, datagrams are
//! shuttled between them and the `Sfu` in memory, and a fake clock advances
//! in fixed steps. No sockets, no sleeping.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use huddle_sfu::{Layer, MemberId, Pc, Sfu, SfuConfig, SfuOutput};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// Nanoseconds spent inside the Sfu's datagram and timeout calls, and
/// inside the clients' `handle_input` for datagrams from the Sfu, with the
/// count of those datagrams (for `benches/forward.rs`; tests ignore them).
pub static SFU_BUSY_NS: AtomicU64 = AtomicU64::new(0);
pub static CLIENT_RX_NS: AtomicU64 = AtomicU64::new(0);
pub static CLIENT_RX_PACKETS: AtomicU64 = AtomicU64::new(0);

/// Runs F and adds its wall time to COUNTER.
fn timed<T>(counter: &AtomicU64, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let out = f();
    counter.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    out
}

/// The SFU's public address.
pub const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5000);

/// Simulation step.
pub const STEP: Duration = Duration::from_millis(5);

/// What a simulated browser sends on its up PC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Nothing (receive only).
    Nothing,
    /// Audio and one video stream.
    AudioVideo,
    /// Audio and video with simulcast rids l, m, h.
    Simulcast,
}

/// A frame a client received on its down PC.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub mid: Mid,
    pub stream_id: String,
    pub kind: MediaKind,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// A simulated browser: an up PC that publishes and a down PC that receives.
pub struct Client {
    pub id: MemberId,
    pub stream_id: String,
    pub up: Rtc,
    pub up_addr: SocketAddr,
    pub down: Rtc,
    pub down_addr: SocketAddr,
    pub publish: Publish,
    pub audio_mid: Option<Mid>,
    pub video_mid: Option<Mid>,
    /// Sending stops (the browser vanished) when false.
    pub online: bool,
    /// Answer down offers automatically.
    pub auto_answer: bool,
    pub pending_down_offers: Vec<String>,
    pub down_offers: Vec<String>,
    pub received: Vec<Received>,
    /// Keyframe requests seen on the up PC: (time, rid).
    pub keyframe_requests: Vec<(Instant, Option<Rid>)>,
    /// Rids whose next frame is a keyframe.
    pub force_key: HashMap<Option<Rid>, bool>,
    pub frame_no: u64,
    /// Simulcast rids not sent (as a browser drops layers under load).
    pub paused: Vec<&'static str>,
    /// RFC 6464 level (negative dBov) the audio carries.
    pub audio_level: i8,
    pub up_connected: bool,
    pub down_connected: bool,
    pub down_connected_at: Option<Instant>,
    /// When each PC wants its next timeout.
    pub up_timeout: Instant,
    pub down_timeout: Instant,
    /// Every event seen on the down PC is logged here too (kind only).
    pub down_stream_ids: HashMap<Mid, String>,
}

impl Client {
    /// Sends a PLI for the first video track of the down PC, as a browser
    /// whose decoder lost the picture does.
    pub fn send_pli(&mut self) {
        let mid = *self
            .down_stream_ids
            .keys()
            .find(|m| {
                self.down
                    .media(**m)
                    .is_some_and(|m| m.kind() == MediaKind::Video)
            })
            .expect("a video track on the down PC");
        self.down
            .writer(mid)
            .expect("a writer for it")
            .request_keyframe(None, str0m::media::KeyframeRequestKind::Pli)
            .expect("a PLI");
    }
}

/// A world whose room "r" holds MEMBERS (joined in order), run until
/// every connection they make is up.
pub fn connected(members: &[(MemberId, Publish)]) -> World {
    let mut w = World::new(config());
    for &(id, publish) in members {
        w.join("r", id, publish);
    }
    w.run_until_connected();
    w
}

/// The whole simulated world.
pub struct World {
    pub now: Instant,
    pub sfu: Sfu,
    pub clients: Vec<Client>,
    /// Non-transmit outputs of the SFU, in order.
    pub outputs: Vec<SfuOutput>,
    pub start: Instant,
    /// The destination the SFU is told datagrams arrived on (default: the
    /// address they were sent to).
    pub seen_destination: Option<SocketAddr>,
}

fn rid(s: &str) -> Rid {
    s.into()
}

impl World {
    pub fn new(config: SfuConfig) -> World {
        let now = Instant::now();
        World {
            now,
            sfu: Sfu::new(config, vec![SERVER], now),
            clients: vec![],
            outputs: vec![],
            start: now,
            seen_destination: None,
        }
    }

    pub fn client(&mut self, id: MemberId) -> &mut Client {
        self.clients
            .iter_mut()
            .find(|c| c.id == id)
            .expect("client")
    }

    pub fn client_ref(&self, id: MemberId) -> &Client {
        self.clients.iter().find(|c| c.id == id).expect("client")
    }

    /// `id` joins `room` and (unless `Publish::Nothing`) offers its up PC.
    pub fn join(&mut self, room: &str, id: MemberId, publish: Publish) {
        let now = self.now;
        let stream_id = format!("m{id}");
        self.sfu.join(room, id, &stream_id, now).expect("join");
        let octet = id as u8;
        let up_addr = SocketAddr::from((Ipv4Addr::new(192, 168, 1, octet), 40000));
        let down_addr = SocketAddr::from((Ipv4Addr::new(192, 168, 1, octet), 40001));
        let mut up = Rtc::builder().build(now);
        up.add_local_candidate(Candidate::host(up_addr, "udp").unwrap());
        let mut down = Rtc::builder().build(now);
        down.add_local_candidate(Candidate::host(down_addr, "udp").unwrap());
        let mut client = Client {
            id,
            stream_id,
            up,
            up_addr,
            down,
            down_addr,
            publish,
            audio_mid: None,
            video_mid: None,
            online: true,
            auto_answer: true,
            pending_down_offers: vec![],
            down_offers: vec![],
            received: vec![],
            keyframe_requests: vec![],
            force_key: HashMap::new(),
            frame_no: 0,
            paused: vec![],
            audio_level: -127,
            up_connected: false,
            down_connected: false,
            down_connected_at: None,
            up_timeout: now,
            down_timeout: now,
            down_stream_ids: HashMap::new(),
        };
        if publish != Publish::Nothing {
            let mut api = client.up.sdp_api();
            let a = api.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                Some(client.stream_id.clone()),
                None,
                None,
            );
            let simulcast = (publish == Publish::Simulcast).then(|| {
                let mut s = Simulcast::new();
                for r in ["l", "m", "h"] {
                    s.add_send_layer(SimulcastLayer::new(r));
                }
                s
            });
            let v = api.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                Some(client.stream_id.clone()),
                None,
                simulcast,
            );
            let (offer, pending) = api.apply().unwrap();
            client.audio_mid = Some(a);
            client.video_mid = Some(v);
            let answer = self
                .sfu
                .up_offer(id, &offer.to_sdp_string(), now)
                .expect("up answer");
            accept_answer(&mut client.up, pending, &answer);
        }
        self.clients.push(client);
        self.pump();
    }

    /// Answers the oldest pending down offer of `id` by hand.
    pub fn answer_down(&mut self, id: MemberId) {
        let now = self.now;
        let c = self.clients.iter_mut().find(|c| c.id == id).unwrap();
        let offer = c.pending_down_offers.remove(0);
        let offer = SdpOffer::from_sdp_string(&offer).unwrap();
        let answer = c.down.sdp_api().accept_offer(offer).unwrap();
        self.sfu
            .down_answer(id, &answer.to_sdp_string(), now)
            .expect("down answer");
        self.pump();
    }

    /// Delivers everything in flight, in zero time, until quiet.
    pub fn pump(&mut self) {
        let now = self.now;
        for _ in 0..1000 {
            let mut moved = false;
            // Client → SFU.
            for c in &mut self.clients {
                for pc in [Pc::Up, Pc::Down] {
                    moved |= drain_client(&mut self.sfu, self.seen_destination, c, pc, now);
                }
            }
            // SFU → clients.
            while let Some(out) = self.sfu.poll_output() {
                match out {
                    SfuOutput::Transmit {
                        source,
                        destination,
                        data,
                    } => {
                        moved = true;
                        let Some(c) = self
                            .clients
                            .iter_mut()
                            .find(|c| c.up_addr == destination || c.down_addr == destination)
                        else {
                            continue;
                        };
                        if !c.online {
                            continue;
                        }
                        let pc = if c.up_addr == destination {
                            Pc::Up
                        } else {
                            Pc::Down
                        };
                        let rtc = if pc == Pc::Up { &mut c.up } else { &mut c.down };
                        let input = Input::Receive(
                            now,
                            Receive::new(Protocol::Udp, source, destination, &data).unwrap(),
                        );
                        timed(&CLIENT_RX_NS, || rtc.handle_input(input)).expect("client input");
                        CLIENT_RX_PACKETS.fetch_add(1, Ordering::Relaxed);
                        // str0m: drain after every mutation.
                        drain_client(&mut self.sfu, self.seen_destination, c, pc, now);
                    }
                    SfuOutput::DownOffer { member, sdp } => {
                        moved = true;
                        if let Some(c) = self.clients.iter_mut().find(|c| c.id == member) {
                            c.down_offers.push(sdp.clone());
                            c.pending_down_offers.push(sdp.clone());
                        }
                        self.outputs.push(SfuOutput::DownOffer { member, sdp });
                    }
                    other => self.outputs.push(other),
                }
            }
            // Automatic answers.
            for i in 0..self.clients.len() {
                if self.clients[i].auto_answer && !self.clients[i].pending_down_offers.is_empty() {
                    moved = true;
                    let c = &mut self.clients[i];
                    let offer =
                        SdpOffer::from_sdp_string(&c.pending_down_offers.remove(0)).unwrap();
                    let answer = c.down.sdp_api().accept_offer(offer).unwrap();
                    self.sfu
                        .down_answer(c.id, &answer.to_sdp_string(), now)
                        .expect("down answer");
                }
            }
            if !moved {
                return;
            }
        }
        panic!("pump did not settle");
    }

    /// Advances the clock by `d` in steps, sending media, driving timeouts.
    pub fn run(&mut self, d: Duration) {
        self.run_step(d, STEP);
    }

    /// Like [`World::run`] with another step (media is only sent on 5 ms steps).
    pub fn run_step(&mut self, d: Duration, tick: Duration) {
        // Event-driven: time jumps to the next SFU or client deadline, or to
        // the next media tick, so pacers and BWE see the times they asked for.
        let end = self.now + d;
        let mut next_tick = self.now + tick;
        while self.now < end {
            let mut next = next_tick.min(end);
            if let Some(t) = self.sfu.next_deadline() {
                next = next.min(t);
            }
            for c in &self.clients {
                next = next.min(c.up_timeout).min(c.down_timeout);
            }
            // Always move forward (a deadline of "now" was just served).
            self.now = next
                .max(self.now + Duration::from_micros(100))
                .min(end.max(self.now));
            let now = self.now;
            for c in &mut self.clients {
                if c.up_timeout <= now {
                    c.up.handle_input(Input::Timeout(now))
                        .expect("client timeout");
                    drain_client(&mut self.sfu, self.seen_destination, c, Pc::Up, now);
                }
                if c.down_timeout <= now {
                    c.down
                        .handle_input(Input::Timeout(now))
                        .expect("client timeout");
                    drain_client(&mut self.sfu, self.seen_destination, c, Pc::Down, now);
                }
            }
            if now >= next_tick {
                next_tick += tick;
                for c in &mut self.clients {
                    if c.online && c.up_connected {
                        send_media(&mut self.sfu, self.seen_destination, c, now, self.start);
                    }
                }
            }
            if self.sfu.next_deadline().is_some_and(|t| t <= now) {
                timed(&SFU_BUSY_NS, || self.sfu.handle_timeout(now));
            }
            self.pump();
        }
    }

    /// Runs until every client's PCs that have something to connect are connected.
    pub fn run_until_connected(&mut self) {
        for _ in 0..2000 {
            let done = self.clients.iter().all(|c| {
                (c.publish == Publish::Nothing || c.up_connected)
                    && (c.down_offers.is_empty() || c.down_connected)
            });
            if done {
                return;
            }
            self.run(STEP);
        }
        panic!("clients did not connect");
    }

    /// The frames `id` received from the publisher with `stream_id`.
    pub fn frames_from(&self, id: MemberId, publisher: MemberId, kind: MediaKind) -> Vec<Received> {
        let stream = format!("m{publisher}");
        self.client_ref(id)
            .received
            .iter()
            .filter(|r| r.stream_id == stream && r.kind == kind)
            .cloned()
            .collect()
    }
}

fn accept_answer(rtc: &mut Rtc, pending: SdpPendingOffer, answer: &str) {
    let answer = SdpAnswer::from_sdp_string(answer).expect("answer parses");
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .expect("answer accepted");
}

fn handle_client_event(c: &mut Client, pc: Pc, e: Event, now: Instant) {
    match (pc, e) {
        (Pc::Up, Event::Connected) => c.up_connected = true,
        (Pc::Down, Event::Connected) => {
            c.down_connected = true;
            c.down_connected_at = Some(now);
        }
        (Pc::Up, Event::KeyframeRequest(req)) => {
            c.keyframe_requests.push((now, req.rid));
            c.force_key.insert(req.rid, true);
        }
        (Pc::Down, Event::MediaAdded(added)) => {
            let stream = c
                .down
                .media(added.mid)
                .map(|m| m.stream_id().to_string())
                .unwrap_or_default();
            c.down_stream_ids.insert(added.mid, stream);
        }
        (Pc::Down, Event::MediaData(d)) => {
            let stream_id = c
                .down
                .media(d.mid)
                .map(|m| m.stream_id().to_string())
                .unwrap_or_default();
            let kind = c
                .down
                .media(d.mid)
                .map(|m| m.kind())
                .unwrap_or(MediaKind::Audio);
            c.received.push(Received {
                at: now,
                mid: d.mid,
                stream_id,
                kind,
                keyframe: d.is_keyframe(),
                data: d.data.to_vec(),
            });
        }
        _ => {}
    }
}

/// Payload of a video frame: byte 0 is the VP8 P bit (0: keyframe), then the
/// publisher id, the layer ('l'/'m'/'h'/'-') and the frame number.
pub fn video_payload(key: bool, publisher: MemberId, layer: u8, frame: u64) -> Vec<u8> {
    let mut v = vec![if key { 0x00 } else { 0x01 }, publisher as u8, layer];
    v.extend_from_slice(&frame.to_be_bytes());
    v.resize(
        if layer == b'h' {
            900
        } else if layer == b'm' {
            400
        } else {
            150
        },
        0xab,
    );
    v
}

/// Audio payload: publisher id and frame number.
pub fn audio_payload(publisher: MemberId, frame: u64) -> Vec<u8> {
    let mut v = vec![0xaa, publisher as u8];
    v.extend_from_slice(&frame.to_be_bytes());
    v
}

/// Polls a client PC to its timeout: transmits go to the SFU (unless the
/// client is offline), events are recorded. True if anything came out.
fn drain_client(
    sfu: &mut Sfu,
    seen_destination: Option<SocketAddr>,
    c: &mut Client,
    pc: Pc,
    now: Instant,
) -> bool {
    let mut moved = false;
    loop {
        let rtc = match pc {
            Pc::Up => &mut c.up,
            Pc::Down => &mut c.down,
        };
        match rtc.poll_output().expect("client poll") {
            Output::Timeout(t) => {
                match pc {
                    Pc::Up => c.up_timeout = t,
                    Pc::Down => c.down_timeout = t,
                }
                return moved;
            }
            Output::Transmit(t) => {
                moved = true;
                if c.online {
                    let destination = seen_destination.unwrap_or(t.destination);
                    timed(&SFU_BUSY_NS, || {
                        sfu.handle_datagram(now, t.source, destination, &t.contents)
                    });
                }
            }
            Output::Event(e) => {
                moved = true;
                handle_client_event(c, pc, e, now);
            }
        }
    }
}

fn send_media(
    sfu: &mut Sfu,
    seen_destination: Option<SocketAddr>,
    c: &mut Client,
    now: Instant,
    start: Instant,
) {
    let (Some(a), Some(v)) = (c.audio_mid, c.video_mid) else {
        return;
    };
    let elapsed = now.saturating_duration_since(start);
    let ms = elapsed.as_millis() as u64;
    // Audio every 20 ms.
    if ms.is_multiple_of(20) {
        let pt =
            c.up.codec_config()
                .find(|p| p.spec().codec == Codec::Opus)
                .unwrap()
                .pt();
        let time = MediaTime::new(ms * 48, Frequency::FORTY_EIGHT_KHZ);
        let data = audio_payload(c.id, ms / 20);
        if let Some(w) = c.up.writer(a) {
            w.audio_level(c.audio_level, c.audio_level > -127)
                .write(pt, now, time, data)
                .expect("audio write");
            drain_client(sfu, seen_destination, c, Pc::Up, now);
        }
    }
    // Video every 35 ms (a multiple of the step).
    if ms.is_multiple_of(35) {
        c.frame_no += 1;
        let pt =
            c.up.codec_config()
                .find(|p| p.spec().codec == Codec::Vp8)
                .unwrap()
                .pt();
        let time = MediaTime::new(ms * 90, Frequency::NINETY_KHZ);
        let rids: Vec<Option<Rid>> = if c.publish == Publish::Simulcast {
            vec![Some(rid("l")), Some(rid("m")), Some(rid("h"))]
        } else {
            vec![None]
        };
        for r in rids {
            if r.is_some_and(|r| c.paused.contains(&&*r)) {
                continue;
            }
            let first = c.frame_no == 1;
            let key = first || c.force_key.remove(&r).unwrap_or(false);
            let layer = r.map(|r| r.as_bytes()[0]).unwrap_or(b'-');
            let data = video_payload(key, c.id, layer, c.frame_no);
            let Some(mut w) = c.up.writer(v) else {
                continue;
            };
            if let Some(r) = r {
                w = w.rid(r);
            }
            w.write(pt, now, time, data).expect("video write");
            drain_client(sfu, seen_destination, c, Pc::Up, now);
        }
    }
}

/// The layer byte of a received video frame.
pub fn layer_of(r: &Received) -> u8 {
    r.data[2]
}

/// The SFU config for tests: defaults, with the nominal layer rates set to
/// what [`send_media`] sends (150/400/900-byte frames at ~28.6 fps).
pub fn config() -> SfuConfig {
    SfuConfig {
        nominal_layer_bps: [35_000, 92_000, 206_000],
        ..SfuConfig::default()
    }
}

pub fn layer_name(l: Layer) -> u8 {
    match l {
        Layer::Off => b'-',
        Layer::Low => b'l',
        Layer::Mid => b'm',
        Layer::High => b'h',
    }
}
