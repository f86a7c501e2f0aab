//! Property tests: arbitrary frames and message sequences fed to the core.
//! The core never panics, and the harness ([`World`]) checks the protocol's
//! invariants after every step.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::tests::World;
use crate::config::CoreConfig;

const SLOTS: usize = 5;

#[derive(Debug, Clone)]
enum Action {
    /// (Re)connect a slot; an old connection there vanishes (lost).
    Connect(usize),
    Join {
        slot: usize,
        room: usize,
        name: usize,
        token: Option<usize>,
        password: Option<usize>,
    },
    Leave(usize),
    /// `room-settings`: password 0 keep, 1 clear, 2.. set PASSWORDS[n-2];
    /// locked 0 keep, 1 lock, 2 unlock.
    Settings {
        slot: usize,
        password: usize,
        locked: usize,
    },
    /// admit, deny, remove or ask-mute naming NAMES[name].
    HostAct {
        slot: usize,
        action: usize,
        name: usize,
    },
    /// Join with the room, name and token another slot last received.
    Resume {
        slot: usize,
        of: usize,
    },
    Relay {
        slot: usize,
        kind: usize,
        to: usize,
        null: bool,
    },
    Garbage(usize, String),
    Close(usize),
    Lose(usize),
    Advance(u64),
}

const ROOMS: [&str; 4] = ["a", "b", "bad room", "A"];
const NAMES: [&str; 7] = ["alice", "Alice ", "bob", " carol", "", "x\u{1}", "BOB"];
const PASSWORDS: [&str; 2] = ["p", "q"];
const HOST_ACTIONS: [&str; 4] = ["admit", "deny", "remove", "ask-mute"];

fn action() -> impl Strategy<Value = Action> {
    action_in(ROOMS.len())
}

/// Actions on the first `rooms` of [`ROOMS`] (one room: everyone meets in
/// it, so lobbies, admissions and removals come up often).
fn action_in(rooms: usize) -> impl Strategy<Value = Action> {
    let slot = 0..SLOTS;
    prop_oneof![
        2 => slot.clone().prop_map(Action::Connect),
        6 => (slot.clone(), 0..rooms, 0..NAMES.len(), proptest::option::of(0..SLOTS),
              proptest::option::of(0..PASSWORDS.len()))
            .prop_map(|(slot, room, name, token, password)| Action::Join { slot, room, name, token, password }),
        3 => (slot.clone(),
              prop_oneof![3 => Just(0usize), 1 => Just(1), 1 => Just(2), 1 => Just(3)],
              prop_oneof![1 => Just(0usize), 2 => Just(1), 1 => Just(2)])
            .prop_map(|(slot, password, locked)| Action::Settings { slot, password, locked }),
        3 => (slot.clone(), 0..HOST_ACTIONS.len(), 0..NAMES.len())
            .prop_map(|(slot, action, name)| Action::HostAct { slot, action, name }),
        1 => slot.clone().prop_map(Action::Leave),
        3 => (slot.clone(), slot.clone()).prop_map(|(slot, of)| Action::Resume { slot, of }),
        6 => (slot.clone(), 0..3usize, 0..NAMES.len(), any::<bool>())
            .prop_map(|(slot, kind, to, null)| Action::Relay { slot, kind, to, null }),
        2 => (slot.clone(), any::<String>()).prop_map(|(s, t)| Action::Garbage(s, t)),
        2 => (slot.clone(), "\\{\"type\":\"(join|leave|offer|answer|candidate)\"[,\"a-z:{}\\[\\]0-9]{0,40}")
            .prop_map(|(s, t)| Action::Garbage(s, t)),
        1 => slot.clone().prop_map(Action::Close),
        1 => slot.clone().prop_map(Action::Lose),
        2 => (0u64..20_000).prop_map(Action::Advance),
    ]
}

/// What a sequence reached: resumes, knocks, admissions and removals.
#[derive(Debug, Default, Clone, Copy)]
struct Reached {
    resumes: usize,
    knocks: u64,
    admitted: u64,
    removed: u64,
}

