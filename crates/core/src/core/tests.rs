//! Scenario tests of the core: stories of members joining, relaying and
//! leaving, with the exact messages each one receives, and the protocol's
//! invariants checked after every step by [`World`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::config::CoreConfig;

/// The wall clock the tests' core sees.
pub(crate) const UNIX_NOW: u64 = 1_800_000_000;

/// Deterministic tokens: `tok-0000…`, 22+ characters like real ones.
pub(crate) struct CountingTokens(pub u64);

impl Env for CountingTokens {
    fn token(&mut self) -> String {
        self.0 += 1;
        format!("tok-{:020}", self.0)
    }
    fn unix_time(&mut self) -> u64 {
        UNIX_NOW
    }
}

/// What the harness believes one connection knows, from what it received.
#[derive(Default, Debug)]
struct View {
    room: Option<String>,
    name: Option<String>,
    /// Lowercased names this connection has been told about.
    known: HashSet<String>,
    /// The host, as this connection was last told.
    host: Option<String>,
    /// Keys of the waiting joiners this connection (as host) was told of.
    knocks: HashSet<String>,
}

/// The core plus every connection's inbox, with invariant checks.
pub(crate) struct World {
    pub core: Core,
    pub now: Instant,
    next_conn: ConnId,
    inbox: HashMap<ConnId, Vec<Value>>,
    closes: HashMap<ConnId, u16>,
    /// What the core asked of the media server, in order.
    pub media: Vec<super::MediaCmd>,
    views: HashMap<ConnId, View>,
    /// The last (room, name, token) each connection was told in `joined`.
    tokens: HashMap<ConnId, (String, String, String)>,
    /// The last `joined`'s access fields (host, locked, protected) per connection.
    pub access: HashMap<ConnId, Value>,
}

/// The key the core compares names by.
fn key(name: &str) -> String {
    Name::parse(name).map_or_else(|_| name.trim().to_lowercase(), |n| n.key().to_owned())
}

impl World {
    pub fn new(cfg: CoreConfig) -> Self {
        Self {
            core: Core::new(cfg, Box::new(CountingTokens(0))),
            now: Instant::now(),
            next_conn: 1,
            inbox: HashMap::new(),
            closes: HashMap::new(),
            media: Vec::new(),
            views: HashMap::new(),
            tokens: HashMap::new(),
            access: HashMap::new(),
        }
    }

    pub fn default_world() -> Self {
        Self::new(CoreConfig::default())
    }

    pub fn connect(&mut self) -> ConnId {
        let c = self.next_conn;
        self.next_conn += 1;
        self.core.connect(c, self.now);
        self.views.insert(c, View::default());
        c
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core.handle_timeout(self.now);
        self.drain(None);
    }

    /// Sends a frame; returns the connections that received something.
    pub fn send_text(&mut self, conn: ConnId, text: &str) -> HashSet<ConnId> {
        let before = self.inbox_marks(conn);
        self.core.frame(conn, text, self.now);
        let touched = self.drain(Some(conn));
        self.note_deny(conn, text, before);
        touched
    }

    /// Delivers what the core produced for a message fed to it directly.
    pub fn flush(&mut self, sender: ConnId) {
        self.drain(Some(sender));
    }

    /// Where `conn`'s inbox and the rate limiter stand before a message.
    fn inbox_marks(&self, conn: ConnId) -> (usize, u64) {
        (
            self.inbox.get(&conn).map_or(0, Vec::len),
            self.core.stats().rate_limited,
        )
    }

    /// A host whose `deny` went through (no error back) stops expecting
    /// that knocker's `knock-gone`.
    fn note_deny(
        &mut self,
        conn: ConnId,
        text: &str,
        (inbox_before, dropped_before): (usize, u64),
    ) {
        let refused = self.core.stats().rate_limited > dropped_before
            || self
                .inbox
                .get(&conn)
                .is_some_and(|got| got.iter().skip(inbox_before).any(|m| m["type"] == "error"));
        if !refused
            && let Ok(msg) = serde_json::from_str::<Value>(text)
            && msg["type"] == "deny"
            && let (Some(view), Some(name)) = (self.views.get_mut(&conn), msg["name"].as_str())
        {
            view.knocks.remove(&key(name));
        }
    }

    /// Sends a message with what the shell would have prepared off the
    /// lock: the password work, done here with the stand-in hash
    /// `hash:PASSWORD` (the core never looks inside a hash).
    pub fn send_prepared(&mut self, conn: ConnId, msg: Value) -> HashSet<ConnId> {
        let text = msg.to_string();
        let before = self.inbox_marks(conn);
        let parsed = protocol::parse(&text);
        let mut prepared = Prepared::default();
        if let Ok(ClientMsg::RoomSettings {
            password: Some(Some(p)),
            ..
        }) = &parsed
        {
            prepared.password_hash = Some(format!("hash:{p}").into());
        }
        if let (
            Ok(
                msg @ ClientMsg::Join {
                    password: Some(p), ..
                },
            ),
            true,
        ) = (&parsed, true)
            && let Some((generation, hash)) = self.core.password_to_check(msg)
        {
            prepared.password_check = Some(PasswordCheck {
                generation,
                matches: *hash == *format!("hash:{p}"),
            });
        }
        self.core.message_with(conn, parsed, prepared, self.now);
        let touched = self.drain(Some(conn));
        self.note_deny(conn, &text, before);
        touched
    }

    pub fn send(&mut self, conn: ConnId, msg: Value) -> HashSet<ConnId> {
        self.send_text(conn, &msg.to_string())
    }

    pub fn close(&mut self, conn: ConnId) {
        self.core.closed(conn);
        self.drain(None);
    }

