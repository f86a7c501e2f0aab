//! The embedded TURN server over real UDP and TCP sockets on 127.0.0.1:
//! allocations with minted credentials succeed on both transports; expired,
//! forged and tampered ones are refused; the per-user quota holds; relayed
//! data flows between two allocations; and `joined` hands out the server
//! with credentials it accepts.
//!
//! The hardening stories (issue 9): TCP keeps serving after allocations
//! end, and a dropped connection ends its own; peers outside the allowed
//! ranges and the server's own sockets are refused with 403; nonces are
//! stateless and bound to the client address; the quotas per IP and in all
//! hold, expired credentials create nothing new, and EVEN-PORT on a range
//! without a free even port is answered instead of spinning.

mod common;
mod nonce_flood;
use nonce_flood::flood_unauthenticated;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use huddle::ice;
use huddle::turn::{TurnConfig, TurnServer};
use stun::agent::TransactionId;
use stun::error_code::ErrorCodeAttribute;
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    BINDING_REQUEST, CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE,
    Getter as _, METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH,
    METHOD_SEND, Message, MessageType, Setter,
};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use turn::proto::PROTO_UDP;
use turn::proto::data::Data;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::relayaddr::RelayedAddress;
use turn::proto::reqtrans::RequestedTransport;

const SECRET: &[u8] = b"test-secret";
const STEP: Duration = Duration::from_secs(5);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A byte stream a TURN client can use: TCP, or TLS over it.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for S {}

/// A TURN client transport: UDP, TCP or TLS, one request at a time.
enum Transport {
    Udp(UdpSocket, SocketAddr),
    Tcp(Box<dyn Stream>),
}

impl Transport {
    async fn udp(server: SocketAddr) -> Self {
        Self::udp_from("127.0.0.1", server).await
    }

    /// From another loopback address, as another client IP.
    async fn udp_from(ip: &str, server: SocketAddr) -> Self {
        Self::Udp(UdpSocket::bind((ip, 0)).await.unwrap(), server)
    }

    async fn tcp(server: SocketAddr) -> Self {
        Self::Tcp(Box::new(TcpStream::connect(server).await.unwrap()))
    }

    /// TURN over TLS to SERVER, trusting the certificate in CERT (PEM),
    /// offering ALPN `stun.turn` or nothing.
    async fn tls(server: SocketAddr, cert: &std::path::Path, alpn: bool) -> Self {
        let mut config = trusting(cert);
        if alpn {
            config.alpn_protocols = vec![b"stun.turn".to_vec()];
        }
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(server).await.unwrap();
        let name = rustls_pki_types::ServerName::from(server.ip());
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        Self::Tcp(Box::new(tls))
    }

    async fn send(&mut self, raw: &[u8]) {
        match self {
            Self::Udp(s, to) => {
                s.send_to(raw, *to).await.unwrap();
            }
            Self::Tcp(s) => s.write_all(raw).await.unwrap(),
        }
    }

    async fn recv(&mut self) -> Message {
        let mut m = Message::new();
        match self {
            Self::Udp(s, _) => {
                let mut buf = vec![0u8; 1500];
                let (n, _) = tokio::time::timeout(STEP, s.recv_from(&mut buf))
                    .await
                    .expect("a TURN answer in time")
                    .unwrap();
                m.unmarshal_binary(&buf[..n]).unwrap();
            }
            Self::Tcp(s) => {
                let mut head = [0u8; 20];
                tokio::time::timeout(STEP, s.read_exact(&mut head))
                    .await
                    .expect("a TURN answer in time")
                    .unwrap();
                let len = u16::from_be_bytes([head[2], head[3]]) as usize;
                let mut raw = head.to_vec();
                raw.resize(20 + len, 0);
                s.read_exact(&mut raw[20..]).await.unwrap();
                m.unmarshal_binary(&raw).unwrap();
            }
        }
        m
    }

    async fn request(&mut self, setters: Vec<Box<dyn Setter>>) -> Message {
        let mut m = Message::new();
        m.build(&setters).unwrap();
        self.send(&m.raw).await;
        self.recv().await
    }
}

/// Allocates with USERNAME/PASSWORD; the relayed address, or the error code.
async fn allocate(t: &mut Transport, username: &str, password: &str) -> Result<SocketAddr, u16> {
    let alloc = MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST);
    // First without credentials: 401 with a realm and a nonce.
    let challenge = t
        .request(vec![
            Box::new(TransactionId::new()),
            Box::new(alloc),
            Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            }),
            Box::new(FINGERPRINT),
        ])
        .await;
    let mut code = ErrorCodeAttribute::default();
    code.get_from(&challenge).unwrap();
    assert_eq!(code.code.0, 401);
    let mut realm = TextAttribute::new(stun::attributes::ATTR_REALM, String::new());
    realm.get_from(&challenge).unwrap();
    let mut nonce = TextAttribute::new(stun::attributes::ATTR_NONCE, String::new());
    nonce.get_from(&challenge).unwrap();
    let integrity = MessageIntegrity::new_long_term_integrity(
        username.to_owned(),
        realm.text.clone(),
        password.to_owned(),
    );
    let answer = t
        .request(vec![
            Box::new(TransactionId::new()),
            Box::new(alloc),
            Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            }),
            Box::new(TextAttribute::new(
                stun::attributes::ATTR_USERNAME,
                username.to_owned(),
            )),
            Box::new(realm),
            Box::new(nonce),
            Box::new(integrity),
            Box::new(FINGERPRINT),
        ])
        .await;
    let mut relayed = RelayedAddress::default();
    if relayed.get_from(&answer).is_ok() {
        return Ok(SocketAddr::new(relayed.ip, relayed.port));
    }
    let mut code = ErrorCodeAttribute::default();
    code.get_from(&answer).unwrap();
    Err(code.code.0)
}

