//! Integration tests over real WebSockets on 127.0.0.1:0. The core's tests
//! control time exactly; here, heartbeats, grace periods and rate windows
//! are set to fractions of a second, and waits poll for a condition with a
//! bound instead of sleeping a fixed time.

mod common;

use std::time::Duration;

use common::{Client, alice_and_bob, config, start};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn join_relay_and_leave() {
    let srv = start(config()).await;
    let mut alice = Client::connect(srv.addr).await;
    let mut bob = Client::connect(srv.addr).await;
    let joined = alice.join("r", "alice").await;
    assert_eq!(joined["peers"], json!([]));
    assert_eq!(joined["iceServers"], json!([]));
    assert!(joined["token"].as_str().unwrap().len() >= 22);
    let joined = bob.join("r", "bob").await;
    assert_eq!(joined["peers"], json!(["alice"]));
    assert_eq!(
        alice.recv().await,
        json!({"type":"peer-joined","name":"bob"})
    );

    bob.send(json!({"type":"offer","to":"alice","sdp":"v=0 bob","from":"forged"}))
        .await;
    assert_eq!(
        alice.recv().await,
        json!({"type":"offer","from":"bob","sdp":"v=0 bob"})
    );
    alice
        .send(json!({"type":"answer","to":"bob","sdp":"v=0 alice"}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"type":"answer","from":"alice","sdp":"v=0 alice"})
    );
    let cand = json!({"candidate":"candidate:0 1 UDP 1 127.0.0.1 9 typ host","sdpMid":"0"});
    alice
        .send(json!({"type":"candidate","to":"bob","candidate":cand}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"type":"candidate","from":"alice","candidate":cand})
    );

    bob.send(json!({"type":"leave"})).await;
    assert_eq!(bob.recv().await, json!({"type":"left","room":"r"}));
    assert_eq!(alice.recv().await, json!({"type":"peer-left","name":"bob"}));
}

#[tokio::test]
async fn name_taken_and_errors_keep_the_connection_open() {
    let srv = start(config()).await;
    let mut alice = Client::connect(srv.addr).await;
    let mut other = Client::connect(srv.addr).await;
    alice.join("r", "alice").await;
    other
        .send(json!({"type":"join","room":"r","name":"ALICE"}))
        .await;
    let err = other.recv().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "name-taken");
    other.send_text("this is not json").await;
    assert_eq!(other.recv().await["code"], "bad-message");
    other
        .send(json!({"type":"offer","to":"alice","sdp":"x"}))
        .await;
    assert_eq!(other.recv().await["code"], "not-joined");
    // Still open: a join under a free name works.
    let joined = other.join("r", "alicia").await;
    assert_eq!(joined["peers"], json!(["alice"]));
}

#[tokio::test]
async fn room_change_moves_the_member() {
    let srv = start(config()).await;
    let mut alice = Client::connect(srv.addr).await;
    let mut bob = Client::connect(srv.addr).await;
    let mut carol = Client::connect(srv.addr).await;
    alice.join("one", "alice").await;
    bob.join("one", "bob").await;
    alice.recv().await;
    carol.join("two", "carol").await;
    let joined = bob.join("two", "bob").await;
    assert_eq!(joined["peers"], json!(["carol"]));
    assert_eq!(alice.recv().await, json!({"type":"peer-left","name":"bob"}));
    assert_eq!(
        carol.recv().await,
        json!({"type":"peer-joined","name":"bob"})
    );
    assert_eq!(srv.hub.members("one"), ["alice"]);
    assert_eq!(srv.hub.members("two"), ["carol", "bob"]);
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009_and_removes_the_member() {
    let mut cfg = config();
    cfg.max_frame_bytes = 1024;
    let srv = start(cfg).await;
    let (mut alice, mut bob, _) = alice_and_bob(srv.addr).await;
    // Just under the limit is fine.
    let sdp = "x".repeat(1024 - 40);
    bob.send(json!({"type":"offer","to":"alice","sdp":sdp}))
        .await;
    assert_eq!(alice.recv().await["sdp"], sdp);
    bob.send(json!({"type":"offer","to":"alice","sdp":"x".repeat(2000)}))
        .await;
    let close = bob.recv_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1009);
    assert_eq!(alice.recv().await, json!({"type":"peer-left","name":"bob"}));
}

