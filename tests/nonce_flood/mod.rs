//! The flood of unauthenticated TURN Allocates, shared by the nonce story
//! in `tests/turn.rs` and `examples/turn_nonce_flood.rs` (which includes
//! this file by path).

use std::net::SocketAddr;
use std::time::Duration;

use stun::agent::TransactionId;
use stun::message::{CLASS_REQUEST, METHOD_ALLOCATE, Message, MessageType};
use tokio::net::UdpSocket;

/// Requests in flight at once, each from its own socket.
const BATCH: usize = 64;
/// Batches before the sockets (and so the source ports) are replaced.
const ROUNDS_PER_SOCKETS: usize = 16;

/// Sends `count` (rounded up to a batch) unauthenticated Allocates (20
/// bytes, no attributes) to `server` from ever new source ports, a batch at
/// a time, waiting up to a second for each answer. Returns (sent, answered);
/// a lost answer is no failure: the callers measure the server's memory.
pub async fn flood_unauthenticated(server: SocketAddr, count: usize) -> (usize, usize) {
    let mut request = Message::new();
    request
        .build(&[
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        ])
        .unwrap();
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
    (sent, answered)
}
