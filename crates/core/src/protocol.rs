//! The wire format of protocol v1: parsing client messages, encoding server
//! messages, and the name and room rules.
//!
//! A frame is parsed once. Its top-level fields are split with
//! [`RawValue`] so that the relayed payloads (`sdp`, `candidate`) are never
//! decoded or re-encoded: the server treats them as opaque and copies their
//! JSON text into the relayed message. Only the fields a message type needs
//! are type-checked; anything else a client adds is dropped.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;
use unicode_general_category::{GeneralCategory, get_general_category};

/// Longest name, in Unicode scalar values, after trimming.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest room name, in Unicode scalar values.
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest room password, in bytes of UTF-8 (a passphrase fits; a
/// megabyte of "password" for the hash function to chew on does not).
pub const MAX_PASSWORD_BYTES: usize = 256;
/// Longest operator token (`access`), in bytes.
pub const MAX_ACCESS_BYTES: usize = 4096;

/// The error codes of protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Malformed JSON, unknown `type`, missing or mistyped field, relay to oneself.
    BadMessage,
    /// The name breaks the name rules.
    InvalidName,
    /// The room name breaks the room rules.
    InvalidRoom,
    /// Another member of the room has that name.
    NameTaken,
    /// The room holds `--max-room-size` members already.
    RoomFull,
    /// The request needs a room and the client is in none.
    NotJoined,
    /// No member of the sender's room has that name.
    UnknownPeer,
    /// The client sends faster than `--rate` / `--burst` allow.
    RateLimited,
    /// The room has a password and the join carried none.
    PasswordRequired,
    /// The join's password is not the room's.
    WrongPassword,
    /// The host turned the waiting joiner away (or the room ended while it waited).
    Denied,
    /// A host-only message from a member that is not the host.
    NotHost,
    /// The operator token (`access`) is missing, malformed, expired, badly
    /// signed, or for another room or name.
    Unauthorized,
    /// The service cannot take the request right now; try again.
    Unavailable,
    /// The room runs in a mode the client did not say it speaks (a room on
    /// the media server, joined without `"caps":["sfu"]`).
    Unsupported,
}

impl ErrorCode {
    /// Every code, for tests and docs.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::BadMessage,
        ErrorCode::InvalidName,
        ErrorCode::InvalidRoom,
        ErrorCode::NameTaken,
        ErrorCode::RoomFull,
        ErrorCode::NotJoined,
        ErrorCode::UnknownPeer,
        ErrorCode::RateLimited,
        ErrorCode::PasswordRequired,
        ErrorCode::WrongPassword,
        ErrorCode::Denied,
        ErrorCode::NotHost,
        ErrorCode::Unauthorized,
        ErrorCode::Unavailable,
        ErrorCode::Unsupported,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::InvalidName => "invalid-name",
            ErrorCode::InvalidRoom => "invalid-room",
            ErrorCode::NameTaken => "name-taken",
            ErrorCode::RoomFull => "room-full",
            ErrorCode::NotJoined => "not-joined",
            ErrorCode::UnknownPeer => "unknown-peer",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::PasswordRequired => "password-required",
            ErrorCode::WrongPassword => "wrong-password",
            ErrorCode::Denied => "denied",
            ErrorCode::NotHost => "not-host",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Unsupported => "unsupported",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request the server refuses, with the text sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    /// The protocol error code.
    pub code: ErrorCode,
    /// A sentence a person can act on.
    pub message: Cow<'static, str>,
}

impl Refusal {
    /// A refusal with a fixed message.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadMessage, message)
    }
}

/// The three messages the server relays between members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayKind {
    /// An SDP offer; payload field `sdp` (a string).
    Offer,
    /// An SDP answer; payload field `sdp` (a string).
    Answer,
    /// An ICE candidate; payload field `candidate` (an object or null).
    Candidate,
}

impl RelayKind {
    /// The three kinds, in declaration order.
    pub const ALL: [RelayKind; 3] = [RelayKind::Offer, RelayKind::Answer, RelayKind::Candidate];

    /// The `type` on the wire.
    pub fn type_str(self) -> &'static str {
        match self {
            RelayKind::Offer => "offer",
            RelayKind::Answer => "answer",
            RelayKind::Candidate => "candidate",
        }
    }

    /// The name of the payload field.
    pub fn payload_field(self) -> &'static str {
        match self {
            RelayKind::Offer | RelayKind::Answer => "sdp",
            RelayKind::Candidate => "candidate",
        }
    }
}

