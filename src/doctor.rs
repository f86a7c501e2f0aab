//! `huddle doctor --server URL`: checks from a terminal what a call needs,
//! step by step, the way a browser would meet it — the server's name and
//! TLS certificate, `/healthz`, the signaling socket (join a throwaway room,
//! leave), then every STUN/TURN URL the server hands out: reachability,
//! the server-reflexive address (through NAT or not), a TURN allocation
//! with the handed-out credentials, and a round trip of data through the
//! relay between two allocations (released at the end).
//!
//! Every step prints one line, `ok`, `warn` or `FAIL`, what was found and,
//! when something is wrong, what to do. The verdict ([`verdict`], pure)
//! decides the exit status: 0 when a call can be set up (signaling works
//! and at least one relay round trip did, or no TURN is configured at
//! all), 1 otherwise. Each step is bounded by `--timeout`.
//!
//! The pieces: [`target`] parses the addresses, [`tls`] verifies and
//! explains certificates, [`http`] makes the GETs, [`turn_client`] speaks
//! STUN/TURN over UDP, TCP and TLS.

pub mod http;
pub mod target;
pub mod tls;
pub mod turn_client;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use crate::bot::signal::ServerMsg;
use target::{IceEntry, IceUrl, Target, Transport};
use tls::Trust;
use turn_client::{AllocateError, Allocation, Client, Stage, TurnError, Wire, code_text};

/// STUN/TURN URLs checked at most; a server that hands out more gets a
/// warning for the rest (each check costs a few round trips).
pub const MAX_ICE_URLS: usize = 16;
/// Server addresses tried at most for the TCP connection.
pub const MAX_ADDRESSES: usize = 4;
/// Round trips through each relay; the report gives the fastest.
pub const RELAY_PINGS: usize = 3;
/// The name the doctor joins with.
pub const DOCTOR_NAME: &str = "doctor";
/// The largest signaling message the doctor reads.
const MAX_WS_MESSAGE: usize = 1 << 20;

/// `huddle doctor`'s settings.
#[derive(Debug, Clone, clap::Args)]
#[command(long_about)]
pub struct DoctorArgs {
    /// The huddle server: the address users open (https://meet.example.org,
    /// http://localhost:8080), its socket URL (wss://…/ws), or a whole
    /// invitation link (…/r/ROOM?access=TOKEN).
    #[arg(long, env = "HUDDLE_DOCTOR_SERVER", value_name = "URL", value_parser = server_url)]
    pub server: Target,

    /// The room to join (default: a throwaway doctor-<random>). Members of
    /// that room see the doctor come and go.
    #[arg(long, value_parser = room_name)]
    pub room: Option<String>,

    /// An operator token (from `huddle token`), for servers run with
    /// --auth-secret; a whole invitation link works too. Its room and name
    /// are used when it names them.
    #[arg(long, env = "HUDDLE_DOCTOR_ACCESS", value_name = "TOKEN", hide_env_values = true,
          value_parser = crate::bot::access_token)]
    pub access: Option<String>,

    /// Also trust the certificates in this PEM file (a private CA, or a
    /// `huddle --tls-self-signed` server's DATA_DIR/self-signed-cert.pem),
    /// for https:// and turns:.
    #[arg(long = "ca-cert", visible_alias = "ca-file", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,

    /// Accept any certificate (still reporting what is wrong with it).
    #[arg(long)]
    pub insecure: bool,

    /// How long each step may take.
    #[arg(long, default_value = "5s", value_parser = positive_duration)]
    pub timeout: Duration,
}

fn server_url(s: &str) -> Result<Target, String> {
    Target::parse(s).map_err(|e| e.to_string())
}

fn room_name(s: &str) -> Result<String, String> {
    crate::protocol::validate_room(s).map_err(|e| e.message.to_string())?;
    Ok(s.to_owned())
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (try 3s or 500ms)"))?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but something will bite some members.
    Warn,
    /// Broken.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that `{:<4}` lines the steps up.
        f.pad(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        })
    }
}

/// One printed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// How it went.
    pub status: Status,
    /// Which step (`tls`, `signaling`, `turn:h:3478?transport=udp relay`…).
    pub step: String,
    /// What was found.
    pub found: String,
    /// What to do, when something is wrong.
    pub advice: Option<String>,
}

impl Check {
    fn new(status: Status, step: impl Into<String>, found: impl Into<String>) -> Self {
        Self {
            status,
            step: step.into(),
            found: found.into(),
            advice: None,
        }
    }

    fn advice(mut self, advice: impl Into<String>) -> Self {
        self.advice = Some(advice.into());
        self
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Steps and findings quote what the server sent (URLs, error
        // messages): control characters are shown as U+FFFD so a hostile
        // server cannot move the cursor or recolour the terminal.
        write!(
            f,
            "{:<4} {}: {}",
            self.status,
            printable(&self.step),
            printable(&self.found)
        )?;
        if let Some(advice) = &self.advice {
            write!(f, " → {}", printable(advice))?;
        }
        Ok(())
    }
}

/// `s` with control characters (C0, DEL, C1) replaced by U+FFFD.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// Whether signaling works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Signaling {
    /// Not reached.
    #[default]
    Unchecked,
    /// Joined and left.
    Works,
    /// The socket works, but the join needs an invitation the doctor lacks
    /// (or was given a bad one).
    InviteOnly,
    /// Browsers cannot signal.
    Broken,
}

/// What the verdict is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Signaling's state.
    pub signaling: Signaling,
    /// Whether the ICE servers could be learned (from `joined` or
    /// `GET /ice-servers`).
    pub ice_known: bool,
    /// TURN URLs checked.
    pub turn_urls: usize,
    /// Of those, how many carried data both ways through the relay.
    pub relays_ok: usize,
    /// `FAIL` lines before the verdict.
    pub failures: usize,
}

/// The summary line and whether a call can be set up (exit 0).
pub fn verdict(f: &Facts) -> (Check, bool) {
    let step = "verdict";
    match f.signaling {
        Signaling::Unchecked | Signaling::Broken => {
            return (
                Check::new(
                    Status::Fail,
                    step,
                    "no call can be set up: browsers cannot reach signaling",
                )
                .advice("fix the first FAIL above"),
                false,
            );
        }
        Signaling::InviteOnly if !f.ice_known => {
            return (
                Check::new(
                    Status::Fail,
                    step,
                    "the relay could not be checked without a valid invitation",
                )
                .advice(
                    "pass --access TOKEN (huddle token --room ROOM) or a whole invitation link",
                ),
                false,
            );
        }
        _ => {}
    }
    if !f.ice_known {
        return (
            Check::new(
                Status::Fail,
                step,
                "the relay could not be checked: the server's ICE servers are unknown",
            )
            .advice("see the ice-servers line above"),
            false,
        );
    }
    if f.turn_urls == 0 {
        return (
            Check::new(
                Status::Warn,
                step,
                "calls can be set up between members who reach each other directly or through \
                 simple NATs, but no TURN relay is configured: members behind strict NATs or \
                 firewalls will not connect",
            )
            .advice("add a relay: --turn-listen (the embedded TURN server) or --turn-url with --turn-secret (coturn)"),
            true,
        );
    }
    if f.relays_ok == 0 {
        return (
            Check::new(
                Status::Fail,
                step,
                format!(
                    "no round trip through the relay worked ({} TURN URL{} checked): members who \
                     cannot reach each other directly will not connect",
                    f.turn_urls,
                    if f.turn_urls == 1 { "" } else { "s" }
                ),
            )
            .advice("fix the TURN failures above"),
            false,
        );
    }
    let relays = format!("{} of {} TURN URLs relay", f.relays_ok, f.turn_urls);
    if f.failures == 0 {
        (
            Check::new(
                Status::Ok,
                step,
                format!("a call can be set up (signaling works; {relays})"),
            ),
            true,
        )
    } else {
        (
            Check::new(
                Status::Warn,
                step,
                format!(
                    "a call can be set up (signaling works; {relays}), but {} check{} failed",
                    f.failures,
                    if f.failures == 1 { "" } else { "s" }
                ),
            )
            .advice("fix the FAIL lines above for the members who need them"),
            true,
        )
    }
}

