//! A WebTransport session on the feed, in the variant the client chose (`mode=`): the headline
//! `stream`, one unidirectional stream for the whole feed; `streams`, a unidirectional stream
//! per event; `datagrams`, an event per QUIC datagram. Talk-back on bidirectional streams in all.
//!
//! Why three: QUIC's head-of-line blocking is per stream, so one stream still stalls every event
//! behind a lost packet, as TCP does. A stream per event stalls only the event whose packet was
//! lost; a datagram stalls nothing and is not resent by QUIC, so the feed's own cursor repairs it.
//!
//! The feed stream carries lines (`\n`-terminated): each event's envelope, the same bytes a
//! WebSocket text message carries ([`Event::ws`](crate::event::Event::ws), shared, not copied);
//! `{"op":"missed",…}` when the cursor fell out of retention ([`missed_notice`], as on `/ws`);
//! and an empty line as the heartbeat, sent only when nothing was sent for `--heartbeat` (SSE's
//! and WebSocket's policy: bytes on a busy stream would only add cost). A client resumes with
//! `since=<last seq>` like everywhere else.
//!
//! `streams` and `datagrams` keep such a line stream as the session's control stream (missed
//! notices, heartbeats, and in `datagrams` what does not fit a datagram); it is the one
//! bidirectional stream the server opens, so a client tells it from the per-event streams
//! without reading them (their order of arrival is not their order of opening). Events reach
//! the client out of order in both: it puts them back in order by `seq`.
//!
//! `streams`: each event's envelope alone on a unidirectional stream of its own, finished after
//! it. At most `--wt-max-event-streams` are open to a session (written and not yet acknowledged);
//! the next event waits for one to end, and for the client's stream credit, within
//! `--send-timeout`: a client that does not read them is closed with 1013 and the setting named,
//! having pinned at most that many events plus `--quic-send-window`.
//!
//! `datagrams`: each event's envelope as one datagram when it fits both
//! `--wt-datagram-max-bytes` and what the path allows now (quinn's datagram size), else as a line
//! on the control stream. A datagram is handed to quinn only when it fits the room left in
//! `--quic-datagram-buffer`; otherwise it is not sent (quinn would drop the oldest queued one
//! instead, and the count of what was sent would be wrong). Loss is repaired by the client, which
//! alone can see it (a gap in `seq`; quinn does not say which datagram a lost packet carried): it
//! opens a bidirectional stream with `{"op":"resend","since":S,"until":U}` and gets the events
//! after `S` up to `U` as lines from the feed's retention (or a missed notice first), at most
//! `--max-batch` of them, then the stream's end (counted in `/stats` as `resends`, not as a
//! message received). Asking with the cursor reuses the cursor model:
//! the server keeps no per-client record of what it sent, and a resend is an ordinary read of
//! the retained feed. The loss of the last events before a pause would show in no gap, so while
//! datagrams flow the server writes `{"op":"head","seq":N}` on the control stream at most every
//! `--wt-head-interval`: the seq it has sent up to.
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
//! Bytes are counted as the streams' and datagrams' payload: what the server writes on the feed,
//! control and event streams, datagrams handed to quinn, and talk-back and resend replies, which
//! is what a client reads (a lost datagram is counted here and not there). QUIC's own framing,
//! encryption and acknowledgements (the UDP payload) are the link's to count.

use std::sync::Arc;

use actix_http::ws::{CloseCode, CloseReason};
use bytes::Bytes;
use futures_util::{future::BoxFuture, stream::FuturesUnordered, StreamExt as _};
use tokio::time::Instant;
use web_transport_quinn::{RecvStream, SendStream, Session};