/// Settings for a server on 127.0.0.1 whose relay may reach loopback peers
/// (the test peers live there; loopback is refused by default).
fn loopback_config() -> TurnConfig {
    let mut cfg = TurnConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.allowed_peers = vec!["127.0.0.0/8".parse().unwrap()];
    cfg
}

async fn turn_server(quota: usize) -> TurnServer {
    let mut cfg = loopback_config();
    cfg.user_quota = quota;
    TurnServer::start(&cfg, Arc::from(SECRET)).await.unwrap()
}

#[tokio::test]
async fn minted_credentials_allocate_over_udp_and_tcp() {
    let server = turn_server(10).await;
    let addr = server.local_addr();
    let creds = ice::mint(SECRET, "alice", now() + 600);
    for mut t in [Transport::udp(addr).await, Transport::tcp(addr).await] {
        let relay = allocate(&mut t, &creds.username, &creds.credential)
            .await
            .expect("allocated");
        assert_eq!(relay.ip(), addr.ip(), "the advertised address");
        assert_ne!(relay.port(), addr.port());
    }
    assert_eq!(
        server.urls(),
        vec![
            format!("turn:127.0.0.1:{}?transport=udp", addr.port()),
            format!("turn:127.0.0.1:{}?transport=tcp", addr.port()),
        ]
    );
    server.close().await;
}

#[tokio::test]
async fn expired_forged_and_tampered_credentials_are_refused() {
    let server = turn_server(10).await;
    let addr = server.local_addr();
    let expired = ice::mint(SECRET, "alice", now() - 5);
    let forged = ice::mint(b"guessed", "alice", now() + 600);
    let good = ice::mint(SECRET, "alice", now() + 600);
    let tampered = good.username.replace("alice", "admin");
    let cases = [
        (
            "expired",
            expired.username.clone(),
            expired.credential.clone(),
        ),
        ("forged", forged.username.clone(), forged.credential.clone()),
        ("tampered", tampered, good.credential.clone()),
        (
            "no expiry",
            "alice".to_owned(),
            ice::credential_for(SECRET, "alice"),
        ),
    ];
    for (what, user, pass) in cases {
        for mut t in [Transport::udp(addr).await, Transport::tcp(addr).await] {
            let got = allocate(&mut t, &user, &pass).await;
            assert!(
                got == Err(401),
                "{what}: {got:?} (expected 401, RFC 8489 §9.2.4)"
            );
        }
    }
    server.close().await;
}

#[tokio::test]
async fn the_quota_limits_live_allocations_per_username() {
    let server = turn_server(2).await;
    let addr = server.local_addr();
    let alice = ice::mint(SECRET, "alice", now() + 600);
    let bob = ice::mint(SECRET, "bob", now() + 600);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut t = Transport::udp(addr).await;
        allocate(&mut t, &alice.username, &alice.credential)
            .await
            .expect("within the quota");
        held.push(t);
    }
    let mut third = Transport::tcp(addr).await;
    assert!(
        allocate(&mut third, &alice.username, &alice.credential)
            .await
            .is_err(),
        "a third allocation of the same user is refused"
    );
    let mut t = Transport::udp(addr).await;
    allocate(&mut t, &bob.username, &bob.credential)
        .await
        .expect("another user is not affected");
    server.close().await;
}

#[tokio::test]
async fn data_relays_between_a_tcp_and_a_udp_allocation() {
    let server = turn_server(10).await;
    let creds = ice::mint(SECRET, "carol", now() + 600);
    // A plain UDP peer stands in for the other side.
    let mut t = Transport::tcp(server.local_addr()).await;
    relay_round_trip(&mut t, &creds).await;
    server.close().await;
}

#[tokio::test]
async fn stun_binding_works_on_both_transports() {
    let server = turn_server(10).await;
    let addr = server.local_addr();
    for mut t in [Transport::udp(addr).await, Transport::tcp(addr).await] {
        let answer = t
            .request(vec![
                Box::new(TransactionId::new()),
                Box::new(BINDING_REQUEST),
                Box::new(FINGERPRINT),
            ])
            .await;
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&answer).unwrap();
        assert_eq!(mapped.ip, addr.ip());
    }
    server.close().await;
}

