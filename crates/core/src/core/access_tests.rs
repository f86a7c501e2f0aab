//! Scenario tests of room access (protocol v1.1): host, password, lobby,
//! remove, ask-mute and operator tokens. The harness ([`World`]) checks the
//! protocol's invariants after every step, these the exact messages.

use std::time::Duration;

use serde_json::{Value, json};

use super::tests::{UNIX_NOW, World};
use super::*;
use crate::access::{AuthKey, Claims};
use crate::config::CoreConfig;

const SECRET: &[u8] = b"an operator secret of 32 bytes..";

fn world(f: impl FnOnce(&mut CoreConfig)) -> World {
    let mut c = CoreConfig::default();
    f(&mut c);
    World::new(c)
}

fn settings(password: Option<Option<&str>>, locked: Option<bool>) -> Value {
    let mut m = json!({"type":"room-settings"});
    if let Some(p) = password {
        m["password"] = json!(p);
    }
    if let Some(l) = locked {
        m["locked"] = json!(l);
    }
    m
}

fn join_msg(room: &str, name: &str) -> Value {
    json!({"type":"join","room":room,"name":name})
}

fn with_password(room: &str, name: &str, password: &str) -> Value {
    json!({"type":"join","room":room,"name":name,"password":password})
}

fn host_msg(name: &str) -> Value {
    json!({"type":"host","name":name})
}

fn state(locked: bool, protected: bool) -> Value {
    json!({"type":"room-settings","locked":locked,"protected":protected})
}

fn access(host: &str, locked: bool, protected: bool) -> Value {
    json!({"host":host,"locked":locked,"protected":protected})
}

/// alice hosts room r with bob in it.
fn alice_and_bob(w: &mut World) -> (ConnId, ConnId) {
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    (a, b)
}

// ---------------------------------------------------------------- host

#[test]
fn the_first_member_hosts_and_the_oldest_takes_over() {
    let mut w = World::default_world();
    let (a, b, c) = (w.connect(), w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    assert_eq!(w.access[&a], access("alice", false, false));
    w.join(b, "r", "bob", &["alice"]);
    w.join(c, "r", "carol", &["alice", "bob"]);
    assert_eq!(w.access[&c], access("alice", false, false));
    w.take(a);
    w.take(b);
    w.send(a, json!({"type":"leave"}));
    w.take(a);
    let gone = json!({"type":"peer-left","name":"alice"});
    // Everyone, the new host included, hears of it after the departure.
    w.expect(b, &[gone.clone(), host_msg("bob")]);
    w.expect(c, &[gone, host_msg("bob")]);
    // A newcomer is told who hosts now.
    let d = w.connect();
    w.join(d, "r", "dave", &["bob", "carol"]);
    assert_eq!(w.access[&d], access("bob", false, false));
}

#[test]
fn a_lost_host_stays_host_through_its_resume_and_hands_over_when_its_grace_ends() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    let token = w.membership_of(a).unwrap().2;
    w.lose(a);
    w.expect_nothing(b);
    // Back within the grace period: still host, nobody hears anything.
    let a2 = w.connect();
    w.send(
        a2,
        json!({"type":"join","room":"r","name":"alice","token":token}),
    );
    w.expect_joined(a2, "r", "alice", &["bob"], true);
    assert_eq!(w.access[&a2], access("alice", false, false));
    w.expect_nothing(b);
    // Lost again, for good this time.
    w.lose(a2);
    w.advance(Duration::from_secs(16));
    w.expect(
        b,
        &[json!({"type":"peer-left","name":"alice"}), host_msg("bob")],
    );
}

// ---------------------------------------------------------------- password

