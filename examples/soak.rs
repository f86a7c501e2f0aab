//! The soak test's driver (run by `scripts/soak.sh`, not by CI): holds a
//! population of signaling connections against a running huddle server for
//! a long time, with churn of every kind, and reports the server's memory
//! and CPU every `--report-every`.
//!
//! Every member is a task that keeps its place in a room of `--room-size`.
//! It sets up its calls as a browser does whenever it joins (an offer to
//! every member already there, who answer), so every connection carries
//! SDP-sized messages from its first seconds; then, at random times, it
//! relays an offer or a candidate to a room mate, or churns: leaves and joins again, closes cleanly and comes back on a new
//! connection, drops its TCP connection without a close and resumes with its
//! token inside the grace period, drops and stays away past the grace period
//! (its room mates get `peer-left`, and what they sent it meanwhile is
//! queued and then dropped), or moves to a room of its own and back.
//! Connections come from several loopback source addresses so that churn
//! does not exhaust one address's ephemeral ports.
//!
//! At the end it compares the server's RSS with its RSS after the warm-up
//! and exits non-zero when it grew by more than `--max-growth-pct` or when
//! the server refused anything it should not have.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Soak-tests a huddle server on loopback.
#[derive(Debug, Parser)]
struct Args {
    /// The server's address (plain ws:// on loopback).
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// The server's pid, for its RSS and CPU.
    #[arg(long)]
    server_pid: u32,
    /// Connections to hold.
    #[arg(long, default_value_t = 19_000)]
    connections: usize,
    /// Members per room.
    #[arg(long, default_value_t = 5)]
    room_size: usize,
    /// Joins per second while the population builds up.
    #[arg(long, default_value_t = 600.0)]
    join_rate: f64,
    /// Churn and relays before the reference RSS is taken.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// How long to soak after the warm-up.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Churn actions per second, over all members.
    #[arg(long, default_value_t = 40.0)]
    churn_rate: f64,
    /// Relayed messages per second, over all members.
    #[arg(long, default_value_t = 400.0)]
    relay_rate: f64,
    /// The server's --reconnect-grace (drops that stay away wait past it).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// Interval between reports.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    report_every: Duration,
    /// Loopback source addresses to spread connections over (127.0.0.1…).
    #[arg(long, default_value_t = 4)]
    source_ips: u8,
    /// Largest RSS growth from the warm-up to the end that passes, in %.
    #[arg(long, default_value_t = 5.0)]
    max_growth_pct: f64,
}

/// Counters shared by every member.
#[derive(Default)]
struct Counts {
    open: AtomicUsize,
    joins: AtomicU64,
    resumes: AtomicU64,
    leaves: AtomicU64,
    closes: AtomicU64,
    drops: AtomicU64,
    long_drops: AtomicU64,
    moves: AtomicU64,
    relays_sent: AtomicU64,
    relays_received: AtomicU64,
    peer_left: AtomicU64,
    connect_failures: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Connections the server cut, by what the client saw.
    cuts: Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    fn cut(&self, e: &anyhow::Error) {
        *self
            .cuts
            .lock()
            .unwrap()
            .entry(format!("{e:#}"))
            .or_default() += 1;
    }

    fn error(&self, code: &str) {
        *self
            .errors
            .lock()
            .unwrap()
            .entry(code.to_owned())
            .or_default() += 1;
    }
}

/// A small xorshift generator per member (no shared state, no locks).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// An exponentially distributed wait with this mean.
    fn exp(&mut self, mean: Duration) -> Duration {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        mean.mul_f64(-(1.0 - u).ln()).min(mean * 20)
    }
}

struct Shared {
    args: Args,
    counts: Counts,
    stop: AtomicBool,
}

/// One member's session: its socket, room, name, token and room mates.
struct Session {
    ws: Ws,
    token: String,
    peers: Vec<String>,
}

async fn connect(sh: &Shared, source: IpAddr) -> anyhow::Result<Ws> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source, 0))?;
    let tcp = sock.connect(sh.args.server).await?;
    tcp.set_nodelay(true)?;
    let url = format!("ws://{}/ws", sh.args.server);
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
    Ok(ws)
}