/// A well-formed client message. Values are not validated yet (that is the
/// core's job, after the shape check), and borrow from the frame.
#[derive(Debug, Clone)]
pub enum ClientMsg<'a> {
    /// `{"type":"join","room":…,"name":…,"token"?:…}`
    Join {
        /// Room name as sent.
        room: Cow<'a, str>,
        /// Member name as sent (not trimmed yet).
        name: Cow<'a, str>,
        /// Resume token; `null` and absent are the same.
        token: Option<Cow<'a, str>>,
        /// The room's password (v1.1); `null` and absent are the same.
        password: Option<Cow<'a, str>>,
        /// The operator token (v1.1); `null` and absent are the same.
        access: Option<Cow<'a, str>>,
        /// What the client speaks besides mesh calls (`caps`).
        caps: Caps,
    },
    /// `{"type":"layer","peer":…,"want":…}` (media-server rooms): which
    /// layer of PEER's camera the sender wants.
    Layer {
        /// The publisher's name as sent.
        peer: Cow<'a, str>,
        /// The layer.
        want: LayerWant,
    },
    /// `{"type":"data","data":{…}}` (media-server rooms): a data-channel
    /// message (chat, hand, reaction) for everyone else in the room.
    Data {
        /// The object's JSON text, copied verbatim.
        payload: &'a RawValue,
    },
    /// `{"type":"room-settings","password"?:…,"locked"?:…}` (host only).
    RoomSettings {
        /// `None`: keep; `Some(None)`: clear; `Some(Some(p))`: set to `p`
        /// (never empty).
        password: Option<Option<Cow<'a, str>>>,
        /// `None`: keep.
        locked: Option<bool>,
    },
    /// `admit`, `deny`, `remove` or `ask-mute` naming someone (host only).
    Host {
        /// Which of the four.
        action: HostAction,
        /// The name as sent.
        name: Cow<'a, str>,
    },
    /// `{"type":"leave"}`
    Leave,
    /// `offer`, `answer` or `candidate` addressed to a member.
    Relay {
        /// Which of the three.
        kind: RelayKind,
        /// The addressee's name as sent.
        to: Cow<'a, str>,
        /// The payload's JSON text, copied verbatim.
        payload: &'a RawValue,
    },
}

/// What a client says it speaks in `join`'s `caps`. Unknown entries are
/// ignored (a newer client may list more).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// `"sfu"`: it can call through the media server (an up and a down
    /// connection to `@server`, see docs/protocol.md).
    pub sfu: bool,
}

/// The most entries `caps` may have.
pub const MAX_CAPS: usize = 16;
/// The longest entry of `caps`, in bytes.
pub const MAX_CAP_BYTES: usize = 32;

/// The reserved name that addresses the media server in relays, and that
/// stamps the server's own offers and answers (`from`). No member may take it.
pub const SERVER_PEER: &str = "@server";

/// Which simulcast layer of a camera a subscriber wants (`layer`'s `want`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerWant {
    /// The full resolution (`h`).
    High,
    /// Half (`m`).
    Mid,
    /// A quarter (`l`), for thumbnails.
    Low,
    /// Nothing (the tile is off screen); audio still flows.
    Off,
}

impl LayerWant {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "h" => LayerWant::High,
            "m" => LayerWant::Mid,
            "l" => LayerWant::Low,
            "off" => LayerWant::Off,
            _ => return None,
        })
    }
}

/// Parses `caps`: absent or null is none; otherwise an array of at most
/// MAX_CAPS strings of at most MAX_CAP_BYTES each.
fn parse_caps(raw: Option<&RawValue>) -> Result<Caps, Refusal> {
    let Some(raw) = raw else {
        return Ok(Caps::default());
    };
    if raw.get() == "null" {
        return Ok(Caps::default());
    }
    let bad = || {
        Refusal::bad(format!(
            "\"caps\" must be an array of at most {MAX_CAPS} strings of at most {MAX_CAP_BYTES} bytes"
        ))
    };
    let list: Vec<Cow<'_, str>> = serde_json::from_str(raw.get()).map_err(|_| bad())?;
    if list.len() > MAX_CAPS || list.iter().any(|c| c.len() > MAX_CAP_BYTES) {
        return Err(bad());
    }
    Ok(Caps {
        sfu: list.iter().any(|c| c == "sfu"),
    })
}

/// The host's messages that name someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAction {
    /// Let a waiting joiner in.
    Admit,
    /// Turn a waiting joiner away.
    Deny,
    /// Remove a member.
    Remove,
    /// Ask a member to mute.
    AskMute,
}

impl HostAction {
    /// The `type` on the wire.
    pub fn type_str(self) -> &'static str {
        match self {
            HostAction::Admit => "admit",
            HostAction::Deny => "deny",
            HostAction::Remove => "remove",
            HostAction::AskMute => "ask-mute",
        }
    }
}

/// The top-level fields of a client frame, undecoded. A present `null` is
/// kept as the raw text `null` (distinct from an absent field).
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "present")]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    room: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    name: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    token: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    to: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    sdp: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    candidate: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    password: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    access: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    locked: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    caps: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    peer: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    want: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    data: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Decodes a JSON string value, borrowing when it has no escapes.
fn string_value<'a>(raw: &'a RawValue) -> Option<Cow<'a, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    // A RawValue is valid JSON: a string without backslashes is its own
    // contents between the quotes.
    if !text.contains('\\') {
        return text.get(1..text.len() - 1).map(Cow::Borrowed);
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

fn required_string<'a>(
    raw: Option<&'a RawValue>,
    field: &'static str,
) -> Result<Cow<'a, str>, Refusal> {
    match raw {
        None => Err(Refusal::bad(format!("missing field \"{field}\""))),
        Some(raw) => {
            string_value(raw).ok_or_else(|| Refusal::bad(format!("\"{field}\" must be a string")))
        }
    }
}

/// An optional string field where `null` and absent are the same.
fn optional_string<'a>(
    raw: Option<&'a RawValue>,
    field: &'static str,
) -> Result<Option<Cow<'a, str>>, Refusal> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => string_value(raw)
            .map(Some)
            .ok_or_else(|| Refusal::bad(format!("\"{field}\" must be a string or null"))),
    }
}

