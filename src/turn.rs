//! The embedded TURN/STUN server (`--turn-listen`): relays media for the
//! calls that cannot go peer to peer (symmetric NATs, firewalls).
//!
//! The TURN protocol itself is webrtc-rs' `turn` crate 0.17.2, vendored in
//! `vendor/turn` with small patches (each listed in `vendor/turn/PATCHES.md`)
//! for holes that cannot be closed from outside it:
//! - an allocation that ends no longer closes the server's listening conn
//!   (for [`TcpMux`] that was the whole TCP listener);
//! - nonces are stateless (an HMAC over issue time and client address), so
//!   unauthenticated requests leave nothing behind;
//! - a peer filter hook: CreatePermission and ChannelBind for a refused peer
//!   get 403, Send indications and ChannelData to it are dropped;
//! - `Server::delete_allocations_of_client`, so a dropped TCP connection
//!   takes its allocations with it;
//! - the EVEN-PORT search is bounded, quota refusals are 486, and one
//!   allocation holds at most 256 permissions and channels.
//!
//! Around the crate, this module closes the remaining gaps:
//! - **TURN REST credentials.** Usernames are `<unix-expiry>:<name>`, checked
//!   against the same secret the signaling server mints them from; expired
//!   ones are refused, and a changed name or expiry fails the message
//!   integrity check (the crate's own handler knows only bare timestamps).
//!   An expired username is still accepted from the client address of an
//!   allocation it holds, so the browser's refreshes (and permissions,
//!   channel binds) do not cut a long call — but it cannot create new ones.
//! - **Peers.** [`PeerPolicy`] refuses loopback, private, link-local,
//!   multicast and other non-public ranges unless `--turn-allowed-peer-ip`
//!   opens them, and always the server's own listening addresses.
//! - **TCP.** The crate serves UDP; [`TcpMux`] accepts TCP connections on the
//!   same port, splits the byte stream into STUN messages and ChannelData
//!   (RFC 5766 §11.5 framing), and hands them to the crate as datagrams.
//!   Relayed traffic still leaves over UDP, as TURN over TCP does.
//!   A TCP connection that drops ends the allocations made over it.
//! - **Limits.** Quotas of live allocations per username
//!   (`--turn-user-quota`), per client IP (`--turn-max-allocations-per-ip`)
//!   and in all (`--turn-max-allocations`), answered with 486; a bandwidth
//!   cap per allocation and direction (`--turn-bandwidth`; excess packets
//!   are dropped, as a congested link would), a relay port range
//!   (`--turn-relay-ports`, which a requested port must lie in too) and a
//!   bound on TCP connections.
//!
//! The quotas need the username and client address of the allocation being
//! created, which the crate does not pass to the relay allocator. Each
//! listener runs its own crate `Server`, whose requests are handled one at a
//! time, so the request its auth handler saw last is the one the allocation
//! belongs to.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ipnet::IpNet;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use turn::auth::{AuthHandler, generate_auth_key};
use turn::relay::RelayAddressGenerator;
use turn::server::Server;
use turn::server::config::{ConnConfig, PeerFilter, ServerConfig};
use webrtc_util::Conn;

use crate::ice;

/// The default TURN port.
pub const DEFAULT_TURN_PORT: u16 = 3478;
/// Default live allocations per TURN username. A browser makes one per
/// peer connection and transport, so a member of a full room of 16 needs up
/// to 30.
pub const DEFAULT_USER_QUOTA: usize = 40;
/// Default cap per allocation and direction, in bits per second.
pub const DEFAULT_BANDWIDTH: u64 = 8_000_000;
/// Default bound on TCP connections to the TURN port.
pub const DEFAULT_MAX_TCP: usize = 1024;
/// Default cap on live allocations in all. Each holds a UDP socket (a file
/// descriptor) and two tasks; 10,000 stays well inside one machine's
/// descriptor limit (20,000 here) next to the signaling connections.
pub const DEFAULT_MAX_ALLOCATIONS: usize = 10_000;
/// Default cap on live allocations per client IP: six members behind one
/// NAT, each in a full room of 16 (30 allocations each, see
/// [`DEFAULT_USER_QUOTA`]), with room to spare, while one address can hold
/// at most 2 % of [`DEFAULT_MAX_ALLOCATIONS`].
pub const DEFAULT_MAX_ALLOCATIONS_PER_IP: usize = 200;
/// Peer ranges refused by default (coturn's `denied-peer-ip` advice):
/// "this network", RFC 1918 private, CGNAT, loopback, link-local,
/// multicast and broadcast; IPv6 unspecified, loopback, unique-local,
/// link-local and multicast. IPv4-mapped IPv6 peers are checked as IPv4.
pub const DEFAULT_DENIED_PEERS: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];
/// The realm in TURN's long-term credentials.
pub const REALM: &str = "huddle";
/// Largest TURN message accepted over TCP (the crate reads 1500 bytes).
const MAX_TCP_FRAME: usize = 1500;
/// A TCP connection that sends nothing for this long is closed (longer
/// than an allocation's default lifetime of 10 minutes).
const TCP_IDLE: Duration = Duration::from_secs(11 * 60);
/// Frames waiting to be written to one TCP connection; more are dropped.
const TCP_QUEUE: usize = 256;

/// Settings of the embedded TURN server.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// UDP and TCP address to listen on.
    pub listen: SocketAddr,
    /// The address put in relay candidates and URLs (default: the listen
    /// address, or the first non-loopback address when that is a wildcard).
    pub public_ip: Option<IpAddr>,
    /// Ports for relayed traffic (default: any free port).
    pub relay_ports: Option<(u16, u16)>,
    /// Live allocations per TURN username.
    pub user_quota: usize,
    /// Bits per second per allocation and direction; 0 for no cap.
    pub bandwidth: u64,
    /// Open TCP connections to the TURN port.
    pub max_tcp: usize,
    /// Live allocations in all.
    pub max_allocations: usize,
    /// Live allocations per client IP.
    pub max_allocations_per_ip: usize,
    /// Peer ranges opened although [`DEFAULT_DENIED_PEERS`] refuses them
    /// (`--turn-allowed-peer-ip`; the tests open 127.0.0.0/8).
    pub allowed_peers: Vec<IpNet>,
    /// Peer ranges refused on top of the defaults (`--turn-denied-peer-ip`).
    pub denied_peers: Vec<IpNet>,
    /// The server's other listening sockets (HTTP, media): never relayed
    /// to, whatever the ranges say. The TURN address itself is added.
    pub own_addrs: Vec<SocketAddr>,
    /// Serve TURN on the HTTP(S) listener too (`--no-turn-on-listener`
    /// turns it off): connections handed over with [`ListenerTurn::adopt`].
    pub on_listener: bool,
    /// The HTTP(S) listener's bound address, filled in by the server when
    /// it has bound it; with [`TurnConfig::on_listener`], TURN connections
    /// handed over from it are served as coming to this address.
    pub listener_addr: Option<SocketAddr>,
}

