//! `/metrics` after scripted sessions: the counters match what happened.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Client, config, start};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// A plain HTTP GET; returns (status, content type, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("a response in time")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let status = head[9..12].parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, ctype, body.to_owned())
}

/// Scrapes `/metrics` into series → value (`name{labels}` as written).
async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, ctype, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// Scrapes until `series` has `value` (events land asynchronously).
async fn wait_for(addr: SocketAddr, series: &str, value: f64) -> HashMap<String, f64> {
    let t0 = Instant::now();
    loop {
        let m = scrape(addr).await;
        if m.get(series) == Some(&value) {
            return m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{series} = {:?}, want {value}",
            m.get(series)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks every `(series, value)`; reports all mismatches at once.
fn check(m: &HashMap<String, f64>, want: &[(&str, f64)]) {
    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| m.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: got {:?}, want {v}", m.get(*k)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn counters_match_a_scripted_session() {
    let mut cfg = config();
    cfg.core.reconnect_grace = Duration::from_secs(2);
    let srv = start(cfg).await;
    let addr = srv.addr;
    let mut frames = 0.0; // text frames sent: each is one handle-time observation

    // alice and bob meet and relay one of each kind.
    let mut alice = Client::connect(addr).await;
    let mut bob = Client::connect(addr).await;
    alice.join("r", "alice").await;
    let token = bob.join("r", "bob").await["token"].clone();
    frames += 2.0;
    assert_eq!(alice.recv().await["type"], "peer-joined");
    bob.send(json!({"type":"offer","to":"alice","sdp":"v=0"}))
        .await;
    assert_eq!(alice.recv().await["type"], "offer");
    alice
        .send(json!({"type":"answer","to":"bob","sdp":"v=0"}))
        .await;
    assert_eq!(bob.recv().await["type"], "answer");
    alice
        .send(json!({"type":"candidate","to":"bob","candidate":{"candidate":"c"}}))
        .await;
    assert_eq!(bob.recv().await["type"], "candidate");
    bob.send(json!({"type":"candidate","to":"alice","candidate":null}))
        .await;
    assert_eq!(alice.recv().await["type"], "candidate");
    frames += 4.0;

    // carol gets one error of each kind the state allows.
    let mut carol = Client::connect(addr).await;
    for (msg, code) in [
        ("not json".to_owned(), "bad-message"),
        (
            json!({"type":"offer","to":"alice","sdp":"x"}).to_string(),
            "not-joined",
        ),
        (
            json!({"type":"join","room":"r","name":"ALICE"}).to_string(),
            "name-taken",
        ),
        (
            json!({"type":"join","room":"bad room!","name":"c"}).to_string(),
            "invalid-room",
        ),
        (
            json!({"type":"join","room":"r","name":" "}).to_string(),
            "invalid-name",
        ),
    ] {
        carol.send_text(&msg).await;
        assert_eq!(carol.recv().await["code"], code);
        frames += 1.0;
    }
    bob.send(json!({"type":"offer","to":"nobody","sdp":"x"}))
        .await;
    assert_eq!(bob.recv().await["code"], "unknown-peer");
    bob.send(json!({"type":"offer","to":"bob","sdp":"x"})).await;
    assert_eq!(bob.recv().await["code"], "bad-message");
    frames += 2.0;

    // bob's connection vanishes; a candidate waits for him; he resumes.
    bob.vanish();
    wait_for(addr, "huddle_members_held", 1.0).await;
    alice
        .send(json!({"type":"candidate","to":"bob","candidate":{"candidate":"q"}}))
        .await;
    let mut bob = Client::connect(addr).await;
    bob.send(json!({"type":"join","room":"r","name":"bob","token":token}))
        .await;
    assert_eq!(bob.recv().await["resumed"], true);
    assert_eq!(bob.recv().await["candidate"]["candidate"], "q");
    frames += 2.0;

    // dave sends a binary frame and is closed with 1003.
    let mut dave = Client::connect(addr).await;
    dave.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(u16::from(dave.recv_close().await.unwrap().code), 1003);

    // bob leaves; carol joins a room, then changes rooms.
    bob.send(json!({"type":"leave"})).await;
    assert_eq!(bob.recv().await["type"], "left");
    assert_eq!(alice.recv().await["type"], "peer-left");
    carol.join("r2", "carol").await;
    carol.join("r3", "carol").await;
    frames += 3.0;

    // eve vanishes and her grace period ends.
    let mut eve = Client::connect(addr).await;
    eve.join("g", "eve").await;
    frames += 1.0;
    eve.vanish();
    wait_for(addr, "huddle_grace_expiries_total", 1.0).await;

    // alice closes cleanly.
    alice.ws.close(None).await.unwrap();
    while alice.ws.next().await.is_some() {}
    let m = wait_for(addr, "huddle_connections", 2.0).await;

    check(
        &m,
        &[
            ("huddle_connections", 2.0), // bob (left, still connected) and carol
            ("huddle_connections_opened_total", 6.0),
            ("huddle_rooms", 1.0),
            ("huddle_members", 1.0),
            ("huddle_members_held", 0.0),
            ("huddle_joins_total", 5.0),
            ("huddle_resumes_total", 1.0),
            ("huddle_leaves_total{reason=\"leave\"}", 1.0),
            ("huddle_leaves_total{reason=\"close\"}", 1.0),
            ("huddle_leaves_total{reason=\"grace-expired\"}", 1.0),
            ("huddle_leaves_total{reason=\"queue-overflow\"}", 0.0),
            ("huddle_leaves_total{reason=\"room-change\"}", 1.0),
            ("huddle_grace_expiries_total", 1.0),
            ("huddle_connections_lost_total", 2.0),
            ("huddle_relayed_messages_total{type=\"offer\"}", 1.0),
            ("huddle_relayed_messages_total{type=\"answer\"}", 1.0),
            ("huddle_relayed_messages_total{type=\"candidate\"}", 3.0),
            ("huddle_queued_messages_total", 1.0),
            ("huddle_errors_total{code=\"bad-message\"}", 2.0),
            ("huddle_errors_total{code=\"invalid-name\"}", 1.0),
            ("huddle_errors_total{code=\"invalid-room\"}", 1.0),
            ("huddle_errors_total{code=\"name-taken\"}", 1.0),
            ("huddle_errors_total{code=\"room-full\"}", 0.0),
            ("huddle_errors_total{code=\"not-joined\"}", 1.0),
            ("huddle_errors_total{code=\"unknown-peer\"}", 1.0),
            ("huddle_errors_total{code=\"rate-limited\"}", 0.0),
            ("huddle_rate_limited_messages_total", 0.0),
            ("huddle_rate_limit_closes_total", 0.0),
            ("huddle_slow_consumers_total", 0.0),
            ("huddle_frames_refused_total{reason=\"binary\"}", 1.0),
            ("huddle_frames_refused_total{reason=\"too-big\"}", 0.0),
            (
                "huddle_upgrades_refused_total{reason=\"max-connections\"}",
                0.0,
            ),
            ("huddle_message_handle_seconds_count", frames),
            ("huddle_message_handle_seconds_bucket{le=\"+Inf\"}", frames),
        ],
    );
    assert!(m["huddle_message_handle_seconds_sum"] > 0.0);
    for (series, v) in &m {
        if series.starts_with("huddle_message_handle_seconds_bucket") {
            assert!(*v <= frames, "{series}");
        }
    }
    assert!(m["process_open_fds"] > 0.0);
    assert!(m["process_resident_memory_bytes"] > 0.0);
}

#[tokio::test]
async fn limits_are_counted() {
    let mut cfg = config();
    cfg.core.rate = 1;
    cfg.core.burst = 2;
    cfg.core.max_room_size = 1;
    cfg.max_connections = 2;
    cfg.max_frame_bytes = 1024;
    let srv = start(cfg).await;
    let mut a = Client::connect(srv.addr).await;
    let mut b = Client::connect(srv.addr).await;
    a.join("r", "a").await;
    b.send(json!({"type":"join","room":"r","name":"b"})).await;
    assert_eq!(b.recv().await["code"], "room-full");
    // a has one token left: one bad message is handled, three are dropped
    // (the first of them with a rate-limited error).
    for _ in 0..4 {
        a.send_text("not json").await;
    }
    assert_eq!(a.recv().await["code"], "bad-message");
    assert_eq!(a.recv().await["code"], "rate-limited");
    // A third connection is refused with 503.
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/ws", srv.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("expected a 503, got {other:?}"),
    }
    // b sends a message above --max-frame-bytes.
    b.send_text(&"x".repeat(2000)).await;
    assert_eq!(u16::from(b.recv_close().await.unwrap().code), 1009);
    let m = wait_for(srv.addr, "huddle_connections", 1.0).await;
    check(
        &m,
        &[
            ("huddle_errors_total{code=\"room-full\"}", 1.0),
            ("huddle_errors_total{code=\"bad-message\"}", 1.0),
            ("huddle_errors_total{code=\"rate-limited\"}", 1.0),
            ("huddle_rate_limited_messages_total", 3.0),
            (
                "huddle_upgrades_refused_total{reason=\"max-connections\"}",
                1.0,
            ),
            ("huddle_frames_refused_total{reason=\"too-big\"}", 1.0),
            ("huddle_connections_opened_total", 2.0),
            ("huddle_joins_total", 1.0),
            // Frames that reached the hub: 2 joins and 4 bad messages.
            ("huddle_message_handle_seconds_count", 6.0),
        ],
    );
}

#[tokio::test]
async fn a_slow_consumer_is_counted() {
    let mut cfg = config();
    cfg.outbound_queue = 64;
    cfg.core.rate = 100_000;
    cfg.core.burst = 100_000;
    cfg.core.resume_queue = 60;
    cfg.core.resume_queue_bytes = 64 << 20;
    // Room for a resume of that queue (the settings are checked together).
    cfg.outbound_queue_bytes = 65 << 20;
    let srv = start(cfg).await;
    let (mut alice, _bob, _) = common::alice_and_bob(srv.addr).await;
    // bob never reads; alice sends until the server cuts him.
    let msg = json!({"type":"offer","to":"bob","sdp":"x".repeat(60_000)}).to_string();
    let t0 = Instant::now();
    while scrape(srv.addr).await["huddle_slow_consumers_total"] == 0.0 {
        assert!(t0.elapsed() < Duration::from_secs(20), "never cut");
        for _ in 0..20 {
            alice.send_text(&msg).await;
        }
    }
    let m = scrape(srv.addr).await;
    check(
        &m,
        &[
            ("huddle_slow_consumers_total", 1.0),
            ("huddle_connections_lost_total", 1.0),
            ("huddle_members_held", 1.0),
            ("huddle_connections", 1.0),
        ],
    );
}

#[tokio::test]
async fn metrics_can_move_to_their_own_listener() {
    let mut cfg = config();
    cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let server = huddle::server::Server::bind(cfg).await.unwrap();
    let main = server.local_addr().unwrap();
    let metrics = server.metrics_addr().expect("a metrics listener");
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(server.run(stop.clone()));
    assert_eq!(get(main, "/metrics").await.0, 404);
    assert_eq!(get(main, "/healthz").await.0, 200);
    let m = scrape(metrics).await;
    assert_eq!(m["huddle_connections"], 0.0);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("both listeners stop")
        .unwrap()
        .unwrap();
}
