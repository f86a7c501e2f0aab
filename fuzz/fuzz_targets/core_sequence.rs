//! The signaling core fed arbitrary sequences of connections, frames,
//! closes, losses and the passing of time, with tight limits so that every
//! limit is reached.
//!
//! After every step it checks the core's own invariants
//! (`Core::assert_invariants`: no empty room, no room over its size, no two
//! clashing names, queues and the resume budget add up) and, from what each
//! connection received, the protocol's: no self-delivery, no `peer-left`
//! before `peer-joined`, nothing from a name after its `peer-left`, every
//! error code one of the contract's.

#![no_main]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use huddle::config::CoreConfig;
use huddle::core::{ConnId, Core, Env, Output};
use huddle::protocol::{ErrorCode, Name};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const NAMES: [&str; 8] = ["alice", "Alice", "аlice", "bob", "ＢＯＢ", "carol", " dave ", "al\u{200B}ice"];
const ROOMS: [&str; 4] = ["r", "s", ".", "room-2"];

#[derive(Debug, Arbitrary)]
enum Action {
    Connect,
    Join { conn: u8, room: u8, name: u8, resume: bool },
    Leave { conn: u8 },
    Offer { conn: u8, to: u8, size: u8 },
    Candidate { conn: u8, to: u8 },
    Raw { conn: u8, text: String },
    Close { conn: u8 },
    Lose { conn: u8 },
    Wait { millis: u16 },
    /// `room-settings` from whoever: lock or unlock (password work is the
    /// shell's, so none is set here).
    Lock { conn: u8, locked: bool },
    /// admit, deny, remove or ask-mute.
    HostAct { conn: u8, action: u8, name: u8 },
}

const HOST_ACTIONS: [&str; 4] = ["admit", "deny", "remove", "ask-mute"];

struct Tokens(u64);

impl Env for Tokens {
    fn token(&mut self) -> String {
        self.0 += 1;
        format!("tok-{:020}", self.0)
    }
    fn unix_time(&mut self) -> u64 {
        1_800_000_000
    }
}

/// What one connection was told.
#[derive(Default)]
struct View {
    name: Option<String>,
    known: HashSet<String>,
    /// (room, name, token) of its last `joined`.
    membership: Option<(String, String, String)>,
}

fn key(name: &str) -> String {
    Name::parse(name).map_or_else(|_| name.to_owned(), |n| n.key().to_owned())
}

struct World {
    core: Core,
    now: Instant,
    conns: Vec<ConnId>,
    views: HashMap<ConnId, View>,
    /// Memberships of connections that are gone, for resumes.
    old: Vec<(String, String, String)>,
}

impl World {
    fn conn(&self, i: u8) -> Option<ConnId> {
        (!self.conns.is_empty()).then(|| self.conns[usize::from(i) % self.conns.len()])
    }

    fn send(&mut self, conn: ConnId, msg: &Value) {
        self.core.frame(conn, &msg.to_string(), self.now);
    }

    fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send(conn, text) => {
                    let msg: Value = serde_json::from_str(&text).expect("server frames are JSON");
                    self.observe(conn, &msg);
                }
                Output::Close(conn, code, _) => {
                    assert!(matches!(code, 1008 | 4000 | 4001), "close code {code}");
                    self.forget(conn);
                }
                // Media commands go to the media server; the core's own
                // invariants cover the rooms they describe.
                Output::Media(_) => {}
            }
        }
        self.core.assert_invariants();
    }

    fn forget(&mut self, conn: ConnId) {
        self.conns.retain(|c| *c != conn);
        if let Some(m) = self.views.remove(&conn).and_then(|v| v.membership) {
            self.old.push(m);
        }
    }

    fn observe(&mut self, conn: ConnId, msg: &Value) {
        let view = self.views.get_mut(&conn).expect("output for a known connection");
        match msg["type"].as_str().expect("type") {
            "joined" => {
                let name = msg["name"].as_str().unwrap().to_owned();
                view.known = msg["peers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| key(p.as_str().unwrap()))
                    .collect();
                assert!(!view.known.contains(&key(&name)), "joined lists the joiner");
                view.membership = Some((
                    msg["room"].as_str().unwrap().to_owned(),
                    name.clone(),
                    msg["token"].as_str().unwrap().to_owned(),
                ));
                view.name = Some(name);
            }
            // Waiting in a lobby ends any membership, as leaving does.
            "left" | "waiting" => {
                view.known.clear();
                view.membership = None;
                view.name = None;
            }
            "host" | "room-settings" | "knock" | "knock-gone" | "ask-mute" => {
                assert!(view.name.is_some(), "room news outside a room");
            }
            "removed" => {}
            "peer-joined" => {
                let n = key(msg["name"].as_str().unwrap());
                assert!(view.name.is_some(), "peer-joined outside a room");
                assert_ne!(Some(&n), view.name.as_deref().map(key).as_ref(), "self peer-joined");
                assert!(view.known.insert(n), "peer-joined twice");
            }
            "peer-left" => {
                let n = key(msg["name"].as_str().unwrap());
                assert!(view.known.remove(&n), "peer-left for {n} before peer-joined");
            }
            "offer" | "answer" | "candidate" => {
                let from = key(msg["from"].as_str().expect("from is stamped"));
                assert_ne!(Some(&from), view.name.as_deref().map(key).as_ref(), "self-delivery");
                assert!(view.known.contains(&from), "relay from unknown {from}");
            }
            "error" => {
                let code = msg["code"].as_str().unwrap();
                assert!(ErrorCode::ALL.iter().any(|c| c.as_str() == code), "code {code}");
            }
            other => panic!("unexpected message type {other}"),
        }
    }
}

