//! The signaling state machine: rooms, members, relay, resume and limits.
//!
//! Sans-IO: [`Core`] knows nothing of sockets, tasks, clocks or randomness.
//! The shell feeds it one input at a time (a connection opened, a text frame,
//! a clean close, a lost transport, a timer) together with `now`, then drains
//! every [`Output`] (a frame for a connection, a close) before the next input.
//! Tokens and the wall-clock time (for TURN credentials) come from an
//! injected [`Env`].
//!
//! Membership: a room is an ordered list of members, oldest first. A member
//! is either *live* (bound to a connection) or *lost* (its transport vanished
//! without a close frame): a lost member keeps its place for the grace
//! period, and relayed messages addressed to it wait in a bounded queue until
//! it resumes with its token or the grace period ends.

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod prop;
mod rate;
#[cfg(test)]
mod sfu_tests;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info};

use crate::config::CoreConfig;
use crate::protocol::{
    self, Access, Caps, ClientMsg, ErrorCode, HostAction, LayerWant, Name, NameQuery, Refusal,
    RelayKind, SERVER_PEER,
};
pub use rate::{EPISODE_GAP, Verdict};
pub use stats::{Departure, Stats};

/// Identifies one WebSocket connection. Assigned by the shell, never reused.
pub type ConnId = u64;

/// A cheap hasher for ids the server assigns itself (connection and member
/// ids: sequential, never chosen by a client, so no flooding concern).
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by a server-assigned id.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// WebSocket close codes the core asks for.
pub mod close {
    /// The client keeps exceeding the rate limit.
    pub const POLICY: u16 = 1008;
    /// Another connection resumed this member.
    pub const REPLACED: u16 = 4000;
    /// The host removed this member.
    pub const REMOVED: u16 = 4001;
}

/// What the shell worked out outside its lock for one message: the
/// password work that is too slow to do under it (see [`Core::message_with`]).
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// For a `room-settings` that sets a password: that password's hash.
    pub password_hash: Option<Arc<str>>,
    /// For a `join` with a password to a protected room: the outcome of
    /// checking it against the room's password (see
    /// [`Core::password_to_check`]).
    pub password_check: Option<PasswordCheck>,
}

/// A join's password, checked by the shell against one generation of a
/// room's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheck {
    /// The generation it was checked against; a password set since then is
    /// a new generation, and the check no longer counts.
    pub generation: u64,
    /// Whether it matched.
    pub matches: bool,
}

/// A room's password as the core keeps it: never the password itself.
#[derive(Debug)]
struct RoomPassword {
    hash: Arc<str>,
    generation: u64,
}

/// What the core needs from the world besides its inputs: secrets (a
/// cryptographic source in the server, a counter in tests) and the wall
/// clock (for the expiry of minted TURN credentials).
pub trait Env: Send {
    /// A fresh secret of at least 128 bits, as text.
    fn token(&mut self) -> String;
    /// Seconds since the unix epoch.
    fn unix_time(&mut self) -> u64;
}

/// What the core asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this text frame on this connection.
    Send(ConnId, String),
    /// Close this connection with this code and reason; the core has already
    /// forgotten it, so later inputs for it are ignored.
    Close(ConnId, u16, &'static str),
    /// Something for the media server (rooms in SFU mode).
    Media(MediaCmd),
}

/// What the core asks of the media server. Members are named by their
/// member id (unique for the life of the core), which the shell passes to
/// the media server as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCmd {
    /// MEMBER is in ROOM on the media server; its tracks carry STREAM as
    /// their stream id on the others' down connections.
    Join {
        /// The room.
        room: String,
        /// The member id.
        member: u64,
        /// Its stream id (also in `joined`/`peer-joined`/`mode`).
        stream: String,
    },
    /// MEMBER left its media-server room.
    Leave {
        /// The member id.
        member: u64,
    },
    /// MEMBER's offer for its up connection (`offer` to `@server`).
    Offer {
        /// The member id.
        member: u64,
        /// The SDP.
        sdp: String,
    },
    /// MEMBER's answer to the media server's offer for its down connection.
    Answer {
        /// The member id.
        member: u64,
        /// The SDP.
        sdp: String,
    },
    /// MEMBER wants WANT of PUBLISHER's camera (`layer`).
    Layer {
        /// The subscriber's member id.
        member: u64,
        /// The publisher's member id.
        publisher: u64,
        /// The layer.
        want: LayerWant,
    },
}

/// What the media server tells the core (see [`Core::media_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// An offer for MEMBER's down connection.
    Offer {
        /// The member id.
        member: u64,
        /// The SDP.
        sdp: String,
    },
    /// The answer to MEMBER's up offer.
    Answer {
        /// The member id.
        member: u64,
        /// The SDP.
        sdp: String,
    },
    /// ROOM's active speaker is now MEMBER (None: nobody).
    Speaker {
        /// The room.
        room: String,
        /// The member id.
        member: Option<u64>,
    },
    /// MEMBER's media connection broke for good (ICE gave up, its peer
    /// state failed): it is removed from the room (`unavailable`).
    Failed {
        /// The member id.
        member: u64,
    },
    /// The media server is at capacity (forwarded tracks, members) and
    /// cannot take MEMBER: it is removed from the room (`room-full`).
    Full {
        /// The member id.
        member: u64,
    },
    /// The media server refused one of MEMBER's messages (an SDP it cannot
    /// take, an answer to no offer): MEMBER hears `bad-message` with WHY and
    /// stays.
    Refused {
        /// The member id.
        member: u64,
        /// What was wrong, for the member.
        why: String,
    },
}

/// The stream id of a member on the media server: its member id, as a
/// token of the characters an `msid` allows.
pub fn stream_id(member: u64) -> String {
    format!("m{member}")
}

/// The `from` of queued frames the media server sent (no member has it).
const FROM_SERVER: u64 = u64::MAX;

/// A `join` as the core reads it.
#[derive(Debug, Clone, Copy)]
struct JoinRequest<'a> {
    room: &'a str,
    name: &'a str,
    token: Option<&'a str>,
    /// Whether it carried a password (checked by the shell: [`Prepared`]).
    password: bool,
    access: Option<&'a str>,
    caps: Caps,
}

/// One connection as the core sees it.
#[derive(Debug)]
struct Conn {
    /// The room this connection is a member of.
    room: Option<String>,
    /// The room in whose lobby this connection waits (never with `room`).
    waiting: Option<String>,
    limiter: rate::Limiter,
}

/// Whether a member's connection is there.
#[derive(Debug)]
enum Link {
    /// Bound to a live connection.
    Live(ConnId),
    /// Transport lost at some point; waiting for a resume until `deadline`.
    Lost {
        deadline: Instant,
        queue: VecDeque<Queued>,
        bytes: usize,
    },
}

/// A relayed frame waiting for a lost member.
#[derive(Debug)]
struct Queued {
    /// The sender's member id, so its messages can be dropped if it leaves.
    from: u64,
    frame: String,
}

/// A member of a room.
#[derive(Debug)]
struct Member {
    /// Unique for the life of the core.
    id: u64,
    name: Name,
    token: String,
    link: Link,
    /// What its client speaks.
    caps: Caps,
}

