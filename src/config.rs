//! Every setting huddle has, with its default, in one place.
//!
//! [`Config`] is what the server runs with; `main.rs` fills it from the
//! command line and `HUDDLE_*` environment variables (clap), tests build it
//! with [`Config::default`] and change what they need. Each limit that the
//! protocol core enforces lives in [`CoreConfig`] so the core can be tested
//! without sockets.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use crate::tls::TlsSource;
use crate::turn::TurnConfig;

// The signaling core's settings live in the `huddle-core` crate (no I/O);
// they are re-exported here with the rest.
pub use huddle_core::config::{
    CoreConfig, DEFAULT_BURST, DEFAULT_FLOOD_CLOSE_AFTER, DEFAULT_MAX_LOBBY_SIZE,
    DEFAULT_MAX_ROOM_SIZE, DEFAULT_MAX_SFU_ROOM_SIZE, DEFAULT_RATE, DEFAULT_RECONNECT_GRACE,
    DEFAULT_RESUME_BUDGET_BYTES, DEFAULT_RESUME_QUEUE, DEFAULT_RESUME_QUEUE_BYTES,
    DEFAULT_SFU_ABOVE,
};

/// Default address to listen on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Largest text message accepted from a client, in bytes.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
/// Open WebSocket connections per server.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
/// Interval between WebSocket pings.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Password hashes (Argon2id, about 20 MiB and 13 ms of CPU each here)
/// computed at once; more wait their turn.
pub const DEFAULT_MAX_PASSWORD_HASHES: usize = 2;
/// The largest file the web client sends or accepts (peer to peer; told to
/// the page in `/config.json`).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;
/// How long the answer to a second wrong password on one connection is held
/// back; each further wrong password doubles it, up to
/// [`MAX_WRONG_PASSWORD_DELAY`].
pub const DEFAULT_WRONG_PASSWORD_DELAY: Duration = Duration::from_secs(1);
/// The longest a wrong password's answer is held back.
pub const MAX_WRONG_PASSWORD_DELAY: Duration = Duration::from_secs(60);
/// Messages waiting to be written to one socket before it counts as a slow consumer.
pub const DEFAULT_OUTBOUND_QUEUE: usize = 1024;
/// Bytes waiting to be written to one socket before it counts as a slow
/// consumer (besides [`DEFAULT_OUTBOUND_QUEUE`] messages): 1024 relayed
/// offers of 60 KiB would otherwise pin 60 MiB for one stalled reader.
pub const DEFAULT_OUTBOUND_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// How long one write to a socket may take before the connection counts as
/// a slow consumer and is cut (a peer that acknowledges nothing).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers; also how long
/// an idle keep-alive connection stays open (slowloris defence).
pub const DEFAULT_HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once; more connections wait their turn
/// (within the handshake timeout) instead of each costing CPU and memory.
pub const DEFAULT_MAX_TLS_HANDSHAKES: usize = 256;
/// Open connections (HTTP and WebSocket) from one IP address (IPv6: one
/// /64); more are answered with HTTP 429. 0 means no cap.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 100;
/// How long a WebSocket may stay open without a valid `join` (or resume)
/// before it is closed with 1008.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for connections to finish their close handshake.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections the kernel queues before huddle accepts them.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;
/// File descriptors kept free for the process itself (listeners, the
/// runtime, `/proc` reads) when `--max-connections` is fitted to the
/// open-file limit.
pub const RESERVED_FDS: u64 = 64;
/// WebSocket read buffer per connection, in bytes (small: most connections
/// are idle; a bigger message grows it as needed).
pub const DEFAULT_WS_READ_BUFFER: usize = 2 * 1024;

/// Everything the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Length of the kernel's queue of connections not yet accepted.
    pub listen_backlog: u32,
    /// Largest text message accepted, in bytes (bigger: close 1009).
    pub max_frame_bytes: usize,
    /// Open WebSocket connections; more are refused with 503.
    pub max_connections: usize,
    /// Interval between pings; two silent intervals mean the connection is lost.
    pub heartbeat_interval: Duration,
    /// Messages waiting for one socket before it is closed as a slow consumer.
    pub outbound_queue: usize,
    /// Bytes waiting for one socket before it is closed as a slow consumer.
    pub outbound_queue_bytes: usize,
    /// How long one write may take before the socket is cut as a slow consumer.
    pub write_timeout: Duration,
    /// How long a client may take to send request headers (and how long an
    /// idle keep-alive connection is kept).
    pub http_header_timeout: Duration,
    /// TLS handshakes in progress at once.
    pub max_tls_handshakes: usize,
    /// Open connections per client IP (IPv6: per /64); 0 for no cap.
    pub max_connections_per_ip: usize,
    /// How long a WebSocket may stay open before its first valid `join`.
    pub join_timeout: Duration,
    /// The address users open (`--public-url`), e.g. behind a reverse
    /// proxy: its origin may open `/ws`.
    pub public_url: Option<crate::origin::Origin>,
    /// Origins allowed to open `/ws` besides the server's own.
    pub allowed_origins: Vec<String>,
    /// How long shutdown waits for sockets to close.
    pub shutdown_timeout: Duration,
    /// HTTPS/WSS, if wanted.
    pub tls: Option<TlsSource>,
    /// The embedded TURN server, if wanted.
    pub turn: Option<TurnConfig>,
    /// TURN servers run elsewhere (coturn's `use-auth-secret`) whose
    /// credentials are minted from `turn_secret`.
    pub turn_urls: Vec<String>,
    /// The TURN REST shared secret (a random one is made for the embedded
    /// server when this is empty).
    pub turn_secret: Option<Arc<[u8]>>,
    /// Lifetime of minted TURN credentials.
    pub turn_ttl: Duration,
    /// Bytes of the read buffer each WebSocket connection keeps.
    pub ws_read_buffer: usize,
    /// Where `GET /metrics` is served: `None` on the main listener, or a
    /// separate address (then not on the main one).
    pub metrics_listen: Option<SocketAddr>,
    /// Password hashes computed at once.
    pub max_password_hashes: usize,
    /// Delay before answering a repeated wrong password (doubling).
    pub wrong_password_delay: Duration,
    /// The web client's settings, served as `/config.json`.
    pub web: WebConfig,
    /// The media server (SFU), if rooms may move to it (`core.sfu_above`
    /// says when). [`Config::default`] has none, as tests want; the command
    /// line's default runs it.
    pub media: Option<crate::media::MediaConfig>,
    /// The core's limits.
    pub core: CoreConfig,
}

