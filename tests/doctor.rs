//! `huddle doctor` as a process against servers on 127.0.0.1: a server with
//! the embedded TURN server passes every step (twice, with room for only
//! the allocations of one check at a time, so the doctor must release what
//! it allocated); a TURN URL where nothing listens, or that never answers,
//! fails its step; nothing listening fails at TCP; a self-signed
//! certificate fails without `--ca-cert` and passes with it; a TURN server
//! with another secret is named as refusing the credentials; an
//! invitation-only server needs `--access`; a server that accepts and never
//! answers does not make the doctor hang.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use huddle::config::Config;
use huddle::turn::TurnConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// The longest a whole doctor run may take in these tests.
const RUN_LIMIT: Duration = Duration::from_secs(60);

struct Run {
    code: i32,
    stdout: String,
    took: Duration,
}

impl Run {
    /// The line of `step` (`"tls"`, `"turn:…?transport=udp relay"`).
    fn line(&self, step: &str) -> &str {
        let marker = format!(" {step}: ");
        self.stdout
            .lines()
            .find(|l| l.contains(&marker))
            .unwrap_or_else(|| panic!("no {step:?} line in:\n{}", self.stdout))
    }

    fn assert_ok(&self, step: &str) {
        let line = self.line(step);
        assert!(line.starts_with("ok "), "{step}: {line}\n{}", self.stdout);
    }

    fn assert_fail(&self, step: &str, says: &str) {
        let line = self.line(step);
        assert!(line.starts_with("FAIL "), "{step}: {line}\n{}", self.stdout);
        assert!(line.contains(says), "{step}: {line:?} lacks {says:?}");
    }
}

