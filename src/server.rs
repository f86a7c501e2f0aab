//! The HTTP side: the accept loop, routes, the WebSocket upgrade (origin
//! check, connection limit, frame limits), security headers and graceful
//! shutdown.
//!
//! Routes: `GET /ws` (signaling), `GET /healthz`, `GET /config.json` and
//! `GET /ice-servers` (for the page), `GET /metrics`
//! (Prometheus; for loopback clients only on the main listener, or on its
//! own listener with `--metrics`), `GET /` and `GET /r/<room>` (the web
//! client), and every other file of the web client at its path.
//!
//! Connections are served by hyper directly rather than `axum::serve`,
//! which has no header read timeout (no timer) and no hook per connection:
//! each accepted TCP connection takes a per-IP slot (`--max-connections-per-ip`;
//! over it, every request gets 429), does its TLS handshake in its own task
//! (`--max-tls-handshakes` at once), and must send each request's headers
//! within `--http-header-timeout` (idle keep-alive connections are closed
//! after it too). Every response the router makes carries the
//! [security headers](security_headers).
//!
//! Shutdown: cancelling the token stops accepting, makes every socket send
//! close 1001 and every HTTP connection finish its request and close, and
//! [`Server::run`] waits for all of them at most `--shutdown-timeout`, then
//! drops what is left (half-sent requests included).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Extension, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service as _;
use tracing::{debug, info, warn};

