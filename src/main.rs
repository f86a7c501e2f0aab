//! The `huddle` command: with no subcommand it serves (parse settings,
//! start logging, serve until SIGINT or SIGTERM); subcommands are tools
//! that talk to a running server.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use clap::builder::TypedValueParser as _;
use huddle::config::{self, Config, CoreConfig};
use huddle::server::Server;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Self-hosted group video chat: serves the web app and the WebSocket
/// signaling server on one port.
///
/// Open http://<listen>/ in a browser, pick a name and a room, and share the
/// link. Every setting can also be given as an environment variable (shown
/// in brackets). Durations accept values like 500ms, 10s, 2m.
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
    Serve(ServeArgs),
    /// Join a room as a headless WebRTC participant (media, chat, stats),
    /// or run many for a media load test.
    Bot(huddle::bot::BotArgs),
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

    /// Open WebSocket connections; more are refused with HTTP 503.
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

    /// Messages waiting to be written to one connection; a connection that
    /// falls this far behind is cut (code 1013) and may resume.
    #[arg(long, env = "HUDDLE_OUTBOUND_QUEUE", default_value_t = config::DEFAULT_OUTBOUND_QUEUE,
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    outbound_queue: usize,

    /// An origin (like https://app.example.com) allowed to open the
    /// signaling socket besides the server's own. Repeat for more; in the
    /// environment, separate them with commas.
    #[arg(
        long = "allowed-origin",
        env = "HUDDLE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,

    /// ICE servers handed to browsers in `joined`, as a JSON array of
    /// RTCIceServer objects, e.g. '[{"urls":"stun:stun.example.org:3478"}]'.
    /// The default (none) works on one network; add STUN/TURN to cross NATs.
    #[arg(long, env = "HUDDLE_ICE_SERVERS", default_value = "[]", value_parser = config::ice_servers_json)]
    ice_servers: String,

    /// How long shutdown waits for connections to close.
    #[arg(long, env = "HUDDLE_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = duration)]
    shutdown_timeout: Duration,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (try 500ms, 10s or 2m)"))
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

impl ServeArgs {
    fn into_config(self) -> Config {
        Config {
            listen: self.listen,
            listen_backlog: self.listen_backlog,
            max_frame_bytes: self.max_frame_bytes,
            max_connections: self.max_connections,
            heartbeat_interval: self.heartbeat_interval,
            outbound_queue: self.outbound_queue,
            allowed_origins: self.allowed_origins,
            shutdown_timeout: self.shutdown_timeout,
            core: CoreConfig {
                max_room_size: self.max_room_size,
                rate: self.rate,
                burst: self.burst,
                flood_close_after: self.flood_close_after,
                reconnect_grace: self.reconnect_grace,
                resume_queue: self.resume_queue,
                resume_queue_bytes: self.resume_queue_bytes,
                ice_servers_json: self.ice_servers,
            },
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
        Some(Command::Serve(args)) => runtime.block_on(serve(args)),
        Some(Command::Bot(args)) => runtime.block_on(bot(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huddle: {e:#}");
            std::process::ExitCode::FAILURE
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
    println!("listening on http://{addr}");
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
