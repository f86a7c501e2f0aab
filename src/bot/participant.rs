//! One bot in one room: the I/O shell around its [`Peer`]s. It owns the UDP
//! sockets (one per bound address, shared by all its peer connections), the
//! signal task, the clock and the timers, and turns what the peers and the
//! server say into [`BotEvent`]s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::media::Track;
use super::peer::{MediaPlan, Peer, PeerEvent, PeerOutput, receive_input};
use super::report::PeerReport;
use super::signal::{self, JoinSpec, Outgoing, ServerMsg, SignalError, SignalEvent};

/// Datagrams waiting for the participant; more are dropped (as a full
/// socket buffer would).
const UDP_QUEUE: usize = 4096;
/// How long leaving may take (close every peer connection, `leave`).
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Datagrams no peer connection claims are held this long, at most this
/// many (see `Participant::on_packet`).
const UNCLAIMED_FOR: Duration = Duration::from_secs(2);
const UNCLAIMED_MAX: usize = 64;
const UNCLAIMED_RETRY: Duration = Duration::from_millis(10);
/// Prefix of `--echo` replies; a message with it is never echoed (two
/// echoing bots would otherwise answer each other forever).
pub const ECHO_PREFIX: &str = "echo: ";

/// What one bot does.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Where and as whom to join.
    pub join: JoinSpec,
    /// Local addresses to bind (port 0 for any), one UDP socket each.
    pub bind: Vec<SocketAddr>,
    /// Video to send (None: no video).
    pub video: Option<Arc<Track>>,
    /// Audio to send (None: no audio).
    pub audio: Option<Arc<Track>>,
    /// Chat texts sent on every data channel when it opens.
    pub say: Vec<String>,
    /// Answer every chat message.
    pub echo: bool,
    /// Interval of [`BotEvent::Report`] (None: only at exit).
    pub report_every: Option<Duration>,
    /// Once cancelled, the bot stops sending media but stays (a load run
    /// lets frames in flight arrive before everyone counts and leaves).
    pub media_stop: Option<CancellationToken>,
    /// As the room's host, let every waiting joiner in.
    pub admit_all: bool,
}

/// What a bot observed, for whoever runs it (the CLI prints these; tests
/// wait for them).
#[derive(Debug, Clone, PartialEq)]
pub enum BotEvent {
    /// `joined` arrived (also after a resume).
    Joined {
        /// Our name as the server spells it.
        name: String,
        /// The other members.
        peers: Vec<String>,
        /// True when the membership was resumed.
        resumed: bool,
    },
    /// A member entered.
    PeerJoined(String),
    /// A member left (its link is closed).
    PeerLeft(String),
    /// The link to a member is up (ICE + DTLS).
    Connected(String),
    /// The first video frame from a member arrived.
    FirstFrame(String),
    /// A chat message arrived.
    Chat {
        /// Sender (the member whose data channel it came on).
        from: String,
        /// Text.
        text: String,
    },
    /// A member raised or lowered its hand.
    Hand {
        /// The member.
        from: String,
        /// Raised.
        up: bool,
    },
    /// A member sent a reaction.
    Reaction {
        /// The member.
        from: String,
        /// The emoji.
        emoji: String,
    },
    /// A member offered a file; the bot declined it.
    FileDeclined {
        /// The member.
        from: String,
        /// The file's name.
        name: String,
    },
    /// The signaling connection was lost; the bot is resuming.
    SignalLost(String),
    /// We wait in a locked room's lobby for the host.
    Waiting(String),
    /// The room's host changed (or, after `joined`, who it is).
    Host(String),
    /// The host changed the room's settings.
    RoomSettings {
        /// Whether the lobby is locked.
        locked: bool,
        /// Whether a password is set.
        protected: bool,
    },
    /// Someone waits in the lobby (we are host).
    Knock(String),
    /// Someone stopped waiting.
    KnockGone(String),
    /// The host removed us (the bot ends).
    Removed(String),
    /// The host asked us to mute: the bot stops sending audio.
    AskedToMute(String),
    /// Periodic statistics, one entry per member.
    Report(Vec<PeerReport>),
}

