//! Scenario tests of media-server rooms: when a room moves, what each
//! member hears, what the media server is asked, sizes and refusals. The
//! harness ([`World`]) checks the protocol's invariants after every step.

use serde_json::{Value, json};

use super::tests::World;
use super::*;
use crate::config::CoreConfig;

fn world(sfu_above: Option<usize>) -> World {
    World::new(CoreConfig {
        sfu_above,
        max_room_size: 4,
        max_sfu_room_size: 6,
        ..CoreConfig::default()
    })
}

fn join(name: &str, sfu: bool) -> Value {
    if sfu {
        json!({"type":"join","room":"r","name":name,"caps":["sfu"]})
    } else {
        json!({"type":"join","room":"r","name":name})
    }
}

/// Joins NAME and returns its `joined`.
fn joined(w: &mut World, conn: ConnId, name: &str, sfu: bool) -> Value {
    w.send(conn, join(name, sfu));
    let mut got = w.take(conn);
    assert!(!got.is_empty(), "{name} got nothing");
    let j = got.remove(0);
    assert_eq!(j["type"], "joined", "{j}");
    assert!(got.is_empty(), "{name} got more: {got:?}");
    j
}

/// Members (ids 0, 1, …) joined in order as `m0`, `m1`, … with the `sfu` cap.
fn members(w: &mut World, n: usize) -> Vec<ConnId> {
    (0..n)
        .map(|i| {
            let c = w.connect();
            joined(w, c, &format!("m{i}"), true);
            c
        })
        .collect()
}

fn media_join(member: u64) -> MediaCmd {
    MediaCmd::Join {
        room: "r".into(),
        member,
        stream: stream_id(member),
    }
}

#[test]
fn a_room_moves_to_the_media_server_when_it_grows_past_the_threshold() {
    let mut w = world(Some(2));
    let conns = members(&mut w, 2);
    for &c in &conns {
        w.take(c);
    }
    assert!(
        w.media.is_empty(),
        "a mesh room asks nothing of the media server"
    );

    let third = w.connect();
    let j = joined(&mut w, third, "m2", true);
    assert_eq!(j["mode"], "sfu");
    assert_eq!(j["peers"], json!(["m0", "m1"]));
    assert_eq!(j["streams"], json!({"m0":"m0","m1":"m1","m2":"m2"}));
    // The others hear of the move (with the streams they know), then of the newcomer.
    for &c in &conns {
        w.expect(
            c,
            &[
                json!({"type":"mode","mode":"sfu","streams":{"m0":"m0","m1":"m1"}}),
                json!({"type":"peer-joined","name":"m2","stream":"m2"}),
            ],
        );
    }
    assert_eq!(w.media, vec![media_join(0), media_join(1), media_join(2)]);
    assert_eq!(w.core.stats().sfu_moves, 1);

    // A later joiner goes straight to the media server.
    w.media.clear();
    let fourth = w.connect();
    let j = joined(&mut w, fourth, "m3", true);
    assert_eq!(j["mode"], "sfu");
    assert_eq!(j["streams"]["m3"], "m3");
    for &c in conns.iter().chain([&third]) {
        w.expect(
            c,
            &[json!({"type":"peer-joined","name":"m3","stream":"m3"})],
        );
    }
    assert_eq!(w.media, vec![media_join(3)]);
}

#[test]
fn zero_sends_every_room_through_the_media_server_and_none_keeps_mesh() {
    let mut w = world(Some(0));
    let a = w.connect();
    let j = joined(&mut w, a, "alice", true);
    assert_eq!(j["mode"], "sfu");
    assert_eq!(w.media, vec![media_join(0)]);

    let mut w = world(None);
    members(&mut w, 4);
    assert!(w.media.is_empty(), "--no-sfu: never the media server");
    // And the mesh size holds.
    let fifth = w.connect();
    w.send(fifth, join("m4", true));
    w.expect_error(fifth, "room-full");
}

#[test]
fn a_member_without_the_sfu_cap_keeps_the_room_a_mesh_and_is_refused_from_an_sfu_room() {
    let mut w = world(Some(1));
    let a = w.connect();
    joined(&mut w, a, "old", false);
    let b = w.connect();
    let j = joined(&mut w, b, "new", true);
    assert!(
        j.get("mode").is_none(),
        "one member cannot: the room stays a mesh"
    );
    assert!(w.media.is_empty());
    assert_eq!(w.take(a), vec![json!({"type":"peer-joined","name":"new"})]);

    let mut w = world(Some(0));
    let a = w.connect();
    joined(&mut w, a, "alice", true);
    let b = w.connect();
    w.send(b, join("bob", false));
    w.expect_error(b, "unsupported");
    w.expect_nothing(a);
}