/// A joiner waiting in a locked room's lobby.
#[derive(Debug)]
struct Knocker {
    conn: ConnId,
    name: Name,
    caps: Caps,
}

/// The resume token of a member the host removed, refused until `until`
/// (the end of the grace period it could otherwise have resumed within).
#[derive(Debug)]
struct Revoked {
    token: String,
    by: Name,
    until: Instant,
}

/// A room: members oldest first. Never empty while it exists.
#[derive(Debug)]
struct Room {
    members: Vec<Member>,
    /// The member id of the host: always one of `members`.
    host: u64,
    password: Option<RoomPassword>,
    locked: bool,
    /// Waiting joiners, in the order they knocked.
    lobby: Vec<Knocker>,
    revoked: Vec<Revoked>,
    /// Its calls go through the media server (never back to mesh).
    sfu: bool,
}

impl Room {
    fn new(host: u64) -> Self {
        Self {
            members: Vec::new(),
            host,
            password: None,
            locked: false,
            lobby: Vec::new(),
            revoked: Vec::new(),
            sfu: false,
        }
    }

    /// The `mode` fields of `joined` and `mode`.
    fn push_mode(&self, out: &mut String) {
        let streams: Vec<(&Name, String)> = if self.sfu {
            self.members
                .iter()
                .map(|m| (&m.name, stream_id(m.id)))
                .collect()
        } else {
            Vec::new()
        };
        protocol::push_mode(out, self.sfu, streams.iter().map(|(n, s)| (*n, s.as_str())));
    }

    fn host_member(&self) -> &Member {
        self.members
            .iter()
            .find(|m| m.id == self.host)
            .expect("the host is a member")
    }

    fn access(&self) -> Access<'_> {
        Access {
            host: &self.host_member().name,
            locked: self.locked,
            protected: self.password.is_some(),
        }
    }

    /// The host's connection, if it is live.
    fn host_conn(&self) -> Option<ConnId> {
        live_conn(self.host_member())
    }

    /// The waiting joiner a host's `admit`/`deny` names.
    fn find_knocker(&self, to: &str) -> Option<usize> {
        position_named(self.lobby.iter().map(|k| &k.name), to)
    }

    /// Whether `token` belongs to a member the host removed, and by whom.
    fn revoked_by(&self, token: &str, now: Instant) -> Option<&Name> {
        self.revoked
            .iter()
            .find(|r| r.until > now && tokens_equal(token, &r.token))
            .map(|r| &r.by)
    }
    /// The member a relay's `to` names (see [`position_named`]).
    fn find_name(&self, to: &str) -> Option<usize> {
        position_named(self.members.iter().map(|m| &m.name), to)
    }

    /// A member or waiting joiner other than `conn` whose name clashes
    /// with `name`.
    fn find_clash(&self, name: &Name, conn: ConnId) -> Option<&Name> {
        self.members
            .iter()
            .find(|m| !matches!(m.link, Link::Live(c) if c == conn) && m.name.clashes(name))
            .map(|m| &m.name)
            .or_else(|| {
                self.lobby
                    .iter()
                    .find(|k| k.conn != conn && k.name.clashes(name))
                    .map(|k| &k.name)
            })
    }

    fn find_conn(&self, conn: ConnId) -> Option<usize> {
        self.members
            .iter()
            .position(|m| matches!(m.link, Link::Live(c) if c == conn))
    }
}

/// The signaling state machine. See the module documentation.
pub struct Core {
    cfg: CoreConfig,
    env: Box<dyn Env>,
    conns: IdMap<Conn>,
    rooms: HashMap<String, Room>,
    /// Lost members: id → (room, deadline).
    lost: IdMap<(String, Instant)>,
    /// The same members by deadline, earliest first: timers and the resume
    /// budget take from the front without scanning.
    deadlines: BTreeSet<(Instant, u64)>,
    /// Bytes queued for all lost members together (`resume_budget_bytes`).
    held_bytes: usize,
    next_member: u64,
    /// The next room password's generation (never reused).
    next_generation: u64,
    out: VecDeque<Output>,
    stats: Stats,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("conns", &self.conns.len())
            .field("rooms", &self.rooms.len())
            .field("lost", &self.lost.len())
            .finish()
    }
}

impl Core {
    /// A core with no connections and no rooms.
    pub fn new(cfg: CoreConfig, env: Box<dyn Env>) -> Self {
        Self {
            cfg,
            env,
            conns: IdMap::default(),
            rooms: HashMap::new(),
            lost: IdMap::default(),
            deadlines: BTreeSet::new(),
            held_bytes: 0,
            next_member: 0,
            next_generation: 0,
            out: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Seconds since the epoch, asked for only when minted TURN
    /// credentials need it.
    fn unix_now(&mut self) -> u64 {
        if self.cfg.ice.needs_time() {
            self.env.unix_time()
        } else {
            0
        }
    }

    /// The limits this core enforces.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// A connection opened.
    pub fn connect(&mut self, conn: ConnId, now: Instant) {
        self.conns.insert(
            conn,
            Conn {
                room: None,
                waiting: None,
                limiter: rate::Limiter::new(self.cfg.burst, now),
            },
        );
    }

    /// A text frame arrived: parse it, then handle it like [`Core::message`].
    pub fn frame(&mut self, conn: ConnId, text: &str, now: Instant) {
        self.message(conn, protocol::parse(text), now);
    }

    /// A frame arrived that the shell already parsed (outside its lock).
    pub fn message(&mut self, conn: ConnId, parsed: Result<ClientMsg<'_>, Refusal>, now: Instant) {
        self.message_with(conn, parsed, Prepared::default(), now);
    }

    /// Like [`Core::message`], with the password work the shell did outside
    /// its lock: the hash of a password a host sets, the check of a joiner's
    /// password against [`Core::password_to_check`]. Without it a password
    /// cannot be set (`unavailable`) and a join with a password to a
    /// protected room gets `wrong-password`.
    pub fn message_with(
        &mut self,
        conn: ConnId,
        parsed: Result<ClientMsg<'_>, Refusal>,
        prepared: Prepared,
        now: Instant,
    ) {
        let cfg = &self.cfg;
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        match state
            .limiter
            .check(cfg.rate, cfg.burst, cfg.flood_close_after, now)
        {
            Verdict::Accept => {}
            Verdict::Drop => {
                self.stats.rate_limited += 1;
                return;
            }
            Verdict::DropAndWarn => {
                self.stats.rate_limited += 1;
                let refusal = Refusal::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many messages: at most {} per second (bursts of {}); messages are being dropped",
                        cfg.rate, cfg.burst
                    ),
                );
                self.refuse(conn, &refusal);
                return;
            }
            Verdict::Close => {
                self.stats.rate_limited += 1;
                self.stats.rate_limit_closes += 1;
                info!(
                    conn,
                    "closing a connection that keeps exceeding the rate limit"
                );
                self.out
                    .push_back(Output::Close(conn, close::POLICY, "rate limit exceeded"));
                self.closed(conn);
                return;
            }
        }
        let result = match parsed {
            Err(refusal) => Err(refusal),
            Ok(ClientMsg::Join {
                room,
                name,
                token,
                password,
                access,
                caps,
            }) => self.join(
                conn,
                JoinRequest {
                    room: &room,
                    name: &name,
                    token: token.as_deref(),
                    password: password.is_some(),
                    access: access.as_deref(),
                    caps,
                },
                prepared.password_check,
                now,
            ),
            Ok(ClientMsg::Leave) => self.leave(conn),
            Ok(ClientMsg::Relay { kind, to, payload }) => self.relay(conn, kind, &to, payload),
            Ok(ClientMsg::RoomSettings { password, locked }) => {
                let password = match password {
                    None => Ok(None),
                    Some(None) => Ok(Some(None)),
                    Some(Some(_)) => prepared.password_hash.map(|h| Some(Some(h))).ok_or(()),
                };
                self.room_settings(conn, password, locked)
            }
            Ok(ClientMsg::Host { action, name }) => self.host_action(conn, action, &name, now),
            Ok(ClientMsg::Layer { peer, want }) => self.layer(conn, &peer, want),
            Ok(ClientMsg::Data { payload }) => self.data(conn, payload),
        };
        if let Err(refusal) = result {
            debug!(conn, code = %refusal.code, "refused");
            self.refuse(conn, &refusal);
        }
    }

