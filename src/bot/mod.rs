//! `huddle bot`: a headless WebRTC participant built on protocol v1 and
//! str0m, for scripted members, smoke tests of a deployment and media-level
//! load tests of the mesh.
//!
//! - [`signal`]: the WebSocket side of protocol v1 (join, resume, relay).
//! - [`peer`]: one str0m peer connection, sans-IO.
//! - [`participant`]: one bot's I/O loop (UDP sockets, timers, signaling).
//! - [`media`]: the IVF (VP8) and Ogg Opus readers and pacing.
//! - [`report`]: statistics and how they are printed.
//!
//! This module has the command-line arguments and runs one bot, or many
//! (`--rooms` × `--room-size`) in one process for a media load test.

pub mod media;
pub mod participant;
pub mod peer;
pub mod report;
pub mod signal;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use media::{MediaError, Track};
pub use participant::{BotConfig, BotError, BotEvent, BotOutcome};
use report::{LoadSummary, PairResult};
use signal::JoinSpec;

/// The share of frames every member must receive from every other for a
/// load run to count as healthy.
pub const HEALTHY_RATIO: f64 = 0.9;

/// In a load run, how long the bots wait between stopping their media and
/// counting (frames still in flight arrive meanwhile).
const SETTLE: Duration = Duration::from_millis(1500);

/// Runs a headless participant: joins a room, sends a looping test video and
/// tone (or files you give), chats, and reports what it receives.
///
/// Statistics per remote member (time to connected and to the first frame,
/// frames, bitrate, loss from RTP sequence gaps) are printed every
/// --report-every and at exit. Ctrl-C leaves cleanly. With --rooms and
/// --room-size it runs many bots in this process and reports, for every
/// receiving pair, the share of frames that arrived.
#[derive(Debug, clap::Args)]
#[command(long_about)]
pub struct BotArgs {
    /// The huddle server: its site address (http(s)://host:port) or its
    /// socket URL (ws(s)://host:port/ws).
    #[arg(long, env = "HUDDLE_BOT_SERVER", value_name = "URL")]
    pub server: String,

    /// Also trust the certificates in this PEM file for https:// and wss://
    /// (a private CA, or a `huddle --tls-self-signed` server's certificate).
    #[arg(long, env = "HUDDLE_BOT_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Room to join. With --rooms: the prefix of the rooms' names
    /// (ROOM-1, ROOM-2, …; default "load").
    #[arg(long, env = "HUDDLE_BOT_ROOM", required_unless_present = "rooms")]
    pub room: Option<String>,

    /// Name in the room. With --rooms: the prefix of the bots' names
    /// (NAME-1, NAME-2, …).
    #[arg(long, env = "HUDDLE_BOT_NAME", default_value = "bot")]
    pub name: String,

    /// The room's password, when its host set one.
    #[arg(long, env = "HUDDLE_BOT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// An operator token (from `huddle token`), for servers run with
    /// --auth-secret. A whole invitation link works too: its `access=` is used.
    #[arg(long, env = "HUDDLE_BOT_ACCESS", hide_env_values = true, value_parser = access_token)]
    pub access: Option<String>,

    /// As the room's host, let everyone who waits in its lobby in.
    #[arg(long)]
    pub admit_all: bool,

    /// VP8 video to loop (an IVF file) instead of the built-in test pattern.
    #[arg(long, env = "HUDDLE_BOT_VIDEO", value_name = "FILE.ivf")]
    pub video: Option<PathBuf>,

    /// Opus audio to loop (an Ogg Opus file) instead of the built-in tone.
    #[arg(long, env = "HUDDLE_BOT_AUDIO", value_name = "FILE.ogg")]
    pub audio: Option<PathBuf>,

    /// Send no audio or video: offer the data channel only (media that
    /// others offer is still received and counted).
    #[arg(long, conflicts_with_all = ["video", "audio"])]
    pub no_media: bool,

    /// Chat TEXT on each data channel as it opens. Repeat for more.
    #[arg(long, value_name = "TEXT")]
    pub say: Vec<String>,