/// An optional string no longer than `max` bytes.
fn bounded_string<'a>(
    raw: Option<&'a RawValue>,
    field: &'static str,
    max: usize,
) -> Result<Option<Cow<'a, str>>, Refusal> {
    let value = optional_string(raw, field)?;
    if value.as_ref().is_some_and(|v| v.len() > max) {
        return Err(Refusal::bad(format!(
            "\"{field}\" is longer than {max} bytes"
        )));
    }
    Ok(value)
}

/// Whether a relayed payload is JSON every receiver can read. `RawValue`
/// checks the syntax only, so it lets through what strict parsers (serde_json
/// in `huddle bot` and `huddle load`, among others) refuse: a `\uD800`-style
/// escape of a lone surrogate, and a number beyond the range of a double
/// (`1e999`, or hundreds of digits). One sender could then make a receiver
/// drop the whole message. Both were found by fuzzing. Only a payload that
/// could hold either is parsed again: one with a `\u` escape, or (outside a
/// plain string) an exponent or a long run of digits; an SDP string or a
/// browser's candidate has none of them.
fn readable_everywhere(payload: &RawValue) -> bool {
    let json = payload.get();
    let risky = json.contains("\\u") || (!json.starts_with('"') && risky_number(json.as_bytes()));
    !risky || serde_json::from_str::<serde_json::Value>(json).is_ok()
}

/// Whether JSON text may hold a number out of a double's range: a digit
/// followed by an exponent, or a run of more than 300 digits.
fn risky_number(json: &[u8]) -> bool {
    let mut run = 0;
    for pair in json.windows(2) {
        if pair[0].is_ascii_digit() {
            run += 1;
            if run > 300 || matches!(pair[1], b'e' | b'E') {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Parses one text frame. Shape errors are `bad-message` refusals.
pub fn parse(text: &str) -> Result<ClientMsg<'_>, Refusal> {
    let fields: Fields<'_> = match serde_json::from_str(text) {
        Ok(fields) => fields,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Err(Refusal::bad("the message is not valid JSON"));
        }
        Err(e) if e.to_string().starts_with("duplicate field") => {
            return Err(Refusal::bad("the message repeats a field"));
        }
        Err(_) => return Err(Refusal::bad("the message must be a JSON object")),
    };
    let kind = required_string(fields.kind, "type")?;
    match &*kind {
        "join" => {
            let room = required_string(fields.room, "room")?;
            let name = required_string(fields.name, "name")?;
            let token = optional_string(fields.token, "token")?;
            let password = bounded_string(fields.password, "password", MAX_PASSWORD_BYTES)?;
            let access = bounded_string(fields.access, "access", MAX_ACCESS_BYTES)?;
            let caps = parse_caps(fields.caps)?;
            Ok(ClientMsg::Join {
                room,
                name,
                token,
                password,
                access,
                caps,
            })
        }
        "layer" => {
            let peer = required_string(fields.peer, "peer")?;
            let want = required_string(fields.want, "want")?;
            let want = LayerWant::parse(&want)
                .ok_or_else(|| Refusal::bad("\"want\" must be \"h\", \"m\", \"l\" or \"off\""))?;
            Ok(ClientMsg::Layer { peer, want })
        }
        "data" => {
            let payload = fields
                .data
                .ok_or_else(|| Refusal::bad("missing field \"data\""))?;
            if !payload.get().starts_with('{') {
                return Err(Refusal::bad("\"data\" must be an object"));
            }
            if !readable_everywhere(payload) {
                return Err(Refusal::bad("\"data\" holds an invalid \\u escape"));
            }
            Ok(ClientMsg::Data { payload })
        }
        "room-settings" => {
            let password = match fields.password {
                None => None,
                Some(raw) if raw.get() == "null" => Some(None),
                Some(raw) => {
                    let value = bounded_string(Some(raw), "password", MAX_PASSWORD_BYTES)?
                        .expect("not null");
                    if value.is_empty() {
                        return Err(Refusal::bad(
                            "\"password\" cannot be empty: send null to clear it",
                        ));
                    }
                    Some(Some(value))
                }
            };
            let locked = match fields.locked.map(RawValue::get) {
                None => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                Some(_) => return Err(Refusal::bad("\"locked\" must be true or false")),
            };
            if password.is_none() && locked.is_none() {
                return Err(Refusal::bad(
                    "room-settings needs \"password\" or \"locked\" (or both)",
                ));
            }
            Ok(ClientMsg::RoomSettings { password, locked })
        }
        "admit" | "deny" | "remove" | "ask-mute" => {
            let action = match &*kind {
                "admit" => HostAction::Admit,
                "deny" => HostAction::Deny,
                "remove" => HostAction::Remove,
                _ => HostAction::AskMute,
            };
            let name = required_string(fields.name, "name")?;
            Ok(ClientMsg::Host { action, name })
        }
        "leave" => Ok(ClientMsg::Leave),
        "offer" | "answer" => {
            let kind = if &*kind == "offer" {
                RelayKind::Offer
            } else {
                RelayKind::Answer
            };
            let to = required_string(fields.to, "to")?;
            let payload = fields
                .sdp
                .ok_or_else(|| Refusal::bad("missing field \"sdp\""))?;
            if !payload.get().starts_with('"') {
                return Err(Refusal::bad("\"sdp\" must be a string"));
            }
            if !readable_everywhere(payload) {
                return Err(Refusal::bad("\"sdp\" holds an invalid \\u escape"));
            }
            Ok(ClientMsg::Relay { kind, to, payload })
        }
        "candidate" => {
            let to = required_string(fields.to, "to")?;
            let payload = fields
                .candidate
                .ok_or_else(|| Refusal::bad("missing field \"candidate\""))?;
            let json = payload.get();
            if !(json.starts_with('{') || json == "null") {
                return Err(Refusal::bad("\"candidate\" must be an object or null"));
            }
            if !readable_everywhere(payload) {
                return Err(Refusal::bad("\"candidate\" holds an invalid \\u escape"));
            }
            Ok(ClientMsg::Relay {
                kind: RelayKind::Candidate,
                to,
                payload,
            })
        }
        _ => Err(Refusal::bad(
            "unknown message type (expected join, leave, offer, answer, candidate, room-settings, admit, deny, remove, ask-mute, layer or data)",
        )),
    }
}

/// A member name that follows the rules: trimmed of white space, 1–32
/// scalar values, no control (Cc) or format (Cf) characters, and something
/// visible left.
///
/// Two names are the same member name when they *clash*: equal after NFKC
/// normalization and case folding, or with equal UTS #39 confusable
/// skeletons (of the folded name, and of the name as written, so that both
/// "аlice" with a Cyrillic а and "aIice" with a capital I clash with
/// "alice"). The checks are the kept crates' (`unicode-normalization`,
/// `caseless`, `unicode-security`), not tables of our own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    display: String,
    keys: NameKeys,
    json: String,
}