    /// The room password a join must be checked against before it reaches
    /// [`Core::message_with`]: its generation and hash, or `None` when the
    /// join needs no check (no password sent, no such room, no password
    /// set, an invalid name, or a resume with a valid token).
    pub fn password_to_check(&self, msg: &ClientMsg<'_>) -> Option<(u64, Arc<str>)> {
        let ClientMsg::Join {
            room,
            name,
            token,
            password: Some(_),
            ..
        } = msg
        else {
            return None;
        };
        let room = self.rooms.get(&**room)?;
        let password = room.password.as_ref()?;
        let name = Name::parse(name).ok()?;
        if let Some(token) = token
            && room
                .members
                .iter()
                .any(|m| m.name.key() == name.key() && tokens_equal(token, &m.token))
        {
            return None;
        }
        Some((password.generation, password.hash.clone()))
    }

    /// Whether `conn` is the host of its room (so a password it sets is
    /// worth hashing).
    pub fn is_host(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .and_then(|c| c.room.as_deref())
            .and_then(|r| self.rooms.get(r))
            .is_some_and(|room| room.host_conn() == Some(conn))
    }

    /// The connection ended cleanly (close frame, `leave`-like) or the shell
    /// closed it for a protocol violation: its member leaves at once.
    pub fn closed(&mut self, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(room) = state.waiting {
            self.leave_lobby(&room, conn);
        }
        if let Some(room) = state.room {
            self.remove_by_conn(&room, conn, Departure::Closed);
        }
    }