/// What the bundled web client is told at `GET /config.json`. These are the
/// page's own limits, for things that never pass through the server (files
/// go peer to peer): the server cannot enforce them, a modified client can
/// ignore them, and every page still checks what it receives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebConfig {
    /// The largest file a page sends or accepts, in bytes.
    pub max_file_size: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// A combination of settings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A resume delivers up to `resume_queue` messages at once into the
    /// outbound queue, which must have room for them.
    #[error(
        "--outbound-queue ({outbound}) must be larger than --resume-queue ({resume}): a resume delivers the whole resume queue at once"
    )]
    QueuesTooSmall {
        /// `--outbound-queue`
        outbound: usize,
        /// `--resume-queue`
        resume: usize,
    },
    /// A resume delivers up to `resume_queue_bytes` bytes at once (plus its
    /// `joined`) into the outbound queue, which must have room for them.
    #[error(
        "--outbound-queue-bytes ({outbound}) must be at least --resume-queue-bytes plus --max-frame-bytes ({needed}): a resume delivers the whole resume queue at once"
    )]
    QueueBytesTooSmall {
        /// `--outbound-queue-bytes`
        outbound: usize,
        /// `--resume-queue-bytes` + `--max-frame-bytes`
        needed: usize,
    },
    /// `--turn-url` without a secret to mint credentials with.
    #[error("--turn-url needs --turn-secret (the shared secret of the TURN server)")]
    TurnUrlWithoutSecret,
    /// Minted credentials must live a while.
    #[error("--turn-ttl must be at least one minute")]
    TurnTtlTooShort,
    /// Rooms may move to a media server that does not run.
    #[error("rooms may move to the media server (sfu_above) but no media server is configured")]
    SfuWithoutMedia,
}

impl Config {
    /// Checks that the settings work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.outbound_queue <= self.core.resume_queue {
            return Err(ConfigError::QueuesTooSmall {
                outbound: self.outbound_queue,
                resume: self.core.resume_queue,
            });
        }
        let needed = self
            .core
            .resume_queue_bytes
            .saturating_add(self.max_frame_bytes);
        if self.outbound_queue_bytes < needed {
            return Err(ConfigError::QueueBytesTooSmall {
                outbound: self.outbound_queue_bytes,
                needed,
            });
        }
        if !self.turn_urls.is_empty() && self.turn_secret.is_none() {
            return Err(ConfigError::TurnUrlWithoutSecret);
        }
        if self.turn_ttl < Duration::from_secs(60) {
            return Err(ConfigError::TurnTtlTooShort);
        }
        if self.core.sfu_above.is_some() && self.media.is_none() {
            return Err(ConfigError::SfuWithoutMedia);
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            outbound_queue: DEFAULT_OUTBOUND_QUEUE,
            outbound_queue_bytes: DEFAULT_OUTBOUND_QUEUE_BYTES,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            http_header_timeout: DEFAULT_HTTP_HEADER_TIMEOUT,
            max_tls_handshakes: DEFAULT_MAX_TLS_HANDSHAKES,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            join_timeout: DEFAULT_JOIN_TIMEOUT,
            public_url: None,
            allowed_origins: Vec::new(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            tls: None,
            turn: None,
            turn_urls: Vec::new(),
            turn_secret: None,
            turn_ttl: crate::ice::DEFAULT_TURN_TTL,
            ws_read_buffer: DEFAULT_WS_READ_BUFFER,
            metrics_listen: None,
            max_password_hashes: DEFAULT_MAX_PASSWORD_HASHES,
            wrong_password_delay: DEFAULT_WRONG_PASSWORD_DELAY,
            web: WebConfig::default(),
            media: None,
            core: CoreConfig::default(),
        }
    }
}
