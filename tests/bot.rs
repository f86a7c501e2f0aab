//! `huddle bot` against a real huddle server on 127.0.0.1:0: two bots see,
//! hear and chat with each other in either join order, leave with
//! `peer-left`, resume after the signaling socket is cut, and refuse bad
//! input with a clear message. Media goes over UDP on 127.0.0.1 only.

mod common;

use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use common::{Client, config, start};
use huddle::bot::media::{DEFAULT_AUDIO, DEFAULT_VIDEO, parse_ivf, parse_ogg_opus};
use huddle::bot::participant::{self, BotConfig, BotEvent, BotOutcome};
use huddle::bot::signal::JoinSpec;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bound on every wait here (the machine may be busy with other tests).
const WAIT: Duration = Duration::from_secs(30);

struct Bot {
    name: String,
    events: mpsc::UnboundedReceiver<BotEvent>,
    seen: Vec<BotEvent>,
    stop: CancellationToken,
    task: JoinHandle<Result<BotOutcome, participant::BotError>>,
}

fn bot_config(addr: SocketAddr, room: &str, name: &str) -> BotConfig {
    BotConfig {
        join: JoinSpec {
            endpoint: huddle::client::Endpoint::new(&format!("ws://{addr}/ws"), None).unwrap(),
            room: room.into(),
            name: name.into(),
            password: None,
            access: None,
            give_up_after: Duration::from_secs(20),
        },
        bind: vec!["127.0.0.1:0".parse().unwrap()],
        video: Some(Arc::new(parse_ivf(DEFAULT_VIDEO).unwrap())),
        audio: Some(Arc::new(parse_ogg_opus(DEFAULT_AUDIO).unwrap())),
        say: vec![],
        echo: false,
        report_every: Some(Duration::from_millis(500)),
        media_stop: None,
        admit_all: false,
    }
}

impl Bot {
    fn start(cfg: BotConfig) -> Bot {
        let (tx, events) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let name = cfg.join.name.clone();
        let task = tokio::spawn(participant::run(cfg, Some(tx), stop.clone()));
        Bot {
            name,
            events,
            seen: Vec::new(),
            stop,
            task,
        }
    }

