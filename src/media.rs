//! The media server's I/O: one UDP socket for every media-server room,
//! driving the sans-IO [`huddle_sfu::Sfu`].
//!
//! The signaling core decides which rooms are on the media server and
//! emits [`MediaCmd`]s; the hub hands them to this task over a channel.
//! The task feeds the Sfu datagrams, commands and timeouts, sends what it
//! transmits, and reports what the members must hear (the server's offers
//! and answers, the active speaker, a connection that failed) back to the
//! hub as [`MediaEvent`]s. Nothing here blocks: a datagram the socket
//! cannot take at once is dropped and counted, as a router would.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use huddle_core::core::{MediaCmd, MediaEvent};
use huddle_core::protocol::LayerWant;
use huddle_sfu::{Layer, Sfu, SfuConfig, SfuError, SfuOutput, SfuStats};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::hub::Hub;

/// Media commands waiting for the media task (`--sfu-queue`); past it the
/// hub drops them and counts them.
pub const DEFAULT_COMMAND_QUEUE: usize = 4096;

/// The largest datagram read (browsers keep RTP under the path MTU; a
/// bigger one is cut and fails its checks).
const RECV_BUFFER: usize = 2048;

/// What the media server runs with.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The UDP address to bind (`--media-listen`); `None`: the HTTP
    /// listener's address and port.
    pub listen: Option<SocketAddr>,
    /// The address to advertise in the server's candidates
    /// (`--media-public-ip`); `None`: the bound address, or the first
    /// address of this host when bound to every interface.
    pub public_ip: Option<IpAddr>,
    /// The Sfu's own limits.
    pub sfu: SfuConfig,
    /// Commands queued for the media task before the hub drops them.
    pub command_queue: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            listen: None,
            public_ip: None,
            sfu: SfuConfig::default(),
            command_queue: DEFAULT_COMMAND_QUEUE,
        }
    }
}

/// Errors starting the media server.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The UDP socket could not be bound.
    #[error("cannot bind the media server's UDP socket on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Bound to every interface, and no address to advertise was found.
    #[error(
        "the media server listens on {0} but this host has no address to advertise; give --media-public-ip"
    )]
    NoPublicIp(IpAddr),
}

/// Counters of the media task, for `/metrics`.
#[derive(Debug, Default)]
pub struct MediaCounts {
    /// Datagrams received.
    pub datagrams_in: AtomicU64,
    /// Datagrams no member accepted.
    pub datagrams_unknown: AtomicU64,
    /// Datagrams sent.
    pub datagrams_out: AtomicU64,
    /// Datagrams dropped because the socket's send buffer was full.
    pub send_dropped: AtomicU64,
    /// Commands the Sfu refused (bad SDP, limits).
    pub refused: AtomicU64,
    /// Commands the hub dropped because the queue to the media task was
    /// full (the media server cannot keep up).
    pub commands_dropped: AtomicU64,
    /// The Sfu's own figures, copied at most every [`STATS_EVERY`].
    pub sfu: std::sync::Mutex<SfuStats>,
}

