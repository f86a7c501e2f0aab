//! The protocol parser and the name and room rules, fed arbitrary frames.
//!
//! Checks, for every input: parsing never panics; a name that passes the
//! rules is trimmed, 1–32 scalar values, free of control and format
//! characters, clashes with itself and is found by a query of its own
//! spelling; a relayed message re-encodes as valid JSON with `from` set.

#![no_main]

use huddle::protocol::{self, ClientMsg, MAX_NAME_CHARS, Name, NameQuery, validate_room};
use libfuzzer_sys::fuzz_target;

fn check_name(raw: &str) {
    let Ok(name) = Name::parse(raw) else { return };
    let s = name.as_str();
    assert_eq!(s, s.trim());
    let n = s.chars().count();
    assert!((1..=MAX_NAME_CHARS).contains(&n), "{n} characters");
    assert!(!s.chars().any(char::is_control));
    assert!(!name.key().is_empty());
    assert!(name.clashes(&name));
    assert!(name.is_exactly(raw));
    assert!(NameQuery::new(raw).names(&name), "{raw:?} names itself");
    let json: serde_json::Value = serde_json::from_str(name.json()).expect("name JSON");
    assert_eq!(json.as_str(), Some(s));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match protocol::parse(text) {
        Ok(ClientMsg::Join { room, name, password, access, .. }) => {
            check_name(&name);
            assert!(password.is_none_or(|p| p.len() <= protocol::MAX_PASSWORD_BYTES));
            assert!(access.is_none_or(|a| a.len() <= protocol::MAX_ACCESS_BYTES));
            if validate_room(&room).is_ok() {
                assert!(room != "." && room != "..");
                assert!((1..=protocol::MAX_ROOM_CHARS).contains(&room.chars().count()));
            }
        }
        Ok(ClientMsg::Relay { kind, to, payload }) => {
            check_name(&to);
            let from = Name::parse("fuzz").expect("valid");
            let frame = protocol::relay(kind, &from, payload);
            let v: serde_json::Value = serde_json::from_str(&frame).expect("relay is JSON");
            assert_eq!(v["from"], "fuzz");
            assert_eq!(v["type"], kind.type_str());
        }
        Ok(ClientMsg::Leave) => {}
        Ok(ClientMsg::RoomSettings { password, locked }) => {
            assert!(password.is_some() || locked.is_some(), "an empty room-settings parses");
            if let Some(Some(p)) = password {
                assert!(!p.is_empty() && p.len() <= protocol::MAX_PASSWORD_BYTES);
            }
        }
        Ok(ClientMsg::Host { name, .. }) => check_name(&name),
        Ok(ClientMsg::Layer { peer, .. }) => check_name(&peer),
        Ok(ClientMsg::Data { payload }) => {
            // What the others get is JSON, with the payload as it came.
            let from = Name::parse("fuzz").expect("valid");
            let frame = protocol::data(&from, payload);
            let v: serde_json::Value = serde_json::from_str(&frame).expect("data is JSON");
            let sent: serde_json::Value = serde_json::from_str(payload.get()).expect("JSON");
            assert_eq!(v["data"], sent);
            assert!(v["data"].is_object());
        }
        Err(refusal) => {
            let v: serde_json::Value =
                serde_json::from_str(&protocol::error(&refusal)).expect("error is JSON");
            assert_eq!(v["type"], "error");
        }
    }
    // The rules on their own too, for inputs that are not JSON.
    check_name(text);
    let _ = validate_room(text);
});