    /// Waits for an event matching PRED (also among those already seen).
    async fn wait(&mut self, what: &str, pred: impl Fn(&BotEvent) -> bool) -> BotEvent {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Ok(None) => panic!(
                    "{}: ended while waiting for {what}; saw {:?}",
                    self.name, self.seen
                ),
                Err(_) => panic!(
                    "{}: no {what} within {WAIT:?}; saw {:?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Video frames received from PEER, from the latest report.
    async fn frames_from(&mut self, peer: &str, at_least: u64) -> u64 {
        let e = self
            .wait(&format!("{at_least} frames from {peer}"), |e| {
                matches!(e, BotEvent::Report(rs) if rs.iter().any(|r| r.peer == peer && r.video_frames >= at_least))
            })
            .await;
        let BotEvent::Report(rs) = e else {
            unreachable!()
        };
        rs.into_iter()
            .find(|r| r.peer == peer)
            .unwrap()
            .video_frames
    }

    /// Forgets the events seen so far (to wait for new ones).
    fn forget(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.seen.push(e);
        }
        self.seen.clear();
    }

    async fn leave(self) -> BotOutcome {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the bot leaves in time")
            .expect("no panic")
            .expect("the bot ends without an error")
    }
}

fn is_chat(from: &str, text: &str) -> impl Fn(&BotEvent) -> bool {
    let (from, text) = (from.to_owned(), text.to_owned());
    move |e| matches!(e, BotEvent::Chat { from: f, text: t } if *f == from && *t == text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_media_chat_and_leave_in_either_join_order() {
    let srv = start(config()).await;
    for (room, first_echoes) in [("order-a", false), ("order-b", true)] {
        // "sayer" says hello when the channel opens; "echoer" answers.
        let mut say = bot_config(srv.addr, room, "sayer");
        say.say = vec!["hello there".into()];
        let mut echo = bot_config(srv.addr, room, "echoer");
        echo.echo = true;
        let (first_cfg, second_cfg) = if first_echoes {
            (echo, say)
        } else {
            (say, echo)
        };
        let mut first = Bot::start(first_cfg);
        first
            .wait(
                "joined",
                |e| matches!(e, BotEvent::Joined { peers, .. } if peers.is_empty()),
            )
            .await;
        let mut second = Bot::start(second_cfg);
        let first_name = first.name.clone();
        second
            .wait("joined with the first bot listed", |e| {
                matches!(e, BotEvent::Joined { peers, resumed: false, .. } if *peers == [first_name.clone()])
            })
            .await;
        let (mut sayer, mut echoer) = if first_echoes {
            (second, first)
        } else {
            (first, second)
        };

        sayer
            .wait("connected", |e| *e == BotEvent::Connected("echoer".into()))
            .await;
        echoer
            .wait("first frame", |e| {
                *e == BotEvent::FirstFrame("sayer".into())
            })
            .await;
        sayer
            .wait("first frame", |e| {
                *e == BotEvent::FirstFrame("echoer".into())
            })
            .await;
        echoer
            .wait("the hello", is_chat("sayer", "hello there"))
            .await;
        sayer
            .wait("the echo", is_chat("echoer", "echo: hello there"))
            .await;
        assert!(sayer.frames_from("echoer", 20).await >= 20);
        assert!(echoer.frames_from("sayer", 20).await >= 20);

        // The second to join leaves: the first gets peer-left and drops the link.
        let (mut stayer, leaver) = if first_echoes {
            (echoer, sayer)
        } else {
            (sayer, echoer)
        };
        let leaver_name = leaver.name.clone();
        let out = leaver.leave().await;
        assert_eq!(out.reports.len(), 1);
        let r = &out.reports[0];
        assert!(
            r.final_ && r.video_frames >= 20 && r.frames_sent >= 20,
            "{r:?}"
        );
        assert!(r.video_loss_pct < 5.0, "{r:?}");
        stayer
            .wait("peer-left", |e| {
                *e == BotEvent::PeerLeft(leaver_name.clone())
            })
            .await;
        let out = stayer.leave().await;
        assert_eq!(
            out.reports.len(),
            1,
            "the link to the leaver was closed and reported"
        );
    }
    srv.stop.cancel();
}

/// A TCP proxy on 127.0.0.1:0 in front of the server whose connections can
/// be cut (RST, no close frame) and which can refuse new ones for a while.
async fn proxy(target: SocketAddr) -> (SocketAddr, watch::Sender<u32>, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut_tx, cut_rx) = watch::channel(0u32);
    let (refuse_tx, refuse_rx) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            if *refuse_rx.borrow() {
                let _ = client.set_zero_linger();
                drop(client);
                continue;
            }
            let mut cut = cut_rx.clone();
            cut.mark_unchanged();
            tokio::spawn(async move {
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                        let _ = client.shutdown().await;
                    }
                    _ = cut.changed() => {
                        // Reset both sides: the server sees a lost connection.
                        let _ = client.set_zero_linger();
                        let _ = upstream.set_zero_linger();
                    }
                }
            });
        }
    });
    (addr, cut_tx, refuse_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_the_signaling_socket_is_cut() {
    let srv = start(config()).await;
    let (via, cut, refuse) = proxy(srv.addr).await;
    let mut stay = Bot::start(bot_config(srv.addr, "r", "stay"));
    stay.wait("joined", |e| matches!(e, BotEvent::Joined { .. }))
        .await;
    let mut cfg = bot_config(via, "r", "cut");
    cfg.echo = true;
    let mut cutb = Bot::start(cfg);
    stay.wait("first frame", |e| *e == BotEvent::FirstFrame("cut".into()))
        .await;
    cutb.wait("first frame", |e| *e == BotEvent::FirstFrame("stay".into()))
        .await;

    // Cut the bot's socket and keep it out for a second; meanwhile "late"
    // joins and offers to it (the server queues the offer).
    refuse.send(true).unwrap();
    cut.send(1).unwrap();
    cutb.wait("signal lost", |e| matches!(e, BotEvent::SignalLost(_)))
        .await;
    let mut late = Bot::start(bot_config(srv.addr, "r", "late"));
    late.wait(
        "joined",
        |e| matches!(e, BotEvent::Joined { peers, .. } if peers.len() == 2),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = stay.frames_from("cut", 1).await;
    refuse.send(false).unwrap();

    cutb.wait(
        "resumed",
        |e| matches!(e, BotEvent::Joined { resumed: true, peers, .. } if peers.len() == 2),
    )
    .await;
    // The link to "stay" never dropped; the queued offer from "late" was answered.
    late.wait("first frame from the resumed bot", |e| {
        *e == BotEvent::FirstFrame("cut".into())
    })
    .await;
    cutb.wait("first frame from late", |e| {
        *e == BotEvent::FirstFrame("late".into())
    })
    .await;
    stay.forget();
    assert!(
        stay.frames_from("cut", before + 15).await >= before + 15,
        "media kept flowing"
    );
    // Signaling works after the resume: chat needs only the data channel,
    // but a leave must reach the others through the server.
    assert!(!stay.seen.iter().any(|e| matches!(e, BotEvent::PeerLeft(_))));
    assert!(!cutb.seen.iter().any(|e| matches!(e, BotEvent::PeerLeft(_))));
    late.leave().await;
    cutb.wait("late left", |e| *e == BotEvent::PeerLeft("late".into()))
        .await;
    cutb.leave().await;
    stay.wait("cut left", |e| *e == BotEvent::PeerLeft("cut".into()))
        .await;
    stay.leave().await;
    srv.stop.cancel();
}

async fn run_cli(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
        .arg("bot")
        .args(["--bind", "127.0.0.1", "--reconnect-for", "2s"])
        .args(args)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the huddle binary runs");
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the bot exits in time")
        .expect("output")
}

fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a failure, got {:?}; stderr: {stderr}",
        out.status
    );
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
}

