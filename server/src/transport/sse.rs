//! Server-Sent Events: one long HTTP response, `text/event-stream`.
//!
//! The honest middle ground: push without an upgrade, over plain HTTP, with reconnection and
//! resume (`Last-Event-ID`) built into every browser's `EventSource`. One-way only, and proxies
//! buffer it unless told not to, hence `X-Accel-Buffering: no` and the comment heartbeat that
//! keeps idle timeouts from cutting a quiet stream.

use std::{convert::Infallible, pin::Pin, sync::Arc};

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use bytes::{BufMut, Bytes, BytesMut};
use tokio::{
    sync::watch,
    time::{Instant, Sleep},
};

use super::{metered, parse_u64, start_cursor, FeedQuery, Transport};
use crate::{
    accounting::{Framing, Meter, OpenGuard},
    error::ApiError,
    event::Event,
    feed::LagLimit,
    incoming::Incoming,
    state::AppState,
};

const HEARTBEAT: &[u8] = b": heartbeat\n\n";

pub async fn handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let upgrade = req
        .headers()
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if upgrade || req.headers().contains_key(header::UPGRADE) {
        // actix-http would treat the connection as upgraded and frame nothing; a stream is not
        // an upgrade, on either path.
        return Err(ApiError::BadRequest(
            "GET /sse is not an upgrade: drop Upgrade and `Connection: upgrade` (WebSockets are on /ws)".into(),
        ));
    }
    let q = FeedQuery::from_request(&req)?;
    q.authorize(&req, &state)?;
    let last_event_id = last_event_id(&req)?;
    let meter = metered(&req, &state, Transport::Sse, q.client.as_deref());
    let cursor = start_cursor(&state, last_event_id.or(q.since))?;
    let open = state.open(&meter, &req)?;

    let framing = Framing::of(&req);
    let (prelude, stream) = Stream::start(state.into_inner(), meter, open, cursor, framing, false);
    let body = futures_util::stream::once(async move { Ok::<_, Infallible>(prelude) }).chain(
        futures_util::stream::unfold(stream, |mut s| async move {
            s.next_chunk().await.map(|chunk| (Ok(chunk.into_body()), s))
        }),
    );
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"));
    if req.version() < actix_web::http::Version::HTTP_2 {
        // The stream is the connection's last response, on both paths: nothing pipelined
        // after it is answered (see the README, "Bad input").
        res.force_close();
    }
    let mut res = res.streaming(body);
    if framing == Framing::Eof {
        // HTTP/1.0 has no chunked coding (RFC 9112 section 7.1): the body ends with the
        // connection.
        res.head_mut().no_chunking(true);
    }
    Ok(res)
}

use futures_util::StreamExt as _;

/// The cursor `EventSource` sends when it reconnects (`Last-Event-ID`); it wins over the URL's
/// `since`, which is the cursor of the first connection.
pub(crate) fn last_event_id(req: &impl Incoming) -> Result<Option<u64>, ApiError> {
    match req.headers().get("last-event-id") {
        Some(v) => {
            let v = v.to_str().unwrap_or("\u{fffd}");
            if v.trim().is_empty() {
                Ok(None)
            } else {
                Some(parse_u64("Last-Event-ID", v)).transpose()
            }
        }
        None => Ok(None),
    }
}

/// What an SSE response writes next.
pub(crate) enum Chunk {
    /// Body bytes, for the writer to frame as one chunk.
    Body(Bytes),
    /// Events to write as their ready-made HTTP/1.1 chunks ([`Event::sse_chunk`]), one after
    /// another, copying nothing. Only with `preframed`.
    ///
    /// [`Event::sse_chunk`]: crate::event::Event::sse_chunk
    Events(Vec<Arc<Event>>),
}

impl Chunk {
    fn body(bytes: Bytes) -> Self {
        Self::Body(bytes)
    }

    /// The body bytes, for actix-web's streaming body (which never asks for `preframed`).
    fn into_body(self) -> Bytes {
        match self {
            Self::Body(bytes) => bytes,
            Self::Events(events) => events
                .iter()
                .map(|e| &e.sse[..])
                .collect::<Vec<_>>()
                .concat()
                .into(),
        }
    }
}

/// One SSE response's state: where it is in the feed, and when it last wrote. The same for
/// actix-web's streaming body and for the fast path's own socket loop.
pub(crate) struct Stream {
    state: Arc<AppState>,
    meter: Meter,
    head: watch::Receiver<u64>,
    cursor: u64,
    /// Made once per response: waiting on the same timer across events costs no timer
    /// registration per event.
    heartbeat: Pin<Box<Sleep>>,
    /// When the last bytes were handed out; the heartbeat timer is moved on lazily, when it
    /// fires, not on every event.
    last_write: Instant,
    lag: LagLimit,
    framing: Framing,
    /// Set after the overflow record: the next poll ends the response.
    ended: bool,
    /// Hand out a lone event as its ready-made HTTP/1.1 chunk (the fast path frames nothing
    /// itself then); actix-web frames chunks on its own.
    preframed: bool,
    _open: OpenGuard,
}

