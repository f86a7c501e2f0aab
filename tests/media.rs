//! The media server end to end over real sockets: members join a room that
//! is on the media server, call `@server` over the WebSocket signaling,
//! connect over UDP on 127.0.0.1, and each one's frames reach the others
//! through the server byte for byte. str0m `Rtc`s stand in for browsers.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{Client, config, start};
use futures_util::{SinkExt, StreamExt};
use huddle::media::MediaConfig;
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// How long a test drives its peers before giving up.
const DEADLINE: Duration = Duration::from_secs(20);

/// A server whose rooms move to the media server past ABOVE members.
fn sfu_config(above: usize) -> huddle::config::Config {
    let mut cfg = config();
    cfg.core.sfu_above = Some(above);
    cfg.media = Some(MediaConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..MediaConfig::default()
    });
    cfg
}

/// A member: its signaling socket (a reader task feeds `inbox`) and its two
/// media connections with the server, each on a UDP socket of its own.
struct Peer {
    name: String,
    tx: futures_util::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        Message,
    >,
    inbox: mpsc::UnboundedReceiver<Value>,
    /// Every signaling message seen, in order.
    seen: Vec<Value>,
    up: Rtc,
    up_sock: UdpSocket,
    up_pending: Option<SdpPendingOffer>,
    up_connected: bool,
    down: Rtc,
    down_sock: UdpSocket,
    down_connected: bool,
    audio: Option<Mid>,
    video: Option<Mid>,
    /// Video frames received on the down connection: (stream id, bytes).
    frames: Vec<(String, Vec<u8>)>,
    sent: u64,
    start: Instant,
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

impl Peer {
    /// Connects, joins ROOM as NAME with the `sfu` cap, and returns the
    /// peer and its `joined`.
    async fn join(addr: SocketAddr, room: &str, name: &str) -> (Peer, Value) {
        let client = Client::connect(addr).await;
        let (mut tx, mut rx) = client.ws.split();
        tx.send(Message::text(
            json!({"type":"join","room":room,"name":name,"caps":["sfu"]}).to_string(),
        ))
        .await
        .unwrap();
        let (in_tx, mut inbox) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = rx.next().await {
                if let Message::Text(t) = msg {
                    let v: Value = serde_json::from_str(&t).expect("JSON from server");
                    if in_tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let joined = tokio::time::timeout(DEADLINE, inbox.recv())
            .await
            .expect("joined in time")
            .expect("socket open");
        assert_eq!(joined["type"], "joined", "{joined}");
        let now = Instant::now();
        let up_sock = udp();
        let down_sock = udp();
        let mut up = Rtc::builder().build(now);
        up.add_local_candidate(Candidate::host(up_sock.local_addr().unwrap(), "udp").unwrap());
        let mut down = Rtc::builder().build(now);
        down.add_local_candidate(Candidate::host(down_sock.local_addr().unwrap(), "udp").unwrap());
        let peer = Peer {
            name: name.to_owned(),
            tx,
            inbox,
            seen: vec![joined.clone()],
            up,
            up_sock,
            up_pending: None,
            up_connected: false,
            down,
            down_sock,
            down_connected: false,
            audio: None,
            video: None,
            frames: Vec::new(),
            sent: 0,
            start: now,
        };
        (peer, joined)
    }

    async fn send(&mut self, v: Value) {
        self.tx.send(Message::text(v.to_string())).await.unwrap();
    }

    /// Offers the up connection (audio and video, send only) to `@server`.
    async fn offer_up(&mut self) {
        let mut api = self.up.sdp_api();
        let stream = Some(format!("up-{}", self.name));
        let a = api.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            stream.clone(),
            None,
            None,
        );
        let v = api.add_media(MediaKind::Video, Direction::SendOnly, stream, None, None);
        let (offer, pending) = api.apply().expect("an offer");
        self.audio = Some(a);
        self.video = Some(v);
        self.up_pending = Some(pending);
        self.send(json!({"type":"offer","to":"@server","sdp":offer.to_sdp_string()}))
            .await;
    }

    /// One round: signaling, datagrams both ways, timeouts, media out.
    async fn drive(&mut self) {
        while let Ok(msg) = self.inbox.try_recv() {
            self.seen.push(msg.clone());
            if msg["from"] != "@server" {
                continue;
            }
            let sdp = msg["sdp"].as_str().expect("an SDP");
            match msg["type"].as_str() {
                Some("answer") => {
                    let pending = self.up_pending.take().expect("an answer to our offer");
                    let answer = SdpAnswer::from_sdp_string(sdp).expect("the answer parses");
                    self.up
                        .sdp_api()
                        .accept_answer(pending, answer)
                        .expect("answer accepted");
                }
                Some("offer") => {
                    let offer = SdpOffer::from_sdp_string(sdp).expect("the offer parses");
                    let answer = self
                        .down
                        .sdp_api()
                        .accept_offer(offer)
                        .expect("offer accepted");
                    self.send(json!({"type":"answer","to":"@server","sdp":answer.to_sdp_string()}))
                        .await;
                }
                other => panic!("unexpected {other:?} from @server"),
            }
        }
        let now = Instant::now();
        let mut buf = [0u8; 2048];
        for up in [true, false] {
            let (rtc, sock) = if up {
                (&mut self.up, &self.up_sock)
            } else {
                (&mut self.down, &self.down_sock)
            };
            let local = sock.local_addr().unwrap();
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let r = Receive::new(Protocol::Udp, from, local, &buf[..n]).unwrap();
                rtc.handle_input(Input::Receive(now, r)).expect("input");
            }
            rtc.handle_input(Input::Timeout(now)).expect("timeout");
            loop {
                match rtc.poll_output().expect("poll") {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        let _ = sock.send_to(&t.contents, t.destination);
                    }
                    Output::Event(Event::Connected) if up => self.up_connected = true,
                    Output::Event(Event::Connected) => self.down_connected = true,
                    Output::Event(Event::MediaData(d)) if !up => {
                        let media = rtc.media(d.mid).expect("a media of the offer");
                        if media.kind() == MediaKind::Video {
                            self.frames
                                .push((media.stream_id().to_string(), d.data.to_vec()));
                        }
                    }
                    Output::Event(_) => {}
                }
            }
        }
        self.send_media(now);
    }