impl TurnConfig {
    /// Defaults around a listen address.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            public_ip: None,
            relay_ports: None,
            user_quota: DEFAULT_USER_QUOTA,
            bandwidth: DEFAULT_BANDWIDTH,
            max_tcp: DEFAULT_MAX_TCP,
            max_allocations: DEFAULT_MAX_ALLOCATIONS,
            max_allocations_per_ip: DEFAULT_MAX_ALLOCATIONS_PER_IP,
            allowed_peers: Vec::new(),
            denied_peers: Vec::new(),
            own_addrs: Vec::new(),
            on_listener: true,
            listener_addr: None,
        }
    }

    /// A copy with `addrs` added to [`TurnConfig::own_addrs`].
    pub fn with_own_addrs(&self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        let mut cfg = self.clone();
        cfg.own_addrs.extend(addrs);
        cfg
    }
}

/// Why the TURN server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// A socket could not be bound.
    #[error("TURN: cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// No address to advertise.
    #[error("TURN: listening on {0} but no address to advertise was found; set --turn-public-ip")]
    NoPublicIp(IpAddr),
    /// The TURN crate refused its configuration.
    #[error("TURN")]
    Turn(#[from] turn::Error),
}

/// A running embedded TURN server.
pub struct TurnServer {
    udp: Server,
    tcp: Arc<Server>,
    local: SocketAddr,
    public: SocketAddr,
    mux: Arc<TcpMux>,
    /// TURN over the HTTP(S) listener, when on.
    listener: Option<(Arc<Server>, ListenerTurn)>,
}

/// TURN over TCP (or TLS) connections that arrived on the HTTP(S)
/// listener, handed over by the server after it saw the first bytes.
/// They get a crate `Server` of their own, as coming to the listener's
/// address.
#[derive(Clone)]
pub struct ListenerTurn(Arc<TcpMux>);

impl ListenerTurn {
    /// Serves `stream` (a TCP or TLS connection from `peer` whose first
    /// bytes are a STUN message, still unread) as TURN over TCP. Refused,
    /// and closed, past `--turn-max-tcp` such connections.
    pub fn adopt<S>(&self, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        self.0.adopt(stream, peer);
    }
}

impl TurnServer {
    /// Binds UDP and TCP on `cfg.listen` (the same port for both) and starts
    /// serving, with credentials checked against `secret`.
    pub async fn start(cfg: &TurnConfig, secret: Arc<[u8]>) -> Result<Self, TurnError> {
        let (udp, tcp) = bind_pair(cfg.listen).await?;
        let local = udp.local_addr().map_err(|source| TurnError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let public_ip = crate::tls::advertised_ip(cfg.public_ip, local)
            .ok_or(TurnError::NoPublicIp(local.ip()))?;
        let public = SocketAddr::new(public_ip, local.port());
        let quota = Arc::new(Quota::new(
            cfg.user_quota,
            cfg.max_allocations_per_ip,
            cfg.max_allocations,
        ));
        let mut own_addrs = cfg.own_addrs.clone();
        own_addrs.push(local);
        let mut own_ips = crate::tls::local_addresses();
        own_ips.push(public_ip);
        let policy = Arc::new(PeerPolicy::new(
            &cfg.allowed_peers,
            &cfg.denied_peers,
            own_addrs,
            own_ips,
        ));
        let filter: PeerFilter = {
            let policy = policy.clone();
            Arc::new(move |peer: &SocketAddr| policy.allows(*peer))
        };
        let (dropped_tx, dropped_rx) = mpsc::channel(TCP_QUEUE);
        let mux = TcpMux::new(local, cfg.max_tcp, dropped_tx);
        mux.listen(tcp);
        let udp_conn: Arc<dyn Conn + Send + Sync> = Arc::new(udp);
        let mux_conn: Arc<dyn Conn + Send + Sync> = mux.clone();
        let mut conns = vec![(Transport::Udp, udp_conn), (Transport::Tcp, mux_conn)];
        let mut listener_mux = None;
        if let (true, Some(addr)) = (cfg.on_listener, cfg.listener_addr) {
            let (tx, rx) = mpsc::channel(TCP_QUEUE);
            let m = TcpMux::new(addr, cfg.max_tcp, tx);
            let conn: Arc<dyn Conn + Send + Sync> = m.clone();
            conns.push((Transport::Listener, conn));
            listener_mux = Some((m, rx));
        }
        let mut servers = Vec::new();
        for (transport, conn) in conns {
            let last_auth = Arc::new(Mutex::new(None));
            let relays = Relays {
                transport,
                bind_ip: local.ip(),
                public_ip,
                ports: cfg.relay_ports,
                last_auth: last_auth.clone(),
                quota: quota.clone(),
                bandwidth: cfg.bandwidth,
            };
            let auth = Auth {
                transport,
                secret: secret.clone(),
                quota: quota.clone(),
                last_auth,
            };
            servers.push(
                Server::new(ServerConfig {
                    conn_configs: vec![ConnConfig {
                        conn,
                        relay_addr_generator: Box::new(relays),
                    }],
                    realm: REALM.to_owned(),
                    auth_handler: Arc::new(auth),
                    channel_bind_timeout: Duration::ZERO,
                    alloc_close_notify: None,
                    peer_filter: Some(filter.clone()),
                })
                .await?,
            );
        }
        let listener = match listener_mux {
            Some((m, rx)) => {
                let server = Arc::new(servers.pop().expect("three servers"));
                end_dropped_allocations(server.clone(), &m, rx);
                info!(listen = ?cfg.listener_addr, "TURN over TCP and TLS on the HTTP listener too");
                Some((server, ListenerTurn(m)))
            }
            None => None,
        };
        let tcp = Arc::new(servers.pop().expect("two servers"));
        let udp = servers.pop().expect("two servers");
        end_dropped_allocations(tcp.clone(), &mux, dropped_rx);
        info!(listen = %local, advertised = %public, "TURN server running (UDP and TCP)");
        Ok(Self {
            udp,
            tcp,
            local,
            public,
            mux,
            listener,
        })
    }

    /// Where TURN connections that arrive on the HTTP(S) listener go, when
    /// [`TurnConfig::on_listener`] is on.
    pub fn on_listener(&self) -> Option<ListenerTurn> {
        self.listener.as_ref().map(|(_, l)| l.clone())
    }

    /// The address put in relay candidates and URLs.
    pub fn public_ip(&self) -> IpAddr {
        self.public.ip()
    }

    /// The address bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The URLs browsers are given: UDP first, then TCP.
    pub fn urls(&self) -> Vec<String> {
        let host = match self.public.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let port = self.public.port();
        vec![
            format!("turn:{host}:{port}?transport=udp"),
            format!("turn:{host}:{port}?transport=tcp"),
        ]
    }

    /// Stops serving; allocations end.
    pub async fn close(self) {
        let _ = self.udp.close().await;
        let _ = self.tcp.close().await;
        self.mux.shutdown();
        if let Some((server, ListenerTurn(mux))) = self.listener {
            let _ = server.close().await;
            mux.shutdown();
        }
    }
}

/// A TCP connection that drops takes its allocations with it (their
/// 5-tuple cannot be used again; RFC 6062 §5.2 ends them too).
fn end_dropped_allocations(
    server: Arc<Server>,
    mux: &TcpMux,
    mut dropped: mpsc::Receiver<SocketAddr>,
) {
    let stop = mux.stop.clone();
    tokio::spawn(async move {
        loop {
            let peer = tokio::select! {
                p = dropped.recv() => match p {
                    Some(p) => p,
                    None => return,
                },
                () = stop.cancelled() => return,
            };
            if server.delete_allocations_of_client(peer).await.is_err() {
                return;
            }
        }
    });
}

/// Binds UDP and TCP on one port; with port 0, retries until a port is
/// free for both.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), TurnError> {
    let err = |source| TurnError::Bind { addr, source };
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await.map_err(err)?;
        let port = udp.local_addr().map_err(err)?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no port free for both UDP and TCP",
    )))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The transport a crate `Server` serves; part of an allocation's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Transport {
    Udp,
    Tcp,
    /// TCP or TLS on the HTTP(S) listener.
    Listener,
}