/// The comparison forms of a name (see [`Name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameKeys {
    /// NFKC, case-folded, NFKC again, default-ignorable code points removed.
    fold: String,
    /// Confusable skeleton of `fold`.
    folded_skeleton: String,
    /// Confusable skeleton of the NFKC form, case kept.
    skeleton: String,
}

impl NameKeys {
    fn of(trimmed: &str) -> Self {
        use unicode_normalization::UnicodeNormalization as _;
        let nfkc: String = trimmed.nfkc().collect();
        let fold: String = caseless::default_case_fold_str(&nfkc)
            .nfkc()
            .filter(|c| !default_ignorable(*c))
            .collect();
        let folded_skeleton = unicode_security::skeleton(&fold).collect();
        let skeleton = unicode_security::skeleton(&nfkc)
            .filter(|c| !default_ignorable(*c))
            .collect();
        Self {
            fold,
            folded_skeleton,
            skeleton,
        }
    }

    fn clash(&self, other: &NameKeys) -> bool {
        self.fold == other.fold
            || self.folded_skeleton == other.folded_skeleton
            || self.skeleton == other.skeleton
    }
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt,
/// Unicode 15): characters that render as nothing. Most are format
/// characters, refused outright; the rest (fillers, variation selectors,
/// the combining grapheme joiner) are dropped from the comparison key so
/// that they cannot make a name look new or empty. Written out because no
/// kept crate exposes this one property, and the list is fixed by the
/// standard.
fn default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

impl Name {
    /// Validates a name as sent by a client.
    pub fn parse(raw: &str) -> Result<Name, Refusal> {
        let display = raw.trim();
        let count = display.chars().count();
        if count == 0 {
            return Err(Refusal::new(ErrorCode::InvalidName, "the name is empty"));
        }
        if count > MAX_NAME_CHARS {
            return Err(Refusal::new(
                ErrorCode::InvalidName,
                format!("the name is longer than {MAX_NAME_CHARS} characters"),
            ));
        }
        if display.chars().any(char::is_control) {
            return Err(Refusal::new(
                ErrorCode::InvalidName,
                "the name contains a control character",
            ));
        }
        if display
            .chars()
            .any(|c| !c.is_ascii() && get_general_category(c) == GeneralCategory::Format)
        {
            return Err(Refusal::new(
                ErrorCode::InvalidName,
                "the name contains an invisible formatting character (zero-width or text-direction)",
            ));
        }
        let keys = NameKeys::of(display);
        if keys.fold.is_empty() {
            return Err(Refusal::new(
                ErrorCode::InvalidName,
                "the name has no visible characters",
            ));
        }
        Ok(Name {
            display: display.to_owned(),
            keys,
            json: serde_json::to_string(display).expect("strings serialize"),
        })
    }

    /// The name as shown (trimmed).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The NFKC case-folded form, as names are compared.
    pub fn key(&self) -> &str {
        &self.keys.fold
    }

    /// The name as a JSON string literal, ready to splice into a message.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Whether two names count as the same in a room (see [`Name`]).
    pub fn clashes(&self, other: &Name) -> bool {
        self.keys.clash(&other.keys)
    }

    /// Whether `other` (as a client wrote it) names exactly this member, as
    /// written in `peers` and `from` (the common case of a relay's `to`;
    /// compares without allocating).
    pub fn is_exactly(&self, other: &str) -> bool {
        self.display == other || self.display == other.trim()
    }
}

/// The comparison forms of a name a client wrote (a relay's `to`), to find
/// the member it names when it is not spelled exactly as the member's.
#[derive(Debug)]
pub struct NameQuery(NameKeys);

impl NameQuery {
    /// The query for `raw`, trimmed as names are.
    pub fn new(raw: &str) -> Self {
        Self(NameKeys::of(raw.trim()))
    }

