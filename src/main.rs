//! The `huddle` command: with no subcommand it serves (parse settings,
//! start logging, serve until SIGINT or SIGTERM); subcommands are tools
//! that talk to a running server.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use clap::builder::TypedValueParser as _;
use huddle::access::AuthKey;
use huddle::config::{self, Config, CoreConfig};
use huddle::ice::{self, IceServers};
use huddle::origin::Origin;
use huddle::server::Server;
use huddle::tls::TlsSource;
use huddle::turn::{self, TurnConfig};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: with thousands of connections each
/// growing and freeing buffers of varied sizes on several threads, glibc's
/// per-thread arenas kept the freed memory (the soak's RSS crept up by
/// 2.5 MiB every 30 s at 19,000 connections), where mimalloc reuses and
/// returns it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Self-hosted group video chat: serves the web app and the WebSocket
/// signaling server on one port.
///
/// Open the printed URL (http://<listen>/, or https:// with --tls-*) in a
/// browser, pick a name and a room, and share the link. Every setting can
/// also be given as an environment variable (shown in brackets). Durations
/// accept values like 500ms, 10s, 2m.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    long_about,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeArgs,
}

/// Tools that talk to a running huddle server (without one: serve).
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve the web app and the signaling server (the default).
    Serve(Box<ServeArgs>),
    /// Load-test a running huddle server: fill rooms with simulated members
    /// that set up calls (offers, answers, trickled candidates), hold, and
    /// leave; report latencies and exit non-zero if any message was lost,
    /// duplicated, reordered or refused.
    Load(huddle::load::LoadArgs),
    /// Join a room as a headless WebRTC participant (media, chat, stats),
    /// or run many for a media load test.
    Bot(huddle::bot::BotArgs),
    /// Check a running server the way a browser meets it, step by step:
    /// DNS, TCP, TLS, /healthz, signaling (join and leave a throwaway room),
    /// then every STUN/TURN URL it hands out (reachability, NAT, TURN
    /// allocation with its credentials, a round trip through the relay).
    /// Exits 0 when a call can be set up, 1 otherwise.
    Doctor(huddle::doctor::DoctorArgs),
    /// Print an operator token (for servers run with --auth-secret): a link
    /// /r/ROOM?access=TOKEN lets its holder into ROOM.
    Token(TokenArgs),
}

/// `huddle token`'s settings.
#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The room it lets into, or `*` for every room.
    #[arg(long)]
    room: String,
    /// The name its holder must use (compared as names are).
    #[arg(long)]
    name: Option<String>,
    /// Its holder becomes the room's host on joining (and skips the lobby).
    #[arg(long)]
    host: bool,
    /// How long it stays valid.
    #[arg(long, default_value = "1h", value_parser = positive_duration)]
    ttl: Duration,
    /// The server's secret (the same as its --auth-secret).
    #[arg(long, env = "HUDDLE_AUTH_SECRET", value_parser = auth_key, hide_env_values = true)]
    auth_secret: AuthKey,
    /// Print a whole link on this server address instead of the bare
    /// token, e.g. https://meet.example.org
    #[arg(long)]
    url: Option<String>,
}