#[test]
fn media_server_rooms_have_their_own_size() {
    let mut w = world(Some(0));
    let conns = members(&mut w, 6);
    let extra = w.connect();
    w.send(extra, join("late", true));
    w.expect_error(extra, "room-full");
    assert_eq!(w.core.members("r").len(), conns.len());
}

#[test]
fn offers_to_the_server_go_to_the_media_server_and_its_answers_come_back() {
    let mut w = world(Some(0));
    let conns = members(&mut w, 2);
    for &c in &conns {
        w.take(c);
    }
    w.media.clear();
    w.send(
        conns[0],
        json!({"type":"offer","to":"@server","sdp":"v=0 up"}),
    );
    w.send(
        conns[0],
        json!({"type":"candidate","to":"@server","candidate":{"candidate":"x"}}),
    );
    w.send(
        conns[1],
        json!({"type":"answer","to":"@server","sdp":"v=0 down"}),
    );
    assert_eq!(
        w.media,
        vec![
            MediaCmd::Offer {
                member: 0,
                sdp: "v=0 up".into()
            },
            MediaCmd::Answer {
                member: 1,
                sdp: "v=0 down".into()
            },
        ]
    );
    w.expect_nothing(conns[0]);
    w.expect_nothing(conns[1]);

    w.core.media_event(MediaEvent::Answer {
        member: 0,
        sdp: "v=0 answer".into(),
    });
    w.core.media_event(MediaEvent::Offer {
        member: 1,
        sdp: "v=0 offer".into(),
    });
    w.send(conns[0], json!({"type":"leave"}));
    w.expect(
        conns[0],
        &[
            json!({"type":"answer","from":"@server","sdp":"v=0 answer"}),
            json!({"type":"left","room":"r"}),
        ],
    );
    w.expect(
        conns[1],
        &[
            json!({"type":"offer","from":"@server","sdp":"v=0 offer"}),
            json!({"type":"peer-left","name":"m0"}),
            json!({"type":"host","name":"m1"}),
        ],
    );
    assert_eq!(w.media.last(), Some(&MediaCmd::Leave { member: 0 }));
}

#[test]
fn the_server_is_no_one_in_a_mesh_and_no_one_may_be_called_it() {
    let mut w = world(Some(4));
    let a = w.connect();
    joined(&mut w, a, "alice", true);
    w.send(a, json!({"type":"offer","to":"@server","sdp":"v=0"}));
    w.expect_error(a, "unknown-peer");
    w.send(a, json!({"type":"layer","peer":"alice","want":"l"}));
    w.expect_error(a, "bad-message");
    w.send(a, json!({"type":"data","data":{"type":"chat","text":"hi"}}));
    w.expect_error(a, "bad-message");
    for name in ["@server", "@SERVER", " @server "] {
        let c = w.connect();
        w.send(c, json!({"type":"join","room":"q","name":name}));
        w.expect_error(c, "invalid-name");
    }
}

#[test]
fn with_the_media_server_off_the_name_is_an_ordinary_one() {
    // v1's name rules hold unchanged when no room can move.
    let mut w = world(None);
    let a = w.connect();
    joined(&mut w, a, "alice", false);
    let s = w.connect();
    let j = joined(&mut w, s, "@server", false);
    assert_eq!(j["peers"], json!(["alice"]));
    w.take(a);
    w.send(a, json!({"type":"offer","to":"@server","sdp":"v=0 mesh"}));
    assert_eq!(
        w.take(s),
        vec![json!({"type":"offer","from":"alice","sdp":"v=0 mesh"})]
    );
}

