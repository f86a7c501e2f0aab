//! The HTTP side: routes, the WebSocket upgrade (origin check, connection
//! limit, frame limits) and graceful shutdown.
//!
//! Routes: `GET /ws` (signaling), `GET /healthz`, `GET /metrics`
//! (Prometheus; on its own listener with `--metrics`), `GET /` and
//! `GET /r/<room>` (the web client), and every other file of the web client
//! at its path.
//!
//! Shutdown: cancelling the token stops accepting, makes every socket send
//! close 1001, and [`Server::run`] waits for the socket tasks with a timeout.
//! (axum's graceful shutdown alone does not close upgraded WebSockets.)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::assets;
use crate::config::{Config, RESERVED_FDS};
use crate::hub::Hub;
use crate::metrics::{self, UpgradeRefusal};
use crate::tls::{self, Listener, Tls};
use crate::turn::TurnServer;
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
}

/// State shared by the handlers.
struct App {
    cfg: Config,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    open: AtomicUsize,
    /// Upgrades refused at the connection limit since the last log line,
    /// and when that line was written.
    limit_log: Mutex<(u64, Option<Instant>)>,
}

/// At most one log line per this interval about connections refused at
/// `--max-connections`, with the count since the previous one.
pub const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A bound server, ready to run.
pub struct Server {
    listener: Listener,
    metrics_listener: Option<TcpListener>,
    app: Arc<App>,
    turn: Option<TurnServer>,
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
        let self_signed = tls.as_ref().and_then(|t| t.self_signed.clone());
        let listener = Listener::new(tcp, tls.map(|t| t.acceptor))?;
        let mut turn = None;
        if let Some(turn_cfg) = &cfg.turn {
            let secret = cfg.turn_secret.clone().unwrap_or_else(random_secret);
            let http = axum::serve::Listener::local_addr(&listener).ok();
            let server = TurnServer::start(&turn_cfg.with_own_addrs(http), secret.clone()).await?;
            cfg.core
                .ice
                .add_rest(server.urls(), secret.clone(), cfg.turn_ttl);
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
        let metrics_listener = match cfg.metrics_listen {
            Some(addr) => Some(
                listen(addr, METRICS_BACKLOG)
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let hub = Hub::new(cfg.core.clone());
        Ok(Self {
            listener,
            metrics_listener,
            turn,
            self_signed,
            app: Arc::new(App {
                cfg,
                hub,
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                open: AtomicUsize::new(0),
                limit_log: Mutex::new((0, None)),
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        axum::serve::Listener::local_addr(&self.listener)
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
    /// and waits (at most `--shutdown-timeout`) for their tasks.
    pub async fn run(self, stop: CancellationToken) -> Result<(), ServerError> {
        let app = self.app;
        let mut router = Router::new()
            .route("/ws", get(upgrade))
            .route("/healthz", get(healthz))
            .route("/", get(index))
            .route("/r/{*room}", get(room_page));
        if self.metrics_listener.is_none() {
            router = router.route("/metrics", get(metrics));
        }
        let router = router.fallback(get(asset)).with_state(app.clone());
        let timers = tokio::spawn(app.hub.clone().run_timers(app.shutdown.clone()));
        let shutdown = app.shutdown.clone();
        let metrics_server = self.metrics_listener.map(|listener| {
            let router = Router::new()
                .route("/metrics", get(metrics))
                .with_state(app.clone());
            let stop = shutdown.clone().cancelled_owned();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await
            })
        });
        // The listener sets TCP_NODELAY on every connection (see tls.rs).
        let serve = axum::serve(self.listener, router).with_graceful_shutdown({
            let stop = stop.clone();
            let shutdown = shutdown.clone();
            async move {
                stop.cancelled().await;
                shutdown.cancel();
            }
        });
        let result = serve.await;
        shutdown.cancel();
        app.tracker.close();
        let open = app.tracker.len();
        if open > 0 {
            info!(open, "closing connections");
        }
        if tokio::time::timeout(app.cfg.shutdown_timeout, app.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                left = app.tracker.len(),
                "some connections did not close in time"
            );
        }
        let _ = timers.await;
        if let Some(task) = metrics_server {
            let _ = task.await;
        }
        if let Some(turn) = self.turn {
            turn.close().await;
        }
        result.map_err(ServerError::Io)
    }
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

/// Whether a WebSocket upgrade with these headers may proceed: no `Origin`
/// (not a browser), the server's own origin, or one allowed by the operator.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        });
    own || allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
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
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &app.cfg.allowed_origins) {
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or("?");
        info!(origin, "refused a cross-origin WebSocket upgrade");
        app.hub.refused_upgrade(UpgradeRefusal::Origin);
        return (
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket refused; the operator can allow it with --allowed-origin\n",
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
                ws::run(socket, hub, settings, shutdown).await;
            })
        })
}

/// Counts a refusal at the connection limit; logs at most once per
/// [`LIMIT_LOG_INTERVAL`], with how many were refused since the last line.
fn log_limit_refusal(app: &App) {
    let mut log = app.limit_log.lock().unwrap_or_else(|e| e.into_inner());
    log.0 += 1;
    let due = log.1.is_none_or(|at| at.elapsed() >= LIMIT_LOG_INTERVAL);
    if due {
        warn!(
            max_connections = app.cfg.max_connections,
            refused = log.0,
            "connection limit reached: refusing new connections with HTTP 503 (raise --max-connections and the open-file limit to allow more)"
        );
        *log = (0, Some(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origins() {
        let allowed = vec!["https://app.example.com".to_owned()];
        assert!(origin_allowed(&headers(&[("host", "h:8080")]), &allowed));
        assert!(origin_allowed(
            &headers(&[("host", "h:8080"), ("origin", "http://h:8080")]),
            &allowed
        ));
        assert!(origin_allowed(
            &headers(&[
                ("host", "chat.example.com"),
                ("origin", "https://chat.example.com")
            ]),
            &allowed
        ));
        assert!(origin_allowed(
            &headers(&[("host", "h:8080"), ("origin", "https://app.example.com")]),
            &allowed
        ));
        for bad in [
            "http://evil.example",
            "null",
            "http://h:8081",
            "http://h:8080.evil",
        ] {
            let mut h = headers(&[("host", "h:8080")]);
            h.insert("origin", HeaderValue::from_static(bad));
            assert!(!origin_allowed(&h, &allowed), "{bad}");
        }
    }
}