    pub fn lose(&mut self, conn: ConnId) -> HashSet<ConnId> {
        self.core.lost(conn, self.now);
        self.drain(None)
    }

    /// Joins and returns the token; asserts the exact `joined`.
    pub fn join(&mut self, conn: ConnId, room: &str, name: &str, peers: &[&str]) -> String {
        self.send(conn, json!({"type":"join","room":room,"name":name}));
        self.expect_joined(conn, room, name, peers, false)
    }

    pub fn expect_joined(
        &mut self,
        conn: ConnId,
        room: &str,
        name: &str,
        peers: &[&str],
        resumed: bool,
    ) -> String {
        let mut got = self.take(conn);
        assert!(!got.is_empty(), "conn {conn} got nothing, expected joined");
        let joined = got.remove(0);
        let mut joined = joined;
        let token = joined["token"].as_str().expect("a token").to_owned();
        assert!(token.len() >= 22);
        let obj = joined.as_object_mut().expect("an object");
        let access = json!({
            "host": obj.remove("host").expect("joined names the host"),
            "locked": obj.remove("locked").expect("joined says whether the room is locked"),
            "protected": obj.remove("protected").expect("joined says whether the room is protected"),
        });
        assert!(
            access["host"].is_string()
                && access["locked"].is_boolean()
                && access["protected"].is_boolean()
        );
        self.access.insert(conn, access);
        let ice: Value =
            serde_json::from_str(&self.core.config().ice.render(name, UNIX_NOW)).unwrap();
        let mut expected = json!({"type":"joined","room":room,"name":name,"peers":peers,
                                  "iceServers":ice,"token":token});
        if resumed {
            expected["resumed"] = json!(true);
        }
        assert_eq!(joined, expected);
        // Put back whatever followed (queued relays after a resume).
        self.inbox.entry(conn).or_default().splice(0..0, got);
        token
    }

    /// The resume token `conn` was last given in `joined`.
    pub fn token_of(&self, conn: ConnId) -> String {
        self.tokens[&conn].2.clone()
    }

    /// Everything `conn` received since the last take.
    pub fn take(&mut self, conn: ConnId) -> Vec<Value> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// Asserts `conn` received exactly these messages.
    pub fn expect(&mut self, conn: ConnId, msgs: &[Value]) {
        assert_eq!(self.take(conn), msgs, "messages for conn {conn}");
    }

    pub fn expect_nothing(&mut self, conn: ConnId) {
        self.expect(conn, &[]);
    }

