//! A WebTransport session on the feed: the headline variant, one unidirectional stream for the
//! whole feed, and talk-back on bidirectional streams.
//!
//! The feed stream carries lines (`\n`-terminated): each event's envelope, the same bytes a
//! WebSocket text message carries ([`Event::ws`](crate::event::Event::ws), shared, not copied);
//! `{"op":"missed",…}` when the cursor fell out of retention ([`missed_notice`], as on `/ws`);
//! and an empty line as the heartbeat, sent only when nothing was sent for `--heartbeat` (SSE's
//! and WebSocket's policy: bytes on a busy stream would only add cost). A client resumes with
//! `since=<last seq>` like everywhere else.
//!
//! Talk-back: a client opens a bidirectional stream, writes one message (the `/ws` text ops:
//! `publish`, `echo`, `input`) of at most `--ws-max-message-bytes`, and finishes it; the reply a
//! WebSocket would get comes back on that stream, which the server then finishes. Messages are
//! taken one at a time between feed writes, as a WebSocket session takes them;
//! `--quic-max-bidi-streams` bounds the ones waiting.
//!
//! The session ends as a WebSocket would, with the same codes and reasons in WebTransport's
//! CLOSE_WEBTRANSPORT_SESSION: 1013 past `--max-lag` (resume from the named cursor), 1001 at
//! shutdown, 1000 after a named feed's last event, 1008 for a bad message. A client that stops
//! reading pins at most `--quic-send-window` (quinn's unacknowledged bytes) plus the client's
//! own flow-control window; a write that cannot complete within `--send-timeout` ends it.
//!
//! Bytes are counted as the stream's payload: what the server writes on the feed stream and on
//! talk-back replies, which is what a client reads from its streams. QUIC's own framing,
//! encryption and acknowledgements (the UDP payload) are the link's to count.

use std::sync::Arc;

use actix_http::ws::{CloseCode, CloseReason};
use bytes::Bytes;
use tokio::time::Instant;
use web_transport_quinn::{RecvStream, SendStream, Session};

use super::connect::Ready;
use crate::{
    accounting::Meter,
    feed::{Feed, LagLimit},
    input::{Bucket, Verdict},
    state::AppState,
    transport::ws::{answer, client_op, close, missed_notice, too_slow, ClientOp},
};

/// What ends a line on the feed stream.
const NEWLINE: Bytes = Bytes::from_static(b"\n");

/// A client's stream was stopped because the server takes none of this kind: the QUIC stream
/// error code (WebTransport application code 0).
const NOT_TAKEN: u32 = 0;

/// Why the session ends.
enum End {
    /// The client or the connection is gone: nothing to say.
    Gone,
    /// We close, with this code and reason.
    Close(CloseReason),
}

/// Serves `session` from `ready` until it ends, then closes it with the reason.
pub async fn serve(session: Session, ready: Ready, state: Arc<AppState>) {
    let Ok(stream) = session.open_uni().await else {
        return;
    };
    let mut feed = FeedSession {
        session: session.clone(),
        stream,
        state: state.clone(),
        meter: ready.meter,
        feed: ready.feed,
        feed_name: ready.feed_name,
        last_write: Instant::now(),
        bucket: Bucket::new(state.config.max_input_rate),
    };
    if let End::Close(reason) = feed.run(ready.cursor).await {
        let code = u32::from(u16::from(reason.code));
        let why = reason.description.unwrap_or_default();
        session.close(code, why.as_bytes());
        // The close capsule goes out on a task of its own; the connection ends with it.
        let _ = tokio::time::timeout(state.config.close_timeout, session.closed()).await;
    }
}

struct FeedSession {
    session: Session,
    stream: SendStream,
    state: Arc<AppState>,
    meter: Meter,
    feed: Arc<Feed>,
    feed_name: Option<String>,
    /// When the last write completed: a heartbeat is due `--heartbeat` after it.
    last_write: Instant,
    /// `--max-input-rate` for this session's inputs.
    bucket: Bucket,
}

