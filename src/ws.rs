//! One signaling connection: reading frames, heartbeats, the bounded
//! outbound queue, and how the connection ends.
//!
//! A connection runs as one task with two halves: the reader turns frames
//! into hub calls and watches the heartbeat and the join deadline; the
//! writer drains the bounded queue the hub fills, batching frames into one
//! flush. Every write races the kill and shutdown signals and
//! `--write-timeout`, so a peer that acknowledges nothing cannot pin the
//! task, its connection slot or its queue. How it ends decides what the
//! others see:
//!
//! | end | close sent | member |
//! | --- | --- | --- |
//! | client close frame | echo | leaves at once |
//! | binary frame / frame too large | 1003 / 1009 | leaves at once |
//! | no valid `join` within `--join-timeout` | 1008 | (none yet) |
//! | the core closes it (flood 1008, replaced 4000) | that code | as the core says |
//! | TCP gone, or two heartbeat intervals of silence | none | kept for the grace period |
//! | outbound queue full, or a write stuck for `--write-timeout` (slow consumer) | 1013 if it fits | kept for the grace period |
//! | server shutdown | 1001 | leaves |
//!
//! Once the server has sent a close frame it stops handing frames to the
//! hub and waits at most [`CLOSE_TIMEOUT`] for the client's close reply,
//! then drops the TCP connection, even if the client keeps sending.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{FutureExt as _, SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::hub::{Hub, Outbound, Pending};
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
/// Close code for a connection that did not join within `--join-timeout`.
pub const CLOSE_POLICY: u16 = 1008;

/// How long a close handshake or a final write may take.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings of one connection.
#[derive(Debug, Clone, Copy)]
pub struct SocketSettings {
    /// Ping interval; two silent intervals mean lost.
    pub heartbeat: Duration,
    /// Outbound queue bound, in messages.
    pub outbound_queue: usize,
    /// Outbound queue bound, in bytes of text.
    pub outbound_queue_bytes: usize,
    /// How long one write (or flush) may take before the socket is cut.
    pub write_timeout: Duration,
    /// How long the socket may stay open before its first valid `join`.
    pub join_timeout: Duration,
}