#[tokio::test]
async fn joined_carries_the_embedded_server_with_working_credentials() {
    let mut cfg = common::config();
    cfg.turn = Some(loopback_config());
    cfg.turn_secret = Some(Arc::from(SECRET));
    cfg.turn_urls = vec!["turn:turn.example.org:3478".into()];
    cfg.core.ice.push_url("stun:stun.example.org").unwrap();
    let server = common::start(cfg).await;
    let mut alice = common::Client::connect(server.addr).await;
    let joined = alice.join("r", "alice").await;
    let ice_servers = joined["iceServers"].as_array().unwrap();
    assert_eq!(ice_servers[0]["urls"], "stun:stun.example.org");
    let minted = &ice_servers[1];
    let urls: Vec<&str> = minted["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(
        urls.len(),
        4,
        "embedded UDP and TCP, TCP on the HTTP port, then the external one: {urls:?}"
    );
    assert!(urls[0].starts_with("turn:127.0.0.1:") && urls[0].ends_with("?transport=udp"));
    assert_eq!(
        urls[2],
        format!("turn:127.0.0.1:{}?transport=tcp", server.addr.port())
    );
    assert_eq!(urls[3], "turn:turn.example.org:3478");
    let username = minted["username"].as_str().unwrap();
    let credential = minted["credential"].as_str().unwrap();
    let (expiry, name) = username.split_once(':').unwrap();
    assert_eq!(name, "alice");
    let ttl = expiry.parse::<u64>().unwrap() - now();
    assert!((3590..=3600).contains(&ttl), "one hour by default, {ttl}");
    // The embedded server takes them.
    let turn_addr: SocketAddr = urls[0]
        .trim_start_matches("turn:")
        .trim_end_matches("?transport=udp")
        .parse()
        .unwrap();
    let mut t = Transport::udp(turn_addr).await;
    allocate(&mut t, username, credential)
        .await
        .expect("allocated");
    server.stop.cancel();
    server.task.await.unwrap();
}

/// Sends a request of METHOD with ATTRS, authenticated: first without
/// credentials for the nonce, then with them. True on a success response.
async fn authed(
    t: &mut Transport,
    method: stun::message::Method,
    attrs: impl Fn() -> Vec<Box<dyn Setter>>,
    username: &str,
    password: &str,
) -> bool {
    authed_answer(t, method, attrs, username, password)
        .await
        .typ
        .class
        == CLASS_SUCCESS_RESPONSE
}

/// Like [`authed`]: the answer itself.
async fn authed_answer(
    t: &mut Transport,
    method: stun::message::Method,
    attrs: impl Fn() -> Vec<Box<dyn Setter>>,
    username: &str,
    password: &str,
) -> Message {
    let typ = MessageType::new(method, CLASS_REQUEST);
    let mut first: Vec<Box<dyn Setter>> = vec![Box::new(TransactionId::new()), Box::new(typ)];
    first.extend(attrs());
    first.push(Box::new(FINGERPRINT));
    let challenge = t.request(first).await;
    let mut nonce = TextAttribute::new(stun::attributes::ATTR_NONCE, String::new());
    nonce.get_from(&challenge).unwrap();
    let mut second: Vec<Box<dyn Setter>> = vec![Box::new(TransactionId::new()), Box::new(typ)];
    second.extend(attrs());
    second.extend([
        Box::new(TextAttribute::new(
            stun::attributes::ATTR_USERNAME,
            username.to_owned(),
        )) as Box<dyn Setter>,
        Box::new(TextAttribute::new(
            stun::attributes::ATTR_REALM,
            "huddle".to_owned(),
        )),
        Box::new(nonce),
        Box::new(MessageIntegrity::new_long_term_integrity(
            username.to_owned(),
            "huddle".to_owned(),
            password.to_owned(),
        )),
        Box::new(FINGERPRINT),
    ]);
    t.request(second).await
}

fn lifetime(secs: u64) -> Box<dyn Setter> {
    Box::new(turn::proto::lifetime::Lifetime(Duration::from_secs(secs)))
}

#[tokio::test]
async fn a_running_allocation_outlives_its_credentials() {
    let server = turn_server(10).await;
    let addr = server.local_addr();
    // Valid for about a second.
    let creds = ice::mint(SECRET, "dora", now() + 1);
    let mut t = Transport::udp(addr).await;
    allocate(&mut t, &creds.username, &creds.credential)
        .await
        .expect("allocated while valid");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        now()
            > creds
                .username
                .split(':')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
    );
    // The browser's refresh goes on working for the allocation it holds.
    assert!(
        authed(
            &mut t,
            METHOD_REFRESH,
            || vec![lifetime(600)],
            &creds.username,
            &creds.credential
        )
        .await,
        "a refresh with expired credentials of a live allocation"
    );
    // Released, the username is refused from then on.
    assert!(
        authed(
            &mut t,
            METHOD_REFRESH,
            || vec![lifetime(0)],
            &creds.username,
            &creds.credential
        )
        .await,
        "deleting the allocation"
    );
    let mut later = Transport::udp(addr).await;
    // The quota slot is given back when the relay task ends: poll briefly.
    let mut refused = false;
    for _ in 0..50 {
        if allocate(&mut later, &creds.username, &creds.credential)
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        later = Transport::udp(addr).await;
    }
    assert!(
        refused,
        "expired credentials without a live allocation are refused"
    );
    server.close().await;
}

/// The error code of an answer, if it is an error.
fn error_code(m: &Message) -> Option<u16> {
    let mut code = ErrorCodeAttribute::default();
    code.get_from(m).ok().map(|()| code.code.0)
}

fn peer(addr: SocketAddr) -> Box<dyn Setter> {
    Box::new(PeerAddress {
        ip: addr.ip(),
        port: addr.port(),
    })
}

/// Allocates with extra attributes; the relayed address or the error code.
async fn allocate_with(
    t: &mut Transport,
    creds: &ice::Credentials,
    extra: impl Fn() -> Vec<Box<dyn Setter>>,
) -> Result<SocketAddr, u16> {
    let answer = authed_answer(
        t,
        METHOD_ALLOCATE,
        || {
            let mut attrs: Vec<Box<dyn Setter>> = vec![Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            })];
            attrs.extend(extra());
            attrs
        },
        &creds.username,
        &creds.credential,
    )
    .await;
    let mut relayed = RelayedAddress::default();
    match relayed.get_from(&answer) {
        Ok(()) => Ok(SocketAddr::new(relayed.ip, relayed.port)),
        Err(_) => Err(error_code(&answer).expect("an error code")),
    }
}

