//! The client side of signaling protocol v1: one WebSocket to the server,
//! `join` (and resume with the token after a lost connection), relaying
//! offers, answers and candidates, `leave` on the way out.
//!
//! [`run`] owns the socket in a task of its own, so a reconnect never holds
//! up the media loop. The participant talks to it through two channels:
//! [`SignalEvent`]s come out, [`Outgoing`] messages go in. While the socket
//! is down, outgoing messages wait (bounded) and go out after the resume.
//!
//! What to do when the socket ends is decided by pure functions
//! ([`on_close`], [`Backoff`]), unit-tested below.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

/// How long one connection attempt (TCP + WebSocket handshake + `joined`) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the bot waits for `left` after sending `leave`.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);
/// Outgoing messages held while the socket is down; older ones are dropped.
const HELD_MAX: usize = 1000;

/// Why the bot cannot take part (any of these ends it with a non-zero status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The first connection failed.
    #[error("cannot reach the huddle server at {url}: {why}")]
    Unreachable {
        /// The WebSocket URL tried.
        url: String,
        /// The transport error.
        why: String,
    },
    /// The server refused the join.
    #[error("the server refused to let {name:?} into room {room:?}: {code}: {message}")]
    Refused {
        /// Name asked for.
        name: String,
        /// Room asked for.
        room: String,
        /// Protocol error code (e.g. `name-taken`, `room-full`).
        code: String,
        /// The server's sentence.
        message: String,
    },
    /// The connection ended in a way that rules out reconnecting.
    #[error("signaling ended: {0}")]
    Ended(String),
    /// The server stayed unreachable for longer than the bot keeps trying.
    #[error("lost the signaling connection and could not get back within {0:?}")]
    GaveUp(Duration),
}

/// A message from the server, as the bot needs it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMsg {
    /// You are in.
    Joined {
        /// The room.
        room: String,
        /// Our name as the server spells it.
        name: String,
        /// Every other member, oldest first.
        peers: Vec<String>,
        /// RTCIceServer objects.
        #[serde(rename = "iceServers", default)]
        ice_servers: Vec<Value>,
        /// Secret for resuming.
        token: String,
        /// True when this `joined` resumed the membership.
        #[serde(default)]
        resumed: bool,
        /// The room's host (protocol v1.1).
        #[serde(default)]
        host: Option<String>,
        /// Whether the lobby is locked (v1.1).
        #[serde(default)]
        locked: bool,
        /// Whether the room has a password (v1.1).
        #[serde(default)]
        protected: bool,
    },
    /// We wait in a locked room's lobby (v1.1).
    Waiting {
        /// The room.
        room: String,
    },
    /// The host changed (v1.1).
    Host {
        /// The new host.
        name: String,
    },
    /// The host changed the room's settings (v1.1).
    RoomSettings {
        /// Whether the lobby is locked.
        locked: bool,
        /// Whether a password is set.
        protected: bool,
    },
    /// Someone waits in the lobby; we are host (v1.1).
    Knock {
        /// Its name.
        name: String,
    },
    /// Someone stopped waiting (v1.1).
    KnockGone {
        /// Its name.
        name: String,
    },
    /// The host removed us; the socket closes with 4001 (v1.1).
    Removed {
        /// The host.
        by: String,
    },
    /// The host asks us to mute (v1.1).
    AskMute {
        /// The host.
        by: String,
    },
    /// A member entered.
    PeerJoined {
        /// Its name.
        name: String,
    },
    /// A member is gone.
    PeerLeft {
        /// Its name.
        name: String,
    },
    /// Acknowledgement of `leave`.
    Left {
        /// The room left.
        room: String,
    },
    /// A relayed offer.
    Offer {
        /// The sender.
        from: String,
        /// SDP text.
        sdp: String,
    },
    /// A relayed answer.
    Answer {
        /// The sender.
        from: String,
        /// SDP text.
        sdp: String,
    },
    /// A relayed ICE candidate (`None`: end of candidates).
    Candidate {
        /// The sender.
        from: String,
        /// RTCIceCandidateInit or null.
        #[serde(default)]
        candidate: Option<Value>,
    },
    /// A refused request.
    Error {
        /// Protocol error code.
        code: String,
        /// A sentence.
        #[serde(default)]
        message: String,
    },
    /// A type this bot does not know (fields may be added to protocol v1).
    #[serde(other)]
    Unknown,
}

impl ServerMsg {
    /// Parses one text frame; `None` if it is not a message the bot can read.
    pub fn parse(text: &str) -> Option<ServerMsg> {
        serde_json::from_str(text).ok()
    }
}