use crate::assets;
use crate::config::{Config, RESERVED_FDS};
use crate::hub::Hub;
use crate::media::MediaServer;
use crate::metrics::{self, UpgradeRefusal};
use crate::origin::{self, Origin, OriginPolicy, Scheme};
use crate::per_ip::{self, PerIp};
use crate::sniff::{self, Rewind};
use crate::tls::{self, Listener, Tls};
use crate::turn::{ListenerTurn, TurnServer};
use crate::ws::{self, SocketSettings};

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The settings do not work together.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Accepting or serving failed.
    #[error("server failed")]
    Io(#[from] std::io::Error),
    /// The certificate could not be loaded or made.
    #[error("TLS")]
    Tls(#[from] crate::tls::TlsError),
    /// The embedded TURN server could not start.
    #[error(transparent)]
    Turn(#[from] crate::turn::TurnError),
    /// The media server could not start.
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
}

/// State shared by the handlers.
struct App {
    cfg: Config,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    open: AtomicUsize,
    /// Which page origins may open `/ws`.
    origins: OriginPolicy,
    /// Open connections per client address.
    per_ip: Arc<PerIp>,
    /// Upgrades refused at the connection limit since the last log line,
    /// and when that line was written.
    limit_log: Mutex<(u64, Option<Instant>)>,
    /// The same for upgrades refused for their origin.
    origin_log: Mutex<(u64, Option<Instant>)>,
    /// The same for connections refused at the per-IP cap.
    per_ip_log: Mutex<(u64, Option<Instant>)>,
}

/// At most one log line per this interval about connections refused at
/// `--max-connections`, with the count since the previous one.
pub const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A bound server, ready to run.
pub struct Server {
    listener: Listener,
    metrics_listener: Option<Listener>,
    app: Arc<App>,
    turn: Option<TurnServer>,
    media: Option<MediaServer>,
    self_signed: Option<PathBuf>,
}

impl Server {
    /// Binds the listen address of `cfg`.
    /// With TLS, loads (or makes) the certificate first; with
    /// `--turn-listen`, starts the embedded TURN server and adds it to the
    /// ICE servers every member gets.
    pub async fn bind(mut cfg: Config) -> Result<Self, ServerError> {
        cfg.validate()?;
        fit_to_fd_limit(&mut cfg);
        let tls = match &cfg.tls {
            Some(source) => Some(Tls::load(source, || tls::local_names(cfg.listen.ip()))?),
            None => None,
        };
        let tcp = listen(cfg.listen, cfg.listen_backlog).map_err(|source| ServerError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let port = tcp.local_addr()?.port();
        let self_signed = tls.as_ref().and_then(|t| t.self_signed.clone());
        // The names a `turns:` URL may use: an operator's certificate's
        // (a self-signed one is better reached by address).
        let tls_names = tls.as_ref().map(|t| {
            if t.self_signed.is_some() {
                Vec::new()
            } else {
                t.names.clone()
            }
        });
        let origins = origin_policy(&cfg, tls.as_ref().map(|t| t.names.as_slice()), port);
        debug!(
            origins = origins
                .origins()
                .map(Origin::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            "origins allowed to open /ws"
        );
        let listener = Listener::new(tcp, tls.map(|t| t.acceptor), cfg.max_tls_handshakes);
        let metrics_listener = match cfg.metrics_listen {
            Some(addr) => Some(Listener::new(
                listen(addr, METRICS_BACKLOG)
                    .map_err(|source| ServerError::Bind { addr, source })?,
                None,
                1,
            )),
            None => None,
        };
        let media = match &cfg.media {
            Some(media_cfg) if cfg.core.sfu_above.is_some() => Some(
                MediaServer::bind(media_cfg, listener.local_addr()?, cfg.listen.port() == 0)
                    .await?,
            ),
            _ => None,
        };
        let media_addr = media.as_ref().and_then(|(m, _)| m.local_addr().ok());
        let mut turn = None;
        if let Some(turn_cfg) = &cfg.turn {
            let secret = cfg.turn_secret.clone().unwrap_or_else(random_secret);
            // The relay must not reach the server's own listeners. It sends
            // UDP only, so a TCP listener counts by its port number, except
            // where the media server's UDP socket has that number: members
            // behind firewalls reach the media server through the relay.
            let own = [Some(&listener), metrics_listener.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|l| l.local_addr().ok())
                .filter(|a| Some(*a) != media_addr);
            let mut turn_cfg = turn_cfg.with_own_addrs(own);
            turn_cfg.listener_addr = Some(listener.local_addr()?);
            let server = TurnServer::start(&turn_cfg, secret.clone()).await?;
            let mut urls = server.urls();
            if server.on_listener().is_some() {
                urls.extend(listener_turn_urls(
                    server.public_ip(),
                    port,
                    cfg.public_url.as_ref(),
                    tls_names.as_deref(),
                ));
            }
            cfg.core.ice.add_rest(urls, secret.clone(), cfg.turn_ttl);
            turn = Some(server);
        }
        // validate() made sure a secret comes with --turn-url.
        if let Some(secret) = cfg
            .turn_secret
            .clone()
            .filter(|_| !cfg.turn_urls.is_empty())
        {
            cfg.core
                .ice
                .add_rest(cfg.turn_urls.clone(), secret, cfg.turn_ttl);
        }
        let hub = Hub::with_settings(
            cfg.core.clone(),
            Box::new(crate::hub::OsEnv),
            crate::hub::PasswordSettings {
                max_hashes: cfg.max_password_hashes,
                wrong_delay: cfg.wrong_password_delay,
            },
        );
        let media = media.map(|(server, link)| {
            hub.set_media(link);
            server
        });
        let per_ip = PerIp::new(cfg.max_connections_per_ip);
        Ok(Self {
            listener,
            metrics_listener,
            turn,
            media,
            self_signed,
            app: Arc::new(App {
                cfg,
                hub,
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                open: AtomicUsize::new(0),
                origins,
                per_ip,
                limit_log: Mutex::new((0, None)),
                origin_log: Mutex::new((0, None)),
                per_ip_log: Mutex::new((0, None)),
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The media server's UDP address, when it runs.
    pub fn media_addr(&self) -> Option<SocketAddr> {
        self.media.as_ref().and_then(|m| m.local_addr().ok())
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.listener.is_tls() {
            "https"
        } else {
            "http"
        }
    }

    /// The self-signed certificate in use, if any.
    pub fn self_signed_cert(&self) -> Option<&std::path::Path> {
        self.self_signed.as_deref()
    }

    /// The embedded TURN server's address, if it runs.
    pub fn turn_addr(&self) -> Option<SocketAddr> {
        self.turn.as_ref().map(TurnServer::local_addr)
    }

    /// Whether the embedded TURN server also answers on the listener's
    /// port (`--no-turn-on-listener` not given).
    pub fn turn_on_listener(&self) -> bool {
        self.turn
            .as_ref()
            .is_some_and(|t| t.on_listener().is_some())
    }

    /// The address users open (`--public-url`), if set.
    pub fn public_url(&self) -> Option<&Origin> {
        self.app.cfg.public_url.as_ref()
    }

    /// The address of the separate metrics listener (`--metrics`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The connection limit in force (`--max-connections`, lowered to fit
    /// the open-file limit if needed).
    pub fn max_connections(&self) -> usize {
        self.app.cfg.max_connections
    }

    /// The hub, for tests and metrics.
    pub fn hub(&self) -> Arc<Hub> {
        self.app.hub.clone()
    }

    /// Serves until `stop` is cancelled, then closes every socket with 1001
    /// and waits (at most `--shutdown-timeout`) for their tasks and for the
    /// HTTP connections; what is left then is dropped.
    pub async fn run(self, stop: CancellationToken) -> Result<(), ServerError> {
        let app = self.app;
        let headers = Arc::new(SecurityHeaders::new(
            self.listener.is_tls(),
            self.self_signed.is_some(),
        ));
        let mut router = Router::new()
            .route("/ws", get(upgrade))
            .route("/healthz", get(healthz))
            .route("/config.json", get(page_config))
            .route("/ice-servers", get(ice_servers))
            .route("/", get(index))
            .route("/r/{*room}", get(room_page));
        if self.metrics_listener.is_none() {
            router = router.route("/metrics", get(metrics_on_main));
        }
        let router = router
            .fallback(get(asset))
            .layer(axum::middleware::map_response_with_state(
                headers.clone(),
                security_headers,
            ))
            .with_state(app.clone());
        let refuse = Router::new()
            .fallback(too_many_from_one_address)
            .layer(axum::middleware::map_response_with_state(
                headers.clone(),
                security_headers,
            ))
            .with_state(app.clone());
        let timers = tokio::spawn(app.hub.clone().run_timers(app.shutdown.clone()));
        let media = self
            .media
            .map(|m| tokio::spawn(m.run(app.hub.clone(), app.shutdown.clone())));
        let shutdown = app.shutdown.clone();
        // Cancelled when the shutdown timeout has passed: connections still
        // open are dropped.
        let force = CancellationToken::new();
        let conns = TaskTracker::new();
        let http = HttpSettings {
            header_timeout: app.cfg.http_header_timeout,
            shutdown: shutdown.clone(),
            force: force.clone(),
            conns: conns.clone(),
        };
        let metrics_server = self.metrics_listener.map(|listener| {
            let router = Router::new()
                .route("/metrics", get(metrics))
                .layer(axum::middleware::map_response_with_state(
                    headers.clone(),
                    security_headers,
                ))
                .with_state(app.clone());
            // The operator's own address: no per-IP cap there.
            let per_ip = PerIp::new(0);
            tokio::spawn(accept_loop(
                listener,
                router.clone(),
                router,
                per_ip,
                None,
                http.clone(),
                None,
            ))
        });
        tokio::select! {
            () = accept_loop(
                self.listener,
                router,
                refuse,
                app.per_ip.clone(),
                Some(app.clone()),
                http.clone(),
                self.turn.as_ref().and_then(TurnServer::on_listener),
            ) => {}
            () = stop.cancelled() => {}
        }
        // The listening socket is closed by now: new connections are refused.
        shutdown.cancel();
        if let Some(task) = metrics_server {
            let _ = task.await;
        }
        app.tracker.close();
        conns.close();
        let open = app.tracker.len();
        if open > 0 {
            info!(open, "closing connections");
        }
        let all_closed = async {
            tokio::join!(app.tracker.wait(), conns.wait());
        };
        if tokio::time::timeout(app.cfg.shutdown_timeout, all_closed)
            .await
            .is_err()
        {
            warn!(
                sockets = app.tracker.len(),
                http = conns.len(),
                "some connections did not close in time; dropping them"
            );
        }
        force.cancel();
        let _ = timers.await;
        if let Some(media) = media {
            let _ = media.await;
        }
        if let Some(turn) = self.turn {
            turn.close().await;
        }
        Ok(())
    }
}

/// What every HTTP connection task needs.
#[derive(Clone)]
struct HttpSettings {
    header_timeout: Duration,
    /// Finish the current request, then close.
    shutdown: CancellationToken,
    /// Close now.
    force: CancellationToken,
    /// Where connection tasks are tracked, for shutdown.
    conns: TaskTracker,
}

/// A client address's place under `--max-connections-per-ip`, carried by
/// every request of its connection so that a WebSocket keeps it after the
/// upgrade.
#[derive(Clone)]
struct IpSlot(#[allow(dead_code)] Arc<per_ip::Slot>);

/// Accepts connections until `shutdown` is cancelled; each is served in its
/// own task by `router` (or by `refuse` when its address is over the per-IP
/// cap), or, with `turn`, handed to the TURN server when its first bytes
/// (before or inside TLS) are a STUN message. Returns at shutdown, closing
/// the listening socket.
#[allow(clippy::too_many_arguments)]
async fn accept_loop(
    listener: Listener,
    router: Router,
    refuse: Router,
    per_ip: Arc<PerIp>,
    app: Option<Arc<App>>,
    http: HttpSettings,
    turn: Option<ListenerTurn>,
) {
    let handshaker = listener.handshaker();
    loop {
        let (tcp, peer) = tokio::select! {
            conn = listener.accept() => conn,
            () = http.shutdown.cancelled() => return,
        };
        let slot = per_ip.try_acquire(peer.ip());
        let router = if slot.is_some() {
            router.clone()
        } else {
            if let Some(app) = &app {
                log_per_ip_refusal(app, peer.ip());
            }
            refuse.clone()
        };
        let handshaker = handshaker.clone();
        let http2 = http.clone();
        let turn = turn.clone();
        http.conns.spawn(async move {
            let http = http2;
            if let Some(turn) = &turn {
                // TURN over plain TCP, on a plain or a TLS listener alike.
                let kind = tokio::select! {
                    k = sniff::peek(&tcp, http.header_timeout) => k,
                    () = http.shutdown.cancelled() => None,
                };
                match kind {
                    None => return,
                    Some(sniff::Kind::Stun) => {
                        debug!(%peer, "TURN over TCP on the HTTP listener");
                        // TURN has its own limits (--turn-max-tcp and the
                        // allocation quotas), not the HTTP per-IP cap.
                        drop(slot);
                        turn.adopt(tcp, peer);
                        return;
                    }
                    Some(_) => {}
                }
            }
            let stream = tokio::select! {
                s = handshaker.handshake(tcp, peer) => s,
                () = http.shutdown.cancelled() => None,
            };
            let Some(mut stream) = stream else {
                return;
            };
            let mut first = Vec::new();
            if let (Some(turn), true) = (&turn, stream.is_tls()) {
                // TURN over TLS: said by ALPN, or by the first bytes inside.
                let kind = if stream.alpn() == Some(sniff::ALPN_STUN_TURN) {
                    Some(sniff::Kind::Stun)
                } else {
                    let read = tokio::select! {
                        r = sniff::read_first(&mut stream, http.header_timeout) => r,
                        () = http.shutdown.cancelled() => None,
                    };
                    let Some((kind, bytes)) = read else {
                        return;
                    };
                    first = bytes;
                    Some(kind)
                };
                if kind == Some(sniff::Kind::Stun) {
                    debug!(%peer, "TURN over TLS on the HTTPS listener");
                    drop(slot);
                    turn.adopt(Rewind::new(stream, first), peer);
                    return;
                }
            }
            let stream = Rewind::new(stream, first);
            let slot = slot.map(|s| IpSlot(Arc::new(s)));
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if let Some(slot) = &slot {
                    req.extensions_mut().insert(slot.clone());
                }
                let mut router = router.clone();
                async move { router.call(req).await }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(http.header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e, "HTTP connection ended with an error");
                    }
                    return;
                }
                () = http.shutdown.cancelled() => {}
            }
            // Let the request in progress finish, then close; a request
            // that is never completed waits for the force signal.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                () = http.force.cancelled() => {}
            }
        });
    }
}

/// The URLs of TURN on the HTTP(S) listener: `turn:IP:PORT?transport=tcp`
/// and, with TLS, `turns:NAME:PORT?transport=tcp` first.
///
/// The port is `--public-url`'s when set (a port forward keeps TCP as it
/// is), else the listener's. A `turns:` URL needs a name the certificate
/// covers: `--public-url`'s host, else the operator certificate's first
/// name that is neither a wildcard nor `localhost`, else the address
/// (a self-signed certificate covers the machine's addresses; `tls_names`
/// is empty for it). Plain `turn:` goes to the TURN server's public IP.
pub fn listener_turn_urls(
    public_ip: IpAddr,
    listen_port: u16,
    public_url: Option<&Origin>,
    tls_names: Option<&[String]>,
) -> Vec<String> {
    let ip = match public_ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let port = public_url.map_or(listen_port, |u| u.port);
    let mut urls = Vec::new();
    if let Some(names) = tls_names {
        let name = public_url
            .map(|u| u.host.clone())
            .or_else(|| {
                names
                    .iter()
                    .find(|n| !n.starts_with('*') && n.as_str() != "localhost")
                    .cloned()
            })
            .unwrap_or_else(|| ip.clone());
        urls.push(format!("turns:{name}:{port}?transport=tcp"));
    }
    urls.push(format!("turn:{ip}:{port}?transport=tcp"));
    urls
}

/// The headers every response carries (added when the handler did not set
/// them): the web client's Content-Security-Policy, `nosniff`, no referrer,
/// camera, microphone, screen capture and full screen for this origin only,
/// and HSTS under TLS.
#[derive(Debug)]
pub struct SecurityHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// `Permissions-Policy`: the powerful features the client uses, for this
/// origin only (and so never for an embedding page, which
/// `frame-ancestors 'none'` forbids anyway); the rest stay off.
pub const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), display-capture=(self), \
fullscreen=(self), geolocation=(), payment=(), usb=()";

/// HSTS for an operator's certificate: a year.
pub const HSTS: &str = "max-age=31536000";

/// HSTS for a self-signed certificate: a day. HSTS is per host name, not per
/// port, so a year of it for `localhost` (once a user imported the
/// certificate) would turn every `http://localhost:*` of that browser into
/// https for a year; browsers ignore it on untrusted certificates anyway.
pub const HSTS_SELF_SIGNED: &str = "max-age=86400";

impl SecurityHeaders {
    /// The headers for a listener with or without TLS.
    pub fn new(tls: bool, self_signed: bool) -> Self {
        let mut headers = vec![
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(assets::CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static(PERMISSIONS_POLICY),
            ),
        ];
        if tls {
            headers.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(if self_signed { HSTS_SELF_SIGNED } else { HSTS }),
            ));
        }
        Self { headers }
    }

    /// Adds the headers `response` lacks.
    pub fn apply(&self, response: &mut Response) {
        let h = response.headers_mut();
        for (name, value) in &self.headers {
            if !h.contains_key(name) {
                h.insert(name.clone(), value.clone());
            }
        }
    }
}

async fn security_headers(
    State(headers): State<Arc<SecurityHeaders>>,
    mut response: Response,
) -> Response {
    headers.apply(&mut response);
    response
}

/// Every request of a connection over `--max-connections-per-ip`.
async fn too_many_from_one_address() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONNECTION, "close"), (header::RETRY_AFTER, "10")],
        "too many connections from your address; close some and try again\n",
    )
        .into_response()
}