#[tokio::test]
async fn bad_input_exits_non_zero_with_a_clear_message() {
    // Unreachable: a port nothing listens on.
    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let out = run_cli(&[
        "--server",
        &format!("http://{free}"),
        "--room",
        "r",
        "--name",
        "a",
    ])
    .await;
    assert_fails_with(
        &out,
        &format!("cannot reach the huddle server at ws://{free}/ws"),
    );

    let out = run_cli(&[
        "--server",
        &format!("https://{free}"),
        "--ca-file",
        "/nonexistent/ca.pem",
        "--room",
        "r",
    ])
    .await;
    assert_fails_with(&out, "--ca-file /nonexistent/ca.pem");

    // A taken name (case-insensitive) and a full room.
    let srv = start(huddle::config::Config {
        core: huddle::config::CoreConfig {
            max_room_size: 1,
            ..Default::default()
        },
        ..config()
    })
    .await;
    let mut alice = Client::connect(srv.addr).await;
    alice.join("r", "alice").await;
    let server = format!("http://{}", srv.addr);
    let out = run_cli(&["--server", &server, "--room", "r", "--name", "ALICE"]).await;
    assert_fails_with(&out, "name-taken");
    let out = run_cli(&["--server", &server, "--room", "r", "--name", "zed"]).await;
    assert_fails_with(&out, "room-full");
    let out = run_cli(&["--server", &server, "--room", "bad room!", "--name", "zed"]).await;
    assert_fails_with(&out, "invalid-room");
    let out = run_cli(&[
        "--server",
        &server,
        "--room",
        "r",
        "--video",
        "/nonexistent.ivf",
    ])
    .await;
    assert_fails_with(&out, "cannot read /nonexistent.ivf");
    srv.stop.cancel();
}

