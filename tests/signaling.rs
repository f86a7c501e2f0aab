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
    assert!(body.contains("--allowed-origin"));
    for ok in [
        None,
        Some("http://127.0.0.1"),
        Some("https://friend.example"),
    ] {
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