/// The request the auth handler accepted last (see the module doc).
#[derive(Debug, Clone)]
struct LastAuth {
    user: String,
    client: SocketAddr,
}

/// Checks TURN REST usernames and gives the crate the long-term key.
struct Auth {
    transport: Transport,
    secret: Arc<[u8]>,
    quota: Arc<Quota>,
    /// For the quota (see the module doc).
    last_auth: Arc<Mutex<Option<LastAuth>>>,
}

impl AuthHandler for Auth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        let checked = match ice::password_for(&self.secret, username, unix_now()) {
            // A browser refreshes its allocations with the credentials it
            // joined with: from the client address of an allocation that
            // username holds, expiry does not cut a running call. A new
            // allocation comes from a new address (a new 5-tuple), so it
            // needs fresh credentials.
            Err(ice::CredentialError::Expired(_))
                if self.quota.holds(username, self.transport, src) =>
            {
                Ok(ice::credential_for(&self.secret, username))
            }
            other => other,
        };
        match checked {
            Ok(password) => {
                *lock(&self.last_auth) = Some(LastAuth {
                    user: username.to_owned(),
                    client: src,
                });
                Ok(generate_auth_key(username, realm, &password))
            }
            Err(e) => {
                debug!(%src, username, error = %e, "TURN credentials refused");
                Err(turn::Error::Other(e.to_string()))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which quota refused an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuotaFull {
    User,
    Ip,
    Total,
}

impl fmt::Display for QuotaFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::User => "per-username quota (--turn-user-quota)",
            Self::Ip => "per-IP quota (--turn-max-allocations-per-ip)",
            Self::Total => "global cap (--turn-max-allocations)",
        })
    }
}

/// Live allocations per username, per client IP and in all, and which
/// client addresses hold them.
struct Quota {
    per_user: usize,
    per_ip: usize,
    total: usize,
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    total: usize,
    users: HashMap<String, usize>,
    ips: HashMap<IpAddr, usize>,
    /// Allocations per (transport, client address, username).
    holders: HashMap<(Transport, SocketAddr, String), usize>,
}

/// Counts in a map, removed at zero so the maps hold only live keys.
fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Quota {
    fn new(per_user: usize, per_ip: usize, total: usize) -> Self {
        Self {
            per_user,
            per_ip,
            total,
            live: Mutex::new(Live::default()),
        }
    }

    /// Whether `user` holds a live allocation made from `client` over
    /// `transport`.
    fn holds(&self, user: &str, transport: Transport, client: SocketAddr) -> bool {
        lock(&self.live)
            .holders
            .contains_key(&(transport, client, user.to_owned()))
    }

    fn take(
        self: &Arc<Self>,
        user: &str,
        transport: Transport,
        client: SocketAddr,
    ) -> Result<QuotaGuard, QuotaFull> {
        let ip = client.ip().to_canonical();
        let mut live = lock(&self.live);
        if live.total >= self.total {
            return Err(QuotaFull::Total);
        }
        if live.ips.get(&ip).copied().unwrap_or(0) >= self.per_ip {
            return Err(QuotaFull::Ip);
        }
        if live.users.get(user).copied().unwrap_or(0) >= self.per_user {
            return Err(QuotaFull::User);
        }
        live.total += 1;
        *live.ips.entry(ip).or_insert(0) += 1;
        *live.users.entry(user.to_owned()).or_insert(0) += 1;
        *live
            .holders
            .entry((transport, client, user.to_owned()))
            .or_insert(0) += 1;
        Ok(QuotaGuard {
            quota: self.clone(),
            user: user.to_owned(),
            transport,
            client,
        })
    }
}