#[tokio::test]
async fn a_binary_frame_closes_with_1003() {
    let srv = start(config()).await;
    let (mut alice, mut bob, _) = alice_and_bob(srv.addr).await;
    bob.ws
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let close = bob.recv_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1003);
    assert_eq!(alice.recv().await, json!({"type":"peer-left","name":"bob"}));
}

#[tokio::test]
async fn a_lost_connection_leaves_after_the_grace_period() {
    let mut cfg = config();
    cfg.core.reconnect_grace = Duration::from_millis(500);
    let srv = start(cfg).await;
    let (mut alice, bob, _) = alice_and_bob(srv.addr).await;
    let t0 = Instant::now();
    bob.vanish();
    assert_eq!(alice.recv().await, json!({"type":"peer-left","name":"bob"}));
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "peer-left after {waited:?}"
    );
}

#[tokio::test]
async fn an_unanswered_heartbeat_means_lost() {
    let mut cfg = config();
    cfg.heartbeat_interval = Duration::from_millis(200);
    cfg.core.reconnect_grace = Duration::from_millis(300);
    let srv = start(cfg).await;
    let mut alice = Client::connect(srv.addr).await;
    alice.join("r", "alice").await;
    // bob joins, then never reads again, so he never answers a ping; his
    // TCP connection stays open.
    let mut bob = Client::connect(srv.addr).await;
    bob.join("r", "bob").await;
    assert_eq!(alice.recv().await["type"], "peer-joined");
    let t0 = Instant::now();
    // alice keeps reading (and so answering pings) while she waits.
    assert_eq!(alice.recv().await, json!({"type":"peer-left","name":"bob"}));
    let waited = t0.elapsed();
    // Lost after two (to three) silent intervals, then the grace period;
    // t0 is a little after bob's last frame.
    assert!(
        waited >= Duration::from_millis(600),
        "peer-left after {waited:?}"
    );
    // alice, who answers, is still there.
    assert_eq!(srv.hub.members("r"), ["alice"]);
    drop(bob);
}

/// Polls `cond` every 10 ms for up to 10 s.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn resume_is_silent_and_delivers_queued_messages_in_order() {
    let mut cfg = config();
    cfg.core.reconnect_grace = Duration::from_millis(800);
    let srv = start(cfg).await;
    let (mut alice, bob, token) = alice_and_bob(srv.addr).await;
    bob.vanish();
    // Wait until the server has noticed (the member is then held, not live).
    wait_until("the loss is noticed", || srv.hub.stats().connections == 1).await;
    for i in 0..5 {
        alice
            .send(json!({"type":"candidate","to":"bob","candidate":{"candidate":format!("c{i}")}}))
            .await;
    }
    let mut bob = Client::connect(srv.addr).await;
    bob.send(json!({"type":"join","room":"r","name":"bob","token":token}))
        .await;
    let joined = bob.recv().await;
    assert_eq!(joined["resumed"], true, "{joined}");
    assert_eq!(joined["token"], token);
    assert_eq!(joined["peers"], json!(["alice"]));
    for i in 0..5 {
        assert_eq!(
            bob.recv().await,
            json!({"type":"candidate","from":"alice","candidate":{"candidate":format!("c{i}")}})
        );
    }
    // alice saw nothing: the next thing she gets is bob's new offer.
    bob.send(json!({"type":"offer","to":"alice","sdp":"after resume"}))
        .await;
    assert_eq!(
        alice.recv().await,
        json!({"type":"offer","from":"bob","sdp":"after resume"})
    );
    // And the grace timer is gone: nothing happens when it would have fired.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(srv.hub.members("r"), ["alice", "bob"]);
}