async fn doctor(args: &[&str]) -> Run {
    let started = Instant::now();
    let out = tokio::time::timeout(
        RUN_LIMIT,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
            .arg("doctor")
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the doctor ends in time")
    .expect("the doctor runs");
    let run = Run {
        code: out.status.code().expect("an exit status"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 output"),
        took: started.elapsed(),
    };
    eprintln!(
        "huddle doctor {}\n{}{}",
        args.join(" "),
        run.stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

/// A server with the embedded TURN server on 127.0.0.1, relaying to
/// loopback peers (refused by default), with `secret`.
fn turn_config(secret: &[u8], per_ip: usize) -> Config {
    let mut turn = TurnConfig::new("127.0.0.1:0".parse().unwrap());
    turn.allowed_peers = vec!["127.0.0.0/8".parse().unwrap()];
    turn.max_allocations_per_ip = per_ip;
    Config {
        turn: Some(turn),
        turn_secret: Some(Arc::from(secret)),
        ..common::config()
    }
}

/// The TURN URLs a server hands out, from `GET /ice-servers`.
async fn turn_urls(addr: SocketAddr) -> Vec<String> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ice-servers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    let v: Value = serde_json::from_str(body).unwrap();
    v["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["urls"].as_array().cloned().unwrap_or_default())
        .map(|u| u.as_str().unwrap().to_owned())
        .filter(|u| u.starts_with("turn"))
        .collect()
}

/// A port on 127.0.0.1 where nothing listens (bound, then let go).
async fn dead_port() -> u16 {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    drop(tcp);
    port
}

#[tokio::test]
async fn a_server_with_the_embedded_turn_passes_every_step() {
    // Two allocations per IP: each TURN URL's round trip needs two at once,
    // so the second URL (and the second run) only pass if the doctor
    // released the first ones.
    let server = common::start(turn_config(b"secret-x", 2)).await;
    let urls = turn_urls(server.addr).await;
    // The TURN port's UDP and TCP, and TCP on the HTTP port itself.
    assert_eq!(urls.len(), 3, "{urls:?}");
    assert_eq!(
        urls[2],
        format!("turn:127.0.0.1:{}?transport=tcp", server.addr.port())
    );
    let site = format!("http://{}", server.addr);
    for _ in 0..2 {
        let run = doctor(&["--server", &site, "--timeout", "5s"]).await;
        assert_eq!(run.code, 0, "{}", run.stdout);
        for step in [
            "url",
            "dns",
            "tcp",
            "healthz",
            "signaling",
            "candidates",
            "verdict",
        ] {
            run.assert_ok(step);
        }
        assert!(run.line("signaling").contains("left cleanly"));
        for url in &urls {
            for what in ["reach", "allocate", "relay"] {
                run.assert_ok(&format!("{url} {what}"));
            }
            let relay = run.line(&format!("{url} relay"));
            assert!(
                relay.contains("round trip") && relay.contains("allocations released"),
                "{relay}"
            );
        }
        assert!(urls.iter().any(|u| u.ends_with("transport=udp")));
        assert!(urls.iter().any(|u| u.ends_with("transport=tcp")));
        assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    }
    server.stop.cancel();
}

#[tokio::test]
async fn a_turn_url_that_nothing_answers_fails_the_turn_step() {
    // UDP: a socket that reads and never answers; TCP: nothing listens.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_port = silent.local_addr().unwrap().port();
    let tcp_port = dead_port().await;
    let cfg = Config {
        turn_urls: vec![
            format!("turn:127.0.0.1:{udp_port}?transport=udp"),
            format!("turn:127.0.0.1:{tcp_port}?transport=tcp"),
        ],
        turn_secret: Some(Arc::from(&b"secret"[..])),
        ..common::config()
    };
    let server = common::start(cfg).await;
    let run = doctor(&[
        "--server",
        &format!("http://{}", server.addr),
        "--timeout",
        "1s",
    ])
    .await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    run.assert_ok("signaling");
    run.assert_fail(
        &format!("turn:127.0.0.1:{udp_port}?transport=udp reach"),
        "no answer over UDP",
    );
    run.assert_fail(
        &format!("turn:127.0.0.1:{tcp_port}?transport=tcp reach"),
        "nothing listens on TCP",
    );
    run.assert_fail("verdict", "no round trip through the relay worked");
    assert!(run.took < Duration::from_secs(20), "{:?}", run.took);
    server.stop.cancel();
}

#[tokio::test]
async fn nothing_listening_is_a_clear_failure() {
    let port = dead_port().await;
    let run = doctor(&["--server", &format!("http://127.0.0.1:{port}")]).await;
    assert_eq!(run.code, 1);
    run.assert_fail("tcp", "nothing listens on TCP 127.0.0.1:");
    run.assert_fail("verdict", "no call can be set up");
    // Bad usage is clap's exit status 2.
    let run = doctor(&["--server", "127.0.0.1:8080"]).await;
    assert_eq!(run.code, 2);
}

#[tokio::test]
async fn a_self_signed_certificate_needs_ca_cert() {
    let (server, cert) = common::start_tls("doctor-tls").await;
    let site = format!("https://127.0.0.1:{}", server.addr.port());
    let run = doctor(&["--server", &site]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    run.assert_fail("tls", "untrusted certificate");
    assert!(run.line("tls").contains("--ca-cert"));

    let cert = cert.to_str().unwrap();
    let run = doctor(&["--server", &site, "--ca-cert", cert]).await;
    run.assert_ok("tls");
    assert!(
        run.line("tls").contains("(self-signed)"),
        "{}",
        run.line("tls")
    );
    run.assert_ok("healthz");
    run.assert_ok("signaling");
    // No TURN on this server: a call works on simple networks only.
    let verdict = run.line("verdict");
    assert!(
        verdict.starts_with("warn ") && verdict.contains("no TURN relay"),
        "{verdict}"
    );
    assert_eq!(run.code, 0, "{}", run.stdout);

    let run = doctor(&["--server", &site, "--insecure"]).await;
    let tls = run.line("tls");
    assert!(
        tls.starts_with("warn ") && tls.contains("--insecure"),
        "{tls}"
    );
    server.stop.cancel();
    common::remove_tls_dir("doctor-tls");
}

#[tokio::test]
async fn a_turn_server_with_another_secret_refuses_the_credentials() {
    // A runs the TURN server with secret X; B hands it out with secret Y.
    let a = common::start(turn_config(b"secret-x", 100)).await;
    let urls = turn_urls(a.addr).await;
    let b_with = |secret: &[u8]| Config {
        turn_urls: urls.clone(),
        turn_secret: Some(Arc::from(secret)),
        ..common::config()
    };
    let b = common::start(b_with(b"secret-y")).await;
    let run = doctor(&["--server", &format!("http://{}", b.addr)]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    for url in &urls {
        run.assert_ok(&format!("{url} reach"));
        run.assert_fail(&format!("{url} allocate"), "refused the credentials");
        assert!(
            run.line(&format!("{url} allocate"))
                .contains("--turn-secret")
        );
    }
    // The same with the right secret passes: the failure was the secret.
    let good = common::start(b_with(b"secret-x")).await;
    let run = doctor(&["--server", &format!("http://{}", good.addr)]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    for server in [a, b, good] {
        server.stop.cancel();
    }
}

#[tokio::test]
async fn an_invitation_only_server_needs_access() {
    let key = huddle::access::AuthKey::new(&[42u8; 32]).unwrap();
    let mut cfg = turn_config(b"secret-x", 100);
    cfg.core.auth = Some(key.clone());
    let server = common::start(cfg).await;
    let site = format!("http://{}", server.addr);
    let run = doctor(&["--server", &site]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    let line = run.line("signaling");
    assert!(
        line.starts_with("warn ") && line.contains("invitation only"),
        "{line}"
    );
    run.assert_fail("verdict", "without a valid invitation");

    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = key.mint(&huddle::access::Claims {
        room: "checks".into(),
        exp,
        name: None,
        host: false,
        nbf: None,
    });
    // A whole invitation link carries the room and the token.
    let link = format!("{site}/r/checks?access={token}");
    let run = doctor(&["--server", &link]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.line("signaling")
            .contains("joined room checks as doctor")
    );
    server.stop.cancel();
}

#[tokio::test]
async fn a_server_that_never_answers_does_not_hang_the_doctor() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let run = doctor(&["--server", &format!("http://{addr}"), "--timeout", "1s"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    run.assert_ok("tcp");
    run.assert_fail("healthz", "no answer within 1s");
    assert!(run.took < Duration::from_secs(10), "{:?}", run.took);
    held.abort();
}

/// A TLS front for a TCP service: terminates TLS with a fresh self-signed
/// certificate for 127.0.0.1 and pipes the bytes to `to`. Returns its
/// address and the certificate's PEM file.
async fn tls_front(to: SocketAddr, tag: &str) -> (SocketAddr, std::path::PathBuf) {
    use tokio_rustls::rustls;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = std::env::temp_dir().join(format!("huddle-{tag}-{}.pem", std::process::id()));
    std::fs::write(&pem, cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut inner) = TcpStream::connect(to).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut inner).await;
            });
        }
    });
    (addr, pem)
}

#[tokio::test]
async fn stun_and_turns_urls_are_checked_too() {
    // A runs the TURN server; B hands it out as a STUN URL and, through a
    // TLS front, as turns: (TURN over TLS over TCP).
    let a = common::start(turn_config(b"secret-x", 100)).await;
    let udp = turn_urls(a.addr).await.into_iter().next().unwrap();
    let turn_addr: SocketAddr = udp
        .trim_start_matches("turn:")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (front, pem) = tls_front(turn_addr, "doctor-turns").await;
    let turns = format!("turns:127.0.0.1:{}?transport=tcp", front.port());
    let stun = format!("stun:{turn_addr}");
    let mut cfg = Config {
        turn_urls: vec![turns.clone()],
        turn_secret: Some(Arc::from(&b"secret-x"[..])),
        ..common::config()
    };
    cfg.core.ice.push_url(&stun).unwrap();
    let b = common::start(cfg).await;
    let site = format!("http://{}", b.addr);

    let run = doctor(&["--server", &site, "--ca-cert", pem.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    run.assert_ok(&format!("{stun} reach"));
    assert!(run.line(&format!("{stun} reach")).contains("UDP"));
    for what in ["reach", "allocate", "relay"] {
        run.assert_ok(&format!("{turns} {what}"));
    }
    assert!(run.line(&format!("{turns} reach")).contains("TLS"));
    assert!(run.line("candidates").contains("(via TLS)"));

    // The front's certificate is not trusted without --ca-cert.
    let run = doctor(&["--server", &site]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    run.assert_fail(&format!("{turns} reach"), "untrusted certificate");
    let _ = std::fs::remove_file(&pem);
    a.stop.cancel();
    b.stop.cancel();
}

#[tokio::test]
async fn turn_over_tls_on_the_https_port_is_checked_end_to_end() {
    let dir = std::env::temp_dir().join(format!("huddle-doctor-oneport-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = turn_config(b"secret-x", 100);
    cfg.tls = Some(huddle::tls::TlsSource::SelfSigned {
        data_dir: dir.clone(),
    });
    let server = common::start(cfg).await;
    let port = server.addr.port();
    let site = format!("https://127.0.0.1:{port}");
    let cert = dir.join("self-signed-cert.pem");
    let run = doctor(&["--server", &site, "--ca-cert", cert.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    // The relay on the HTTPS port itself, over TLS and over plain TCP.
    for url in [
        format!("turns:127.0.0.1:{port}?transport=tcp"),
        format!("turn:127.0.0.1:{port}?transport=tcp"),
    ] {
        for what in ["reach", "allocate", "relay"] {
            run.assert_ok(&format!("{url} {what}"));
        }
    }
    server.stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}