/// What the doctor found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every line, the verdict last.
    pub checks: Vec<Check>,
    /// What the verdict was made of.
    pub facts: Facts,
    /// Whether a call can be set up (exit status 0).
    pub call_possible: bool,
}

/// Runs every check, handing each line to `out` as soon as it is known.
/// Errors are bad settings (an unreadable `--ca-cert`), before any check.
pub async fn run(args: &DoctorArgs, out: &mut dyn FnMut(&Check)) -> Result<Report, tls::CaError> {
    let trust = Trust::new(args.ca_cert.as_deref(), args.insecure)?;
    let mut target = args.server.clone();
    if args.access.is_some() {
        target.access.clone_from(&args.access);
    }
    let claims = target
        .access
        .as_deref()
        .map(token_claims)
        .unwrap_or_default();
    let room = args
        .room
        .clone()
        .or_else(|| target.room.clone())
        .or(claims.room)
        .unwrap_or_else(|| format!("doctor-{}", random_hex(4)));
    let mut d = Doctor {
        step: args.timeout,
        target,
        trust,
        room,
        name: claims.name.unwrap_or_else(|| DOCTOR_NAME.to_owned()),
        out,
        checks: Vec::new(),
        facts: Facts::default(),
        addr: None,
        seen: Seen::default(),
    };
    d.go().await;
    let (line, call_possible) = verdict(&d.facts);
    d.report(line);
    Ok(Report {
        checks: d.checks,
        facts: d.facts,
        call_possible,
    })
}

/// The room and name an operator token names (read, not verified: the
/// server checks it).
#[derive(Debug, Default, PartialEq, Eq)]
struct TokenClaims {
    room: Option<String>,
    name: Option<String>,
}

fn token_claims(jwt: &str) -> TokenClaims {
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return TokenClaims::default();
    };
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return TokenClaims::default();
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    TokenClaims {
        room: text("room").filter(|r| r != crate::access::ANY_ROOM),
        name: text("name"),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The candidates a browser on this machine would gather.
#[derive(Debug, Default)]
struct Seen {
    /// Local addresses (host candidates).
    direct: Vec<std::net::IpAddr>,
    /// Server-reflexive addresses that differ from the local ones.
    nat: Vec<SocketAddr>,
    /// Relayed addresses, with the transport used to reach the relay.
    relay: Vec<(SocketAddr, Transport)>,
}

struct Doctor<'a> {
    step: Duration,
    target: Target,
    trust: Trust,
    room: String,
    name: String,
    out: &'a mut dyn FnMut(&Check),
    checks: Vec<Check>,
    facts: Facts,
    /// The server address TCP reached.
    addr: Option<SocketAddr>,
    seen: Seen,
}

/// What a failed step says: (found, advice).
type Explained = (String, String);