/// One live allocation; gives its slots back when dropped.
struct QuotaGuard {
    quota: Arc<Quota>,
    user: String,
    transport: Transport,
    client: SocketAddr,
}

impl Drop for QuotaGuard {
    fn drop(&mut self) {
        let mut live = lock(&self.quota.live);
        live.total -= 1;
        decrement(&mut live.ips, &self.client.ip().to_canonical());
        decrement(&mut live.users, &self.user);
        decrement(
            &mut live.holders,
            &(self.transport, self.client, std::mem::take(&mut self.user)),
        );
    }
}

/// Makes relay sockets: in the port range, under the quotas, capped.
struct Relays {
    transport: Transport,
    bind_ip: IpAddr,
    public_ip: IpAddr,
    ports: Option<(u16, u16)>,
    last_auth: Arc<Mutex<Option<LastAuth>>>,
    quota: Arc<Quota>,
    bandwidth: u64,
}

impl Relays {
    async fn bind(&self, requested: u16) -> io::Result<UdpSocket> {
        if requested != 0 {
            // A requested port (EVEN-PORT) must keep to the range too.
            if let Some((low, high)) = self.ports
                && !(low..=high).contains(&requested)
            {
                return Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("port {requested} is outside the relay range {low}-{high}"),
                ));
            }
            return UdpSocket::bind(SocketAddr::new(self.bind_ip, requested)).await;
        }
        let Some((low, high)) = self.ports else {
            return UdpSocket::bind(SocketAddr::new(self.bind_ip, 0)).await;
        };
        // Start at a random port of the range, then walk it once.
        let span = u32::from(high - low) + 1;
        let mut seed = [0u8; 4];
        getrandom::fill(&mut seed).map_err(io::Error::other)?;
        let start = u32::from_le_bytes(seed) % span;
        for i in 0..span {
            let port = low + ((start + i) % span) as u16;
            match UdpSocket::bind(SocketAddr::new(self.bind_ip, port)).await {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("every relay port in {low}-{high} is taken"),
        ))
    }
}

#[async_trait]
impl RelayAddressGenerator for Relays {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        if use_ipv4 != self.bind_ip.is_ipv4() {
            return Err(turn::Error::Other("address family not served".into()));
        }
        // Always set: the crate authenticates an Allocate before it asks
        // for a relay.
        let Some(LastAuth { user, client }) = lock(&self.last_auth).clone() else {
            return Err(turn::Error::Other("allocation without credentials".into()));
        };
        let guard = match self.quota.take(&user, self.transport, client) {
            Ok(g) => g,
            Err(full) => {
                warn!(user, %client, "TURN allocation refused: {full} reached");
                return Err(turn::Error::ErrAllocationQuotaReached);
            }
        };
        let socket = self.bind(requested_port).await.map_err(|e| {
            warn!(error = %e, "cannot open a TURN relay socket");
            turn::Error::Other(e.to_string())
        })?;
        let port = socket.local_addr()?.port();
        debug!(user, port, "TURN allocation");
        let relay = Relay {
            socket,
            inbound: Bucket::new(self.bandwidth),
            outbound: Bucket::new(self.bandwidth),
            quota: Mutex::new(Some(guard)),
        };
        Ok((Arc::new(relay), SocketAddr::new(self.public_ip, port)))
    }
}

/// A token bucket in bytes; `None` when uncapped.
struct Bucket(Option<Mutex<(f64, Instant)>>, f64);

impl Bucket {
    fn new(bits_per_second: u64) -> Self {
        let rate = bits_per_second as f64 / 8.0;
        if bits_per_second == 0 {
            Self(None, 0.0)
        } else {
            // Half a second of burst (at least a few full-size packets).
            Self(Some(Mutex::new((rate / 2.0, Instant::now()))), rate)
        }
    }

    /// Whether `n` bytes may pass now.
    fn allow(&self, n: usize) -> bool {
        let Some(state) = &self.0 else { return true };
        let rate = self.1;
        let burst = (rate / 2.0).max(8.0 * 1500.0);
        let mut s = lock(state);
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * rate).min(burst);
        s.1 = now;
        if s.0 >= n as f64 {
            s.0 -= n as f64;
            true
        } else {
            false
        }
    }
}

/// A relay socket with the bandwidth cap and the quota slot it holds.
struct Relay {
    socket: UdpSocket,
    inbound: Bucket,
    outbound: Bucket,
    /// Given back when the allocation closes (or, at the latest, when the
    /// crate drops the relay).
    quota: Mutex<Option<QuotaGuard>>,
}

#[async_trait]
impl Conn for Relay {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.socket.connect(addr).await?)
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            if self.inbound.allow(n) {
                return Ok((n, from));
            }
        }
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        if !self.outbound.allow(buf.len()) {
            return Ok(buf.len());
        }
        Ok(self.socket.send(buf).await?)
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.outbound.allow(buf.len()) {
            // Dropped, as on a congested link.
            return Ok(buf.len());
        }
        Ok(self.socket.send_to(buf, target).await?)
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        // The crate closes the relay when the allocation ends; the slot
        // is free from then on, not when its last task lets go.
        lock(&self.quota).take();
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// TURN over TCP, presented to the crate as one datagram socket: each TCP
/// connection's messages arrive from its peer address, and replies to that
/// address go back down the connection.
pub struct TcpMux {
    local: SocketAddr,
    max: usize,
    /// Frames read from every connection, with their client address.
    feed: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    inbox: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    peers: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
    /// Client addresses whose connection ended, for their allocations to
    /// be deleted.
    dropped: mpsc::Sender<SocketAddr>,
    stop: tokio_util::sync::CancellationToken,
}