#[tokio::test]
async fn media_load_reports_every_receiving_pair() {
    let srv = start(config()).await;
    let server = format!("http://{}", srv.addr);
    let out = run_cli(&[
        "--server",
        &server,
        "--rooms",
        "2",
        "--room-size",
        "2",
        "--duration",
        "3s",
        "--join-interval",
        "50ms",
        "--json",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pairs: Vec<_> = lines.iter().filter(|l| l["type"] == "pair").collect();
    assert_eq!(pairs.len(), 4, "{stdout}");
    for p in &pairs {
        assert_ne!(p["to"], p["from"]);
        assert!(p["room"] == "load-1" || p["room"] == "load-2");
        assert!(p["received"].as_u64().unwrap() > 10, "{p}");
        assert!(
            p["sent"].as_u64().unwrap() >= p["received"].as_u64().unwrap(),
            "{p}"
        );
        assert!(p["fps"].as_f64().unwrap() > 5.0, "{p}");
    }
    let summary = lines
        .iter()
        .find(|l| l["type"] == "summary")
        .expect("a summary");
    assert_eq!(summary["pairs"], 4);
    assert_eq!(summary["rooms"], 2);
    srv.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_join_a_tls_server_that_trusts_its_ca_file() {
    let (srv, cert) = common::start_tls("bot-tls").await;
    let server = format!("https://{}", srv.addr);
    // Without the certificate, the server is not trusted.
    let untrusted = huddle::client::Endpoint::new(&server, None).unwrap();
    assert!(untrusted.url.starts_with("wss://"), "{}", untrusted.url);
    let e = untrusted.connect(None).await.unwrap_err().to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // With it, two bots meet over wss:// and exchange media.
    let trusted = huddle::client::Endpoint::new(&server, Some(&cert)).unwrap();
    let mut cfgs = ["ann", "bob"].map(|n| bot_config(srv.addr, "secure", n));
    for c in &mut cfgs {
        c.join.endpoint = trusted.clone();
    }
    let [a, b] = cfgs;
    let mut ann = Bot::start(a);
    ann.wait("joined", |e| matches!(e, BotEvent::Joined { .. }))
        .await;
    let mut bob = Bot::start(b);
    assert!(bob.frames_from("ann", 10).await >= 10);
    assert!(ann.frames_from("bob", 10).await >= 10);
    bob.leave().await;
    ann.leave().await;
    srv.stop.cancel();
    common::remove_tls_dir("bot-tls");
}

/// Room access (v1.1): bots give the room's password, wait in the lobby
/// until the host lets them in, admit others as host (`admit_all`), turn
/// their audio off when asked, and end with the reason when removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_give_passwords_wait_in_lobbies_admit_and_obey_the_host() {
    use serde_json::json;
    let srv = start(config()).await;
    let mut owner = Client::connect(srv.addr).await;
    owner.join("locked", "owner").await;
    owner
        .send(json!({"type":"room-settings","password":"pw","locked":true}))
        .await;
    assert_eq!(owner.recv().await["protected"], true);

    let mut wrong_cfg = bot_config(srv.addr, "locked", "wrong");
    wrong_cfg.join.password = Some("nope".into());
    match Bot::start(wrong_cfg).task.await.unwrap() {
        Err(participant::BotError::Signal(e)) => {
            assert!(e.to_string().contains("wrong-password"), "{e}");
        }
        other => panic!("expected wrong-password, got {other:?}"),
    }

    let mut host_cfg = bot_config(srv.addr, "locked", "hostbot");
    host_cfg.join.password = Some("pw".into());
    host_cfg.admit_all = true;
    let mut hostbot = Bot::start(host_cfg);
    hostbot
        .wait(
            "waiting",
            |e| matches!(e, BotEvent::Waiting(r) if r == "locked"),
        )
        .await;
    assert_eq!(owner.recv().await, json!({"type":"knock","name":"hostbot"}));
    owner.send(json!({"type":"admit","name":"hostbot"})).await;
    hostbot
        .wait("joined", |e| matches!(e, BotEvent::Joined { .. }))
        .await;
    assert_eq!(owner.recv().await["type"], "peer-joined");
    owner
        .send(json!({"type":"ask-mute","name":"hostbot"}))
        .await;
    hostbot
        .wait(
            "ask-mute",
            |e| matches!(e, BotEvent::AskedToMute(b) if b == "owner"),
        )
        .await;
    // The owner goes: the bot hosts, and lets the next one in by itself.
    owner.send(json!({"type":"leave"})).await;
    hostbot
        .wait("host", |e| matches!(e, BotEvent::Host(n) if n == "hostbot"))
        .await;
    let mut guest_cfg = bot_config(srv.addr, "locked", "guest");
    guest_cfg.join.password = Some("pw".into());
    let mut guest = Bot::start(guest_cfg);
    guest
        .wait("waiting", |e| matches!(e, BotEvent::Waiting(_)))
        .await;
    hostbot
        .wait("knock", |e| matches!(e, BotEvent::Knock(n) if n == "guest"))
        .await;
    guest
        .wait(
            "joined",
            |e| matches!(e, BotEvent::Joined { peers, .. } if peers == &["hostbot"]),
        )
        .await;
    guest.frames_from("hostbot", 10).await;
    drop(guest.leave().await);
    drop(hostbot.leave().await);

    // Removed: the bot ends, saying why.
    let mut boss = Client::connect(srv.addr).await;
    boss.join("rm", "boss").await;
    let mut victim = Bot::start(bot_config(srv.addr, "rm", "victim"));
    victim
        .wait("joined", |e| matches!(e, BotEvent::Joined { .. }))
        .await;
    assert_eq!(boss.recv().await["type"], "peer-joined");
    boss.send(json!({"type":"remove","name":"victim"})).await;
    victim
        .wait(
            "removed",
            |e| matches!(e, BotEvent::Removed(b) if b == "boss"),
        )
        .await;
    match victim.task.await.unwrap() {
        Err(participant::BotError::Signal(e)) => assert!(e.to_string().contains("4001"), "{e}"),
        other => panic!("expected the end by removal, got {other:?}"),
    }
}