fuzz_target!(|actions: Vec<Action>| {
    let cfg = CoreConfig {
        max_room_size: 3,
        rate: 5,
        burst: 8,
        flood_close_after: Duration::from_secs(2),
        reconnect_grace: Duration::from_secs(5),
        resume_queue: 4,
        resume_queue_bytes: 2_000,
        resume_budget_bytes: 3_000,
        ..CoreConfig::default()
    };
    let mut w = World {
        core: Core::new(cfg, Box::new(Tokens(0))),
        now: Instant::now(),
        conns: Vec::new(),
        views: HashMap::new(),
        old: Vec::new(),
    };
    let mut next: ConnId = 1;
    for action in actions.into_iter().take(400) {
        match action {
            Action::Connect => {
                w.core.connect(next, w.now);
                w.conns.push(next);
                w.views.insert(next, View::default());
                next += 1;
            }
            Action::Join { conn, room, name, resume } => {
                let Some(c) = w.conn(conn) else { continue };
                let pick = usize::from(name);
                let msg = match w.old.get(pick % w.old.len().max(1)) {
                    Some((room, name, token)) if resume => {
                        json!({"type":"join","room":room,"name":name,"token":token})
                    }
                    _ => json!({"type":"join","room":ROOMS[usize::from(room) % ROOMS.len()],
                                "name":NAMES[pick % NAMES.len()]}),
                };
                w.send(c, &msg);
            }
            Action::Leave { conn } => {
                let Some(c) = w.conn(conn) else { continue };
                w.send(c, &json!({"type":"leave"}));
            }
            Action::Offer { conn, to, size } => {
                let Some(c) = w.conn(conn) else { continue };
                let sdp = "v".repeat(usize::from(size) * 8);
                let to = NAMES[usize::from(to) % NAMES.len()];
                w.send(c, &json!({"type":"offer","to":to,"sdp":sdp}));
            }
            Action::Candidate { conn, to } => {
                let Some(c) = w.conn(conn) else { continue };
                let to = NAMES[usize::from(to) % NAMES.len()];
                w.send(c, &json!({"type":"candidate","to":to,"candidate":null}));
            }
            Action::Raw { conn, text } => {
                let Some(c) = w.conn(conn) else { continue };
                w.core.frame(c, &text, w.now);
            }
            Action::Close { conn } => {
                let Some(c) = w.conn(conn) else { continue };
                w.core.closed(c);
                w.forget(c);
            }
            Action::Lose { conn } => {
                let Some(c) = w.conn(conn) else { continue };
                w.core.lost(c, w.now);
                w.forget(c);
            }
            Action::Lock { conn, locked } => {
                let Some(c) = w.conn(conn) else { continue };
                w.send(c, &json!({"type":"room-settings","locked":locked}));
            }
            Action::HostAct { conn, action, name } => {
                let Some(c) = w.conn(conn) else { continue };
                let ty = HOST_ACTIONS[usize::from(action) % HOST_ACTIONS.len()];
                let name = NAMES[usize::from(name) % NAMES.len()];
                w.send(c, &json!({"type":ty,"name":name}));
            }
            Action::Wait { millis } => {
                w.now += Duration::from_millis(u64::from(millis));
                w.core.handle_timeout(w.now);
                assert!(w.core.poll_timeout().is_none_or(|t| t > w.now), "a due timer is left");
            }
        }
        w.drain();
    }
});