impl Doctor<'_> {
    fn report(&mut self, check: Check) {
        (self.out)(&check);
        if check.status == Status::Fail {
            self.facts.failures += 1;
        }
        self.checks.push(check);
    }

    fn ms(d: Duration) -> String {
        let ms = d.as_secs_f64() * 1000.0;
        if ms < 10.0 {
            format!("{ms:.1} ms")
        } else {
            format!("{ms:.0} ms")
        }
    }

    async fn go(&mut self) {
        let t = &self.target;
        let found = format!(
            "{} ({}), signaling at {}",
            t.url("/"),
            if t.tls { "HTTPS" } else { "plain HTTP" },
            t.ws_url()
        );
        self.report(Check::new(Status::Ok, "url", found));
        let Some(addrs) = self.dns().await else {
            return;
        };
        let Some(tcp) = self.tcp(&addrs).await else {
            return;
        };
        let stream: Box<dyn turn_client::Stream> = if self.target.tls {
            let Some(tls) = self.tls(tcp).await else {
                return;
            };
            Box::new(tls)
        } else {
            self.plain_http_note();
            Box::new(tcp)
        };
        if !self.healthz(stream).await {
            return;
        }
        let ice = match self.signaling().await {
            Some(ice) => Some(ice),
            None => self.ice_servers_http().await,
        };
        if let Some(ice) = ice {
            self.facts.ice_known = true;
            if self.ice(&ice).await {
                self.candidates();
            }
        }
    }

    async fn dns(&mut self) -> Option<Vec<SocketAddr>> {
        let port = self.target.port;
        if let Some(ip) = self.target.ip {
            let found = format!("{ip} is an address (no lookup needed)");
            self.report(Check::new(Status::Ok, "dns", found));
            return Some(vec![SocketAddr::new(ip, port)]);
        }
        let host = self.target.host.clone();
        let started = Instant::now();
        match tokio::time::timeout(self.step, tokio::net::lookup_host((host.as_str(), port))).await
        {
            Ok(Ok(addrs)) => {
                let mut addrs: Vec<SocketAddr> = addrs.collect();
                addrs.dedup();
                if addrs.is_empty() {
                    self.report(
                        Check::new(Status::Fail, "dns", format!("{host} has no address"))
                            .advice("add an A (IPv4) or AAAA (IPv6) record for it"),
                    );
                    return None;
                }
                let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
                let found = format!(
                    "{host} → {} in {}",
                    shown.join(", "),
                    Self::ms(started.elapsed())
                );
                self.report(Check::new(Status::Ok, "dns", found));
                Some(addrs)
            }
            Ok(Err(e)) => {
                self.report(
                    Check::new(Status::Fail, "dns", format!("cannot resolve {host}: {e}"))
                        .advice("check the name (a typo?), its A/AAAA records, and this machine's DNS resolver"),
                );
                None
            }
            Err(_) => {
                self.report(
                    Check::new(
                        Status::Fail,
                        "dns",
                        format!("no answer for {host} within {:?}", self.step),
                    )
                    .advice("this machine's DNS resolver does not answer: check /etc/resolv.conf"),
                );
                None
            }
        }
    }

    async fn tcp(&mut self, addrs: &[SocketAddr]) -> Option<TcpStream> {
        let mut failed = Vec::new();
        let mut last: Option<Explained> = None;
        for &addr in addrs.iter().take(MAX_ADDRESSES) {
            let started = Instant::now();
            match connect_tcp(addr, self.step).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let mut found =
                        format!("connected to {addr} in {}", Self::ms(started.elapsed()));
                    if !failed.is_empty() {
                        found.push_str(&format!(" (not to {})", failed.join(", ")));
                    }
                    self.addr = Some(addr);
                    self.report(Check::new(Status::Ok, "tcp", found));
                    return Some(s);
                }
                Err(e) => {
                    failed.push(addr.to_string());
                    last = Some(explain_connect(&e, addr, self.step, "huddle"));
                }
            }
        }
        let (found, advice) = last.unwrap_or_default();
        let found = if failed.len() > 1 {
            format!("{found} (tried {})", failed.join(", "))
        } else {
            found
        };
        self.report(Check::new(Status::Fail, "tcp", found).advice(advice));
        None
    }

    async fn tls(&mut self, tcp: TcpStream) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
        let host = self.target.host.clone();
        let started = Instant::now();
        match tokio::time::timeout(self.step, self.trust.handshake(tcp, &host)).await {
            Err(_) => {
                self.report(
                    Check::new(
                        Status::Fail,
                        "tls",
                        format!("no TLS handshake within {:?}", self.step),
                    )
                    .advice(
                        "this port may not serve TLS (try http://), or the server is overloaded",
                    ),
                );
                None
            }
            Ok(Err(e)) => {
                let (found, advice) = tls::explain(&e, &host);
                self.report(Check::new(Status::Fail, "tls", found).advice(advice));
                None
            }
            Ok(Ok(hs)) => {
                let cert = hs.cert.as_ref().map(|c| c.describe(tls::unix_now()));
                let mut found = format!("{} in {}", hs.version, Self::ms(started.elapsed()));
                if let Some((text, _)) = &cert {
                    found.push_str(&format!("; {text}"));
                }
                let check = if let Some(e) = &hs.overlooked {
                    let (what, _) = tls::explain_certificate(e, &host);
                    Check::new(
                        Status::Warn,
                        "tls",
                        format!("{found}; accepted only because of --insecure: {what}"),
                    )
                    .advice("browsers will refuse it or warn about it the same way")
                } else if cert.as_ref().is_some_and(|(_, soon)| *soon) {
                    Check::new(Status::Warn, "tls", format!("{found}; it expires soon"))
                        .advice("renew the certificate (certbot renew) and restart huddle")
                } else {
                    Check::new(Status::Ok, "tls", found)
                };
                self.report(check);
                Some(hs.stream)
            }
        }
    }

    fn plain_http_note(&mut self) {
        let loopback =
            self.target.host == "localhost" || self.target.ip.is_some_and(|ip| ip.is_loopback());
        if loopback {
            self.report(Check::new(
                Status::Ok,
                "tls",
                "plain HTTP on this machine (browsers allow the camera on http://localhost only)",
            ));
        } else {
            self.report(
                Check::new(
                    Status::Warn,
                    "tls",
                    "plain HTTP: browsers allow the camera and microphone only on https:// (or http://localhost)",
                )
                .advice("serve HTTPS: --tls-cert/--tls-key, --tls-self-signed, or a reverse proxy with TLS"),
            );
        }
    }

    /// A fresh connection to the server address TCP reached (TLS if the
    /// site is HTTPS). Errors were already reported in detail once.
    async fn open(&self) -> Result<MaybeTlsStream<TcpStream>, String> {
        let addr = self.addr.ok_or("no server address")?;
        let tcp = connect_tcp(addr, self.step)
            .await
            .map_err(|e| format!("cannot connect to {addr} again: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if !self.target.tls {
            return Ok(MaybeTlsStream::Plain(tcp));
        }
        match tokio::time::timeout(self.step, self.trust.handshake(tcp, &self.target.host)).await {
            Ok(Ok(hs)) => Ok(MaybeTlsStream::Rustls(hs.stream)),
            Ok(Err(e)) => Err(format!("TLS failed: {e}")),
            Err(_) => Err("the TLS handshake timed out".into()),
        }
    }

    async fn get(
        &self,
        stream: Box<dyn turn_client::Stream>,
        path: &str,
    ) -> Result<http::Answer, String> {
        let authority = self.target.authority();
        let path = self.target.path(path);
        match tokio::time::timeout(self.step, http::get(stream, &authority, &path)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.step)),
        }
    }

    /// `GET /healthz`; false when the answer is not even HTTP (then
    /// nothing else on this port can work).
    async fn healthz(&mut self, stream: Box<dyn turn_client::Stream>) -> bool {
        let started = Instant::now();
        let mut http = true;
        let check = match self.get(stream, "/healthz").await {
            Ok(a) if a.status == 200 => Check::new(
                Status::Ok,
                "healthz",
                format!("200 {} in {}", a.body.trim(), Self::ms(started.elapsed())),
            ),
            Ok(a) => {
                let (found, advice) = explain_status("GET /healthz", a.status, &a.body);
                Check::new(Status::Fail, "healthz", found).advice(advice)
            }
            Err(e) => {
                http = false;
                let advice = if self.target.tls {
                    "check that this port is huddle's (or a reverse proxy's that forwards to it)"
                } else {
                    "the port may serve HTTPS: try https://"
                };
                Check::new(
                    Status::Fail,
                    "healthz",
                    format!("GET /healthz got no HTTP answer: {e}"),
                )
                .advice(advice)
            }
        };
        self.report(check);
        http
    }

    /// Opens `/ws` (with the site's `Origin` if `origin`), joins, leaves.
    /// The `iceServers` of `joined`, or `None` (then they come from
    /// `GET /ice-servers`).
    async fn signaling(&mut self) -> Option<Vec<Value>> {
        let origin = self.target.origin();
        let mut ws = match self.ws_connect(Some(&origin)).await {
            Ok(ws) => ws,
            Err(WsFail::Upgrade(403, body)) if body.to_ascii_lowercase().contains("origin") => {
                self.facts.signaling = Signaling::Broken;
                self.report(
                    Check::new(
                        Status::Fail,
                        "signaling",
                        format!("the server refuses the WebSocket of pages from {origin} (403): browsers on this address cannot join"),
                    )
                    .advice(format!("if this is the address users open, start huddle with --public-url {origin} (or --allowed-origin {origin})")),
                );
                // Carry on without Origin, to check the rest.
                match self.ws_connect(None).await {
                    Ok(ws) => ws,
                    Err(_) => return None,
                }
            }
            Err(fail) => {
                self.facts.signaling = Signaling::Broken;
                let (found, advice) = fail.explain(&self.target);
                self.report(Check::new(Status::Fail, "signaling", found).advice(advice));
                return None;
            }
        };
        let started = Instant::now();
        let mut answer = self.join(&mut ws, &self.name.clone()).await;
        if matches!(&answer, Ok(ServerMsg::Error { code, .. }) if code == "name-taken") {
            let name = format!("{DOCTOR_NAME}-{}", random_hex(3));
            answer = self.join(&mut ws, &name).await;
        }
        let took = Self::ms(started.elapsed());
        let verdict_is_broken = self.facts.signaling == Signaling::Broken;
        let set = |d: &mut Self, s: Signaling| {
            if !verdict_is_broken {
                d.facts.signaling = s;
            }
        };
        let result = match answer {
            Ok(ServerMsg::Joined {
                room,
                name,
                ice_servers,
                ..
            }) => {
                let left = self.leave(&mut ws).await;
                set(self, Signaling::Works);
                let found = format!(
                    "{}joined room {room} as {name} in {took}, {}; the server hands out {} ICE server{}",
                    if verdict_is_broken {
                        "without an Origin header (as a non-browser client) "
                    } else {
                        ""
                    },
                    if left {
                        "left cleanly"
                    } else {
                        "but got no answer to leave"
                    },
                    ice_servers.len(),
                    if ice_servers.len() == 1 { "" } else { "s" }
                );
                let status = if left && !verdict_is_broken {
                    Status::Ok
                } else {
                    Status::Warn
                };
                self.report(Check::new(status, "signaling", found));
                Some(ice_servers)
            }
            Ok(ServerMsg::Waiting { room }) => {
                self.leave(&mut ws).await;
                set(self, Signaling::Works);
                self.report(
                    Check::new(
                        Status::Warn,
                        "signaling",
                        format!("room {room} is locked: the doctor waited in its lobby, then left"),
                    )
                    .advice("check another room (leave out --room), or unlock it"),
                );
                None
            }
            Ok(ServerMsg::Error { code, message }) if code == "unauthorized" => {
                set(self, Signaling::InviteOnly);
                let check = if self.target.access.is_none() {
                    Check::new(
                        Status::Warn,
                        "signaling",
                        "the server lets people in by invitation only (--auth-secret): the join was refused without a token",
                    )
                    .advice("pass --access TOKEN (make one with huddle token --room ROOM) or a whole invitation link as --server")
                } else {
                    Check::new(
                        Status::Fail,
                        "signaling",
                        format!("the server refused the invitation token: {message}"),
                    )
                    .advice("make a new one with huddle token (same --auth-secret as the server's), for this room or *")
                };
                self.report(check);
                None
            }
            Ok(ServerMsg::Error { code, message }) => {
                let room_specific = matches!(
                    code.as_str(),
                    "room-full" | "password-required" | "wrong-password" | "denied" | "name-taken"
                );
                set(
                    self,
                    if room_specific {
                        Signaling::Works
                    } else {
                        Signaling::Broken
                    },
                );
                let advice = if room_specific {
                    "check another room (leave out --room)"
                } else {
                    "see the server's log (RUST_LOG=huddle=debug)"
                };
                self.report(
                    Check::new(
                        if room_specific {
                            Status::Warn
                        } else {
                            Status::Fail
                        },
                        "signaling",
                        format!(
                            "the server refused the join to room {}: {code}: {message}",
                            self.room
                        ),
                    )
                    .advice(advice),
                );
                None
            }
            Ok(other) => {
                set(self, Signaling::Broken);
                self.report(Check::new(
                    Status::Fail,
                    "signaling",
                    format!("the server answered the join with {other:?}"),
                ));
                None
            }
            Err(e) => {
                set(self, Signaling::Broken);
                self.report(
                    Check::new(Status::Fail, "signaling", format!("joining failed: {e}"))
                        .advice("see the server's log; a reverse proxy may cut idle or upgraded connections"),
                );
                None
            }
        };
        let _ = tokio::time::timeout(self.step, ws.close(None)).await;
        result
    }

    async fn ws_connect(&self, origin: Option<&str>) -> Result<WsStream, WsFail> {
        let stream = self.open().await.map_err(WsFail::Connect)?;
        let mut req = self
            .target
            .ws_url()
            .into_client_request()
            .map_err(|e| WsFail::Connect(e.to_string()))?;
        if let Some(origin) = origin {
            let value = origin
                .parse()
                .map_err(|_| WsFail::Connect(format!("bad origin {origin:?}")))?;
            req.headers_mut().insert("Origin", value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WS_MESSAGE))
            .max_frame_size(Some(MAX_WS_MESSAGE));
        match tokio::time::timeout(
            self.step,
            tokio_tungstenite::client_async_with_config(req, stream, Some(config)),
        )
        .await
        {
            Err(_) => Err(WsFail::Timeout(self.step)),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tungstenite::Error::Http(res))) => {
                let status = res.status().as_u16();
                let body = res
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err(WsFail::Upgrade(status, body))
            }
            Ok(Err(e)) => Err(WsFail::Handshake(e.to_string())),
        }
    }

    /// Sends `join` and waits (bounded) for the answer.
    async fn join(&self, ws: &mut WsStream, name: &str) -> Result<ServerMsg, String> {
        let join = json!({"type":"join","room":self.room,"name":name,"access":self.target.access});
        let exchange = async {
            ws.send(WsMessage::text(join.to_string()))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match ws.next().await {
                    None => return Err("the server closed the socket".to_owned()),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(WsMessage::Text(t))) => match ServerMsg::parse(&t) {
                        Some(
                            m @ (ServerMsg::Joined { .. }
                            | ServerMsg::Waiting { .. }
                            | ServerMsg::Error { .. }),
                        ) => return Ok(m),
                        _ => continue,
                    },
                    Some(Ok(WsMessage::Close(frame))) => {
                        return Err(match frame {
                            Some(f) => format!(
                                "the server closed the socket (code {}, {:?})",
                                u16::from(f.code),
                                f.reason.as_str()
                            ),
                            None => "the server closed the socket".to_owned(),
                        });
                    }
                    Some(Ok(_)) => continue,
                }
            }
        };
        tokio::time::timeout(self.step, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer to join within {:?}", self.step)))
    }

    /// Sends `leave`; whether `left` came back in time.
    async fn leave(&self, ws: &mut WsStream) -> bool {
        let exchange = async {
            if ws
                .send(WsMessage::text(json!({"type":"leave"}).to_string()))
                .await
                .is_err()
            {
                return false;
            }
            while let Some(Ok(msg)) = ws.next().await {
                if let WsMessage::Text(t) = msg
                    && matches!(ServerMsg::parse(&t), Some(ServerMsg::Left { .. }))
                {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(self.step, exchange)
            .await
            .unwrap_or(false)
    }

    /// `GET /ice-servers[?room=R&access=T]`.
    async fn ice_servers_http(&mut self) -> Option<Vec<Value>> {
        let mut path = "/ice-servers".to_owned();
        if let Some(access) = &self.target.access {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("room", &self.room)
                .append_pair("access", access)
                .finish();
            path = format!("{path}?{query}");
        }
        let step = "ice-servers";
        let answer = match self.open().await {
            Ok(stream) => self.get(Box::new(stream), &path).await,
            Err(e) => Err(e),
        };
        let check = match answer {
            Ok(a) if a.status == 200 => {
                match serde_json::from_str::<Value>(&a.body)
                    .ok()
                    .and_then(|v| v.get("iceServers").and_then(Value::as_array).cloned())
                {
                    Some(list) => {
                        let n = list.len();
                        self.report(Check::new(
                            Status::Ok,
                            step,
                            format!(
                                "GET /ice-servers: {n} ICE server{}",
                                if n == 1 { "" } else { "s" }
                            ),
                        ));
                        return Some(list);
                    }
                    None => Check::new(
                        Status::Fail,
                        step,
                        "GET /ice-servers did not answer {\"iceServers\":[…]}",
                    )
                    .advice("is this a huddle server?"),
                }
            }
            Ok(a) if a.status == 401 => {
                let message = serde_json::from_str::<Value>(&a.body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                Check::new(
                    Status::Fail,
                    step,
                    format!(
                        "the ICE servers are handed out with an invitation only (401): {message}"
                    ),
                )
                .advice("pass --access TOKEN (huddle token --room ROOM) or a whole invitation link")
            }
            Ok(a) => {
                let (found, advice) = explain_status("GET /ice-servers", a.status, &a.body);
                Check::new(Status::Fail, step, found).advice(advice)
            }
            Err(e) => Check::new(Status::Fail, step, format!("GET /ice-servers failed: {e}")),
        };
        self.report(check);
        None
    }

    /// Checks every URL; false when there were none.
    async fn ice(&mut self, servers: &[Value]) -> bool {
        let entries = target::ice_entries(servers);
        if entries.is_empty() {
            self.report(
                Check::new(
                    Status::Warn,
                    "ice",
                    "the server hands out no STUN or TURN server: only members on one network (or with public addresses) can connect",
                )
                .advice("add STUN (--ice-server stun:HOST) and a relay (--turn-listen, or --turn-url with --turn-secret)"),
            );
            return false;
        }
        let list: Vec<&str> = entries
            .iter()
            .take(MAX_ICE_URLS)
            .map(|e| e.text.as_str())
            .collect();
        self.report(Check::new(Status::Ok, "ice", list.join(", ")));
        for (i, entry) in entries.iter().enumerate() {
            if i == MAX_ICE_URLS {
                self.report(Check::new(
                    Status::Warn,
                    "ice",
                    format!(
                        "{} more URLs not checked (at most {MAX_ICE_URLS})",
                        entries.len() - i
                    ),
                ));
                break;
            }
            self.probe(entry).await;
        }
        true
    }

    /// Checks one STUN or TURN URL.
    async fn probe(&mut self, entry: &IceEntry) {
        let url = match &entry.url {
            Ok(u) => u.clone(),
            Err(why) => {
                self.report(
                    Check::new(Status::Warn, &entry.text, format!("cannot be read: {why}"))
                        .advice("browsers will skip it too: fix the URL in --ice-server/--ice-servers/--turn-url"),
                );
                return;
            }
        };
        if url.scheme.is_turn() {
            self.facts.turn_urls += 1;
        }
        let label = |what: &str| format!("{} {what}", url.text);
        // 1. Reach the server; a Binding request shows our address as it sees it.
        let started = Instant::now();
        let (mut a, server) = match self.connect_ice(&url).await {
            Ok(ok) => ok,
            Err((found, advice)) => {
                self.report(Check::new(Status::Fail, label("reach"), found).advice(advice));
                return;
            }
        };
        let local = a.local;
        match a.client.binding().await {
            Ok(mapped) => {
                let rtt = Self::ms(started.elapsed());
                let nat = local.is_some_and(|l| l != mapped);
                if url.transport == Transport::Udp {
                    if let Some(l) = local
                        && !self.seen.direct.contains(&l.ip())
                    {
                        self.seen.direct.push(l.ip());
                    }
                    if nat && !self.seen.nat.contains(&mapped) {
                        self.seen.nat.push(mapped);
                    }
                }
                let seen = match local {
                    Some(l) if nat && url.transport == Transport::Udp => {
                        format!("this machine's {l} is seen as {mapped} (through NAT)")
                    }
                    Some(l) if nat => {
                        format!("this machine's {l} is seen as {mapped} (through NAT or a proxy)")
                    }
                    Some(l) => format!(
                        "seen as {l}, this machine's own address (direct, no NAT on the way)"
                    ),
                    None => format!("seen as {mapped}"),
                };
                self.report(Check::new(
                    Status::Ok,
                    label("reach"),
                    format!("{} {server} answered STUN in {rtt}; {seen}", url.transport),
                ));
            }
            Err(TurnError::Response { code, reason }) if url.scheme.is_turn() => {
                // Some TURN servers do not answer Binding; the Allocate tells.
                self.report(Check::new(
                    Status::Warn,
                    label("reach"),
                    format!(
                        "{} {server} refused the STUN binding ({})",
                        url.transport,
                        code_text(code, &reason)
                    ),
                ));
            }
            Err(e) => {
                let (found, advice) = explain_unreached(&e, &url, server, self.step);
                self.report(Check::new(Status::Fail, label("reach"), found).advice(advice));
                return;
            }
        }
        if !url.scheme.is_turn() {
            return;
        }
        // 2. Allocate with the handed-out credentials.
        let (Some(user), Some(pass)) = (entry.username.clone(), entry.credential.clone()) else {
            self.report(
                Check::new(
                    Status::Fail,
                    label("allocate"),
                    "the server hands out this TURN URL without a username and credential",
                )
                .advice("browsers cannot use it: give credentials (--ice-server turn:USER:PASS@HOST, or --turn-url with --turn-secret)"),
            );
            return;
        };
        let now = tls::unix_now();
        let alloc_a = match a.client.allocate(&user, &pass).await {
            Ok(alloc) => alloc,
            Err(e) => {
                let (found, advice) = explain_allocate(&e, &user, now, self.step);
                self.report(Check::new(Status::Fail, label("allocate"), found).advice(advice));
                return;
            }
        };
        self.seen.relay.push((alloc_a.relayed, url.transport));
        self.report(Check::new(
            Status::Ok,
            label("allocate"),
            format!(
                "relay address {} (lifetime {} s) with the credentials the server hands out",
                alloc_a.relayed,
                alloc_a.lifetime.as_secs()
            ),
        ));
        // 3. A second allocation, and data both ways between the two relays.
        let relay_outcome = match self.connect_ice(&url).await {
            Err((found, advice)) => Err((format!("a second connection failed: {found}"), advice)),
            Ok((mut b, _)) => match b.client.allocate(&user, &pass).await {
                Err(e) => {
                    let (found, advice) = explain_allocate(&e, &user, now, self.step);
                    Err((format!("a second allocation failed: {found}"), advice))
                }
                Ok(alloc_b) => {
                    let r = round_trip(&mut a.client, alloc_a, &mut b.client, alloc_b, self.step)
                        .await
                        .map_err(|e| e.explain(alloc_a, alloc_b));
                    let released = b.client.release().await;
                    r.map(|rtts| (rtts, released))
                }
            },
        };
        let released_a = a.client.release().await;
        match relay_outcome {
            Ok((rtts, released_b)) => {
                self.facts.relays_ok += 1;
                let best = rtts.iter().min().copied().unwrap_or_default();
                let worst = rtts.iter().max().copied().unwrap_or_default();
                let mut found = format!(
                    "data went both ways between two relays; round trip {} (fastest of {}, slowest {})",
                    Self::ms(best),
                    rtts.len(),
                    Self::ms(worst)
                );
                match (released_a, released_b) {
                    (Ok(()), Ok(())) => {
                        found.push_str("; allocations released");
                        self.report(Check::new(Status::Ok, label("relay"), found));
                    }
                    (a, b) => {
                        let e = a
                            .err()
                            .or(b.err())
                            .map(|e| e.to_string())
                            .unwrap_or_default();
                        found.push_str(&format!(
                            "; releasing an allocation failed ({e}): it expires by itself within {} s",
                            alloc_a.lifetime.as_secs()
                        ));
                        self.report(Check::new(Status::Warn, label("relay"), found));
                    }
                }
            }
            Err((found, advice)) => {
                self.report(Check::new(Status::Fail, label("relay"), found).advice(advice));
            }
        }
    }

    /// A client on a new connection to `url`'s server: the client, the
    /// server address, and our local address.
    async fn connect_ice(&self, url: &IceUrl) -> Result<(Connected, SocketAddr), Explained> {
        let server = resolve(&url.host, url.port, self.step).await?;
        let client = |wire| Client::new(wire, self.step);
        match url.transport {
            Transport::Udp => {
                let sock = turn_client::udp_to(server).await.map_err(|e| {
                    (
                        format!("cannot send UDP to {server}: {e}"),
                        "check this machine's network and routes".to_owned(),
                    )
                })?;
                let local = sock.local_addr().ok();
                Ok((
                    Connected {
                        client: client(Wire::Udp(sock)),
                        local,
                    },
                    server,
                ))
            }
            Transport::Tcp | Transport::Tls => {
                let tcp = connect_tcp(server, self.step)
                    .await
                    .map_err(|e| explain_connect(&e, server, self.step, "the TURN server"))?;
                let _ = tcp.set_nodelay(true);
                let local = tcp.local_addr().ok();
                let wire = if url.transport == Transport::Tls {
                    let hs = tokio::time::timeout(self.step, self.trust.handshake(tcp, &url.host))
                        .await
                        .map_err(|_| {
                            (
                                format!("no TLS handshake with {server} within {:?}", self.step),
                                "check that this port serves TURN over TLS".to_owned(),
                            )
                        })?
                        .map_err(|e| {
                            let (found, advice) = tls::explain(&e, &url.host);
                            (format!("TLS with {server}: {found}"), advice)
                        })?;
                    Wire::Stream(Box::new(hs.stream), Vec::new())
                } else {
                    Wire::Stream(Box::new(tcp), Vec::new())
                };
                Ok((
                    Connected {
                        client: client(wire),
                        local,
                    },
                    server,
                ))
            }
        }
    }

    fn candidates(&mut self) {
        let direct: Vec<String> = self.seen.direct.iter().map(ToString::to_string).collect();
        let nat: Vec<String> = self.seen.nat.iter().map(ToString::to_string).collect();
        let relay: Vec<String> = self
            .seen
            .relay
            .iter()
            .map(|(a, t)| format!("{a} (via {t})"))
            .collect();
        let none = |v: &[String], what: &str| {
            if v.is_empty() {
                what.to_owned()
            } else {
                v.join(", ")
            }
        };
        let found = format!(
            "direct {}; through NAT {}; through the relay {}",
            none(&direct, "(no UDP STUN answer)"),
            none(
                &nat,
                "none (no NAT between this machine and the STUN/TURN servers)"
            ),
            none(&relay, "none"),
        );
        let status = if relay.is_empty() {
            Status::Warn
        } else {
            Status::Ok
        };
        self.report(Check::new(status, "candidates", found));
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A client just connected to an ICE server.
struct Connected {
    client: Client,
    local: Option<SocketAddr>,
}

/// Why the WebSocket did not open.
#[derive(Debug)]
enum WsFail {
    Connect(String),
    Timeout(Duration),
    Upgrade(u16, String),
    Handshake(String),
}

impl WsFail {
    fn explain(&self, target: &Target) -> Explained {
        match self {
            WsFail::Connect(e) => (format!("cannot open the signaling socket: {e}"), String::new()),
            WsFail::Timeout(d) => (
                format!("the WebSocket upgrade got no answer within {d:?}"),
                "a reverse proxy in front may not pass WebSocket upgrades on /ws".into(),
            ),
            WsFail::Upgrade(status, body) => explain_upgrade(*status, body, &target.path("/ws")),
            WsFail::Handshake(e) => (
                format!("the answer to the WebSocket upgrade is not a WebSocket handshake: {e}"),
                "a reverse proxy must pass /ws with its Upgrade and Connection headers (see docs/operations.md)".into(),
            ),
        }
    }
}

/// What a refused WebSocket upgrade means: (found, advice).
pub fn explain_upgrade(status: u16, body: &str, path: &str) -> (String, String) {
    let body = body.trim();
    let said = if body.is_empty() {
        String::new()
    } else {
        format!(": {}", body.chars().take(200).collect::<String>())
    };
    let proxy_upgrade = "a reverse proxy must pass the Upgrade and Connection headers to huddle \
                         (nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; \
                         proxy_set_header Connection \"upgrade\")";
    match status {
        200 => (
            format!("GET {path} answered 200 instead of switching to WebSocket"),
            proxy_upgrade.into(),
        ),
        400 | 426 => (
            format!("the WebSocket upgrade was refused ({status}){said}"),
            proxy_upgrade.into(),
        ),
        403 => (
            format!("the WebSocket upgrade was refused (403){said}"),
            "check --public-url/--allowed-origin, and the proxy's access rules".into(),
        ),
        404 => (
            format!("no WebSocket at {path} (404)"),
            "a reverse proxy must send /ws to huddle too (see docs/operations.md)".into(),
        ),
        429 => (
            format!("too many connections from this address (429){said}"),
            "behind a reverse proxy every user shares its address: start huddle with --max-connections-per-ip 0".into(),
        ),
        503 => (
            format!("the server takes no new connections (503){said}"),
            "it is shutting down, or full: raise --max-connections".into(),
        ),
        502 | 504 => (
            format!("the reverse proxy cannot reach huddle ({status})"),
            "start huddle, and check the proxy's upstream address and port".into(),
        ),
        other => (
            format!("the WebSocket upgrade was refused ({other}){said}"),
            "see the server's and the proxy's logs".into(),
        ),
    }
}

/// What an HTTP error status means: (found, advice).
pub fn explain_status(what: &str, status: u16, body: &str) -> Explained {
    let body: String = body.trim().chars().take(200).collect();
    match status {
        404 => (
            format!(
                "{what} answered 404: this is not a huddle server, or a reverse proxy sends this path elsewhere"
            ),
            "check --server (the address users open) and the proxy's location rules".into(),
        ),
        502 | 504 => (
            format!("{what} answered {status}: the reverse proxy cannot reach huddle"),
            "start huddle, and check the proxy's upstream address and port".into(),
        ),
        503 => (
            format!("{what} answered 503: {body}"),
            "huddle is shutting down or overloaded; see its log".into(),
        ),
        429 => (
            format!("{what} answered 429: too many connections from this address"),
            "behind a reverse proxy, start huddle with --max-connections-per-ip 0".into(),
        ),
        _ => (
            format!("{what} answered {status}: {body}"),
            "see the server's and the proxy's logs".into(),
        ),
    }
}

/// A TCP connection, bounded by `step`.
async fn connect_tcp(addr: SocketAddr, step: Duration) -> std::io::Result<TcpStream> {
    match tokio::time::timeout(step, TcpStream::connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {step:?}"),
        )),
    }
}

/// What a failed TCP connection means: (found, advice).
fn explain_connect(e: &std::io::Error, addr: SocketAddr, step: Duration, what: &str) -> Explained {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => (
            format!("nothing listens on TCP {addr} (connection refused)"),
            format!(
                "start {what}, or check its address and port (and that no firewall rejects the port)"
            ),
        ),
        ErrorKind::TimedOut => (
            format!("no answer from TCP {addr} within {step:?}"),
            "a firewall (or cloud security group) drops the packets, or the address is wrong"
                .into(),
        ),
        _ => (
            format!("cannot connect to TCP {addr}: {e}"),
            "check this machine's network and routes, and the address".into(),
        ),
    }
}

/// The first address of `host:port`, bounded by `step`.
async fn resolve(host: &str, port: u16, step: Duration) -> Result<SocketAddr, Explained> {
    let lookup = tokio::time::timeout(step, tokio::net::lookup_host((host, port))).await;
    match lookup {
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| {
            (
                format!("{host} has no address"),
                "add an A or AAAA record for it".to_owned(),
            )
        }),
        Ok(Err(e)) => Err((
            format!("cannot resolve {host}: {e}"),
            "check the name in the URL and its DNS records".to_owned(),
        )),
        Err(_) => Err((
            format!("no DNS answer for {host} within {step:?}"),
            "check this machine's DNS resolver".to_owned(),
        )),
    }
}

/// What an unanswered STUN request means: (found, advice).
fn explain_unreached(e: &TurnError, url: &IceUrl, server: SocketAddr, step: Duration) -> Explained {
    let what = if url.scheme.is_turn() {
        "the TURN server"
    } else {
        "the STUN server"
    };
    let port_hint = format!(
        "open {} port {} in the firewall (and the cloud's security group)",
        if url.transport == Transport::Udp {
            "UDP"
        } else {
            "TCP"
        },
        server.port()
    );
    match e {
        TurnError::Timeout(_) => (
            format!(
                "no answer over {} from {server} within {step:?}",
                url.transport
            ),
            format!("{port_hint}, and check that {what} runs there"),
        ),
        TurnError::Refused(_) => (
            format!("nothing listens on {} {server} (refused)", url.transport),
            format!(
                "start {what} on this port, or fix the URL the server hands out (--turn-listen, --turn-public-ip, --turn-url, --ice-server)"
            ),
        ),
        TurnError::Closed => (
            format!("{server} closed the connection without answering STUN"),
            format!("check that this port serves {what}, not something else"),
        ),
        TurnError::Garbled(why) => (
            format!("{server} answered, but not with STUN: {why}"),
            format!("check that this port serves {what}"),
        ),
        other => (
            format!("STUN over {} with {server} failed: {other}", url.transport),
            format!("check that this port serves {what}"),
        ),
    }
}

/// What a failed Allocate means: (found, advice). `username` is the one
/// handed out; `now` the unix time (for its expiry).
pub fn explain_allocate(e: &AllocateError, username: &str, now: i64, step: Duration) -> Explained {
    let expired = target::rest_expiry(username)
        .filter(|&exp| (exp as i64) < now)
        .map(|exp| {
            format!(
                "; the credentials had already expired by this machine's clock ({} s ago)",
                now - exp as i64
            )
        })
        .unwrap_or_default();
    let secret_advice = "the huddle server's --turn-secret must be the TURN server's secret \
                         (coturn: static-auth-secret with use-auth-secret); check both clocks (NTP) too";
    match (&e.error, e.stage) {
        (TurnError::Response { code: 401, .. }, Stage::Authenticated) => (
            format!(
                "the TURN server refused the credentials the huddle server hands out (401 Unauthorized){expired}"
            ),
            secret_advice.into(),
        ),
        // webrtc-rs' TURN server (huddle's embedded one) answers a wrong
        // credential or an unknown user with 400, not 401.
        (TurnError::Response { code: 400, .. }, Stage::Authenticated) => (
            format!(
                "the TURN server refused the credentials the huddle server hands out (400 Bad \
                 Request, how huddle's embedded TURN server answers a wrong credential){expired}"
            ),
            secret_advice.into(),
        ),
        (TurnError::Response { code: 441, .. }, _) => (
            format!("the TURN server refused the credentials (441 Wrong Credentials){expired}"),
            secret_advice.into(),
        ),
        (TurnError::Response { code: 403, reason }, _) => (
            format!("the TURN server refuses this client ({})", code_text(403, reason)),
            "check the TURN server's allowed and denied client ranges, and its log".into(),
        ),
        (TurnError::Response { code: 486, .. }, _) => (
            "allocation quota reached (486): too many live relays for this user, this address, or in all".into(),
            "raise --turn-user-quota, --turn-max-allocations-per-ip or --turn-max-allocations \
             (coturn: user-quota, total-quota), or wait for old allocations to expire"
                .into(),
        ),
        (TurnError::Response { code: 508, .. }, _) => (
            "the TURN server has no relay port free (508 Insufficient Capacity)".into(),
            "widen the relay port range (--turn-relay-ports; coturn: min-port/max-port)".into(),
        ),
        (TurnError::Response { code: 442, .. }, _) => (
            "the TURN server does not relay UDP (442)".into(),
            "browsers relay media over UDP: configure the TURN server to allow it".into(),
        ),
        (TurnError::Response { code: 437, .. }, _) => (
            "the TURN server already holds an allocation for this connection (437)".into(),
            "try again in a few minutes".into(),
        ),
        (TurnError::Response { code, reason }, Stage::Challenge) => (
            format!(
                "the TURN server refused the allocation before asking for credentials ({})",
                code_text(*code, reason)
            ),
            "check that this is a TURN server (not STUN only) and its log".into(),
        ),
        (TurnError::Response { code, reason }, Stage::Authenticated) => (
            format!(
                "the TURN server refused the allocation ({}){expired}",
                code_text(*code, reason)
            ),
            "see the TURN server's log".into(),
        ),
        (TurnError::Timeout(_), _) => (
            format!("no answer to the TURN allocation within {step:?} (STUN did answer)"),
            "this may be a STUN-only server: check the TURN server runs with relaying on".into(),
        ),
        (TurnError::Missing(what), _) => (
            format!("the TURN server's answer lacks {what}"),
            "this does not look like a standard TURN server".into(),
        ),
        (other, _) => (
            format!("the TURN allocation failed: {other}"),
            "check the connection to the TURN server".into(),
        ),
    }
}

/// Why data did not make it through the relays.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("permission")]
    Permission(bool, TurnError),
    #[error("lost")]
    Lost(bool),
    #[error("{0}")]
    Io(TurnError),
}