    /// Asserts `conn` received exactly one error with this code.
    pub fn expect_error(&mut self, conn: ConnId, code: &str) {
        let got = self.take(conn);
        assert_eq!(
            got.len(),
            1,
            "conn {conn} expected one error {code}, got {got:?}"
        );
        assert_eq!(got[0]["type"], "error");
        assert_eq!(got[0]["code"], code, "{got:?}");
        assert!(
            got[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error says why"
        );
    }

    pub fn closed_with(&mut self, conn: ConnId) -> Option<u16> {
        self.closes.get(&conn).copied()
    }

    /// Delivers outputs into inboxes, checking the protocol's invariants.
    fn drain(&mut self, sender: Option<ConnId>) -> HashSet<ConnId> {
        let mut touched = HashSet::new();
        let mut resumed: Option<(String, String)> = None;
        let mut step: Vec<(ConnId, Value)> = Vec::new();
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send(conn, text) => {
                    assert!(
                        !self.closes.contains_key(&conn),
                        "frame for closed conn {conn}"
                    );
                    let msg: Value = serde_json::from_str(&text).expect("server sends JSON");
                    if Some(conn) == sender && msg["type"] == "joined" {
                        self.tokens.insert(
                            conn,
                            (
                                msg["room"].as_str().unwrap().to_owned(),
                                msg["name"].as_str().unwrap().to_owned(),
                                msg["token"].as_str().unwrap().to_owned(),
                            ),
                        );
                        if msg["resumed"] == true {
                            resumed = Some((
                                msg["room"].as_str().unwrap().to_owned(),
                                key(msg["name"].as_str().unwrap()),
                            ));
                        }
                    }
                    step.push((conn, msg.clone()));
                    self.observe(conn, &msg);
                    touched.insert(conn);
                    self.inbox.entry(conn).or_default().push(msg);
                }
                Output::Media(cmd) => self.media.push(cmd),
                Output::Close(conn, code, reason) => {
                    assert!(!reason.is_empty() && reason.len() <= 123);
                    self.closes.insert(conn, code);
                    if let Some(v) = self.views.get_mut(&conn) {
                        *v = View::default();
                    }
                }
            }
        }
        self.core.assert_invariants();
        if let Some((room, name)) = resumed {
            // Nobody hears of the resumed member; at most the resumer's
            // previous membership ends (a room change).
            let sender = sender.expect("a resume has a sender");
            for (conn, msg) in step.iter().filter(|(c, _)| *c != sender) {
                // Leaving the old room may pass its host role on, and
                // leaving a lobby tells that room's host.
                if msg["type"] == "error" && msg["code"] == "denied" {
                    // The resumer was the last member of its old room,
                    // whose waiting joiners are sent away.
                    continue;
                }
                if ["host", "knock", "knock-gone"].contains(&msg["type"].as_str().unwrap()) {
                    // The old membership's departure may hand the host role
                    // on, even to the member being resumed (it was the
                    // oldest): that is news about the departure.
                    continue;
                }
                assert_eq!(
                    msg["type"], "peer-left",
                    "a resume is silent: {conn} got {msg}"
                );
                let same_room = self.views[conn].room.as_deref() == Some(room.as_str());
                let same_name = key(msg["name"].as_str().unwrap()) == name;
                assert!(
                    !(same_room && same_name),
                    "a resume is silent: {conn} got {msg}"
                );
            }
        }
        touched
    }

    /// The last (room, name, token) `conn` received in `joined`.
    pub fn membership_of(&self, conn: ConnId) -> Option<(String, String, String)> {
        self.tokens.get(&conn).cloned()
    }

    /// The per-recipient invariants of the protocol.
    fn observe(&mut self, conn: ConnId, msg: &Value) {
        let view = self.views.get_mut(&conn).expect("known conn");
        let ty = msg["type"].as_str().expect("type");
        match ty {
            "joined" => {
                view.room = Some(msg["room"].as_str().unwrap().to_owned());
                view.name = Some(msg["name"].as_str().unwrap().to_owned());
                view.host = Some(key(msg["host"].as_str().expect("joined names the host")));
                view.knocks.clear();
                view.known = msg["peers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| key(p.as_str().unwrap()))
                    .collect();
                assert!(
                    !view.known.contains(&key(view.name.as_deref().unwrap())),
                    "joined lists the joiner itself"
                );
            }
            "left" => {
                view.room = None;
                view.known.clear();
                view.host = None;
                view.knocks.clear();
            }
            "host" => {
                let n = key(msg["name"].as_str().expect("host names someone"));
                assert!(view.room.is_some(), "host outside a room");
                assert!(
                    view.known.contains(&n) || view.name.as_deref().map(key) == Some(n.clone()),
                    "host {n} is not a member this connection knows"
                );
                assert_ne!(
                    view.host.as_ref(),
                    Some(&n),
                    "host repeats the current host"
                );
                view.host = Some(n);
            }
            "room-settings" => {
                assert!(view.room.is_some(), "room-settings outside a room");
                assert!(msg["locked"].is_boolean() && msg["protected"].is_boolean());
                assert!(msg.get("password").is_none(), "the password never goes out");
            }
            "waiting" => {
                // Waiting in a lobby ends any membership (a room change).
                assert!(msg["room"].is_string());
                view.room = None;
                view.known.clear();
                view.host = None;
                view.knocks.clear();
            }
            "knock" => {
                let n = key(msg["name"].as_str().unwrap());
                assert_eq!(
                    view.host.as_deref(),
                    view.name.as_deref().map(key).as_deref(),
                    "knock to someone who is not host"
                );
                assert!(view.knocks.insert(n.clone()), "knock twice for {n}");
            }
            "knock-gone" => {
                let n = key(msg["name"].as_str().unwrap());
                assert!(view.knocks.remove(&n), "knock-gone for {n} without a knock");
            }
            "removed" | "ask-mute" => {
                // `removed` also answers a resume with a revoked token.
                assert!(
                    view.room.is_some() || ty == "removed",
                    "{ty} outside a room"
                );
                let by = key(msg["by"].as_str().unwrap());
                if view.room.is_some() {
                    assert_eq!(
                        view.host.as_ref(),
                        Some(&by),
                        "{ty} from someone who is not host"
                    );
                }
            }
            "peer-joined" => {
                let n = key(msg["name"].as_str().unwrap());
                assert!(view.room.is_some(), "peer-joined outside a room");
                assert_ne!(
                    Some(n.clone()),
                    view.name.as_deref().map(key),
                    "self peer-joined"
                );
                assert!(view.known.insert(n.clone()), "peer-joined twice for {n}");
                // An admitted knocker: no knock-gone follows.
                view.knocks.remove(&n);
            }
            "peer-left" => {
                let n = key(msg["name"].as_str().unwrap());
                assert!(
                    view.known.remove(&n),
                    "peer-left for {n} before peer-joined"
                );
            }
            "offer" | "answer" if msg["from"] == protocol::SERVER_PEER => {
                assert!(view.room.is_some(), "media server's {ty} outside a room");
                assert!(msg["sdp"].is_string());
            }
            "mode" => {
                assert!(view.room.is_some(), "mode outside a room");
                assert_eq!(msg["mode"], "sfu", "rooms only move to the media server");
                let streams = msg["streams"].as_object().expect("streams");
                for n in streams.keys() {
                    assert!(
                        view.known.contains(&key(n))
                            || view.name.as_deref().map(key) == Some(key(n)),
                        "stream of {n}, whom this connection does not know"
                    );
                }
            }
            "speaker" => {
                assert!(view.room.is_some(), "speaker outside a room");
                if let Some(n) = msg["name"].as_str() {
                    let n = key(n);
                    assert!(
                        view.known.contains(&n) || view.name.as_deref().map(key) == Some(n.clone()),
                        "speaker {n} is not a member this connection knows"
                    );
                }
            }
            "data" => {
                let from = key(msg["from"].as_str().expect("from is stamped"));
                assert_ne!(
                    Some(from.clone()),
                    view.name.as_deref().map(key),
                    "self-delivery"
                );
                assert!(view.known.contains(&from), "data from unknown {from}");
                assert!(msg["data"].is_object());
            }
            "offer" | "answer" | "candidate" => {
                let from = key(msg["from"].as_str().expect("from is stamped"));
                assert!(msg.get("to").is_none(), "to is replaced by from");
                assert_ne!(
                    Some(from.clone()),
                    view.name.as_deref().map(key),
                    "self-delivery"
                );
                assert!(view.known.contains(&from), "relay from unknown {from}");
                let room = view.room.clone().expect("relay outside a room");
                assert!(
                    self.core.members(&room).iter().any(|m| key(m) == from),
                    "relay from outside the room"
                );
            }
            "error" => {
                assert!(ErrorCode::ALL.iter().any(|c| c.as_str() == msg["code"]));
            }
            other => panic!("unexpected server message type {other}"),
        }
    }
}