/// Why a bot stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// Signaling failed (unreachable, refused, gave up).
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// A local address could not be bound.
    #[error("cannot bind UDP on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Nothing to bind.
    #[error("no address to bind for media (use --bind, e.g. --bind 127.0.0.1)")]
    NoAddress,
}

/// What a bot measured, at exit.
#[derive(Debug, Clone, Default)]
pub struct BotOutcome {
    /// Our name as the server spells it (empty if we never joined).
    pub name: String,
    /// The final report of every member we had a link with (also those who left).
    pub reports: Vec<PeerReport>,
}

/// Socket buffer asked for (the kernel caps it at net.core.rmem_max /
/// wmem_max). The default (about 208 KiB, some 90 datagrams) overflows when
/// a busy machine does not run the reader for a few tens of milliseconds
/// while many members send.
const SOCKET_BUFFER: usize = 4 << 20;

/// A non-blocking UDP socket on ADDR with large buffers.
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = sock.set_recv_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "cannot enlarge the UDP receive buffer");
    }
    if let Err(e) = sock.set_send_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "cannot enlarge the UDP send buffer");
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

struct Packet {
    at: Instant,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

struct Participant {
    cfg: BotConfig,
    name: String,
    sockets: Vec<(SocketAddr, Arc<UdpSocket>)>,
    local: Vec<SocketAddr>,
    peers: BTreeMap<String, Peer>,
    departed: Vec<PeerReport>,
    unclaimed: std::collections::VecDeque<Packet>,
    last_retry: Instant,
    to_signal: mpsc::UnboundedSender<Outgoing>,
    events: Option<mpsc::UnboundedSender<BotEvent>>,
    /// When we started joining (the first connect), or the `joined` of a
    /// fresh membership after a resume failed: the base of join → first frame.
    joined_at: Instant,
    /// A `joined` has arrived at least once.
    was_joined: bool,
    warned_ice: bool,
    /// The room's host, as last told.
    host: Option<String>,
    /// The host asked us to mute: no more audio.
    muted: bool,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs one bot until `stop` is cancelled (then it leaves cleanly) or a
/// fatal error. EVENTS, if given, receives what happens as it happens.
pub async fn run(
    cfg: BotConfig,
    events: Option<mpsc::UnboundedSender<BotEvent>>,
    stop: CancellationToken,
) -> Result<BotOutcome, BotError> {
    if cfg.bind.is_empty() {
        return Err(BotError::NoAddress);
    }
    let (udp_tx, mut udp_rx) = mpsc::channel::<Packet>(UDP_QUEUE);
    let mut sockets = Vec::new();
    let mut readers: Vec<JoinHandle<()>> = Vec::new();
    for addr in &cfg.bind {
        let sock = bind_udp(*addr).map_err(|source| BotError::Bind {
            addr: *addr,
            source,
        })?;
        let local = sock.local_addr().map_err(|source| BotError::Bind {
            addr: *addr,
            source,
        })?;
        let sock = Arc::new(sock);
        sockets.push((local, sock.clone()));
        let tx = udp_tx.clone();
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                match sock.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        let p = Packet {
                            at: Instant::now(),
                            from,
                            to: local,
                            data: buf[..n].to_vec(),
                        };
                        if tx.try_send(p).is_err() && tx.is_closed() {
                            return;
                        }
                    }
                    // ICMP errors (e.g. port unreachable after a peer left) surface here.
                    Err(e) => tracing::trace!(error = %e, "udp receive"),
                }
            }
        }));
    }
    drop(udp_tx);
    let local: Vec<SocketAddr> = sockets.iter().map(|(a, _)| *a).collect();

    let (sig_tx, mut sig_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let sig_stop = CancellationToken::new();
    let sig_task = tokio::spawn(signal::run(
        cfg.join.clone(),
        sig_tx,
        out_rx,
        sig_stop.clone(),
    ));

    let mut p = Participant {
        name: cfg.join.name.clone(),
        cfg,
        sockets,
        local,
        peers: BTreeMap::new(),
        departed: Vec::new(),
        unclaimed: std::collections::VecDeque::new(),
        last_retry: Instant::now(),
        to_signal: out_tx,
        events,
        joined_at: Instant::now(),
        was_joined: false,
        warned_ice: false,
        host: None,
        muted: false,
    };
    let report_every = p.cfg.report_every;
    let mut next_report = report_every.map(|d| Instant::now() + d);
    let result: Result<(), BotError> = loop {
        let mut deadline = p.next_deadline();
        if let Some(r) = next_report {
            deadline = deadline.min(r);
        }
        tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            ev = sig_rx.recv() => match ev {
                Some(SignalEvent::Msg(m)) => {
                    p.on_server(m);
                    p.retry_unclaimed(true);
                }
                Some(SignalEvent::Lost { why }) => p.emit(BotEvent::SignalLost(why)),
                Some(SignalEvent::Done(Err(e))) => break Err(e.into()),
                Some(SignalEvent::Done(Ok(()))) | None => break Ok(()),
            },
            pkt = udp_rx.recv() => {
                if let Some(pkt) = pkt {
                    p.on_packet(pkt);
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                p.tick(now);
                p.retry_unclaimed(false);
                if let (Some(r), Some(every)) = (next_report, report_every)
                    && now >= r
                {
                    let reports = p.reports(now, false);
                    p.emit(BotEvent::Report(reports));
                    next_report = Some(now + every);
                }
            }
        }
    };

    // Leave: close every link (BYE, close_notify), then `leave` on the socket.
    let now = Instant::now();
    let names: Vec<String> = p.peers.keys().cloned().collect();
    for name in names {
        p.drop_peer(&name, now);
    }
    sig_stop.cancel();
    let _ = tokio::time::timeout(LEAVE_TIMEOUT, async {
        while let Some(ev) = sig_rx.recv().await {
            if matches!(ev, SignalEvent::Done(_)) {
                break;
            }
        }
    })
    .await;
    sig_task.abort();
    for r in readers {
        r.abort();
    }
    result?;
    Ok(BotOutcome {
        name: p.name.clone(),
        reports: std::mem::take(&mut p.departed),
    })
}