#[test]
fn a_password_keeps_out_whoever_lacks_it() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    w.send_prepared(a, settings(Some(Some("s3cret")), None));
    // Everyone, the host included, hears that the room is protected, never
    // the password.
    w.expect(a, &[state(false, true)]);
    w.expect(b, &[state(false, true)]);
    let c = w.connect();
    w.send_prepared(c, join_msg("r", "carol"));
    w.expect_error(c, "password-required");
    w.send_prepared(c, with_password("r", "carol", "guess"));
    w.expect_error(c, "wrong-password");
    w.expect_nothing(a);
    assert_eq!(w.core.members("r"), ["alice", "bob"]);
    w.send_prepared(c, with_password("r", "carol", "s3cret"));
    w.expect_joined(c, "r", "carol", &["alice", "bob"], false);
    assert_eq!(w.access[&c], access("alice", false, true));
    w.take(a);
    w.take(b);
    // Cleared: anyone may join again; members already inside stayed.
    w.send_prepared(a, settings(Some(None), None));
    for conn in [a, b, c] {
        w.expect(conn, &[state(false, false)]);
    }
    let d = w.connect();
    w.join(d, "r", "dave", &["alice", "bob", "carol"]);
    assert_eq!(w.access[&d], access("alice", false, false));
}

#[test]
fn the_password_is_checked_before_the_name_the_lobby_and_the_size() {
    let mut w = world(|c| c.max_room_size = 2);
    let (a, _b) = alice_and_bob(&mut w);
    w.send_prepared(a, settings(Some(Some("pw")), Some(true)));
    let c = w.connect();
    // Full, locked, and the name taken: an outsider learns only that it
    // needs the password.
    w.send_prepared(c, join_msg("r", "bob"));
    w.expect_error(c, "password-required");
    w.send_prepared(c, with_password("r", "BOB", "no"));
    w.expect_error(c, "wrong-password");
    w.send_prepared(c, with_password("r", "BOB", "pw"));
    w.expect_error(c, "name-taken");
    // Values come first of all.
    w.send_prepared(c, with_password("r", "", "pw"));
    w.expect_error(c, "invalid-name");
}

#[test]
fn a_check_against_an_old_password_does_not_count() {
    let mut w = World::default_world();
    let (a, _b) = alice_and_bob(&mut w);
    w.send_prepared(a, settings(Some(Some("one")), None));
    let c = w.connect();
    let text = with_password("r", "carol", "one").to_string();
    let (generation, _) = w
        .core
        .password_to_check(&protocol::parse(&text).unwrap())
        .unwrap();
    // The host changes the password while the shell checks the old one.
    w.send_prepared(a, settings(Some(Some("two")), None));
    let prepared = Prepared {
        password_hash: None,
        password_check: Some(PasswordCheck {
            generation,
            matches: true,
        }),
    };
    w.core
        .message_with(c, protocol::parse(&text), prepared, w.now);
    w.flush(c);
    w.expect_error(c, "wrong-password");
    // Without the shell's check at all: the same.
    w.send(c, with_password("r", "carol", "two"));
    w.expect_error(c, "wrong-password");
}

#[test]
fn room_settings_are_the_hosts_and_well_formed() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    w.send_prepared(b, settings(Some(Some("x")), None));
    w.expect_error(b, "not-host");
    w.send_prepared(b, settings(None, Some(true)));
    w.expect_error(b, "not-host");
    w.send(a, json!({"type":"room-settings"}));
    w.expect_error(a, "bad-message");
    w.send(a, json!({"type":"room-settings","password":""}));
    w.expect_error(a, "bad-message");
    // A password the shell did not hash cannot be set.
    w.send(a, json!({"type":"room-settings","password":"x"}));
    w.expect_error(a, "unavailable");
    let outsider = w.connect();
    w.send_prepared(outsider, settings(None, Some(true)));
    w.expect_error(outsider, "not-joined");
    w.expect_nothing(b);
    assert_eq!(w.core.stats().errors(ErrorCode::NotHost), 2);
    // A resume needs no password.
    w.send_prepared(a, settings(Some(Some("pw")), None));
    let token = w.membership_of(b).unwrap().2;
    w.lose(b);
    let b2 = w.connect();
    w.send_prepared(
        b2,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    w.expect_joined(b2, "r", "bob", &["alice"], true);
    assert_eq!(w.access[&b2], access("alice", false, true));
}