use super::connect::Ready;
use crate::{
    accounting::Meter,
    feed::{Feed, LagLimit},
    input::{Bucket, Verdict},
    state::AppState,
    transport::{
        ws::{answer, client_op, close, missed_notice, too_slow, ClientOp},
        Transport,
    },
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
    let stream = if ready.transport == Transport::Wt {
        session.open_uni().await
    } else {
        // The control stream; the client sends nothing on it.
        session.open_bi().await.map(|(send, _)| send)
    };
    let Ok(stream) = stream else {
        return;
    };
    let mut feed = FeedSession {
        session: session.clone(),
        mode: ready.transport,
        head_due: None,
        sent: 0,
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

/// `streams`: the per-event streams open, each done once its event is acknowledged.
type EventStreams = FuturesUnordered<BoxFuture<'static, ()>>;

struct FeedSession {
    session: Session,
    /// The variant: `wt`, `wt-streams` or `wt-datagrams`.
    mode: Transport,
    /// `datagrams`: when the next head line is due (datagrams were sent since the last one),
    /// and the seq sent up to.
    head_due: Option<Instant>,
    sent: u64,
    /// The feed stream, or the control stream.
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
        let mut streams = EventStreams::new();
        loop {
            match self.deliver(&mut cursor, &lag, &mut streams).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(end) => return end,
            }
            if turn.due(&state.feed, &state.drain) {
                return End::Close(close(CloseCode::Away, "server shutting down".into()));
            }
            heartbeat.as_mut().reset(self.last_write + config.heartbeat);
            let session = self.session.clone();
            let head_due = self.head_due;
            tokio::select! {
                biased;
                () = turn.wait() => {}
                Some(()) = streams.next(), if !streams.is_empty() => {}
                () = tokio::time::sleep_until(head_due.unwrap_or_else(Instant::now)), if head_due.is_some() => {
                    self.head_due = None;
                    let line = format!("{{\"op\":\"head\",\"seq\":{}}}\n", self.sent);
                    let len = line.len() as u64;
                    if let Err(end) = self.write(&mut [Bytes::from(line)]).await {
                        return end;
                    }
                    self.meter.bytes(len);
                }
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
    async fn deliver(
        &mut self,
        cursor: &mut u64,
        lag: &LagLimit,
        streams: &mut EventStreams,
    ) -> Result<bool, End> {
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
        let (mut events, mut event_bytes) = (0, 0);
        let mut datagrams = false;
        for e in &batch.events {
            let envelope = e.ws.as_bytes().clone();
            match self.mode {
                Transport::WtStreams => continue,
                Transport::WtDatagrams if envelope.len() <= self.datagram_size() => {
                    // Sent if it fits the queue; if not, the client recovers it by its seq.
                    let len = envelope.len() as u64;
                    if envelope.len() <= self.session.datagram_send_buffer_space()
                        && self.session.send_datagram(envelope).is_ok()
                    {
                        self.meter.delivered(1, len);
                    }
                    datagrams = true;
                }
                _ => {
                    chunks.push(envelope);
                    chunks.push(NEWLINE);
                    events += 1;
                    event_bytes += e.ws.len() as u64 + 1;
                }
            }
        }
        if !chunks.is_empty() {
            self.write(&mut chunks).await?;
            if events > 0 {
                self.meter.delivered(events, event_bytes);
            }
        }
        if self.mode == Transport::WtStreams {
            for e in &batch.events {
                self.event_stream(e.ws.as_bytes().clone(), streams).await?;
            }
        }
        *cursor = batch.next;
        if datagrams {
            self.sent = *cursor;
            let interval = config.quic.wt_head_interval;
            self.head_due
                .get_or_insert_with(|| Instant::now() + interval);
        }
        if let Some(seq) = self.feed.finished_at(*cursor) {
            return Err(End::Close(close(
                CloseCode::Normal,
                format!("the feed ended at seq {seq}"),
            )));
        }
        Ok(batch.behind() > 0)
    }

    /// `datagrams`: the largest envelope sent as a datagram now.
    fn datagram_size(&self) -> usize {
        let setting = self.state.config.quic.wt_datagram_max_bytes as usize;
        self.session.max_datagram_size().min(setting)
    }

    /// `streams`: opens a stream for `envelope` once fewer than `--wt-max-event-streams` are
    /// open and the client gives stream credit, each within `--send-timeout`; the write, its
    /// count and the wait for its acknowledgement go on in `streams`.
    async fn event_stream(
        &mut self,
        envelope: Bytes,
        streams: &mut EventStreams,
    ) -> Result<(), End> {
        let config = &self.state.config;
        let timeout = config.send_timeout;
        let max = config.quic.wt_max_event_streams as usize;
        let too_slow = |what: String| {
            End::Close(close(
                CloseCode::Again,
                format!(
                    "client too slow: {what} for {} (--send-timeout)",
                    humantime::format_duration(timeout)
                ),
            ))
        };
        if streams.len() >= max && tokio::time::timeout(timeout, streams.next()).await.is_err() {
            return Err(too_slow(format!(
                "{max} event streams unread (--wt-max-event-streams)"
            )));
        }
        let mut send = match tokio::time::timeout(timeout, self.session.open_uni()).await {
            Ok(Ok(send)) => send,
            Ok(Err(_)) => return Err(End::Gone),
            Err(_) => {
                return Err(too_slow(
                    "no stream credit, its event streams unread".into(),
                ))
            }
        };
        self.last_write = Instant::now();
        let meter = self.meter.clone();
        streams.push(Box::pin(async move {
            let len = envelope.len() as u64;
            if send.write_chunk(envelope).await.is_ok() {
                meter.delivered(1, len);
                let _ = send.finish();
                let _ = send.stopped().await;
            }
        }));
        Ok(())
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
        let text = match std::str::from_utf8(&message) {
            Ok(text) => bytestring::ByteString::from(text),
            Err(_) => {
                self.meter.message_received();
                return Some(End::Close(close(
                    CloseCode::Invalid,
                    "message is not UTF-8".into(),
                )));
            }
        };
        if self.mode == Transport::WtDatagrams {
            if let Ok(ask) = serde_json::from_str::<Resend>(&text) {
                if ask.op == "resend" {
                    // Not a message from the client: counted apart.
                    self.meter.resend_received();
                    self.resend(send, ask).await;
                    return None;
                }
            }
        }
        self.meter.message_received();
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

/// `{"op":"resend","since":S,"until":U}`: the events after `S` up to `U`, again.
#[derive(serde::Deserialize)]
struct Resend {
    op: String,
    since: u64,
    until: u64,
}

impl FeedSession {
    /// Answers a resend on its stream: the events asked for that are retained, as lines (a
    /// missed notice first if some are gone), at most `--max-batch` and about
    /// `--max-write-bytes` of them, within `--send-timeout`; then the stream's end.
    async fn resend(&mut self, mut send: SendStream, ask: Resend) {
        let config = &self.state.config;
        let max = (config.max_batch as usize).min(ask.until.saturating_sub(ask.since) as usize);
        let batch =
            match self
                .feed
                .since_within(ask.since, max, config.max_write_bytes as usize, |e| {
                    e.ws.len() + 1
                }) {
                Ok(batch) if max > 0 => Some(batch),
                _ => None,
            };
        let mut chunks = Vec::new();
        let (mut events, mut bytes, mut other) = (0, 0, 0);
        if let Some(batch) = &batch {
            if batch.missed > 0 {
                let notice = Bytes::from(missed_notice(batch));
                other += notice.len() as u64 + 1;
                chunks.push(notice);
                chunks.push(NEWLINE);
            }
            for e in batch.events.iter().filter(|e| e.seq <= ask.until) {
                chunks.push(e.ws.as_bytes().clone());
                chunks.push(NEWLINE);
                events += 1;
                bytes += e.ws.len() as u64 + 1;
            }
        }
        let written = tokio::time::timeout(config.send_timeout, async {
            send.write_all_chunks(&mut chunks).await?;
            let _ = send.finish();
            Ok::<_, web_transport_quinn::WriteError>(())
        })
        .await;
        if matches!(written, Ok(Ok(()))) {
            self.meter.bytes(other);
            if events > 0 {
                self.meter.delivered(events, bytes);
            }
        }
    }
}