fn offer(to: &str, sdp: &str) -> Value {
    json!({"type":"offer","to":to,"sdp":sdp})
}

fn cfg(f: impl FnOnce(&mut CoreConfig)) -> CoreConfig {
    let mut c = CoreConfig::default();
    f(&mut c);
    c
}

// ---------------------------------------------------------------- joining

#[test]
fn alice_and_bob_meet_relay_and_part() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.expect(a, &[json!({"type":"peer-joined","name":"bob"})]);

    // bob offers, alice answers, both trickle candidates.
    w.send(b, offer("alice", "v=0 bob"));
    w.expect(a, &[json!({"type":"offer","from":"bob","sdp":"v=0 bob"})]);
    w.send(a, json!({"type":"answer","to":"bob","sdp":"v=0 alice"}));
    w.expect(
        b,
        &[json!({"type":"answer","from":"alice","sdp":"v=0 alice"})],
    );
    let cand = json!({"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0});
    w.send(a, json!({"type":"candidate","to":"bob","candidate":cand}));
    w.send(b, json!({"type":"candidate","to":"alice","candidate":null}));
    w.expect(
        b,
        &[json!({"type":"candidate","from":"alice","candidate":cand})],
    );
    w.expect(
        a,
        &[json!({"type":"candidate","from":"bob","candidate":null})],
    );

    w.send(b, json!({"type":"leave"}));
    w.expect(b, &[json!({"type":"left","room":"r"})]);
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
    w.send(a, json!({"type":"leave"}));
    w.expect(a, &[json!({"type":"left","room":"r"})]);
    assert_eq!(
        w.core.room_count(),
        0,
        "the last member takes the room with it"
    );
}

#[test]
fn peers_are_listed_oldest_first() {
    let mut w = World::default_world();
    let names = ["zed", "amy", "mo", "bo"];
    let conns: Vec<_> = names.iter().map(|_| w.connect()).collect();
    for (i, (c, n)) in conns.iter().zip(names).enumerate() {
        w.join(*c, "r", n, &names[..i]);
    }
    assert_eq!(w.core.members("r"), names);
}

#[test]
fn the_server_stamps_from_and_ignores_a_forged_one() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    w.send(
        b,
        json!({"type":"offer","to":"alice","from":"mallory","sdp":"x","extra":1}),
    );
    w.expect(a, &[json!({"type":"offer","from":"bob","sdp":"x"})]);
}

#[test]
fn names_are_trimmed_and_unique_case_insensitively() {
    let mut w = World::default_world();
    let (a, b, c) = (w.connect(), w.connect(), w.connect());
    w.send(a, json!({"type":"join","room":"r","name":"  Alice\t"}));
    w.expect_joined(a, "r", "Alice", &[], false);
    for taken in ["alice", "ALICE", " alice "] {
        let touched = w.send(b, json!({"type":"join","room":"r","name":taken}));
        w.expect_error(b, "name-taken");
        assert_eq!(
            touched,
            HashSet::from([b]),
            "a refused join tells nobody else"
        );
    }
    // The same name in another room is fine.
    w.join(c, "other", "alice", &[]);
    // Relay addressing follows the same rule.
    w.join(b, "r", "bob", &["Alice"]);
    w.take(a);
    w.send(b, offer("  aLiCe ", "x"));
    w.expect(a, &[json!({"type":"offer","from":"bob","sdp":"x"})]);
}

#[test]
fn look_alike_names_are_taken_and_real_ones_are_not() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    // Cyrillic а, full-width letters, a capital I for the l.
    for fake in ["аlice", "ＡＬＩＣＥ", "aIice"] {
        let touched = w.send(b, json!({"type":"join","room":"r","name":fake}));
        w.expect_error(b, "name-taken");
        assert_eq!(touched, HashSet::from([b]));
    }
    // Zero-width and bidi characters are refused outright.
    for invisible in ["al\u{200B}ice", "\u{202E}ecila", "\u{2060}"] {
        w.send(b, json!({"type":"join","room":"r","name":invisible}));
        w.expect_error(b, "invalid-name");
    }
    assert_eq!(w.core.members("r"), ["alice"]);
    // Different names in other scripts are welcome, and stay distinct.
    let mut names = vec!["alice"];
    for real in ["Анна", "José", "会议"] {
        let c = w.connect();
        w.join(c, "r", real, &names);
        names.push(real);
    }
    // A relay may name a member by any spelling that clashes with it.
    w.take(a);
    let anna = w.connect();
    w.send(anna, json!({"type":"join","room":"r","name":"анна"}));
    w.expect_error(anna, "name-taken");
    w.join(b, "r", "bob", &names);
    w.take(a);
    w.send(b, offer("ＡＬＩＣＥ", "x"));
    w.expect(a, &[json!({"type":"offer","from":"bob","sdp":"x"})]);
}

#[test]
fn rooms_dot_and_dot_dot_are_invalid() {
    let mut w = World::default_world();
    let a = w.connect();
    for room in [".", ".."] {
        w.send(a, json!({"type":"join","room":room,"name":"alice"}));
        w.expect_error(a, "invalid-room");
    }
    w.join(a, "...", "alice", &[]);
}

