//! The signaling core's settings: plain values, no I/O. The server's
//! `Config` (in the `huddle` crate) holds one of these.

use std::time::Duration;

use crate::ice::IceServers;

/// Members per room.
pub const DEFAULT_MAX_ROOM_SIZE: usize = 16;
/// Sustained messages per second per connection.
pub const DEFAULT_RATE: u32 = 50;
/// Messages a connection may send at once above the sustained rate.
pub const DEFAULT_BURST: u32 = 200;
/// How long a connection may keep exceeding the rate before it is closed (1008).
pub const DEFAULT_FLOOD_CLOSE_AFTER: Duration = Duration::from_secs(5);
/// How long a lost member keeps its place.
pub const DEFAULT_RECONNECT_GRACE: Duration = Duration::from_secs(15);
/// Messages queued for a lost member.
pub const DEFAULT_RESUME_QUEUE: usize = 256;
/// Bytes queued for a lost member.
pub const DEFAULT_RESUME_QUEUE_BYTES: usize = 1024 * 1024;
/// Bytes queued for all lost members together; past it the oldest grace
/// periods end early.
pub const DEFAULT_RESUME_BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// Joiners that may wait in one locked room's lobby at once.
pub const DEFAULT_MAX_LOBBY_SIZE: usize = 50;
/// A room that grows past this many members moves to the media server.
pub const DEFAULT_SFU_ABOVE: usize = 4;
/// Members per room on the media server.
pub const DEFAULT_MAX_SFU_ROOM_SIZE: usize = 100;

/// Limits and data the signaling core needs. Plain values, no I/O.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Members per room; one more gets `room-full`.
    pub max_room_size: usize,
    /// Sustained messages per second per connection.
    pub rate: u32,
    /// Bucket size of the rate limiter.
    pub burst: u32,
    /// A connection still exceeding the rate after this long is closed with 1008.
    pub flood_close_after: Duration,
    /// How long a lost member keeps its place in the room.
    pub reconnect_grace: Duration,
    /// Messages queued for a lost member; one more ends its grace period.
    pub resume_queue: usize,
    /// Bytes queued for a lost member; more ends its grace period.
    pub resume_queue_bytes: usize,
    /// Bytes queued for all lost members together; past it the oldest grace
    /// periods end early (their peers get `peer-left`).
    pub resume_budget_bytes: usize,
    /// What goes into `iceServers` of every `joined`.
    pub ice: IceServers,
    /// Joiners waiting in one locked room's lobby; one more gets `room-full`.
    pub max_lobby_size: usize,
    /// Operator tokens: with a key, every join needs a valid `access`.
    pub auth: Option<crate::access::AuthKey>,
    /// A room whose members all speak `sfu` moves to the media server when
    /// it grows past this many members (0: from its first member). `None`:
    /// no media server, every room is a mesh.
    pub sfu_above: Option<usize>,
    /// Members per room on the media server; one more gets `room-full`.
    pub max_sfu_room_size: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            max_room_size: DEFAULT_MAX_ROOM_SIZE,
            rate: DEFAULT_RATE,
            burst: DEFAULT_BURST,
            flood_close_after: DEFAULT_FLOOD_CLOSE_AFTER,
            reconnect_grace: DEFAULT_RECONNECT_GRACE,
            resume_queue: DEFAULT_RESUME_QUEUE,
            resume_queue_bytes: DEFAULT_RESUME_QUEUE_BYTES,
            resume_budget_bytes: DEFAULT_RESUME_BUDGET_BYTES,
            ice: IceServers::default(),
            max_lobby_size: DEFAULT_MAX_LOBBY_SIZE,
            auth: None,
            sfu_above: None,
            max_sfu_room_size: DEFAULT_MAX_SFU_ROOM_SIZE,
        }
    }
}
