//! Criterion benchmarks of the signaling core and the hub: a join into a
//! room of 16, relay dispatch, and a leave from a room of 16.
//!
//! `cargo bench --bench core`; results in docs/benchmarks.md.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use huddle::config::CoreConfig;
use huddle::core::{Core, Env, Output};
use huddle::hub::{Hub, Outbound};
use huddle::queue;
use tokio_util::sync::CancellationToken;

/// Deterministic tokens: no system calls inside the measurement.
struct Counter(u64);

impl Env for Counter {
    fn token(&mut self) -> String {
        self.0 += 1;
        format!("token-{:016}", self.0)
    }
    fn unix_time(&mut self) -> u64 {
        1_800_000_000
    }
}

fn cfg() -> CoreConfig {
    CoreConfig {
        rate: 1_000_000_000,
        burst: 1_000_000_000,
        ..CoreConfig::default()
    }
}

/// A core whose room "r" holds `n` members `m1`…`mn` on connections 1…n.
fn room_of(n: u64) -> (Core, Instant) {
    let now = Instant::now();
    let mut core = Core::new(cfg(), Box::new(Counter(0)));
    for c in 1..=n {
        core.connect(c, now);
        core.frame(
            c,
            &format!(r#"{{"type":"join","room":"r","name":"m{c}"}}"#),
            now,
        );
    }
    while core.poll_output().is_some() {}
    (core, now)
}

fn drain(core: &mut Core) -> usize {
    let mut n = 0;
    while let Some(out) = core.poll_output() {
        black_box(&out);
        if matches!(out, Output::Send(..)) {
            n += 1;
        }
    }
    n
}

/// A 400-byte candidate like the relay benchmark's.
fn candidate_frame(to: &str) -> String {
    let pad = "x".repeat(400 - 40);
    format!(r#"{{"type":"candidate","to":"{to}","candidate":{{"seq":1,"ts":1,"pad":"{pad}"}}}}"#)
}

fn benches(c: &mut Criterion) {
    c.bench_function("core: join into a room of 15 (16th member)", |b| {
        b.iter_batched(
            || {
                let (mut core, now) = room_of(15);
                core.connect(16, now);
                (core, now)
            },
            |(mut core, now)| {
                core.frame(16, r#"{"type":"join","room":"r","name":"m16"}"#, now);
                assert_eq!(drain(&mut core), 16);
                core
            },
            BatchSize::SmallInput,
        );
    });

    c.bench_function("core: relay a 400 B candidate in a room of 16", |b| {
        let (mut core, now) = room_of(16);
        let frame = candidate_frame("m7");
        b.iter(|| {
            core.frame(1, black_box(&frame), now);
            drain(&mut core)
        });
    });

    c.bench_function("core: leave from a room of 16", |b| {
        b.iter_batched(
            || room_of(16),
            |(mut core, now)| {
                core.frame(8, r#"{"type":"leave"}"#, now);
                assert_eq!(drain(&mut core), 16); // left + 15 peer-left
                core
            },
            BatchSize::SmallInput,
        );
    });

    // The hub adds parsing outside the lock, the lock, the handle-time
    // histogram and the queue of the addressee.
    c.bench_function("hub: relay a 400 B candidate in a room of 16", |b| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let hub = Hub::with_tokens(cfg(), Box::new(Counter(0)));
        let mut queues = Vec::new();
        let mut ids = Vec::new();
        for i in 1..=16 {
            let (tx, rx) = queue::channel::<Outbound>(1024);
            let id = hub.connect(tx, CancellationToken::new());
            let pending = hub.frame(
                id,
                &format!(r#"{{"type":"join","room":"r","name":"m{i}"}}"#),
            );
            assert!(pending.is_none(), "no password work in this room");
            queues.push(rx);
            ids.push(id);
        }
        for q in &mut queues {
            while q.try_recv().is_some() {}
        }
        let frame = candidate_frame("m7");
        b.iter(|| {
            let pending = hub.frame(ids[0], black_box(&frame));
            queues[6].try_recv().is_some() && pending.is_none()
        });
    });
}

/// The cost of a room password: what `--max-password-hashes` and the
/// wrong-password delay budget for.
fn passwords(c: &mut Criterion) {
    let mut g = c.benchmark_group("password");
    g.sample_size(20);
    g.bench_function("Argon2id hash (set by a host)", |b| {
        b.iter(|| huddle::password::hash(black_box("correct horse battery staple")));
    });
    let phc = huddle::password::hash("correct horse battery staple");
    g.bench_function("Argon2id verify (a join to a protected room)", |b| {
        b.iter(|| huddle::password::verify(black_box("correct horse battery stapler"), &phc));
    });
    g.finish();
}

criterion_group!(core, benches, passwords);
criterion_main!(core);