impl FeedSession {
    async fn run(&mut self, mut cursor: u64) -> End {
        let state = self.state.clone();
        let config = &state.config;
        let mut head = self.feed.subscribe();
        let lag = LagLimit::new(config.max_lag(), self.feed.head().saturating_sub(cursor));
        let mut turn = crate::shutdown::Turn::default();
        let heartbeat = tokio::time::sleep_until(self.last_write + config.heartbeat);
        tokio::pin!(heartbeat);
        loop {
            match self.deliver(&mut cursor, &lag).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(end) => return end,
            }
            if turn.due(&state.feed, &state.drain) {
                return End::Close(close(CloseCode::Away, "server shutting down".into()));
            }
            heartbeat.as_mut().reset(self.last_write + config.heartbeat);
            let session = self.session.clone();
            tokio::select! {
                biased;
                () = turn.wait() => {}
                changed = head.changed() => {
                    if changed.is_err() {
                        return End::Close(close(CloseCode::Away, "server shutting down".into()));
                    }
                }
                () = &mut heartbeat => {
                    if let Err(end) = self.write(&mut [NEWLINE]).await {
                        return end;
                    }
                }
                talk = session.accept_bi() => match talk {
                    Ok((send, recv)) => {
                        // Boxed: a publish may wait for the store or Redis, and its state would
                        // otherwise be part of every idle session's future.
                        if let Some(end) = Box::pin(self.talk_back(send, recv)).await {
                            return end;
                        }
                    }
                    Err(_) => return End::Gone,
                },
                uni = session.accept_uni() => match uni {
                    Ok(mut recv) => {
                        let _ = recv.stop(NOT_TAKEN);
                    }
                    Err(_) => return End::Gone,
                },
            }
        }
    }

    /// Writes what is pending after `cursor`; `Ok(true)` when more is.
    async fn deliver(&mut self, cursor: &mut u64, lag: &LagLimit) -> Result<bool, End> {
        let state = self.state.clone();
        let config = &state.config;
        let Ok(batch) = self.feed.since_within(
            *cursor,
            config.max_batch as usize,
            config.max_write_bytes as usize,
            |e| e.ws.len() + 1,
        ) else {
            return Ok(false);
        };
        if let Some(behind) = lag.exceeded(batch.head - *cursor) {
            return Err(End::Close(too_slow(behind, *cursor)));
        }
        let mut chunks: Vec<Bytes> = Vec::with_capacity(batch.events.len() * 2 + 2);
        if batch.missed > 0 {
            chunks.push(Bytes::from(missed_notice(&batch)));
            chunks.push(NEWLINE);
            self.meter.bytes(chunks[0].len() as u64 + 1);
        }
        let mut event_bytes = 0;
        for e in &batch.events {
            chunks.push(e.ws.as_bytes().clone());
            chunks.push(NEWLINE);
            event_bytes += e.ws.len() as u64 + 1;
        }
        if !chunks.is_empty() {
            self.write(&mut chunks).await?;
            if !batch.events.is_empty() {
                self.meter.delivered(batch.events.len() as u64, event_bytes);
            }
        }
        *cursor = batch.next;
        if let Some(seq) = self.feed.finished_at(*cursor) {
            return Err(End::Close(close(
                CloseCode::Normal,
                format!("the feed ended at seq {seq}"),
            )));
        }
        Ok(batch.behind() > 0)
    }

    /// Writes `chunks` whole on the feed stream within `--send-timeout`. Heartbeats are counted
    /// here; events by [`FeedSession::deliver`], which knows how many there were.
    async fn write(&mut self, chunks: &mut [Bytes]) -> Result<(), End> {
        let timeout = self.state.config.send_timeout;
        let heartbeat = chunks.len() == 1 && chunks[0] == NEWLINE;
        match tokio::time::timeout(timeout, self.stream.write_all_chunks(chunks)).await {
            Ok(Ok(())) => {
                self.last_write = Instant::now();
                if heartbeat {
                    self.meter.bytes(1);
                }
                Ok(())
            }
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Close(close(
                CloseCode::Again,
                format!(
                    "client too slow: a write waited {} (--send-timeout)",
                    humantime::format_duration(timeout)
                ),
            ))),
        }
    }

    /// One talk-back message: read whole (bounded in size and time), answered on its stream as
    /// a WebSocket's text message would be. `Some` ends the session.
    async fn talk_back(&mut self, mut send: SendStream, mut recv: RecvStream) -> Option<End> {
        let state = self.state.clone();
        let config = &state.config;
        let read = tokio::time::timeout(
            config.request_timeout,
            recv.read_to_end(config.ws_max_message_bytes),
        )
        .await;
        let message = match read {
            Ok(Ok(message)) => message,
            Ok(Err(web_transport_quinn::ReadToEndError::TooLong)) => {
                return Some(End::Close(close(
                    CloseCode::Size,
                    format!(
                        "message over {} bytes (--ws-max-message-bytes)",
                        config.ws_max_message_bytes
                    ),
                )))
            }
            Ok(Err(_)) => return None,
            Err(_) => {
                return Some(End::Close(close(
                    CloseCode::Policy,
                    "message not finished within --request-timeout".into(),
                )))
            }
        };
        self.meter.message_received();
        let text = match std::str::from_utf8(&message) {
            Ok(text) => bytestring::ByteString::from(text),
            Err(_) => {
                return Some(End::Close(close(
                    CloseCode::Invalid,
                    "message is not UTF-8".into(),
                )))
            }
        };
        let op = match client_op(&text) {
            Ok(op) => op,
            Err(reason) => return Some(End::Close(reason)),
        };
        if let ClientOp::Input { .. } = op {
            match state.inputs.take(config, &mut self.bucket, message.len()) {
                Err(e) => return Some(End::Close(close(CloseCode::Size, e.to_string()))),
                Ok(Verdict::Drop) => return None,
                Ok(Verdict::Ack) => {}
            }
        }
        let feed = self.feed_name.clone();
        let reply = match answer(&state, feed.as_deref(), op, &text, message.len() as u64).await {
            Ok(reply) => reply,
            Err(reason) => return Some(End::Close(reason)),
        };
        let written =
            tokio::time::timeout(config.send_timeout, send.write_all(reply.as_bytes())).await;
        if matches!(written, Ok(Ok(()))) {
            let _ = send.finish();
            self.meter.bytes(reply.len() as u64);
        }
        None
    }
}