/// Ends the allocation of `t` (a Refresh with lifetime 0).
async fn release(t: &mut Transport, creds: &ice::Credentials) {
    assert!(
        authed(
            t,
            METHOD_REFRESH,
            || vec![lifetime(0)],
            &creds.username,
            &creds.credential
        )
        .await,
        "released"
    );
}

#[tokio::test]
async fn tcp_keeps_serving_after_allocations_end() {
    let server = turn_server(10).await;
    let addr = server.local_addr();
    let creds = ice::mint(SECRET, "erin", now() + 600);
    // Three browsers one after the other, each over a fresh TCP connection,
    // each releasing its allocation before the next comes (the crate used
    // to close the whole TCP listener when the first one ended).
    for round in 1..=3 {
        let mut t = Transport::tcp(addr).await;
        allocate(&mut t, &creds.username, &creds.credential)
            .await
            .unwrap_or_else(|code| panic!("TCP allocation {round}: {code}"));
        release(&mut t, &creds).await;
    }
    // UDP was never affected.
    let mut t = Transport::udp(addr).await;
    allocate(&mut t, &creds.username, &creds.credential)
        .await
        .expect("UDP still allocates");
    server.close().await;
}

#[tokio::test]
async fn a_dropped_tcp_connection_ends_its_allocations() {
    // One allocation per user: the second can only come once the first is
    // gone.
    let server = turn_server(1).await;
    let addr = server.local_addr();
    let creds = ice::mint(SECRET, "fay", now() + 600);
    let mut t = Transport::tcp(addr).await;
    let relay = allocate(&mut t, &creds.username, &creds.credential)
        .await
        .expect("allocated over TCP");
    let mut other = Transport::udp(addr).await;
    assert_eq!(
        allocate(&mut other, &creds.username, &creds.credential).await,
        Err(486),
        "the quota is full while the TCP allocation lives"
    );
    // The browser goes away without a Refresh of lifetime 0.
    drop(t);
    let mut freed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = Transport::udp(addr).await;
        if allocate(&mut again, &creds.username, &creds.credential)
            .await
            .is_ok()
        {
            freed = true;
            break;
        }
    }
    assert!(freed, "the dropped connection's allocation ended");
    // Its relay port is closed with it: binding it works again.
    assert!(
        UdpSocket::bind(relay).await.is_ok(),
        "relay port {relay} free"
    );
    server.close().await;
}

#[tokio::test]
async fn peers_outside_the_allowed_ranges_are_forbidden() {
    // Default policy: loopback and private ranges are refused.
    let server = TurnServer::start(
        &TurnConfig::new("127.0.0.1:0".parse().unwrap()),
        Arc::from(SECRET),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let creds = ice::mint(SECRET, "gus", now() + 600);
    for mut t in [Transport::udp(addr).await, Transport::tcp(addr).await] {
        allocate(&mut t, &creds.username, &creds.credential)
            .await
            .expect("allocated");
        for refused in [
            "127.0.0.1:5000",
            "10.0.0.1:5000",
            "192.168.1.1:5000",
            "169.254.0.1:5000",
        ] {
            let refused: SocketAddr = refused.parse().unwrap();
            let answer = authed_answer(
                &mut t,
                METHOD_CREATE_PERMISSION,
                || vec![peer(refused)],
                &creds.username,
                &creds.credential,
            )
            .await;
            assert_eq!(answer.typ.class, CLASS_ERROR_RESPONSE, "{refused}");
            assert_eq!(error_code(&answer), Some(403), "permission for {refused}");
            let answer = authed_answer(
                &mut t,
                METHOD_CHANNEL_BIND,
                || {
                    vec![
                        Box::new(turn::proto::channum::ChannelNumber(0x4000)),
                        peer(refused),
                    ]
                },
                &creds.username,
                &creds.credential,
            )
            .await;
            assert_eq!(error_code(&answer), Some(403), "channel bind to {refused}");
        }
        // A public address is fine (a permission sends nothing to it).
        let public: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        assert!(
            authed(
                &mut t,
                METHOD_CREATE_PERMISSION,
                || vec![peer(public)],
                &creds.username,
                &creds.credential
            )
            .await,
            "permission for a public peer"
        );
    }
    server.close().await;

    // Loopback opened: a loopback peer is fine, the server's own sockets
    // (TURN, and the HTTP listener it was told about) are not.
    let http: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let server = TurnServer::start(&loopback_config().with_own_addrs([http]), Arc::from(SECRET))
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut t = Transport::udp(addr).await;
    allocate(&mut t, &creds.username, &creds.credential)
        .await
        .expect("allocated");
    let peer_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ok = peer_socket.local_addr().unwrap();
    for (target, want) in [(addr, Some(403)), (http, Some(403)), (ok, None)] {
        let answer = authed_answer(
            &mut t,
            METHOD_CREATE_PERMISSION,
            || vec![peer(target)],
            &creds.username,
            &creds.credential,
        )
        .await;
        assert_eq!(error_code(&answer), want, "permission for {target}");
    }
    // A Send indication to the TURN port itself goes nowhere; the server
    // answers the next request as usual.
    let mut send = Message::new();
    send.build(&[
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
        peer(addr),
        Box::new(Data(b"loop".to_vec())),
        Box::new(FINGERPRINT),
    ])
    .unwrap();
    t.send(&send.raw).await;
    let answer = t
        .request(vec![
            Box::new(TransactionId::new()),
            Box::new(BINDING_REQUEST),
            Box::new(FINGERPRINT),
        ])
        .await;
    assert_eq!(answer.typ.class, CLASS_SUCCESS_RESPONSE);
    server.close().await;
}

/// An unauthenticated Allocate: the 401 challenge's nonce.
async fn challenge_nonce(t: &mut Transport) -> TextAttribute {
    let answer = t
        .request(vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            }),
            Box::new(FINGERPRINT),
        ])
        .await;
    assert_eq!(error_code(&answer), Some(401));
    let mut nonce = TextAttribute::new(stun::attributes::ATTR_NONCE, String::new());
    nonce.get_from(&answer).unwrap();
    nonce
}