impl RelayError {
    fn explain(&self, a: Allocation, b: Allocation) -> Explained {
        match self {
            RelayError::Permission(first, e) => {
                let (peer, relay) = if *first { (b, a) } else { (a, b) };
                match e.code() {
                    Some(403) => (
                        format!(
                            "the TURN server refuses to relay to {} (403), the other relay address",
                            peer.relayed.ip()
                        ),
                        "it refuses peers in that range: on a LAN (or loopback) deployment allow it with \
                         --turn-allowed-peer-ip (coturn: allowed-peer-ip, and no no-loopback-peers)"
                            .into(),
                    ),
                    _ => (
                        format!(
                            "CreatePermission on {} for {} failed: {e}",
                            relay.relayed,
                            peer.relayed.ip()
                        ),
                        "see the TURN server's log".into(),
                    ),
                }
            }
            RelayError::Lost(a_to_b) => (
                format!(
                    "data sent from relay {} to relay {} never arrived",
                    if *a_to_b { a.relayed } else { b.relayed },
                    if *a_to_b { b.relayed } else { a.relayed },
                ),
                "open the relay port range (UDP, --turn-relay-ports) in the firewall; behind NAT the \
                 advertised address (--turn-public-ip) must reach the server from itself (hairpin NAT)"
                    .into(),
            ),
            RelayError::Io(e) => (
                format!("the connection to the TURN server failed during the round trip: {e}"),
                "check the connection to the TURN server".into(),
            ),
        }
    }
}