    /// Whether this names `name`.
    pub fn names(&self, name: &Name) -> bool {
        self.0.clash(&name.keys)
    }
}

/// Validates a room name: 1–64 scalar values, each a letter, a decimal digit,
/// `-`, `_` or `.`, and not `.` or `..`. Room names are compared exactly.
pub fn validate_room(room: &str) -> Result<(), Refusal> {
    let count = room.chars().count();
    if count == 0 {
        return Err(Refusal::new(
            ErrorCode::InvalidRoom,
            "the room name is empty",
        ));
    }
    if count > MAX_ROOM_CHARS {
        return Err(Refusal::new(
            ErrorCode::InvalidRoom,
            format!("the room name is longer than {MAX_ROOM_CHARS} characters"),
        ));
    }
    if !room.chars().all(room_char) {
        return Err(Refusal::new(
            ErrorCode::InvalidRoom,
            "a room name may only contain letters, digits, '-', '_' and '.'",
        ));
    }
    if room == "." || room == ".." {
        // Their share links (/r/. and /r/..) would name another page.
        return Err(Refusal::new(
            ErrorCode::InvalidRoom,
            "a room name cannot be \".\" or \"..\"",
        ));
    }
    Ok(())
}

fn room_char(c: char) -> bool {
    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
        return true;
    }
    if c.is_ascii() {
        return false;
    }
    matches!(
        get_general_category(c),
        GeneralCategory::UppercaseLetter
            | GeneralCategory::LowercaseLetter
            | GeneralCategory::TitlecaseLetter
            | GeneralCategory::ModifierLetter
            | GeneralCategory::OtherLetter
            | GeneralCategory::DecimalNumber
    )
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping, written straight into the buffer.
    out.push_str(&serde_json::to_string(s).expect("strings serialize"));
}

/// What `joined` tells about the room's access (v1.1).
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The room's host.
    pub host: &'a Name,
    /// Whether the lobby is locked.
    pub locked: bool,
    /// Whether a password is set.
    pub protected: bool,
}

/// `{"type":"joined",…}` for the joiner.
pub fn joined<'a>(
    room: &str,
    name: &Name,
    peers: impl Iterator<Item = &'a Name>,
    ice_servers_json: &str,
    token: &str,
    resumed: bool,
    access: Access<'_>,
) -> String {
    let mut out = String::with_capacity(128 + ice_servers_json.len());
    out.push_str("{\"type\":\"joined\",\"room\":");
    push_json_str(&mut out, room);
    out.push_str(",\"name\":");
    out.push_str(name.json());
    out.push_str(",\"peers\":[");
    for (i, peer) in peers.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(peer.json());
    }
    out.push_str("],\"iceServers\":");
    out.push_str(ice_servers_json);
    out.push_str(",\"token\":");
    push_json_str(&mut out, token);
    if resumed {
        out.push_str(",\"resumed\":true");
    }
    out.push_str(",\"host\":");
    out.push_str(access.host.json());
    let _ = write!(
        out,
        ",\"locked\":{},\"protected\":{}}}",
        access.locked, access.protected
    );
    out
}

/// A media-server room's mode and each member's stream id (the `msid`
/// stream id its tracks carry on the down connection): the fields `joined`
/// and `mode` add (`,"mode":"sfu","streams":{NAME:ID,…}`); nothing for a
/// mesh room.
pub fn push_mode<'a>(
    out: &mut String,
    sfu: bool,
    streams: impl Iterator<Item = (&'a Name, &'a str)>,
) {
    if !sfu {
        // A mesh room is what a v1 client expects: no field at all.
        return;
    }
    out.push_str(",\"mode\":\"sfu\",\"streams\":{");
    for (i, (name, id)) in streams.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name.json());
        out.push(':');
        push_json_str(out, id);
    }
    out.push('}');
}

/// `{"type":"mode","mode":"sfu","streams":{…}}`: the room moved to the media
/// server (sent to the members already in it).
pub fn mode_sfu<'a>(streams: impl Iterator<Item = (&'a Name, &'a str)>) -> String {
    let mut out = String::from("{\"type\":\"mode\"");
    push_mode(&mut out, true, streams);
    out.push('}');
    out
}

/// `{"type":"peer-joined","name":…,"stream":…}` in a media-server room.
pub fn peer_joined_sfu(name: &Name, stream: &str) -> String {
    let mut out = format!(
        "{{\"type\":\"peer-joined\",\"name\":{},\"stream\":",
        name.json()
    );
    push_json_str(&mut out, stream);
    out.push('}');
    out
}

/// `{"type":"speaker","name":…|null}`: the media server's active speaker.
pub fn speaker(name: Option<&Name>) -> String {
    format!(
        "{{\"type\":\"speaker\",\"name\":{}}}",
        name.map_or("null", |n| n.json())
    )
}

/// `{"type":"offer"|"answer","from":"@server","sdp":…}`: the media server's
/// own offer (down connection) or answer (up connection).
pub fn server_sdp(kind: RelayKind, sdp: &str) -> String {
    let mut out = format!(
        "{{\"type\":\"{}\",\"from\":\"{SERVER_PEER}\",\"sdp\":",
        kind.type_str()
    );
    push_json_str(&mut out, sdp);
    out.push('}');
    out
}