/// `huddle token`: checks the claims as the server will, then prints.
fn token(args: &TokenArgs) -> anyhow::Result<()> {
    if args.room != huddle::access::ANY_ROOM {
        huddle::protocol::validate_room(&args.room)
            .map_err(|e| anyhow::anyhow!("--room: {}", e.message))?;
    }
    if let Some(name) = &args.name {
        huddle::protocol::Name::parse(name)
            .map_err(|e| anyhow::anyhow!("--name: {}", e.message))?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs();
    let claims = huddle::access::Claims {
        room: args.room.clone(),
        exp: now + args.ttl.as_secs(),
        name: args.name.clone(),
        host: args.host,
        nbf: None,
    };
    let jwt = args.auth_secret.mint(&claims);
    match &args.url {
        None => println!("{jwt}"),
        Some(_) if args.room == huddle::access::ANY_ROOM => {
            anyhow::bail!("--url needs a --room other than *: a link opens one room")
        }
        Some(base) => println!(
            "{}/r/{}?access={jwt}",
            base.trim_end_matches('/'),
            url_path_segment(&args.room)
        ),
    }
    Ok(())
}

/// Percent-encodes a room name for a URL path (letters beyond ASCII too).
fn url_path_segment(room: &str) -> String {
    let mut out = String::with_capacity(room.len());
    for b in room.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The server's settings.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "HUDDLE_LISTEN", default_value = config::DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Connections the kernel queues before huddle accepts them (raise it
    /// together with net.core.somaxconn for large bursts of joins).
    #[arg(long, env = "HUDDLE_LISTEN_BACKLOG", default_value_t = config::DEFAULT_LISTEN_BACKLOG)]
    listen_backlog: u32,

    /// Largest text message a client may send, in bytes; a bigger one closes
    /// the connection with code 1009.
    #[arg(long, env = "HUDDLE_MAX_FRAME_BYTES", default_value_t = config::DEFAULT_MAX_FRAME_BYTES,
          value_parser = clap::value_parser!(u32).range(256..).map(|v| v as usize))]
    max_frame_bytes: usize,

    /// Members per room; one more gets `room-full`.
    #[arg(long, env = "HUDDLE_MAX_ROOM_SIZE", default_value_t = config::DEFAULT_MAX_ROOM_SIZE,
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    max_room_size: usize,

    /// A room that grows past N members moves to the media server (SFU),
    /// once every member's client can call through it: from then on each
    /// member sends its camera once, to the server, instead of once per
    /// member. 0 sends every room through the media server.
    #[arg(long, env = "HUDDLE_SFU_ABOVE", value_name = "N", default_value_t = config::DEFAULT_SFU_ABOVE)]
    sfu_above: usize,

    /// Keep every room a mesh: no media server, and no UDP media port.
    #[arg(long, env = "HUDDLE_NO_SFU")]
    no_sfu: bool,

    /// Members per room on the media server; one more gets `room-full`.
    #[arg(long, env = "HUDDLE_MAX_SFU_ROOM_SIZE", default_value_t = config::DEFAULT_MAX_SFU_ROOM_SIZE,
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    max_sfu_room_size: usize,

    /// The media server's UDP address, for every room on it (open it in the
    /// firewall). Default: the --listen address and port, over UDP (any
    /// free UDP port when --listen's port is 0).
    #[arg(
        long,
        env = "HUDDLE_MEDIA_LISTEN",
        value_name = "ADDR",
        conflicts_with = "no_sfu"
    )]
    media_listen: Option<SocketAddr>,

    /// The address the media server advertises to browsers (its public IP
    /// behind NAT). Default: the --media-listen address, or the machine's
    /// first non-loopback address when that is 0.0.0.0.
    #[arg(
        long,
        env = "HUDDLE_MEDIA_PUBLIC_IP",
        value_name = "IP",
        conflicts_with = "no_sfu"
    )]
    media_public_ip: Option<std::net::IpAddr>,

    /// Tracks the media server forwards at once (each publisher's track
    /// times each of its subscribers); a joiner past it gets `room-full`.
    #[arg(long, env = "HUDDLE_SFU_MAX_TRACKS", default_value_t = huddle_sfu::SfuConfig::default().max_tracks,
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    sfu_max_tracks: usize,

    /// Commands (offers, answers, joins, layers) waiting for the media
    /// server; past it they are dropped and counted
    /// (huddle_sfu_commands_dropped_total), and the members they were for
    /// see their media connection fail.
    #[arg(long, env = "HUDDLE_SFU_QUEUE", default_value_t = huddle::media::DEFAULT_COMMAND_QUEUE,
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    sfu_queue: usize,

    /// Open WebSocket connections; more are refused with HTTP 503. Lowered
    /// to 64 below the open-file limit if that is smaller.
    #[arg(long, env = "HUDDLE_MAX_CONNECTIONS", default_value_t = config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,

    /// Sustained messages per second per connection; excess messages are
    /// dropped with a `rate-limited` error.
    #[arg(long, env = "HUDDLE_RATE", default_value_t = config::DEFAULT_RATE,
          value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,

    /// Messages a connection may send at once above the sustained rate.
    #[arg(long, env = "HUDDLE_BURST", default_value_t = config::DEFAULT_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    burst: u32,

    /// A connection that keeps exceeding the rate for this long is closed
    /// with code 1008.
    #[arg(long, env = "HUDDLE_FLOOD_CLOSE_AFTER", default_value = "5s", value_parser = duration)]
    flood_close_after: Duration,

    /// Interval between WebSocket pings; a connection silent for two
    /// intervals is treated as lost.
    #[arg(long, env = "HUDDLE_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = positive_duration)]
    heartbeat_interval: Duration,

    /// How long a member whose connection was lost keeps its place and can
    /// resume with its token (0s: leave at once).
    #[arg(long, env = "HUDDLE_RECONNECT_GRACE", default_value = "15s", value_parser = duration)]
    reconnect_grace: Duration,

    /// Messages queued for a lost member; one more ends its grace period.
    #[arg(long, env = "HUDDLE_RESUME_QUEUE", default_value_t = config::DEFAULT_RESUME_QUEUE)]
    resume_queue: usize,

    /// Bytes queued for a lost member; more end its grace period.
    #[arg(long, env = "HUDDLE_RESUME_QUEUE_BYTES", default_value_t = config::DEFAULT_RESUME_QUEUE_BYTES)]
    resume_queue_bytes: usize,

    /// Bytes queued for all lost members together; past it the oldest grace
    /// periods end early (their peers get `peer-left`), so many lost members
    /// cannot add up to unbounded memory.
    #[arg(long, env = "HUDDLE_RESUME_BUDGET_BYTES", default_value_t = config::DEFAULT_RESUME_BUDGET_BYTES)]
    resume_budget_bytes: usize,

    /// Operator tokens: with this secret (at least 32 bytes) every join must
    /// carry an `access` token for its room, signed with it (HS256 JWT; see
    /// `huddle token`). Without it anyone may join any room.
    #[arg(long, env = "HUDDLE_AUTH_SECRET", value_parser = auth_key, hide_env_values = true)]
    auth_secret: Option<AuthKey>,

    /// Joiners that may wait in one locked room's lobby; one more gets
    /// `room-full`.
    #[arg(long, env = "HUDDLE_MAX_LOBBY_SIZE", default_value_t = config::DEFAULT_MAX_LOBBY_SIZE)]
    max_lobby_size: usize,

    /// Room-password hashes (Argon2id, about 20 MiB and 13 ms of CPU
    /// each) computed at once; more wait their turn.
    #[arg(long, env = "HUDDLE_MAX_PASSWORD_HASHES", default_value_t = config::DEFAULT_MAX_PASSWORD_HASHES,
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    max_password_hashes: usize,

    /// The largest file the web client sends or accepts, e.g. 1GiB, 200MB
    /// or a number of bytes. Files go peer to peer, never through the
    /// server: this is the page's setting (served in /config.json).
    #[arg(long, env = "HUDDLE_MAX_FILE_SIZE", default_value = "1GiB", value_parser = byte_size)]
    max_file_size: u64,

    /// The answer to a second wrong room password on one connection waits
    /// this long; each further one doubles it, up to a minute (0s: no delay).
    #[arg(long, env = "HUDDLE_WRONG_PASSWORD_DELAY", default_value = "1s", value_parser = duration)]
    wrong_password_delay: Duration,

    /// Messages waiting to be written to one connection; a connection that
    /// falls this far behind is cut (code 1013) and may resume.
    #[arg(long, env = "HUDDLE_OUTBOUND_QUEUE", default_value_t = config::DEFAULT_OUTBOUND_QUEUE,
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    outbound_queue: usize,

    /// Bytes waiting to be written to one connection; a connection that
    /// falls this far behind is cut (code 1013) and may resume. At least
    /// --resume-queue-bytes plus --max-frame-bytes.
    #[arg(long, env = "HUDDLE_OUTBOUND_QUEUE_BYTES", default_value_t = config::DEFAULT_OUTBOUND_QUEUE_BYTES)]
    outbound_queue_bytes: usize,

    /// How long one write to a connection may take; a client that accepts
    /// nothing for this long is cut as a slow consumer and may resume.
    #[arg(long, env = "HUDDLE_WRITE_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    write_timeout: Duration,

    /// How long a client may take to send an HTTP request's headers; idle
    /// keep-alive connections are closed after it too (slowloris defence).
    #[arg(long, env = "HUDDLE_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    http_header_timeout: Duration,

    /// TLS handshakes in progress at once; more connections wait their
    /// turn within the 10 s handshake timeout.
    #[arg(long, env = "HUDDLE_MAX_TLS_HANDSHAKES", default_value_t = config::DEFAULT_MAX_TLS_HANDSHAKES,
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    max_tls_handshakes: usize,

    /// Open connections (HTTP and WebSocket) from one IP address (IPv6: one
    /// /64); more get HTTP 429. 0 for no cap; use 0 behind a reverse proxy,
    /// where every user shares the proxy's address (loopback is not exempt).
    #[arg(long, env = "HUDDLE_MAX_CONNECTIONS_PER_IP", default_value_t = config::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: usize,

    /// How long a signaling connection may stay open without a valid join
    /// (or resume); then it is closed with code 1008.
    #[arg(long, env = "HUDDLE_JOIN_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    join_timeout: Duration,

    /// The address users open, like https://chat.example.com (behind a
    /// reverse proxy, the proxy's). Pages of this origin may open the
    /// signaling socket; without it only the machine's own names, the
    /// certificate's names and --allowed-origin may (DNS rebinding defence).
    #[arg(long, env = "HUDDLE_PUBLIC_URL", value_name = "URL", value_parser = public_url)]
    public_url: Option<Origin>,

    /// An origin (like https://app.example.com) allowed to open the
    /// signaling socket besides the server's own. Repeat for more; in the
    /// environment, separate them with commas.
    #[arg(
        long = "allowed-origin",
        env = "HUDDLE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,

    /// A STUN or TURN server for browsers, as a URL: stun:HOST[:PORT] or
    /// turn:USER:PASSWORD@HOST[:PORT][?transport=tcp]. Repeat for more; in the
    /// environment, separate them with commas.
    #[arg(long = "ice-server", env = "HUDDLE_ICE_SERVER", value_name = "URL",
          value_delimiter = ',', value_parser = ice::parse_ice_url)]
    ice_server: Vec<ice::IceServer>,

    /// More ICE servers as a JSON array of RTCIceServer objects, e.g.
    /// '[{"urls":"stun:stun.example.org:3478"}]'. The default (none) works
    /// on one network; add STUN/TURN to cross NATs.
    #[arg(long, env = "HUDDLE_ICE_SERVERS", value_name = "JSON", default_value = "[]",
          value_parser = IceServers::from_json)]
    ice_servers: IceServers,

    /// A TURN server (e.g. coturn with use-auth-secret) whose credentials
    /// huddle mints per member from --turn-secret: turn:HOST[:PORT][?transport=udp|tcp].
    /// Repeatable; in the environment, separate them with commas.
    #[arg(long = "turn-url", env = "HUDDLE_TURN_URL", value_name = "URL",
          value_delimiter = ',', value_parser = ice::parse_turn_url)]
    turn_url: Vec<String>,

    /// The TURN REST shared secret (coturn's static-auth-secret). Also used
    /// by the embedded TURN server; without it that one makes a random
    /// secret at every start.
    #[arg(
        long,
        env = "HUDDLE_TURN_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    turn_secret: Option<String>,

    /// How long minted TURN credentials stay valid.
    #[arg(long, env = "HUDDLE_TURN_TTL", default_value = "1h", value_parser = duration)]
    turn_ttl: Duration,

    /// Run the embedded TURN/STUN server on this address (UDP and TCP on
    /// the same port; an IP alone means port 3478), and hand it to every
    /// member. Off by default.
    #[arg(long, env = "HUDDLE_TURN_LISTEN", value_name = "ADDR", value_parser = turn::parse_listen)]
    turn_listen: Option<SocketAddr>,

    /// The address the embedded TURN server advertises (its public IP
    /// behind NAT). Default: the --turn-listen address, or the machine's
    /// first non-loopback address when that is 0.0.0.0.
    #[arg(
        long,
        env = "HUDDLE_TURN_PUBLIC_IP",
        value_name = "IP",
        requires = "turn_listen"
    )]
    turn_public_ip: Option<std::net::IpAddr>,

    /// UDP ports for relayed media, LOW-HIGH (open them in the firewall).
    /// Default: any free port.
    #[arg(long, env = "HUDDLE_TURN_RELAY_PORTS", value_name = "LOW-HIGH",
          value_parser = turn::parse_port_range, requires = "turn_listen")]
    turn_relay_ports: Option<(u16, u16)>,

    /// Live TURN allocations per username (one per peer connection and
    /// transport; each member gets its own username).
    #[arg(long, env = "HUDDLE_TURN_USER_QUOTA", default_value_t = turn::DEFAULT_USER_QUOTA, requires = "turn_listen",
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    turn_user_quota: usize,

    /// Bandwidth cap per TURN allocation and direction (like 8Mbit or
    /// 500kbit; 0 for none). Excess packets are dropped.
    #[arg(long, env = "HUDDLE_TURN_BANDWIDTH", default_value = "8Mbit", value_parser = turn::parse_bitrate,
          requires = "turn_listen")]
    turn_bandwidth: u64,

    /// Open TCP connections to the embedded TURN server.
    #[arg(long, env = "HUDDLE_TURN_MAX_TCP", default_value_t = turn::DEFAULT_MAX_TCP, requires = "turn_listen",
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    turn_max_tcp: usize,

    /// Live TURN allocations in all; more are refused with 486 (each holds
    /// a UDP socket).
    #[arg(long, env = "HUDDLE_TURN_MAX_ALLOCATIONS", default_value_t = turn::DEFAULT_MAX_ALLOCATIONS,
          requires = "turn_listen", value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    turn_max_allocations: usize,

    /// Live TURN allocations per client IP address (members behind one NAT
    /// share it); more are refused with 486.
    #[arg(long, env = "HUDDLE_TURN_MAX_ALLOCATIONS_PER_IP", default_value_t = turn::DEFAULT_MAX_ALLOCATIONS_PER_IP,
          requires = "turn_listen", value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    turn_max_allocations_per_ip: usize,

    /// Let the TURN relay reach this peer range (CIDR, like 10.0.0.0/8 for a
    /// LAN deployment), although loopback, private, link-local, multicast
    /// and other non-public ranges are refused by default. Repeat or
    /// separate with commas. The server's own sockets stay refused.
    #[arg(long = "turn-allowed-peer-ip", env = "HUDDLE_TURN_ALLOWED_PEER_IP", value_name = "CIDR",
          value_delimiter = ',', value_parser = turn::parse_cidr, requires = "turn_listen")]
    turn_allowed_peer_ip: Vec<ipnet::IpNet>,

    /// Refuse relaying to this peer range too (CIDR; like coturn's
    /// denied-peer-ip). Repeat or separate with commas. The most specific
    /// of the allowed and denied ranges decides.
    #[arg(long = "turn-denied-peer-ip", env = "HUDDLE_TURN_DENIED_PEER_IP", value_name = "CIDR",
          value_delimiter = ',', value_parser = turn::parse_cidr, requires = "turn_listen")]
    turn_denied_peer_ip: Vec<ipnet::IpNet>,

    /// Do not serve TURN on the --listen port. By default the embedded TURN
    /// server also answers there: the listener tells TURN from HTTP by the
    /// first bytes, so members behind firewalls that open only TCP 443 get
    /// a relay over TLS (turns:) on the HTTPS port, or over TCP on a plain
    /// HTTP port. Turn it off behind a reverse proxy that speaks only HTTP.
    #[arg(long, env = "HUDDLE_NO_TURN_ON_LISTENER", requires = "turn_listen")]
    no_turn_on_listener: bool,

    /// Serve HTTPS/WSS with this certificate chain (PEM). Needs --tls-key.
    #[arg(
        long,
        env = "HUDDLE_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "HUDDLE_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Serve HTTPS/WSS with a self-signed certificate for localhost, the
    /// host name and every local address, made on first start and kept in
    /// --data-dir (browsers ask once to accept it).
    #[arg(long, env = "HUDDLE_TLS_SELF_SIGNED")]
    tls_self_signed: bool,

    /// Where huddle keeps files it makes (the self-signed certificate).
    /// Default: $XDG_DATA_HOME/huddle, ~/.local/share/huddle, or ./huddle-data.
    #[arg(long, env = "HUDDLE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// How long shutdown waits for connections to close.
    #[arg(long, env = "HUDDLE_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = duration)]
    shutdown_timeout: Duration,

    /// Bytes of read buffer each WebSocket connection keeps (the largest
    /// part of an idle connection's memory; bigger messages grow it as needed).
    #[arg(long, env = "HUDDLE_WS_READ_BUFFER", default_value_t = config::DEFAULT_WS_READ_BUFFER,
          value_parser = clap::value_parser!(u32).range(256..).map(|v| v as usize))]
    ws_read_buffer: usize,

    /// Serve the Prometheus metrics (GET /metrics) on this address instead
    /// of on the main listener, e.g. 127.0.0.1:9090.
    #[arg(long = "metrics", env = "HUDDLE_METRICS", value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (try 500ms, 10s or 2m)"))
}

