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

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::CoreConfig;
use crate::core::{ConnId, Core, Env, IdMap, Output};
use crate::metrics::{FrameRefusal, Histogram, ProcessStats, Snapshot, UpgradeRefusal};
use crate::protocol;
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
}

struct Inner {
    core: Core,
    conns: IdMap<ConnHandle>,
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
}

/// Shared state of the signaling server. See the module documentation.
pub struct Hub {
    inner: Mutex<Inner>,
    timers: Notify,
    next_conn: AtomicU64,
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
        Arc::new(Self {
            inner: Mutex::new(Inner {
                core: Core::new(cfg, tokens),
                conns: IdMap::default(),
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
            },
        );
        inner.counts.opened += 1;
        id
    }

    /// A text frame arrived on `conn`.
    pub fn frame(&self, conn: ConnId, text: &str) {
        // One clock read more than the core needs: the handle-time histogram.
        let start = now();
        let parsed = protocol::parse(text);
        let mut inner = self.lock();
        inner.core.message(conn, parsed, start);
        self.dispatch(&mut inner);
        inner.counts.handle_time.record(now() - start);
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
        hub.frame(alice, r#"{"type":"join","room":"r","name":"alice"}"#);
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
    fn a_failed_join_does_not_count_as_joined() {
        let hub = Hub::new(CoreConfig::default());
        let (c, _rx) = conn(&hub);
        hub.frame(c, r#"{"type":"join","room":"r","name":""}"#);
        hub.frame(c, "not json");
        assert!(hub.join_deadline(c));
    }
}
