//! `huddle load`: a load generator that sets up real calls on a huddle
//! server and checks every message it gets back.
//!
//! A run has four phases:
//!
//! 1. **Join**: `rooms × room_size` members connect and join at `join_rate`
//!    per second, the first member of every room first, then the second, …
//!    Each newcomer sends every member already there an offer (3–6 KiB of
//!    SDP) and a trickle of 8–12 candidates spread over `trickle`; each
//!    member answers with an answer and its own candidates.
//! 2. **Settle**: the run waits until every call is set up and every relayed
//!    message has arrived (at most `settle` without progress).
//! 3. **Hold**: `duration` of quiet; the server's heartbeat pings are answered.
//! 4. **Leave**: member 0 of every room leaves, then member 1, … at
//!    `join_rate` per second; each waits for `left` and closes cleanly.
//!
//! Each member's [`scenario::MemberCheck`] sees every message; at the end
//! each check learns what the others sent it and who left before it, and
//! reports what was lost, duplicated, reordered or unexpected. Any finding
//! fails the run.

pub mod scenario;

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use scenario::{
    Finding, MemberCheck, Percentiles, Problem, Relay, Rng, SdpKind, SdpPool, candidate,
    candidate_marker, count_problems, join_order, sdp_marker,
};

/// The settings of `huddle load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The server: its signaling URL (ws(s)://host:port/ws) or its site
    /// (http(s)://host:port, from which /ws is derived).
    #[arg(
        long,
        env = "HUDDLE_LOAD_SERVER",
        default_value = "ws://127.0.0.1:8080/ws"
    )]
    pub server: String,

    /// Also trust the certificates in this PEM file for https:// and wss://
    /// (a private CA, or a `huddle --tls-self-signed` server's certificate).
    #[arg(long, env = "HUDDLE_LOAD_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<std::path::PathBuf>,

    /// Rooms to fill.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    pub rooms: usize,

    /// Members per room (at most the server's --max-room-size).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    pub room_size: usize,

    /// Members joining per second, over all rooms; also the pace of leaving.
    #[arg(long, default_value_t = 100.0, value_parser = positive_rate)]
    pub join_rate: f64,

    /// How long every member stays in its call once all calls are set up.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub duration: Duration,

    /// Size range of each offer and answer SDP, in bytes (LOW-HIGH).
    #[arg(long, default_value = "3072-6144", value_parser = range)]
    pub sdp_bytes: (u64, u64),

    /// ICE candidates each side sends per call (LOW-HIGH).
    #[arg(long, default_value = "8-12", value_parser = range)]
    pub candidates: (u64, u64),

    /// Time over which each side's candidates trickle after its offer or answer.
    #[arg(long, default_value = "200ms", value_parser = duration)]
    pub trickle: Duration,

    /// Messages per second one member sends at most; keep it at or below
    /// the server's --rate.
    #[arg(long, default_value_t = crate::config::DEFAULT_RATE, value_parser = clap::value_parser!(u32).range(1..))]
    pub send_rate: u32,

    /// Messages one member may send at once; keep it at or below the
    /// server's --burst.
    #[arg(long, default_value_t = crate::config::DEFAULT_BURST, value_parser = clap::value_parser!(u32).range(1..))]
    pub send_burst: u32,

    /// How long to wait without progress for calls to be set up (or for
    /// `left`) before counting what is missing as lost.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub settle: Duration,

    /// How long connecting and the WebSocket upgrade may take.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub connect_timeout: Duration,

    /// Prefix of the room names (default: "load-" and a random tag, so runs
    /// never meet each other).
    #[arg(long)]
    pub room_prefix: Option<String>,

    /// Seed of the payload generator (sizes, candidate counts).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Process id of the server, when it runs on this machine: the report
    /// adds its CPU time per relayed message and its memory per connection
    /// (from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Default for LoadArgs {
    fn default() -> Self {
        Self {
            server: "ws://127.0.0.1:8080/ws".into(),
            ca_file: None,
            rooms: 10,
            room_size: 5,
            join_rate: 100.0,
            duration: Duration::from_secs(10),
            sdp_bytes: (3072, 6144),
            candidates: (8, 12),
            trickle: Duration::from_millis(200),
            send_rate: crate::config::DEFAULT_RATE,
            send_burst: crate::config::DEFAULT_BURST,
            settle: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            room_prefix: None,
            seed: 1,
            server_pid: None,
            json: false,
        }
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (try 500ms, 10s or 2m)"))
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("must be a number above 0".into()),
    }
}

