//! Sends unauthenticated TURN Allocate requests (20 bytes, no attributes)
//! from ever new UDP source ports and counts the 401 answers:
//! `cargo run --release --example turn_nonce_flood -- 127.0.0.1:3478 1000000`.
//! `scripts/bench-turn-nonces.sh` runs it against a fresh huddle and prints
//! the server's resident memory before and after.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stun::agent::TransactionId;
use stun::message::{CLASS_REQUEST, METHOD_ALLOCATE, Message, MessageType};
use tokio::net::UdpSocket;

/// Requests in flight at once, each from its own socket.
const BATCH: usize = 64;
/// Batches before the sockets (and so the source ports) are replaced.
const ROUNDS_PER_SOCKETS: usize = 16;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let server: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: turn_nonce_flood TURN-ADDR [COUNT]");
    assert!(
        server.ip().is_loopback(),
        "this flood is for a server on this machine (127.0.0.0/8 or ::1)"
    );
    let count: usize = args.next().map_or(1_000_000, |c| c.parse().expect("COUNT"));
    let mut request = Message::new();
    request
        .build(&[
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        ])
        .unwrap();
    let started = Instant::now();
    let (mut sent, mut answered) = (0, 0);
    let mut buf = [0u8; 1500];
    while sent < count {
        let mut sockets = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            sockets.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        }
        for _ in 0..ROUNDS_PER_SOCKETS {
            if sent >= count {
                break;
            }
            for s in &sockets {
                s.send_to(&request.raw, server).await.unwrap();
            }
            for s in &sockets {
                if let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_secs(1), s.recv_from(&mut buf)).await
                {
                    answered += 1;
                }
            }
            sent += BATCH;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sent {sent} unauthenticated Allocates, {answered} answered, in {secs:.1} s ({:.0}/s)",
        sent as f64 / secs
    );
}