#[test]
fn invalid_names_and_rooms_are_refused_in_order() {
    let mut w = World::default_world();
    let a = w.connect();
    for name in ["", "   ", &"n".repeat(33), "bad\u{7}bell", "tab\tinside"] {
        w.send(a, json!({"type":"join","room":"r","name":name}));
        w.expect_error(a, "invalid-name");
    }
    for room in ["", "has space", "slash/", &"r".repeat(65), "emoji😀"] {
        w.send(a, json!({"type":"join","room":room,"name":"alice"}));
        w.expect_error(a, "invalid-room");
    }
    // Shape before values: a missing name is bad-message even with a bad room.
    w.send(a, json!({"type":"join","room":"bad room"}));
    w.expect_error(a, "bad-message");
    // Values before state: an invalid room is reported even if the name is taken.
    let b = w.connect();
    w.join(b, "r", "bob", &[]);
    w.send(a, json!({"type":"join","room":"r r","name":"bob"}));
    w.expect_error(a, "invalid-room");
    assert_eq!(w.core.member_count(), 1);
}

#[test]
fn room_names_are_compared_exactly() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "Room", "alice", &[]);
    w.join(b, "room", "alice", &[]);
    assert_eq!(w.core.room_count(), 2);
    w.expect_nothing(a);
}

#[test]
fn a_full_room_refuses_one_more() {
    let mut w = World::new(cfg(|c| c.max_room_size = 2));
    let (a, b, c) = (w.connect(), w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    let touched = w.send(c, json!({"type":"join","room":"r","name":"carol"}));
    w.expect_error(c, "room-full");
    assert_eq!(touched, HashSet::from([c]));
    // When someone leaves there is room again.
    w.send(b, json!({"type":"leave"}));
    w.take(a);
    w.take(b);
    w.join(c, "r", "carol", &["alice"]);
}

#[test]
fn a_lost_member_still_counts_towards_capacity() {
    let mut w = World::new(cfg(|c| c.max_room_size = 2));
    let (a, b, c) = (w.connect(), w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.lose(b);
    w.send(c, json!({"type":"join","room":"r","name":"carol"}));
    w.expect_error(c, "room-full");
}

#[test]
fn changing_room_leaves_the_old_one_first() {
    let mut w = World::default_world();
    let (a, b, c) = (w.connect(), w.connect(), w.connect());
    w.join(a, "one", "alice", &[]);
    w.join(b, "one", "bob", &["alice"]);
    w.join(c, "two", "carol", &[]);
    w.take(a);
    w.send(b, json!({"type":"join","room":"two","name":"bob"}));
    w.expect_joined(b, "two", "bob", &["carol"], false);
    w.expect_nothing(b); // no `left` on a room change
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
    w.expect(c, &[json!({"type":"peer-joined","name":"bob"})]);
    // Relays follow the new room only.
    w.send(b, offer("alice", "x"));
    w.expect_error(b, "unknown-peer");
    w.send(a, offer("bob", "x"));
    w.expect_error(a, "unknown-peer");
}

#[test]
fn a_failed_room_change_leaves_the_client_where_it_was() {
    let mut w = World::default_world();
    let (a, b, c) = (w.connect(), w.connect(), w.connect());
    w.join(a, "one", "alice", &[]);
    w.join(b, "one", "bob", &["alice"]);
    w.join(c, "two", "bob", &[]);
    w.take(a);
    let touched = w.send(b, json!({"type":"join","room":"two","name":"BOB"}));
    w.expect_error(b, "name-taken");
    assert_eq!(touched, HashSet::from([b]));
    assert_eq!(w.core.members("one"), ["alice", "bob"]);
    w.send(b, offer("alice", "still here"));
    w.expect(
        a,
        &[json!({"type":"offer","from":"bob","sdp":"still here"})],
    );
}

#[test]
fn joining_the_same_room_again_renames_the_member() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    w.send(b, json!({"type":"join","room":"r","name":"robert"}));
    w.expect_joined(b, "r", "robert", &["alice"], false);
    w.expect(
        a,
        &[
            json!({"type":"peer-left","name":"bob"}),
            json!({"type":"peer-joined","name":"robert"}),
        ],
    );
}

#[test]
fn rejoining_a_full_room_under_the_same_name_is_allowed() {
    let mut w = World::new(cfg(|c| c.max_room_size = 2));
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    w.send(b, json!({"type":"join","room":"r","name":"Bob"}));
    w.expect_joined(b, "r", "Bob", &["alice"], false);
    w.expect(
        a,
        &[
            json!({"type":"peer-left","name":"bob"}),
            json!({"type":"peer-joined","name":"Bob"}),
        ],
    );
}

// ---------------------------------------------------------------- relay and errors

#[test]
fn relay_errors() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.send(a, offer("bob", "x"));
    w.expect_error(a, "not-joined");
    w.send(a, json!({"type":"leave"}));
    w.expect_error(a, "not-joined");
    w.join(a, "r", "alice", &[]);
    w.join(b, "elsewhere", "bob", &[]);
    w.send(a, offer("bob", "x"));
    w.expect_error(a, "unknown-peer");
    w.send(a, offer("Alice", "x"));
    w.expect_error(a, "bad-message");
    w.expect_nothing(b);
}

#[test]
fn bad_input_changes_nothing_and_keeps_the_connection() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    for text in [
        "{",
        "null",
        "\"join\"",
        r#"{"type":"JOIN","room":"r","name":"x"}"#,
        r#"{"type":"offer","to":"alice"}"#,
        r#"{"type":"offer","to":"alice","sdp":5}"#,
        r#"{"type":"candidate","to":"alice","candidate":[1]}"#,
        r#"{"type":"join","room":"r","name":"x","token":{}}"#,
        r#"{"type":"leave","type":"join"}"#,
    ] {
        let touched = w.send_text(b, text);
        assert_eq!(touched, HashSet::from([b]), "{text}");
        w.expect_error(b, "bad-message");
    }
    assert_eq!(w.core.members("r"), ["alice", "bob"]);
    assert_eq!(w.closed_with(b), None);
    w.send(b, offer("alice", "ok"));
    w.expect(a, &[json!({"type":"offer","from":"bob","sdp":"ok"})]);
}

