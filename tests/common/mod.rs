//! Helpers for integration tests: an in-process server on 127.0.0.1:0 and a
//! small WebSocket client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use huddle::config::Config;
use huddle::hub::Hub;
use huddle::server::Server;
use serde_json::Value;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
}

/// A config for tests: loopback, ephemeral port, otherwise defaults.
pub fn config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

pub async fn start(cfg: Config) -> TestServer {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = Server::bind(cfg).await.expect("bind");
    let addr = server.local_addr().unwrap();
    let hub = server.hub();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { server.run(stop).await.expect("server runs") }
    });
    TestServer {
        addr,
        hub,
        stop,
        task,
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("connect");
        Client { ws }
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next JSON message (pings are answered by the library while reading).
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the connection is open")
                .expect("no transport error");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON from server"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Waits for the server's close frame; returns it.
    pub async fn recv_close(&mut self) -> Option<CloseFrame> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a close in time");
            match msg {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("transport error before close: {e}"),
                None => panic!("stream ended without a close frame"),
            }
        }
    }

    /// Joins and returns the `joined` message.
    pub async fn join(&mut self, room: &str, name: &str) -> Value {
        self.send(serde_json::json!({"type":"join","room":room,"name":name}))
            .await;
        let joined = self.recv().await;
        assert_eq!(joined["type"], "joined", "{joined}");
        joined
    }

    /// Drops the TCP connection without a close frame.
    pub fn vanish(self) {
        drop(self.ws);
    }
}

/// alice and bob in room "r"; alice has seen bob arrive. Returns bob's token too.
pub async fn alice_and_bob(addr: SocketAddr) -> (Client, Client, Value) {
    let mut alice = Client::connect(addr).await;
    let mut bob = Client::connect(addr).await;
    alice.join("r", "alice").await;
    let token = bob.join("r", "bob").await["token"].clone();
    assert_eq!(alice.recv().await["type"], "peer-joined");
    (alice, bob, token)
}

/// A server with a self-signed certificate (`--tls-self-signed`) in a
/// fresh data directory named after TAG; returns it and the certificate's
/// PEM file. Remove the directory with [`remove_tls_dir`].
#[allow(dead_code)] // not every test file uses it
pub async fn start_tls(tag: &str) -> (TestServer, std::path::PathBuf) {
    let dir = tls_dir(tag);
    let _ = std::fs::remove_dir_all(&dir);
    let srv = start(Config {
        tls: Some(huddle::tls::TlsSource::SelfSigned {
            data_dir: dir.clone(),
        }),
        ..config()
    })
    .await;
    (srv, dir.join("self-signed-cert.pem"))
}

fn tls_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("huddle-{tag}-{}", std::process::id()))
}

/// Removes the data directory of [`start_tls`].
#[allow(dead_code)]
pub fn remove_tls_dir(tag: &str) {
    let _ = std::fs::remove_dir_all(tls_dir(tag));
}