/// `{"type":"data","from":…,"data":{…}}`: a member's data message, relayed.
pub fn data(from: &Name, payload: &RawValue) -> String {
    let mut out = String::with_capacity(40 + from.json().len() + payload.get().len());
    out.push_str("{\"type\":\"data\",\"from\":");
    out.push_str(from.json());
    out.push_str(",\"data\":");
    out.push_str(payload.get());
    out.push('}');
    out
}

/// `{"type":"host","name":…}`
pub fn host(name: &Name) -> String {
    format!("{{\"type\":\"host\",\"name\":{}}}", name.json())
}

/// `{"type":"room-settings","locked":…,"protected":…}`
pub fn room_settings(locked: bool, protected: bool) -> String {
    format!("{{\"type\":\"room-settings\",\"locked\":{locked},\"protected\":{protected}}}")
}

/// `{"type":"waiting","room":…}`
pub fn waiting(room: &str) -> String {
    let mut out = String::from("{\"type\":\"waiting\",\"room\":");
    push_json_str(&mut out, room);
    out.push('}');
    out
}

/// `{"type":"knock","name":…}`
pub fn knock(name: &Name) -> String {
    format!("{{\"type\":\"knock\",\"name\":{}}}", name.json())
}

/// `{"type":"knock-gone","name":…}`
pub fn knock_gone(name: &Name) -> String {
    format!("{{\"type\":\"knock-gone\",\"name\":{}}}", name.json())
}

/// `{"type":"removed","by":…}`
pub fn removed(by: &Name) -> String {
    format!("{{\"type\":\"removed\",\"by\":{}}}", by.json())
}

/// `{"type":"ask-mute","by":…}`
pub fn ask_mute(by: &Name) -> String {
    format!("{{\"type\":\"ask-mute\",\"by\":{}}}", by.json())
}

/// `{"type":"peer-joined","name":…}`
pub fn peer_joined(name: &Name) -> String {
    format!("{{\"type\":\"peer-joined\",\"name\":{}}}", name.json())
}

/// `{"type":"peer-left","name":…}`
pub fn peer_left(name: &Name) -> String {
    format!("{{\"type\":\"peer-left\",\"name\":{}}}", name.json())
}

/// `{"type":"left","room":…}`
pub fn left(room: &str) -> String {
    let mut out = String::from("{\"type\":\"left\",\"room\":");
    push_json_str(&mut out, room);
    out.push('}');
    out
}

/// `{"type":"error","code":…,"message":…}`
pub fn error(refusal: &Refusal) -> String {
    let mut out = String::with_capacity(64 + refusal.message.len());
    let _ = write!(
        out,
        "{{\"type\":\"error\",\"code\":\"{}\",\"message\":",
        refusal.code
    );
    push_json_str(&mut out, &refusal.message);
    out.push('}');
    out
}