fn range(s: &str) -> Result<(u64, u64), String> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let lo: u64 = lo
        .trim()
        .parse()
        .map_err(|_| "expected LOW-HIGH, e.g. 8-12")?;
    let hi: u64 = hi
        .trim()
        .parse()
        .map_err(|_| "expected LOW-HIGH, e.g. 8-12")?;
    if lo > hi {
        return Err("LOW must not be above HIGH".into());
    }
    Ok((lo, hi))
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The server address or the CA file is not usable.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// More connections than the open-file limit allows.
    #[error(
        "{wanted} connections need more open files than the limit allows ({limit}); raise it (ulimit -n) or run several load generators"
    )]
    FdLimit {
        /// Connections the run would open.
        wanted: usize,
        /// The open-file limit.
        limit: u64,
    },
}

/// Counters every member updates, for progress and for knowing when the
/// run has settled.
#[derive(Debug, Default)]
struct Counters {
    connected: AtomicU64,
    joined: AtomicU64,
    /// Members whose call is set up (or who had nobody to call), or who failed.
    settled: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
    relays_sent: AtomicU64,
    relays_received: AtomicU64,
    /// Relays scheduled but not sent yet.
    pending: AtomicU64,
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
    problems: AtomicU64,
    left: AtomicU64,
}

impl Counters {
    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }

    fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }

    /// A number that changes whenever anything happens.
    fn progress(&self) -> u64 {
        [
            &self.connected,
            &self.joined,
            &self.settled,
            &self.relays_sent,
            &self.relays_received,
            &self.frames_received,
            &self.left,
        ]
        .iter()
        .map(|a| Self::get(a))
        .sum()
    }
}

/// What one member needs to run.
struct MemberPlan {
    room: usize,
    index: usize,
    room_name: String,
    name: String,
    join_at: Instant,
    seed: u64,
}

/// What one member reports when it is done.
struct Outcome {
    room: usize,
    index: usize,
    name: String,
    joined: bool,
    check: MemberCheck,
    /// Relayed messages sent to each name.
    sent: HashMap<String, u32>,
    connect_ms: Option<f64>,
    join_ms: Option<f64>,
    setup_ms: Option<f64>,
    relay_ms: Vec<f64>,
    relayed_by_type: [u64; 3],
    left_ok: bool,
}

/// A command from the coordinator to a member.
enum Command {
    /// Send `leave`; answer whether `left` came.
    Leave(oneshot::Sender<bool>),
}

/// What a run measured and found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The signaling URL.
    pub server: String,
    /// Rooms.
    pub rooms: usize,
    /// Members per room.
    pub room_size: usize,
    /// Members planned (rooms × room size).
    pub members: usize,
    /// Members that connected.
    pub connected: u64,
    /// Members that got `joined`.
    pub joined: u64,
    /// Calls a newcomer set up (one per newcomer with at least one member before it).
    pub calls_set_up: u64,
    /// Calls expected.
    pub calls_expected: u64,
    /// Most connections open at once.
    pub connections_peak: u64,
    /// Connections open during the hold.
    pub connections_held: u64,
    /// TCP connect + WebSocket upgrade, ms.
    pub connect_ms: Percentiles,
    /// `join` sent → `joined` received, ms.
    pub join_ms: Percentiles,
    /// Newcomer's `join` sent → last answer received, ms.
    pub call_setup_ms: Percentiles,
    /// Relayed message sent → received (offers, answers, candidates), ms.
    pub relay_ms: Percentiles,
    /// Relayed messages sent.
    pub relayed_sent: u64,
    /// Relayed messages received, by type.
    pub relayed_received: BTreeMap<&'static str, u64>,
    /// Relayed messages received per second, from the first join until every call was set up.
    pub relayed_per_s: f64,
    /// All frames sent and received per second over the same span.
    pub frames_per_s: f64,
    /// Frames sent (joins, relays, leaves).
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// `error` replies by code.
    pub errors: BTreeMap<String, u64>,
    /// Findings by kind (lost, duplicate, out_of_order, unexpected, error_reply, connection).
    pub problems: BTreeMap<&'static str, u64>,
    /// The first findings, for the reader.
    pub findings: Vec<String>,
    /// Seconds: joining and setting up, the hold, leaving, the whole run.
    pub setup_s: f64,
    /// Seconds of hold.
    pub hold_s: f64,
    /// Seconds of leaving.
    pub leave_s: f64,
    /// Seconds in all.
    pub total_s: f64,
    /// With `--server-pid`: the server's CPU and memory.
    pub server_usage: Option<ServerUsage>,
    /// The load generator's own CPU time during set-up, % of one core.
    pub client_cpu_pct: Option<f64>,
    /// True when nothing was lost, duplicated, reordered, unexpected or refused.
    pub ok: bool,
}