impl TcpMux {
    /// A mux that presents itself as `local`, serving at most `max`
    /// connections at once; client addresses whose connection ended go to
    /// `dropped`.
    fn new(local: SocketAddr, max: usize, dropped: mpsc::Sender<SocketAddr>) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(1024);
        Arc::new(Self {
            local,
            max,
            feed: tx,
            inbox: tokio::sync::Mutex::new(rx),
            peers: Mutex::new(HashMap::new()),
            dropped,
            stop: tokio_util::sync::CancellationToken::new(),
        })
    }

    /// Accepts and serves the connections of `listener` until shutdown.
    fn listen(self: &Arc<Self>, listener: TcpListener) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = me.stop.cancelled() => return,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        me.adopt(stream, peer);
                    }
                    Err(e) => {
                        debug!(error = %e, "TURN TCP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }

    /// Serves one connection from `peer`, unless `max` are open already
    /// (then it is closed).
    fn adopt<S>(self: &Arc<Self>, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        if self.stop.is_cancelled() {
            return;
        }
        let (out_tx, out_rx) = mpsc::channel(TCP_QUEUE);
        {
            let mut peers = lock(&self.peers);
            if peers.len() >= self.max {
                warn!(%peer, max = self.max, "TURN: too many TCP connections; refusing one");
                return;
            }
            peers.insert(peer, out_tx);
        }
        tokio::spawn(self.clone().serve(stream, peer, self.feed.clone(), out_rx));
    }

    fn shutdown(&self) {
        self.stop.cancel();
    }

    async fn serve<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        inbox: mpsc::Sender<(Vec<u8>, SocketAddr)>,
        mut outbox: mpsc::Receiver<Vec<u8>>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let reader = async {
            loop {
                let frame = match tokio::time::timeout(TCP_IDLE, read_frame(&mut rd)).await {
                    Ok(Ok(Some(f))) => f,
                    Ok(Ok(None)) => return,
                    Ok(Err(e)) => {
                        debug!(%peer, error = %e, "TURN TCP connection dropped");
                        return;
                    }
                    Err(_) => {
                        debug!(%peer, "TURN TCP connection idle; closing");
                        return;
                    }
                };
                if inbox.send((frame, peer)).await.is_err() {
                    return;
                }
            }
        };
        let writer = async {
            while let Some(frame) = outbox.recv().await {
                // Flushing matters under TLS, which buffers records.
                if wr.write_all(&frame).await.is_err() || wr.flush().await.is_err() {
                    return;
                }
            }
        };
        let stopping = tokio::select! {
            () = reader => false,
            () = writer => false,
            () = self.stop.cancelled() => true,
        };
        lock(&self.peers).remove(&peer);
        if !stopping {
            let _ = self.dropped.send(peer).await;
        }
    }
}

/// Reads one STUN message or ChannelData frame (with its TCP padding).
/// `None` on a clean end of stream.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(rd: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    match rd.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let (total, padded) = match head[0] >> 6 {
        // STUN: 20-byte header, attributes already padded.
        0 => (20 + len, 20 + len),
        // ChannelData: 4-byte header, padded to 4 over TCP.
        1 => (4 + len, 4 + len.div_ceil(4) * 4),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "neither STUN nor ChannelData",
            ));
        }
    };
    if padded > MAX_TCP_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut frame = vec![0u8; padded];
    frame[..4].copy_from_slice(&head);
    rd.read_exact(&mut frame[4..]).await?;
    frame.truncate(total);
    Ok(Some(frame))
}

#[async_trait]
impl Conn for TcpMux {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported).into())
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let mut inbox = self.inbox.lock().await;
        let (frame, from) = tokio::select! {
            f = inbox.recv() => f.ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?,
            () = self.stop.cancelled() => return Err(io::Error::from(io::ErrorKind::BrokenPipe).into()),
        };
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok((n, from))
    }
    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(io::Error::from(io::ErrorKind::NotConnected).into())
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let tx = lock(&self.peers).get(&target).cloned();
        match tx {
            // A full queue drops the frame, as a datagram socket would.
            Some(tx) => {
                let _ = tx.try_send(buf.to_vec());
                Ok(buf.len())
            }
            // The connection is gone (its allocations end with it): drop
            // the frame, as a datagram socket would for a vanished peer,
            // rather than have the crate log an error for each one.
            None => {
                debug!(%target, "TURN TCP: frame for a closed connection dropped");
                Ok(buf.len())
            }
        }
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        // Only the crate's read loop closes the listening conn now, when the
        // server stops (allocations no longer do: see vendor/turn/PATCHES.md).
        self.stop.cancel();
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// How a range came into a [`PeerPolicy`]; at equal prefix length the
/// later kind wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RangeKind {
    /// [`DEFAULT_DENIED_PEERS`].
    BuiltInDeny,
    /// `--turn-allowed-peer-ip`.
    Allow,
    /// `--turn-denied-peer-ip`.
    Deny,
}

/// Which peer addresses the relay may exchange traffic with.
///
/// The server's own listening sockets are always refused, so the relay
/// cannot loop into itself or reach its HTTP side from "outside". For
/// other addresses the most specific matching range decides: a
/// `10.1.0.0/16` allowed inside the built-in `10.0.0.0/8` denial opens just
/// that /16, and a `/32` denied inside an allowed range closes it again. At
/// equal length an operator's denial beats an allowance, which beats a
/// built-in denial (so allowing `127.0.0.0/8` opens loopback). An address
/// no range matches is allowed: it is a public address.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    ranges: Vec<(IpNet, RangeKind)>,
    own: Vec<SocketAddr>,
    own_ips: Vec<IpAddr>,
}

impl PeerPolicy {
    /// The built-in denials plus `allowed` and `denied`; `own` are the
    /// server's listening sockets, `own_ips` the machine's addresses (for
    /// own sockets on a wildcard address).
    pub fn new(
        allowed: &[IpNet],
        denied: &[IpNet],
        own: Vec<SocketAddr>,
        own_ips: Vec<IpAddr>,
    ) -> Self {
        let built_in = DEFAULT_DENIED_PEERS.iter().map(|r| {
            (
                r.parse().expect("built-in ranges parse"),
                RangeKind::BuiltInDeny,
            )
        });
        let ranges = built_in
            .chain(allowed.iter().map(|r| (r.trunc(), RangeKind::Allow)))
            .chain(denied.iter().map(|r| (r.trunc(), RangeKind::Deny)))
            .collect();
        Self {
            ranges,
            own,
            own_ips: own_ips.into_iter().map(|ip| ip.to_canonical()).collect(),
        }
    }