/// The relayed message: the payload copied verbatim, `from` stamped by the server.
pub fn relay(kind: RelayKind, from: &Name, payload: &RawValue) -> String {
    let payload = payload.get();
    // {"type":"KIND","from":FROM,"FIELD":PAYLOAD} in one allocation.
    let fixed = r#"{"type":"","from":,"":}"#.len();
    let mut out = String::with_capacity(
        fixed
            + kind.type_str().len()
            + from.json().len()
            + kind.payload_field().len()
            + payload.len(),
    );
    out.push_str("{\"type\":\"");
    out.push_str(kind.type_str());
    out.push_str("\",\"from\":");
    out.push_str(from.json());
    out.push_str(",\"");
    out.push_str(kind.payload_field());
    out.push_str("\":");
    out.push_str(payload);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn code(text: &str) -> ErrorCode {
        parse(text).unwrap_err().code
    }

    #[test]
    fn parses_every_client_message() {
        assert!(matches!(
            parse(r#"{"type":"join","room":"r","name":"alice"}"#).unwrap(),
            ClientMsg::Join { room, name, token: None, .. } if room == "r" && name == "alice"
        ));
        assert!(matches!(
            parse(r#"{"type":"join","room":"r","name":"a","token":null}"#).unwrap(),
            ClientMsg::Join { token: None, .. }
        ));
        assert!(matches!(
            parse(r#"{"type":"join","room":"r","name":"a","token":"t"}"#).unwrap(),
            ClientMsg::Join { token: Some(t), .. } if t == "t"
        ));
        assert!(matches!(
            parse(r#"{"type":"leave"}"#).unwrap(),
            ClientMsg::Leave
        ));
        let ClientMsg::Relay { kind, to, payload } =
            parse(r#"{"type":"offer","to":"bob","sdp":"v=0\r\n","x":1}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (kind, &*to, payload.get()),
            (RelayKind::Offer, "bob", r#""v=0\r\n""#)
        );
        assert!(matches!(
            parse(r#"{"type":"candidate","to":"bob","candidate":null}"#).unwrap(),
            ClientMsg::Relay {
                kind: RelayKind::Candidate,
                ..
            }
        ));
    }

    #[test]
    fn parses_room_access_messages() {
        let ClientMsg::Join {
            password, access, ..
        } = parse(r#"{"type":"join","room":"r","name":"a","password":"pw","access":"jwt"}"#)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (password.as_deref(), access.as_deref()),
            (Some("pw"), Some("jwt"))
        );
        let ClientMsg::Join {
            password, access, ..
        } = parse(r#"{"type":"join","room":"r","name":"a","password":null,"access":null}"#)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!((password, access), (None, None));
        for (text, want_password, want_locked) in [
            (
                r#"{"type":"room-settings","password":"s"}"#,
                Some(Some("s")),
                None,
            ),
            (
                r#"{"type":"room-settings","password":null}"#,
                Some(None),
                None,
            ),
            (
                r#"{"type":"room-settings","locked":true}"#,
                None,
                Some(true),
            ),
            (
                r#"{"type":"room-settings","password":"x","locked":false}"#,
                Some(Some("x")),
                Some(false),
            ),
        ] {
            let ClientMsg::RoomSettings { password, locked } = parse(text).unwrap() else {
                panic!("{text}")
            };
            assert_eq!(
                password.as_ref().map(|p| p.as_deref()),
                want_password,
                "{text}"
            );
            assert_eq!(locked, want_locked, "{text}");
        }
        for (text, want) in [
            (r#"{"type":"admit","name":"a"}"#, HostAction::Admit),
            (r#"{"type":"deny","name":"a"}"#, HostAction::Deny),
            (r#"{"type":"remove","name":"a"}"#, HostAction::Remove),
            (r#"{"type":"ask-mute","name":"a"}"#, HostAction::AskMute),
        ] {
            let ClientMsg::Host { action, name } = parse(text).unwrap() else {
                panic!("{text}")
            };
            assert_eq!((action, &*name), (want, "a"));
            assert_eq!(action.type_str(), want.type_str());
        }
    }

    #[test]
    fn escaped_payloads_pass_when_every_parser_can_read_them() {
        // A surrogate pair (an emoji) is fine; a lone surrogate is not (see
        // bad_shapes_are_bad_message).
        let ClientMsg::Relay { payload, .. } =
            parse(r#"{"type":"offer","to":"b","sdp":"v=0 \ud83d\ude00 \u0041"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(payload.get(), r#""v=0 \ud83d\ude00 \u0041""#);
        // Ordinary numbers and exponents in range pass too.
        for candidate in [
            r#"{"candidate":"candidate:1e9 1 udp 2122260223 127.0.0.1 5000 typ host","sdpMLineIndex":0}"#,
            r#"{"sdpMLineIndex":1e2,"x":-0.5E-3}"#,
        ] {
            let frame = format!(r#"{{"type":"candidate","to":"b","candidate":{candidate}}}"#);
            assert!(parse(&frame).is_ok(), "{candidate}");
        }
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let msg = parse(r#"{"type":"join","room":"r","name":"\u0061lice"}"#).unwrap();
        assert!(matches!(msg, ClientMsg::Join { name, .. } if name == "alice"));
    }

    #[test]
    fn bad_shapes_are_bad_message() {
        for text in [
            "",
            "not json",
            "[]",
            "42",
            "{}",
            r#"{"type":5}"#,
            r#"{"type":"dance"}"#,
            r#"{"type":"join","room":"r"}"#,
            r#"{"type":"join","room":1,"name":"a"}"#,
            r#"{"type":"join","room":"r","name":"a","token":7}"#,
            r#"{"type":"offer","to":"b"}"#,
            r#"{"type":"offer","to":"b","sdp":{}}"#,
            r#"{"type":"answer","to":null,"sdp":"x"}"#,
            r#"{"type":"candidate","to":"b"}"#,
            r#"{"type":"candidate","to":"b","candidate":"x"}"#,
            r#"{"type":"leave","type":"leave"}"#,
            r#"{"type":"leave""#,
            r#"{"type":"join","room":"r","name":"a","password":5}"#,
            r#"{"type":"join","room":"r","name":"a","access":true}"#,
            &format!(
                r#"{{"type":"join","room":"r","name":"a","password":"{}"}}"#,
                "p".repeat(257)
            ),
            &format!(
                r#"{{"type":"join","room":"r","name":"a","access":"{}"}}"#,
                "a".repeat(4097)
            ),
            r#"{"type":"room-settings"}"#,
            r#"{"type":"room-settings","password":""}"#,
            r#"{"type":"room-settings","password":1}"#,
            r#"{"type":"room-settings","locked":"yes"}"#,
            r#"{"type":"room-settings","locked":null}"#,
            r#"{"type":"admit"}"#,
            r#"{"type":"remove","name":7}"#,
            r#"{"type":"ask-mute","to":"a"}"#,
            // Lone surrogates: valid for RawValue, refused by strict parsers
            // on the receiving side (found by the protocol_parse fuzzer).
            r#"{"type":"offer","to":"b","sdp":"v=0 \ud800"}"#,
            r#"{"type":"candidate","to":"b","candidate":{"candidate":"\udfff x"}}"#,
            // Numbers beyond a double: the same (found by the same fuzzer).
            r#"{"type":"candidate","to":"b","candidate":{"sdpMLineIndex":57e0055555551105}}"#,
            &format!(
                r#"{{"type":"candidate","to":"b","candidate":{{"n":{}}}}}"#,
                "9".repeat(400)
            ),
        ] {
            assert_eq!(code(text), ErrorCode::BadMessage, "{text}");
        }
    }

    #[test]
    fn name_rules() {
        assert_eq!(Name::parse("  alice \n").unwrap().as_str(), "alice");
        assert_eq!(Name::parse("\u{3000}zoë\u{2003}").unwrap().as_str(), "zoë");
        assert!(Name::parse(&"x".repeat(32)).is_ok());
        assert!(Name::parse(&"é".repeat(32)).is_ok());
        for bad in ["", "   ", &"x".repeat(33), "a\u{0}b", "a\u{7f}", "a\u{9f}b"] {
            assert_eq!(
                Name::parse(bad).unwrap_err().code,
                ErrorCode::InvalidName,
                "{bad:?}"
            );
        }
        let alice = Name::parse("Alice").unwrap();
        assert!(alice.is_exactly("Alice") && alice.is_exactly(" Alice "));
        assert!(!alice.is_exactly("alice"));
        assert!(NameQuery::new(" aLiCe ").names(&alice));
        assert!(!NameQuery::new("alicia").names(&alice));
        assert_eq!(alice.key(), "alice");
    }

    #[test]
    fn names_people_cannot_fake() {
        let code = |raw: &str| Name::parse(raw).map(|_| ()).map_err(|r| r.code);
        // Format characters (Cf): zero-width, bidi controls, the BOM.
        for bad in [
            "al\u{200B}ice",
            "\u{200D}bob",
            "\u{202E}evil",
            "a\u{2066}b\u{2069}",
            "\u{FEFF}x",
            "\u{061C}x",
            "\u{200B}",
            "\u{3164}",
            "\u{115F}\u{FE0F}",
        ] {
            assert_eq!(code(bad), Err(ErrorCode::InvalidName), "{bad:?}");
        }
        let alice = Name::parse("alice").unwrap();
        for fake in [
            "аlice",
            "ＡＬＩＣＥ",
            "ALICE",
            "aIice",
            "alice\u{FE0F}",
            "ａlice",
        ] {
            let n = Name::parse(fake).unwrap_or_else(|e| panic!("{fake:?}: {e}"));
            assert!(n.clashes(&alice), "{fake:?} clashes with alice");
            assert!(NameQuery::new(fake).names(&alice), "{fake:?} names alice");
        }
        let names: Vec<Name> = ["Анна", "José", "会议", "Jose", "anna", "Ana"]
            .iter()
            .map(|n| Name::parse(n).unwrap_or_else(|e| panic!("{n:?}: {e}")))
            .collect();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert!(
                    !a.clashes(b),
                    "{} and {} are distinct",
                    a.as_str(),
                    b.as_str()
                );
            }
        }
        assert!(!alice.clashes(&names[0]));
        // NFKC: the ligature ﬁ and fi, the full-width digit and 1.
        assert!(
            Name::parse("ﬁona")
                .unwrap()
                .clashes(&Name::parse("fiona").unwrap())
        );
        assert!(
            Name::parse("r２d2")
                .unwrap()
                .clashes(&Name::parse("R2D2").unwrap())
        );
    }

    #[test]
    fn room_rules() {
        for ok in [
            "a",
            "team-1",
            "x_y.z",
            "Café",
            "会议室",
            "٣",
            "...",
            ".a",
            "a..b",
            &"r".repeat(64),
        ] {
            assert!(validate_room(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " a",
            "a b",
            "a/b",
            "a#",
            "ⅷ",
            "e\u{301}",
            ".",
            "..",
            &"r".repeat(65),
        ] {
            assert_eq!(
                validate_room(bad).unwrap_err().code,
                ErrorCode::InvalidRoom,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn encodes_server_messages() {
        let alice = Name::parse("al\"ice").unwrap();
        let bob = Name::parse("bob").unwrap();
        let v: Value = serde_json::from_str(&joined(
            "r",
            &alice,
            [&bob].into_iter(),
            r#"[{"urls":"stun:x"}]"#,
            "tok",
            true,
            Access {
                host: &bob,
                locked: true,
                protected: false,
            },
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"type":"joined","room":"r","name":"al\"ice","peers":["bob"],
                   "iceServers":[{"urls":"stun:x"}],"token":"tok","resumed":true,
                   "host":"bob","locked":true,"protected":false})
        );
        for (frame, want) in [
            (host(&bob), json!({"type":"host","name":"bob"})),
            (
                room_settings(false, true),
                json!({"type":"room-settings","locked":false,"protected":true}),
            ),
            (waiting("r"), json!({"type":"waiting","room":"r"})),
            (knock(&alice), json!({"type":"knock","name":"al\"ice"})),
            (knock_gone(&bob), json!({"type":"knock-gone","name":"bob"})),
            (removed(&bob), json!({"type":"removed","by":"bob"})),
            (ask_mute(&bob), json!({"type":"ask-mute","by":"bob"})),
        ] {
            assert_eq!(serde_json::from_str::<Value>(&frame).unwrap(), want);
        }
        let payload: &RawValue = serde_json::from_str(r#"{"candidate":"c","sdpMid":"0"}"#).unwrap();
        let frame = relay(RelayKind::Candidate, &alice, payload);
        assert_eq!(frame.len(), frame.capacity(), "one exact allocation");
        let v: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            v,
            json!({"type":"candidate","from":"al\"ice","candidate":{"candidate":"c","sdpMid":"0"}})
        );
        let v: Value =
            serde_json::from_str(&error(&Refusal::new(ErrorCode::RoomFull, "full \"x\""))).unwrap();
        assert_eq!(
            v,
            json!({"type":"error","code":"room-full","message":"full \"x\""})
        );
        let v: Value = serde_json::from_str(&left("r")).unwrap();
        assert_eq!(v, json!({"type":"left","room":"r"}));
    }
}
