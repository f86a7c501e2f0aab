//! The one lock: the signaling core plus every connection's outbound queue.
//!
//! Each socket task calls into the [`Hub`] with what happened (a frame, a
//! clean close, a lost transport); the hub feeds the core under its mutex and
//! dispatches every output before releasing it, so all members see room
//! changes in one order. Dispatch only *enqueues* frames (`try_send` on a
//! bounded channel): no socket is written while the lock is held. A queue
//! that is full marks a slow consumer: its connection is cut (treated as lost,
//! so the member may resume) instead of letting memory grow.
//!
//! Frames are parsed before the lock is taken. Grace-period timers run in
//! [`Hub::run_timers`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::{
    CoreConfig, DEFAULT_MAX_PASSWORD_HASHES, DEFAULT_WRONG_PASSWORD_DELAY, MAX_WRONG_PASSWORD_DELAY,
};
use crate::core::{ConnId, Core, Env, IdMap, Output, PasswordCheck, Prepared};
use crate::metrics::{FrameRefusal, Histogram, ProcessStats, Snapshot, UpgradeRefusal};
use crate::password::Hasher;
use crate::protocol;
use crate::protocol::ClientMsg;
use crate::queue::{self, TrySendError};

/// What a socket task is asked to write.
#[derive(Debug)]
pub enum Outbound {
    /// A text frame.
    Text(String),
    /// A WebSocket ping (heartbeat).
    Ping,
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
}

impl Outbound {
    /// What an item costs in the outbound queue's byte bound: the text it
    /// carries (pings and closes are a few bytes and never pile up).
    pub fn weight(&self) -> usize {
        match self {
            Outbound::Text(text) => text.len(),
            Outbound::Ping | Outbound::Close(..) => 0,
        }
    }
}

/// How every `joined` frame starts (see [`protocol::joined`]): the hub
/// watches for it to know that a connection has joined (or resumed),
/// which is all the join deadline needs, without asking the core.
const JOINED_PREFIX: &str = "{\"type\":\"joined\"";

/// The hub's handle on one connection.
#[derive(Debug)]
struct ConnHandle {
    tx: queue::Sender<Outbound>,
    /// Cancelled when the connection must go at once (slow consumer).
    kill: CancellationToken,
    /// Whether a `joined` was sent to it: it met its join deadline.
    joined: bool,
    /// Wrong room passwords it sent (each after the first answers later).
    wrong_passwords: u32,
}

struct Inner {
    core: Core,
    conns: IdMap<ConnHandle>,
    /// The media server's command queue and counters, when it runs.
    media: Option<crate::media::MediaLink>,
    /// Counters of the shell's own events (the core counts its own).
    counts: ShellCounts,
}

/// What the hub counts for `/metrics`, under the lock.
#[derive(Debug, Default)]
struct ShellCounts {
    opened: u64,
    slow_consumers: u64,
    frames_refused: [u64; FrameRefusal::ALL.len()],
    upgrades_refused: [u64; UpgradeRefusal::ALL.len()],
    handle_time: Histogram,
    password_hashes: u64,
    password_checks: u64,
    wrong_passwords: u64,
}

/// A frame that needs password work (hashing, Argon2id: tens of
/// milliseconds) before the core can take it; see [`Hub::frame`] and
/// [`Hub::finish`]. It holds the frame's text, parsed again when done.
pub struct Pending {
    text: String,
    work: Work,
}

/// Never shows the frame or the password (it may end up in a log).
impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let work = match self.work {
            Work::Hash(_) => "hash",
            Work::Verify { .. } => "verify",
        };
        f.debug_struct("Pending")
            .field("work", &work)
            .finish_non_exhaustive()
    }
}

enum Work {
    /// A host sets this password.
    Hash(String),
    /// A joiner's password against a generation of the room's.
    Verify {
        password: String,
        generation: u64,
        phc: Arc<str>,
    },
}

/// How the hub handles room passwords.
#[derive(Debug, Clone, Copy)]
pub struct PasswordSettings {
    /// Hashes computed at once (`--max-password-hashes`).
    pub max_hashes: usize,
    /// The delay before the answer to a second wrong password on one
    /// connection, doubling for each further one (`--wrong-password-delay`).
    pub wrong_delay: Duration,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            max_hashes: DEFAULT_MAX_PASSWORD_HASHES,
            wrong_delay: DEFAULT_WRONG_PASSWORD_DELAY,
        }
    }
}

