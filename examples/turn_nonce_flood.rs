//! Sends unauthenticated TURN Allocate requests (20 bytes, no attributes)
//! from ever new UDP source ports and counts the 401 answers:
//! `cargo run --release --example turn_nonce_flood -- 127.0.0.1:3478 1000000`.
//! `scripts/bench-turn-nonces.sh` runs it against a fresh huddle and prints
//! the server's resident memory before and after.

use std::net::SocketAddr;
use std::time::Instant;

#[path = "../tests/nonce_flood/mod.rs"]
mod nonce_flood;

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
    let started = Instant::now();
    let (sent, answered) = nonce_flood::flood_unauthenticated(server, count).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sent {sent} unauthenticated Allocates, {answered} answered, in {secs:.1} s ({:.0}/s)",
        sent as f64 / secs
    );
}