    /// Answer every chat message with "echo: TEXT" to everyone (messages
    /// that start with "echo: " are not answered).
    #[arg(long)]
    pub echo: bool,

    /// Local address for media, an IP (any port) or IP:PORT; one UDP
    /// socket each. Repeat or separate with commas. Default: every
    /// non-loopback interface address.
    #[arg(
        long,
        env = "HUDDLE_BOT_BIND",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub bind: Vec<String>,

    /// How often to print statistics (0s: only at exit).
    #[arg(long, env = "HUDDLE_BOT_REPORT_EVERY", default_value = "5s", value_parser = duration)]
    pub report_every: Duration,

    /// Print JSON lines (events, reports, load results) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Leave after this long. Default: run until Ctrl-C; with --rooms,
    /// 30s after the last bot joined.
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,

    /// How long to keep trying to get back after the signaling connection
    /// is lost (the server keeps the place for its --reconnect-grace).
    #[arg(long, env = "HUDDLE_BOT_RECONNECT_FOR", default_value = "60s", value_parser = duration)]
    pub reconnect_for: Duration,

    /// Media load test: run this many rooms of --room-size bots each in
    /// this process.
    #[arg(long, requires = "room_size", value_parser = clap::value_parser!(u32).range(1..))]
    pub rooms: Option<u32>,

    /// Media load test: bots per room.
    #[arg(long, requires = "rooms", value_parser = clap::value_parser!(u32).range(2..))]
    pub room_size: Option<u32>,

    /// Media load test: pause between two bots' joins.
    #[arg(long, default_value = "200ms", value_parser = duration)]
    pub join_interval: Duration,
}

/// The token itself, or the `access=` of an invitation link (also
/// `huddle doctor --access`).
pub(crate) fn access_token(s: &str) -> Result<String, String> {
    let s = s.trim();
    let token = match s.split_once("access=") {
        Some((_, rest)) => rest.split('&').next().unwrap_or_default(),
        None => s,
    };
    if token.is_empty() {
        return Err("empty access token".into());
    }
    Ok(token.to_owned())
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (try 500ms, 10s or 2m)"))
}

/// A setting the bot cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A media file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A media file is not what the bot can send.
    #[error("{path}: {source}")]
    Media {
        /// The file (or "built-in").
        path: String,
        /// Why.
        source: MediaError,
    },
    /// A `--bind` value is not an address.
    #[error("--bind {0:?}: expected an IP address or IP:PORT")]
    Bind(String),
    /// No interface to bind.
    #[error(
        "no non-loopback interface address found for media; give one with --bind (e.g. --bind 127.0.0.1)"
    )]
    NoInterface,
    /// The server address or the CA file.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
}

/// Why `huddle bot` failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad settings.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A bot failed.
    #[error(transparent)]
    Bot(#[from] BotError),
    /// Some bots of a load run failed.
    #[error("{failed} of {total} bots failed; the first: {first}")]
    Load {
        /// Failed bots.
        failed: usize,
        /// All bots.
        total: usize,
        /// The first error.
        first: BotError,
    },
}

/// The addresses to bind: `--bind` values, or every non-loopback interface.
pub fn bind_addrs(given: &[String]) -> Result<Vec<SocketAddr>, SetupError> {
    if !given.is_empty() {
        return given
            .iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<SocketAddr>()
                    .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
                    .map_err(|_| SetupError::Bind(s.to_owned()))
            })
            .collect();
    }
    let addrs: Vec<SocketAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip())
        // Link-local IPv6 needs a scope id that candidates cannot carry.
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
        .map(|ip| SocketAddr::new(ip, 0))
        .collect();
    if addrs.is_empty() {
        return Err(SetupError::NoInterface);
    }
    Ok(addrs)
}

/// The video and audio a bot sends (`None`: not that kind).
pub type Tracks = (Option<Arc<Track>>, Option<Arc<Track>>);