#[tokio::test]
async fn a_nonce_works_only_from_the_address_it_was_given_to() {
    let server = turn_server(10).await;
    let addr = server.local_addr();
    let creds = ice::mint(SECRET, "hal", now() + 600);
    let mut alice = Transport::udp(addr).await;
    let mut mallory = Transport::udp(addr).await;
    let nonce = challenge_nonce(&mut alice).await;
    // The server stored nothing when it handed the nonce out: it checks the
    // nonce against the address that brings it back.
    let allocate_with_nonce = |nonce: TextAttribute| -> Vec<Box<dyn Setter>> {
        vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            }),
            Box::new(TextAttribute::new(
                stun::attributes::ATTR_USERNAME,
                creds.username.clone(),
            )),
            Box::new(TextAttribute::new(
                stun::attributes::ATTR_REALM,
                "huddle".to_owned(),
            )),
            Box::new(nonce),
            Box::new(MessageIntegrity::new_long_term_integrity(
                creds.username.clone(),
                "huddle".to_owned(),
                creds.credential.clone(),
            )),
            Box::new(FINGERPRINT),
        ]
    };
    let stolen = mallory.request(allocate_with_nonce(nonce.clone())).await;
    assert_eq!(error_code(&stolen), Some(438), "stale from another address");
    let forged = mallory
        .request(allocate_with_nonce(TextAttribute::new(
            stun::attributes::ATTR_NONCE,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        )))
        .await;
    assert_eq!(error_code(&forged), Some(438), "a made-up nonce");
    let own = alice.request(allocate_with_nonce(nonce)).await;
    assert_eq!(
        own.typ.class, CLASS_SUCCESS_RESPONSE,
        "from its own address"
    );
    server.close().await;
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    huddle::load::rss_kib(&pid.to_string()).expect("VmRSS in /proc/PID/status")
}