/// A message for the server that the participant hands to the signal task.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// `offer` to a member.
    Offer {
        /// Addressee.
        to: String,
        /// SDP text.
        sdp: String,
    },
    /// `answer` to a member.
    Answer {
        /// Addressee.
        to: String,
        /// SDP text.
        sdp: String,
    },
    /// `candidate` to a member (`None`: end of candidates).
    Candidate {
        /// Addressee.
        to: String,
        /// RTCIceCandidateInit.
        candidate: Option<Value>,
    },
    /// `admit` a waiting joiner (we are host).
    Admit {
        /// Its name.
        name: String,
    },
}

impl Outgoing {
    /// The JSON text sent on the socket.
    pub fn to_json(&self) -> String {
        match self {
            Outgoing::Offer { to, sdp } => json!({"type":"offer","to":to,"sdp":sdp}),
            Outgoing::Answer { to, sdp } => json!({"type":"answer","to":to,"sdp":sdp}),
            Outgoing::Candidate { to, candidate } => {
                json!({"type":"candidate","to":to,"candidate":candidate})
            }
            Outgoing::Admit { name } => json!({"type":"admit","name":name}),
        }
        .to_string()
    }
}

/// What the signal task reports to the participant.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalEvent {
    /// A message from the server (including `joined` after every (re)join).
    Msg(ServerMsg),
    /// The socket is gone; the task is reconnecting.
    Lost {
        /// Why, for the log.
        why: String,
    },
    /// The task ended for good (after `Err`, the bot exits non-zero).
    Done(Result<(), SignalError>),
}

/// What to do after the socket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseAction {
    /// Connect again and resume with the token.
    Reconnect,
    /// Stop: another reason rules out coming back.
    Stop(String),
}

/// Decides from the close code (if the server sent a close frame) whether
/// to come back. Code 4000 means another connection resumed our membership
/// ("replaced"); 1008 (policy, e.g. flooding) and 1003/1009 (we sent
/// something wrong) would only repeat. A lost connection (no close frame),
/// 1001 (server restarting), 1006, 1011, 1012, 1013 (too slow) are worth a
/// reconnect: the server keeps our place for its grace period.
pub fn on_close(code: Option<u16>) -> CloseAction {
    match code {
        Some(4000) => CloseAction::Stop(
            "replaced: another connection resumed this membership (close code 4000)".into(),
        ),
        Some(4001) => {
            CloseAction::Stop("removed from the room by its host (close code 4001)".into())
        }
        Some(c @ (1003 | 1008 | 1009)) => CloseAction::Stop(format!(
            "the server closed the connection for a protocol violation (close code {c})"
        )),
        _ => CloseAction::Reconnect,
    }
}

/// Reconnect delays: 250 ms doubling to 4 s, for at most `give_up_after`
/// since the connection was lost.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    give_up_after: Duration,
}

impl Backoff {
    /// The first delay.
    pub const FIRST: Duration = Duration::from_millis(250);
    /// The longest delay.
    pub const MAX: Duration = Duration::from_secs(4);

    /// A fresh backoff for one outage.
    pub fn new(give_up_after: Duration) -> Self {
        Self {
            next: Self::FIRST,
            give_up_after,
        }
    }

    /// The delay before the next attempt, `lost_for` after the loss; `None`
    /// once the outage has lasted too long (never sleeps past the limit).
    pub fn next_delay(&mut self, lost_for: Duration) -> Option<Duration> {
        if lost_for >= self.give_up_after {
            return None;
        }
        let d = self.next.min(self.give_up_after - lost_for);
        self.next = (self.next * 2).min(Self::MAX);
        Some(d)
    }
}

/// Where and as whom the signal task joins.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    /// The server's socket (`ws://…/ws` or `wss://…/ws`) and how to open it.
    pub endpoint: crate::client::Endpoint,
    /// Room name.
    pub room: String,
    /// Member name.
    pub name: String,
    /// The room's password, if it has one (v1.1).
    pub password: Option<String>,
    /// The operator token, for servers run with `--auth-secret` (v1.1).
    pub access: Option<String>,
    /// How long to keep trying after a lost connection.
    pub give_up_after: Duration,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

enum Session {
    /// `stop` was cancelled and we left.
    Left,
    /// The socket ended; `code` from its close frame, if any.
    Ended { code: Option<u16>, why: String },
}

/// Runs the signaling connection until `stop` is cancelled (then sends
/// `leave`) or a fatal error. Always ends with one `SignalEvent::Done`.
pub async fn run(
    spec: JoinSpec,
    events: mpsc::UnboundedSender<SignalEvent>,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    stop: CancellationToken,
) {
    let result = run_inner(&spec, &events, &mut outgoing, &stop).await;
    let _ = events.send(SignalEvent::Done(result));
}