/// The origins allowed to open `/ws`: `--public-url`, `--allowed-origin`,
/// the certificate's names and the machine's own names on the listener's
/// scheme and `port` (see [`crate::origin`]).
fn origin_policy(cfg: &Config, cert_names: Option<&[String]>, port: u16) -> OriginPolicy {
    let scheme = if cfg.tls.is_some() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let listen = cfg.listen.ip();
    let own = if listen.is_loopback() {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        names.push(listen.to_string());
        names
    } else {
        // The names a self-signed certificate would cover: on a wildcard
        // address (LAN use), the host name and every local address.
        tls::local_names(listen)
    };
    let mut origins = origin::machine_origins(scheme, &own, port);
    if let Some(names) = cert_names {
        origins.extend(origin::machine_origins(scheme, names, port));
    }
    origins.extend(cfg.public_url.clone());
    OriginPolicy::new(origins, &cfg.allowed_origins)
}

/// Whether `/metrics` on the main listener answers this request: only a
/// client on loopback, and only one that is not a reverse proxy forwarding
/// someone else's request (a proxy on the same machine connects from
/// loopback too; it is recognised by the forwarding headers proxies add).
pub fn metrics_visible(peer: IpAddr, headers: &HeaderMap) -> bool {
    let loopback = match peer {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    let forwarded = [
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-real-ip",
    ]
    .iter()
    .any(|h| headers.contains_key(*h));
    loopback && !forwarded
}

/// 32 random bytes, for an embedded TURN server given no `--turn-secret`.
fn random_secret() -> Arc<[u8]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    Arc::from(&bytes[..])
}

