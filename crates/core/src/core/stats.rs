//! Counters of what the core did, for `/metrics`.
//!
//! Plain integers: the core runs behind the hub's one lock, so counting an
//! event costs one add and no atomic. The shell copies a [`Stats`] out under
//! the lock when `/metrics` is scraped.

use crate::protocol::{ErrorCode, RelayKind};

/// Why a member left its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The client sent `leave`.
    Leave,
    /// A clean close (close frame), or a close for a protocol violation.
    Closed,
    /// Its connection was lost and the grace period ended without a resume.
    GraceExpired,
    /// Its connection was lost and too much was queued for it.
    QueueOverflow,
    /// It joined another room.
    RoomChange,
    /// Its connection was lost and its grace period was ended early to keep
    /// all lost members' queues within `--resume-budget-bytes`.
    ResumeBudget,
    /// The host removed it.
    Removed,
    /// Its media-server connection failed for good.
    MediaFailed,
}

impl Departure {
    /// Every reason, in the order of [`Stats::leaves`].
    pub const ALL: [Departure; 8] = [
        Departure::Leave,
        Departure::Closed,
        Departure::GraceExpired,
        Departure::QueueOverflow,
        Departure::RoomChange,
        Departure::ResumeBudget,
        Departure::Removed,
        Departure::MediaFailed,
    ];

    /// The reason as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Departure::Leave => "leave",
            Departure::Closed => "close",
            Departure::GraceExpired => "grace-expired",
            Departure::QueueOverflow => "queue-overflow",
            Departure::RoomChange => "room-change",
            Departure::ResumeBudget => "resume-budget",
            Departure::Removed => "removed",
            Departure::MediaFailed => "media-failed",
        }
    }
}

/// Events since the core started. Every field only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// New memberships (`joined` without `resumed`), room changes included.
    pub joins: u64,
    /// Members that took their place back with their token.
    pub resumes: u64,
    /// Departures, indexed like [`Departure::ALL`].
    pub leaves: [u64; Departure::ALL.len()],
    /// Members whose connection was lost while in a room (a grace period began).
    pub lost: u64,
    /// Relayed messages accepted (delivered or queued for a lost member),
    /// indexed like [`RelayKind::ALL`].
    pub relayed: [u64; RelayKind::ALL.len()],
    /// Of the relayed messages, those queued for a member within its grace period.
    pub queued: u64,
    /// `error` replies sent, indexed like [`ErrorCode::ALL`].
    pub errors: [u64; ErrorCode::ALL.len()],
    /// Messages dropped by the rate limiter (never handled).
    pub rate_limited: u64,
    /// Connections closed (1008) for exceeding the rate limit for too long.
    pub rate_limit_closes: u64,
    /// Joiners put in a locked room's lobby.
    pub knocks: u64,
    /// Waiting joiners let in (by `admit` or by unlocking).
    pub admitted: u64,
    /// Waiting joiners the host turned away.
    pub denied: u64,
    /// Rooms that moved to the media server.
    pub sfu_moves: u64,
    /// `data` messages relayed (media-server rooms).
    pub data: u64,
}

impl Stats {
    /// Departures for one reason.
    pub fn leaves(&self, why: Departure) -> u64 {
        self.leaves[why as usize]
    }

    /// Relayed messages of one kind.
    pub fn relayed(&self, kind: RelayKind) -> u64 {
        self.relayed[kind as usize]
    }

    /// `error` replies with one code.
    pub fn errors(&self, code: ErrorCode) -> u64 {
        self.errors[code as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_all_arrays() {
        for (i, d) in Departure::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
        for (i, k) in RelayKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }
}