impl Stream {
    /// The stream for a response starting after `cursor`, and its first chunk (the `retry:`
    /// setting and a comment), already counted on `meter`.
    pub(crate) fn start(
        state: Arc<AppState>,
        meter: Meter,
        open: OpenGuard,
        cursor: u64,
        framing: Framing,
        preframed: bool,
    ) -> (Bytes, Self) {
        let prelude = Bytes::from(format!(
            "retry: {}\n: feedlab sse, resuming after seq {cursor}\n\n",
            state.config.sse_retry.as_millis()
        ));
        meter.bytes(framing.chunk_len(prelude.len()));
        let backlog = state.feed.head() - cursor;
        let stream = Self {
            lag: LagLimit::new(state.config.max_lag(), backlog),
            framing,
            ended: false,
            preframed,
            head: state.feed.subscribe(),
            heartbeat: Box::pin(tokio::time::sleep(state.config.heartbeat)),
            last_write: Instant::now(),
            state,
            meter,
            cursor,
            _open: open,
        };
        (prelude, stream)
    }

    pub(crate) fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The next bytes to write: every pending event in one chunk, or a heartbeat; `None` ends
    /// the response (shutdown).
    pub(crate) async fn next_chunk(&mut self) -> Option<Chunk> {
        if self.ended {
            self.meter.bytes(self.framing.end_len());
            return None;
        }
        loop {
            let config = &self.state.config;
            let batch = self
                .state
                .feed
                .since_within(
                    self.cursor,
                    config.max_batch as usize,
                    config.max_write_bytes as usize,
                    |e| e.sse.len(),
                )
                .ok()?;
            if let Some(behind) = self.lag.exceeded(batch.head - self.cursor) {
                // Too slow: say so and end; EventSource reconnects with Last-Event-ID and
                // resumes from the cursor, which is still retained.
                self.ended = true;
                let record = Bytes::from(format!(
                    "event: overflow\ndata: {{\"behind\":{behind},\"next\":{},\"reason\":\"client too slow (--max-lag {})\"}}\n\n",
                    self.cursor, self.state.config.max_lag()
                ));
                self.meter.bytes(self.framing.chunk_len(record.len()));
                return Some(Chunk::body(record));
            }
            if !batch.events.is_empty() || batch.missed > 0 {
                self.cursor = batch.next;
                self.last_write = Instant::now();
                if self.preframed && batch.missed == 0 {
                    let bytes = batch.events.iter().map(|e| e.sse_chunk.len() as u64).sum();
                    self.meter.delivered(batch.events.len() as u64, bytes);
                    return Some(Chunk::Events(batch.events));
                }
                let chunk = if batch.missed == 0 && batch.events.len() == 1 {
                    batch.events[0].sse.clone()
                } else {
                    let len = batch.events.iter().map(|e| e.sse.len()).sum::<usize>() + 64;
                    let mut buf = BytesMut::with_capacity(len);
                    if batch.missed > 0 {
                        use std::fmt::Write as _;
                        let first = batch.events.first().map_or(batch.next, |e| e.seq - 1);
                        let _ = write!(
                            buf,
                            "event: missed\ndata: {{\"missed\":{},\"next\":{first}}}\n\n",
                            batch.missed
                        );
                    }
                    for e in &batch.events {
                        buf.put_slice(&e.sse);
                    }
                    buf.freeze()
                };
                self.meter.delivered(
                    batch.events.len() as u64,
                    self.framing.chunk_len(chunk.len()),
                );
                return Some(Chunk::body(chunk));
            }
            let every = self.state.config.heartbeat;
            if self.state.feed.is_closed() {
                // Shutdown (the feed wakes every waiter when it closes).
                self.meter.bytes(self.framing.end_len());
                return None;
            }
            tokio::select! {
                biased;
                changed = self.head.changed() => if changed.is_err() { return None },
                _ = &mut self.heartbeat => {
                    let due = self.last_write + every;
                    if due > Instant::now() {
                        // Events went out since the timer was set: a heartbeat is due later.
                        self.heartbeat.as_mut().reset(due);
                        continue;
                    }
                    self.last_write = Instant::now();
                    self.heartbeat.as_mut().reset(self.last_write + every);
                    self.meter.bytes(self.framing.chunk_len(HEARTBEAT.len()));
                    return Some(Chunk::body(Bytes::from_static(HEARTBEAT)));
                }
            }
        }
    }
}
