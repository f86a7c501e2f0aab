//! `huddle load` against a real server on 127.0.0.1: a short scenario passes
//! with nothing lost; a relay in between that drops or repeats one message
//! is caught, and the command exits non-zero.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{config, start};
use futures_util::{SinkExt, StreamExt};
use huddle::load::{LoadArgs, run};
use tokio::net::TcpListener;

fn args(addr: SocketAddr, rooms: usize, room_size: usize) -> LoadArgs {
    LoadArgs {
        server: format!("ws://{addr}/ws"),
        rooms,
        room_size,
        join_rate: 400.0,
        duration: Duration::from_millis(200),
        trickle: Duration::from_millis(50),
        settle: Duration::from_secs(2),
        ..LoadArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_scenario_passes_with_nothing_lost() {
    let srv = start(config()).await;
    let report = run(&args(srv.addr, 6, 4), false).await.unwrap();
    assert!(report.ok, "{}", report.text());
    assert_eq!(report.joined, 24);
    assert_eq!(report.calls_set_up, 6 * 3);
    assert_eq!(report.connections_peak, 24);
    // 6 calls per room of 4, one offer and one answer each.
    assert_eq!(report.relayed_received["offer"], 36);
    assert_eq!(report.relayed_received["answer"], 36);
    // 8–12 candidates each way per call.
    let candidates = report.relayed_received["candidate"];
    assert!(
        (36 * 2 * 8..=36 * 2 * 12).contains(&candidates),
        "{candidates}"
    );
    assert_eq!(
        report.relayed_sent,
        report.relayed_received.values().sum::<u64>()
    );
    assert_eq!(report.call_setup_ms.count, 18);
    assert_eq!(report.join_ms.count, 24);
    assert!(report.problems.values().all(|&n| n == 0));
    // Everyone left: the server is empty again.
    let t0 = std::time::Instant::now();
    while srv.hub.stats().connections > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "connections left open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(srv.hub.stats().rooms, 0);
}

/// What the relay in the middle does wrong, once.
#[derive(Clone, Copy)]
enum Fault {
    /// Drops the first `answer` from the server to a client.
    DropAnswer,
    /// Sends the first `peer-joined` twice.
    RepeatPeerJoined,
    /// Drops the first `peer-left`.
    DropPeerLeft,
}

/// A WebSocket relay on 127.0.0.1 in front of the server that forwards every
/// frame both ways, except that it commits `fault` once.
async fn faulty_relay(server: SocketAddr, fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let done = done.clone();
            tokio::spawn(async move {
                let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let Ok((upstream, _)) =
                    tokio_tungstenite::connect_async(format!("ws://{server}/ws")).await
                else {
                    return;
                };
                let (mut c_tx, mut c_rx) = client.split();
                let (mut u_tx, mut u_rx) = upstream.split();
                let up = async {
                    while let Some(Ok(m)) = c_rx.next().await {
                        if u_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async {
                    while let Some(Ok(m)) = u_rx.next().await {
                        let text = m.to_text().unwrap_or("").to_owned();
                        let hit = match fault {
                            Fault::DropAnswer => text.starts_with(r#"{"type":"answer""#),
                            Fault::RepeatPeerJoined => text.starts_with(r#"{"type":"peer-joined""#),
                            Fault::DropPeerLeft => text.starts_with(r#"{"type":"peer-left""#),
                        };
                        let first = hit && !done.swap(true, Ordering::SeqCst);
                        let copies = match (first, fault) {
                            (false, _) => 1,
                            (true, Fault::RepeatPeerJoined) => 2,
                            (true, _) => 0,
                        };
                        for _ in 0..copies {
                            if c_tx.send(m.clone()).await.is_err() {
                                return;
                            }
                        }
                    }
                };
                tokio::select! {
                    () = up => {}
                    () = down => {}
                }
            });
        }
    });
    addr
}

async fn run_through(fault: Fault) -> huddle::load::Report {
    let srv = start(config()).await;
    let relay = faulty_relay(srv.addr, fault).await;
    run(&args(relay, 3, 3), false).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_answer_is_caught() {
    let report = run_through(Fault::DropAnswer).await;
    assert!(!report.ok, "{}", report.text());
    assert!(report.problems["lost"] >= 1, "{}", report.text());
    assert!(
        report.findings.iter().any(|f| f.contains("no answer from")),
        "{}",
        report.text()
    );
    assert_eq!(report.calls_set_up, report.calls_expected - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_peer_joined_is_caught() {
    let report = run_through(Fault::RepeatPeerJoined).await;
    assert!(!report.ok);
    assert_eq!(report.problems["duplicate"], 1, "{}", report.text());
    assert_eq!(report.problems["lost"], 0, "{}", report.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_peer_left_is_caught() {
    let report = run_through(Fault::DropPeerLeft).await;
    assert!(!report.ok);
    assert_eq!(report.problems["lost"], 1, "{}", report.text());
    assert!(
        report.findings.iter().any(|f| f.contains("no peer-left")),
        "{}",
        report.text()
    );
}

/// The command itself: JSON on stdout, exit status 0 when clean, 1 on loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_exits_non_zero_on_loss() {
    let srv = start(config()).await;
    let relay = faulty_relay(srv.addr, Fault::DropAnswer).await;
    for (addr, want_ok) in [(srv.addr, true), (relay, false)] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
            .args(["load", "--server"])
            .arg(format!("http://{addr}"))
            .args(["--rooms", "2", "--room-size", "3", "--join-rate", "200"])
            .args(["--duration", "100ms", "--settle", "2s", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), out)
            .await
            .expect("huddle load finishes")
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(report["ok"], want_ok, "{report}");
        assert_eq!(
            out.status.code(),
            Some(if want_ok { 0 } else { 1 }),
            "{report}"
        );
        assert_eq!(report["joined"], 6);
    }
    // A server that is not there: the run reports connection problems.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(["load", "--server"])
        .arg(format!("ws://{gone}/ws"))
        .args([
            "--rooms",
            "1",
            "--room-size",
            "2",
            "--duration",
            "0s",
            "--settle",
            "1s",
            "--json",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"]["connection"], 2, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_is_load_tested_over_wss_with_its_ca_file() {
    let (srv, cert) = common::start_tls("load-tls").await;
    let mut a = args(srv.addr, 2, 3);
    a.server = format!("https://{}", srv.addr);
    a.ca_file = Some(cert);
    let report = run(&a, false).await.unwrap();
    assert!(report.ok, "{}", report.text());
    assert_eq!(report.joined, 6);
    assert_eq!(report.calls_set_up, 2 * 2);
    // Without the certificate nobody gets in, and the run says so.
    a.ca_file = None;
    let report = run(&a, false).await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.joined, 0);
    srv.stop.cancel();
    common::remove_tls_dir("load-tls");
}