/// How long the answer to a connection's `failures`-th wrong password is
/// held back: nothing for the first (a typo), then `base`, doubling, up to
/// [`MAX_WRONG_PASSWORD_DELAY`].
pub fn wrong_password_delay(base: Duration, failures: u32) -> Duration {
    if failures < 2 {
        return Duration::ZERO;
    }
    let factor = 1u32 << (failures - 2).min(16);
    base.saturating_mul(factor).min(MAX_WRONG_PASSWORD_DELAY)
}

/// Shared state of the signaling server. See the module documentation.
pub struct Hub {
    inner: Mutex<Inner>,
    timers: Notify,
    next_conn: AtomicU64,
    hasher: Hasher,
    wrong_delay: Duration,
}

/// Tokens from the operating system's cryptographic source: 128 bits,
/// base64url without padding (22 characters).
pub struct OsEnv;

impl Env for OsEnv {
    fn token(&mut self) -> String {
        use base64::Engine as _;
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
    fn unix_time(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// The current time as the core wants it (tokio's clock, so tests can pause it).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl Hub {
    /// A hub with an empty core.
    pub fn new(cfg: CoreConfig) -> Arc<Self> {
        Self::with_tokens(cfg, Box::new(OsEnv))
    }

    /// A hub with a given token source.
    pub fn with_tokens(cfg: CoreConfig, tokens: Box<dyn Env>) -> Arc<Self> {
        Self::with_settings(cfg, tokens, PasswordSettings::default())
    }

    /// A hub with a given token source and password settings.
    pub fn with_settings(
        cfg: CoreConfig,
        tokens: Box<dyn Env>,
        passwords: PasswordSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            hasher: Hasher::new(passwords.max_hashes),
            wrong_delay: passwords.wrong_delay,
            inner: Mutex::new(Inner {
                core: Core::new(cfg, tokens),
                conns: IdMap::default(),
                media: None,
                counts: ShellCounts::default(),
            }),
            timers: Notify::new(),
            next_conn: AtomicU64::new(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug; the state is still the
        // best we have, so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection and returns its id.
    pub fn connect(&self, tx: queue::Sender<Outbound>, kill: CancellationToken) -> ConnId {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        inner.core.connect(id, now());
        inner.conns.insert(
            id,
            ConnHandle {
                tx,
                kill,
                joined: false,
                wrong_passwords: 0,
            },
        );
        inner.counts.opened += 1;
        id
    }

    /// A text frame arrived on `conn`. Most are handled at once; one that
    /// needs a room password hashed or checked comes back as [`Pending`],
    /// for [`Hub::finish`] to complete off the lock (the connection reads
    /// nothing more meanwhile, so its messages keep their order).
    #[must_use]
    pub fn frame(&self, conn: ConnId, text: &str) -> Option<Pending> {
        // One clock read more than the core needs: the handle-time histogram.
        let start = now();
        let parsed = protocol::parse(text);
        let mut inner = self.lock();
        if let Some(work) = password_work(&inner.core, conn, &parsed) {
            return Some(Pending {
                text: text.to_owned(),
                work,
            });
        }
        inner.core.message(conn, parsed, start);
        self.dispatch(&mut inner);
        inner.counts.handle_time.record(now() - start);
        None
    }

    /// Does a [`Pending`] frame's password work on the blocking pool (at
    /// most `--max-password-hashes` at once), holds back the answer to a
    /// repeated wrong password, then hands the frame to the core. Comes
    /// back with more work if the room's password changed meanwhile.
    pub async fn finish(&self, conn: ConnId, pending: Pending) -> Option<Pending> {
        let mut prepared = Prepared::default();
        let mut checked = None;
        match pending.work {
            Work::Hash(password) => {
                prepared.password_hash = Some(self.hasher.hash(password).await);
                self.lock().counts.password_hashes += 1;
            }
            Work::Verify {
                password,
                generation,
                phc,
            } => {
                let matches = self.hasher.verify(password, phc).await;
                let failures = {
                    let mut inner = self.lock();
                    inner.counts.password_checks += 1;
                    if !matches {
                        inner.counts.wrong_passwords += 1;
                    }
                    let handle = inner.conns.get_mut(&conn)?;
                    if !matches {
                        handle.wrong_passwords = handle.wrong_passwords.saturating_add(1);
                    }
                    handle.wrong_passwords
                };
                if !matches {
                    let delay = wrong_password_delay(self.wrong_delay, failures);
                    if !delay.is_zero() {
                        debug!(
                            conn,
                            failures,
                            ?delay,
                            "holding back a wrong password's answer"
                        );
                        tokio::time::sleep(delay).await;
                    }
                }
                checked = Some(generation);
                prepared.password_check = Some(PasswordCheck {
                    generation,
                    matches,
                });
            }
        }
        let start = now();
        let parsed = protocol::parse(&pending.text);
        let mut inner = self.lock();
        if let Some(generation) = checked
            && let Some(work) = password_work(&inner.core, conn, &parsed)
            && matches!(work, Work::Verify { generation: g, .. } if g != generation)
        {
            // The host set another password while this one was checked.
            return Some(Pending {
                text: pending.text,
                work,
            });
        }
        inner.core.message_with(conn, parsed, prepared, start);
        self.dispatch(&mut inner);
        inner.counts.handle_time.record(now() - start);
        None
    }

    /// Handles a frame to the end, password work included (for tests and
    /// tools that have no read loop of their own).
    pub async fn frame_and_finish(&self, conn: ConnId, text: &str) {
        let mut pending = self.frame(conn, text);
        while let Some(work) = pending {
            pending = self.finish(conn, work).await;
        }
    }

    /// The WebSocket layer refused a frame of `conn` and closes it: like
    /// [`Hub::closed`], and counted.
    pub fn refused_frame(&self, conn: ConnId, why: FrameRefusal) {
        let mut inner = self.lock();
        inner.counts.frames_refused[why as usize] += 1;
        inner.conns.remove(&conn);
        inner.core.closed(conn);
        self.dispatch(&mut inner);
    }

    /// An upgrade to `/ws` was refused before a connection existed.
    pub fn refused_upgrade(&self, why: UpgradeRefusal) {
        self.lock().counts.upgrades_refused[why as usize] += 1;
    }

    /// Everything `/metrics` shows. The lock is held only to copy numbers;
    /// `/proc` is read outside it.
    pub fn metrics(&self) -> Snapshot {
        let mut snapshot = {
            let inner = self.lock();
            let c = &inner.counts;
            Snapshot {
                core: inner.core.stats().clone(),
                connections: inner.conns.len(),
                rooms: inner.core.room_count(),
                members: inner.core.member_count(),
                members_held: inner.core.held_count(),
                held_bytes: inner.core.held_bytes(),
                connections_opened: c.opened,
                slow_consumers: c.slow_consumers,
                frames_refused: c.frames_refused,
                upgrades_refused: c.upgrades_refused,
                handle_time: c.handle_time.clone(),
                password_hashes: c.password_hashes,
                password_checks: c.password_checks,
                wrong_passwords: c.wrong_passwords,
                media: inner.media.as_ref().map(crate::media::MediaLink::snapshot),
                process: ProcessStats::default(),
            }
        };
        snapshot.process = ProcessStats::read();
        snapshot
    }

    /// `conn` ended cleanly or broke the protocol: its member leaves at once.
    pub fn closed(&self, conn: ConnId) {
        let mut inner = self.lock();
        inner.conns.remove(&conn);
        inner.core.closed(conn);
        self.dispatch(&mut inner);
    }

    /// `conn`'s join deadline passed. If it never got a `joined`, it is
    /// forgotten (like [`Hub::closed`]) and `true` says the socket must close
    /// with 1008; `false` means it has joined and the deadline is moot.
    /// Deciding under the lock means a `joined` dispatched at the same moment
    /// cannot be followed by a close.
    pub fn join_deadline(&self, conn: ConnId) -> bool {
        let mut inner = self.lock();
        match inner.conns.get(&conn) {
            Some(handle) if handle.joined => false,
            Some(_) => {
                inner.conns.remove(&conn);
                inner.core.closed(conn);
                self.dispatch(&mut inner);
                true
            }
            // Already gone (killed, closed): nothing to do.
            None => false,
        }
    }

    /// `conn`'s writer could not write for `--write-timeout`: cut it as a
    /// slow consumer (its member keeps its place for the grace period).
    pub fn stalled(&self, conn: ConnId) {
        let mut inner = self.lock();
        if let Some(handle) = inner.conns.remove(&conn) {
            warn!(conn, "write timed out: disconnecting a slow consumer");
            inner.counts.slow_consumers += 1;
            handle.kill.cancel();
            inner.core.lost(conn, now());
            self.dispatch(&mut inner);
            self.timers.notify_one();
        }
    }

    /// `conn`'s transport vanished: its member keeps its place for the grace period.
    pub fn lost(&self, conn: ConnId) {
        let mut inner = self.lock();
        inner.conns.remove(&conn);
        inner.core.lost(conn, now());
        self.dispatch(&mut inner);
        self.timers.notify_one();
    }

    /// Live numbers for `/healthz` and logs.
    pub fn stats(&self) -> HubStats {
        let inner = self.lock();
        HubStats {
            connections: inner.conns.len(),
            rooms: inner.core.room_count(),
            members: inner.core.member_count(),
        }
    }

    /// Connects the media server: the core's media commands go to LINK,
    /// and `/metrics` shows its figures.
    pub fn set_media(&self, link: crate::media::MediaLink) {
        self.lock().media = Some(link);
    }

    /// Something the media server tells the members (see
    /// [`Core::media_event`]).
    pub fn media_event(&self, event: huddle_core::core::MediaEvent) {
        let mut inner = self.lock();
        inner.core.media_event(event);
        self.dispatch(&mut inner);
    }

    /// Names in a room, oldest first.
    pub fn members(&self, room: &str) -> Vec<String> {
        self.lock().core.members(room)
    }

    /// Ends expired grace periods until `shutdown` is cancelled.
    pub async fn run_timers(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let next = self.lock().core.poll_timeout();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {
                    let mut inner = self.lock();
                    inner.core.handle_timeout(now());
                    self.dispatch(&mut inner);
                }
                () = self.timers.notified() => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Delivers every output of the core to the connections' queues.
    fn dispatch(&self, inner: &mut Inner) {
        loop {
            let mut slow = Vec::new();
            while let Some(out) = inner.core.poll_output() {
                match out {
                    Output::Send(conn, frame) => {
                        let Some(handle) = inner.conns.get_mut(&conn) else {
                            continue;
                        };
                        if !handle.joined && frame.starts_with(JOINED_PREFIX) {
                            handle.joined = true;
                        }
                        match handle.tx.try_send(Outbound::Text(frame)) {
                            Ok(()) => {}
                            Err(TrySendError::Full(_)) => slow.push(conn),
                            // The socket task is ending; its own report follows.
                            Err(TrySendError::Closed(_)) => {}
                        }
                    }
                    Output::Close(conn, code, reason) => {
                        if let Some(handle) = inner.conns.remove(&conn) {
                            debug!(conn, code, reason, "closing");
                            if handle.tx.try_send(Outbound::Close(code, reason)).is_err() {
                                handle.kill.cancel();
                            }
                        }
                    }
                    Output::Media(cmd) => match &inner.media {
                        // Never waits under the lock: a full queue drops.
                        Some(media) => media.send(cmd),
                        // A core without `sfu_above` moves no room.
                        None => warn!(?cmd, "media command without a media server"),
                    },
                }
            }
            if slow.is_empty() {
                return;
            }
            for conn in slow {
                if let Some(handle) = inner.conns.remove(&conn) {
                    warn!(conn, "outbound queue full: disconnecting a slow consumer");
                    inner.counts.slow_consumers += 1;
                    handle.kill.cancel();
                    inner.core.lost(conn, now());
                    self.timers.notify_one();
                }
            }
        }
    }
}

/// The password work `parsed` needs before the core takes it, if any: a
/// host setting a password (others are refused without hashing anything),
/// or a join with a password to a room that has one.
fn password_work(
    core: &Core,
    conn: ConnId,
    parsed: &Result<ClientMsg<'_>, protocol::Refusal>,
) -> Option<Work> {
    match parsed {
        Ok(ClientMsg::RoomSettings {
            password: Some(Some(password)),
            ..
        }) if core.is_host(conn) => Some(Work::Hash(password.to_string())),
        Ok(
            msg @ ClientMsg::Join {
                password: Some(password),
                ..
            },
        ) => core
            .password_to_check(msg)
            .map(|(generation, phc)| Work::Verify {
                password: password.to_string(),
                generation,
                phc,
            }),
        _ => None,
    }
}

/// A snapshot of the hub's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    /// Open signaling connections.
    pub connections: usize,
    /// Rooms that exist.
    pub rooms: usize,
    /// Members in all rooms (live and within their grace period).
    pub members: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(hub: &Hub) -> (ConnId, queue::Receiver<Outbound>) {
        let (tx, rx) = queue::channel(16);
        (hub.connect(tx, CancellationToken::new()), rx)
    }

    #[test]
    fn the_join_deadline_closes_only_connections_that_never_joined() {
        let hub = Hub::new(CoreConfig::default());
        let (alice, mut alice_rx) = conn(&hub);
        let (idle, _idle_rx) = conn(&hub);
        assert!(
            hub.frame(alice, r#"{"type":"join","room":"r","name":"alice"}"#)
                .is_none()
        );
        match alice_rx.try_recv() {
            Some(Outbound::Text(t)) => assert!(t.starts_with(JOINED_PREFIX), "{t}"),
            other => panic!("expected joined, got {other:?}"),
        }
        assert!(!hub.join_deadline(alice), "alice joined in time");
        assert!(hub.join_deadline(idle), "idle never joined");
        assert_eq!(hub.stats().connections, 1);
        // Asking again about a forgotten connection does nothing.
        assert!(!hub.join_deadline(idle));
        assert_eq!(hub.members("r"), ["alice"]);
    }

    #[test]
    fn a_full_media_queue_drops_and_counts_instead_of_waiting() {
        let hub = Hub::new(CoreConfig {
            sfu_above: Some(0),
            ..CoreConfig::default()
        });
        // A media task that reads nothing, with room for one command.
        let (link, mut rx) = crate::media::channel(1);
        hub.set_media(link);
        let (a, _a_rx) = conn(&hub);
        let (b, _b_rx) = conn(&hub);
        // Each join into the media-server room is a media command.
        for (c, name) in [(a, "a"), (b, "b")] {
            let join = format!(r#"{{"type":"join","room":"r","name":"{name}","caps":["sfu"]}}"#);
            assert!(hub.frame(c, &join).is_none());
        }
        assert_eq!(hub.members("r"), ["a", "b"], "both joined, nobody waited");
        assert!(matches!(
            rx.try_recv(),
            Ok(huddle_core::core::MediaCmd::Join { .. })
        ));
        assert!(rx.try_recv().is_err(), "the second did not fit");
        assert_eq!(hub.metrics().media.map(|m| m.commands_dropped), Some(1));
    }

    #[test]
    fn wrong_passwords_wait_longer_and_longer() {
        let base = Duration::from_secs(1);
        let waits: Vec<u64> = (1..=9)
            .map(|n| wrong_password_delay(base, n).as_secs())
            .collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            wrong_password_delay(base, u32::MAX),
            MAX_WRONG_PASSWORD_DELAY
        );
        assert_eq!(wrong_password_delay(Duration::ZERO, 5), Duration::ZERO);
    }

    fn text(rx: &mut queue::Receiver<Outbound>) -> serde_json::Value {
        match rx.try_recv() {
            Some(Outbound::Text(t)) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn password_frames_are_finished_off_the_lock() {
        let hub = Hub::with_settings(
            CoreConfig::default(),
            Box::new(OsEnv),
            PasswordSettings {
                max_hashes: 1,
                wrong_delay: Duration::ZERO,
            },
        );
        let (host, mut host_rx) = conn(&hub);
        let (guest, mut guest_rx) = conn(&hub);
        hub.frame_and_finish(host, r#"{"type":"join","room":"r","name":"host"}"#)
            .await;
        text(&mut host_rx);
        // Setting a password needs hashing: the frame comes back as work.
        let pending = hub.frame(host, r#"{"type":"room-settings","password":"pw"}"#);
        assert!(pending.is_some());
        assert!(
            !format!("{pending:?}").contains("pw"),
            "no password in Debug"
        );
        assert!(hub.finish(host, pending.unwrap()).await.is_none());
        assert_eq!(text(&mut host_rx)["protected"], true);
        for (password, want) in [("nope", "error"), ("pw", "joined")] {
            let join =
                format!(r#"{{"type":"join","room":"r","name":"guest","password":"{password}"}}"#);
            hub.frame_and_finish(guest, &join).await;
            assert_eq!(text(&mut guest_rx)["type"], want);
        }
        assert_eq!(hub.members("r"), ["host", "guest"]);
        let m = hub.metrics();
        assert_eq!(
            (m.password_hashes, m.password_checks, m.wrong_passwords),
            (1, 2, 1)
        );
    }

    #[test]
    fn a_failed_join_does_not_count_as_joined() {
        let hub = Hub::new(CoreConfig::default());
        let (c, _rx) = conn(&hub);
        assert!(
            hub.frame(c, r#"{"type":"join","room":"r","name":""}"#)
                .is_none()
        );
        assert!(hub.frame(c, "not json").is_none());
        assert!(hub.join_deadline(c));
    }
}