/// Permissions both ways, then [`RELAY_PINGS`] round trips A → B → A
/// through the two relays; their times.
async fn round_trip(
    a: &mut Client,
    alloc_a: Allocation,
    b: &mut Client,
    alloc_b: Allocation,
    step: Duration,
) -> Result<Vec<Duration>, RelayError> {
    a.create_permission(alloc_b.relayed)
        .await
        .map_err(|e| RelayError::Permission(true, e))?;
    b.create_permission(alloc_a.relayed)
        .await
        .map_err(|e| RelayError::Permission(false, e))?;
    let mut rtts = Vec::with_capacity(RELAY_PINGS);
    for _ in 0..RELAY_PINGS {
        let tag = random_hex(8);
        let ping = format!("huddle-doctor ping {tag}");
        let pong = format!("huddle-doctor pong {tag}");
        let started = relay_once(a, alloc_b.relayed, b, ping.as_bytes(), step)
            .await?
            .ok_or(RelayError::Lost(true))?;
        relay_once(b, alloc_a.relayed, a, pong.as_bytes(), step)
            .await?
            .ok_or(RelayError::Lost(false))?;
        rtts.push(started.elapsed());
    }
    Ok(rtts)
}

/// Sends `data` from `from` to the relay address `to` (resending with a
/// doubling interval) until `receiver` gets it; the time of the send that
/// arrived, or `None` after `step`.
async fn relay_once(
    from: &mut Client,
    to: SocketAddr,
    receiver: &mut Client,
    data: &[u8],
    step: Duration,
) -> Result<Option<Instant>, RelayError> {
    let deadline = Instant::now() + step;
    let mut interval = Duration::from_millis(250);
    loop {
        let sent = Instant::now();
        from.send_to(to, data).await.map_err(RelayError::Io)?;
        let wait_until = (sent + interval).min(deadline);
        interval *= 2;
        while let Some((_, got)) = receiver
            .recv_data(wait_until)
            .await
            .map_err(RelayError::Io)?
        {
            if got == data {
                return Ok(Some(sent));
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(
        signaling: Signaling,
        ice_known: bool,
        turn: usize,
        ok: usize,
        failures: usize,
    ) -> Facts {
        Facts {
            signaling,
            ice_known,
            turn_urls: turn,
            relays_ok: ok,
            failures,
        }
    }

    #[test]
    fn the_verdict() {
        use Signaling::*;
        let v = |f: Facts| {
            let (c, ok) = verdict(&f);
            (c.status, ok)
        };
        assert_eq!(v(facts(Works, true, 2, 2, 0)), (Status::Ok, true));
        // One relay is enough, but the failures show.
        assert_eq!(v(facts(Works, true, 2, 1, 1)), (Status::Warn, true));
        // No TURN at all: a call works on simple networks; warned.
        let (c, ok) = verdict(&facts(Works, true, 0, 0, 0));
        assert!(ok && c.status == Status::Warn);
        assert!(c.found.contains("strict NATs"), "{}", c.found);
        // TURN configured but no relay works.
        assert_eq!(v(facts(Works, true, 2, 0, 2)), (Status::Fail, false));
        // Signaling broken: nothing else matters.
        assert_eq!(v(facts(Broken, true, 1, 1, 1)), (Status::Fail, false));
        assert_eq!(v(facts(Unchecked, false, 0, 0, 1)), (Status::Fail, false));
        // Invitation only, no token: the relay is unknown.
        let (c, ok) = verdict(&facts(InviteOnly, false, 0, 0, 0));
        assert!(!ok && c.advice.unwrap().contains("--access"));
        assert_eq!(v(facts(Works, false, 0, 0, 1)), (Status::Fail, false));
    }

    #[test]
    fn lines_read_as_one_sentence_each() {
        let c = Check::new(Status::Fail, "tls", "expired certificate").advice("renew it");
        assert_eq!(c.to_string(), "FAIL tls: expired certificate → renew it");
        let c = Check::new(Status::Ok, "dns", "h → 192.0.2.1");
        assert_eq!(c.to_string(), "ok   dns: h → 192.0.2.1");
        // What a server sends cannot drive the terminal.
        let c = Check::new(
            Status::Fail,
            "turn:\u{1b}[2J",
            "said \u{1b}]0;x\u{7}\u{9b}31m",
        )
        .advice("a\rb");
        assert_eq!(
            c.to_string(),
            "FAIL turn:\u{fffd}[2J: said \u{fffd}]0;x\u{fffd}\u{fffd}31m → a\u{fffd}b"
        );
    }

    #[test]
    fn allocation_failures_are_named() {
        let step = Duration::from_secs(5);
        let err = |stage, code| AllocateError {
            stage,
            error: TurnError::Response {
                code,
                reason: "x".into(),
            },
        };
        let (found, advice) =
            explain_allocate(&err(Stage::Authenticated, 401), "2000:probe", 1000, step);
        assert!(found.contains("refused the credentials"), "{found}");
        assert!(!found.contains("expired"), "{found}");
        assert!(advice.contains("--turn-secret"), "{advice}");
        let (found, _) = explain_allocate(&err(Stage::Authenticated, 401), "900:probe", 1000, step);
        assert!(
            found.contains("expired by this machine's clock (100 s ago)"),
            "{found}"
        );
        let (found, advice) = explain_allocate(&err(Stage::Authenticated, 486), "u", 0, step);
        assert!(found.contains("quota") && advice.contains("--turn-user-quota"));
        let (found, _) = explain_allocate(&err(Stage::Authenticated, 403), "u", 0, step);
        assert!(found.contains("403"), "{found}");
        let (found, _) = explain_allocate(&err(Stage::Challenge, 400), "u", 0, step);
        assert!(found.contains("before asking for credentials"), "{found}");
        let timeout = AllocateError {
            stage: Stage::Challenge,
            error: TurnError::Timeout(step),
        };
        assert!(
            explain_allocate(&timeout, "u", 0, step)
                .0
                .contains("no answer")
        );
    }

    #[test]
    fn refused_upgrades_say_what_to_fix() {
        assert!(explain_upgrade(404, "", "/ws").1.contains("/ws"));
        assert!(explain_upgrade(400, "", "/ws").1.contains("Upgrade"));
        assert!(
            explain_upgrade(429, "", "/ws")
                .1
                .contains("--max-connections-per-ip 0")
        );
        assert!(
            explain_upgrade(502, "", "/ws")
                .0
                .contains("cannot reach huddle")
        );
        assert!(
            explain_status("GET /healthz", 404, "")
                .0
                .contains("not a huddle server")
        );
    }

    #[test]
    fn a_token_names_its_room_and_name() {
        let key = crate::access::AuthKey::new(&[7u8; 32]).unwrap();
        let jwt = key.mint(&crate::access::Claims {
            room: "standup".into(),
            exp: 4_000_000_000,
            name: Some("Olga".into()),
            host: false,
            nbf: None,
        });
        assert_eq!(
            token_claims(&jwt),
            TokenClaims {
                room: Some("standup".into()),
                name: Some("Olga".into())
            }
        );
        let any = key.mint(&crate::access::Claims {
            room: "*".into(),
            exp: 4_000_000_000,
            name: None,
            host: false,
            nbf: None,
        });
        assert_eq!(token_claims(&any), TokenClaims::default());
        assert_eq!(token_claims("not a token"), TokenClaims::default());
    }

    #[test]
    fn settings() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: DoctorArgs,
        }
        let cli = Cli::try_parse_from(["x", "--server", "https://h/r/standup?access=T"]).unwrap();
        assert_eq!(cli.args.timeout, Duration::from_secs(5));
        assert_eq!(cli.args.server.room.as_deref(), Some("standup"));
        let cli = Cli::try_parse_from([
            "x",
            "--server",
            "http://h:1",
            "--access",
            "https://h/r/x?access=abc&y=1",
            "--ca-file",
            "c.pem",
            "--timeout",
            "500ms",
        ])
        .unwrap();
        assert_eq!(cli.args.access.as_deref(), Some("abc"));
        assert_eq!(cli.args.ca_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(cli.args.timeout, Duration::from_millis(500));
        for bad in [
            &["x", "--server", "meet.example.org"][..],
            &["x", "--server", "http://h", "--timeout", "0s"],
            &["x", "--server", "http://h", "--room", "a b"],
            &["x"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
