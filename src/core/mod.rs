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
mod prop;
mod rate;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use tracing::{debug, info};

use crate::config::CoreConfig;
use crate::protocol::{self, ClientMsg, ErrorCode, Name, NameQuery, Refusal, RelayKind};
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
}

/// One connection as the core sees it.
#[derive(Debug)]
struct Conn {
    /// The room this connection is a member of.
    room: Option<String>,
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
}

/// A room: members oldest first. Never empty while it exists.
#[derive(Debug, Default)]
struct Room {
    members: Vec<Member>,
}

impl Room {
    /// The member a relay's `to` names: spelled exactly as in `peers` (the
    /// common case, without allocating), or matched as names are compared.
    fn find_name(&self, to: &str) -> Option<usize> {
        if let Some(i) = self.members.iter().position(|m| m.name.is_exactly(to)) {
            return Some(i);
        }
        let query = NameQuery::new(to);
        self.members.iter().position(|m| query.names(&m.name))
    }

    /// A member other than `conn`'s own whose name clashes with `name`.
    fn find_clash(&self, name: &Name, conn: ConnId) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| !matches!(m.link, Link::Live(c) if c == conn) && m.name.clashes(name))
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
            Ok(ClientMsg::Join { room, name, token }) => {
                self.join(conn, &room, &name, token.as_deref())
            }
            Ok(ClientMsg::Leave) => self.leave(conn),
            Ok(ClientMsg::Relay { kind, to, payload }) => self.relay(conn, kind, &to, payload),
        };
        if let Err(refusal) = result {
            debug!(conn, code = %refusal.code, "refused");
            self.refuse(conn, &refusal);
        }
    }

    /// The connection ended cleanly (close frame, `leave`-like) or the shell
    /// closed it for a protocol violation: its member leaves at once.
    pub fn closed(&mut self, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
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
        room_name: &str,
        raw_name: &str,
        token: Option<&str>,
    ) -> Result<(), Refusal> {
        let name = Name::parse(raw_name)?;
        protocol::validate_room(room_name)?;
        let current = self.conns.get(&conn).and_then(|c| c.room.clone());
        let max = self.cfg.max_room_size;

        // Decide everything before changing anything: a failed join leaves
        // the client where it was.
        let mut resume_index = None;
        if let Some(room) = self.rooms.get(room_name) {
            // A resume: the member of this (folded) name, with its token.
            resume_index = token.and_then(|t| {
                room.members
                    .iter()
                    .position(|m| m.name.key() == name.key() && tokens_equal(t, &m.token))
            });
            if resume_index.is_none()
                && let Some(member) = room.find_clash(&name, conn)
            {
                return Err(Refusal::new(
                    ErrorCode::NameTaken,
                    format!(
                        "the name \"{}\" is already taken in room \"{room_name}\"; choose another name",
                        member.name.as_str()
                    ),
                ));
            }
            let here = current.as_deref() == Some(room_name);
            let size_after_leaving = room.members.len() - usize::from(here);
            if resume_index.is_none() && size_after_leaving >= max {
                return Err(Refusal::new(
                    ErrorCode::RoomFull,
                    format!("room \"{room_name}\" is full ({max} members)"),
                ));
            }
        } else if max == 0 {
            return Err(Refusal::new(
                ErrorCode::RoomFull,
                format!("room \"{room_name}\" is full ({max} members)"),
            ));
        }

        if let Some(i) = resume_index {
            self.resume(conn, room_name, i, current);
            return Ok(());
        }

        if let Some(old) = current {
            self.remove_by_conn(&old, conn, Departure::RoomChange);
        }
        let token = self.env.token();
        let id = self.next_member;
        self.next_member += 1;
        let unix = self.unix_now();
        let ice = self.cfg.ice.render(name.as_str(), unix);
        let room = self.rooms.entry(room_name.to_owned()).or_default();
        let joined = protocol::joined(
            room_name,
            &name,
            room.members.iter().map(|m| &m.name),
            &ice,
            &token,
            false,
        );
        let note = protocol::peer_joined(&name);
        let live: Vec<ConnId> = room.members.iter().filter_map(live_conn).collect();
        info!(room = room_name, name = name.as_str(), "joined");
        self.stats.joins += 1;
        room.members.push(Member {
            id,
            name,
            token,
            link: Link::Live(conn),
        });
        if let Some(state) = self.conns.get_mut(&conn) {
            state.room = Some(room_name.to_owned());
        }
        self.send(conn, joined);
        for other in live {
            self.send(other, note.clone());
        }
        Ok(())
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
        let joined = protocol::joined(
            room_name,
            &member.name,
            room.members.iter().filter(|m| m.id != id).map(|m| &m.name),
            &ice,
            &member.token,
            true,
        );
        if let Some(state) = self.conns.get_mut(&conn) {
            state.room = Some(room_name.to_owned());
        }
        self.send(conn, joined);
        for q in queued {
            self.send(conn, q.frame);
        }
    }

    fn leave(&mut self, conn: ConnId) -> Result<(), Refusal> {
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
            self.rooms.remove(room_name);
        }
        for conn in live {
            self.send(conn, note.clone());
        }
    }

    /// Checks the internal consistency of the state; panics with a reason.
    /// Used by tests after every step.
    pub fn assert_invariants(&self) {
        for (name, room) in &self.rooms {
            assert!(!room.members.is_empty(), "room {name} is empty but exists");
            assert!(
                room.members.len() <= self.cfg.max_room_size,
                "room {name} holds more than the maximum"
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

fn live_conn(m: &Member) -> Option<ConnId> {
    match m.link {
        Link::Live(c) => Some(c),
        Link::Lost { .. } => None,
    }
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