    /// Whether `peer` may be relayed to.
    pub fn allows(&self, peer: SocketAddr) -> bool {
        // ::ffff:127.0.0.1 is 127.0.0.1 to a dual-stack socket.
        let ip = peer.ip().to_canonical();
        if self.is_own(ip, peer.port()) {
            return false;
        }
        let decisive = self
            .ranges
            .iter()
            .filter(|(net, _)| net.contains(&ip))
            .max_by_key(|(net, kind)| (net.prefix_len(), *kind));
        matches!(decisive, None | Some((_, RangeKind::Allow)))
    }

    fn is_own(&self, ip: IpAddr, port: u16) -> bool {
        self.own.iter().any(|own| {
            let own_ip = own.ip().to_canonical();
            own.port() == port
                && (own_ip == ip
                    || (own_ip.is_unspecified()
                        && (ip.is_loopback() || ip.is_unspecified() || self.own_ips.contains(&ip))))
        })
    }
}

/// Parses `--turn-allowed-peer-ip` / `--turn-denied-peer-ip`: a CIDR range
/// like `10.0.0.0/8` or `fd00::/8`, or one address.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?}: expected a range like 10.0.0.0/8 or an address"))
}

/// Parses `--turn-relay-ports LOW-HIGH`.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (low, high) = s
        .trim()
        .split_once('-')
        .ok_or("expected LOW-HIGH, like 49152-65535")?;
    let low: u16 = low.trim().parse().map_err(|_| "LOW is not a port number")?;
    let high: u16 = high
        .trim()
        .parse()
        .map_err(|_| "HIGH is not a port number")?;
    if low == 0 || high < low {
        return Err("expected 1 ≤ LOW ≤ HIGH ≤ 65535".into());
    }
    Ok((low, high))
}

/// Parses a bit rate: `8Mbit`, `500kbit`, `2M`, `1000000`; `0` for no cap.
pub fn parse_bitrate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("bit/s")
        .or_else(|| t.strip_suffix("bps"))
        .or_else(|| t.strip_suffix("bit"))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1_000),
        Some('m') => (&t[..t.len() - 1], 1_000_000),
        Some('g') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected a bit rate like 8Mbit, 500kbit or 0"))?;
    if !(n >= 0.0 && n.is_finite()) {
        return Err(format!("{s:?}: must be zero or more"));
    }
    Ok((n * mult as f64) as u64)
}

/// Parses `--turn-listen`: `IP:PORT`, or an IP alone for port 3478.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip: IpAddr = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("{s:?}: expected IP:PORT or IP (port {DEFAULT_TURN_PORT})"))?;
    Ok(SocketAddr::new(ip, DEFAULT_TURN_PORT))
}