// ---------------------------------------------------------------- lobby

#[test]
fn a_locked_room_makes_joiners_wait_for_the_host() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    w.send(a, settings(None, Some(true)));
    w.expect(a, &[state(true, false)]);
    w.expect(b, &[state(true, false)]);
    let (c, d, e) = (w.connect(), w.connect(), w.connect());
    w.send(c, join_msg("r", "carol"));
    w.expect(c, &[json!({"type":"waiting","room":"r"})]);
    w.expect(a, &[json!({"type":"knock","name":"carol"})]);
    w.expect_nothing(b);
    w.send(d, join_msg("r", "dave"));
    w.expect(d, &[json!({"type":"waiting","room":"r"})]);
    w.send(e, join_msg("r", "eve"));
    w.take(e);
    w.take(a);
    assert_eq!(w.core.members("r"), ["alice", "bob"]);
    // Only the host decides.
    w.send(b, json!({"type":"admit","name":"carol"}));
    w.expect_error(b, "not-host");
    // Admitted: carol gets joined, the others peer-joined; no knock-gone.
    w.send(a, json!({"type":"admit","name":"Carol"}));
    w.expect_joined(c, "r", "carol", &["alice", "bob"], false);
    assert_eq!(w.access[&c], access("alice", true, false));
    w.expect(a, &[json!({"type":"peer-joined","name":"carol"})]);
    w.expect(b, &[json!({"type":"peer-joined","name":"carol"})]);
    // Denied: dave is told; the host gets nothing more.
    w.send(a, json!({"type":"deny","name":"dave"}));
    w.expect_error(d, "denied");
    w.expect_nothing(a);
    // Gave up: eve gets left, the host knock-gone.
    w.send(e, json!({"type":"leave"}));
    w.expect(e, &[json!({"type":"left","room":"r"})]);
    w.expect(a, &[json!({"type":"knock-gone","name":"eve"})]);
    // Nobody waits now.
    for name in ["dave", "eve", "zed"] {
        w.send(a, json!({"type":"admit","name":name}));
        w.expect_error(a, "unknown-peer");
    }
    // A waiting joiner that closes or is lost stops waiting too.
    w.send(d, join_msg("r", "dave"));
    w.send(e, join_msg("r", "eve"));
    w.take(a);
    w.close(d);
    w.expect(a, &[json!({"type":"knock-gone","name":"dave"})]);
    w.lose(e);
    w.expect(a, &[json!({"type":"knock-gone","name":"eve"})]);
    assert_eq!(w.core.stats().knocks, 5);
}

#[test]
fn waiting_joiners_cannot_relay_or_act() {
    let mut w = World::default_world();
    let (a, _b) = alice_and_bob(&mut w);
    w.send(a, settings(None, Some(true)));
    let c = w.connect();
    w.send(c, join_msg("r", "carol"));
    w.take(c);
    w.send(c, json!({"type":"offer","to":"alice","sdp":"v=0"}));
    w.expect_error(c, "not-joined");
    w.send(c, json!({"type":"admit","name":"carol"}));
    w.expect_error(c, "not-joined");
    w.send(c, settings(None, Some(false)));
    w.expect_error(c, "not-joined");
}