async fn run_inner(
    spec: &JoinSpec,
    events: &mpsc::UnboundedSender<SignalEvent>,
    outgoing: &mut mpsc::UnboundedReceiver<Outgoing>,
    stop: &CancellationToken,
) -> Result<(), SignalError> {
    let mut token: Option<String> = None;
    let mut held: VecDeque<String> = VecDeque::new();
    let mut lost_at: Option<Instant> = None;
    let mut backoff = Backoff::new(spec.give_up_after);
    loop {
        let attempt = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            r = tokio::time::timeout(CONNECT_TIMEOUT, connect_and_join(spec, token.as_deref())) => {
                r.unwrap_or_else(|_| Err(Attempt::Transport("timed out".into())))
            }
        };
        // In a locked room's lobby: wait for the host, as long as it takes.
        let attempt = match attempt {
            Ok((mut ws, waiting @ ServerMsg::Waiting { .. })) => {
                let _ = events.send(SignalEvent::Msg(waiting));
                let answer = tokio::select! {
                    _ = stop.cancelled() => None,
                    r = first_answer(&mut ws, false) => Some(r),
                };
                match answer {
                    None => {
                        leave(&mut ws).await;
                        return Ok(());
                    }
                    Some(r) => r.map(|joined| (ws, joined)),
                }
            }
            other => other,
        };
        let (mut ws, joined) = match attempt {
            Ok(ok) => ok,
            Err(Attempt::Refused { code, message }) => {
                return Err(SignalError::Refused {
                    name: spec.name.clone(),
                    room: spec.room.clone(),
                    code,
                    message,
                });
            }
            Err(Attempt::Transport(why)) => {
                let Some(since) = lost_at else {
                    return Err(SignalError::Unreachable {
                        url: spec.endpoint.url.clone(),
                        why,
                    });
                };
                match backoff.next_delay(since.elapsed()) {
                    Some(d) => {
                        tracing::debug!(%why, delay = ?d, "reconnect failed; trying again");
                        tokio::select! {
                            _ = stop.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(d) => continue,
                        }
                    }
                    None => return Err(SignalError::GaveUp(spec.give_up_after)),
                }
            }
        };
        if let ServerMsg::Joined { token: t, .. } = &joined {
            token = Some(t.clone());
        }
        backoff = Backoff::new(spec.give_up_after);
        let _ = events.send(SignalEvent::Msg(joined));
        match session(&mut ws, events, outgoing, &mut held, stop).await {
            Session::Left => return Ok(()),
            Session::Ended { code, why } => match on_close(code) {
                CloseAction::Stop(reason) => return Err(SignalError::Ended(reason)),
                CloseAction::Reconnect => {
                    tracing::info!(%why, "signaling connection lost; resuming");
                    let _ = events.send(SignalEvent::Lost { why });
                    lost_at = Some(Instant::now());
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff.next_delay(Duration::ZERO).unwrap_or_default()) => {}
                    }
                }
            },
        }
    }
}

enum Attempt {
    Transport(String),
    Refused { code: String, message: String },
}

async fn connect_and_join(
    spec: &JoinSpec,
    token: Option<&str>,
) -> Result<(Ws, ServerMsg), Attempt> {
    let mut ws = spec
        .endpoint
        .connect(None)
        .await
        .map_err(|e| Attempt::Transport(e.to_string()))?;
    let join = json!({"type":"join","room":spec.room,"name":spec.name,"token":token,
                      "password":spec.password,"access":spec.access});
    ws.send(Message::text(join.to_string()))
        .await
        .map_err(|e| Attempt::Transport(e.to_string()))?;
    let answer = first_answer(&mut ws, true).await?;
    Ok((ws, answer))
}

/// Reads until the server answers the join: `joined`, an `error`, or (when
/// `waiting_ok`) `waiting`; after `waiting`, the `joined` of an admission
/// or the `error` of a denial.
async fn first_answer(ws: &mut Ws, waiting_ok: bool) -> Result<ServerMsg, Attempt> {
    loop {
        let msg = match ws.next().await {
            None => return Err(Attempt::Transport("closed before joined".into())),
            Some(Err(e)) => return Err(Attempt::Transport(e.to_string())),
            Some(Ok(m)) => m,
        };
        let Message::Text(text) = msg else {
            if let Message::Close(frame) = msg {
                return Err(Attempt::Transport(describe_close(frame.as_ref())));
            }
            continue;
        };
        match ServerMsg::parse(&text) {
            Some(joined @ ServerMsg::Joined { .. }) => return Ok(joined),
            Some(waiting @ ServerMsg::Waiting { .. }) if waiting_ok => return Ok(waiting),
            Some(ServerMsg::Error { code, message }) => {
                return Err(Attempt::Refused { code, message });
            }
            _ => tracing::debug!(%text, "before joined: ignored"),
        }
    }
}