    /// The connection's transport vanished without a close frame: its member
    /// keeps its place for the grace period.
    pub fn lost(&mut self, conn: ConnId, now: Instant) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(room) = state.waiting {
            // A waiting joiner holds no place: it knocks again when back.
            self.leave_lobby(&room, conn);
        }
        let Some(room_name) = state.room else {
            return;
        };
        if self.cfg.reconnect_grace.is_zero() {
            self.remove_by_conn(&room_name, conn, Departure::GraceExpired);
            return;
        }
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        let Some(i) = room.find_conn(conn) else {
            return;
        };
        let deadline = now + self.cfg.reconnect_grace;
        self.stats.lost += 1;
        let member = &mut room.members[i];
        member.link = Link::Lost {
            deadline,
            queue: VecDeque::new(),
            bytes: 0,
        };
        info!(room = %room_name, name = member.name.as_str(), "connection lost; holding the place");
        self.lost.insert(member.id, (room_name, deadline));
        self.deadlines.insert((deadline, member.id));
    }

    /// The earliest instant at which [`Core::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Ends the grace period of every lost member whose deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.deadlines.first()
            && deadline <= now
        {
            self.end_grace(id, Departure::GraceExpired);
        }
    }

    /// Ends the grace period of lost member `id` now.
    fn end_grace(&mut self, id: u64, why: Departure) {
        match self.lost.get(&id) {
            Some((room, _)) => {
                let room = room.clone();
                self.remove_by_id(&room, id, why);
            }
            None => debug_assert!(false, "a deadline without a lost member"),
        }
    }

    /// Bytes queued for lost members, all together.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Number of rooms that exist.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of members in all rooms, live and lost.
    pub fn member_count(&self) -> usize {
        self.rooms.values().map(|r| r.members.len()).sum()
    }

    /// Members within their grace period (connection lost, place kept).
    pub fn held_count(&self) -> usize {
        self.lost.len()
    }

    /// What the core has done since it started.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of connections the core knows.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Names in a room, oldest first (empty if the room does not exist).
    pub fn members(&self, room: &str) -> Vec<String> {
        self.rooms
            .get(room)
            .map(|r| {
                r.members
                    .iter()
                    .map(|m| m.name.as_str().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn refuse(&mut self, conn: ConnId, refusal: &Refusal) {
        self.stats.errors[refusal.code as usize] += 1;
        self.out
            .push_back(Output::Send(conn, protocol::error(refusal)));
    }

    fn send(&mut self, conn: ConnId, frame: String) {
        self.out.push_back(Output::Send(conn, frame));
    }

    fn join(
        &mut self,
        conn: ConnId,
        req: JoinRequest<'_>,
        check: Option<PasswordCheck>,
        now: Instant,
    ) -> Result<(), Refusal> {
        let mut name = Name::parse(req.name)?;
        // Reserved only where a room can move to the media server: with
        // the media server off, v1's name rules hold unchanged.
        if self.cfg.sfu_above.is_some() && Name::parse(SERVER_PEER).is_ok_and(|s| s.clashes(&name))
        {
            return Err(Refusal::new(
                ErrorCode::InvalidName,
                format!("the name \"{SERVER_PEER}\" is reserved for the media server"),
            ));
        }
        let room_name = req.room;
        protocol::validate_room(room_name)?;
        let (current, waiting_in) = self
            .conns
            .get(&conn)
            .map(|c| (c.room.clone(), c.waiting.clone()))
            .unwrap_or_default();
        // Decide everything before changing anything: a failed join leaves
        // the client where it was.
        let room = self.rooms.get(room_name);
        // A connection in no room (or lobby) that brings a removed member's
        // token is that member coming back by itself; from anywhere else
        // the token is just not a resume.
        let placeless = current.is_none() && waiting_in.is_none();
        if let (Some(room), Some(token), true) = (room, req.token, placeless)
            && let Some(by) = room.revoked_by(token, now)
        {
            // The host removed this member while its connection was lost:
            // it does not come back by resuming.
            let frame = protocol::removed(by);
            self.send(conn, frame);
            self.out
                .push_back(Output::Close(conn, close::REMOVED, "removed by the host"));
            self.closed(conn);
            return Ok(());
        }
        // A resume: the member of this (folded) name, with its token. It
        // was let in once; it needs no operator token, password or lobby
        // again (so a call outlives the link's token).
        let resume_index = room.and_then(|room| {
            req.token.and_then(|t| {
                room.members
                    .iter()
                    .position(|m| m.name.key() == name.key() && tokens_equal(t, &m.token))
            })
        });
        if let Some(i) = resume_index {
            if let Some(lobby) = waiting_in {
                self.leave_lobby(&lobby, conn);
            }
            self.resume(conn, room_name, i, current);
            return Ok(());
        }

        let mut host_token = false;
        if let Some(key) = &self.cfg.auth {
            let token = req.access.ok_or_else(|| {
                Refusal::new(
                    ErrorCode::Unauthorized,
                    "this server lets people in by invitation only: open the link you were given",
                )
            })?;
            let unix = self.env.unix_time();
            let claims = key
                .check(token, room_name, unix)
                .map_err(|e| Refusal::new(ErrorCode::Unauthorized, e.to_string()))?;
            if let Some(fixed) = &claims.name {
                let fixed = Name::parse(fixed).map_err(|_| {
                    Refusal::new(
                        ErrorCode::Unauthorized,
                        "the access token's name is invalid",
                    )
                })?;
                if fixed.key() != name.key() {
                    return Err(Refusal::new(
                        ErrorCode::Unauthorized,
                        format!("the access token is for the name \"{}\"", fixed.as_str()),
                    ));
                }
                name = fixed;
            }
            host_token = claims.host;
        }

        let mut to_lobby = false;
        if let Some(room) = room {
            if let Some(password) = &room.password {
                if !req.password {
                    return Err(Refusal::new(
                        ErrorCode::PasswordRequired,
                        format!("room \"{room_name}\" needs a password"),
                    ));
                }
                let matches =
                    check.is_some_and(|c| c.generation == password.generation && c.matches);
                if !matches {
                    return Err(Refusal::new(
                        ErrorCode::WrongPassword,
                        format!("that is not the password of room \"{room_name}\""),
                    ));
                }
            }
            if let Some(taken) = room.find_clash(&name, conn) {
                return Err(Refusal::new(
                    ErrorCode::NameTaken,
                    format!(
                        "the name \"{}\" is already taken in room \"{room_name}\"; choose another name",
                        taken.as_str()
                    ),
                ));
            }
            let here = current.as_deref() == Some(room_name);
            if room.locked && !host_token {
                let queued_here = waiting_in.as_deref() == Some(room_name);
                let others_waiting = room.lobby.len() - usize::from(queued_here);
                if others_waiting >= self.cfg.max_lobby_size {
                    return Err(Refusal::new(
                        ErrorCode::RoomFull,
                        format!(
                            "too many people are waiting to join room \"{room_name}\" ({}); try again later",
                            self.cfg.max_lobby_size
                        ),
                    ));
                }
                // A member rejoining its own locked room under another name
                // would leave it empty of itself: it waits like anyone.
                to_lobby = !(here && room.members.len() == 1);
            }
            if room.sfu && !req.caps.sfu {
                return Err(Refusal::new(
                    ErrorCode::Unsupported,
                    format!(
                        "room \"{room_name}\" calls through the media server, which this client does not support"
                    ),
                ));
            }
            let size_after_leaving = room.members.len() - usize::from(here);
            let max = self.capacity(room, req.caps);
            if !to_lobby && size_after_leaving >= max {
                return Err(Refusal::new(
                    ErrorCode::RoomFull,
                    format!("room \"{room_name}\" is full ({max} members)"),
                ));
            }
        } else if self.cfg.max_room_size == 0 {
            return Err(Refusal::new(
                ErrorCode::RoomFull,
                format!("room \"{room_name}\" is full (0 members)"),
            ));
        }

        if let Some(lobby) = waiting_in {
            self.leave_lobby(&lobby, conn);
        }
        if let Some(old) = current {
            self.remove_by_conn(&old, conn, Departure::RoomChange);
        }
        // The room may have gone with the old membership (a member alone in
        // it, rejoining under another name): then it starts afresh.
        if to_lobby && let Some(room) = self.rooms.get_mut(room_name) {
            info!(
                room = room_name,
                name = name.as_str(),
                "waiting in the lobby"
            );
            self.stats.knocks += 1;
            let knock = protocol::knock(&name);
            room.lobby.push(Knocker {
                conn,
                name,
                caps: req.caps,
            });
            let host = room.host_conn();
            if let Some(state) = self.conns.get_mut(&conn) {
                state.waiting = Some(room_name.to_owned());
            }
            self.send(conn, protocol::waiting(room_name));
            if let Some(host) = host {
                self.send(host, knock);
            }
            return Ok(());
        }
        self.add_member(conn, room_name, name, host_token, req.caps);
        Ok(())
    }

    /// How many members ROOM may hold with a joiner that speaks CAPS: the
    /// media server's size when the room is on it or would move there with
    /// this joiner, the mesh size otherwise.
    fn capacity(&self, room: &Room, caps: Caps) -> usize {
        let would_move =
            self.cfg.sfu_above.is_some() && caps.sfu && room.members.iter().all(|m| m.caps.sfu);
        if room.sfu || would_move {
            self.cfg.max_sfu_room_size.max(self.cfg.max_room_size)
        } else {
            self.cfg.max_room_size
        }
    }

    /// Makes `conn` a new member of `room_name` (created if need be) and
    /// tells everyone. `host_token`: it becomes the host.
    fn add_member(
        &mut self,
        conn: ConnId,
        room_name: &str,
        name: Name,
        host_token: bool,
        caps: Caps,
    ) {
        let token = self.env.token();
        let id = self.next_member;
        self.next_member += 1;
        let unix = self.unix_now();
        let ice = self.cfg.ice.render(name.as_str(), unix);
        let room = self
            .rooms
            .entry(room_name.to_owned())
            .or_insert_with(|| Room::new(id));
        let new_host = host_token && room.host != id;
        if host_token {
            room.host = id;
        }
        let live: Vec<ConnId> = room.members.iter().filter_map(live_conn).collect();
        info!(room = room_name, name = name.as_str(), "joined");
        self.stats.joins += 1;
        room.members.push(Member {
            id,
            name,
            token,
            link: Link::Live(conn),
            caps,
        });
        // Past the threshold, a room whose members all speak `sfu` moves
        // to the media server: the others first hear of the move (with
        // everyone's stream), then of the newcomer.
        let moves = !room.sfu
            && self.cfg.sfu_above.is_some_and(|n| room.members.len() > n)
            && room.members.iter().all(|m| m.caps.sfu);
        let mut mode_note = None;
        if moves {
            room.sfu = true;
            info!(
                room = room_name,
                members = room.members.len(),
                "moves to the media server"
            );
            self.stats.sfu_moves += 1;
            let others = &room.members[..room.members.len() - 1];
            let streams: Vec<(&Name, String)> =
                others.iter().map(|m| (&m.name, stream_id(m.id))).collect();
            mode_note = Some(protocol::mode_sfu(
                streams.iter().map(|(n, s)| (*n, s.as_str())),
            ));
            for m in others {
                self.out.push_back(Output::Media(MediaCmd::Join {
                    room: room_name.to_owned(),
                    member: m.id,
                    stream: stream_id(m.id),
                }));
            }
        }
        let me = room.members.last().expect("just pushed");
        let note = if room.sfu {
            self.out.push_back(Output::Media(MediaCmd::Join {
                room: room_name.to_owned(),
                member: id,
                stream: stream_id(id),
            }));
            protocol::peer_joined_sfu(&me.name, &stream_id(id))
        } else {
            protocol::peer_joined(&me.name)
        };
        let mut joined = protocol::joined(
            room_name,
            &me.name,
            room.members[..room.members.len() - 1]
                .iter()
                .map(|m| &m.name),
            &ice,
            &me.token,
            false,
            room.access(),
        );
        with_mode(&mut joined, room);
        let host_note = new_host.then(|| protocol::host(&me.name));
        if let Some(state) = self.conns.get_mut(&conn) {
            state.room = Some(room_name.to_owned());
        }
        self.send(conn, joined);
        if let Some(mode_note) = mode_note {
            self.send_room_except(room_name, id, &mode_note);
        }
        for &other in &live {
            self.send(other, note.clone());
        }
        if let Some(host_note) = host_note {
            for &other in &live {
                self.send(other, host_note.clone());
            }
            // The new host learns who waits, as any new host does.
            self.send_knocks(room_name);
        }
    }

    /// A `knock` to the host for every waiting joiner (a new host, or a
    /// host that came back).
    fn send_knocks(&mut self, room_name: &str) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let Some(host) = room.host_conn() else {
            return;
        };
        let knocks: Vec<String> = room
            .lobby
            .iter()
            .map(|k| protocol::knock(&k.name))
            .collect();
        for knock in knocks {
            self.send(host, knock);
        }
    }

    /// `conn` stops waiting in `room_name`'s lobby; the host gets `knock-gone`.
    fn leave_lobby(&mut self, room_name: &str, conn: ConnId) {
        if let Some(state) = self.conns.get_mut(&conn) {
            state.waiting = None;
        }
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let Some(i) = room.lobby.iter().position(|k| k.conn == conn) else {
            return;
        };
        let knocker = room.lobby.remove(i);
        info!(
            room = room_name,
            name = knocker.name.as_str(),
            "stopped waiting"
        );
        if let Some(host) = room.host_conn() {
            self.send(host, protocol::knock_gone(&knocker.name));
        }
    }

    /// `conn` takes the place of member `index` of `room_name`, silently.
    fn resume(&mut self, conn: ConnId, room_name: &str, index: usize, current: Option<String>) {
        let unix = self.unix_now();
        let (id, already_this) = {
            let member = &self.rooms[room_name].members[index];
            (member.id, matches!(member.link, Link::Live(c) if c == conn))
        };
        if !already_this && let Some(old) = current {
            // Room change first; it may shift this member's index.
            self.remove_by_conn(&old, conn, Departure::RoomChange);
        }
        let room = self
            .rooms
            .get_mut(room_name)
            .expect("the room still holds the member being resumed");
        let index = room
            .members
            .iter()
            .position(|m| m.id == id)
            .expect("the member being resumed is still there");
        let member = &mut room.members[index];
        let queued = match std::mem::replace(&mut member.link, Link::Live(conn)) {
            Link::Live(old) if old != conn => {
                // The server had not noticed the loss yet: the old socket goes.
                self.conns.remove(&old);
                self.out.push_back(Output::Close(
                    old,
                    close::REPLACED,
                    "replaced by a resumed connection",
                ));
                VecDeque::new()
            }
            Link::Live(_) => VecDeque::new(),
            Link::Lost {
                queue,
                bytes,
                deadline,
            } => {
                self.lost.remove(&id);
                self.deadlines.remove(&(deadline, id));
                self.held_bytes -= bytes;
                queue
            }
        };
        let member = &room.members[index];
        info!(
            room = room_name,
            name = member.name.as_str(),
            queued = queued.len(),
            "resumed"
        );
        self.stats.resumes += 1;
        let ice = self.cfg.ice.render(member.name.as_str(), unix);
        let mut joined = protocol::joined(
            room_name,
            &member.name,
            room.members.iter().filter(|m| m.id != id).map(|m| &m.name),
            &ice,
            &member.token,
            true,
            room.access(),
        );
        with_mode(&mut joined, room);
        let is_host = room.host == id;
        if let Some(state) = self.conns.get_mut(&conn) {
            state.room = Some(room_name.to_owned());
        }
        self.send(conn, joined);
        for q in queued {
            self.send(conn, q.frame);
        }
        if is_host {
            // Knocks that came while it was away were sent to nobody.
            self.send_knocks(room_name);
        }
    }

    fn leave(&mut self, conn: ConnId) -> Result<(), Refusal> {
        if let Some(lobby) = self.conns.get(&conn).and_then(|c| c.waiting.clone()) {
            self.leave_lobby(&lobby, conn);
            self.send(conn, protocol::left(&lobby));
            return Ok(());
        }
        let room = self
            .conns
            .get(&conn)
            .and_then(|c| c.room.clone())
            .ok_or_else(not_joined)?;
        self.remove_by_conn(&room, conn, Departure::Leave);
        self.send(conn, protocol::left(&room));
        Ok(())
    }

    fn relay(
        &mut self,
        conn: ConnId,
        kind: RelayKind,
        to: &str,
        payload: &serde_json::value::RawValue,
    ) -> Result<(), Refusal> {
        let room_name = self
            .conns
            .get(&conn)
            .and_then(|c| c.room.as_deref())
            .ok_or_else(not_joined)?;
        let room = self
            .rooms
            .get_mut(room_name)
            .expect("a connection's room exists");
        let from = room
            .find_conn(conn)
            .expect("a connection's member is in its room");
        if to == SERVER_PEER && self.cfg.sfu_above.is_some() {
            return media_signal(room, from, kind, payload).map(|cmd| {
                if let Some(cmd) = cmd {
                    self.out.push_back(Output::Media(cmd));
                }
            });
        }
        let target = room.find_name(to).ok_or_else(|| {
            Refusal::new(
                ErrorCode::UnknownPeer,
                format!("nobody called \"{}\" is in this room", to.trim()),
            )
        })?;
        if target == from {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "a message cannot be addressed to yourself",
            ));
        }
        let frame = protocol::relay(kind, &room.members[from].name, payload);
        let from_id = room.members[from].id;
        let target_id = room.members[target].id;
        match &mut room.members[target].link {
            Link::Live(to_conn) => {
                let to_conn = *to_conn;
                self.send(to_conn, frame);
            }
            Link::Lost { queue, bytes, .. } => {
                if queue.len() >= self.cfg.resume_queue
                    || *bytes + frame.len() > self.cfg.resume_queue_bytes
                {
                    let room_name = room_name.to_owned();
                    self.remove_by_id(&room_name, target_id, Departure::QueueOverflow);
                    return Ok(());
                }
                // The global budget: the oldest grace periods end first, which
                // may be the addressee's own.
                while self.held_bytes + frame.len() > self.cfg.resume_budget_bytes {
                    let Some(&(_, oldest)) = self.deadlines.first() else {
                        break;
                    };
                    self.end_grace(oldest, Departure::ResumeBudget);
                    if oldest == target_id {
                        return Ok(());
                    }
                }
                let room_name = self
                    .conns
                    .get(&conn)
                    .and_then(|c| c.room.as_deref())
                    .expect("the sender is still in its room");
                let room = self.rooms.get_mut(room_name).expect("its room exists");
                let member = room
                    .members
                    .iter_mut()
                    .find(|m| m.id == target_id)
                    .expect("the addressee is still held");
                let Link::Lost { queue, bytes, .. } = &mut member.link else {
                    unreachable!("the addressee is lost");
                };
                *bytes += frame.len();
                self.held_bytes += frame.len();
                queue.push_back(Queued {
                    from: from_id,
                    frame,
                });
                self.stats.queued += 1;
            }
        }
        self.stats.relayed[kind as usize] += 1;
        Ok(())
    }

    fn remove_by_conn(&mut self, room_name: &str, conn: ConnId, why: Departure) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        if let Some(i) = room.find_conn(conn) {
            let id = room.members[i].id;
            self.remove_by_id(room_name, id, why);
        }
    }

    /// Removes a member, tells the others, drops what it queued for lost
    /// members, and removes the room if it is now empty.
    fn remove_by_id(&mut self, room_name: &str, id: u64, why: Departure) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let Some(i) = room.members.iter().position(|m| m.id == id) else {
            return;
        };
        let member = room.members.remove(i);
        if room.sfu {
            self.out
                .push_back(Output::Media(MediaCmd::Leave { member: id }));
        }
        if let Link::Lost {
            deadline, bytes, ..
        } = &member.link
        {
            self.lost.remove(&id);
            self.deadlines.remove(&(*deadline, id));
            self.held_bytes -= bytes;
        }
        if let Link::Live(conn) = member.link
            && let Some(state) = self.conns.get_mut(&conn)
        {
            state.room = None;
        }
        info!(
            room = room_name,
            name = member.name.as_str(),
            reason = why.as_str(),
            "left"
        );
        self.stats.leaves[why as usize] += 1;
        let note = protocol::peer_left(&member.name);
        let mut live = Vec::with_capacity(room.members.len());
        for other in &mut room.members {
            match &mut other.link {
                Link::Live(c) => live.push(*c),
                Link::Lost { queue, bytes, .. } => {
                    let held = &mut self.held_bytes;
                    queue.retain(|q| {
                        let keep = q.from != id;
                        if !keep {
                            *bytes -= q.frame.len();
                            *held -= q.frame.len();
                        }
                        keep
                    });
                }
            }
        }
        if room.members.is_empty() {
            let room = self.rooms.remove(room_name).expect("the room exists");
            // Nobody is left to let them in.
            for knocker in room.lobby {
                if let Some(state) = self.conns.get_mut(&knocker.conn) {
                    state.waiting = None;
                }
                let refusal = Refusal::new(
                    ErrorCode::Denied,
                    format!("the call in room \"{room_name}\" ended before the host let you in"),
                );
                self.refuse(knocker.conn, &refusal);
            }
            return;
        }
        let host_left = room.host == id;
        let host_note = if host_left {
            // The oldest remaining member takes over.
            let heir = &room.members[0];
            room.host = heir.id;
            info!(room = room_name, name = heir.name.as_str(), "new host");
            Some(protocol::host(&heir.name))
        } else {
            None
        };
        for &conn in &live {
            self.send(conn, note.clone());
        }
        if let Some(host_note) = host_note {
            for &conn in &live {
                self.send(conn, host_note.clone());
            }
            self.send_knocks(room_name);
        }
    }

    /// Sends FRAME to every live member of ROOM but the member EXCEPT.
    fn send_room_except(&mut self, room_name: &str, except: u64, frame: &str) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let live: Vec<ConnId> = room
            .members
            .iter()
            .filter(|m| m.id != except)
            .filter_map(live_conn)
            .collect();
        for c in live {
            self.send(c, frame.to_owned());
        }
    }

    /// `layer`: what the sender wants of a publisher's camera.
    fn layer(&mut self, conn: ConnId, peer: &str, want: LayerWant) -> Result<(), Refusal> {
        let (room, me) = self.sfu_member(conn, "layer")?;
        let target = room.find_name(peer).ok_or_else(|| {
            Refusal::new(
                ErrorCode::UnknownPeer,
                format!("nobody called \"{}\" is in this room", peer.trim()),
            )
        })?;
        if target == me {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "a layer is asked of someone else's camera",
            ));
        }
        let cmd = MediaCmd::Layer {
            member: room.members[me].id,
            publisher: room.members[target].id,
            want,
        };
        self.out.push_back(Output::Media(cmd));
        Ok(())
    }

    /// `data`: a data-channel message for everyone else in a media-server
    /// room (there are no member-to-member data channels there).
    fn data(&mut self, conn: ConnId, payload: &serde_json::value::RawValue) -> Result<(), Refusal> {
        let (room, me) = self.sfu_member(conn, "data")?;
        let from = &room.members[me];
        let frame = protocol::data(&from.name, payload);
        let (room_name, id) = (self.conns[&conn].room.clone().expect("a member"), from.id);
        self.stats.data += 1;
        self.send_room_except(&room_name, id, &frame);
        Ok(())
    }

    /// The room and member index of CONN, a member of a media-server room
    /// (for WHAT, which needs one).
    fn sfu_member(&self, conn: ConnId, what: &str) -> Result<(&Room, usize), Refusal> {
        let room_name = self
            .conns
            .get(&conn)
            .and_then(|c| c.room.as_deref())
            .ok_or_else(not_joined)?;
        let room = &self.rooms[room_name];
        if !room.sfu {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                format!("\"{what}\" is for rooms on the media server; this one is a mesh"),
            ));
        }
        let me = room
            .find_conn(conn)
            .expect("a connection's member is in its room");
        Ok((room, me))
    }

    /// Takes what the media server says (see [`MediaEvent`]).
    pub fn media_event(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::Offer { member, sdp } => {
                self.send_member(member, protocol::server_sdp(RelayKind::Offer, &sdp));
            }
            MediaEvent::Answer { member, sdp } => {
                self.send_member(member, protocol::server_sdp(RelayKind::Answer, &sdp));
            }
            MediaEvent::Speaker { room, member } => {
                let Some(r) = self.rooms.get(&room) else {
                    return;
                };
                let name = member.and_then(|id| r.members.iter().find(|m| m.id == id));
                let frame = protocol::speaker(name.map(|m| &m.name));
                self.send_room_except(&room, FROM_SERVER, &frame);
            }
            MediaEvent::Failed { member } => self.media_refused(
                member,
                ErrorCode::Unavailable,
                "your connection to the media server failed; you are out of the room and may join again",
            ),
            MediaEvent::Refused { member, why } => {
                if let Some((_, Some(conn))) = self.media_member(member) {
                    self.refuse(conn, &Refusal::new(ErrorCode::BadMessage, why));
                }
            }
            MediaEvent::Full { member } => self.media_refused(
                member,
                ErrorCode::RoomFull,
                "the media server is at capacity; you are out of the room and may try again later",
            ),
        }
    }

    /// MEMBER's media connection cannot go on: it leaves its room, and its
    /// connection (if live) hears CODE and WHY.
    fn media_refused(&mut self, member: u64, code: ErrorCode, why: &'static str) {
        let Some((room_name, live)) = self.media_member(member) else {
            return;
        };
        info!(room = %room_name, member, %code, "media connection ended");
        self.remove_by_id(&room_name, member, Departure::MediaFailed);
        // Out of the room now: it can join again.
        if let Some(conn) = live {
            self.refuse(conn, &Refusal::new(code, why));
        }
    }

    /// The media-server room of member ID and its connection when live, if
    /// it is still in one.
    fn media_member(&self, id: u64) -> Option<(String, Option<ConnId>)> {
        // Media-server rooms only hear of their own members; a scan of the
        // rooms is bounded by the rooms on the media server.
        self.rooms
            .iter()
            .filter(|(_, r)| r.sfu)
            .find_map(|(name, r)| {
                let m = r.members.iter().find(|m| m.id == id)?;
                let live = match m.link {
                    Link::Live(conn) => Some(conn),
                    Link::Lost { .. } => None,
                };
                Some((name.clone(), live))
            })
    }

    /// Sends FRAME to member ID, or queues it while its connection is lost
    /// (ending its grace period, as a relay would, when the queue is full).
    fn send_member(&mut self, id: u64, frame: String) {
        let Some((room_name, _)) = self.media_member(id) else {
            return;
        };
        let room = self.rooms.get_mut(&room_name).expect("found");
        let member = room.members.iter_mut().find(|m| m.id == id).expect("found");
        match &mut member.link {
            Link::Live(c) => {
                let c = *c;
                self.send(c, frame);
            }
            Link::Lost { queue, bytes, .. } => {
                if queue.len() >= self.cfg.resume_queue
                    || *bytes + frame.len() > self.cfg.resume_queue_bytes
                    || self.held_bytes + frame.len() > self.cfg.resume_budget_bytes
                {
                    self.remove_by_id(&room_name, id, Departure::QueueOverflow);
                    return;
                }
                *bytes += frame.len();
                self.held_bytes += frame.len();
                queue.push_back(Queued {
                    from: FROM_SERVER,
                    frame,
                });
                self.stats.queued += 1;
            }
        }
    }

    fn room_settings(
        &mut self,
        conn: ConnId,
        password: Result<Option<Option<Arc<str>>>, ()>,
        locked: Option<bool>,
    ) -> Result<(), Refusal> {
        let room_name = self
            .conns
            .get(&conn)
            .and_then(|c| c.room.clone())
            .ok_or_else(not_joined)?;
        let room = self
            .rooms
            .get_mut(&room_name)
            .expect("a connection's room exists");
        if room.host_conn() != Some(conn) {
            return Err(not_host());
        }
        let password = password.map_err(|()| {
            Refusal::new(
                ErrorCode::Unavailable,
                "the password could not be set just now; try again",
            )
        })?;
        match password {
            None => {}
            Some(None) => room.password = None,
            Some(Some(hash)) => {
                let generation = self.next_generation;
                self.next_generation += 1;
                room.password = Some(RoomPassword { hash, generation });
            }
        }
        let was_locked = room.locked;
        if let Some(locked) = locked {
            room.locked = locked;
        }
        info!(
            room = %room_name,
            locked = room.locked,
            protected = room.password.is_some(),
            "room settings changed"
        );
        let frame = protocol::room_settings(room.locked, room.password.is_some());
        let live: Vec<ConnId> = room.members.iter().filter_map(live_conn).collect();
        let unlocked = was_locked && !room.locked;
        let lobby = if unlocked {
            std::mem::take(&mut room.lobby)
        } else {
            Vec::new()
        };
        for conn in live {
            self.send(conn, frame.clone());
        }
        if unlocked {
            // Unlocking lets everyone waiting in, in the order they
            // knocked, as far as the room's size allows.
            for knocker in lobby {
                let full = self
                    .rooms
                    .get(&room_name)
                    .is_none_or(|r| r.members.len() >= self.cfg.max_room_size);
                if let Some(state) = self.conns.get_mut(&knocker.conn) {
                    state.waiting = None;
                }
                if full {
                    let max = self.cfg.max_room_size;
                    self.refuse(
                        knocker.conn,
                        &Refusal::new(
                            ErrorCode::RoomFull,
                            format!("room \"{room_name}\" is full ({max} members)"),
                        ),
                    );
                    if let Some(host) = self.rooms.get(&room_name).and_then(Room::host_conn) {
                        self.send(host, protocol::knock_gone(&knocker.name));
                    }
                } else {
                    self.stats.admitted += 1;
                    self.add_member(knocker.conn, &room_name, knocker.name, false, knocker.caps);
                }
            }
        }
        Ok(())
    }

    fn host_action(
        &mut self,
        conn: ConnId,
        action: HostAction,
        to: &str,
        now: Instant,
    ) -> Result<(), Refusal> {
        let room_name = self
            .conns
            .get(&conn)
            .and_then(|c| c.room.clone())
            .ok_or_else(not_joined)?;
        let room = self
            .rooms
            .get(&room_name)
            .expect("a connection's room exists");
        let me = room
            .find_conn(conn)
            .expect("a connection's member is in its room");
        if room.find_name(to) == Some(me) {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                format!("you cannot {} yourself", action.type_str()),
            ));
        }
        if room.host_conn() != Some(conn) {
            return Err(not_host());
        }
        let host_name = room.members[me].name.clone();
        match action {
            HostAction::Admit | HostAction::Deny => {
                let i = room.find_knocker(to).ok_or_else(|| {
                    Refusal::new(
                        ErrorCode::UnknownPeer,
                        format!("nobody called \"{}\" is waiting to join", to.trim()),
                    )
                })?;
                if action == HostAction::Admit && room.members.len() >= self.cfg.max_room_size {
                    return Err(Refusal::new(
                        ErrorCode::RoomFull,
                        format!(
                            "the room is full ({} members): nobody more can be let in",
                            self.cfg.max_room_size
                        ),
                    ));
                }
                let room = self.rooms.get_mut(&room_name).expect("it exists");
                let knocker = room.lobby.remove(i);
                if let Some(state) = self.conns.get_mut(&knocker.conn) {
                    state.waiting = None;
                }
                if action == HostAction::Admit {
                    info!(room = %room_name, name = knocker.name.as_str(), "admitted");
                    self.stats.admitted += 1;
                    self.add_member(knocker.conn, &room_name, knocker.name, false, knocker.caps);
                } else {
                    info!(room = %room_name, name = knocker.name.as_str(), "denied");
                    self.stats.denied += 1;
                    let refusal = Refusal::new(
                        ErrorCode::Denied,
                        format!(
                            "{} did not let you into room \"{room_name}\"",
                            host_name.as_str()
                        ),
                    );
                    self.refuse(knocker.conn, &refusal);
                }
            }
            HostAction::Remove | HostAction::AskMute => {
                let i = room.find_name(to).ok_or_else(|| {
                    Refusal::new(
                        ErrorCode::UnknownPeer,
                        format!("nobody called \"{}\" is in this room", to.trim()),
                    )
                })?;
                let target = &room.members[i];
                let (id, target_conn) = (target.id, live_conn(target));
                if action == HostAction::AskMute {
                    // A member whose connection is lost misses the request:
                    // it is a request, not a state to restore.
                    if let Some(target_conn) = target_conn {
                        self.send(target_conn, protocol::ask_mute(&host_name));
                    }
                    return Ok(());
                }
                let token = target.token.clone();
                let until = now + self.cfg.reconnect_grace;
                let room = self.rooms.get_mut(&room_name).expect("it exists");
                room.revoked.retain(|r| r.until > now);
                if room.revoked.len() >= self.cfg.max_room_size {
                    room.revoked.remove(0);
                }
                room.revoked.push(Revoked {
                    token,
                    by: host_name.clone(),
                    until,
                });
                if let Some(target_conn) = target_conn {
                    self.send(target_conn, protocol::removed(&host_name));
                    self.out.push_back(Output::Close(
                        target_conn,
                        close::REMOVED,
                        "removed by the host",
                    ));
                    self.conns.remove(&target_conn);
                }
                self.remove_by_id(&room_name, id, Departure::Removed);
            }
        }
        Ok(())
    }

    /// Checks the internal consistency of the state; panics with a reason.
    /// Used by tests after every step.
    pub fn assert_invariants(&self) {
        for (name, room) in &self.rooms {
            assert!(!room.members.is_empty(), "room {name} is empty but exists");
            assert!(
                room.members.iter().any(|m| m.id == room.host),
                "room {name} has one host among its members"
            );
            assert!(
                room.lobby.len() <= self.cfg.max_lobby_size,
                "room {name}'s lobby holds more than the maximum"
            );
            for (i, k) in room.lobby.iter().enumerate() {
                let state = self
                    .conns
                    .get(&k.conn)
                    .expect("a knocker's connection is known");
                assert_eq!(state.waiting.as_deref(), Some(name.as_str()));
                assert!(
                    room.lobby[i + 1..].iter().all(|o| !o.name.clashes(&k.name)),
                    "two knockers called {} in {name}",
                    k.name.as_str()
                );
                assert!(
                    room.members.iter().all(|m| !m.name.clashes(&k.name)),
                    "a knocker and a member called {} in {name}",
                    k.name.as_str()
                );
            }
            let max = if room.sfu {
                self.cfg.max_sfu_room_size.max(self.cfg.max_room_size)
            } else {
                self.cfg.max_room_size
            };
            assert!(
                room.members.len() <= max,
                "room {name} holds more than the maximum"
            );
            let past = self.cfg.sfu_above.is_some_and(|n| room.members.len() > n);
            assert!(
                room.sfu || !past || room.members.iter().any(|m| !m.caps.sfu),
                "room {name} should have moved to the media server"
            );
            assert!(
                self.cfg.sfu_above.is_some() || !room.sfu,
                "room {name} is on a media server that is off"
            );
            for (i, m) in room.members.iter().enumerate() {
                assert!(
                    room.members[i + 1..]
                        .iter()
                        .all(|o| !o.name.clashes(&m.name)),
                    "two members called {} in {name}",
                    m.name.as_str()
                );
                match &m.link {
                    Link::Live(c) => {
                        let state = self
                            .conns
                            .get(c)
                            .expect("a live member's connection is known");
                        assert_eq!(state.room.as_deref(), Some(name.as_str()));
                        assert!(!self.lost.contains_key(&m.id));
                    }
                    Link::Lost {
                        deadline,
                        queue,
                        bytes,
                    } => {
                        assert_eq!(self.lost.get(&m.id), Some(&(name.clone(), *deadline)));
                        assert!(self.deadlines.contains(&(*deadline, m.id)));
                        assert_eq!(*bytes, queue.iter().map(|q| q.frame.len()).sum::<usize>());
                        assert!(queue.len() <= self.cfg.resume_queue);
                    }
                }
            }
        }
        for (conn, state) in &self.conns {
            assert!(
                state.room.is_none() || state.waiting.is_none(),
                "connection {conn} is a member and waiting at once"
            );
            if let Some(room) = &state.waiting {
                let r = self.rooms.get(room).expect("a knocker's room exists");
                assert!(r.lobby.iter().any(|k| k.conn == *conn));
            }
            if let Some(room) = &state.room {
                let r = self.rooms.get(room).expect("a connection's room exists");
                assert!(
                    r.find_conn(*conn).is_some(),
                    "connection {conn} not in its room"
                );
            }
        }
        for (id, (room, _)) in &self.lost {
            let r = self.rooms.get(room).expect("a lost member's room exists");
            assert!(r.members.iter().any(|m| m.id == *id));
        }
        assert_eq!(self.deadlines.len(), self.lost.len());
        let held: usize = self
            .rooms
            .values()
            .flat_map(|r| &r.members)
            .map(|m| match &m.link {
                Link::Lost { bytes, .. } => *bytes,
                Link::Live(_) => 0,
            })
            .sum();
        assert_eq!(self.held_bytes, held, "held bytes add up");
        assert!(
            self.held_bytes <= self.cfg.resume_budget_bytes,
            "the resume budget holds"
        );
    }
}