/// The server's resource use, read from /proc (`--server-pid`).
#[derive(Debug, Clone, Serialize)]
pub struct ServerUsage {
    /// CPU time during set-up, % of one core.
    pub cpu_pct: f64,
    /// CPU time during set-up per relayed message, µs.
    pub cpu_us_per_relay: f64,
    /// Resident memory before the run, KiB.
    pub rss_before_kib: u64,
    /// Resident memory during the hold (every call set up), KiB.
    pub rss_held_kib: u64,
    /// (held − before) ÷ connections held, KiB.
    pub kib_per_conn: f64,
}

/// CPU seconds (user + system) of a process, from /proc (also used by
/// the soak driver, `examples/soak.rs`).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Resident memory of a process in KiB, from /proc.
pub fn rss_kib(pid: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Different offers (and answers) made at start; each send picks one.
const SDP_VARIANTS: usize = 64;

/// Findings listed in the report (all are counted).
const FINDINGS_SHOWN: usize = 50;

/// Runs a load test as `args` says. `progress`: draw a progress line on stderr.
pub async fn run(args: &LoadArgs, progress: bool) -> Result<Report, LoadError> {
    let endpoint = Arc::new(crate::client::Endpoint::new(
        &args.server,
        args.ca_file.as_deref(),
    )?);
    let url = endpoint.url.clone();
    let members = args.rooms * args.room_size;
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    if members as u64 + 64 > limit {
        return Err(LoadError::FdLimit {
            wanted: members,
            limit,
        });
    }
    let prefix = args.room_prefix.clone().unwrap_or_else(|| {
        let mut tag = [0u8; 4];
        let _ = getrandom::fill(&mut tag);
        format!("load-{:08x}", u32::from_le_bytes(tag))
    });
    let counters = Arc::new(Counters::default());
    let epoch = Instant::now();
    let server_pid = args.server_pid.map(|p| p.to_string());
    let server_before = server_pid.as_deref().map(|p| (cpu_seconds(p), rss_kib(p)));
    let client_before = cpu_seconds("self");
    let cfg = Arc::new(args.clone());
    let pool = Arc::new(SdpPool::new(
        args.sdp_bytes,
        SDP_VARIANTS,
        &mut Rng::new(args.seed),
    ));
    let start = Instant::now() + Duration::from_millis(50);

    let mut commands: Vec<Vec<mpsc::UnboundedSender<Command>>> = vec![Vec::new(); args.rooms];
    let mut tasks = Vec::with_capacity(members);
    for (i, (room, index)) in join_order(args.rooms, args.room_size)
        .into_iter()
        .enumerate()
    {
        let (tx, rx) = mpsc::unbounded_channel();
        commands[room].push(tx);
        let plan = MemberPlan {
            room,
            index,
            room_name: format!("{prefix}-{room}"),
            name: format!("m{index}"),
            join_at: start + Duration::from_secs_f64(i as f64 / args.join_rate),
            seed: args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
        };
        tasks.push(tokio::spawn(member(
            plan,
            cfg.clone(),
            pool.clone(),
            endpoint.clone(),
            counters.clone(),
            epoch,
            rx,
        )));
    }

    let bar = progress.then(|| Progress::start(counters.clone(), members, epoch));
    let calls_expected = (args.rooms * (args.room_size - 1)) as u64;

    // Join and settle: every member settled and every relay delivered.
    let mut last_progress = (counters.progress(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let c = &*counters;
        let done = Counters::get(&c.settled) == members as u64
            && Counters::get(&c.pending) == 0
            && Counters::get(&c.relays_received) >= Counters::get(&c.relays_sent);
        if done {
            break;
        }
        let p = c.progress();
        if p != last_progress.0 {
            last_progress = (p, Instant::now());
        } else if last_progress.1.elapsed() >= args.settle
            && Instant::now() >= start + Duration::from_secs_f64(members as f64 / args.join_rate)
        {
            break;
        }
    }
    let setup_end = Instant::now();
    let setup_secs = (setup_end - start).as_secs_f64().max(1e-9);
    let client_cpu_pct = cpu_seconds("self")
        .zip(client_before)
        .map(|(after, before)| (after - before) / setup_secs * 100.0);
    let server_cpu = server_pid.as_deref().and_then(cpu_seconds);
    if let Some(bar) = &bar {
        bar.phase("hold");
    }
    let connections_held = Counters::get(&counters.open);
    // Memory once the calls are set up, sampled over the hold (largest value).
    let mut rss_held = None;
    let hold_end_at = setup_end + args.duration;
    loop {
        if let Some(p) = server_pid.as_deref() {
            rss_held = rss_held.max(rss_kib(p));
        }
        if Instant::now() >= hold_end_at {
            break;
        }
        sleep_until((Instant::now() + Duration::from_millis(500)).min(hold_end_at)).await;
    }
    let server = match (server_before, server_cpu, rss_held) {
        (Some((Some(cpu0), Some(rss0))), Some(cpu1), Some(rss1)) => {
            let relays = Counters::get(&counters.relays_received).max(1);
            Some(ServerUsage {
                cpu_pct: (cpu1 - cpu0) / setup_secs * 100.0,
                cpu_us_per_relay: (cpu1 - cpu0) * 1e6 / relays as f64,
                rss_before_kib: rss0,
                rss_held_kib: rss1,
                kib_per_conn: rss1.saturating_sub(rss0) as f64 / connections_held.max(1) as f64,
            })
        }
        _ => None,
    };
    let hold_end = Instant::now();

    // Leave: member k of every room, then member k + 1, at the join rate.
    if let Some(bar) = &bar {
        bar.phase("leave");
    }
    let pace = Duration::from_secs_f64(1.0 / args.join_rate);
    let mut next = Instant::now();
    for k in 0..args.room_size {
        let mut acks = Vec::with_capacity(args.rooms);
        for room in &commands {
            sleep_until(next).await;
            next += pace;
            let (tx, rx) = oneshot::channel();
            if room[k].send(Command::Leave(tx)).is_ok() {
                acks.push(rx);
            }
        }
        for ack in acks {
            let _ = timeout(args.settle, ack).await;
        }
    }
    let leave_end = Instant::now();
    drop(commands);

    let mut outcomes = Vec::with_capacity(members);
    for t in tasks {
        if let Ok(o) = t.await {
            outcomes.push(o);
        }
    }
    if let Some(bar) = bar {
        bar.stop();
    }
    let mut report = reconcile(
        args,
        url,
        outcomes,
        &counters,
        calls_expected,
        connections_held,
        [
            setup_end - start,
            hold_end - setup_end,
            leave_end - hold_end,
            leave_end - start,
        ],
    );
    report.server_usage = server;
    report.client_cpu_pct = client_cpu_pct;
    Ok(report)
}

/// One member as the others' checks need it: (index, name, joined, left
/// cleanly, relayed messages it sent to each name).
type Seen = (usize, String, bool, bool, HashMap<String, u32>);

/// Ends every member's check with what the others sent it and who left
/// before it, and sums everything up.
fn reconcile(
    args: &LoadArgs,
    server: String,
    outcomes: Vec<Outcome>,
    counters: &Counters,
    calls_expected: u64,
    connections_held: u64,
    [setup, hold, leave, total]: [Duration; 4],
) -> Report {
    let mut findings: Vec<Finding> = Vec::new();
    let (mut connect, mut join, mut setup_ms, mut relay) = (vec![], vec![], vec![], vec![]);
    let mut relayed = [0u64; 3];
    let mut calls = 0;
    let mut outcomes = outcomes;
    outcomes.sort_by_key(|o| (o.room, o.index));
    // Per room, in member order (which is also the order of leaving):
    // (name, joined, left cleanly, relayed messages sent to each name).
    let mut plan: Vec<Vec<Seen>> = vec![Vec::new(); args.rooms];
    for o in &outcomes {
        plan[o.room].push((o.index, o.name.clone(), o.joined, o.left_ok, o.sent.clone()));
    }
    for o in outcomes.drain(..) {
        let room = &plan[o.room];
        let others: Vec<String> = room
            .iter()
            .filter(|(_, n, joined, _, _)| *joined && *n != o.name)
            .map(|(_, n, ..)| n.clone())
            .collect();
        let sent_to_me: HashMap<String, u32> = room
            .iter()
            .filter(|(_, n, ..)| *n != o.name)
            .filter_map(|(_, n, _, _, sent)| sent.get(&o.name).map(|c| (n.clone(), *c)))
            .collect();
        let left_before: Vec<String> = room
            .iter()
            .filter(|(i, _, joined, left_ok, _)| *i < o.index && *joined && *left_ok)
            .map(|(_, n, ..)| n.clone())
            .collect();
        connect.extend(o.connect_ms);
        join.extend(o.join_ms);
        if let Some(s) = o.setup_ms {
            setup_ms.push(s);
            calls += 1;
        }
        relay.extend_from_slice(&o.relay_ms);
        for (i, n) in o.relayed_by_type.iter().enumerate() {
            relayed[i] += n;
        }
        findings.extend(o.check.finish(&others, &sent_to_me, &left_before, o.joined));
    }
    if calls < calls_expected && findings.iter().all(|f| f.problem != Problem::Lost) {
        findings.push(Finding {
            problem: Problem::Lost,
            member: "-".into(),
            detail: format!("only {calls} of {calls_expected} calls were set up"),
        });
    }
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for f in &findings {
        if f.problem == Problem::ErrorReply {
            let code = f
                .detail
                .strip_prefix("error ")
                .and_then(|d| d.split(':').next())
                .unwrap_or("?");
            *errors.entry(code.to_owned()).or_default() += 1;
        }
    }
    let secs = setup.as_secs_f64().max(1e-9);
    let received: u64 = relayed.iter().sum();
    let frames = Counters::get(&counters.frames_sent) + Counters::get(&counters.frames_received);
    let problems = count_problems(&findings);
    let ok = findings.is_empty();
    Report {
        server,
        rooms: args.rooms,
        room_size: args.room_size,
        members: args.rooms * args.room_size,
        connected: Counters::get(&counters.connected),
        joined: Counters::get(&counters.joined),
        calls_set_up: calls,
        calls_expected,
        connections_peak: Counters::get(&counters.peak_open),
        connections_held,
        connect_ms: Percentiles::of(&mut connect),
        join_ms: Percentiles::of(&mut join),
        call_setup_ms: Percentiles::of(&mut setup_ms),
        relay_ms: Percentiles::of(&mut relay),
        relayed_sent: Counters::get(&counters.relays_sent),
        relayed_received: [
            ("offer", relayed[0]),
            ("answer", relayed[1]),
            ("candidate", relayed[2]),
        ]
        .into_iter()
        .collect(),
        relayed_per_s: received as f64 / secs,
        frames_per_s: frames as f64 / secs,
        frames_sent: Counters::get(&counters.frames_sent),
        frames_received: Counters::get(&counters.frames_received),
        errors,
        problems,
        findings: findings
            .iter()
            .take(FINDINGS_SHOWN)
            .map(|f| format!("{} {}: {}", f.problem.as_str(), f.member, f.detail))
            .collect(),
        setup_s: setup.as_secs_f64(),
        hold_s: hold.as_secs_f64(),
        leave_s: leave.as_secs_f64(),
        total_s: total.as_secs_f64(),
        server_usage: None,
        client_cpu_pct: None,
        ok,
    }
}

/// A message from the server, as far as the load generator reads it.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    from: Option<&'a str>,
    #[serde(default, borrow)]
    name: Option<&'a str>,
    #[serde(default)]
    peers: Option<Vec<String>>,
    #[serde(default, borrow)]
    sdp: Option<&'a RawValue>,
    #[serde(default, borrow)]
    candidate: Option<&'a RawValue>,
    #[serde(default, borrow)]
    code: Option<&'a str>,
    #[serde(default, borrow)]
    message: Option<std::borrow::Cow<'a, str>>,
}

/// What a member has yet to send to one peer.
#[derive(Debug, Clone, Copy)]
enum Out {
    /// The offer (seq 1) or the answer (seq 1).
    Sdp(SdpKind),
    /// Candidate `i` (seq i + 2).
    Candidate(u32),
}

/// A token bucket like the server's, so the member never trips `--rate`.
struct Pacer {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Pacer {
    fn new(rate: u32, burst: u32) -> Self {
        Self {
            tokens: f64::from(burst),
            last: Instant::now(),
            rate: f64::from(rate),
            burst: f64::from(burst),
        }
    }

    fn refill(&mut self, now: Instant) {
        self.tokens = (self.tokens + (now - self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
    }

    /// When the next message may go.
    fn ready_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    fn take(&mut self) {
        self.tokens -= 1.0;
    }
}

/// One member's life: connect, join, call, hold, leave.
async fn member(
    plan: MemberPlan,
    cfg: Arc<LoadArgs>,
    pool: Arc<SdpPool>,
    endpoint: Arc<crate::client::Endpoint>,
    c: Arc<Counters>,
    epoch: Instant,
    mut commands: mpsc::UnboundedReceiver<Command>,
) -> Outcome {
    let who = format!("{}/{}", plan.room_name, plan.name);
    let mut out = Outcome {
        room: plan.room,
        index: plan.index,
        name: plan.name.clone(),
        joined: false,
        check: MemberCheck::new(who),
        sent: HashMap::new(),
        connect_ms: None,
        join_ms: None,
        setup_ms: None,
        relay_ms: Vec::new(),
        relayed_by_type: [0; 3],
        left_ok: false,
    };
    let mut settled = false;
    let settle = |settled: &mut bool| {
        if !*settled {
            *settled = true;
            Counters::add(&c.settled, 1);
        }
    };
    sleep_until(plan.join_at).await;
    let t0 = Instant::now();
    // A small read buffer: thousands of mostly idle sockets.
    let ws_cfg = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let connected = timeout(cfg.connect_timeout, endpoint.connect(Some(ws_cfg))).await;
    let mut ws = match connected {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            out.check
                .other(Problem::Connection, format!("cannot connect: {e}"));
            settle(&mut settled);
            return finish_without_socket(out, &mut commands).await;
        }
        Err(_) => {
            out.check.other(
                Problem::Connection,
                format!("no connection within {:?}", cfg.connect_timeout),
            );
            settle(&mut settled);
            return finish_without_socket(out, &mut commands).await;
        }
    };
    out.connect_ms = Some(ms(t0.elapsed()));
    Counters::add(&c.connected, 1);
    let open = c.open.fetch_add(1, Ordering::Relaxed) + 1;
    c.peak_open.fetch_max(open, Ordering::Relaxed);

    let mut rng = Rng::new(plan.seed);
    let mut pacer = Pacer::new(cfg.send_rate, cfg.send_burst);
    // (due, order) → (peer, what); rendered when sent so that the timestamp is the send time.
    let mut schedule: BTreeMap<(Instant, u64), (String, Out)> = BTreeMap::new();
    let mut order = 0u64;
    let mut next_seq: HashMap<String, u32> = HashMap::new();
    let mut candidates_for: HashMap<String, u32> = HashMap::new();
    let join =
        serde_json::json!({"type":"join","room":plan.room_name,"name":plan.name}).to_string();
    pacer.take();
    let t_join = Instant::now();
    let mut alive = ws.send(Message::text(join)).await.is_ok();
    Counters::add(&c.frames_sent, 1);
    let mut leave_ack: Option<oneshot::Sender<bool>> = None;
    let mut commands_open = true;

    while alive {
        let now = Instant::now();
        let due = schedule
            .first_key_value()
            .map(|((at, _), _)| (*at).max(pacer.ready_at(now)));
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        if leave_ack.is_none() {
                            out.check.other(Problem::Connection, format!("the server closed the connection: {frame:?}"));
                        }
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        out.check.other(Problem::Connection, format!("connection failed: {e}"));
                        break;
                    }
                    None => {
                        out.check.other(Problem::Connection, "connection ended without a close".into());
                        break;
                    }
                };
                Counters::add(&c.frames_received, 1);
                let now = Instant::now();
                let Ok(m) = serde_json::from_str::<Incoming<'_>>(&text) else {
                    out.check.other(Problem::Unexpected, format!("not a message: {}", truncate(&text)));
                    continue;
                };
                let relay_kind = match m.kind {
                    "offer" => Some(Relay::Offer),
                    "answer" => Some(Relay::Answer),
                    "candidate" => Some(Relay::Candidate),
                    _ => None,
                };
                if let Some(kind) = relay_kind {
                    let from = m.from.unwrap_or("");
                    let marker = match kind {
                        Relay::Candidate => m.candidate.and_then(|c| candidate_marker(c.get())),
                        _ => m.sdp.and_then(|s| sdp_marker(s.get())),
                    };
                    let Some((seq, ts)) = marker else {
                        out.check.other(Problem::Unexpected, format!("{kind:?} from {from} without a load marker"));
                        continue;
                    };
                    Counters::add(&c.relays_received, 1);
                    out.relayed_by_type[kind as usize] += 1;
                    let now_us = (now - epoch).as_micros() as u64;
                    out.relay_ms.push(now_us.saturating_sub(ts) as f64 / 1000.0);
                    out.check.relay(kind, from, seq);
                    match kind {
                        Relay::Offer if seq == 1 => {
                            queue_call(&mut schedule, &mut order, &mut candidates_for, &mut rng, &cfg, &c, from, SdpKind::Answer, now);
                        }
                        Relay::Answer if out.setup_ms.is_none() && out.check.call_set_up() => {
                            out.setup_ms = Some(ms(now - t_join));
                            settle(&mut settled);
                        }
                        _ => {}
                    }
                    continue;
                }
                match m.kind {
                    "joined" => {
                        out.join_ms = Some(ms(now - t_join));
                        out.joined = true;
                        Counters::add(&c.joined, 1);
                        let peers = m.peers.unwrap_or_default();
                        out.check.joined(&peers);
                        for p in &peers {
                            queue_call(&mut schedule, &mut order, &mut candidates_for, &mut rng, &cfg, &c, p, SdpKind::Offer, now);
                        }
                        if peers.is_empty() {
                            settle(&mut settled);
                        }
                    }
                    "peer-joined" => out.check.peer_joined(m.name.unwrap_or("")),
                    "peer-left" => out.check.peer_left(m.name.unwrap_or("")),
                    // The host left and the oldest member took over
                    // (protocol v1.1); nothing to check against.
                    "host" => {}
                    "left" => {
                        out.check.left();
                        out.left_ok = true;
                        Counters::add(&c.left, 1);
                        if let Some(ack) = leave_ack.take() {
                            let _ = ack.send(true);
                        }
                        break;
                    }
                    "error" => {
                        Counters::add(&c.problems, 1);
                        out.check.error(m.code.unwrap_or("?"), m.message.as_deref().unwrap_or(""));
                    }
                    other => out.check.other(Problem::Unexpected, format!("a {other} message")),
                }
            }
            cmd = commands.recv(), if commands_open && leave_ack.is_none() => {
                match cmd {
                    Some(Command::Leave(ack)) => {
                        pacer.take();
                        Counters::add(&c.frames_sent, 1);
                        if ws.send(Message::text(r#"{"type":"leave"}"#)).await.is_err() {
                            let _ = ack.send(false);
                            break;
                        }
                        leave_ack = Some(ack);
                    }
                    None => commands_open = false,
                }
            }
            () = sleep_until(due.unwrap_or(now)), if due.is_some() => {
                // Send everything due (as far as the pacer allows), then flush once.
                let now = Instant::now();
                while let Some(entry) = schedule.first_entry() {
                    if entry.key().0 > now || pacer.ready_at(now) > now {
                        break;
                    }
                    let (to, what) = entry.remove();
                    pacer.take();
                    let seq = next_seq.entry(to.clone()).or_insert(0);
                    *seq += 1;
                    let ts = (Instant::now() - epoch).as_micros() as u64;
                    let frame = render(&to, what, *seq, ts, &pool, &mut rng);
                    *out.sent.entry(to).or_default() += 1;
                    Counters::add(&c.relays_sent, 1);
                    Counters::add(&c.frames_sent, 1);
                    c.pending.fetch_sub(1, Ordering::Relaxed);
                    if ws.feed(Message::text(frame)).await.is_err() {
                        alive = false;
                        break;
                    }
                }
                if alive && ws.flush().await.is_err() {
                    alive = false;
                }
                if !alive {
                    out.check.other(Problem::Connection, "sending failed".into());
                }
            }
        }
    }
    // Whatever was still scheduled will never be sent.
    c.pending
        .fetch_sub(schedule.len() as u64, Ordering::Relaxed);
    settle(&mut settled);
    if out.left_ok {
        // A clean close: send ours, wait (briefly) for the server's.
        let _ = timeout(Duration::from_secs(2), async {
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
    c.open.fetch_sub(1, Ordering::Relaxed);
    if let Some(ack) = leave_ack.take() {
        let _ = ack.send(false);
    }
    drop(ws);
    // Answer a leave command that arrives after the connection ended.
    finish_without_socket(out, &mut commands).await
}

/// Answers the coordinator's remaining commands for a member that has no
/// connection any more, then hands back its outcome.
async fn finish_without_socket(
    out: Outcome,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Outcome {
    while let Some(cmd) = commands.recv().await {
        match cmd {
            Command::Leave(ack) => {
                let _ = ack.send(out.left_ok);
            }
        }
    }
    out
}

/// Schedules an offer or answer to `peer`, then its candidates over the trickle.
#[allow(clippy::too_many_arguments)]
fn queue_call(
    schedule: &mut BTreeMap<(Instant, u64), (String, Out)>,
    order: &mut u64,
    candidates_for: &mut HashMap<String, u32>,
    rng: &mut Rng,
    cfg: &LoadArgs,
    c: &Counters,
    peer: &str,
    kind: SdpKind,
    now: Instant,
) {
    let n = rng.range(cfg.candidates.0, cfg.candidates.1) as u32;
    candidates_for.insert(peer.to_owned(), n);
    let mut push = |at: Instant, what: Out| {
        schedule.insert((at, *order), (peer.to_owned(), what));
        *order += 1;
    };
    push(now, Out::Sdp(kind));
    for i in 0..n {
        let at = now + cfg.trickle.mul_f64(f64::from(i + 1) / f64::from(n));
        push(at, Out::Candidate(i));
    }
    Counters::add(&c.pending, u64::from(n) + 1);
}

/// The wire text of one relayed message.
fn render(to: &str, what: Out, seq: u32, ts: u64, pool: &SdpPool, rng: &mut Rng) -> String {
    let to = serde_json::to_string(to).unwrap_or_default();
    match what {
        Out::Sdp(kind) => pool.message(kind, &to, seq, ts, rng),
        Out::Candidate(i) => format!(
            "{{\"type\":\"candidate\",\"to\":{to},\"candidate\":{}}}",
            candidate(i, seq, ts, rng)
        ),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn truncate(s: &str) -> String {
    s.chars().take(120).collect()
}

/// The progress line on stderr.
struct Progress {
    phase: Arc<std::sync::Mutex<&'static str>>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(c: Arc<Counters>, members: usize, epoch: Instant) -> Self {
        let phase = Arc::new(std::sync::Mutex::new("join"));
        let shown = phase.clone();
        let task = tokio::spawn(async move {
            loop {
                let p = *shown.lock().unwrap_or_else(|e| e.into_inner());
                let joined = Counters::get(&c.joined) as usize;
                let done = match p {
                    "leave" => Counters::get(&c.left) as usize,
                    _ => Counters::get(&c.settled) as usize,
                };
                let width = 30;
                let filled = (done * width)
                    .checked_div(members)
                    .unwrap_or(width)
                    .min(width);
                {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r\x1b[2K{p:5} [{}{}] {done}/{members} · joined {joined} · open {} · relayed {}/{} · problems {} · {:.1}s",
                        "#".repeat(filled),
                        ".".repeat(width - filled),
                        Counters::get(&c.open),
                        Counters::get(&c.relays_received),
                        Counters::get(&c.relays_sent),
                        Counters::get(&c.problems),
                        epoch.elapsed().as_secs_f64(),
                    );
                    let _ = err.flush();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { phase, task }
    }

    fn phase(&self, p: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    fn stop(self) {
        self.task.abort();
        eprint!("\r\x1b[2K");
    }
}

/// Whether to draw the progress line: on a terminal, not with `--json`.
pub fn want_progress(args: &LoadArgs) -> bool {
    !args.json && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

impl Report {
    /// The report as text for a person.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let pct = |p: &Percentiles| {
            format!(
                "{:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9}",
                p.p50, p.p90, p.p99, p.max, p.count
            )
        };
        let _ = writeln!(
            s,
            "huddle load: {} rooms × {} = {} members against {}",
            self.rooms, self.room_size, self.members, self.server
        );
        let _ = writeln!(
            s,
            "  connected {}/{}, joined {}/{}, calls set up {}/{}, connections held {} (peak {})",
            self.connected,
            self.members,
            self.joined,
            self.members,
            self.calls_set_up,
            self.calls_expected,
            self.connections_held,
            self.connections_peak
        );
        let _ = writeln!(
            s,
            "  phases: set-up {:.1} s, hold {:.1} s, leave {:.1} s, total {:.1} s",
            self.setup_s, self.hold_s, self.leave_s, self.total_s
        );
        let _ = writeln!(
            s,
            "\n  latency ms              p50       p90       p99       max     count"
        );
        let _ = writeln!(s, "  connect          {}", pct(&self.connect_ms));
        let _ = writeln!(s, "  join             {}", pct(&self.join_ms));
        let _ = writeln!(s, "  call set-up      {}", pct(&self.call_setup_ms));
        let _ = writeln!(s, "  relay            {}", pct(&self.relay_ms));
        let _ = writeln!(
            s,
            "\n  relayed {} sent, {} received ({} offers, {} answers, {} candidates)",
            self.relayed_sent,
            self.relayed_received.values().sum::<u64>(),
            self.relayed_received["offer"],
            self.relayed_received["answer"],
            self.relayed_received["candidate"]
        );
        let _ = writeln!(
            s,
            "  {:.0} relayed msgs/s, {:.0} frames/s (sent + received) during set-up",
            self.relayed_per_s, self.frames_per_s
        );
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(u) = &self.server_usage {
            let _ = writeln!(
                s,
                "  server: {:.0}% of a core during set-up, {:.2} µs CPU per relayed message; RSS {:.1} → {:.1} MiB, {:.1} KiB per connection with calls set up",
                u.cpu_pct,
                u.cpu_us_per_relay,
                u.rss_before_kib as f64 / 1024.0,
                u.rss_held_kib as f64 / 1024.0,
                u.kib_per_conn
            );
        }
        if let Some(pct) = self.client_cpu_pct {
            let _ = writeln!(s, "  load generator: {pct:.0}% of a core during set-up");
        }
        let _ = writeln!(s, "  errors by code: {errors}");
        let problems: Vec<String> = self
            .problems
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(s, "  problems: {}", problems.join(", "));
        for f in &self.findings {
            let _ = writeln!(s, "    {f}");
        }
        let total: u64 = self.problems.values().sum();
        if total as usize > self.findings.len() {
            let _ = writeln!(s, "    … and {} more", total as usize - self.findings.len());
        }
        let _ = writeln!(
            s,
            "\n  result: {}",
            if self.ok {
                "OK, nothing lost"
            } else {
                "FAILED"
            }
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range("8-12"), Ok((8, 12)));
        assert_eq!(range("5"), Ok((5, 5)));
        assert!(range("12-8").is_err());
    }

    #[test]
    fn pacer_allows_the_burst_then_the_rate() {
        let mut p = Pacer::new(10, 3);
        let now = p.last;
        for _ in 0..3 {
            assert_eq!(p.ready_at(now), now);
            p.take();
        }
        let next = p.ready_at(now);
        assert!(next > now && next <= now + Duration::from_millis(101));
    }
}