/// The tracks to send: the built-in fixtures, files, or none (`--no-media`).
pub fn load_tracks(args: &BotArgs) -> Result<Tracks, SetupError> {
    if args.no_media {
        return Ok((None, None));
    }
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|source| SetupError::Read {
            path: p.clone(),
            source,
        })
    };
    let media_err = |p: Option<&PathBuf>| {
        let path = p.map_or_else(|| "built-in".to_owned(), |p| p.display().to_string());
        move |source| SetupError::Media { path, source }
    };
    let video = match &args.video {
        Some(p) => media::parse_ivf(&read(p)?).map_err(media_err(Some(p)))?,
        None => media::parse_ivf(media::DEFAULT_VIDEO).map_err(media_err(None))?,
    };
    let audio = match &args.audio {
        Some(p) => media::parse_ogg_opus(&read(p)?).map_err(media_err(Some(p)))?,
        None => media::parse_ogg_opus(media::DEFAULT_AUDIO).map_err(media_err(None))?,
    };
    Ok((Some(Arc::new(video)), Some(Arc::new(audio))))
}

/// Runs `huddle bot` until STOP (Ctrl-C), `--duration`, or an error;
/// prints to stdout.
pub async fn run(args: BotArgs, stop: CancellationToken) -> Result<(), RunError> {
    let endpoint = crate::client::Endpoint::new(&args.server, args.ca_file.as_deref())
        .map_err(SetupError::from)?;
    let bind = bind_addrs(&args.bind)?;
    let (video, audio) = load_tracks(&args)?;
    let report_every = (!args.report_every.is_zero()).then_some(args.report_every);
    let config = |room: String, name: String| BotConfig {
        join: JoinSpec {
            endpoint: endpoint.clone(),
            room,
            name,
            password: args.password.clone(),
            access: args.access.clone(),
            give_up_after: args.reconnect_for,
        },
        bind: bind.clone(),
        video: video.clone(),
        audio: audio.clone(),
        say: args.say.clone(),
        echo: args.echo,
        report_every,
        media_stop: None,
        admit_all: args.admit_all,
    };
    match (args.rooms, args.room_size) {
        (Some(rooms), Some(size)) => {
            let prefix = args.room.clone().unwrap_or_else(|| "load".to_owned());
            let mut cfgs = Vec::new();
            for r in 0..rooms {
                for m in 0..size {
                    let n = r * size + m + 1;
                    let mut c = config(format!("{prefix}-{}", r + 1), format!("{}-{n}", args.name));
                    c.report_every = None;
                    cfgs.push(c);
                }
            }
            let pause = args.join_interval;
            let hold = args.duration.unwrap_or(Duration::from_secs(30));
            run_load(
                cfgs,
                rooms as usize,
                size as usize,
                pause,
                hold,
                args.json,
                stop,
            )
            .await
        }
        _ => {
            let room = args.room.clone().unwrap_or_default();
            run_one(
                config(room, args.name.clone()),
                args.duration,
                args.json,
                stop,
            )
            .await
        }
    }
}