/// The position of the name that `to` (as a client wrote it) names:
/// spelled exactly as the server spells it (the common case, without
/// allocating), or matched as names are compared.
/// Appends ROOM's mode to a `joined` frame (before its closing brace).
fn with_mode(joined: &mut String, room: &Room) {
    debug_assert!(joined.ends_with('}'));
    joined.pop();
    room.push_mode(joined);
    joined.push('}');
}

/// What an `offer`, `answer` or `candidate` to `@server` asks of the media
/// server (`None`: nothing, a candidate: the media server is ICE-lite and
/// learns addresses from the checks).
fn media_signal(
    room: &Room,
    from: usize,
    kind: RelayKind,
    payload: &serde_json::value::RawValue,
) -> Result<Option<MediaCmd>, Refusal> {
    if !room.sfu {
        return Err(Refusal::new(
            ErrorCode::UnknownPeer,
            format!("this room is a mesh: there is no \"{SERVER_PEER}\" in it"),
        ));
    }
    let member = room.members[from].id;
    let sdp = || -> Result<String, Refusal> {
        serde_json::from_str::<String>(payload.get())
            .map_err(|_| Refusal::new(ErrorCode::BadMessage, "\"sdp\" must be a string"))
    };
    Ok(match kind {
        RelayKind::Offer => Some(MediaCmd::Offer {
            member,
            sdp: sdp()?,
        }),
        RelayKind::Answer => Some(MediaCmd::Answer {
            member,
            sdp: sdp()?,
        }),
        RelayKind::Candidate => None,
    })
}

fn position_named<'a>(names: impl Iterator<Item = &'a Name> + Clone, to: &str) -> Option<usize> {
    if let Some(i) = names.clone().position(|n| n.is_exactly(to)) {
        return Some(i);
    }
    let query = NameQuery::new(to);
    names.into_iter().position(|n| query.names(n))
}

fn live_conn(m: &Member) -> Option<ConnId> {
    match m.link {
        Link::Live(c) => Some(c),
        Link::Lost { .. } => None,
    }
}

fn not_host() -> Refusal {
    Refusal::new(ErrorCode::NotHost, "only the room's host can do that")
}

fn not_joined() -> Refusal {
    Refusal::new(
        ErrorCode::NotJoined,
        "join a room first: send {\"type\":\"join\",\"room\":…,\"name\":…}",
    )
}

/// Compares two tokens in time that depends only on their lengths
/// (`subtle`'s constant-time equality).
fn tokens_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
