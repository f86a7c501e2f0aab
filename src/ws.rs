//! One signaling connection: reading frames, heartbeats, the bounded
//! outbound queue, and how the connection ends.
//!
//! A connection runs as one task with two halves: the reader turns frames
//! into hub calls and watches the heartbeat; the writer drains the bounded
//! queue the hub fills, batching frames into one flush. How it ends decides
//! what the others see:
//!
//! | end | close sent | member |
//! | --- | --- | --- |
//! | client close frame | echo | leaves at once |
//! | binary frame / frame too large | 1003 / 1009 | leaves at once |
//! | TCP gone, or two heartbeat intervals of silence | none | kept for the grace period |
//! | outbound queue full (slow consumer) | 1013 | kept for the grace period |
//! | server shutdown | 1001 | leaves |

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::hub::{Hub, Outbound};
use crate::metrics::FrameRefusal;
use crate::queue;

/// Close code for a binary frame.
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// Close code for a frame above `--max-frame-bytes`.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a slow consumer.
pub const CLOSE_TRY_AGAIN: u16 = 1013;
/// Close code on shutdown.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// How long a close handshake or a final write may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings of one connection.
#[derive(Debug, Clone, Copy)]
pub struct SocketSettings {
    /// Ping interval; two silent intervals mean lost.
    pub heartbeat: Duration,
    /// Outbound queue bound.
    pub outbound_queue: usize,
}

/// How the reader half ended.
enum End {
    /// The client sent a close frame.
    Clean,
    /// The server closes for a protocol violation.
    Violation(FrameRefusal, u16, &'static str),
    /// Transport gone without a close frame, or heartbeat silence.
    Lost,
    /// The hub cut the connection (slow consumer); it already told the core.
    Killed,
    /// The server is shutting down.
    Shutdown,
}

/// Runs one upgraded socket until it ends.
pub async fn run(
    socket: WebSocket,
    hub: Arc<Hub>,
    settings: SocketSettings,
    shutdown: CancellationToken,
) {
    let (tx, rx) = queue::channel(settings.outbound_queue);
    let kill = CancellationToken::new();
    let conn = hub.connect(tx.clone(), kill.clone());
    let (sink, mut stream) = socket.split();
    let writer = write_loop(sink, rx, kill.clone(), shutdown.clone());

    let reader = async {
        let end = read_loop(
            &mut stream,
            &hub,
            conn,
            &tx,
            &kill,
            &shutdown,
            settings.heartbeat,
        )
        .await;
        debug!(conn, "connection ending");
        match end {
            End::Clean => hub.closed(conn),
            End::Violation(why, code, reason) => {
                hub.refused_frame(conn, why);
                // The hub dropped its sender; ours carries the close.
                let _ = tx.try_send(Outbound::Close(code, reason));
            }
            End::Lost => hub.lost(conn),
            End::Killed => {}
            End::Shutdown => {
                // The writer sends 1001; wait briefly for the client's reply.
                let _ = timeout(CLOSE_TIMEOUT, async {
                    while let Some(Ok(msg)) = stream.next().await {
                        if matches!(msg, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
                hub.closed(conn);
            }
        }
        drop(tx);
    };
    tokio::join!(reader, writer);
}

async fn read_loop(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    hub: &Hub,
    conn: u64,
    tx: &queue::Sender<Outbound>,
    kill: &CancellationToken,
    shutdown: &CancellationToken,
    heartbeat: Duration,
) -> End {
    let mut ticks = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    // Made once, not per frame: these futures are polled on every wake-up.
    let shutting_down = shutdown.cancelled();
    let killed = kill.cancelled();
    tokio::pin!(shutting_down, killed);
    loop {
        tokio::select! {
            biased;
            () = &mut shutting_down => return End::Shutdown,
            () = &mut killed => return End::Killed,
            msg = stream.next() => {
                last_seen = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => hub.frame(conn, text.as_str()),
                    Some(Ok(Message::Binary(_))) => {
                        return End::Violation(FrameRefusal::Binary, CLOSE_UNSUPPORTED, "binary frames are not supported");
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) => return End::Clean,
                    Some(Err(e)) if is_too_big(&e) => {
                        return End::Violation(FrameRefusal::TooBig, CLOSE_TOO_BIG, "message too big");
                    }
                    Some(Err(e)) => {
                        debug!(conn, error = %e, "read error");
                        return End::Lost;
                    }
                    None => return End::Lost,
                }
            }
            _ = ticks.tick() => {
                if last_seen.elapsed() >= heartbeat * 2 {
                    debug!(conn, "heartbeat: no answer for two intervals");
                    return End::Lost;
                }
                let _ = tx.try_send(Outbound::Ping);
            }
        }
    }
}

fn is_too_big(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tungstenite::Error::Capacity(_)) = err.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: queue::Receiver<Outbound>,
    kill: CancellationToken,
    shutdown: CancellationToken,
) {
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }))
    };
    let shutting_down = shutdown.cancelled();
    let killed = kill.cancelled();
    tokio::pin!(shutting_down, killed);
    'frames: loop {
        let first = tokio::select! {
            biased;
            () = &mut shutting_down => {
                let _ = timeout(CLOSE_TIMEOUT, sink.send(close(CLOSE_GOING_AWAY, "server shutting down"))).await;
                return;
            }
            () = &mut killed => {
                let _ = timeout(CLOSE_TIMEOUT, sink.send(close(CLOSE_TRY_AGAIN, "too slow to keep up; reconnect and resume"))).await;
                return;
            }
            out = rx.recv() => out,
        };
        let Some(mut out) = first else {
            // Everyone dropped their sender: the connection is over.
            break;
        };
        // Feed everything that is queued, then flush once.
        loop {
            let msg = match out {
                Outbound::Text(text) => Message::Text(text.into()),
                Outbound::Ping => Message::Ping(Default::default()),
                Outbound::Close(code, reason) => {
                    let _ = timeout(CLOSE_TIMEOUT, sink.send(close(code, reason))).await;
                    return;
                }
            };
            // After the client's close frame, sends fail; what is left to do
            // is finishing the close handshake, below.
            if sink.feed(msg).await.is_err() {
                break 'frames;
            }
            match rx.try_recv() {
                Some(next) => out = next,
                None => break,
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    // Flushes the reply to a client's close frame (or starts the handshake).
    let _ = timeout(CLOSE_TIMEOUT, sink.close()).await;
}