fn auth_key(s: &str) -> Result<AuthKey, String> {
    AuthKey::new(s.as_bytes()).map_err(|e| e.to_string())
}

fn public_url(s: &str) -> Result<Origin, String> {
    Origin::parse(s).map_err(|e| e.to_string())
}

/// A size such as `1GiB`, `200MB` (decimal) or `4096` (bytes), above zero.
fn byte_size(s: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = s.trim().parse().map_err(|e: String| {
        format!("{e} (write a size such as 1GiB, 200MB or a number of bytes)")
    })?;
    if size.as_u64() == 0 {
        return Err("must be more than zero".into());
    }
    Ok(size.as_u64())
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// The default data directory.
fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("huddle");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/share/huddle");
    }
    PathBuf::from("huddle-data")
}

impl ServeArgs {
    fn into_config(self) -> Config {
        let mut ice = self.ice_servers;
        for server in self.ice_server {
            ice.push(server);
        }
        let tls = match (self.tls_cert, self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(TlsSource::Files { cert, key }),
            (_, _, true) => Some(TlsSource::SelfSigned {
                data_dir: self.data_dir.unwrap_or_else(default_data_dir),
            }),
            _ => None,
        };
        let turn = self.turn_listen.map(|listen| TurnConfig {
            listen,
            public_ip: self.turn_public_ip,
            relay_ports: self.turn_relay_ports,
            user_quota: self.turn_user_quota,
            bandwidth: self.turn_bandwidth,
            max_tcp: self.turn_max_tcp,
            max_allocations: self.turn_max_allocations,
            max_allocations_per_ip: self.turn_max_allocations_per_ip,
            allowed_peers: self.turn_allowed_peer_ip,
            denied_peers: self.turn_denied_peer_ip,
            // The HTTP listener is added when it is bound (server.rs).
            own_addrs: Vec::new(),
            on_listener: !self.no_turn_on_listener,
            listener_addr: None,
        });
        Config {
            tls,
            turn,
            turn_urls: self.turn_url,
            turn_secret: self
                .turn_secret
                .filter(|s| !s.is_empty())
                .map(|s| Arc::from(s.as_bytes())),
            turn_ttl: self.turn_ttl,
            listen: self.listen,
            listen_backlog: self.listen_backlog,
            max_frame_bytes: self.max_frame_bytes,
            max_connections: self.max_connections,
            heartbeat_interval: self.heartbeat_interval,
            outbound_queue: self.outbound_queue,
            outbound_queue_bytes: self.outbound_queue_bytes,
            write_timeout: self.write_timeout,
            http_header_timeout: self.http_header_timeout,
            max_tls_handshakes: self.max_tls_handshakes,
            max_connections_per_ip: self.max_connections_per_ip,
            join_timeout: self.join_timeout,
            public_url: self.public_url,
            allowed_origins: self.allowed_origins,
            shutdown_timeout: self.shutdown_timeout,
            ws_read_buffer: self.ws_read_buffer,
            metrics_listen: self.metrics,
            max_password_hashes: self.max_password_hashes,
            web: config::WebConfig {
                max_file_size: self.max_file_size,
            },
            wrong_password_delay: self.wrong_password_delay,
            core: CoreConfig {
                max_room_size: self.max_room_size,
                rate: self.rate,
                burst: self.burst,
                flood_close_after: self.flood_close_after,
                reconnect_grace: self.reconnect_grace,
                resume_queue: self.resume_queue,
                resume_queue_bytes: self.resume_queue_bytes,
                resume_budget_bytes: self.resume_budget_bytes,
                ice,
                max_lobby_size: self.max_lobby_size,
                auth: self.auth_secret,
                sfu_above: (!self.no_sfu).then_some(self.sfu_above),
                max_sfu_room_size: self.max_sfu_room_size,
            },
            media: (!self.no_sfu).then(|| huddle::media::MediaConfig {
                listen: self.media_listen,
                public_ip: self.media_public_ip,
                sfu: huddle_sfu::SfuConfig {
                    max_tracks: self.sfu_max_tracks,
                    max_room_members: self.max_sfu_room_size,
                    ..huddle_sfu::SfuConfig::default()
                },
                command_queue: self.sfu_queue,
            }),
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("huddle: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        None => runtime.block_on(serve(cli.serve)),
        Some(Command::Serve(args)) => runtime.block_on(serve(*args)),
        Some(Command::Load(args)) => return load(&runtime, &args),
        Some(Command::Bot(args)) => runtime.block_on(bot(args)),
        Some(Command::Token(args)) => token(&args),
        Some(Command::Doctor(args)) => return doctor(&runtime, &args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huddle: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `huddle load`: exit status 0 when nothing was lost, 1 when something was,
/// 2 when the run could not start.
fn load(
    runtime: &tokio::runtime::Runtime,
    args: &huddle::load::LoadArgs,
) -> std::process::ExitCode {
    let progress = huddle::load::want_progress(args);
    match runtime.block_on(huddle::load::run(args, progress)) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => eprintln!("huddle load: cannot write the report: {e}"),
                }
            } else {
                print!("{}", report.text());
            }
            if report.ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("huddle load: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `huddle doctor`: exit status 0 when a call can be set up, 1 when not,
/// 2 for settings it cannot use (an unreadable --ca-cert).
fn doctor(
    runtime: &tokio::runtime::Runtime,
    args: &huddle::doctor::DoctorArgs,
) -> std::process::ExitCode {
    use std::io::Write as _;
    let mut print = |check: &huddle::doctor::Check| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{check}");
        let _ = out.flush();
    };
    match runtime.block_on(huddle::doctor::run(args, &mut print)) {
        Ok(report) if report.call_possible => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("huddle doctor: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the quiet default.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,huddle=info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    // Many idle sockets are normal for a signaling server.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-file limit");
    }
    let cfg = args.into_config();
    let server = Server::bind(cfg).await.context("cannot start")?;
    let addr = server.local_addr()?;
    let scheme = server.scheme();
    println!("listening on {scheme}://{addr}");
    announce(&server, addr);
    if let Some(metrics) = server.metrics_addr() {
        println!("metrics on http://{metrics}/metrics");
    }
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            stop.cancel();
        }
    });
    server.run(stop).await?;
    Ok(())
}

/// Tells the operator where to point browsers, and what will not work.
fn announce(server: &Server, addr: SocketAddr) {
    let scheme = server.scheme();
    let port = addr.port();
    let url = |host: &str| format!("{scheme}://{host}:{port}/");
    let mut urls = Vec::new();
    if let Some(public) = server.public_url() {
        urls.push(format!("{public}/"));
    }
    if addr.ip().is_unspecified() {
        urls.push(url("localhost"));
        if let Some(host) = huddle::tls::host_name() {
            urls.push(url(&host));
        }
        for ip in huddle::tls::local_addresses() {
            urls.push(match ip {
                std::net::IpAddr::V6(v6) => url(&format!("[{v6}]")),
                std::net::IpAddr::V4(v4) => url(&v4.to_string()),
            });
        }
    } else if addr.ip().is_loopback() {
        urls.push(url("localhost"));
    } else {
        urls.push(url(&addr.ip().to_string()));
    }
    for u in &urls {
        println!("open {u}");
    }
    if let Some(cert) = server.self_signed_cert() {
        println!(
            "self-signed certificate: {} (browsers warn once; import it to skip that)",
            cert.display()
        );
    }
    if let Some(turn) = server.turn_addr() {
        if server.turn_on_listener() {
            let over = if scheme == "https" {
                "TLS and TCP"
            } else {
                "TCP"
            };
            println!("TURN server on {turn} (UDP and TCP), and over {over} on {addr}");
        } else {
            println!("TURN server on {turn} (UDP and TCP)");
        }
    }
    if scheme == "http" && !addr.ip().is_loopback() {
        tracing::warn!(
            "serving plain HTTP on {addr}: browsers allow the camera and microphone only on https:// \
             or http://localhost, so others will not be able to join. Use --tls-self-signed or \
             --tls-cert/--tls-key (or a reverse proxy with TLS)"
        );
    }
}

async fn bot(args: huddle::bot::BotArgs) -> anyhow::Result<()> {
    init_logging();
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.cancel();
        }
    });
    huddle::bot::run(args, stop).await?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let cli = Cli::try_parse_from(std::iter::once("huddle").chain(args.iter().copied()))
            .expect("valid flags");
        cli.serve.into_config()
    }

    #[test]
    fn the_media_server_runs_by_default_and_no_sfu_turns_it_off() {
        let cfg = config(&[]);
        assert_eq!(cfg.core.sfu_above, Some(config::DEFAULT_SFU_ABOVE));
        assert_eq!(
            cfg.core.max_sfu_room_size,
            config::DEFAULT_MAX_SFU_ROOM_SIZE
        );
        let media = cfg.media.expect("a media server");
        assert_eq!(media.listen, None);
        assert_eq!(
            media.sfu.max_room_members,
            config::DEFAULT_MAX_SFU_ROOM_SIZE
        );
        let cfg = config(&[
            "--sfu-above",
            "0",
            "--max-sfu-room-size",
            "30",
            "--media-listen",
            "127.0.0.1:9000",
            "--media-public-ip",
            "203.0.113.7",
            "--sfu-max-tracks",
            "50",
        ]);
        assert_eq!(cfg.core.sfu_above, Some(0));
        assert_eq!(cfg.core.max_sfu_room_size, 30);
        let media = cfg.media.expect("a media server");
        assert_eq!(media.listen, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(media.public_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!((media.sfu.max_tracks, media.sfu.max_room_members), (50, 30));
        let cfg = config(&["--no-sfu"]);
        assert_eq!((cfg.core.sfu_above, cfg.media.is_none()), (None, true));
        cfg.validate().expect("a mesh-only config is valid");
        let mut cfg = config(&[]);
        cfg.media = None;
        assert_eq!(cfg.validate(), Err(config::ConfigError::SfuWithoutMedia));
        for bad in [
            &["--no-sfu", "--media-listen", "127.0.0.1:9000"][..],
            &["--sfu-max-tracks", "0"],
            &["--max-sfu-room-size", "0"],
        ] {
            assert!(
                Cli::try_parse_from(std::iter::once("huddle").chain(bad.iter().copied())).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ice_server_flags_reach_joined() {
        let cfg = config(&[
            "--ice-servers",
            r#"[{"urls":"stun:a.example.org"}]"#,
            "--ice-server",
            "stun:b.example.org:3478",
            "--ice-server",
            "turn:u:p@c.example.org?transport=tcp",
        ]);
        assert_eq!(
            cfg.core.ice.render("alice", 0),
            r#"[{"urls":"stun:a.example.org"},{"urls":"stun:b.example.org:3478"},{"credential":"p","urls":"turn:c.example.org?transport=tcp","username":"u"}]"#
        );
        assert_eq!(config(&[]).core.ice.render("alice", 0), "[]");
    }

    #[test]
    fn turn_peer_ranges_and_caps_reach_the_turn_config() {
        let cfg = config(&[
            "--turn-listen",
            "127.0.0.1:0",
            "--turn-allowed-peer-ip",
            "127.0.0.0/8,10.1.0.0/16",
            "--turn-allowed-peer-ip",
            "192.168.1.5",
            "--turn-denied-peer-ip",
            "198.51.100.0/24",
            "--turn-max-allocations",
            "500",
            "--turn-max-allocations-per-ip",
            "20",
        ]);
        let turn = cfg.turn.expect("embedded TURN");
        let shown: Vec<String> = turn.allowed_peers.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["127.0.0.0/8", "10.1.0.0/16", "192.168.1.5/32"]);
        assert_eq!(turn.denied_peers[0].to_string(), "198.51.100.0/24");
        assert_eq!(
            (turn.max_allocations, turn.max_allocations_per_ip),
            (500, 20)
        );
        let defaults = config(&["--turn-listen", "127.0.0.1:0"]).turn.unwrap();
        assert!(defaults.allowed_peers.is_empty());
        assert_eq!(
            defaults.max_allocations,
            huddle::turn::DEFAULT_MAX_ALLOCATIONS
        );
        for bad in [
            &[
                "--turn-listen",
                "127.0.0.1:0",
                "--turn-allowed-peer-ip",
                "10.0.0.0/40",
            ][..],
            &[
                "--turn-listen",
                "127.0.0.1:0",
                "--turn-max-allocations",
                "0",
            ],
            &["--turn-allowed-peer-ip", "127.0.0.0/8"],
        ] {
            assert!(
                Cli::try_parse_from(std::iter::once("huddle").chain(bad.iter().copied())).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hardening_flags_reach_the_config() {
        let cfg = config(&[
            "--write-timeout",
            "3s",
            "--outbound-queue-bytes",
            "8388608",
            "--http-header-timeout",
            "5s",
            "--max-tls-handshakes",
            "8",
            "--max-connections-per-ip",
            "0",
            "--join-timeout",
            "1m",
            "--public-url",
            "https://Chat.Example.com/",
        ]);
        assert_eq!(cfg.write_timeout, Duration::from_secs(3));
        assert_eq!(cfg.outbound_queue_bytes, 8 << 20);
        assert_eq!(cfg.http_header_timeout, Duration::from_secs(5));
        assert_eq!(cfg.max_tls_handshakes, 8);
        assert_eq!(cfg.max_connections_per_ip, 0);
        assert_eq!(cfg.join_timeout, Duration::from_secs(60));
        assert_eq!(
            cfg.public_url.map(|o| o.to_string()).as_deref(),
            Some("https://chat.example.com")
        );
        let defaults = config(&[]);
        assert_eq!(defaults.max_connections_per_ip, 100);
        assert!(defaults.validate().is_ok());
        // A queue too small for a resume is refused at start.
        let small = config(&["--outbound-queue-bytes", "65536"]);
        assert!(matches!(
            small.validate(),
            Err(config::ConfigError::QueueBytesTooSmall { .. })
        ));
        for bad in [
            &["--public-url", "ftp://x"][..],
            &["--public-url", "chat.example.com"],
            &["--write-timeout", "0s"],
            &["--max-tls-handshakes", "0"],
        ] {
            assert!(
                Cli::try_parse_from(std::iter::once("huddle").chain(bad.iter().copied())).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bad_ice_flags_are_refused_by_the_parser() {
        for args in [
            &["--ice-server", "turn:c.example.org"][..],
            &["--ice-servers", "{}"],
            &["--ice-servers", r#"[{"url":"stun:x"}]"#],
            &["--turn-url", "turn:u:p@x"],
            &["--turn-public-ip", "192.0.2.1"],
        ] {
            let err = Cli::try_parse_from(std::iter::once("huddle").chain(args.iter().copied()))
                .expect_err("refused");
            assert!(!err.to_string().is_empty(), "{args:?}");
        }
    }
}