fn run(actions: Vec<Action>, cfg: CoreConfig) -> Reached {
    let mut w = World::new(cfg);
    // Every slot starts connected; Connect, Close and Lose change that.
    let mut slots: [Option<u64>; SLOTS] = [None; SLOTS];
    for slot in &mut slots {
        *slot = Some(w.connect());
    }
    // The last token each slot received; kept when its connection goes, so
    // later joins can try to resume (or hijack) with it.
    let mut tokens: [Option<(String, String, String)>; SLOTS] = Default::default();
    let mut resumes = 0usize;
    for action in actions {
        match action {
            Action::Connect(s) => {
                if let Some(old) = slots[s] {
                    w.lose(old);
                }
                slots[s] = Some(w.connect());
            }
            Action::Join {
                slot,
                room,
                name,
                token,
                password,
            } => {
                let Some(c) = slots[slot] else { continue };
                let token = token.and_then(|t| tokens[t].clone()).map(|(_, _, t)| t);
                let password = password.map(|p| PASSWORDS[p]);
                w.send_prepared(
                    c,
                    json!({"type":"join","room":ROOMS[room],"name":NAMES[name],"token":token,"password":password}),
                );
                resumes += w.take(c).iter().filter(|m| m["resumed"] == true).count();
            }
            Action::Resume { slot, of } => {
                let (Some(c), Some((room, name, token))) = (slots[slot], tokens[of].clone()) else {
                    continue;
                };
                w.send(
                    c,
                    json!({"type":"join","room":room,"name":name,"token":token}),
                );
                resumes += w.take(c).iter().filter(|m| m["resumed"] == true).count();
            }
            Action::Settings {
                slot,
                password,
                locked,
            } => {
                // Mostly from a host, so that rooms do get locked; sometimes
                // from whoever, for the refusals.
                let host = slots.iter().flatten().copied().find(|c| w.core.is_host(*c));
                let Some(c) = host.filter(|_| locked != 0).or(slots[slot]) else {
                    continue;
                };
                let mut msg = json!({"type":"room-settings"});
                match password {
                    0 => {}
                    1 => msg["password"] = json!(null),
                    n => msg["password"] = json!(PASSWORDS[n - 2]),
                }
                match locked {
                    0 => {}
                    n => msg["locked"] = json!(n == 1),
                }
                w.send_prepared(c, msg);
            }
            Action::HostAct { slot, action, name } => {
                let host = slots.iter().flatten().copied().find(|c| w.core.is_host(*c));
                let Some(c) = host.filter(|_| slot % 2 == 0).or(slots[slot]) else {
                    continue;
                };
                w.send(c, json!({"type":HOST_ACTIONS[action],"name":NAMES[name]}));
                for s in &mut slots {
                    if s.is_some_and(|c| w.closed_with(c).is_some()) {
                        *s = None;
                    }
                }
            }
            Action::Leave(s) => {
                if let Some(c) = slots[s] {
                    w.send(c, json!({"type":"leave"}));
                }
            }
            Action::Relay {
                slot,
                kind,
                to,
                null,
            } => {
                let Some(c) = slots[slot] else { continue };
                let msg = match kind {
                    0 => json!({"type":"offer","to":NAMES[to],"sdp":"v=0"}),
                    1 => json!({"type":"answer","to":NAMES[to],"sdp":"v=0"}),
                    _ if null => json!({"type":"candidate","to":NAMES[to],"candidate":null}),
                    _ => json!({"type":"candidate","to":NAMES[to],"candidate":{"candidate":"c"}}),
                };
                w.send(c, msg);
            }
            Action::Garbage(s, text) => {
                if let Some(c) = slots[s] {
                    w.send_text(c, &text);
                }
            }
            Action::Close(s) => {
                if let Some(c) = slots[s].take() {
                    w.close(c);
                }
            }
            Action::Lose(s) => {
                if let Some(c) = slots[s].take() {
                    w.lose(c);
                }
            }
            Action::Advance(ms) => w.advance(Duration::from_millis(ms)),
        }
        for (s, c) in slots.iter().enumerate() {
            if let Some(c) = c {
                if let Some(m) = w.membership_of(*c) {
                    tokens[s] = Some(m);
                }
                w.take(*c);
            }
        }
    }
    // Everyone goes; every room disappears.
    for c in slots.iter().flatten() {
        w.close(*c);
    }
    w.advance(Duration::from_secs(3600));
    assert_eq!(w.core.room_count(), 0);
    assert_eq!(w.core.poll_timeout(), None);
    let stats = w.core.stats();
    Reached {
        resumes,
        knocks: stats.knocks,
        admitted: stats.admitted,
        removed: stats.leaves(super::Departure::Removed),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_sequences_keep_the_invariants(actions in proptest::collection::vec(action(), 1..80)) {
        run(actions, CoreConfig::default());
    }

    #[test]
    fn arbitrary_sequences_with_tight_limits(actions in proptest::collection::vec(action(), 1..80)) {
        let cfg = CoreConfig {
            max_room_size: 2,
            rate: 2,
            burst: 3,
            flood_close_after: Duration::from_secs(2),
            resume_queue: 2,
            resume_queue_bytes: 300,
            resume_budget_bytes: 500,
            ..CoreConfig::default()
        };
        run(actions, cfg);
    }

    #[test]
    fn one_room_sequences_keep_the_invariants(actions in proptest::collection::vec(action_in(1), 1..80)) {
        run(actions, CoreConfig { max_room_size: 3, max_lobby_size: 2, ..CoreConfig::default() });
    }

    #[test]
    fn arbitrary_frames_never_panic(text in any::<String>()) {
        let mut w = World::new(CoreConfig::default());
        let c = w.connect();
        w.send_text(c, &text);
    }
}

/// A guard on the generator itself: the sequences above do reach resumes
/// (after losses, and over live sockets), lobbies, admissions and removals,
/// so the invariants are checked there.
#[test]
fn the_generator_reaches_resumes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(action(), 40..80);
    let one_room = proptest::collection::vec(action_in(1), 40..80);
    let mut total = Reached::default();
    for i in 0..300 {
        let r = if i % 2 == 0 {
            run(
                strategy.new_tree(&mut runner).unwrap().current(),
                CoreConfig::default(),
            )
        } else {
            run(
                one_room.new_tree(&mut runner).unwrap().current(),
                CoreConfig::default(),
            )
        };
        total.resumes += r.resumes;
        total.knocks += r.knocks;
        total.admitted += r.admitted;
        total.removed += r.removed;
    }
    assert!(
        total.resumes >= 10,
        "only {} resumes in 300 sequences",
        total.resumes
    );
    // And the lobby and the host's actions, with their invariants.
    assert!(
        total.knocks >= 10 && total.admitted >= 3 && total.removed >= 3,
        "{total:?}"
    );
}