/// Sends a join (or a resume) and waits for `joined`.
async fn join(
    sh: &Shared,
    ws: &mut Ws,
    room: &str,
    name: &str,
    token: Option<&str>,
) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let mut msg = json!({"type":"join","room":room,"name":name});
    if let Some(t) = token {
        msg["token"] = json!(t);
    }
    ws.send(Message::text(msg.to_string())).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no joined within 30 s")?
            .context("closed while joining")??;
        let Message::Text(text) = frame else { continue };
        let v: Value = serde_json::from_str(&text)?;
        match v["type"].as_str() {
            Some("joined") => {
                let peers = v["peers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if v["resumed"] == true {
                    sh.counts.resumes.fetch_add(1, Ordering::Relaxed);
                } else {
                    sh.counts.joins.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(Some((
                    v["token"].as_str().unwrap_or_default().to_owned(),
                    peers,
                )));
            }
            // A late answer to an earlier relay (its addressee just left).
            Some("error") if v["code"] == "unknown-peer" => {}
            Some("error") => {
                let code = v["code"].as_str().unwrap_or("?");
                if code == "name-taken" && token.is_none() {
                    // The old place is still held (a long drop whose grace
                    // has not quite ended): the caller retries.
                    return Ok(None);
                }
                sh.counts.error(code);
                bail!("join refused: {code}");
            }
            _ => {}
        }
    }
}