/// How often the media task copies the Sfu's figures for `/metrics`.
pub const STATS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl MediaCounts {
    /// The figures as they are now.
    pub fn snapshot(&self) -> MediaSnapshot {
        MediaSnapshot {
            datagrams_in: self.datagrams_in.load(Ordering::Relaxed),
            datagrams_unknown: self.datagrams_unknown.load(Ordering::Relaxed),
            datagrams_out: self.datagrams_out.load(Ordering::Relaxed),
            send_dropped: self.send_dropped.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            commands_dropped: self.commands_dropped.load(Ordering::Relaxed),
            sfu: self.sfu.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

/// [`MediaCounts`] read at one moment.
#[derive(Debug, Clone, Default)]
pub struct MediaSnapshot {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams no member accepted.
    pub datagrams_unknown: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams dropped at a full send buffer.
    pub send_dropped: u64,
    /// Commands the Sfu refused.
    pub refused: u64,
    /// Commands dropped at a full queue.
    pub commands_dropped: u64,
    /// The Sfu's figures.
    pub sfu: SfuStats,
}

/// A bound media server, ready to run with [`MediaServer::run`].
pub struct MediaServer {
    socket: UdpSocket,
    /// The address the Sfu advertises, and the destination it is told every
    /// datagram came to (one candidate: a socket bound to every interface
    /// cannot tell which address a datagram came to).
    public: SocketAddr,
    sfu: Sfu,
    cmds: mpsc::Receiver<MediaCmd>,
    counts: Arc<MediaCounts>,
}

/// The hub's end of the media server: its command queue (bounded: the hub
/// never waits for the media task, it drops and counts instead) and its
/// counters.
#[derive(Debug)]
pub struct MediaLink {
    tx: mpsc::Sender<MediaCmd>,
    counts: Arc<MediaCounts>,
}

/// A media link with room for CAPACITY commands, and the media task's end.
pub fn channel(capacity: usize) -> (MediaLink, mpsc::Receiver<MediaCmd>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let counts = Arc::new(MediaCounts::default());
    (MediaLink { tx, counts }, rx)
}

impl MediaLink {
    /// Queues CMD for the media task; a full queue drops it and counts it
    /// (a lost command ends in that member's media connection failing,
    /// which the core handles). After shutdown nothing matters any more.
    pub fn send(&self, cmd: MediaCmd) {
        if let Err(mpsc::error::TrySendError::Full(cmd)) = self.tx.try_send(cmd) {
            debug!(?cmd, "media command queue full: dropped");
            self.counts.commands_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The media server's figures now.
    pub fn snapshot(&self) -> MediaSnapshot {
        self.counts.snapshot()
    }
}

impl MediaServer {
    /// Binds `cfg.listen` (or `default_listen`, the HTTP listener's
    /// address: if that port is taken over UDP and the HTTP port was picked
    /// by the system, any free UDP port).
    pub async fn bind(
        cfg: &MediaConfig,
        default_listen: SocketAddr,
        port_was_ephemeral: bool,
    ) -> Result<(Self, MediaLink), MediaError> {
        let socket = match cfg.listen {
            Some(addr) => UdpSocket::bind(addr)
                .await
                .map_err(|source| MediaError::Bind { addr, source })?,
            None => match UdpSocket::bind(default_listen).await {
                Ok(s) => s,
                Err(_) if port_was_ephemeral => {
                    let any = SocketAddr::new(default_listen.ip(), 0);
                    UdpSocket::bind(any)
                        .await
                        .map_err(|source| MediaError::Bind { addr: any, source })?
                }
                Err(source) => {
                    return Err(MediaError::Bind {
                        addr: default_listen,
                        source,
                    });
                }
            },
        };
        let local = socket.local_addr().map_err(|source| MediaError::Bind {
            addr: cfg.listen.unwrap_or(default_listen),
            source,
        })?;
        let ip = crate::tls::advertised_ip(cfg.public_ip, local)
            .ok_or(MediaError::NoPublicIp(local.ip()))?;
        let public = SocketAddr::new(ip, local.port());
        let sfu = Sfu::new(cfg.sfu.clone(), vec![public], now());
        let (link, rx) = channel(cfg.command_queue);
        let counts = link.counts.clone();
        info!(%local, %public, "media server listening (UDP)");
        Ok((
            Self {
                socket,
                public,
                sfu,
                cmds: rx,
                counts,
            },
            link,
        ))
    }

    /// The UDP address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Serves until `shutdown` is cancelled or the hub drops its sender.
    pub async fn run(mut self, hub: Arc<Hub>, shutdown: CancellationToken) {
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut published = now();
        loop {
            self.flush(&hub);
            if now() - published >= STATS_EVERY {
                published = now();
                *self.counts.sfu.lock().unwrap_or_else(|e| e.into_inner()) = self.sfu.stats();
            }
            let deadline = self.sfu.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                got = self.socket.recv_from(&mut buf) => match got {
                    Ok((n, source)) => {
                        self.counts.datagrams_in.fetch_add(1, Ordering::Relaxed);
                        if !self.sfu.handle_datagram(now(), source, self.public, &buf[..n]) {
                            self.counts.datagrams_unknown.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // Linux reports an ICMP port-unreachable for an earlier
                    // send as an error of the next receive: nothing to do.
                    Err(e) => debug!(error = %e, "media socket receive"),
                },
                cmd = self.cmds.recv() => match cmd {
                    Some(cmd) => self.command(cmd, &hub),
                    None => return,
                },
                () = sleep => self.sfu.handle_timeout(now()),
                () = shutdown.cancelled() => return,
            }
        }
    }

    fn command(&mut self, cmd: MediaCmd, hub: &Hub) {
        let now = now();
        match cmd {
            MediaCmd::Join {
                room,
                member,
                stream,
            } => {
                if let Err(e) = self.sfu.join(&room, member, &stream, now) {
                    self.refuse(member, &e, hub);
                }
            }
            MediaCmd::Leave { member } => self.sfu.leave(member, now),
            MediaCmd::Offer { member, sdp } => match self.sfu.up_offer(member, &sdp, now) {
                Ok(answer) => hub.media_event(MediaEvent::Answer {
                    member,
                    sdp: answer,
                }),
                Err(e) => self.refuse(member, &e, hub),
            },
            MediaCmd::Answer { member, sdp } => {
                if let Err(e) = self.sfu.down_answer(member, &sdp, now) {
                    self.refuse(member, &e, hub);
                }
            }
            MediaCmd::Layer {
                member,
                publisher,
                want,
            } => self.sfu.set_layer(member, publisher, layer(want)),
        }
    }

    /// The Sfu refused MEMBER's request: a bad message of its own is
    /// answered `bad-message`; a media server at capacity sends it out of
    /// the room with `room-full`, anything else with `unavailable`.
    fn refuse(&mut self, member: u64, e: &SfuError, hub: &Hub) {
        self.counts.refused.fetch_add(1, Ordering::Relaxed);
        match e {
            // The member's own message: it hears why and keeps its place.
            SfuError::Sdp(_)
            | SfuError::Negotiation(_)
            | SfuError::NoPendingOffer(_)
            | SfuError::PublishLimit { .. } => {
                debug!(member, error = %e, "media server refused a message");
                hub.media_event(MediaEvent::Refused {
                    member,
                    why: format!("the media server refused it: {e}"),
                });
            }
            SfuError::TrackLimit { .. } | SfuError::RoomFull(_) | SfuError::TooManyMembers(_) => {
                warn!(member, error = %e, "media server at capacity");
                self.sfu.leave(member, now());
                hub.media_event(MediaEvent::Full { member });
            }
            _ => {
                warn!(member, error = %e, "media server refused a member");
                self.sfu.leave(member, now());
                hub.media_event(MediaEvent::Failed { member });
            }
        }
    }

    /// Sends what the Sfu transmits and hands its events to the hub.
    fn flush(&mut self, hub: &Hub) {
        while let Some(out) = self.sfu.poll_output() {
            match out {
                SfuOutput::Transmit {
                    destination, data, ..
                } => match self.socket.try_send_to(&data, destination) {
                    Ok(_) => {
                        self.counts.datagrams_out.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        self.counts.send_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                },
                SfuOutput::DownOffer { member, sdp } => {
                    hub.media_event(MediaEvent::Offer { member, sdp });
                }
                SfuOutput::Speaker { room, member } => {
                    hub.media_event(MediaEvent::Speaker { room, member });
                }
                SfuOutput::Connected { member, pc } => {
                    debug!(member, ?pc, "media connection up");
                }
                SfuOutput::Failed { member, reason } => {
                    info!(member, reason, "media connection failed");
                    hub.media_event(MediaEvent::Failed { member });
                }
            }
        }
    }
}

/// The Sfu's layer for a `layer` message's `want`.
fn layer(want: LayerWant) -> Layer {
    match want {
        LayerWant::High => Layer::High,
        LayerWant::Mid => Layer::Mid,
        LayerWant::Low => Layer::Low,
        LayerWant::Off => Layer::Off,
    }
}

/// The current time as the Sfu wants it (tokio's clock, as the hub's).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