fn print_event(ev: &BotEvent, json: bool) {
    use serde_json::json;
    let (text, value) = match ev {
        BotEvent::Joined {
            name,
            peers,
            resumed,
        } => (
            format!(
                "{} as {name}; members: {}",
                if *resumed { "resumed" } else { "joined" },
                if peers.is_empty() {
                    "none".to_owned()
                } else {
                    peers.join(", ")
                }
            ),
            json!({"type":"joined","name":name,"peers":peers,"resumed":resumed}),
        ),
        BotEvent::PeerJoined(n) => (
            format!("{n} joined"),
            json!({"type":"peer-joined","name":n}),
        ),
        BotEvent::PeerLeft(n) => (format!("{n} left"), json!({"type":"peer-left","name":n})),
        BotEvent::Connected(n) => (
            format!("connected to {n}"),
            json!({"type":"connected","name":n}),
        ),
        BotEvent::FirstFrame(n) => (
            format!("first frame from {n}"),
            json!({"type":"first-frame","name":n}),
        ),
        BotEvent::Chat { from, text } => (
            format!("{from}: {text}"),
            json!({"type":"chat","from":from,"text":text}),
        ),
        BotEvent::SignalLost(why) => (
            format!("signaling connection lost ({why}); resuming"),
            json!({"type":"signal-lost","why":why}),
        ),
        BotEvent::Hand { from, up } => (
            format!("{from} {} a hand", if *up { "raised" } else { "lowered" }),
            json!({"type":"hand","from":from,"up":up}),
        ),
        BotEvent::Reaction { from, emoji } => (
            format!("{from} reacted {emoji}"),
            json!({"type":"reaction","from":from,"emoji":emoji}),
        ),
        BotEvent::FileDeclined { from, name } => (
            format!("{from} offered a file, {name}: declined"),
            json!({"type":"file-declined","from":from,"name":name}),
        ),
        BotEvent::Waiting(room) => (
            format!("waiting in the lobby of {room} for the host"),
            json!({"type":"waiting","room":room}),
        ),
        BotEvent::Host(n) => (format!("host: {n}"), json!({"type":"host","name":n})),
        BotEvent::RoomSettings { locked, protected } => (
            format!(
                "room settings: {}, {}",
                if *locked { "locked" } else { "open" },
                if *protected {
                    "password set"
                } else {
                    "no password"
                }
            ),
            json!({"type":"room-settings","locked":locked,"protected":protected}),
        ),
        BotEvent::Knock(n) => (
            format!("{n} waits in the lobby"),
            json!({"type":"knock","name":n}),
        ),
        BotEvent::KnockGone(n) => (
            format!("{n} stopped waiting"),
            json!({"type":"knock-gone","name":n}),
        ),
        BotEvent::Removed(by) => (
            format!("removed from the room by {by}"),
            json!({"type":"removed","by":by}),
        ),
        BotEvent::AskedToMute(by) => (
            format!("{by} asked to mute: audio off"),
            json!({"type":"ask-mute","by":by}),
        ),
        BotEvent::Report(reports) => {
            for r in reports {
                println!("{}", if json { r.json() } else { r.line() });
            }
            return;
        }
    };
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

async fn run_one(
    cfg: BotConfig,
    hold: Option<Duration>,
    json: bool,
    stop: CancellationToken,
) -> Result<(), RunError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bot_stop = stop.child_token();
    if let Some(d) = hold {
        let s = bot_stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            s.cancel();
        });
    }
    let printer = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            print_event(&ev, json);
        }
    });
    let outcome = participant::run(cfg, Some(tx), bot_stop).await;
    let _ = printer.await;
    let outcome = outcome?;
    for r in &outcome.reports {
        println!("{}", if json { r.json() } else { r.line() });
    }
    Ok(())
}

/// Pairs every receiver's report with the sender's count of frames it sent
/// to that receiver. BOTS are in join order: join → first frame is kept
/// only for pairs where the receiver joined after the sender (for the
/// others it would count the time the receiver waited for the sender).
pub fn pair_results(bots: &[(String, BotOutcome)]) -> Vec<PairResult> {
    let mut pairs = Vec::new();
    for (i, (room, bot)) in bots.iter().enumerate() {
        for r in &bot.reports {
            let sender = bots
                .iter()
                .enumerate()
                .find(|(_, (rm, b))| rm == room && b.name == r.peer);
            let sent = sender
                .and_then(|(_, (_, b))| b.reports.iter().find(|s| s.peer == bot.name))
                .map_or(0, |s| s.frames_sent);
            let ratio = if sent == 0 {
                1.0
            } else {
                (r.video_frames as f64 / sent as f64).min(1.0)
            };
            let joined_later = sender.is_some_and(|(j, _)| j < i);
            pairs.push(PairResult {
                room: room.clone(),
                to: bot.name.clone(),
                from: r.peer.clone(),
                sent,
                received: r.video_frames,
                ratio,
                fps: r.fps,
                loss_pct: r.video_loss_pct,
                join_to_first_frame_ms: r.join_to_first_frame_ms.filter(|_| joined_later),
            });
        }
    }
    pairs
}

