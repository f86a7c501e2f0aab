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
    },
    Leave(usize),
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

fn action() -> impl Strategy<Value = Action> {
    let slot = 0..SLOTS;
    prop_oneof![
        2 => slot.clone().prop_map(Action::Connect),
        6 => (slot.clone(), 0..ROOMS.len(), 0..NAMES.len(), proptest::option::of(0..SLOTS))
            .prop_map(|(slot, room, name, token)| Action::Join { slot, room, name, token }),
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

fn run(actions: Vec<Action>, cfg: CoreConfig) -> usize {
    let mut w = World::new(cfg);
    let mut slots: [Option<u64>; SLOTS] = [None; SLOTS];
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
            } => {
                let Some(c) = slots[slot] else { continue };
                let token = token.and_then(|t| tokens[t].clone()).map(|(_, _, t)| t);
                w.send(
                    c,
                    json!({"type":"join","room":ROOMS[room],"name":NAMES[name],"token":token}),
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
    resumes
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
    fn arbitrary_frames_never_panic(text in any::<String>()) {
        let mut w = World::new(CoreConfig::default());
        let c = w.connect();
        w.send_text(c, &text);
    }
}

/// A guard on the generator itself: the sequences above do reach resumes
/// (after losses, and over live sockets), so the invariants are checked there.
#[test]
fn the_generator_reaches_resumes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(action(), 40..80);
    let resumes: usize = (0..300)
        .map(|_| {
            run(
                strategy.new_tree(&mut runner).unwrap().current(),
                CoreConfig::default(),
            )
        })
        .sum();
    assert!(resumes >= 10, "only {resumes} resumes in 300 sequences");
}