#[test]
fn messages_from_one_sender_arrive_in_order() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    let sent: Vec<Value> = (0..100)
        .map(|i| json!({"type":"candidate","to":"alice","candidate":{"candidate":format!("c{i}")}}))
        .collect();
    for m in &sent {
        w.send(b, m.clone());
    }
    let got = w.take(a);
    assert_eq!(got.len(), 100);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m["candidate"]["candidate"], format!("c{i}"));
    }
}

#[test]
fn nothing_crosses_rooms() {
    let mut w = World::default_world();
    let conns: Vec<_> = (0..6).map(|_| w.connect()).collect();
    w.join(conns[0], "x", "a", &[]);
    w.join(conns[1], "x", "b", &["a"]);
    w.join(conns[2], "x", "c", &["a", "b"]);
    w.join(conns[3], "y", "a", &[]);
    w.join(conns[4], "y", "b", &["a"]);
    w.join(conns[5], "y", "c", &["a", "b"]);
    for c in &conns {
        w.take(*c);
    }
    let touched = w.send(conns[0], offer("b", "for x"));
    assert_eq!(touched, HashSet::from([conns[1]]));
    w.close(conns[2]);
    w.expect(conns[0], &[json!({"type":"peer-left","name":"c"})]);
    w.expect_nothing(conns[3]);
}

// ---------------------------------------------------------------- leaving

#[test]
fn a_clean_close_is_an_immediate_leave() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    w.close(b);
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
    // Closing twice, or an unknown connection, is harmless.
    w.close(b);
    w.close(999);
    w.expect_nothing(a);
}

#[test]
fn leave_then_join_again() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.send(b, json!({"type":"leave"}));
    w.take(b);
    w.take(a);
    w.join(b, "r", "bob", &["alice"]);
    w.expect(a, &[json!({"type":"peer-joined","name":"bob"})]);
}

// ---------------------------------------------------------------- lost connections and resume

fn grace() -> Duration {
    CoreConfig::default().reconnect_grace
}

#[test]
fn a_lost_member_leaves_when_the_grace_period_ends() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    let touched = w.lose(b);
    assert!(touched.is_empty(), "a loss is silent");
    assert_eq!(w.core.poll_timeout(), Some(w.now + grace()));
    w.advance(grace() - Duration::from_millis(1));
    w.expect_nothing(a);
    assert_eq!(w.core.members("r"), ["alice", "bob"]);
    w.advance(Duration::from_millis(1));
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
    assert_eq!(w.core.poll_timeout(), None);
}

#[test]
fn resume_is_silent_and_delivers_the_queue_in_order() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    let token = w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    w.lose(b);
    for i in 0..3 {
        let touched = w.send(
            a,
            json!({"type":"candidate","to":"bob","candidate":{"n":i}}),
        );
        assert!(touched.is_empty(), "queued, not sent");
    }
    w.advance(grace() / 2);
    let b2 = w.connect();
    let touched = w.send(
        b2,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    assert_eq!(touched, HashSet::from([b2]), "the others see nothing");
    let same = w.expect_joined(b2, "r", "bob", &["alice"], true);
    assert_eq!(same, token, "the token stays for the whole membership");
    w.expect(
        b2,
        &(0..3)
            .map(|i| json!({"type":"candidate","from":"alice","candidate":{"n":i}}))
            .collect::<Vec<_>>(),
    );
    w.advance(grace());
    w.expect_nothing(a);
    // And the resumed connection relays as bob.
    w.send(b2, offer("alice", "again"));
    w.expect(a, &[json!({"type":"offer","from":"bob","sdp":"again"})]);
}

#[test]
fn resume_before_the_loss_is_noticed_replaces_the_old_socket() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    let token = w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    let b2 = w.connect();
    let touched = w.send(
        b2,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    assert_eq!(touched, HashSet::from([b2]));
    w.expect_joined(b2, "r", "bob", &["alice"], true);
    assert_eq!(w.closed_with(b), Some(close::REPLACED));
    // The old socket's late close changes nothing.
    w.close(b);
    w.expect_nothing(a);
    assert_eq!(w.core.members("r"), ["alice", "bob"]);
}