/// Connects and joins, retrying while the name is still held.
async fn enter(
    sh: &Shared,
    source: IpAddr,
    room: &str,
    name: &str,
    token: Option<&str>,
) -> anyhow::Result<Session> {
    for _ in 0..60 {
        let mut ws = match connect(sh, source).await {
            Ok(ws) => ws,
            Err(e) => {
                sh.counts.connect_failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                if sh.stop.load(Ordering::Relaxed) {
                    return Err(e);
                }
                continue;
            }
        };
        if let Some((token, peers)) = join(sh, &mut ws, room, name, token).await? {
            sh.counts.open.fetch_add(1, Ordering::Relaxed);
            return Ok(Session { ws, token, peers });
        }
        let _ = ws.close(None).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("{name} could not get back into {room}")
}

/// Offers a call to every room mate, as a joiner does.
async fn set_up_calls(sh: &Shared, s: &mut Session, sdp: &str) -> anyhow::Result<()> {
    for to in &s.peers {
        let msg = json!({"type":"offer","to":to,"sdp":sdp});
        s.ws.send(Message::text(msg.to_string())).await?;
        sh.counts.relays_sent.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Reads what arrives until `until`, keeping the room mates up to date and
/// answering offers.
async fn serve_until(
    sh: &Shared,
    s: &mut Session,
    sdp: &str,
    until: tokio::time::Instant,
) -> anyhow::Result<()> {
    loop {
        let frame = match tokio::time::timeout_at(until, s.ws.next()).await {
            Err(_) => return Ok(()),
            Ok(None) => bail!("server closed the connection"),
            Ok(Some(f)) => f?,
        };
        let Message::Text(text) = frame else { continue };
        let v: Value = serde_json::from_str(&text)?;
        match v["type"].as_str() {
            Some("peer-joined") => s.peers.extend(v["name"].as_str().map(str::to_owned)),
            Some("peer-left") => {
                sh.counts.peer_left.fetch_add(1, Ordering::Relaxed);
                s.peers.retain(|p| Some(p.as_str()) != v["name"].as_str());
            }
            Some(ty @ ("offer" | "answer" | "candidate")) => {
                sh.counts.relays_received.fetch_add(1, Ordering::Relaxed);
                if ty == "offer"
                    && let Some(from) = v["from"].as_str()
                {
                    let msg = json!({"type":"answer","to":from,"sdp":sdp});
                    s.ws.send(Message::text(msg.to_string())).await?;
                    sh.counts.relays_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some("error") => {
                let code = v["code"].as_str().unwrap_or("?");
                // A room mate may have just left: not the server's fault.
                if code != "unknown-peer" {
                    sh.counts.error(code);
                }
            }
            _ => {}
        }
    }
}

/// Waits until a message arrives of this type (or the deadline).
async fn wait_for(s: &mut Session, ty: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, s.ws.next())
            .await
            .with_context(|| format!("no {ty} within 10 s"))?
            .context("closed")??;
        if let Message::Text(text) = frame
            && serde_json::from_str::<Value>(&text)?["type"] == ty
        {
            return Ok(());
        }
    }
}

async fn member(sh: Arc<Shared>, i: usize, start: tokio::time::Instant) -> anyhow::Result<()> {
    let a = &sh.args;
    let room = format!("soak-{}", i / a.room_size);
    let name = format!("m{i}");
    let source = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        1 + (i % usize::from(a.source_ips.max(1))) as u8,
    ));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / a.join_rate)).await;
    let sdp = "v=0 ".repeat(64 + rng.below(1000) as usize);
    let mut s = enter(&sh, source, &room, &name, None).await?;
    set_up_calls(&sh, &mut s, &sdp).await?;
    let members = a.connections as f64;
    let relay_mean = Duration::from_secs_f64(members / a.relay_rate);
    let churn_mean = Duration::from_secs_f64(members / a.churn_rate);
    let mut next_relay = tokio::time::Instant::now() + rng.exp(relay_mean);
    let mut next_churn = tokio::time::Instant::now() + rng.exp(churn_mean);
    while !sh.stop.load(Ordering::Relaxed) {
        let until = next_relay
            .min(next_churn)
            .min(tokio::time::Instant::now() + Duration::from_secs(1));
        let mut result = serve_until(&sh, &mut s, &sdp, until).await;
        let now = tokio::time::Instant::now();
        if now >= next_relay {
            next_relay = now + rng.exp(relay_mean);
            if !s.peers.is_empty() {
                let to = &s.peers[rng.below(s.peers.len() as u64) as usize];
                let msg = if rng.below(3) == 0 {
                    json!({"type":"offer","to":to,"sdp":sdp})
                } else {
                    json!({"type":"candidate","to":to,"candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0"}})
                };
                if result.is_ok() {
                    result =
                        s.ws.send(Message::text(msg.to_string()))
                            .await
                            .map_err(Into::into);
                    sh.counts.relays_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Err(e) = result {
            // The server cut this connection (it looked lost or slow, e.g.
            // while this process was starved of CPU): come back with the
            // token, as a browser would, and count it.
            if sh.stop.load(Ordering::Relaxed) {
                break;
            }
            sh.counts.open.fetch_sub(1, Ordering::Relaxed);
            sh.counts.cut(&e);
            let token = s.token.clone();
            s = enter(&sh, source, &room, &name, Some(&token)).await?;
            continue;
        }
        if now < next_churn {
            continue;
        }
        next_churn = now + rng.exp(churn_mean);
        match rng.below(10) {
            // Leave and join again on the same connection.
            0 | 1 => {
                s.ws.send(Message::text(r#"{"type":"leave"}"#)).await?;
                wait_for(&mut s, "left").await?;
                sh.counts.leaves.fetch_add(1, Ordering::Relaxed);
                let Some((token, peers)) = join(&sh, &mut s.ws, &room, &name, None).await? else {
                    bail!("{name}: name taken after leaving");
                };
                (s.token, s.peers) = (token, peers);
                set_up_calls(&sh, &mut s, &sdp).await?;
            }
            // A clean close, then a fresh connection.
            2 | 3 => {
                s.ws.close(None).await?;
                sh.counts.open.fetch_sub(1, Ordering::Relaxed);
                sh.counts.closes.fetch_add(1, Ordering::Relaxed);
                s = enter(&sh, source, &room, &name, None).await?;
                set_up_calls(&sh, &mut s, &sdp).await?;
            }
            // The TCP connection vanishes; resume within the grace period.
            4..=6 => {
                drop(s.ws);
                sh.counts.open.fetch_sub(1, Ordering::Relaxed);
                sh.counts.drops.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200 + rng.below(3000))).await;
                let token = s.token.clone();
                s = enter(&sh, source, &room, &name, Some(&token)).await?;
            }
            // Gone past the grace period; back later as a new member.
            7 => {
                drop(s.ws);
                sh.counts.open.fetch_sub(1, Ordering::Relaxed);
                sh.counts.long_drops.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(a.grace + Duration::from_millis(500 + rng.below(3000))).await;
                s = enter(&sh, source, &room, &name, None).await?;
                set_up_calls(&sh, &mut s, &sdp).await?;
            }
            // A room of its own for a moment, then back.
            _ => {
                let away = format!("{room}-away-{i}");
                let Some(_) = join(&sh, &mut s.ws, &away, &name, None).await? else {
                    bail!("{name}: taken in its own room");
                };
                sh.counts.moves.fetch_add(1, Ordering::Relaxed);
                let Some((token, peers)) = join(&sh, &mut s.ws, &room, &name, None).await? else {
                    bail!("{name}: name taken on the way back");
                };
                (s.token, s.peers) = (token, peers);
                set_up_calls(&sh, &mut s, &sdp).await?;
            }
        }
    }
    let _ = s.ws.close(None).await;
    sh.counts.open.fetch_sub(1, Ordering::Relaxed);
    Ok(())
}

/// (RSS in KiB, CPU seconds used) of a process, from /proc.
fn usage(pid: u32) -> Option<(u64, f64)> {
    let pid = pid.to_string();
    Some((
        huddle::load::rss_kib(&pid)?,
        huddle::load::cpu_seconds(&pid)?,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    if (limit as usize) < args.connections + 512 {
        bail!(
            "the open-file limit ({limit}) is too low for {} connections",
            args.connections
        );
    }
    let pid = args.server_pid;
    let total = args.warmup
        + args.duration
        + Duration::from_secs_f64(args.connections as f64 / args.join_rate);
    let report_every = args.report_every;
    let max_growth = args.max_growth_pct;
    let population = args.connections;
    let sh = Arc::new(Shared {
        args,
        counts: Counts::default(),
        stop: AtomicBool::new(false),
    });
    let start = tokio::time::Instant::now();
    let wall = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..population {
        tasks.spawn(member(sh.clone(), i, start));
    }
    let failures = Arc::new(AtomicU64::new(0));
    let reaper = {
        let failures = failures.clone();
        tokio::spawn(async move {
            let mut first = true;
            while let Some(r) = tasks.join_next().await {
                if let Ok(Err(e)) = r {
                    failures.fetch_add(1, Ordering::Relaxed);
                    if first {
                        eprintln!("soak: a member failed: {e:#}");
                        first = false;
                    }
                }
            }
        })
    };
    println!(
        "{:>6} {:>7} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>9} {:>9} {:>6}",
        "t_s",
        "open",
        "rss_mib",
        "cpu_%",
        "joins",
        "resumes",
        "leaves",
        "closes",
        "drops",
        "moves",
        "relays",
        "received",
        "errors"
    );
    let mut last_cpu = usage(pid).map_or(0.0, |u| u.1);
    let mut last_t = wall.elapsed().as_secs_f64();
    let mut reference: Option<u64> = None;
    let built = Duration::from_secs_f64(population as f64 / sh.args.join_rate);
    let mut tick = tokio::time::interval_at(start + report_every, report_every);
    let rss_end = loop {
        tick.tick().await;
        let t = wall.elapsed().as_secs_f64();
        let Some((rss, cpu)) = usage(pid) else {
            bail!("the server (pid {pid}) is gone");
        };
        let cpu_pct = (cpu - last_cpu) / (t - last_t) * 100.0;
        (last_cpu, last_t) = (cpu, t);
        let c = &sh.counts;
        let errors: u64 = c.errors.lock().unwrap().values().sum();
        println!(
            "{:>6.0} {:>7} {:>9.1} {:>7.1} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>9} {:>9} {:>6}",
            t,
            c.open.load(Ordering::Relaxed),
            rss as f64 / 1024.0,
            cpu_pct,
            c.joins.load(Ordering::Relaxed),
            c.resumes.load(Ordering::Relaxed),
            c.leaves.load(Ordering::Relaxed),
            c.closes.load(Ordering::Relaxed),
            c.drops.load(Ordering::Relaxed) + c.long_drops.load(Ordering::Relaxed),
            c.moves.load(Ordering::Relaxed),
            c.relays_sent.load(Ordering::Relaxed),
            c.relays_received.load(Ordering::Relaxed),
            errors,
        );
        let elapsed = start.elapsed();
        if reference.is_none() && elapsed >= built + sh.args.warmup {
            println!(
                "# warm-up done: reference RSS {:.1} MiB",
                rss as f64 / 1024.0
            );
            reference = Some(rss);
        }
        if elapsed >= total {
            break rss;
        }
    };
    sh.stop.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(60), reaper).await;
    let c = &sh.counts;
    let reference = reference.unwrap_or(rss_end);
    let growth = (rss_end as f64 - reference as f64) / reference as f64 * 100.0;
    println!(
        "# end: RSS {:.1} MiB, {:+.2} % from the warm-up's {:.1} MiB (limit {max_growth} %)",
        rss_end as f64 / 1024.0,
        growth,
        reference as f64 / 1024.0
    );
    println!(
        "# totals: {} joins, {} resumes, {} leaves, {} closes, {} drops ({} past the grace), {} moves, {} relays sent, {} received, {} peer-left, {} connect retries",
        c.joins.load(Ordering::Relaxed),
        c.resumes.load(Ordering::Relaxed),
        c.leaves.load(Ordering::Relaxed),
        c.closes.load(Ordering::Relaxed),
        c.drops.load(Ordering::Relaxed) + c.long_drops.load(Ordering::Relaxed),
        c.long_drops.load(Ordering::Relaxed),
        c.moves.load(Ordering::Relaxed),
        c.relays_sent.load(Ordering::Relaxed),
        c.relays_received.load(Ordering::Relaxed),
        c.peer_left.load(Ordering::Relaxed),
        c.connect_failures.load(Ordering::Relaxed),
    );
    let errors = c.errors.lock().unwrap().clone();
    let failed = failures.load(Ordering::Relaxed);
    let cuts = c.cuts.lock().unwrap().clone();
    println!(
        "# errors from the server: {errors:?}; members that failed: {failed}; connections the server cut (resumed): {cuts:?}"
    );
    if growth > max_growth || !errors.is_empty() || failed > 0 {
        bail!("soak failed");
    }
    Ok(())
}
