//! What forwarding costs: rooms of N members, each publishing audio and
//! video (or simulcast video) to the Sfu, which forwards to the N−1 others,
//! in the in-memory world of the tests (str0m clients, simulated clock).
//!
//! It prints, per room size, the Sfu's CPU per datagram it sends against a
//! floor measured in the same run: what a receiving str0m client spends per
//! datagram it takes in (SRTP and RTP handling, the same library, the same
//! machine, interleaved). The Sfu's work per datagram out is that plus
//! routing, layer choice and re-sending, so the ratio says what the
//! forwarding adds. It also prints the share of one core the Sfu needed for
//! the simulated seconds, and from it how many such rooms one core carries.
//!
//!   cargo bench -p huddle-sfu --bench forward [-- SECONDS]
//!
//! Figures, not assertions: the machine is shared and noisy.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{CLIENT_RX_NS, CLIENT_RX_PACKETS, Publish, SFU_BUSY_NS, World, config};

fn reset() {
    SFU_BUSY_NS.store(0, Ordering::Relaxed);
    CLIENT_RX_NS.store(0, Ordering::Relaxed);
    CLIENT_RX_PACKETS.store(0, Ordering::Relaxed);
}

struct Run {
    members: usize,
    simulcast: bool,
    simulated: Duration,
    sfu_ns: u64,
    packets_out: u64,
    frames_out: u64,
    client_ns: u64,
    client_packets: u64,
}

fn run(members: usize, simulcast: bool, seconds: u64) -> Run {
    let mut w = World::new(config());
    let publish = if simulcast {
        Publish::Simulcast
    } else {
        Publish::AudioVideo
    };
    for id in 1..=members as u64 {
        w.join("bench", id, publish);
    }
    w.run_until_connected();
    // Let the bandwidth estimates and layers settle.
    w.run(Duration::from_secs(1));
    let before = w.sfu.stats();
    reset();
    let simulated = Duration::from_secs(seconds);
    w.run(simulated);
    let after = w.sfu.stats();
    Run {
        members,
        simulcast,
        simulated,
        sfu_ns: SFU_BUSY_NS.load(Ordering::Relaxed),
        packets_out: after.packets_out - before.packets_out,
        frames_out: after.frames_out - before.frames_out,
        client_ns: CLIENT_RX_NS.load(Ordering::Relaxed),
        client_packets: CLIENT_RX_PACKETS.load(Ordering::Relaxed),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a number is the simulated seconds.
    let seconds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    println!("huddle-sfu forwarding, {seconds} simulated s per room after 1 s of warm-up");
    println!(
        "{:>7} {:>9} {:>11} {:>11} {:>13} {:>13} {:>7} {:>10} {:>13}",
        "members",
        "video",
        "frames/s",
        "dgrams/s",
        "sfu ns/dgram",
        "floor ns/dg",
        "ratio",
        "core share",
        "rooms/core"
    );
    for simulcast in [false, true] {
        for members in [2, 4, 8, 12] {
            let r = run(members, simulcast, seconds);
            let secs = r.simulated.as_secs_f64();
            let per_out = r.sfu_ns as f64 / r.packets_out.max(1) as f64;
            let floor = r.client_ns as f64 / r.client_packets.max(1) as f64;
            let share = r.sfu_ns as f64 / 1e9 / secs;
            println!(
                "{:>7} {:>9} {:>11.0} {:>11.0} {:>13.0} {:>13.0} {:>7.2} {:>9.1}% {:>13.1}",
                r.members,
                if r.simulcast { "simulcast" } else { "single" },
                r.frames_out as f64 / secs,
                r.packets_out as f64 / secs,
                per_out,
                floor,
                per_out / floor,
                share * 100.0,
                1.0 / share,
            );
        }
    }
    println!(
        "sfu ns/dgram: the Sfu's time (datagrams in, timeouts, forwarding) per datagram it sent; \
         floor: a client's handle_input per datagram it received; core share: the Sfu's CPU over \
         the simulated time (media at the test's rates: video every 35 ms, audio every 20 ms)"
    );
}