/// How the reader half ended.
enum End {
    /// The client sent a close frame.
    Clean,
    /// The server closes for a protocol violation.
    Violation(FrameRefusal, u16, &'static str),
    /// No valid `join` in time; the hub has forgotten the connection.
    JoinTimeout,
    /// Transport gone without a close frame, or heartbeat silence.
    Lost,
    /// The hub cut the connection (slow consumer); it already told the core.
    Killed,
    /// The writer sent a close frame the core asked for (the core has
    /// already forgotten the connection).
    ClosedByServer,
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
    let (tx, rx) = queue::bounded(
        settings.outbound_queue,
        settings.outbound_queue_bytes,
        Outbound::weight,
    );
    let signals = Signals {
        kill: CancellationToken::new(),
        shutdown,
        closing: CancellationToken::new(),
        done: CancellationToken::new(),
        finished: CancellationToken::new(),
    };
    let conn = hub.connect(tx.clone(), signals.kill.clone());
    let (sink, mut stream) = socket.split();
    let writer = write_loop(sink, rx, signals.clone(), settings.write_timeout, || {
        hub.stalled(conn)
    });

    let reader = async {
        let end = read_loop(&mut stream, &hub, conn, &tx, signals.clone(), settings).await;
        debug!(conn, "connection ending");
        let await_reply = match end {
            End::Clean => {
                hub.closed(conn);
                false
            }
            End::Violation(why, code, reason) => {
                hub.refused_frame(conn, why);
                // The hub dropped its sender; ours carries the close.
                let _ = tx.try_send(Outbound::Close(code, reason));
                true
            }
            End::JoinTimeout => {
                let _ = tx.try_send(Outbound::Close(
                    CLOSE_POLICY,
                    "no valid join in time; send join first",
                ));
                true
            }
            End::Lost => {
                hub.lost(conn);
                false
            }
            End::Killed => false,
            End::ClosedByServer | End::Shutdown => true,
        };
        if await_reply {
            // The writer sends the close frame; wait briefly for the
            // client's reply, handing nothing more to the hub.
            let _ = timeout(CLOSE_TIMEOUT, async {
                while let Some(Ok(msg)) = stream.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        if matches!(end, End::Shutdown) {
            hub.closed(conn);
        }
        drop(tx);
        // The writer finishes what is queued and the close handshake, but
        // may wait on a write that cannot finish: give it a moment, then
        // make it give up.
        let _ = timeout(CLOSE_TIMEOUT, signals.finished.cancelled()).await;
        signals.done.cancel();
    };
    tokio::join!(reader, writer);
}

/// What makes a connection's halves stop (shared by both halves).
#[derive(Clone)]
struct Signals {
    /// The hub cut the connection.
    kill: CancellationToken,
    /// The server is shutting down.
    shutdown: CancellationToken,
    /// The writer has sent a close frame.
    closing: CancellationToken,
    /// The reader is done: a write still pending is abandoned.
    done: CancellationToken,
    /// The writer has returned.
    finished: CancellationToken,
}

async fn read_loop(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    hub: &Hub,
    conn: u64,
    tx: &queue::Sender<Outbound>,
    signals: Signals,
    settings: SocketSettings,
) -> End {
    let heartbeat = settings.heartbeat;
    let mut ticks = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    // Made once, not per frame: these futures are polled on every wake-up.
    let shutting_down = signals.shutdown.cancelled();
    let killed = signals.kill.cancelled();
    let closing = signals.closing.cancelled();
    let writer_gone = signals.finished.cancelled();
    let join_deadline = tokio::time::sleep(settings.join_timeout);
    let mut joined = false;
    // A frame waiting on password work (Hub::finish): nothing more is read
    // until it is done, so this connection's messages keep their order,
    // while signals and the heartbeat are still watched.
    let mut pending: Option<futures_util::future::BoxFuture<'_, Option<Pending>>> = None;
    tokio::pin!(shutting_down, killed, closing, writer_gone, join_deadline);
    loop {
        tokio::select! {
            biased;
            () = &mut shutting_down => return End::Shutdown,
            () = &mut killed => return End::Killed,
            () = &mut closing => return End::ClosedByServer,
            // The writer gave up (a failed or stuck write): nothing can
            // reach the client any more. Reporting it lost is harmless if
            // the hub already cut it.
            () = &mut writer_gone => return End::Lost,
            () = &mut join_deadline, if !joined => {
                if hub.join_deadline(conn) {
                    debug!(conn, "no join before the deadline");
                    return End::JoinTimeout;
                }
                joined = true;
            }
            more = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                pending = more.map(|work| hub.finish(conn, work).boxed());
            }
            msg = stream.next(), if pending.is_none() => {
                last_seen = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        pending = hub.frame(conn, text.as_str()).map(|work| hub.finish(conn, work).boxed());
                    }
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
                if pending.is_some() {
                    // Not reading while the server works: not the client's silence.
                    last_seen = Instant::now();
                }
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

/// Why a write did not finish.
enum Interrupted {
    /// The hub cut the connection.
    Killed,
    /// The server is shutting down.
    Shutdown,
    /// The write took longer than `--write-timeout`.
    Stalled,
    /// The transport failed (or the client's close frame came first).
    Broken,
    /// The reader ended and gave up on the connection.
    Abandoned,
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: queue::Receiver<Outbound>,
    signals: Signals,
    write_timeout: Duration,
    stalled: impl FnOnce(),
) {
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }))
    };
    let _finished = signals.finished.clone().drop_guard();
    let shutting_down = signals.shutdown.cancelled();
    let killed = signals.kill.cancelled();
    let reader_done = signals.done.cancelled();
    tokio::pin!(shutting_down, killed, reader_done);
    // Every write races the kill and shutdown signals and the write
    // timeout: a peer that acknowledges nothing blocks `feed` and `flush`
    // forever otherwise, and with them the slot and the queue.
    macro_rules! guarded {
        ($write:expr) => {
            tokio::select! {
                biased;
                () = &mut shutting_down => Err(Interrupted::Shutdown),
                () = &mut killed => Err(Interrupted::Killed),
                () = &mut reader_done => Err(Interrupted::Abandoned),
                r = timeout(write_timeout, $write) => match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(Interrupted::Broken),
                    Err(_) => Err(Interrupted::Stalled),
                },
            }
        };
    }
    let interrupted = 'frames: loop {
        let first = tokio::select! {
            biased;
            () = &mut shutting_down => break Interrupted::Shutdown,
            () = &mut killed => break Interrupted::Killed,
            out = rx.recv() => out,
        };
        let Some(mut out) = first else {
            // Everyone dropped their sender: the connection is over.
            break Interrupted::Broken;
        };
        // Feed everything that is queued, then flush once.
        loop {
            let msg = match out {
                Outbound::Text(text) => Message::Text(text.into()),
                Outbound::Ping => Message::Ping(Default::default()),
                Outbound::Close(code, reason) => {
                    signals.closing.cancel();
                    let _ = timeout(CLOSE_TIMEOUT, sink.send(close(code, reason))).await;
                    return;
                }
            };
            if let Err(why) = guarded!(sink.feed(msg)) {
                break 'frames why;
            }
            match rx.try_recv() {
                Some(next) => out = next,
                None => break,
            }
        }
        if let Err(why) = guarded!(sink.flush()) {
            break why;
        }
    };
    match interrupted {
        Interrupted::Shutdown => {
            signals.closing.cancel();
            let _ = timeout(
                CLOSE_TIMEOUT,
                sink.send(close(CLOSE_GOING_AWAY, "server shutting down")),
            )
            .await;
        }
        Interrupted::Killed => {
            signals.closing.cancel();
            let _ = timeout(
                CLOSE_TIMEOUT,
                sink.send(close(
                    CLOSE_TRY_AGAIN,
                    "too slow to keep up; reconnect and resume",
                )),
            )
            .await;
        }
        Interrupted::Stalled => {
            // Nothing gets through; a close frame would wait as well.
            stalled();
        }
        Interrupted::Abandoned => {}
        Interrupted::Broken => {
            // After the client's close frame, sends fail; what is left to
            // do is finishing the close handshake.
            let _ = timeout(CLOSE_TIMEOUT, sink.close()).await;
        }
    }
}