#[test]
fn knocking_names_are_unique_with_the_members() {
    let mut w = World::default_world();
    let (a, _b) = alice_and_bob(&mut w);
    w.send(a, settings(None, Some(true)));
    let (c, c2, c3) = (w.connect(), w.connect(), w.connect());
    w.send(c, join_msg("r", "carol"));
    w.take(c);
    w.take(a);
    // Two knocks with one name (as names are compared).
    w.send(c2, join_msg("r", "CAROL"));
    w.expect_error(c2, "name-taken");
    // A member's name.
    w.send(c3, join_msg("r", "Bob"));
    w.expect_error(c3, "name-taken");
    w.expect_nothing(a);
    // A knocker may knock again under another name: one knock-gone, one knock.
    w.send(c, join_msg("r", "caroline"));
    w.expect(c, &[json!({"type":"waiting","room":"r"})]);
    w.expect(
        a,
        &[
            json!({"type":"knock-gone","name":"carol"}),
            json!({"type":"knock","name":"caroline"}),
        ],
    );
    // Now "carol" is free.
    w.send(c2, join_msg("r", "carol"));
    w.expect(c2, &[json!({"type":"waiting","room":"r"})]);
}

#[test]
fn the_host_leaving_while_someone_knocks_hands_the_knock_over() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    w.send(a, settings(None, Some(true)));
    w.take(b);
    let c = w.connect();
    w.send(c, join_msg("r", "carol"));
    w.take(c);
    w.take(a);
    w.close(a);
    // bob hosts now and learns who waits.
    w.expect(
        b,
        &[
            json!({"type":"peer-left","name":"alice"}),
            host_msg("bob"),
            json!({"type":"knock","name":"carol"}),
        ],
    );
    w.send(b, json!({"type":"admit","name":"carol"}));
    w.expect_joined(c, "r", "carol", &["bob"], false);
    assert_eq!(w.access[&c], access("bob", true, false));
}

#[test]
fn a_lost_host_learns_of_knocks_when_it_comes_back() {
    let mut w = World::default_world();
    let (a, _b) = alice_and_bob(&mut w);
    w.send(a, settings(None, Some(true)));
    let token = w.membership_of(a).unwrap().2;
    w.lose(a);
    let c = w.connect();
    w.send(c, join_msg("r", "carol"));
    w.expect(c, &[json!({"type":"waiting","room":"r"})]);
    let a2 = w.connect();
    w.send(
        a2,
        json!({"type":"join","room":"r","name":"alice","token":token}),
    );
    w.expect_joined(a2, "r", "alice", &["bob"], true);
    w.expect(a2, &[json!({"type":"knock","name":"carol"})]);
}

#[test]
fn admitting_after_the_knocker_left_or_past_the_size_is_refused() {
    let mut w = world(|c| c.max_room_size = 2);
    let (a, b) = alice_and_bob(&mut w);
    w.send(a, settings(None, Some(true)));
    w.take(b);
    let (c, d) = (w.connect(), w.connect());
    // A locked room lets joiners wait even when it is full.
    w.send(c, join_msg("r", "carol"));
    w.expect(c, &[json!({"type":"waiting","room":"r"})]);
    w.send(d, join_msg("r", "dave"));
    w.take(d);
    w.take(a);
    w.send(a, json!({"type":"admit","name":"carol"}));
    w.expect_error(a, "room-full");
    w.expect_nothing(c);
    // carol still waits; dave gives up, then the host admits him.
    w.send(d, json!({"type":"leave"}));
    w.take(d);
    w.expect(a, &[json!({"type":"knock-gone","name":"dave"})]);
    w.send(a, json!({"type":"admit","name":"dave"}));
    w.expect_error(a, "unknown-peer");
    // bob leaves: now carol fits.
    w.send(b, json!({"type":"leave"}));
    w.take(a);
    w.send(a, json!({"type":"admit","name":"carol"}));
    w.expect_joined(c, "r", "carol", &["alice"], false);
}

