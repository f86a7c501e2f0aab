//! The embedded TURN server over real UDP and TCP sockets on 127.0.0.1:
//! allocations with minted credentials succeed on both transports; expired,
//! forged and tampered ones are refused; the per-user quota holds; relayed
//! data flows between two allocations; and `joined` hands out the server
//! with credentials it accepts.

mod common;

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
    BINDING_REQUEST, CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter as _,
    METHOD_ALLOCATE, METHOD_CREATE_PERMISSION, METHOD_REFRESH, METHOD_SEND, Message, MessageType,
    Setter,
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

/// A TURN client transport: UDP or TCP, one request at a time.
enum Transport {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream),
}

impl Transport {
    async fn udp(server: SocketAddr) -> Self {
        Self::Udp(UdpSocket::bind("127.0.0.1:0").await.unwrap(), server)
    }

    async fn tcp(server: SocketAddr) -> Self {
        Self::Tcp(TcpStream::connect(server).await.unwrap())
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

async fn turn_server(quota: usize) -> TurnServer {
    let mut cfg = TurnConfig::new("127.0.0.1:0".parse().unwrap());
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
                matches!(got, Err(400 | 401)),
                "{what}: {got:?} (expected a 400/401 refusal)"
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
    let addr = server.local_addr();
    let creds = ice::mint(SECRET, "carol", now() + 600);
    // A plain UDP peer stands in for the other side.
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let mut t = Transport::tcp(addr).await;
    let relay = allocate(&mut t, &creds.username, &creds.credential)
        .await
        .unwrap();
    // Permission for the peer, then a Send indication; the peer gets the
    // payload from the relayed address.
    let challenge_realm = "huddle".to_owned();
    let integrity = MessageIntegrity::new_long_term_integrity(
        creds.username.clone(),
        challenge_realm.clone(),
        creds.credential.clone(),
    );
    // A fresh nonce is needed for each authenticated request: take it from a 401.
    let mut probe = Message::new();
    probe
        .build(&[
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_CREATE_PERMISSION, CLASS_REQUEST)),
            Box::new(PeerAddress {
                ip: peer_addr.ip(),
                port: peer_addr.port(),
            }),
            Box::new(FINGERPRINT),
        ])
        .unwrap();
    t.send(&probe.raw).await;
    let challenge = t.recv().await;
    let mut nonce = TextAttribute::new(stun::attributes::ATTR_NONCE, String::new());
    nonce.get_from(&challenge).unwrap();
    let answer = t
        .request(vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_CREATE_PERMISSION, CLASS_REQUEST)),
            Box::new(PeerAddress {
                ip: peer_addr.ip(),
                port: peer_addr.port(),
            }),
            Box::new(TextAttribute::new(
                stun::attributes::ATTR_USERNAME,
                creds.username.clone(),
            )),
            Box::new(TextAttribute::new(
                stun::attributes::ATTR_REALM,
                challenge_realm,
            )),
            Box::new(nonce),
            Box::new(integrity),
            Box::new(FINGERPRINT),
        ])
        .await;
    assert_eq!(
        answer.typ.class,
        stun::message::CLASS_SUCCESS_RESPONSE,
        "permission granted"
    );
    let mut send = Message::new();
    send.build(&[
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
        Box::new(PeerAddress {
            ip: peer_addr.ip(),
            port: peer_addr.port(),
        }),
        Box::new(Data(b"hello through TURN".to_vec())),
        Box::new(FINGERPRINT),
    ])
    .unwrap();
    t.send(&send.raw).await;
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(STEP, peer.recv_from(&mut buf))
        .await
        .expect("relayed in time")
        .unwrap();
    assert_eq!(&buf[..n], b"hello through TURN");
    assert_eq!(from, relay);
    // And back: the peer writes to the relayed address, the client gets a
    // Data indication over TCP.
    peer.send_to(b"and back", relay).await.unwrap();
    let back = t.recv().await;
    let mut data = Data::default();
    data.get_from(&back).unwrap();
    assert_eq!(data.0, b"and back");
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
    cfg.turn = Some(TurnConfig::new("127.0.0.1:0".parse().unwrap()));
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
        3,
        "embedded UDP and TCP, then the external one: {urls:?}"
    );
    assert!(urls[0].starts_with("turn:127.0.0.1:") && urls[0].ends_with("?transport=udp"));
    assert_eq!(urls[2], "turn:turn.example.org:3478");
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
    let answer = t.request(second).await;
    answer.typ.class == CLASS_SUCCESS_RESPONSE
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