async fn run_load(
    cfgs: Vec<BotConfig>,
    rooms: usize,
    size: usize,
    pause: Duration,
    hold: Duration,
    json: bool,
    stop: CancellationToken,
) -> Result<(), RunError> {
    let total = cfgs.len();
    let bots_stop = stop.child_token();
    let media_stop = CancellationToken::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut cfg) in cfgs.into_iter().enumerate() {
        cfg.media_stop = Some(media_stop.clone());
        if i > 0 {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        let room = cfg.join.room.clone();
        let s = bots_stop.clone();
        tasks.push((room, tokio::spawn(participant::run(cfg, None, s))));
    }
    eprintln!(
        "huddle bot: {} bots in {rooms} rooms joined over {:.1} s; measuring for {:?}",
        tasks.len(),
        started.elapsed().as_secs_f64(),
        hold
    );
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(hold) => {}
    }
    // Stop sending first and let the frames in flight arrive, so that every
    // frame counted as sent had its chance to be received.
    media_stop.cancel();
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(SETTLE) => {}
    }
    bots_stop.cancel();
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    for (room, t) in tasks {
        match t.await {
            Ok(Ok(o)) => outcomes.push((room, o)),
            Ok(Err(e)) => errors.push(e),
            Err(e) => tracing::error!(error = %e, "a bot task panicked"),
        }
    }
    let pairs = pair_results(&outcomes);
    let summary = LoadSummary::of(rooms, size, &pairs, HEALTHY_RATIO);
    for p in &pairs {
        if json {
            let mut v = serde_json::to_value(p).expect("serializable");
            v["type"] = "pair".into();
            println!("{v}");
        } else {
            println!("{}", p.line());
        }
    }
    if json {
        let mut v = serde_json::to_value(&summary).expect("serializable");
        v["type"] = "summary".into();
        v["all_ok"] = summary.all_ok().into();
        println!("{v}");
    } else {
        println!("{}", summary.text());
    }
    if let Some(first) = errors.into_iter().next() {
        let failed = total - outcomes.len();
        return Err(RunError::Load {
            failed,
            total,
            first,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn outcome(name: &str, about: &[(&str, u64, u64)]) -> BotOutcome {
        let now = Instant::now();
        BotOutcome {
            name: name.into(),
            reports: about
                .iter()
                .map(|&(peer, frames, sent)| {
                    let mut s = report::PeerStats::new(now, now);
                    for i in 0..frames {
                        s.on_video(now, 100, i..=i);
                    }
                    s.frames_sent = sent;
                    s.snapshot(name, peer, now, true)
                })
                .collect(),
        }
    }

    #[test]
    fn pairs_match_what_was_sent_to_whom() {
        let bots = vec![
            ("r".to_owned(), outcome("a", &[("b", 90, 100)])),
            ("r".to_owned(), outcome("b", &[("a", 100, 100)])),
            // Same names in another room do not mix.
            ("s".to_owned(), outcome("a", &[("b", 5, 10)])),
            ("s".to_owned(), outcome("b", &[("a", 0, 50)])),
        ];
        let p = pair_results(&bots);
        let get = |room: &str, to: &str| p.iter().find(|x| x.room == room && x.to == to).unwrap();
        assert_eq!((get("r", "a").sent, get("r", "a").received), (100, 90));
        assert!((get("r", "a").ratio - 0.9).abs() < 1e-9);
        assert_eq!((get("s", "a").sent, get("s", "a").ratio), (50, 0.1));
        assert_eq!(get("s", "b").ratio, 0.0);
        // Join → first frame only for a receiver that joined after the sender.
        assert_eq!(get("r", "a").join_to_first_frame_ms, None);
        assert_eq!(get("r", "b").join_to_first_frame_ms, Some(0));
        let s = LoadSummary::of(2, 2, &p, HEALTHY_RATIO);
        assert_eq!((s.pairs, s.pairs_ok), (4, 2));
    }

    #[test]
    fn bind_addresses() {
        let given = |v: &[&str]| bind_addrs(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            given(&["127.0.0.1"]).unwrap(),
            ["127.0.0.1:0".parse().unwrap()]
        );
        assert_eq!(
            given(&["127.0.0.1:5000", "::1"]).unwrap(),
            [
                "127.0.0.1:5000".parse().unwrap(),
                "[::1]:0".parse().unwrap()
            ]
        );
        assert!(matches!(given(&["localhost"]), Err(SetupError::Bind(_))));
    }
}