#[test]
fn unlocking_lets_waiters_in_in_order_as_far_as_the_size_allows() {
    let mut w = world(|c| c.max_room_size = 4);
    let (a, b) = alice_and_bob(&mut w);
    w.send(a, settings(None, Some(true)));
    w.take(b);
    let waiters: Vec<ConnId> = (0..3).map(|_| w.connect()).collect();
    for (conn, name) in waiters.iter().zip(["carol", "dave", "eve"]) {
        w.send(*conn, join_msg("r", name));
        w.take(*conn);
    }
    w.take(a);
    w.send(a, settings(None, Some(false)));
    w.expect(
        a,
        &[
            state(false, false),
            json!({"type":"peer-joined","name":"carol"}),
            json!({"type":"peer-joined","name":"dave"}),
            json!({"type":"knock-gone","name":"eve"}),
        ],
    );
    w.expect_joined(waiters[0], "r", "carol", &["alice", "bob"], false);
    w.expect_joined(waiters[1], "r", "dave", &["alice", "bob", "carol"], false);
    assert_eq!(w.access[&waiters[1]], access("alice", false, false));
    w.expect_error(waiters[2], "room-full");
    assert_eq!(w.core.members("r"), ["alice", "bob", "carol", "dave"]);
}

#[test]
fn when_the_last_member_leaves_the_waiters_are_denied() {
    let mut w = World::default_world();
    let a = w.connect();
    w.join(a, "r", "alice", &[]);
    w.send(a, settings(None, Some(true)));
    w.take(a);
    let c = w.connect();
    w.send(c, join_msg("r", "carol"));
    w.take(c);
    w.send(a, json!({"type":"leave"}));
    w.expect_error(c, "denied");
    assert_eq!(w.core.room_count(), 0);
    // The room is new again: carol joins it and hosts it, unlocked.
    w.join(c, "r", "carol", &[]);
    assert_eq!(w.access[&c], access("carol", false, false));
}

#[test]
fn joining_a_locked_room_leaves_the_old_room_first() {
    let mut w = World::default_world();
    let (a, _b) = alice_and_bob(&mut w);
    w.send(a, settings(None, Some(true)));
    w.take(a);
    let (x, y) = (w.connect(), w.connect());
    w.join(x, "other", "xena", &[]);
    w.join(y, "other", "yuri", &["xena"]);
    w.take(x);
    w.send(y, join_msg("r", "yuri"));
    w.expect(y, &[json!({"type":"waiting","room":"r"})]);
    w.expect(x, &[json!({"type":"peer-left","name":"yuri"})]);
    w.expect(a, &[json!({"type":"knock","name":"yuri"})]);
}

#[test]
fn the_lobby_has_a_size_limit() {
    let mut w = world(|c| c.max_lobby_size = 2);
    let (a, _b) = alice_and_bob(&mut w);
    w.send(a, settings(None, Some(true)));
    for name in ["c1", "c2"] {
        let c = w.connect();
        w.send(c, join_msg("r", name));
        w.expect(c, &[json!({"type":"waiting","room":"r"})]);
    }
    let c = w.connect();
    w.send(c, join_msg("r", "c3"));
    w.expect_error(c, "room-full");
}

// ---------------------------------------------------------------- remove, ask-mute

#[test]
fn the_host_removes_a_member() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    let c = w.connect();
    w.join(c, "r", "carol", &["alice", "bob"]);
    w.take(a);
    w.take(b);
    let token = w.membership_of(b).unwrap().2;
    w.send(a, json!({"type":"remove","name":"BOB"}));
    w.expect(b, &[json!({"type":"removed","by":"alice"})]);
    assert_eq!(w.closed_with(b), Some(close::REMOVED));
    let gone = json!({"type":"peer-left","name":"bob"});
    w.expect(a, std::slice::from_ref(&gone));
    w.expect(c, &[gone]);
    assert_eq!(w.core.members("r"), ["alice", "carol"]);
    assert_eq!(w.core.stats().leaves(Departure::Removed), 1);
    // Its token does not bring it back.
    let b2 = w.connect();
    w.send(
        b2,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    w.expect(b2, &[json!({"type":"removed","by":"alice"})]);
    assert_eq!(w.closed_with(b2), Some(close::REMOVED));
    w.expect_nothing(a);
    assert_eq!(w.core.members("r"), ["alice", "carol"]);
}