#[test]
fn the_same_name_without_the_right_token_is_taken() {
    let mut w = World::default_world();
    let (a, b, c) = (w.connect(), w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    let token = w.join(b, "r", "bob", &["alice"]);
    w.lose(b);
    w.send(c, json!({"type":"join","room":"r","name":"bob"}));
    w.expect_error(c, "name-taken");
    let mut wrong = token.clone();
    wrong.replace_range(0..1, "X");
    w.send(
        c,
        json!({"type":"join","room":"r","name":"bob","token":wrong}),
    );
    w.expect_error(c, "name-taken");
    w.send(
        c,
        json!({"type":"join","room":"r","name":"bob","token":null}),
    );
    w.expect_error(c, "name-taken");
    // Right token, wrong room: a fresh join there.
    w.send(
        c,
        json!({"type":"join","room":"s","name":"bob","token":token}),
    );
    let fresh = w.expect_joined(c, "s", "bob", &[], false);
    assert_ne!(fresh, token);
}

#[test]
fn a_token_for_a_member_that_is_gone_gets_a_fresh_join() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    let token = w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    w.lose(b);
    w.advance(grace());
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
    let b2 = w.connect();
    w.send(
        b2,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    let fresh = w.expect_joined(b2, "r", "bob", &["alice"], false);
    assert_ne!(fresh, token);
    w.expect(a, &[json!({"type":"peer-joined","name":"bob"})]);
}

#[test]
fn resume_shows_who_came_and_went_and_drops_messages_of_those_gone() {
    let mut w = World::default_world();
    let (a, b, c, d) = (w.connect(), w.connect(), w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    let token = w.join(b, "r", "bob", &["alice"]);
    w.join(c, "r", "carol", &["alice", "bob"]);
    w.lose(b);
    // carol sends something, then leaves: her message must not reach bob.
    w.send(c, offer("bob", "from carol"));
    w.close(c);
    // dave joins meanwhile and offers to bob, as a joiner does.
    w.join(d, "r", "dave", &["alice", "bob"]);
    w.send(d, offer("bob", "from dave"));
    w.send(a, json!({"type":"candidate","to":"bob","candidate":null}));
    w.take(a);
    let b2 = w.connect();
    w.send(
        b2,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    w.expect_joined(b2, "r", "bob", &["alice", "dave"], true);
    w.expect(
        b2,
        &[
            json!({"type":"offer","from":"dave","sdp":"from dave"}),
            json!({"type":"candidate","from":"alice","candidate":null}),
        ],
    );
    w.expect_nothing(a);
    w.expect_nothing(d);
}

#[test]
fn a_full_resume_queue_ends_the_grace_period() {
    let mut w = World::new(cfg(|c| c.resume_queue = 3));
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    w.lose(b);
    for _ in 0..3 {
        w.send(a, offer("bob", "x"));
    }
    w.expect_nothing(a);
    w.send(a, offer("bob", "one too many"));
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
    assert_eq!(w.core.poll_timeout(), None);
}

#[test]
fn the_resume_queue_is_bounded_in_bytes_too() {
    let mut w = World::new(cfg(|c| c.resume_queue_bytes = 1000));
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    w.lose(b);
    w.send(a, offer("bob", &"x".repeat(500)));
    w.expect_nothing(a);
    w.send(a, offer("bob", &"x".repeat(500)));
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
}

#[test]
fn the_resume_budget_ends_the_oldest_grace_periods_first() {
    // Three lost members may hold 2,500 bytes together.
    let mut w = World::new(cfg(|c| c.resume_budget_bytes = 2500));
    let (a, b, c, d) = (w.connect(), w.connect(), w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.join(c, "r", "carol", &["alice", "bob"]);
    w.join(d, "r", "dave", &["alice", "bob", "carol"]);
    for x in [a, b, c] {
        w.take(x);
    }
    w.lose(b);
    w.advance(Duration::from_secs(1));
    w.lose(c);
    w.advance(Duration::from_secs(1));
    w.lose(d);
    let offer_len = protocol::relay(
        RelayKind::Offer,
        &Name::parse("alice").unwrap(),
        serde_json::from_str(&serde_json::to_string(&"x".repeat(700)).unwrap()).unwrap(),
    )
    .len();
    for to in ["bob", "carol", "dave"] {
        w.send(a, offer(to, &"x".repeat(700)));
    }
    w.expect_nothing(a);
    assert_eq!(w.core.held_bytes(), 3 * offer_len);
    // One more for dave does not fit: bob, lost first, is let go; carol
    // and dave keep their places and their queues.
    w.send(a, offer("dave", &"x".repeat(700)));
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
    assert_eq!(w.core.held_bytes(), 3 * offer_len);
    assert_eq!(w.core.held_count(), 2);
    assert_eq!(w.core.stats().leaves(Departure::ResumeBudget), 1);
    // Carol resumes and gets her queue, in full.
    let (room, name, token) = w.membership_of(c).unwrap();
    let c2 = w.connect();
    w.send(
        c2,
        json!({"type":"join","room":room,"name":name,"token":token}),
    );
    let got = w.take(c2);
    assert_eq!(got.len(), 2, "joined, then the queued offer: {got:?}");
    assert_eq!(w.core.held_bytes(), 2 * offer_len);
    // When the addressee is itself the oldest, its grace ends and the
    // message goes nowhere.
    w.send(a, offer("dave", &"x".repeat(700)));
    w.send(a, offer("dave", &"x".repeat(700)));
    w.expect(a, &[json!({"type":"peer-left","name":"dave"})]);
    w.expect(c2, &[json!({"type":"peer-left","name":"dave"})]);
    assert_eq!(w.core.held_bytes(), 0);
    assert_eq!(w.core.poll_timeout(), None);
}

#[test]
fn grace_periods_end_in_deadline_order() {
    let mut w = World::default_world();
    let conns: Vec<ConnId> = (0..4).map(|_| w.connect()).collect();
    let names = ["alice", "bob", "carol", "dave"];
    for (i, c) in conns.iter().enumerate() {
        w.join(*c, "r", names[i], &names[..i]);
    }
    w.take(conns[0]);
    let start = w.now;
    // dave, then bob, then carol lose their connections, a second apart.
    for i in [3, 1, 2] {
        w.lose(conns[i]);
        w.advance(Duration::from_secs(1));
    }
    assert_eq!(w.core.poll_timeout(), Some(start + grace()));
    w.advance(grace() - Duration::from_secs(3));
    w.expect(conns[0], &[json!({"type":"peer-left","name":"dave"})]);
    assert_eq!(
        w.core.poll_timeout(),
        Some(start + grace() + Duration::from_secs(1))
    );
    w.advance(Duration::from_secs(5));
    w.expect(
        conns[0],
        &[
            json!({"type":"peer-left","name":"bob"}),
            json!({"type":"peer-left","name":"carol"}),
        ],
    );
    assert_eq!(w.core.poll_timeout(), None);
}

#[test]
fn a_zero_grace_period_removes_lost_members_at_once() {
    let mut w = World::new(cfg(|c| c.reconnect_grace = Duration::ZERO));
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    w.lose(b);
    w.expect(a, &[json!({"type":"peer-left","name":"bob"})]);
}

#[test]
fn resuming_from_another_room_leaves_that_room() {
    let mut w = World::default_world();
    let (a, b, x) = (w.connect(), w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    let token = w.join(b, "r", "bob", &["alice"]);
    w.lose(b);
    w.join(x, "lobby", "bob", &[]);
    w.send(
        x,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    w.expect_joined(x, "r", "bob", &["alice"], true);
    assert_eq!(w.core.room_count(), 1, "the lobby emptied and went away");
}

#[test]
fn resuming_the_own_live_membership_is_a_quiet_refresh() {
    let mut w = World::default_world();
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    let token = w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    let touched = w.send(
        b,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    assert_eq!(touched, HashSet::from([b]));
    w.expect_joined(b, "r", "bob", &["alice"], true);
}

#[test]
fn a_member_renaming_itself_into_a_resume_keeps_order() {
    // bob (live on conn x as "xavier") resumes the lost "bob" in the same room.
    let mut w = World::default_world();
    let (a, b, x) = (w.connect(), w.connect(), w.connect());
    w.join(x, "r", "xavier", &[]);
    w.join(a, "r", "alice", &["xavier"]);
    let token = w.join(b, "r", "bob", &["xavier", "alice"]);
    w.take(a);
    w.take(x);
    w.lose(b);
    w.send(
        x,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    w.expect_joined(x, "r", "bob", &["alice"], true);
    w.expect(
        a,
        &[
            json!({"type":"peer-left","name":"xavier"}),
            json!({"type":"host","name":"alice"}),
        ],
    );
    assert_eq!(w.core.members("r"), ["alice", "bob"]);
}

// ---------------------------------------------------------------- rate limits

#[test]
fn excess_messages_are_dropped_with_one_warning_per_burst() {
    let mut w = World::new(cfg(|c| {
        c.rate = 10;
        c.burst = 5;
    }));
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]); // uses one token
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    for i in 0..10 {
        w.send(a, offer("bob", &format!("{i}")));
    }
    let got = w.take(b);
    assert_eq!(got.len(), 4, "burst of 5 minus the join");
    let errors = w.take(a);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["code"], "rate-limited");
    // After a pause the bucket refills.
    w.advance(Duration::from_secs(1));
    w.send(a, offer("bob", "later"));
    assert_eq!(w.take(b).len(), 1);
}

#[test]
fn a_connection_that_keeps_flooding_is_closed() {
    let mut w = World::new(cfg(|c| {
        c.rate = 10;
        c.burst = 10;
    }));
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    w.join(b, "r", "bob", &["alice"]);
    w.take(a);
    let mut closed_after = None;
    for step in 0..1000u32 {
        w.now += Duration::from_millis(10); // 100 messages/s against 10/s
        w.send(a, offer("bob", "spam"));
        if w.closed_with(a).is_some() {
            closed_after = Some(step);
            break;
        }
    }
    assert_eq!(w.closed_with(a), Some(close::POLICY));
    let steps = closed_after.unwrap();
    assert!((500..=620).contains(&steps), "closed after {steps} steps");
    // Closing a flooder removes it at once (and the host role passes on).
    let got = w.take(b);
    assert_eq!(
        got[got.len() - 2..],
        [
            json!({"type":"peer-left","name":"alice"}),
            json!({"type":"host","name":"bob"})
        ]
    );
    assert_eq!(w.core.connection_count(), 1);
}

#[test]
fn bad_messages_count_towards_the_rate() {
    let mut w = World::new(cfg(|c| {
        c.rate = 1;
        c.burst = 2;
    }));
    let a = w.connect();
    w.send_text(a, "junk");
    w.expect_error(a, "bad-message");
    w.send_text(a, "junk");
    w.expect_error(a, "bad-message");
    w.send_text(a, "junk");
    w.expect_error(a, "rate-limited");
    w.send(a, json!({"type":"join","room":"r","name":"alice"}));
    w.expect_nothing(a);
    assert_eq!(w.core.member_count(), 0, "a dropped join has no effect");
}

#[test]
fn each_member_gets_its_own_turn_credentials_on_join_and_resume() {
    let mut cfg = CoreConfig::default();
    cfg.ice.push_url("stun:stun.example.org").unwrap();
    cfg.ice.add_rest(
        vec!["turn:turn.example.org:3478".into()],
        std::sync::Arc::from(&b"s3cret"[..]),
        Duration::from_secs(600),
    );
    let mut w = World::new(cfg);
    let (a, b) = (w.connect(), w.connect());
    w.join(a, "r", "alice", &[]);
    let token = w.join(b, "r", "bob", &["alice"]);
    let _ = w.take(a);
    // What bob got: the STUN server, then TURN with bob's own credentials.
    let ice: Value = serde_json::from_str(&w.core.config().ice.render("bob", UNIX_NOW)).unwrap();
    assert_eq!(ice[0], json!({"urls":"stun:stun.example.org"}));
    let username = ice[1]["username"].as_str().unwrap();
    assert_eq!(username, format!("{}:bob", UNIX_NOW + 600));
    let credential = ice[1]["credential"].as_str().unwrap();
    assert_eq!(
        crate::ice::verify(b"s3cret", username, credential, UNIX_NOW),
        Ok(())
    );
    // A resume hands out credentials again (the harness checks the whole
    // joined message, iceServers included).
    w.lose(b);
    let b2 = w.connect();
    w.send(
        b2,
        json!({"type":"join","room":"r","name":"bob","token":token}),
    );
    w.expect_joined(b2, "r", "bob", &["alice"], true);
    w.expect_nothing(a);
}