/// Entry points for `fuzz/` (not an API): the embedded TURN server's
/// message handling without real sockets.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU16, Ordering};

    use stun::attributes::{
        ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME,
    };
    use stun::integrity::MessageIntegrity;
    use stun::message::{Message, Setter as _};
    use stun::textattrs::TextAttribute;
    use turn::allocation::allocation_manager::{Manager, ManagerConfig};
    use turn::server::nonce::NonceKey;
    use turn::server::request::Request;

    use super::*;

    const SECRET: &[u8] = b"fuzzing";
    /// Client addresses an input may speak from (one allocation each at
    /// most, so the harness stays small however long it runs).
    const CLIENTS: u16 = 4;

    /// The crate's server state, built once: real request handling, fake
    /// sockets (nothing leaves the process).
    struct Harness {
        runtime: tokio::runtime::Runtime,
        conn: Arc<dyn Conn + Send + Sync>,
        manager: Arc<Manager>,
        nonces: Arc<NonceKey>,
        auth: Arc<Auth>,
        filter: PeerFilter,
        user: String,
        password: String,
    }

    fn harness() -> &'static Harness {
        static H: OnceLock<Harness> = OnceLock::new();
        H.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let quota = Arc::new(Quota::new(
                DEFAULT_USER_QUOTA,
                DEFAULT_MAX_ALLOCATIONS_PER_IP,
                64,
            ));
            let last_auth = Arc::new(Mutex::new(None));
            let relays = FakeRelays {
                quota: quota.clone(),
                last_auth: last_auth.clone(),
                next_port: AtomicU16::new(50_000),
            };
            let manager = Arc::new(Manager::new(ManagerConfig {
                relay_addr_generator: Box::new(relays),
                alloc_close_notify: None,
            }));
            let policy = Arc::new(PeerPolicy::new(
                &[],
                &[],
                vec![SocketAddr::from(([127, 0, 0, 1], DEFAULT_TURN_PORT))],
                Vec::new(),
            ));
            let creds = ice::mint(SECRET, "fuzz", u64::MAX / 2);
            Harness {
                runtime,
                conn: Arc::new(FakeConn(
                    SocketAddr::from(([127, 0, 0, 1], DEFAULT_TURN_PORT)),
                    Mutex::new(None),
                )),
                manager,
                nonces: Arc::new(NonceKey::new(Duration::from_secs(3600))),
                auth: Arc::new(Auth {
                    transport: Transport::Udp,
                    secret: Arc::from(SECRET),
                    quota,
                    last_auth,
                }),
                filter: Arc::new(move |peer: &SocketAddr| policy.allows(*peer)),
                user: creds.username,
                password: creds.credential,
            }
        })
    }

    /// Feeds `data` to the server as one client's TCP byte stream: the
    /// first byte picks the client address (bits 0–1) and whether STUN
    /// messages are re-signed with valid credentials (bit 2), so requests
    /// get past authentication; the rest is split by the TCP framing and
    /// each frame is handled as the server handles a datagram.
    pub fn turn_messages(data: &[u8]) {
        let Some((&mode, stream)) = data.split_first() else {
            return;
        };
        let h = harness();
        let client = SocketAddr::from(([192, 0, 2, 1], 40_000 + u16::from(mode) % CLIENTS));
        let sign = mode & 4 != 0;
        h.runtime.block_on(async {
            let mut rd = stream;
            while let Ok(Some(frame)) = read_frame(&mut rd).await {
                let buff = if sign {
                    resign(h, &frame, client).unwrap_or(frame)
                } else {
                    frame
                };
                let mut r = Request {
                    conn: h.conn.clone(),
                    src_addr: client,
                    buff,
                    allocation_manager: h.manager.clone(),
                    nonces: h.nonces.clone(),
                    peer_filter: Some(h.filter.clone()),
                    auth_handler: h.auth.clone(),
                    realm: REALM.to_owned(),
                    channel_bind_timeout: Duration::from_secs(600),
                };
                let _ = r.handle_request().await;
            }
            // Let timers and relay tasks the frames started take a turn.
            tokio::task::yield_now().await;
        });
    }

    /// The STUN message in `frame` with USERNAME, REALM, NONCE and
    /// MESSAGE-INTEGRITY replaced by valid ones for `client`.
    fn resign(h: &Harness, frame: &[u8], client: SocketAddr) -> Option<Vec<u8>> {
        let mut m = Message::new();
        m.unmarshal_binary(frame).ok()?;
        let mut out = Message::new();
        out.set_type(m.typ);
        out.transaction_id = m.transaction_id;
        out.write_header();
        for a in &m.attributes.0 {
            if ![
                ATTR_USERNAME,
                ATTR_REALM,
                ATTR_NONCE,
                ATTR_MESSAGE_INTEGRITY,
                ATTR_FINGERPRINT,
            ]
            .contains(&a.typ)
            {
                out.add(a.typ, &a.value);
            }
        }
        TextAttribute::new(ATTR_USERNAME, h.user.clone())
            .add_to(&mut out)
            .ok()?;
        TextAttribute::new(ATTR_REALM, REALM.to_owned())
            .add_to(&mut out)
            .ok()?;
        TextAttribute::new(ATTR_NONCE, h.nonces.issue(client))
            .add_to(&mut out)
            .ok()?;
        MessageIntegrity::new_long_term_integrity(
            h.user.clone(),
            REALM.to_owned(),
            h.password.clone(),
        )
        .add_to(&mut out)
        .ok()?;
        Some(out.raw)
    }

    /// Relays without sockets, under the real quotas.
    struct FakeRelays {
        quota: Arc<Quota>,
        last_auth: Arc<Mutex<Option<LastAuth>>>,
        next_port: AtomicU16,
    }

    #[async_trait]
    impl RelayAddressGenerator for FakeRelays {
        fn validate(&self) -> Result<(), turn::Error> {
            Ok(())
        }

        async fn allocate_conn(
            &self,
            _use_ipv4: bool,
            requested_port: u16,
        ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
            let Some(LastAuth { user, client }) = lock(&self.last_auth).clone() else {
                return Err(turn::Error::Other("allocation without credentials".into()));
            };
            let guard = self
                .quota
                .take(&user, Transport::Udp, client)
                .map_err(|_| turn::Error::ErrAllocationQuotaReached)?;
            let port = match requested_port {
                0 => self.next_port.fetch_add(1, Ordering::Relaxed).max(1024),
                p => p,
            };
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            Ok((Arc::new(FakeConn(addr, Mutex::new(Some(guard)))), addr))
        }
    }

    /// A datagram socket that sends nowhere and never receives; as a
    /// relay, it holds its quota slot until closed.
    struct FakeConn(SocketAddr, Mutex<Option<QuotaGuard>>);

    #[async_trait]
    impl Conn for FakeConn {
        async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
            Ok(())
        }
        async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
            std::future::pending().await
        }
        async fn recv_from(&self, _buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
            std::future::pending().await
        }
        async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
            Ok(buf.len())
        }
        async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> webrtc_util::Result<usize> {
            Ok(buf.len())
        }
        fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
            Ok(self.0)
        }
        fn remote_addr(&self) -> Option<SocketAddr> {
            None
        }
        async fn close(&self) -> webrtc_util::Result<()> {
            lock(&self.1).take();
            Ok(())
        }
        fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
            self
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_fuzzing_entry_takes_garbage_and_real_requests() {
            turn_messages(&[]);
            turn_messages(&[0, 0xff, 0xff]);
            // A signed Allocate (REQUESTED-TRANSPORT UDP), then a signed
            // Refresh with lifetime 0, from client 1.
            let mut alloc = vec![0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42];
            alloc.extend([1u8; 12]);
            alloc.extend([0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0]);
            let mut refresh = vec![0x00, 0x04, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42];
            refresh.extend([2u8; 12]);
            refresh.extend([0x00, 0x0d, 0x00, 0x04, 0, 0, 0, 0]);
            let mut input = vec![4 | 1];
            input.extend(&alloc);
            turn_messages(&input);
            assert_eq!(lock(&harness().auth.quota.live).total, 1, "allocated");
            input.truncate(1);
            input.extend(&refresh);
            turn_messages(&input);
            assert_eq!(lock(&harness().auth.quota.live).total, 0, "released");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        assert_eq!(parse_port_range("49152-49200"), Ok((49152, 49200)));
        assert!(parse_port_range("5-1").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("x").is_err());
        assert_eq!(parse_bitrate("8Mbit"), Ok(8_000_000));
        assert_eq!(parse_bitrate("500kbit"), Ok(500_000));
        assert_eq!(parse_bitrate("2.5M"), Ok(2_500_000));
        assert_eq!(parse_bitrate("0"), Ok(0));
        assert!(parse_bitrate("fast").is_err());
        assert!(parse_bitrate("-1M").is_err());
        assert_eq!(parse_listen("0.0.0.0"), Ok("0.0.0.0:3478".parse().unwrap()));
        assert_eq!(
            parse_listen("127.0.0.1:0"),
            Ok("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(parse_listen("[::1]"), Ok("[::1]:3478".parse().unwrap()));
        assert!(parse_listen("host").is_err());
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_quotas_count_live_allocations_per_user_per_ip_and_in_all() {
        let q = Arc::new(Quota::new(2, 3, 4));
        let home = addr("192.0.2.1:1000");
        let a = q.take("1:alice", Transport::Udp, home).unwrap();
        let b = q
            .take("1:alice", Transport::Udp, addr("192.0.2.1:1001"))
            .unwrap();
        assert_eq!(
            q.take("1:alice", Transport::Tcp, addr("198.51.100.1:1"))
                .err(),
            Some(QuotaFull::User)
        );
        let _c = q
            .take("1:bob", Transport::Udp, addr("192.0.2.1:1002"))
            .unwrap();
        assert_eq!(
            q.take("1:carol", Transport::Udp, addr("192.0.2.1:1003"))
                .err(),
            Some(QuotaFull::Ip),
            "a fourth from one IP, whoever asks"
        );
        let _d = q
            .take("1:carol", Transport::Udp, addr("198.51.100.1:1"))
            .unwrap();
        assert_eq!(
            q.take("1:dan", Transport::Udp, addr("203.0.113.1:1")).err(),
            Some(QuotaFull::Total)
        );
        assert!(q.holds("1:alice", Transport::Udp, home));
        assert!(!q.holds("1:alice", Transport::Tcp, home), "per transport");
        assert!(!q.holds("1:bob", Transport::Udp, home), "per username");
        drop(a);
        assert!(!q.holds("1:alice", Transport::Udp, home));
        let _e = q
            .take("1:alice", Transport::Udp, home)
            .expect("a slot came back");
        drop(b);
        let live = lock(&q.live);
        assert_eq!(live.total, 3, "bob, carol and alice's new one");
        assert_eq!(live.holders.len(), 3, "no entries left at zero");
        assert_eq!(live.users.len(), 3);
    }

    fn policy(allowed: &[&str], denied: &[&str], own: &[&str]) -> PeerPolicy {
        let nets = |v: &[&str]| v.iter().map(|s| parse_cidr(s).unwrap()).collect::<Vec<_>>();
        PeerPolicy::new(
            &nets(allowed),
            &nets(denied),
            own.iter().map(|s| addr(s)).collect(),
            vec!["203.0.113.5".parse().unwrap()],
        )
    }

    #[test]
    fn the_peer_policy_refuses_non_public_ranges_by_default() {
        let p = policy(&[], &[], &[]);
        for refused in [
            "127.0.0.1:5000",
            "0.0.0.0:5000",
            "10.1.2.3:5000",
            "172.20.0.1:5000",
            "192.168.1.1:5000",
            "100.100.0.1:5000",
            "169.254.1.1:5000",
            "224.0.0.251:5353",
            "255.255.255.255:9",
            "[::1]:5000",
            "[::]:5000",
            "[fd00::1]:5000",
            "[fe80::1]:5000",
            "[ff02::1]:5000",
            "[::ffff:127.0.0.1]:5000",
            "[::ffff:10.0.0.1]:5000",
        ] {
            assert!(!p.allows(addr(refused)), "{refused} is refused");
        }
        for allowed in ["198.51.100.7:5000", "[2001:db8::1]:5000", "172.32.0.1:1"] {
            assert!(p.allows(addr(allowed)), "{allowed} is public");
        }
    }

    #[test]
    fn the_most_specific_range_decides_and_own_sockets_never_pass() {
        let p = policy(
            &["127.0.0.0/8", "10.1.0.0/16", "10.9.9.9"],
            &["10.1.2.0/24", "198.51.100.0/24", "10.9.9.9/32"],
            &["0.0.0.0:8443", "127.0.0.1:3478"],
        );
        assert!(p.allows(addr("127.0.0.1:5000")), "loopback opened");
        assert!(p.allows(addr("10.1.3.4:5000")), "the /16 inside 10/8");
        assert!(!p.allows(addr("10.2.0.1:5000")), "the rest of 10/8");
        assert!(
            !p.allows(addr("10.1.2.3:5000")),
            "a /24 denied inside the /16"
        );
        assert!(
            !p.allows(addr("198.51.100.7:5000")),
            "a public range denied"
        );
        assert!(!p.allows(addr("10.9.9.9:5000")), "a tie: the denial wins");
        assert!(!p.allows(addr("127.0.0.1:3478")), "the TURN socket");
        assert!(
            !p.allows(addr("127.0.0.1:8443")),
            "HTTP on a wildcard address"
        );
        assert!(!p.allows(addr("203.0.113.5:8443")), "HTTP on the public IP");
        assert!(p.allows(addr("203.0.113.5:8444")), "another port of it");
        assert!(p.allows(addr("127.0.0.2:3478")), "the TURN port elsewhere");
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("nope").is_err());
        assert_eq!(parse_cidr(" ::1 ").unwrap().to_string(), "::1/128");
    }

    #[test]
    fn the_bucket_caps_bytes_per_second() {
        let b = Bucket::new(8 * 100_000); // 100 kB/s, 50 kB burst
        let mut passed = 0;
        for _ in 0..100 {
            if b.allow(1000) {
                passed += 1;
            }
        }
        assert!((45..=55).contains(&passed), "{passed} kB passed at once");
        assert!(Bucket::new(0).allow(usize::MAX));
    }

    #[tokio::test]
    async fn tcp_frames_are_split_and_unpadded() {
        // A STUN binding request header (no attributes), then ChannelData of
        // 5 bytes padded to 8, then garbage.
        let mut bytes = vec![0x00, 0x01, 0x00, 0x00];
        bytes.extend([0x21, 0x12, 0xa4, 0x42]);
        bytes.extend([7u8; 12]);
        bytes.extend([0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
        bytes.extend([0xff, 0, 0, 0]);
        let mut rd = &bytes[..];
        assert_eq!(read_frame(&mut rd).await.unwrap().unwrap().len(), 20);
        assert_eq!(
            read_frame(&mut rd).await.unwrap().unwrap(),
            vec![0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5]
        );
        assert!(read_frame(&mut rd).await.is_err());
        let mut empty = &[][..];
        assert!(read_frame(&mut empty).await.unwrap().is_none());
    }
}