#[test]
fn a_member_removed_while_lost_does_not_resume() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    let token = w.membership_of(b).unwrap().2;
    w.lose(b);
    w.send(a, json!({"type":"remove","name":"bob"}));
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
    assert_eq!(w.core.held_count(), 0);
    let b2 = w.connect();
    w.send(
        b2,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    w.expect(b2, &[json!({"type":"removed","by":"alice"})]);
    assert_eq!(w.closed_with(b2), Some(close::REMOVED));
    // After the grace period the name is free for anyone, as after a leave.
    w.advance(Duration::from_secs(16));
    let b3 = w.connect();
    w.send(
        b3,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    w.expect_joined(b3, "r", "bob", &["alice"], false);
}

#[test]
fn host_actions_check_self_then_host_then_name() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    for action in ["remove", "ask-mute", "admit", "deny"] {
        // Naming oneself is bad-message, for the host and for others alike.
        w.send(a, json!({"type":action,"name":" Alice"}));
        w.expect_error(a, "bad-message");
        w.send(b, json!({"type":action,"name":"bob"}));
        w.expect_error(b, "bad-message");
        w.send(b, json!({"type":action,"name":"alice"}));
        w.expect_error(b, "not-host");
        w.send(a, json!({"type":action,"name":"nobody"}));
        w.expect_error(a, "unknown-peer");
        let outsider = w.connect();
        w.send(outsider, json!({"type":action,"name":"alice"}));
        w.expect_error(outsider, "not-joined");
    }
    assert_eq!(w.core.members("r"), ["alice", "bob"]);
}

#[test]
fn the_host_asks_a_member_to_mute() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    w.send(a, json!({"type":"ask-mute","name":"bob"}));
    w.expect(b, &[json!({"type":"ask-mute","by":"alice"})]);
    w.expect_nothing(a);
    assert_eq!(w.core.members("r"), ["alice", "bob"]);
}

// ---------------------------------------------------------------- operator tokens

fn key() -> AuthKey {
    AuthKey::new(SECRET).unwrap()
}

fn token(room: &str, name: Option<&str>, host: bool, exp: u64) -> String {
    key().mint(&Claims {
        room: room.into(),
        exp,
        name: name.map(Into::into),
        host,
        nbf: None,
    })
}

fn with_access(room: &str, name: &str, access: &str) -> Value {
    json!({"type":"join","room":room,"name":name,"access":access})
}

fn authed() -> World {
    world(|c| c.auth = Some(key()))
}

#[test]
fn with_a_secret_every_join_needs_a_valid_token() {
    let mut w = authed();
    let later = UNIX_NOW + 3600;
    let c = w.connect();
    w.send(c, join_msg("r", "carol"));
    w.expect_error(c, "unauthorized");
    for bad in [
        token("r", None, false, UNIX_NOW),  // expired
        token("other", None, false, later), // another room
        AuthKey::new(b"not the operator's secret, forged")
            .unwrap()
            .mint(&Claims {
                room: "r".into(),
                exp: later,
                name: None,
                host: false,
                nbf: None,
            }),
        "not.a.jwt".into(),
        token("r", Some("dave"), false, later), // another name
    ] {
        w.send(c, with_access("r", "carol", &bad));
        w.expect_error(c, "unauthorized");
    }
    // Values are checked first.
    w.send(c, with_access("r", "", "x"));
    w.expect_error(c, "invalid-name");
    assert_eq!(w.core.room_count(), 0);
    w.send(
        c,
        with_access("r", "carol", &token("r", None, false, later)),
    );
    w.expect_joined(c, "r", "carol", &[], false);
    let d = w.connect();
    w.send(c, json!({"type":"leave"}));
    w.send(
        d,
        with_access("any", "dave", &token("*", None, false, later)),
    );
    w.expect_joined(d, "any", "dave", &[], false);
}