/// Backlog of the separate metrics listener (one scraper, rarely more).
const METRICS_BACKLOG: u32 = 128;

/// Lowers `--max-connections` to what the open-file limit allows, so that
/// connections past it are refused with 503 and a log line instead of
/// `accept` failing with EMFILE (which stalls every new connection).
fn fit_to_fd_limit(cfg: &mut Config) {
    let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return;
    };
    let allowed = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    if cfg.max_connections > allowed {
        info!(
            requested = cfg.max_connections,
            allowed,
            open_file_limit = soft,
            "--max-connections lowered to fit the open-file limit (raise the limit, e.g. with ulimit -n, to allow more)"
        );
        cfg.max_connections = allowed;
    }
}

/// Binds with an explicit backlog: tokio's default (128) drops connections
/// in bursts, and dropped SYNs are retried only after a second.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    if app.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        "ok\n".into_response()
    }
}

/// The web client's settings (`WebConfig`), read by the page at start.
async fn page_config(State(app): State<Arc<App>>) -> Response {
    // axum's `json` feature is off: one serde_json call does the same.
    let body = serde_json::to_string(&app.cfg.web).unwrap_or_else(|_| "{}".into());
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The query of `GET /ice-servers`.
#[derive(Debug, serde::Deserialize)]
struct IceQuery {
    room: Option<String>,
    access: Option<String>,
}

/// `GET /ice-servers[?room=ROOM&access=TOKEN]`: the ICE servers a member
/// would get in `joined`, with TURN credentials minted for a throwaway
/// name, so a page (the join page's connection test) or `huddle doctor`
/// can check the network before joining. It hands out nothing a join
/// would not: under `--auth-secret` it needs a token that admits to ROOM
/// (401 otherwise), as a join does.
async fn ice_servers(
    State(app): State<Arc<App>>,
    axum::extract::Query(query): axum::extract::Query<IceQuery>,
) -> Response {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let json = |status: StatusCode, body: String| {
        (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response()
    };
    if let Some(key) = &app.cfg.core.auth {
        let checked = match query.access.as_deref() {
            None => Err(
                "this server lets people in by invitation only: open the link you were given"
                    .to_owned(),
            ),
            Some(token) => key
                .check(
                    token,
                    query.room.as_deref().unwrap_or(crate::access::ANY_ROOM),
                    unix,
                )
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        if let Err(message) = checked {
            let body = serde_json::json!({"error": "unauthorized", "message": message});
            return json(StatusCode::UNAUTHORIZED, body.to_string());
        }
    }
    let mut tag = [0u8; 8];
    let _ = getrandom::fill(&mut tag);
    let name: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let servers = app.cfg.core.ice.render(&format!("probe-{name}"), unix);
    json(StatusCode::OK, format!("{{\"iceServers\":{servers}}}"))
}

/// `/metrics` on the main listener: for loopback clients only (404 for
/// the others, as if it did not exist).
async fn metrics_on_main(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !metrics_visible(peer.ip(), &headers) {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    metrics(State(app)).await
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let body = metrics::render(&app.hub.metrics());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

async fn index(headers: HeaderMap) -> Response {
    assets::serve("index.html", &headers)
}

async fn room_page(Path(_room): Path<String>, headers: HeaderMap) -> Response {
    assets::serve("index.html", &headers)
}

async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.is_empty() || path.ends_with('/') || path.split('/').any(|p| p == "..") {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    assets::serve(path, &headers)
}

/// Counts an open connection; gives the slot back when dropped.
struct Slot(Arc<App>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn upgrade(
    State(app): State<Arc<App>>,
    ip_slot: Option<Extension<IpSlot>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("?"));
    if !app.origins.allows(origin) {
        app.hub.refused_upgrade(UpgradeRefusal::Origin);
        log_origin_refusal(&app, origin.unwrap_or("?"));
        return (
            StatusCode::FORBIDDEN,
            "WebSocket from a page of another origin refused; if this is the address users open, \
             the operator sets it with --public-url (or --allowed-origin)\n",
        )
            .into_response();
    }
    if app.shutdown.is_cancelled() {
        app.hub.refused_upgrade(UpgradeRefusal::ShuttingDown);
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let open = app.open.fetch_add(1, Ordering::Relaxed);
    let slot = Slot(app.clone());
    if open >= app.cfg.max_connections {
        app.hub.refused_upgrade(UpgradeRefusal::MaxConnections);
        log_limit_refusal(&app);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; try again later\n",
        )
            .into_response();
    }
    let settings = SocketSettings {
        heartbeat: app.cfg.heartbeat_interval,
        outbound_queue: app.cfg.outbound_queue,
        outbound_queue_bytes: app.cfg.outbound_queue_bytes,
        write_timeout: app.cfg.write_timeout,
        join_timeout: app.cfg.join_timeout,
    };
    let max = app.cfg.max_frame_bytes;
    upgrade
        .read_buffer_size(app.cfg.ws_read_buffer)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            let hub = app.hub.clone();
            let shutdown = app.shutdown.clone();
            app.tracker.track_future(async move {
                let _slot = slot;
                // The socket keeps its address's place until it ends.
                let _ip_slot = ip_slot;
                ws::run(socket, hub, settings, shutdown).await;
            })
        })
}

/// Counts one refusal in `log`; once per [`LIMIT_LOG_INTERVAL`] returns
/// how many there were since the last line (then write one).
fn refusal_due(log: &Mutex<(u64, Option<Instant>)>) -> Option<u64> {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.0 += 1;
    let due = log.1.is_none_or(|at| at.elapsed() >= LIMIT_LOG_INTERVAL);
    due.then(|| {
        let n = log.0;
        *log = (0, Some(Instant::now()));
        n
    })
}

/// Counts a refusal at the connection limit; logs at most once per
/// [`LIMIT_LOG_INTERVAL`], with how many were refused since the last line.
fn log_limit_refusal(app: &App) {
    if let Some(refused) = refusal_due(&app.limit_log) {
        warn!(
            max_connections = app.cfg.max_connections,
            refused,
            "connection limit reached: refusing new connections with HTTP 503 (raise --max-connections and the open-file limit to allow more)"
        );
    }
}

/// Logs (at most once per [`LIMIT_LOG_INTERVAL`]) an upgrade refused for
/// its origin, saying which setting allows it.
fn log_origin_refusal(app: &App, origin: &str) {
    if let Some(refused) = refusal_due(&app.origin_log) {
        warn!(
            origin,
            refused,
            "refused a WebSocket upgrade from a page whose origin is not one of this server's names \
             (DNS rebinding defence); if users open huddle at this address (e.g. behind a reverse proxy), \
             start huddle with --public-url {origin} (or --allowed-origin {origin})"
        );
    }
}

/// Logs (at most once per [`LIMIT_LOG_INTERVAL`]) a connection refused at
/// `--max-connections-per-ip`.
fn log_per_ip_refusal(app: &App, ip: IpAddr) {
    if let Some(refused) = refusal_due(&app.per_ip_log) {
        warn!(
            %ip,
            max_connections_per_ip = app.cfg.max_connections_per_ip,
            refused,
            "an address reached its connection cap: refusing its new connections with HTTP 429 \
             (behind a reverse proxy every user shares the proxy's address: use --max-connections-per-ip 0)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn metrics_answer_only_loopback_clients_that_are_not_proxied() {
        let none = HeaderMap::new();
        for ip in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(metrics_visible(ip.parse().unwrap(), &none), "{ip}");
        }
        for ip in [
            "192.0.2.7",
            "10.0.0.1",
            "2001:db8::1",
            "::ffff:192.0.2.7",
            "0.0.0.0",
        ] {
            assert!(!metrics_visible(ip.parse().unwrap(), &none), "{ip}");
        }
        // A reverse proxy on the same machine forwarding an outside request.
        for h in [
            "x-forwarded-for",
            "forwarded",
            "x-real-ip",
            "x-forwarded-host",
        ] {
            let proxied = headers(&[(h, "192.0.2.7")]);
            assert!(
                !metrics_visible("127.0.0.1".parse().unwrap(), &proxied),
                "{h}"
            );
        }
    }

    #[test]
    fn origins_are_the_configured_names_not_the_request_s() {
        let cfg = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: Some(Origin::parse("https://chat.example.com").unwrap()),
            allowed_origins: vec!["https://friend.example".to_owned()],
            ..Config::default()
        };
        let p = origin_policy(&cfg, None, 8080);
        for ok in [
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "https://chat.example.com",
            "https://friend.example",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for bad in [
            "http://evil.example:8080",
            "https://localhost:8080",
            "http://localhost:8081",
        ] {
            assert!(!p.allows(Some(bad)), "{bad}");
        }
    }

    #[test]
    fn a_certificate_s_names_are_https_origins_on_the_listener_s_port() {
        let cfg = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: Some(tls::TlsSource::Files {
                cert: "c".into(),
                key: "k".into(),
            }),
            ..Config::default()
        };
        let names = ["chat.example.com".to_owned(), "*.lan.example".to_owned()];
        let p = origin_policy(&cfg, Some(&names), 8443);
        assert!(p.allows(Some("https://chat.example.com:8443")));
        assert!(p.allows(Some("https://box.lan.example:8443")));
        assert!(p.allows(Some("https://localhost:8443")));
        assert!(!p.allows(Some("http://chat.example.com:8443")));
        assert!(!p.allows(Some("https://chat.example.com")));
    }

    #[test]
    fn turn_on_the_listener_is_named_as_the_certificate_covers() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        // Plain HTTP: TURN over TCP at the address.
        assert_eq!(
            listener_turn_urls(ip, 8080, None, None),
            ["turn:203.0.113.7:8080?transport=tcp"]
        );
        // An operator's certificate: its first real name, for TLS.
        let names = ["*.example.org", "localhost", "meet.example.org"].map(String::from);
        assert_eq!(
            listener_turn_urls(ip, 443, None, Some(&names)),
            [
                "turns:meet.example.org:443?transport=tcp",
                "turn:203.0.113.7:443?transport=tcp"
            ]
        );
        // --public-url decides name and port (a port forward 443 → 8443).
        let public = Origin::parse("https://video.example.com").unwrap();
        assert_eq!(
            listener_turn_urls(ip, 8443, Some(&public), Some(&names)),
            [
                "turns:video.example.com:443?transport=tcp",
                "turn:203.0.113.7:443?transport=tcp"
            ]
        );
        // A self-signed certificate (no names given) is reached by address;
        // IPv6 in brackets.
        let v6: IpAddr = "2001:db8::5".parse().unwrap();
        assert_eq!(
            listener_turn_urls(v6, 8443, None, Some(&[])),
            [
                "turns:[2001:db8::5]:8443?transport=tcp",
                "turn:[2001:db8::5]:8443?transport=tcp"
            ]
        );
    }

    #[test]
    fn security_headers_fill_in_without_overriding() {
        let h = SecurityHeaders::new(true, false);
        let mut r = (
            StatusCode::NOT_FOUND,
            [(header::REFERRER_POLICY, "same-origin")],
            "x",
        )
            .into_response();
        h.apply(&mut r);
        assert_eq!(r.headers()[header::REFERRER_POLICY], "same-origin");
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(r.headers()[header::STRICT_TRANSPORT_SECURITY], HSTS);
        let mut plain = "x".into_response();
        SecurityHeaders::new(false, false).apply(&mut plain);
        assert!(
            plain
                .headers()
                .get(header::STRICT_TRANSPORT_SECURITY)
                .is_none()
        );
        assert!(
            plain.headers()["permissions-policy"]
                .to_str()
                .unwrap()
                .contains("camera=(self)")
        );
    }
}