#[test]
fn layers_data_and_speakers() {
    let mut w = world(Some(0));
    let conns = members(&mut w, 3);
    for &c in &conns {
        w.take(c);
    }
    w.media.clear();
    w.send(conns[0], json!({"type":"layer","peer":"m2","want":"l"}));
    w.send(conns[0], json!({"type":"layer","peer":"M1","want":"off"}));
    assert_eq!(
        w.media,
        vec![
            MediaCmd::Layer {
                member: 0,
                publisher: 2,
                want: LayerWant::Low
            },
            MediaCmd::Layer {
                member: 0,
                publisher: 1,
                want: LayerWant::Off
            },
        ]
    );
    w.send(conns[0], json!({"type":"layer","peer":"m0","want":"h"}));
    w.expect_error(conns[0], "bad-message");
    w.send(conns[0], json!({"type":"layer","peer":"nobody","want":"h"}));
    w.expect_error(conns[0], "unknown-peer");
    w.send(conns[0], json!({"type":"layer","peer":"m1","want":"huge"}));
    w.expect_error(conns[0], "bad-message");

    w.send(
        conns[1],
        json!({"type":"data","data":{"type":"chat","text":"привет"}}),
    );
    w.expect_nothing(conns[1]);
    for c in [conns[0], conns[2]] {
        w.expect(
            c,
            &[json!({"type":"data","from":"m1","data":{"type":"chat","text":"привет"}})],
        );
    }
    w.send(conns[1], json!({"type":"data","data":"not an object"}));
    w.expect_error(conns[1], "bad-message");

    w.core.media_event(MediaEvent::Speaker {
        room: "r".into(),
        member: Some(2),
    });
    w.core.media_event(MediaEvent::Speaker {
        room: "r".into(),
        member: None,
    });
    w.send(conns[0], json!({"type":"leave"}));
    let got = w.take(conns[1]);
    assert_eq!(
        got,
        vec![
            json!({"type":"speaker","name":"m2"}),
            json!({"type":"speaker","name":null}),
            json!({"type":"peer-left","name":"m0"}),
            json!({"type":"host","name":"m1"}),
        ]
    );
}

#[test]
fn a_failed_media_connection_ends_that_member_only() {
    let mut w = world(Some(0));
    let conns = members(&mut w, 3);
    for &c in &conns {
        w.take(c);
    }
    w.core.media_event(MediaEvent::Failed { member: 1 });
    w.send(conns[0], json!({"type":"data","data":{"type":"ping"}}));
    w.expect(
        conns[2],
        &[
            json!({"type":"peer-left","name":"m1"}),
            json!({"type":"data","from":"m0","data":{"type":"ping"}}),
        ],
    );
    assert_eq!(w.core.members("r"), vec!["m0", "m2"]);
    assert_eq!(w.core.stats().leaves(Departure::MediaFailed), 1);
    // The member itself is told, is out of the room, and may join again.
    w.expect_error(conns[1], "unavailable");
    w.send(conns[1], json!({"type":"data","data":{"type":"ping"}}));
    w.expect_error(conns[1], "not-joined");
    joined(&mut w, conns[1], "m1", true);
    // A message the media server refuses: bad-message, and it stays.
    w.take(conns[0]);
    w.take(conns[2]);
    w.core.media_event(MediaEvent::Refused {
        member: 2,
        why: "malformed SDP".into(),
    });
    w.flush(conns[2]);
    w.expect_error(conns[2], "bad-message");
    assert!(w.core.members("r").contains(&"m2".to_owned()));
    // A media server at capacity: the member hears room-full, and is out.
    w.core.media_event(MediaEvent::Full { member: 0 });
    w.flush(conns[0]);
    w.expect_error(conns[0], "room-full");
    assert!(!w.core.members("r").contains(&"m0".to_owned()));
}

#[test]
fn a_lost_member_gets_the_media_servers_offer_when_it_resumes() {
    let mut w = world(Some(0));
    let conns = members(&mut w, 2);
    for &c in &conns {
        w.take(c);
    }
    w.lose(conns[1]);
    w.core.media_event(MediaEvent::Offer {
        member: 1,
        sdp: "v=0 while away".into(),
    });
    // Resume with the token from m1's joined (the harness kept it).
    let back = w.connect();
    let t = w.token_of(conns[1]);
    w.send(
        back,
        json!({"type":"join","room":"r","name":"m1","token":t,"caps":["sfu"]}),
    );
    let got = w.take(back);
    assert_eq!(got[0]["type"], "joined");
    assert_eq!(got[0]["resumed"], true);
    assert_eq!(got[0]["mode"], "sfu");
    assert_eq!(
        got[1],
        json!({"type":"offer","from":"@server","sdp":"v=0 while away"})
    );
    w.expect_nothing(conns[0]);
}

#[test]
fn caps_are_checked() {
    let mut w = world(Some(0));
    let c = w.connect();
    for caps in [
        json!("sfu"),
        json!([1]),
        json!(vec!["x"; 17]),
        json!(["x".repeat(33)]),
    ] {
        w.send(c, json!({"type":"join","room":"r","name":"a","caps":caps}));
        w.expect_error(c, "bad-message");
    }
    // Unknown entries are ignored, null is none.
    w.send(
        c,
        json!({"type":"join","room":"r","name":"a","caps":["video-2030","sfu"]}),
    );
    assert_eq!(w.take(c)[0]["mode"], "sfu");
    let d = w.connect();
    w.send(d, json!({"type":"join","room":"r","name":"b","caps":null}));
    w.expect_error(d, "unsupported");
}
