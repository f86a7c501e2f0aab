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

    /// Waits (at most [`WAIT`] in all, pings included) for the server's
    /// close frame; returns it.
    pub async fn recv_close(&mut self) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
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

/// A WebSocket client on a bare TCP socket, for clients that misbehave in
/// ways a library will not: never reading, never answering a close frame.
pub struct RawWs {
    pub tcp: TcpStream,
    /// Bytes read past the upgrade response.
    pub buf: Vec<u8>,
}

/// A masked client text frame (the mask is fixed; servers must not care).
pub fn client_frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x81];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// An upgrade request for `/ws` with these extra header lines.
pub fn upgrade_request_with(host: &str, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// A TCP connection to `addr` from the loopback address `from`, with a
/// receive buffer of about `rcvbuf` bytes if given (set before connecting,
/// so the window is small from the start).
pub async fn tcp_from(addr: SocketAddr, from: &str, rcvbuf: Option<u32>) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

impl RawWs {
    /// Upgrades; panics unless the answer is 101.
    pub async fn connect(addr: SocketAddr, rcvbuf: Option<u32>) -> RawWs {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tcp_from(addr, "127.0.0.1", rcvbuf).await;
        tcp.write_all(upgrade_request_with(&addr.to_string(), "").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
                .await
                .expect("an upgrade response in time")
                .unwrap();
            assert!(n > 0, "closed during the upgrade");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let buf = buf[end..].to_vec();
        RawWs { tcp, buf }
    }

    pub async fn send(&mut self, v: Value) {
        use tokio::io::AsyncWriteExt;
        self.tcp
            .write_all(&client_frame(&v.to_string()))
            .await
            .unwrap();
    }

    /// The next server frame: (opcode, payload). None when the connection
    /// ended (closed or reset).
    pub async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some((op, payload, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((op, payload));
            }
            let mut chunk = [0u8; 16384];
            match self.tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next text frame as JSON, skipping pings.
    pub async fn recv(&mut self) -> Value {
        loop {
            let (op, payload) = tokio::time::timeout(WAIT, self.frame())
                .await
                .expect("a frame in time")
                .expect("the connection is open");
            match op {
                1 => return serde_json::from_slice(&payload).expect("JSON"),
                9 | 10 => continue,
                other => panic!("expected text, got opcode {other}"),
            }
        }
    }
}

/// An unmasked server frame at the start of `buf`: (opcode, payload, bytes used).
fn parse_server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let op = buf[0] & 0x0f;
    let (len, start) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < start + len {
        return None;
    }
    Some((op, buf[start..start + len].to_vec(), start + len))
}

/// The status line of the response to a raw request, read without waiting
/// for the connection to end (an upgrade stays open).
pub async fn status_line(addr: SocketAddr, from: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tcp_from(addr, from, None).await;
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}
