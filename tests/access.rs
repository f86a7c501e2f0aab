//! Room access (protocol v1.1) over real WebSockets on 127.0.0.1:0: room
//! passwords hashed with Argon2id off the hub's lock, the slow-down of
//! repeated wrong passwords, the lobby, remove (close 4001), and operator
//! tokens minted by the `huddle token` command.

mod common;

use std::time::Duration;

use common::{Client, alice_and_bob, config, start};
use huddle::access::AuthKey;
use serde_json::{Value, json};
use tokio::time::Instant;

const SECRET: &str = "an operator secret, 32 bytes or more";

fn join_with(room: &str, name: &str, extra: Value) -> Value {
    let mut m = json!({"type":"join","room":room,"name":name});
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_password_is_hashed_checked_and_slows_down_guessing() {
    let mut cfg = config();
    cfg.wrong_password_delay = Duration::from_millis(1500);
    let srv = start(cfg).await;
    let (mut alice, mut bob, _) = alice_and_bob(srv.addr).await;
    alice
        .send(json!({"type":"room-settings","password":"correct horse"}))
        .await;
    let note = json!({"type":"room-settings","locked":false,"protected":true});
    assert_eq!(alice.recv().await, note);
    assert_eq!(bob.recv().await, note);

    let mut carol = Client::connect(srv.addr).await;
    carol.send(join_with("r", "carol", json!({}))).await;
    assert_eq!(carol.recv().await["code"], "password-required");
    // A first wrong password is answered at once (a typo)...
    carol
        .send(join_with("r", "carol", json!({"password":"battery"})))
        .await;
    assert_eq!(carol.recv().await["code"], "wrong-password");
    // ...a second one only after the delay, while the rest of the server
    // goes on: alice's relay reaches bob before carol hears back.
    let asked = Instant::now();
    carol
        .send(join_with("r", "carol", json!({"password":"staple"})))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    alice
        .send(json!({"type":"offer","to":"bob","sdp":"v=0 meanwhile"}))
        .await;
    assert_eq!(bob.recv().await["sdp"], "v=0 meanwhile");
    assert_eq!(carol.recv().await["code"], "wrong-password");
    assert!(
        asked.elapsed() >= Duration::from_millis(1500),
        "the second wrong password was answered after {:?}",
        asked.elapsed()
    );
    // The right one gets in, and the room is shown as protected.
    carol
        .send(join_with("r", "carol", json!({"password":"correct horse"})))
        .await;
    let joined = carol.recv().await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["protected"], true);
    assert_eq!(joined["host"], "alice");
    assert_eq!(joined["peers"], json!(["alice", "bob"]));

    let m = huddle::metrics::render(&srv.hub.metrics());
    assert!(m.contains("huddle_password_hashes_total 1"), "{m}");
    assert!(
        m.contains("huddle_password_checks_total{result=\"wrong\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("huddle_password_checks_total{result=\"right\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn non_hosts_cannot_set_a_password_and_nothing_is_hashed_for_them() {
    let srv = start(config()).await;
    let (_alice, mut bob, _) = alice_and_bob(srv.addr).await;
    bob.send(json!({"type":"room-settings","password":"mine"}))
        .await;
    assert_eq!(bob.recv().await["code"], "not-host");
    let m = huddle::metrics::render(&srv.hub.metrics());
    assert!(m.contains("huddle_password_hashes_total 0"), "{m}");
}

#[tokio::test]
async fn the_lobby_admits_and_denies_over_sockets() {
    let srv = start(config()).await;
    let (mut alice, mut bob, _) = alice_and_bob(srv.addr).await;
    alice
        .send(json!({"type":"room-settings","locked":true}))
        .await;
    assert_eq!(alice.recv().await["locked"], true);
    assert_eq!(bob.recv().await["locked"], true);
    let mut carol = Client::connect(srv.addr).await;
    carol.send(join_with("r", "carol", json!({}))).await;
    assert_eq!(carol.recv().await, json!({"type":"waiting","room":"r"}));
    assert_eq!(alice.recv().await, json!({"type":"knock","name":"carol"}));
    alice.send(json!({"type":"admit","name":"carol"})).await;
    let joined = carol.recv().await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["locked"], true);
    assert_eq!(
        bob.recv().await,
        json!({"type":"peer-joined","name":"carol"})
    );
    assert_eq!(
        alice.recv().await,
        json!({"type":"peer-joined","name":"carol"})
    );

    let mut dave = Client::connect(srv.addr).await;
    dave.send(join_with("r", "dave", json!({}))).await;
    assert_eq!(dave.recv().await["type"], "waiting");
    assert_eq!(alice.recv().await["type"], "knock");
    alice.send(json!({"type":"deny","name":"dave"})).await;
    assert_eq!(dave.recv().await["code"], "denied");
    // Denied is not the end of the connection: dave may go elsewhere.
    dave.join("elsewhere", "dave").await;
    assert_eq!(srv.hub.members("r"), ["alice", "bob", "carol"]);
}

#[tokio::test]
async fn a_removed_member_is_closed_with_4001_and_cannot_resume() {
    let srv = start(config()).await;
    let (mut alice, mut bob, token) = alice_and_bob(srv.addr).await;
    alice.send(json!({"type":"remove","name":"bob"})).await;
    assert_eq!(bob.recv().await, json!({"type":"removed","by":"alice"}));
    let close = bob.recv_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4001);
    assert_eq!(alice.recv().await, json!({"type":"peer-left","name":"bob"}));
    let mut again = Client::connect(srv.addr).await;
    again
        .send(json!({"type":"join","room":"r","name":"bob","token":token}))
        .await;
    assert_eq!(again.recv().await, json!({"type":"removed","by":"alice"}));
    assert_eq!(u16::from(again.recv_close().await.unwrap().code), 4001);
    assert_eq!(srv.hub.members("r"), ["alice"]);
}

/// `huddle token …` with the secret in the environment, as an operator runs it.
fn huddle_token(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
        .arg("token")
        .args(args)
        .env("HUDDLE_AUTH_SECRET", SECRET)
        .output()
        .expect("huddle token runs")
}

fn minted(args: &[&str]) -> String {
    let out = huddle_token(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn operator_tokens_from_huddle_token_let_in_and_nothing_else_does() {
    let mut cfg = config();
    cfg.core.auth = Some(AuthKey::new(SECRET.as_bytes()).unwrap());
    let srv = start(cfg).await;

    let host = minted(&["--room", "team", "--name", "Olga", "--host", "--ttl", "10m"]);
    let guest = minted(&["--room", "team"]);
    let other_room = minted(&["--room", "other"]);
    let forged = AuthKey::new(b"somebody else's secret, 32 bytes")
        .unwrap()
        .mint(&huddle::access::Claims {
            room: "team".into(),
            exp: u64::MAX / 2,
            name: None,
            host: false,
            nbf: None,
        });

    let mut c = Client::connect(srv.addr).await;
    for extra in [
        json!({}),
        json!({"access": other_room}),
        json!({"access": forged}),
        json!({"access": "garbage"}),
        json!({"access": host}), // for the name Olga
    ] {
        c.send(join_with("team", "mallory", extra)).await;
        let got = c.recv().await;
        assert_eq!(got["code"], "unauthorized", "{got}");
        assert!(!got["message"].as_str().unwrap().contains(SECRET));
    }
    let mut guest_c = Client::connect(srv.addr).await;
    guest_c
        .send(join_with("team", "gus", json!({"access": guest})))
        .await;
    assert_eq!(guest_c.recv().await["host"], "gus");
    let mut olga = Client::connect(srv.addr).await;
    olga.send(join_with("team", "olga", json!({"access": host})))
        .await;
    let joined = olga.recv().await;
    assert_eq!(joined["name"], "Olga", "the claim's spelling");
    assert_eq!(joined["host"], "Olga");
    assert_eq!(
        guest_c.recv().await,
        json!({"type":"peer-joined","name":"Olga"})
    );
    assert_eq!(guest_c.recv().await, json!({"type":"host","name":"Olga"}));
}

#[test]
fn huddle_token_checks_its_input_and_prints_links() {
    let link = minted(&["--room", "café", "--url", "https://meet.example.org/"]);
    let (base, token) = link.split_once("?access=").unwrap();
    assert_eq!(base, "https://meet.example.org/r/caf%C3%A9");
    let key = AuthKey::new(SECRET.as_bytes()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = key.check(token, "café", now).unwrap();
    assert!(
        claims.exp > now + 3500 && claims.exp <= now + 3600,
        "default ttl 1h"
    );
    for bad in [
        &["--room", "a b"][..],
        &["--room", "r", "--name", ""],
        &["--room", "r", "--ttl", "0s"],
        &["--room", "*", "--url", "https://x"],
    ] {
        let out = huddle_token(bad);
        assert!(!out.status.success(), "{bad:?}");
        assert!(!out.stderr.is_empty());
    }
    let weak = std::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(["token", "--room", "r", "--auth-secret", "short"])
        .output()
        .unwrap();
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("32 bytes"));
}