    /// A VP8 frame every 33 ms (the first a keyframe) and Opus every 20 ms,
    /// each marked with our name and its number.
    fn send_media(&mut self, now: Instant) {
        let (Some(a), Some(v)) = (self.audio, self.video) else {
            return;
        };
        if !self.up_connected {
            return;
        }
        let due = now.duration_since(self.start).as_millis() as u64 / 33;
        while self.sent < due {
            self.sent += 1;
            let ms = self.sent * 33;
            let vp8 = self
                .up
                .codec_config()
                .find(|p| p.spec().codec == Codec::Vp8)
                .unwrap()
                .pt();
            let opus = self
                .up
                .codec_config()
                .find(|p| p.spec().codec == Codec::Opus)
                .unwrap()
                .pt();
            let key = self.sent == 1 || self.sent.is_multiple_of(30);
            let mut frame = vec![if key { 0x00 } else { 0x01 }];
            frame.extend_from_slice(format!("{}#{}", self.name, self.sent).as_bytes());
            frame.resize(600, 0x5a);
            let time = MediaTime::new(ms * 90, Frequency::NINETY_KHZ);
            if let Some(w) = self.up.writer(v) {
                w.write(vp8, now, time, frame).expect("video write");
            }
            let time = MediaTime::new(ms * 48, Frequency::FORTY_EIGHT_KHZ);
            if let Some(w) = self.up.writer(a) {
                w.write(opus, now, time, vec![0xf8, 0xff, 0xfe])
                    .expect("audio write");
            }
        }
    }