#[test]
fn the_token_is_checked_before_the_password() {
    let mut w = authed();
    let later = UNIX_NOW + 3600;
    let a = w.connect();
    w.send(
        a,
        with_access("r", "alice", &token("r", None, false, later)),
    );
    w.take(a);
    w.send_prepared(a, settings(Some(Some("pw")), None));
    let c = w.connect();
    w.send_prepared(c, join_msg("r", "carol"));
    w.expect_error(c, "unauthorized");
    w.send_prepared(
        c,
        json!({"type":"join","room":"r","name":"carol","access":token("r", None, false, later)}),
    );
    w.expect_error(c, "password-required");
}

#[test]
fn a_name_claim_fixes_the_name_in_its_own_spelling() {
    let mut w = authed();
    let c = w.connect();
    let t = token("r", Some("Åsa Berg"), false, UNIX_NOW + 60);
    w.send(c, with_access("r", " åsa berg ", &t));
    w.expect_joined(c, "r", "Åsa Berg", &[], false);
}

#[test]
fn a_host_token_makes_its_holder_host_and_skips_the_lobby() {
    let mut w = authed();
    let later = UNIX_NOW + 3600;
    let (a, b, o) = (w.connect(), w.connect(), w.connect());
    w.send(
        a,
        with_access("r", "alice", &token("r", None, false, later)),
    );
    w.take(a);
    w.send(b, with_access("r", "bob", &token("r", None, false, later)));
    w.take(b);
    w.take(a);
    w.send(a, settings(None, Some(true)));
    w.take(a);
    w.take(b);
    let k = w.connect();
    w.send(k, with_access("r", "kim", &token("r", None, false, later)));
    w.expect(k, &[json!({"type":"waiting","room":"r"})]);
    w.take(a);
    // The operator's host: in at once, host, and told of the knock.
    w.send(
        o,
        with_access("r", "olga", &token("r", Some("olga"), true, later)),
    );
    w.expect_joined(o, "r", "olga", &["alice", "bob"], false);
    assert_eq!(w.access[&o], access("olga", true, false));
    w.expect(o, &[json!({"type":"knock","name":"kim"})]);
    for conn in [a, b] {
        w.expect(
            conn,
            &[
                json!({"type":"peer-joined","name":"olga"}),
                host_msg("olga"),
            ],
        );
    }
    // alice is not host any more.
    w.send(a, json!({"type":"admit","name":"kim"}));
    w.expect_error(a, "not-host");
    w.send(o, json!({"type":"admit","name":"kim"}));
    w.expect_joined(k, "r", "kim", &["alice", "bob", "olga"], false);
}

#[test]
fn a_resume_needs_no_token_again() {
    let mut w = authed();
    let a = w.connect();
    w.send(
        a,
        with_access("r", "alice", &token("r", None, false, UNIX_NOW + 60)),
    );
    let resume = w.take(a)[0]["token"].as_str().unwrap().to_owned();
    w.lose(a);
    let a2 = w.connect();
    w.send(
        a2,
        json!({"type":"join","room":"r","name":"alice","token":resume}),
    );
    w.expect_joined(a2, "r", "alice", &[], true);
}

#[test]
fn without_a_secret_access_is_ignored() {
    let mut w = World::default_world();
    let c = w.connect();
    w.send(c, with_access("r", "carol", "whatever"));
    w.expect_joined(c, "r", "carol", &[], false);
}

#[test]
fn a_removed_token_from_a_member_elsewhere_is_just_not_a_resume() {
    let mut w = World::default_world();
    let (a, b) = alice_and_bob(&mut w);
    let token = w.membership_of(b).unwrap().2;
    w.lose(b);
    w.send(a, json!({"type":"remove","name":"bob"}));
    w.take(a);
    // Someone in another room brings bob's token: no removal, no close; a
    // fresh join (a room change), as with any token that matches nobody.
    let x = w.connect();
    w.join(x, "other", "xena", &[]);
    w.send(
        x,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    w.expect_joined(x, "r", "bob", &["alice"], false);
    assert_eq!(w.closed_with(x), None);
    assert_eq!(w.core.room_count(), 1, "the other room went with xena");
}