fn describe_close(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) => format!(
            "closed by the server (code {}, {:?})",
            u16::from(f.code),
            f.reason.as_str()
        ),
        None => "closed by the server".into(),
    }
}

async fn session(
    ws: &mut Ws,
    events: &mpsc::UnboundedSender<SignalEvent>,
    outgoing: &mut mpsc::UnboundedReceiver<Outgoing>,
    held: &mut VecDeque<String>,
    stop: &CancellationToken,
) -> Session {
    while let Some(text) = held.pop_front() {
        if let Err(e) = ws.send(Message::text(text.clone())).await {
            held.push_front(text);
            return Session::Ended {
                code: None,
                why: e.to_string(),
            };
        }
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                leave(ws).await;
                return Session::Left;
            }
            out = outgoing.recv() => {
                let Some(out) = out else {
                    leave(ws).await;
                    return Session::Left;
                };
                let text = out.to_json();
                if let Err(e) = ws.send(Message::text(text.clone())).await {
                    if held.len() >= HELD_MAX {
                        held.pop_front();
                    }
                    held.push_back(text);
                    return Session::Ended { code: None, why: e.to_string() };
                }
            }
            msg = ws.next() => match msg {
                None => return Session::Ended { code: None, why: "connection ended".into() },
                Some(Err(e)) => return Session::Ended { code: None, why: e.to_string() },
                Some(Ok(Message::Text(text))) => match ServerMsg::parse(&text) {
                    Some(m) => { let _ = events.send(SignalEvent::Msg(m)); }
                    None => tracing::debug!(%text, "unreadable server message ignored"),
                },
                Some(Ok(Message::Close(frame))) => {
                    return Session::Ended {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        why: describe_close(frame.as_ref()),
                    };
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Sends `leave`, waits (bounded) for `left`, closes the socket.
async fn leave(ws: &mut Ws) {
    let _ = tokio::time::timeout(LEAVE_TIMEOUT, async {
        if ws
            .send(Message::text(json!({"type":"leave"}).to_string()))
            .await
            .is_err()
        {
            return;
        }
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg
                && matches!(ServerMsg::parse(&t), Some(ServerMsg::Left { .. }))
            {
                break;
            }
        }
        let _ = ws.close(None).await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes() {
        assert_eq!(on_close(None), CloseAction::Reconnect);
        assert_eq!(on_close(Some(1001)), CloseAction::Reconnect);
        assert_eq!(on_close(Some(1013)), CloseAction::Reconnect);
        assert!(matches!(on_close(Some(4000)), CloseAction::Stop(s) if s.contains("replaced")));
        assert!(matches!(on_close(Some(1008)), CloseAction::Stop(_)));
        assert!(matches!(on_close(Some(1009)), CloseAction::Stop(_)));
    }

    #[test]
    fn backoff_doubles_caps_and_gives_up() {
        let mut b = Backoff::new(Duration::from_secs(10));
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis());
        assert_eq!(ms(b.next_delay(Duration::ZERO)), Some(250));
        assert_eq!(ms(b.next_delay(Duration::from_millis(300))), Some(500));
        assert_eq!(ms(b.next_delay(Duration::from_secs(1))), Some(1000));
        assert_eq!(ms(b.next_delay(Duration::from_secs(2))), Some(2000));
        assert_eq!(ms(b.next_delay(Duration::from_secs(4))), Some(4000));
        assert_eq!(ms(b.next_delay(Duration::from_secs(5))), Some(4000));
        // Never sleeps past the limit, then stops.
        assert_eq!(ms(b.next_delay(Duration::from_millis(9_500))), Some(500));
        assert_eq!(b.next_delay(Duration::from_secs(10)), None);
    }

    #[test]
    fn server_messages() {
        let j = ServerMsg::parse(
            r#"{"type":"joined","room":"r","name":"a","peers":["b"],"iceServers":[{"urls":"stun:x"}],"token":"t","resumed":true}"#,
        )
        .unwrap();
        assert!(
            matches!(j, ServerMsg::Joined { resumed: true, ref peers, ref ice_servers, .. } if peers == &["b"] && ice_servers.len() == 1)
        );
        assert_eq!(
            ServerMsg::parse(r#"{"type":"candidate","from":"b","candidate":null}"#),
            Some(ServerMsg::Candidate {
                from: "b".into(),
                candidate: None
            })
        );
        assert_eq!(
            ServerMsg::parse(r#"{"type":"something-new","x":1}"#),
            Some(ServerMsg::Unknown)
        );
        assert_eq!(ServerMsg::parse("nope"), None);
        let o = Outgoing::Candidate {
            to: "b".into(),
            candidate: None,
        };
        assert_eq!(
            serde_json::from_str::<Value>(&o.to_json()).unwrap(),
            json!({"type":"candidate","to":"b","candidate":null})
        );
    }
}