    /// Frames from the member with STREAM, as text after the VP8 byte.
    fn frames_from(&self, stream: &str) -> Vec<String> {
        self.frames
            .iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, f)| {
                String::from_utf8_lossy(&f[1..])
                    .trim_end_matches('\u{5a}')
                    .to_owned()
            })
            .collect()
    }
}

/// Drives PEERS until DONE holds or the deadline passes.
async fn drive_until(peers: &mut [&mut Peer], what: &str, done: impl Fn(&[&mut Peer]) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done(peers) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        for p in peers.iter_mut() {
            p.drive().await;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_see_each_other_through_the_media_server() {
    let server = start(sfu_config(0)).await;
    let (mut ann, joined) = Peer::join(server.addr, "big", "ann").await;
    assert_eq!(joined["mode"], "sfu", "{joined}");
    let ann_stream = joined["streams"]["ann"]
        .as_str()
        .expect("ann's stream")
        .to_owned();
    let (mut bob, joined) = Peer::join(server.addr, "big", "bob").await;
    assert_eq!(joined["mode"], "sfu", "{joined}");
    assert_eq!(joined["peers"], json!(["ann"]));
    assert_eq!(joined["streams"]["ann"], ann_stream.as_str());
    let bob_stream = joined["streams"]["bob"]
        .as_str()
        .expect("bob's stream")
        .to_owned();
    ann.offer_up().await;
    bob.offer_up().await;
    drive_until(&mut [&mut ann, &mut bob], "frames both ways", |p| {
        p[0].frames_from(&bob_stream).len() >= 20 && p[1].frames_from(&ann_stream).len() >= 20
    })
    .await;
    assert!(ann.up_connected && ann.down_connected && bob.up_connected && bob.down_connected);
    // Bob's own frames, in order, from his stream only: what he sent.
    let got = ann.frames_from(&bob_stream);
    let first: u64 = got[0]
        .strip_prefix("bob#")
        .expect("bob's mark")
        .parse()
        .unwrap();
    for (i, f) in got.iter().enumerate() {
        assert_eq!(
            f,
            &format!("bob#{}", first + i as u64),
            "frame {i} of {got:?}"
        );
    }
    assert!(
        bob.frames_from(&ann_stream)
            .iter()
            .all(|f| f.starts_with("ann#"))
    );
    // Nobody gets its own media back.
    assert!(ann.frames_from(&ann_stream).is_empty() && bob.frames_from(&bob_stream).is_empty());
    // bob heard of ann only as a name with a stream; ann of bob likewise.
    let peer_joined = ann
        .seen
        .iter()
        .find(|m| m["type"] == "peer-joined")
        .expect("peer-joined");
    assert_eq!(peer_joined["stream"], bob_stream.as_str(), "{peer_joined}");
    server.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_member_moves_a_room_of_two_and_a_leaver_is_gone_from_it() {
    let server = start(sfu_config(2)).await;
    let (mut ann, joined) = Peer::join(server.addr, "grow", "ann").await;
    assert!(
        joined.get("mode").is_none(),
        "a mesh room says no mode: {joined}"
    );
    let (mut bob, _) = Peer::join(server.addr, "grow", "bob").await;
    let (mut cid, joined) = Peer::join(server.addr, "grow", "cid").await;
    assert_eq!(joined["mode"], "sfu", "{joined}");
    let streams = joined["streams"].clone();
    // The members already there hear of the move.
    drive_until(&mut [&mut ann, &mut bob], "mode at ann and bob", |p| {
        p.iter().all(|p| {
            p.seen
                .iter()
                .any(|m| m["type"] == "mode" && m["mode"] == "sfu")
        })
    })
    .await;
    for p in [&mut ann, &mut bob, &mut cid] {
        p.offer_up().await;
    }
    let s = |n: &str| streams[n].as_str().unwrap().to_owned();
    let (sa, sb, sc) = (s("ann"), s("bob"), s("cid"));
    drive_until(
        &mut [&mut ann, &mut bob, &mut cid],
        "frames from everyone",
        |p| {
            p[0].frames_from(&sb).len() >= 5
                && p[0].frames_from(&sc).len() >= 5
                && p[1].frames_from(&sa).len() >= 5
                && p[1].frames_from(&sc).len() >= 5
                && p[2].frames_from(&sa).len() >= 5
                && p[2].frames_from(&sb).len() >= 5
        },
    )
    .await;
    // /metrics counts the move and the datagrams.
    let m = metrics(server.addr).await;
    assert_eq!(m["huddle_sfu_moves_total"], 1.0);
    assert!(m["huddle_sfu_datagrams_received_total"] > 0.0, "{m:?}");
    assert!(m["huddle_sfu_datagrams_sent_total"] > 0.0, "{m:?}");
    // cid leaves: the others hear it, and its frames stop.
    cid.send(json!({"type":"leave"})).await;
    drive_until(&mut [&mut ann, &mut bob], "peer-left for cid", |p| {
        p.iter().all(|p| {
            p.seen
                .iter()
                .any(|m| m["type"] == "peer-left" && m["name"] == "cid")
        })
    })
    .await;
    let before = ann.frames_from(&sc).len();
    let bob_before = ann.frames_from(&sb).len();
    drive_until(&mut [&mut ann, &mut bob], "more frames from bob", |p| {
        p[0].frames_from(&sb).len() >= bob_before + 20
    })
    .await;
    assert!(
        ann.frames_from(&sc).len() <= before + 2,
        "cid's frames stop once it left"
    );
    server.stop.cancel();
}

/// `/metrics` (from loopback, on the main listener) as series → value.
async fn metrics(addr: SocketAddr) -> std::collections::HashMap<String, f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (_, body) = raw.split_once("\r\n\r\n").expect("a response");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            l.rsplit_once(' ')
                .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn an_sdp_the_media_server_cannot_take_is_refused_and_the_member_stays() {
    let server = start(sfu_config(0)).await;
    let mut a = Client::connect(server.addr).await;
    a.send(json!({"type":"join","room":"r","name":"a","caps":["sfu"]}))
        .await;
    assert_eq!(a.recv().await["mode"], "sfu");
    for msg in [
        json!({"type":"offer","to":"@server","sdp":"v=0 not an offer"}),
        json!({"type":"answer","to":"@server","sdp":"v=0 no offer was made"}),
    ] {
        a.send(msg).await;
        let err = a.recv().await;
        assert_eq!(err["code"], "bad-message", "{err}");
        assert!(
            err["message"].as_str().unwrap().contains("media server"),
            "{err}"
        );
    }
    assert_eq!(server.hub.members("r"), vec!["a".to_owned()]);
    server.stop.cancel();
}

#[tokio::test]
async fn without_the_media_server_rooms_stay_a_mesh() {
    let server = start(config()).await;
    // No media server: the joined of a member with the cap says nothing of it.
    let mut a = Client::connect(server.addr).await;
    a.send(json!({"type":"join","room":"r","name":"a","caps":["sfu"]}))
        .await;
    let joined = a.recv().await;
    assert_eq!(joined["type"], "joined");
    assert!(joined.get("mode").is_none(), "{joined}");
    // And `@server` is nobody.
    a.send(json!({"type":"offer","to":"@server","sdp":"v=0"}))
        .await;
    let err = a.recv().await;
    assert_eq!(err["code"], "unknown-peer", "{err}");
    let m = metrics(server.addr).await;
    assert!(
        !m.keys().any(|k| k.starts_with("huddle_sfu_")),
        "no media figures without it"
    );
    server.stop.cancel();
}

#[tokio::test]
async fn a_media_server_binds_its_own_udp_port() {
    let cfg = sfu_config(4);
    let server = huddle::server::Server::bind(cfg).await.expect("bind");
    let media = server.media_addr().expect("a media address");
    assert!(media.ip().is_loopback());
    // The port is taken: a second bind of it fails.
    assert!(UdpSocket::bind(media).is_err());
    let mesh = huddle::server::Server::bind(config()).await.expect("bind");
    assert_eq!(mesh.media_addr(), None);
}