#[tokio::test]
async fn unauthenticated_allocates_leave_no_state_behind() {
    // HUDDLE_TEST_BIN runs the story against another build (say, one from
    // before stateless nonces, to see it fail).
    let bin = std::env::var("HUDDLE_TEST_BIN").unwrap_or(env!("CARGO_BIN_EXE_huddle").to_owned());
    let mut child = tokio::process::Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let turn: SocketAddr = loop {
        let mut line = String::new();
        let n = tokio::time::timeout(
            STEP,
            tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line),
        )
        .await
        .expect("huddle starts")
        .unwrap();
        assert!(n > 0, "huddle exited before its TURN server ran");
        if let Some(rest) = line.strip_prefix("TURN server on ") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Warm up (allocator arenas, socket buffers), then measure around a
    // run ten times as long. With a nonce kept per request, 50,000 of them
    // cost several MiB.
    flood_unauthenticated(turn, 5_000).await;
    let before = rss_kib(pid);
    let (_, answered) = flood_unauthenticated(turn, 50_000).await;
    let after = rss_kib(pid);
    assert!(
        answered > 45_000,
        "the server answered ({answered} of 50,000)"
    );
    let grown = after.saturating_sub(before);
    println!(
        "huddle RSS {before} KiB → {after} KiB after 50,000 unauthenticated Allocates ({answered} answered)"
    );
    assert!(
        grown < 2048,
        "RSS grew by {grown} KiB ({before} → {after}) for requests that should cost nothing"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_caps_per_ip_and_in_all_hold() {
    let mut cfg = loopback_config();
    cfg.max_allocations_per_ip = 2;
    cfg.max_allocations = 3;
    let server = TurnServer::start(&cfg, Arc::from(SECRET)).await.unwrap();
    let addr = server.local_addr();
    // Different users: the per-user quota (40) is not what refuses.
    let user = |n: &str| ice::mint(SECRET, n, now() + 600);
    let mut first = Transport::udp_from("127.0.0.1", addr).await;
    allocate_with(&mut first, &user("a"), Vec::new)
        .await
        .unwrap();
    let mut second = Transport::udp_from("127.0.0.1", addr).await;
    allocate_with(&mut second, &user("b"), Vec::new)
        .await
        .unwrap();
    let mut third = Transport::udp_from("127.0.0.1", addr).await;
    assert_eq!(
        allocate_with(&mut third, &user("c"), Vec::new).await,
        Err(486),
        "a third allocation from one IP"
    );
    let mut elsewhere = Transport::udp_from("127.0.0.2", addr).await;
    allocate_with(&mut elsewhere, &user("c"), Vec::new)
        .await
        .expect("another IP has its own share");
    let mut fourth = Transport::udp_from("127.0.0.3", addr).await;
    assert_eq!(
        allocate_with(&mut fourth, &user("d"), Vec::new).await,
        Err(486),
        "the global cap of 3"
    );
    // One ends: its slot is free at once.
    release(&mut first, &user("a")).await;
    let mut fifth = Transport::udp_from("127.0.0.3", addr).await;
    allocate_with(&mut fifth, &user("d"), Vec::new)
        .await
        .expect("a slot came back");
    server.close().await;
}

#[tokio::test]
async fn expired_credentials_keep_their_allocation_but_make_no_new_one() {
    let server = turn_server(10).await;
    let addr = server.local_addr();
    let creds = ice::mint(SECRET, "ivy", now() + 1);
    let mut t = Transport::udp(addr).await;
    allocate(&mut t, &creds.username, &creds.credential)
        .await
        .expect("allocated while valid");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // A new socket is a new allocation: the expired username, although it
    // holds one elsewhere, is refused.
    for mut other in [Transport::udp(addr).await, Transport::tcp(addr).await] {
        let got = allocate(&mut other, &creds.username, &creds.credential).await;
        assert!(matches!(got, Err(400 | 401)), "a new allocation: {got:?}");
    }
    // The one it holds goes on: refresh, permission.
    assert!(
        authed(
            &mut t,
            METHOD_REFRESH,
            || vec![lifetime(600)],
            &creds.username,
            &creds.credential
        )
        .await,
        "refreshed"
    );
    let peer_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let p = peer_socket.local_addr().unwrap();
    assert!(
        authed(
            &mut t,
            METHOD_CREATE_PERMISSION,
            || vec![peer(p)],
            &creds.username,
            &creds.credential
        )
        .await,
        "a permission on the live allocation"
    );
    server.close().await;
}

#[tokio::test]
async fn even_port_on_a_range_without_a_free_even_port_is_answered() {
    // A relay range of one odd port: the EVEN-PORT search can never succeed.
    let odd = loop {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        if port % 2 == 1 {
            break port;
        }
    };
    let mut cfg = loopback_config();
    cfg.relay_ports = Some((odd, odd));
    let server = TurnServer::start(&cfg, Arc::from(SECRET)).await.unwrap();
    let addr = server.local_addr();
    let creds = ice::mint(SECRET, "jo", now() + 600);
    let mut t = Transport::udp(addr).await;
    let even =
        || -> Vec<Box<dyn Setter>> { vec![Box::new(turn::proto::evenport::EvenPort::default())] };
    assert_eq!(
        allocate_with(&mut t, &creds, even).await,
        Err(508),
        "insufficient capacity, answered in time"
    );
    // The server goes on serving: a plain allocation takes the odd port.
    let relay = allocate_with(&mut t, &creds, Vec::new)
        .await
        .expect("allocated");
    assert_eq!(relay.port(), odd);
    server.close().await;
}

#[tokio::test]
async fn permissions_per_allocation_are_bounded() {
    let server = turn_server(10).await;
    let addr = server.local_addr();
    let creds = ice::mint(SECRET, "kim", now() + 600);
    let mut t = Transport::udp(addr).await;
    allocate(&mut t, &creds.username, &creds.credential)
        .await
        .expect("allocated");
    let public = |i: usize| SocketAddr::from(([198, 18, (i / 256) as u8, (i % 256) as u8], 5000));
    let permit = async |t: &mut Transport, p: SocketAddr| {
        error_code(
            &authed_answer(
                t,
                METHOD_CREATE_PERMISSION,
                || vec![peer(p)],
                &creds.username,
                &creds.credential,
            )
            .await,
        )
    };
    // 256 peers (a browser needs a handful) …
    for i in 0..256 {
        assert_eq!(permit(&mut t, public(i)).await, None, "permission {i}");
    }
    // … then no more: 508, and no channel to a new peer either.
    assert_eq!(permit(&mut t, public(256)).await, Some(508));
    let answer = authed_answer(
        &mut t,
        METHOD_CHANNEL_BIND,
        || {
            vec![
                Box::new(turn::proto::channum::ChannelNumber(0x4000)),
                peer(public(257)),
            ]
        },
        &creds.username,
        &creds.credential,
    )
    .await;
    assert_eq!(
        answer.typ.class, CLASS_ERROR_RESPONSE,
        "no channel past the cap"
    );
    // The ones it holds refresh as before.
    assert_eq!(permit(&mut t, public(7)).await, None, "a refresh");
    server.close().await;
}

/// The whole server with the embedded TURN server (loopback peers opened)
/// and a metrics listener, as `huddle --turn-listen … --metrics …` runs it,
/// with the media server on when MEDIA; returns it.
async fn whole_server(media: bool) -> huddle::server::Server {
    let mut cfg = huddle::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        turn: Some(loopback_config()),
        turn_secret: Some(Arc::from(SECRET)),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..huddle::config::Config::default()
    };
    if media {
        cfg.media = Some(huddle::media::MediaConfig::default());
        cfg.core.sfu_above = Some(4);
    }
    huddle::server::Server::bind(cfg).await.unwrap()
}

/// Asks SERVER's relay for a permission to each target and checks the
/// error code it answers (None: granted).
async fn permissions(server: &huddle::server::Server, want: &[(SocketAddr, Option<u16>)]) {
    let creds = ice::mint(SECRET, "ida", now() + 600);
    let mut t = Transport::udp(server.turn_addr().unwrap()).await;
    allocate(&mut t, &creds.username, &creds.credential)
        .await
        .expect("allocated");
    for &(target, code) in want {
        let answer = authed_answer(
            &mut t,
            METHOD_CREATE_PERMISSION,
            || vec![peer(target)],
            &creds.username,
            &creds.credential,
        )
        .await;
        assert_eq!(error_code(&answer), code, "permission for {target}");
    }
}

#[tokio::test]
async fn the_relay_cannot_reach_the_servers_own_listeners() {
    // Its HTTP, metrics and TURN sockets are refused peers even with
    // loopback opened.
    let server = whole_server(false).await;
    let elsewhere = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    permissions(
        &server,
        &[
            (server.local_addr().unwrap(), Some(403)),
            (server.metrics_addr().unwrap(), Some(403)),
            (server.turn_addr().unwrap(), Some(403)),
            (elsewhere.local_addr().unwrap(), None),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_relay_reaches_the_media_server_on_the_listeners_port() {
    // With the media server on (its UDP socket on the HTTP port's number),
    // that port is a peer the relay reaches: members behind strict
    // firewalls get to the media server through TURN. The TURN and metrics
    // sockets stay refused.
    let server = whole_server(true).await;
    let media = server.media_addr().expect("a media server");
    // (Almost always the listener's port: any free one only when that number
    // is taken over UDP.)
    permissions(
        &server,
        &[
            (media, None),
            (server.metrics_addr().unwrap(), Some(403)),
            (server.turn_addr().unwrap(), Some(403)),
        ],
    )
    .await;
}

/// A GET over plain HTTP/1.1 that must say `Cache-Control: no-store`; the
/// status line and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let (head, body) = http_exchange(addr, path).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
    (head.lines().next().unwrap().to_owned(), body)
}

/// A GET over plain HTTP/1.1; the response head and the body.
async fn http_exchange(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn ice_servers_for_a_connection_test_carry_working_throwaway_credentials() {
    let mut cfg = common::config();
    cfg.turn = Some(loopback_config());
    let server = common::start(cfg).await;
    let (status, body) = http_get(server.addr, "/ice-servers").await;
    assert!(status.contains(" 200 "), "{status}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let minted = &v["iceServers"][0];
    let username = minted["username"].as_str().unwrap();
    let (_, name) = username.split_once(':').unwrap();
    assert!(
        name.starts_with("probe-") && name.len() == 6 + 16,
        "{username}"
    );
    // A second probe gets a name of its own (quotas count per name).
    let (_, again) = http_get(server.addr, "/ice-servers").await;
    assert_ne!(again, body);
    let url = minted["urls"][0].as_str().unwrap();
    let turn_addr: SocketAddr = url
        .trim_start_matches("turn:")
        .trim_end_matches("?transport=udp")
        .parse()
        .unwrap();
    let mut t = Transport::udp(turn_addr).await;
    allocate(&mut t, username, minted["credential"].as_str().unwrap())
        .await
        .expect("allocated");
    server.stop.cancel();
    server.task.await.unwrap();
}

#[tokio::test]
async fn ice_servers_under_operator_tokens_need_a_token_for_the_room() {
    let key = huddle::access::AuthKey::new(b"an operator secret of 32 bytes!!").unwrap();
    let mut cfg = common::config();
    cfg.turn = Some(loopback_config());
    cfg.core.auth = Some(key.clone());
    let server = common::start(cfg).await;
    let token = |room: &str| {
        key.mint(&huddle::access::Claims {
            room: room.into(),
            exp: now() + 600,
            name: None,
            host: false,
            nbf: None,
        })
    };
    for path in [
        "/ice-servers".to_owned(),
        "/ice-servers?room=team&access=garbage".to_owned(),
        format!("/ice-servers?room=team&access={}", token("other")),
        // A room's token does not stand for any room.
        format!("/ice-servers?access={}", token("team")),
    ] {
        let (status, body) = http_get(server.addr, &path).await;
        assert!(status.contains(" 401 "), "{path}: {status}");
        assert!(body.contains("\"unauthorized\""), "{body}");
        assert!(!body.contains("iceServers"), "{body}");
    }
    for path in [
        format!("/ice-servers?room=team&access={}", token("team")),
        format!("/ice-servers?room=team&access={}", token("*")),
    ] {
        let (status, body) = http_get(server.addr, &path).await;
        assert!(status.contains(" 200 "), "{path}: {status}");
        assert!(body.contains("\"credential\""), "{body}");
    }
    server.stop.cancel();
    server.task.await.unwrap();
}

/// Allocates over T, lets a UDP peer in, and sends a datagram through the
/// relay and one back.
async fn relay_round_trip(t: &mut Transport, creds: &ice::Credentials) {
    let peer_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer_sock.local_addr().unwrap();
    let relay = allocate(t, &creds.username, &creds.credential)
        .await
        .expect("allocated");
    assert!(
        authed(
            t,
            METHOD_CREATE_PERMISSION,
            || vec![peer(peer_addr)],
            &creds.username,
            &creds.credential,
        )
        .await,
        "permission granted"
    );
    let mut send = Message::new();
    send.build(&[
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
        peer(peer_addr),
        Box::new(Data(b"out through the relay".to_vec())),
        Box::new(FINGERPRINT),
    ])
    .unwrap();
    t.send(&send.raw).await;
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(STEP, peer_sock.recv_from(&mut buf))
        .await
        .expect("relayed in time")
        .unwrap();
    assert_eq!(&buf[..n], b"out through the relay");
    assert_eq!(from, relay);
    peer_sock.send_to(b"and back", relay).await.unwrap();
    let mut data = Data::default();
    data.get_from(&t.recv().await).unwrap();
    assert_eq!(data.0, b"and back");
}

/// The minted TURN URLs of `joined` for a member of a fresh room.
async fn minted_urls(addr: SocketAddr) -> Vec<String> {
    let mut c = common::Client::connect(addr).await;
    minted_of(&c.join("r", "urls").await)
}

/// The URLs of the ICE server with minted credentials in JOINED.
fn minted_of(joined: &serde_json::Value) -> Vec<String> {
    let servers = joined["iceServers"].as_array().unwrap();
    servers
        .iter()
        .find(|s| s.get("username").is_some())
        .map(|s| {
            s["urls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn turn_over_tcp_shares_the_plain_http_port_with_the_web_app() {
    let mut cfg = common::config();
    let mut turn_cfg = loopback_config();
    turn_cfg.user_quota = 1;
    cfg.turn = Some(turn_cfg);
    cfg.turn_secret = Some(Arc::from(SECRET));
    let server = common::start(cfg).await;
    let port = server.addr.port();
    let urls = minted_urls(server.addr).await;
    assert_eq!(
        urls.last().unwrap(),
        &format!("turn:127.0.0.1:{port}?transport=tcp"),
        "{urls:?}"
    );
    assert!(!urls.iter().any(|u| u.starts_with("turns:")), "no TLS here");
    let creds = ice::mint(SECRET, "olga", now() + 600);
    let mut t = Transport::tcp(server.addr).await;
    relay_round_trip(&mut t, &creds).await;
    // The web app on the same port does not notice.
    let (head, body) = http_exchange(server.addr, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, "ok\n");
    // A connection that drops takes its allocation with it (quota 1).
    drop(t);
    let mut freed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = Transport::tcp(server.addr).await;
        if allocate(&mut again, &creds.username, &creds.credential)
            .await
            .is_ok()
        {
            freed = true;
            break;
        }
    }
    assert!(freed, "the dropped connection's allocation ended");
    server.stop.cancel();
    server.task.await.unwrap();
}

#[tokio::test]
async fn turn_over_tls_and_tcp_share_the_https_port() {
    let dir = std::env::temp_dir().join(format!("huddle-turns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = common::config();
    cfg.tls = Some(huddle::tls::TlsSource::SelfSigned {
        data_dir: dir.clone(),
    });
    cfg.turn = Some(loopback_config());
    cfg.turn_secret = Some(Arc::from(SECRET));
    let server = common::start(cfg).await;
    let cert = dir.join("self-signed-cert.pem");
    let port = server.addr.port();
    let urls = minted_urls_tls(server.addr, &cert).await;
    let n = urls.len();
    assert!(n >= 4, "{urls:?}");
    assert_eq!(
        urls[n - 2..],
        [
            // A self-signed certificate covers the address.
            format!("turns:127.0.0.1:{port}?transport=tcp"),
            format!("turn:127.0.0.1:{port}?transport=tcp"),
        ],
        "{urls:?}"
    );
    let creds = ice::mint(SECRET, "pavel", now() + 600);
    // TLS told by its first bytes, TLS with ALPN stun.turn, and plain TCP.
    let mut t = Transport::tls(server.addr, &cert, false).await;
    relay_round_trip(&mut t, &creds).await;
    let mut t = Transport::tls(server.addr, &cert, true).await;
    relay_round_trip(&mut t, &creds).await;
    let mut t = Transport::tcp(server.addr).await;
    relay_round_trip(&mut t, &creds).await;
    // HTTPS goes on as before, on the same port.
    let Transport::Tcp(mut https) = Transport::tls(server.addr, &cert, false).await else {
        unreachable!()
    };
    https
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(STEP, https.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    server.stop.cancel();
    server.task.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn no_turn_on_listener_leaves_the_http_port_to_http() {
    let mut cfg = common::config();
    let mut turn_cfg = loopback_config();
    turn_cfg.on_listener = false;
    cfg.turn = Some(turn_cfg);
    let server = common::start(cfg).await;
    let urls = minted_urls(server.addr).await;
    assert_eq!(urls.len(), 2, "the TURN port's UDP and TCP only: {urls:?}");
    assert!(
        !urls
            .iter()
            .any(|u| u.contains(&format!(":{}?", server.addr.port())))
    );
    // A STUN request on the HTTP port is not answered as STUN.
    let mut binding = Message::new();
    binding
        .build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
        .unwrap();
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&binding.raw).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(STEP, s.read_to_end(&mut buf)).await;
    assert!(
        buf.is_empty() || buf.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    server.stop.cancel();
    server.task.await.unwrap();
}

/// A TLS client configuration that trusts only the certificate in CERT (PEM).
fn trusting(cert: &std::path::Path) -> tokio_rustls::rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject as _;
    let pem = std::fs::read(cert).unwrap();
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// [`minted_urls`] over `wss://`, trusting CERT.
async fn minted_urls_tls(addr: SocketAddr, cert: &std::path::Path) -> Vec<String> {
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(trusting(cert)));
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://localhost:{}/ws", addr.port()),
        None,
        false,
        Some(connector),
    )
    .await
    .expect("wss connect");
    use futures_util::{SinkExt as _, StreamExt as _};
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"type":"join","room":"r","name":"urls"}"#,
    ))
    .await
    .unwrap();
    let joined: serde_json::Value = loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            break serde_json::from_str(&t).unwrap();
        }
    };
    assert_eq!(joined["type"], "joined", "{joined}");
    minted_of(&joined)
}