impl Participant {
    fn emit(&self, ev: BotEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(ev);
        }
    }

    fn media_stopped(&self) -> bool {
        self.cfg
            .media_stop
            .as_ref()
            .is_some_and(|t| t.is_cancelled())
    }

    fn plan(&self) -> MediaPlan<'_> {
        if self.media_stopped() {
            return MediaPlan {
                video: None,
                audio: None,
            };
        }
        MediaPlan {
            video: self.cfg.video.as_deref(),
            audio: self.cfg.audio.as_deref().filter(|_| !self.muted),
        }
    }

    fn sending(&self) -> bool {
        self.cfg.video.is_some() || self.cfg.audio.is_some()
    }

    fn next_deadline(&self) -> Instant {
        let plan = self.plan();
        self.peers
            .values()
            .map(|p| p.next_deadline(plan))
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1))
    }

    fn send(&self, out: Outgoing) {
        let _ = self.to_signal.send(out);
    }

    fn reports(&mut self, now: Instant, final_: bool) -> Vec<PeerReport> {
        let me = self.name.clone();
        self.peers
            .iter_mut()
            .map(|(name, p)| p.stats.snapshot(&me, name, now, final_))
            .collect()
    }

    fn on_server(&mut self, msg: ServerMsg) {
        let now = Instant::now();
        match msg {
            ServerMsg::Joined {
                name,
                peers,
                ice_servers,
                resumed,
                host,
                ..
            } => {
                self.name = name.clone();
                let host_changed = host.is_some() && host != self.host;
                self.host = host;
                if !ice_servers.is_empty() && !self.warned_ice {
                    self.warned_ice = true;
                    tracing::warn!(
                        count = ice_servers.len(),
                        "the server lists ICE servers; huddle bot uses host candidates only \
                         (str0m has no STUN or TURN client), see docs/bot.md"
                    );
                }
                if resumed {
                    // Keep our links; drop those to members gone meanwhile.
                    let gone: Vec<String> = self
                        .peers
                        .keys()
                        .filter(|k| !peers.iter().any(|p| p.eq_ignore_ascii_case(k)))
                        .cloned()
                        .collect();
                    for g in gone {
                        self.drop_peer(&g, now);
                        self.emit(BotEvent::PeerLeft(g));
                    }
                } else {
                    // A fresh membership: offer to everyone, as the protocol says.
                    let old: Vec<String> = self.peers.keys().cloned().collect();
                    for o in old {
                        self.drop_peer(&o, now);
                    }
                    if self.was_joined {
                        self.joined_at = now;
                    }
                }
                self.emit(BotEvent::Joined {
                    name,
                    peers: peers.clone(),
                    resumed,
                });
                if host_changed && let Some(host) = self.host.clone() {
                    self.emit(BotEvent::Host(host));
                }
                if !resumed {
                    for member in peers {
                        self.start_offer(&member, now);
                    }
                }
            }
            ServerMsg::Waiting { room } => self.emit(BotEvent::Waiting(room)),
            ServerMsg::Host { name } => {
                self.host = Some(name.clone());
                self.emit(BotEvent::Host(name));
            }
            ServerMsg::RoomSettings { locked, protected } => {
                self.emit(BotEvent::RoomSettings { locked, protected });
            }
            ServerMsg::Knock { name } => {
                self.emit(BotEvent::Knock(name.clone()));
                if self.cfg.admit_all {
                    self.send(Outgoing::Admit { name });
                }
            }
            ServerMsg::KnockGone { name } => self.emit(BotEvent::KnockGone(name)),
            ServerMsg::Removed { by } => self.emit(BotEvent::Removed(by)),
            ServerMsg::AskMute { by } => {
                self.muted = true;
                self.emit(BotEvent::AskedToMute(by));
            }
            ServerMsg::PeerJoined { name } => {
                // A member that left and came back starts afresh.
                if self.peers.contains_key(&name) {
                    self.drop_peer(&name, now);
                }
                self.emit(BotEvent::PeerJoined(name));
            }
            ServerMsg::PeerLeft { name } => {
                self.drop_peer(&name, now);
                self.emit(BotEvent::PeerLeft(name));
            }
            ServerMsg::Offer { from, sdp } => self.on_offer(&from, &sdp, now),
            ServerMsg::Answer { from, sdp } => self.with_peer(&from, now, |p, out| {
                if let Err(e) = p.accept_answer(&sdp) {
                    tracing::warn!(error = %e, "answer refused");
                }
                p.drain(now, out);
            }),
            ServerMsg::Candidate { from, candidate } => self.with_peer(&from, now, |p, out| {
                p.add_remote_candidate(candidate.as_ref());
                p.drain(now, out);
            }),
            ServerMsg::Error { code, message } => {
                tracing::info!(%code, %message, "the server refused a message");
            }
            ServerMsg::Left { .. } | ServerMsg::Unknown => {}
        }
    }

    fn start_offer(&mut self, member: &str, now: Instant) {
        match Peer::offer(member, &self.local, self.sending(), now, self.joined_at) {
            Ok((peer, sdp)) => {
                let cands = peer.local_candidates(&self.local);
                self.peers.insert(member.to_owned(), peer);
                self.send(Outgoing::Offer {
                    to: member.to_owned(),
                    sdp,
                });
                self.trickle(member, cands);
                self.with_peer(member, now, |p, out| p.drain(now, out));
            }
            Err(e) => tracing::warn!(peer = member, error = %e, "cannot offer"),
        }
    }

    fn trickle(&self, member: &str, cands: Vec<serde_json::Value>) {
        for c in cands {
            self.send(Outgoing::Candidate {
                to: member.to_owned(),
                candidate: Some(c),
            });
        }
        self.send(Outgoing::Candidate {
            to: member.to_owned(),
            candidate: None,
        });
    }

    fn on_offer(&mut self, from: &str, sdp: &str, now: Instant) {
        // A renegotiation (e.g. an ICE restart) of a link we have.
        if let Some(p) = self.peers.get_mut(from)
            && p.can_take_offer(sdp)
        {
            match p.accept_offer(sdp) {
                Ok(answer) => {
                    let cands = p.local_candidates(&self.local);
                    let mut out = PeerOutput::default();
                    p.drain(now, &mut out);
                    self.send(Outgoing::Answer {
                        to: from.to_owned(),
                        sdp: answer,
                    });
                    self.trickle(from, cands);
                    self.flush(from, out, now);
                    return;
                }
                Err(e) => tracing::info!(error = %e, "new connection from {from}"),
            }
        }
        // Otherwise a new link (replacing the old one, if any).
        if self.peers.contains_key(from) {
            self.drop_peer(from, now);
        }
        match Peer::answer(from, &self.local, self.sending(), sdp, now, self.joined_at) {
            Ok((peer, answer)) => {
                let cands = peer.local_candidates(&self.local);
                self.peers.insert(from.to_owned(), peer);
                self.send(Outgoing::Answer {
                    to: from.to_owned(),
                    sdp: answer,
                });
                self.trickle(from, cands);
                self.with_peer(from, now, |p, out| p.drain(now, out));
            }
            Err(e) => tracing::warn!(peer = from, error = %e, "cannot answer"),
        }
    }

    fn drop_peer(&mut self, name: &str, now: Instant) {
        if let Some(mut p) = self.peers.remove(name) {
            let me = self.name.clone();
            self.departed.push(p.stats.snapshot(&me, name, now, true));
            let mut out = PeerOutput::default();
            p.close(now, &mut out);
            out.events.clear();
            self.flush(name, out, now);
        }
    }

    fn on_packet(&mut self, pkt: Packet) {
        if !self.deliver(&pkt, pkt.at) {
            // Nobody knows the sender yet: typically the member's first
            // DTLS flight, sent as soon as its ICE checks succeed, arriving
            // before its answer (with its address) has reached us. Hold it
            // briefly instead of waiting for a retransmission (1 s).
            if self.unclaimed.len() == UNCLAIMED_MAX {
                self.unclaimed.pop_front();
            }
            self.unclaimed.push_back(pkt);
        }
    }

    /// Offers held datagrams again: after the remote side told us more
    /// (`now_anyway`), or on a timer at most every [`UNCLAIMED_RETRY`] (a
    /// connection may claim them once its ICE check succeeds).
    fn retry_unclaimed(&mut self, now_anyway: bool) {
        let now = Instant::now();
        if self.unclaimed.is_empty()
            || (!now_anyway && now.saturating_duration_since(self.last_retry) < UNCLAIMED_RETRY)
        {
            return;
        }
        self.last_retry = now;
        let held = std::mem::take(&mut self.unclaimed);
        for pkt in held {
            // Time fed to str0m never goes back: a held datagram counts as
            // received now.
            if now.saturating_duration_since(pkt.at) <= UNCLAIMED_FOR && !self.deliver(&pkt, now) {
                self.unclaimed.push_back(pkt);
            }
        }
    }

    /// Feeds a datagram (received AT) to the peer it belongs to; false if
    /// none takes it.
    fn deliver(&mut self, pkt: &Packet, at: Instant) -> bool {
        let Some(input) = receive_input(at, pkt.from, pkt.to, &pkt.data) else {
            return true;
        };
        let Some(name) = self
            .peers
            .iter()
            .find(|(_, p)| p.accepts(&input))
            .map(|(n, _)| n.clone())
        else {
            return false;
        };
        self.with_peer(&name, at, |p, out| p.handle_input(at, input, out));
        true
    }

    fn tick(&mut self, now: Instant) {
        let names: Vec<String> = self.peers.keys().cloned().collect();
        for name in names {
            let mut out = PeerOutput::default();
            let (video, audio) = if self.media_stopped() {
                (None, None)
            } else {
                let audio = self.cfg.audio.clone().filter(|_| !self.muted);
                (self.cfg.video.clone(), audio)
            };
            if let Some(p) = self.peers.get_mut(&name) {
                let plan = MediaPlan {
                    video: video.as_deref(),
                    audio: audio.as_deref(),
                };
                if p.next_deadline(plan) <= now {
                    p.tick(now, plan, &mut out);
                }
            }
            self.flush(&name, out, now);
        }
    }

    /// Sends what a peer produced and acts on its events.
    /// Lets F act on peer NAME (if it is still there), then sends and
    /// reports what that produced.
    fn with_peer(&mut self, name: &str, now: Instant, f: impl FnOnce(&mut Peer, &mut PeerOutput)) {
        let mut out = PeerOutput::default();
        if let Some(p) = self.peers.get_mut(name) {
            f(p, &mut out);
        }
        self.flush(name, out, now);
    }

    fn flush(&mut self, name: &str, out: PeerOutput, now: Instant) {
        for (from, to, data) in &out.transmits {
            let sock = self
                .sockets
                .iter()
                .find(|(a, _)| a == from)
                .or_else(|| self.sockets.first());
            if let Some((_, s)) = sock
                && let Err(e) = s.try_send_to(data, *to)
            {
                tracing::trace!(error = %e, "udp send dropped");
            }
        }
        for ev in out.events {
            match ev {
                PeerEvent::Connected => self.emit(BotEvent::Connected(name.to_owned())),
                PeerEvent::FirstFrame => self.emit(BotEvent::FirstFrame(name.to_owned())),
                PeerEvent::ChannelOpen => {
                    let say = self.cfg.say.clone();
                    for text in say {
                        self.chat_to(name, &text, now);
                    }
                }
                PeerEvent::Chat { text } => {
                    self.emit(BotEvent::Chat {
                        from: name.to_owned(),
                        text: text.clone(),
                    });
                    if self.cfg.echo && !text.starts_with(ECHO_PREFIX) {
                        let reply = format!("{ECHO_PREFIX}{text}");
                        let names: Vec<String> = self.peers.keys().cloned().collect();
                        for n in names {
                            self.chat_to(&n, &reply, now);
                        }
                    }
                }
                PeerEvent::Hand { up } => self.emit(BotEvent::Hand {
                    from: name.to_owned(),
                    up,
                }),
                PeerEvent::Reaction { emoji } => self.emit(BotEvent::Reaction {
                    from: name.to_owned(),
                    emoji: emoji.clone(),
                }),
                PeerEvent::FileDeclined { name: file } => self.emit(BotEvent::FileDeclined {
                    from: name.to_owned(),
                    name: file.clone(),
                }),
                PeerEvent::Disconnected => {
                    tracing::debug!(peer = name, "ICE disconnected");
                }
            }
        }
    }

    fn chat_to(&mut self, name: &str, text: &str, now: Instant) {
        let mut out = PeerOutput::default();
        if let Some(p) = self.peers.get_mut(name)
            && !p.send_chat(now, text, epoch_ms(), &mut out)
        {
            tracing::debug!(peer = name, "chat not sent: data channel not open");
        }
        // Sending produces only datagrams (no events), so this cannot recurse.
        out.events.clear();
        self.flush(name, out, now);
    }
}