#[tokio::test]
async fn resume_over_a_live_socket_replaces_it_with_4000() {
    let srv = start(config()).await;
    let (mut alice, mut bob, token) = alice_and_bob(srv.addr).await;
    let mut bob2 = Client::connect(srv.addr).await;
    bob2.send(json!({"type":"join","room":"r","name":"bob","token":token}))
        .await;
    assert_eq!(bob2.recv().await["resumed"], true);
    let close = bob.recv_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4000);
    bob2.send(json!({"type":"offer","to":"alice","sdp":"x"}))
        .await;
    assert_eq!(alice.recv().await["from"], "bob");
}

#[tokio::test]
async fn a_flooding_client_is_rate_limited_then_closed_with_1008() {
    let mut cfg = config();
    cfg.core.rate = 10;
    cfg.core.burst = 20;
    cfg.core.flood_close_after = Duration::from_secs(2);
    let srv = start(cfg).await;
    let (mut alice, bob, _) = alice_and_bob(srv.addr).await;
    let (mut tx, mut rx) = futures_util::StreamExt::split(bob.ws);
    let reader = tokio::spawn(async move {
        let mut rate_limited = 0;
        loop {
            match futures_util::StreamExt::next(&mut rx).await {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    if v["code"] == "rate-limited" {
                        rate_limited += 1;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return (rate_limited, frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                _ => return (rate_limited, None),
            }
        }
    });
    let t0 = Instant::now();
    // 50 messages a second against a limit of 10, for at most 20 s.
    for _ in 0..200 {
        let msg = json!({"type":"candidate","to":"alice","candidate":null}).to_string();
        for _ in 0..5 {
            if tx.send(Message::text(msg.clone())).await.is_err() {
                break;
            }
        }
        if reader.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (warnings, code) = reader.await.unwrap();
    assert_eq!(code, Some(1008));
    let flooded = t0.elapsed();
    assert!(
        flooded >= Duration::from_secs(2),
        "closed after {flooded:?}"
    );
    assert!(
        (1..=6).contains(&warnings),
        "{warnings} rate-limited errors"
    );
    // alice got the accepted relays, then bob's departure.
    let mut relayed = 0;
    loop {
        let m = alice.recv().await;
        if m["type"] == "peer-left" {
            break;
        }
        relayed += 1;
    }
    // The burst, then about 10 a second; never the 50 a second sent.
    let secs = flooded.as_secs_f64();
    assert!(
        relayed >= 20 && f64::from(relayed) <= 22.0 + 12.0 * secs,
        "{relayed} relayed in {secs} s"
    );
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001() {
    let srv = start(config()).await;
    let mut alice = Client::connect(srv.addr).await;
    let mut idle = Client::connect(srv.addr).await;
    alice.join("r", "alice").await;
    srv.stop.cancel();
    for c in [&mut alice, &mut idle] {
        let close = c.recv_close().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1001);
    }
    tokio::time::timeout(Duration::from_secs(10), srv.task)
        .await
        .expect("the server stops in time")
        .unwrap();
}

/// A raw HTTP/1.1 request; returns the status line and the rest.
async fn http(addr: std::net::SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (status, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
    (status.to_owned(), rest.to_owned())
}

fn upgrade_request(origin: Option<&str>) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{}\r\n",
        origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default()
    )
}

#[tokio::test]
async fn cross_site_upgrades_are_refused() {
    let mut cfg = config();
    cfg.allowed_origins = vec!["https://friend.example".into()];
    let srv = start(cfg).await;
    let (status, body) = http(srv.addr, &upgrade_request(Some("http://evil.example"))).await;
    assert!(status.contains(" 403 "), "{status}");
    assert!(body.contains("--public-url"));
    let own = format!("http://127.0.0.1:{}", srv.addr.port());
    for ok in [None, Some(own.as_str()), Some("https://friend.example")] {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(upgrade_request(ok).as_bytes()).await.unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        let status = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(status.starts_with("HTTP/1.1 101"), "{ok:?}: {status}");
    }
}

#[tokio::test]
async fn http_routes() {
    let srv = start(config()).await;
    let (status, _) = http(
        srv.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.contains(" 200 "), "{status}");
    for path in ["/", "/r/team-standup"] {
        let (status, rest) = http(
            srv.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status.contains(" 200 "), "{path}: {status}");
        let lower = rest.to_lowercase();
        assert!(lower.contains("content-security-policy: default-src 'self'"));
        assert!(lower.contains("content-type: text/html"));
        assert!(lower.contains("huddle"));
    }
    let (status, _) = http(
        srv.addr,
        "GET /nope.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.contains(" 404 "), "{status}");
}

#[tokio::test]
async fn page_config_tells_the_file_size_limit() {
    let get = "GET /config.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let srv = start(config()).await;
    let (status, rest) = http(srv.addr, get).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        rest.to_lowercase()
            .contains("content-type: application/json")
    );
    assert!(rest.ends_with(r#"{"maxFileSize":1073741824}"#), "{rest}");

    let mut cfg = config();
    cfg.web.max_file_size = 5_000_000;
    let srv = start(cfg).await;
    let (_, rest) = http(srv.addr, get).await;
    assert!(rest.ends_with(r#"{"maxFileSize":5000000}"#), "{rest}");
}

#[tokio::test]
async fn connections_over_the_limit_get_503() {
    let mut cfg = config();
    cfg.max_connections = 2;
    let srv = start(cfg).await;
    let a = Client::connect(srv.addr).await;
    let b = Client::connect(srv.addr).await;
    let (status, _) = http(srv.addr, &upgrade_request(None)).await;
    assert!(status.contains(" 503 "), "{status}");
    drop(a);
    // The slot comes back once the server has seen the connection end.
    let t0 = std::time::Instant::now();
    loop {
        let (status, _) = http(srv.addr, &upgrade_request(None)).await;
        if status.contains(" 101 ") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(b);
}

#[tokio::test]
async fn a_slow_consumer_is_cut_and_keeps_its_place() {
    let mut cfg = config();
    cfg.outbound_queue = 64;
    cfg.core.rate = 100_000;
    cfg.core.burst = 100_000;
    cfg.core.reconnect_grace = Duration::from_secs(30);
    // Room for what alice has in flight when bob is cut (under 20 frames).
    cfg.core.resume_queue = 60;
    cfg.core.resume_queue_bytes = 64 << 20;
    cfg.outbound_queue_bytes = 65 << 20;
    let srv = start(cfg).await;
    let (mut alice, bob, token) = alice_and_bob(srv.addr).await;
    // bob stops reading; alice sends far more than the socket buffers hold.
    let sdp = "x".repeat(60_000);
    let msg = json!({"type":"offer","to":"bob","sdp":sdp}).to_string();
    let t0 = Instant::now();
    while srv.hub.stats().connections == 2 {
        assert!(t0.elapsed() < Duration::from_secs(20), "never cut");
        for _ in 0..20 {
            alice.send_text(&msg).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // bob was cut but keeps his place: alice saw no peer-left, and bob can resume.
    assert_eq!(srv.hub.members("r"), ["alice", "bob"]);
    drop(bob);
    let mut bob = Client::connect(srv.addr).await;
    bob.send(json!({"type":"join","room":"r","name":"bob","token":token}))
        .await;
    let joined = bob.recv().await;
    assert_eq!(joined["resumed"], true, "{joined}");
    alice
        .send(json!({"type":"candidate","to":"bob","candidate":null}))
        .await;
    // First what was kept for bob while he was away, then the new message.
    loop {
        let m = bob.recv().await;
        assert_eq!(m["from"], "alice");
        if m["type"] == "candidate" {
            break;
        }
        assert_eq!(m["sdp"].as_str().map(str::len), Some(60_000));
    }
}

#[tokio::test]
async fn every_client_close_gets_a_close_reply_even_while_others_leave() {
    let srv = start(config()).await;
    let mut clients = Vec::new();
    for room in 0..4 {
        for i in 0..4 {
            let mut c = Client::connect(srv.addr).await;
            c.join(&format!("r{room}"), &format!("m{i}")).await;
            clients.push(c);
        }
    }
    // Everyone closes at once: each close makes peer-left for the others,
    // racing with their own close handshakes.
    for c in &mut clients {
        c.ws.close(None).await.unwrap();
    }
    let mut replies = 0;
    for mut c in clients {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), c.ws.next()).await {
                Ok(Some(Ok(Message::Close(_)))) => {
                    replies += 1;
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                _ => break,
            }
        }
    }
    assert_eq!(replies, 16, "clean close handshakes");
}

// ---- Hardening (issue 9): slow consumers, slowloris, closes, HTTP surface ----

use common::{RawWs, client_frame, status_line, tcp_from, upgrade_request_with};

/// A 60 KiB offer for `to`.
fn big_offer(to: &str) -> String {
    json!({"type":"offer","to":to,"sdp":"x".repeat(60_000)}).to_string()
}

/// Tries upgrades until one gets 101; returns how long that took.
async fn upgrade_until_101(addr: std::net::SocketAddr, within: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let status = status_line(addr, "127.0.0.1", &upgrade_request(None)).await;
        if status.contains(" 101 ") {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < within,
            "no 101 within {within:?} (last: {status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_member_that_never_reads_is_cut_and_its_slot_comes_back() {
    let mut cfg = config();
    cfg.max_connections = 2;
    cfg.core.rate = 100_000;
    cfg.core.burst = 100_000;
    let srv = start(cfg).await;
    let mut alice = Client::connect(srv.addr).await;
    alice.join("r", "alice").await;
    // bob joins on a socket with a tiny receive window and never reads again.
    let mut bob = RawWs::connect(srv.addr, Some(4096)).await;
    bob.send(json!({"type":"join","room":"r","name":"bob"}))
        .await;
    assert_eq!(alice.recv().await["type"], "peer-joined");
    // Both slots are taken.
    assert!(
        status_line(srv.addr, "127.0.0.1", &upgrade_request(None))
            .await
            .contains(" 503 ")
    );
    let offer = big_offer("bob");
    let t0 = Instant::now();
    while srv.hub.stats().connections == 2 {
        assert!(t0.elapsed() < Duration::from_secs(20), "bob was never cut");
        for _ in 0..10 {
            alice.send_text(&offer).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cut = t0.elapsed();
    // The slot comes back although bob still neither reads nor closes.
    let freed = upgrade_until_101(srv.addr, Duration::from_secs(5)).await;
    println!("bob cut after {cut:?}; a new upgrade got 101 {freed:?} later");
    drop(bob);
}

#[tokio::test]
async fn a_write_stuck_for_the_write_timeout_cuts_the_member() {
    let mut cfg = config();
    cfg.max_connections = 2;
    cfg.core.rate = 100_000;
    cfg.core.burst = 100_000;
    // Queue bounds far away, heartbeat out of the picture: only the write
    // timeout can notice bob.
    cfg.outbound_queue = 100_000;
    cfg.outbound_queue_bytes = 1 << 30;
    cfg.heartbeat_interval = Duration::from_secs(600);
    cfg.write_timeout = Duration::from_millis(500);
    let srv = start(cfg).await;
    let mut alice = Client::connect(srv.addr).await;
    alice.join("r", "alice").await;
    let mut bob = RawWs::connect(srv.addr, Some(4096)).await;
    bob.send(json!({"type":"join","room":"r","name":"bob"}))
        .await;
    assert_eq!(alice.recv().await["type"], "peer-joined");
    // 9 MB: more than the kernel buffers between them hold, far less than the queue.
    let offer = big_offer("bob");
    for _ in 0..150 {
        alice.send_text(&offer).await;
    }
    wait_until("bob is cut by the write timeout", || {
        srv.hub.stats().connections == 1
    })
    .await;
    upgrade_until_101(srv.addr, Duration::from_secs(5)).await;
    drop(bob);
}

/// Keeps sending text frames (every 20 ms) and never answers the close:
/// returns the server's close code and how long after the close frame the
/// server ended the TCP connection (FIN or reset).
async fn keep_sending_after_the_close(ws: &mut RawWs) -> (u16, Duration) {
    use tokio::io::AsyncWriteExt;
    let junk = client_frame(&json!({"type":"candidate","to":"alice","candidate":null}).to_string());
    let t0 = Instant::now();
    let mut closed: Option<(u16, Instant)> = None;
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no close, or the connection was never dropped"
        );
        // Writes may fail once the server is gone; that is the point.
        let _ = ws.tcp.write_all(&junk).await;
        match tokio::time::timeout(Duration::from_millis(20), ws.frame()).await {
            Ok(None) => {
                let (code, at) = closed.expect("a close frame before the connection ended");
                return (code, at.elapsed());
            }
            Ok(Some((8, payload))) => {
                assert!(payload.len() >= 2, "a close frame with a code");
                closed = Some((u16::from_be_bytes([payload[0], payload[1]]), Instant::now()));
            }
            Ok(Some(_)) | Err(_) => {}
        }
    }
}

#[tokio::test]
async fn a_replaced_connection_is_dropped_even_if_the_client_keeps_sending() {
    let srv = start(config()).await;
    let mut alice = Client::connect(srv.addr).await;
    alice.join("r", "alice").await;
    let mut bob = RawWs::connect(srv.addr, None).await;
    bob.send(json!({"type":"join","room":"r","name":"bob"}))
        .await;
    let token = bob.recv().await["token"].clone();
    assert_eq!(alice.recv().await["type"], "peer-joined");
    let mut bob2 = Client::connect(srv.addr).await;
    bob2.send(json!({"type":"join","room":"r","name":"bob","token":token}))
        .await;
    assert_eq!(bob2.recv().await["resumed"], true);
    let (code, dropped) = keep_sending_after_the_close(&mut bob).await;
    assert_eq!(code, 4000);
    println!("replaced connection dropped {dropped:?} after its close frame");
    assert!(
        dropped < Duration::from_secs(2),
        "dropped after {dropped:?}"
    );
    // The old socket's frames went nowhere: the new one is bob.
    bob2.send(json!({"type":"offer","to":"alice","sdp":"x"}))
        .await;
    assert_eq!(
        alice.recv().await,
        json!({"type":"offer","from":"bob","sdp":"x"})
    );
}

#[tokio::test]
async fn a_flooder_closed_with_1008_is_dropped_even_if_it_keeps_sending() {
    let mut cfg = config();
    cfg.core.rate = 10;
    cfg.core.burst = 20;
    cfg.core.flood_close_after = Duration::from_millis(300);
    let srv = start(cfg).await;
    let mut alice = Client::connect(srv.addr).await;
    alice.join("r", "alice").await;
    let mut bob = RawWs::connect(srv.addr, None).await;
    bob.send(json!({"type":"join","room":"r","name":"bob"}))
        .await;
    bob.recv().await;
    // Flood until the close comes; keep flooding after it.
    let (code, dropped) = keep_sending_after_the_close(&mut bob).await;
    assert_eq!(code, 1008);
    println!("flooder dropped {dropped:?} after its close frame");
    assert!(
        dropped < Duration::from_secs(2),
        "dropped after {dropped:?}"
    );
}

#[tokio::test]
async fn a_socket_that_never_joins_is_closed_with_1008() {
    let mut cfg = config();
    cfg.join_timeout = Duration::from_millis(300);
    let srv = start(cfg).await;
    let mut idle = Client::connect(srv.addr).await;
    let mut alice = Client::connect(srv.addr).await;
    // A failed join does not count.
    idle.send(json!({"type":"join","room":"r","name":""})).await;
    assert_eq!(idle.recv().await["code"], "invalid-name");
    alice.join("r", "alice").await;
    let close = idle.recv_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
    // alice joined in time and stays, well past the deadline.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut bob = Client::connect(srv.addr).await;
    bob.join("r", "bob").await;
    assert_eq!(
        alice.recv().await,
        json!({"type":"peer-joined","name":"bob"})
    );
    assert_eq!(srv.hub.stats().connections, 2);
}

#[tokio::test]
async fn a_half_sent_request_is_dropped_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let mut cfg = config();
    cfg.http_header_timeout = Duration::from_millis(300);
    let srv = start(cfg).await;
    let mut half = TcpStream::connect(srv.addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    let t0 = Instant::now();
    for s in [&mut half, &mut idle] {
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
            .await
            .expect("the server closes a connection that sends no request in time")
            .ok();
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "closed after {:?}",
        t0.elapsed()
    );
}

/// Opens `n` connections from `from` that each send half a request.
async fn half_sent(addr: std::net::SocketAddr, from: &str, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut s = tcp_from(addr, from, None).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        held.push(s);
    }
    held
}

#[tokio::test]
async fn connections_over_the_per_ip_cap_get_429() {
    let mut cfg = config();
    cfg.max_connections_per_ip = 3;
    let srv = start(cfg).await;
    let mut held = half_sent(srv.addr, "127.0.0.1", 3).await;
    let get = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (status, rest) = http(srv.addr, get).await;
    assert!(status.contains(" 429 "), "{status}");
    assert!(
        rest.to_lowercase()
            .contains("x-content-type-options: nosniff"),
        "{rest}"
    );
    // Another address is not affected: loopback has many.
    assert!(
        status_line(srv.addr, "127.0.0.2", get)
            .await
            .contains(" 200 ")
    );
    // A place comes back when a connection ends.
    held.pop();
    let t0 = Instant::now();
    while !status_line(srv.addr, "127.0.0.1", get)
        .await
        .contains(" 200 ")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A WebSocket keeps its place after the upgrade.
    let _ws = Client::connect(srv.addr).await;
    assert!(
        status_line(srv.addr, "127.0.0.1", get)
            .await
            .contains(" 429 ")
    );
}

#[tokio::test]
async fn five_hundred_half_sent_requests_do_not_delay_a_join() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let srv = start(config()).await;
    // 100 from each of five addresses: each at the default per-IP cap.
    let mut held = Vec::new();
    for i in 2..7 {
        held.extend(half_sent(srv.addr, &format!("127.0.0.{i}"), 100).await);
    }
    let t0 = Instant::now();
    let mut alice = Client::connect(srv.addr).await;
    alice.join("r", "alice").await;
    let took = t0.elapsed();
    println!("join with 500 half-sent requests open: {took:?}");
    assert!(took < Duration::from_secs(1), "join took {took:?}");
    drop(held);
}

#[tokio::test]
async fn sigterm_with_half_sent_requests_open_exits_within_the_shutdown_timeout() {
    use tokio::io::AsyncBufReadExt;
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(["--listen", "127.0.0.1:0", "--shutdown-timeout", "2s"])
        .args(["--max-connections-per-ip", "0"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the server starts")
        .unwrap()
        .unwrap();
    let addr: std::net::SocketAddr = first
        .strip_prefix("listening on http://")
        .expect("the listening line")
        .parse()
        .unwrap();
    let held = half_sent(addr, "127.0.0.1", 500).await;
    let mut alice = Client::connect(addr).await;
    alice.join("r", "alice").await;
    let t0 = Instant::now();
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server exits")
        .unwrap();
    let took = t0.elapsed();
    println!("exit {took:?} after SIGTERM with 500 half-sent requests");
    assert!(status.success(), "{status}");
    assert!(
        took < Duration::from_secs(3),
        "took {took:?} (shutdown timeout 2 s)"
    );
    drop(held);
}

#[tokio::test]
async fn metrics_on_the_main_listener_are_for_local_clients_only() {
    let srv = start(config()).await;
    let (status, _) = http(
        srv.addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.contains(" 200 "), "{status}");
    // A reverse proxy on the same machine forwarding someone's request.
    let (status, _) = http(
        srv.addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.7\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status.contains(" 404 "), "{status}");
}

fn has_security_headers(what: &str, head: &str) {
    let lower = head.to_lowercase();
    for h in [
        "content-security-policy: default-src 'self'",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "permissions-policy: camera=(self), microphone=(self), display-capture=(self), fullscreen=(self)",
    ] {
        assert!(lower.contains(h), "{what}: no {h} in\n{head}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let mut cfg = config();
    cfg.max_connections = 1;
    let srv = start(cfg).await;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    for path in ["/", "/healthz", "/metrics", "/nope.js", "/r/x"] {
        let (status, rest) = http(srv.addr, &get(path)).await;
        has_security_headers(&format!("{path} ({status})"), &rest);
        assert!(
            !rest.to_lowercase().contains("strict-transport-security"),
            "no HSTS without TLS"
        );
    }
    let (status, rest) = http(
        srv.addr,
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    has_security_headers(&status, &rest);
    let (status, rest) = http(srv.addr, &upgrade_request(Some("http://evil.example"))).await;
    assert!(status.contains(" 403 "));
    has_security_headers(&status, &rest);
    let _taken = Client::connect(srv.addr).await;
    let (status, rest) = http(srv.addr, &upgrade_request(None)).await;
    assert!(status.contains(" 503 "), "{status}");
    has_security_headers(&status, &rest);
    // gzip;q=0 in any spelling means no gzip.
    for refusal in ["gzip;q=0", "gzip; q=0.0", "*;q=0", "gzip;q=0, *"] {
        let (status, rest) = http(
            srv.addr,
            &format!("GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {refusal}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status.contains(" 200 "));
        assert!(
            !rest.to_lowercase().contains("content-encoding"),
            "{refusal}: {rest}"
        );
    }
}

/// A TLS client that trusts the certificate in `cert` (PEM).
fn tls_connector(cert: &std::path::Path) -> tokio_rustls::TlsConnector {
    let pem = std::fs::read(cert).unwrap();
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    use rustls_pki_types::pem::PemObject as _;
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

#[tokio::test]
async fn hsts_under_tls() {
    let (srv, cert) = common::start_tls("hsts").await;
    let connector = tls_connector(&cert);
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(
        text.contains("strict-transport-security: max-age="),
        "{text}"
    );
    has_security_headers("https /healthz", &text);
    common::remove_tls_dir("hsts");
}

#[tokio::test]
async fn a_rebinding_page_cannot_open_the_socket() {
    let mut cfg = config();
    cfg.public_url = Some(huddle::origin::Origin::parse("https://chat.example.com").unwrap());
    let srv = start(cfg).await;
    // evil.example now resolves to the server: Host and Origin agree.
    let rebinding =
        upgrade_request_with("evil.example:8080", "Origin: http://evil.example:8080\r\n");
    let (status, body) = http(srv.addr, &rebinding).await;
    assert!(status.contains(" 403 "), "{status}");
    assert!(body.contains("--public-url"), "{body}");
    let port = srv.addr.port();
    for (host, origin) in [
        (
            format!("127.0.0.1:{port}"),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            format!("localhost:{port}"),
            format!("http://localhost:{port}"),
        ),
        (
            "chat.example.com".to_owned(),
            "https://chat.example.com".to_owned(),
        ),
    ] {
        let req = upgrade_request_with(&host, &format!("Origin: {origin}\r\n"));
        let status = status_line(srv.addr, "127.0.0.1", &req).await;
        assert!(status.contains(" 101 "), "{origin}: {status}");
    }
}

#[tokio::test]
async fn tls_handshakes_beyond_the_cap_wait_their_turn() {
    let dir = std::env::temp_dir().join(format!("huddle-handshakes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = config();
    cfg.tls = Some(huddle::tls::TlsSource::SelfSigned {
        data_dir: dir.clone(),
    });
    cfg.max_tls_handshakes = 1;
    let srv = start(cfg).await;
    let connector = tls_connector(&dir.join("self-signed-cert.pem"));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    // A client that connects and says nothing holds the only handshake turn.
    let silent = TcpStream::connect(srv.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let handshake = tokio::spawn(async move { connector.connect(name, tcp).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !handshake.is_finished(),
        "the second handshake waits while the first holds the turn"
    );
    // The silent client goes: its turn passes on.
    drop(silent);
    tokio::time::timeout(Duration::from_secs(5), handshake)
        .await
        .expect("the waiting handshake finishes once the turn is free")
        .unwrap()
        .expect("and succeeds");
    let _ = std::fs::remove_dir_all(&dir);
}
