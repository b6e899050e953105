//! Server-Sent Events: one long HTTP response, `text/event-stream`.
//!
//! The honest middle ground: push without an upgrade, over plain HTTP, with reconnection and
//! resume (`Last-Event-ID`) built into every browser's `EventSource`. One-way only, and proxies
//! buffer it unless told not to, hence `X-Accel-Buffering: no` and the comment heartbeat that
//! keeps idle timeouts from cutting a quiet stream.
//!
//! Gzip'd when the request accepts it (`--http-gzip`): one [`Stream`] codes its records for both
//! serving paths, from the events' shared deflate pieces ([`crate::compress`]), and ends a
//! normally ended stream with the gzip trailer so a decoder can check it.

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
    compress::{self, GzStream, HttpGzip, Member, Piece, GZIP_HEADER},
    error::ApiError,
    event::Event,
    feed::LagLimit,
    incoming::Incoming,
    shutdown::Turn,
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
    let feed = q.feed(&state)?;
    let cursor = start_cursor(&feed, last_event_id.or(q.since))?;
    let open = state.open(&meter, &req)?;

    let framing = Framing::of(&req);
    let gzip = compress::negotiate(state.config.http_gzip, req.headers());
    let (prelude, stream) = Stream::start(
        state.into_inner(),
        feed,
        meter,
        open,
        cursor,
        framing,
        false,
        gzip,
    );
    let coded = stream.gzip();
    let body = futures_util::stream::once(async move { Ok::<_, Infallible>(prelude) }).chain(
        futures_util::stream::unfold(stream, |mut s| async move {
            s.next_chunk().await.map(|chunk| (Ok(chunk.into_body()), s))
        }),
    );
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"));
    if coded {
        res.insert_header((header::CONTENT_ENCODING, "gzip"))
            .insert_header((header::VARY, "Accept-Encoding"));
    }
    if req.version() < actix_web::http::Version::HTTP_2 {
        // The stream is the connection's last response, on both paths: nothing pipelined
        // after it is answered (see the book, docs/src/reference/hardening.md, "Bad input").
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
    /// Body bytes in several shared pieces (gzip'd events), for the writer to frame as one
    /// chunk without copying them together.
    Parts(Vec<Bytes>),
    /// Events to write as their ready-made HTTP/1.1 chunks ([`Event::sse_chunk`]), one after
    /// another, copying nothing. Only with `preframed`.
    ///
    /// [`Event::sse_chunk`]: crate::event::Event::sse_chunk
    Events(Vec<Arc<Event>>),
}

impl Chunk {
    /// The body bytes, for actix-web's streaming body and HTTP/3's DATA frames (neither asks
    /// for `preframed`).
    pub(crate) fn into_body(self) -> Bytes {
        match self {
            Self::Body(bytes) => bytes,
            Self::Parts(parts) => parts.concat().into(),
            Self::Events(events) => events
                .iter()
                .map(|e| &e.sse[..])
                .collect::<Vec<_>>()
                .concat()
                .into(),
        }
    }
}

/// How a response's body is coded (`Content-Encoding`).
enum Coding {
    Identity,
    /// One gzip member of the events' shared pieces (`--http-gzip shared`).
    Shared(Member),
    /// The response's own compressor (`--http-gzip stream`).
    Stream(Box<GzStream>),
}

/// What the feed has for a response next, before any coding.
enum Plain {
    /// Events, after a `missed` record if the cursor fell out of retention.
    Events {
        missed: Option<Bytes>,
        events: Vec<Arc<Event>>,
    },
    /// A record of this response only (the `overflow` notice).
    Record(Bytes),
    /// The comment heartbeat.
    Heartbeat,
    /// The response ends normally (shutdown, after `overflow`): the body gets its end.
    End,
    /// The feed is gone without an end: the connection is dropped.
    Gone,
}

/// The heartbeat as a shared deflate piece, made once per process.
fn heartbeat_piece() -> &'static Piece {
    static PIECE: std::sync::OnceLock<Piece> = std::sync::OnceLock::new();
    PIECE.get_or_init(|| Piece::compressed(HEARTBEAT))
}

/// One SSE response's state: where it is in the feed, and when it last wrote. The same for
/// actix-web's streaming body and for the fast path's own socket loop.
pub(crate) struct Stream {
    state: Arc<AppState>,
    /// The feed it reads: the main one, or a named one (`?feed=`).
    feed: Arc<crate::feed::Feed>,
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
    coding: Coding,
    /// Set after the overflow record: the next poll ends the response.
    ended: bool,
    /// Set once the gzip trailer went out: the next poll ends the body.
    finished: bool,
    /// Hand out a lone event as its ready-made HTTP/1.1 chunk (the fast path frames nothing
    /// itself then); actix-web frames chunks on its own.
    preframed: bool,
    /// When the response ends once the server stops (`--shutdown-drain`).
    turn: Turn,
    _open: OpenGuard,
}

impl Stream {
    /// The stream for a response starting after `cursor`, coded as `gzip` says (the result of
    /// [`compress::negotiate`]), and its first chunk (the `retry:` setting and a comment),
    /// already counted on `meter`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        state: Arc<AppState>,
        feed: Arc<crate::feed::Feed>,
        meter: Meter,
        open: OpenGuard,
        cursor: u64,
        framing: Framing,
        preframed: bool,
        gzip: Option<HttpGzip>,
    ) -> (Bytes, Self) {
        // Each stream's own, between --sse-retry-min and --sse-retry-max: EventSource waits
        // exactly this long, so one shared value would bring every dropped client back at once.
        let retry = {
            use rand::Rng as _;
            let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            let config = &state.config;
            rand::thread_rng().gen_range(ms(config.sse_retry_min)..=ms(config.sse_retry_max))
        };
        let plain = Bytes::from(format!(
            "retry: {retry}\n: feedlab sse, resuming after seq {cursor}\n\n"
        ));
        let backlog = feed.head() - cursor;
        let mut stream = Self {
            lag: LagLimit::new(state.config.max_lag(), backlog),
            framing,
            coding: match gzip {
                None | Some(HttpGzip::Off) => Coding::Identity,
                Some(HttpGzip::Shared) => Coding::Shared(Member::new()),
                Some(HttpGzip::Stream) => Coding::Stream(Box::default()),
            },
            ended: false,
            finished: false,
            preframed,
            turn: Turn::default(),
            head: feed.subscribe(),
            feed,
            heartbeat: Box::pin(tokio::time::sleep(state.config.heartbeat)),
            last_write: Instant::now(),
            state,
            meter,
            cursor,
            _open: open,
        };
        let prelude = match &mut stream.coding {
            Coding::Identity => plain.clone(),
            Coding::Shared(member) => [
                &GZIP_HEADER[..],
                &member.push(&Piece::compressed(&plain))[..],
            ]
            .concat()
            .into(),
            Coding::Stream(gz) => {
                gz.write(&plain);
                gz.flush()
            }
        };
        stream.count(0, prelude.len(), plain.len() as u64);
        (prelude, stream)
    }

    pub(crate) fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Whether the body is gzip'd (`Content-Encoding: gzip`).
    pub(crate) fn gzip(&self) -> bool {
        !matches!(self.coding, Coding::Identity)
    }

    /// Counts a chunk of `len` body bytes carrying `events`, `raw` bytes before coding.
    fn count(&self, events: u64, len: usize, raw: u64) {
        let written = self.framing.chunk_len(len);
        self.meter
            .delivered_as(events, written, written - len as u64 + raw);
    }

    /// The next bytes to write: every pending event in one chunk, or a heartbeat; `None` ends
    /// the response (shutdown, or after the `overflow` notice).
    pub(crate) async fn next_chunk(&mut self) -> Option<Chunk> {
        let plain = if self.finished {
            Plain::End
        } else {
            self.next_plain().await
        };
        match plain {
            Plain::Gone => None,
            Plain::End => self.end(),
            Plain::Events { missed, events } => Some(self.code_events(missed, events)),
            Plain::Record(record) => Some(self.code_record(record)),
            Plain::Heartbeat => Some(match &mut self.coding {
                Coding::Shared(member) => {
                    let piece = member.push(heartbeat_piece());
                    self.count(0, piece.len(), HEARTBEAT.len() as u64);
                    Chunk::Body(piece)
                }
                _ => self.code_record(Bytes::from_static(HEARTBEAT)),
            }),
        }
    }

    /// The end of the body: a gzip member's trailer first, as a chunk of its own, so a decoder
    /// can check the CRC; then `None`, the end of the chunked body.
    fn end(&mut self) -> Option<Chunk> {
        let trailer = match &mut self.coding {
            _ if self.finished => None,
            Coding::Identity => None,
            Coding::Shared(member) => Some(Bytes::copy_from_slice(&member.trailer())),
            Coding::Stream(gz) => Some(gz.finish()),
        };
        match trailer {
            Some(trailer) => {
                self.finished = true;
                self.count(0, trailer.len(), 0);
                Some(Chunk::Body(trailer))
            }
            None => {
                self.meter.bytes(self.framing.end_len());
                None
            }
        }
    }

    /// Events (after a `missed` record), coded and counted: ready-made chunks or one body
    /// chunk without gzip, the events' shared pieces with `shared`, one flush with `stream`.
    fn code_events(&mut self, missed: Option<Bytes>, events: Vec<Arc<Event>>) -> Chunk {
        let n = events.len() as u64;
        match &mut self.coding {
            Coding::Identity => {
                if self.preframed && missed.is_none() {
                    let bytes = events.iter().map(|e| e.sse_chunk.len() as u64).sum();
                    self.meter.delivered(n, bytes);
                    return Chunk::Events(events);
                }
                let chunk = match (&missed, &events[..]) {
                    (None, [one]) => one.sse.clone(),
                    _ => {
                        let len = events.iter().map(|e| e.sse.len()).sum::<usize>() + 64;
                        let mut buf = BytesMut::with_capacity(len);
                        buf.put_slice(missed.as_deref().unwrap_or_default());
                        for e in &events {
                            buf.put_slice(&e.sse);
                        }
                        buf.freeze()
                    }
                };
                self.count(n, chunk.len(), chunk.len() as u64);
                Chunk::Body(chunk)
            }
            Coding::Shared(member) => {
                let mut parts = Vec::with_capacity(events.len() + 1);
                let mut raw = 0;
                if let Some(missed) = missed {
                    raw += missed.len() as u64;
                    parts.push(member.push(&Piece::compressed(&missed)));
                }
                for e in &events {
                    let piece = e.sse_gzip();
                    raw += piece.raw_len();
                    parts.push(member.push(piece));
                }
                let len = parts.iter().map(Bytes::len).sum();
                self.count(n, len, raw);
                Chunk::Parts(parts)
            }
            Coding::Stream(gz) => {
                let mut raw = 0;
                for data in missed.iter().chain(events.iter().map(|e| &e.sse)) {
                    raw += data.len() as u64;
                    gz.write(data);
                }
                let chunk = gz.flush();
                self.count(n, chunk.len(), raw);
                Chunk::Body(chunk)
            }
        }
    }

    /// A record of this response only, coded and counted.
    fn code_record(&mut self, record: Bytes) -> Chunk {
        let raw = record.len() as u64;
        let chunk = match &mut self.coding {
            Coding::Identity => record,
            Coding::Shared(member) => member.push(&Piece::compressed(&record)),
            Coding::Stream(gz) => {
                gz.write(&record);
                gz.flush()
            }
        };
        self.count(0, chunk.len(), raw);
        Chunk::Body(chunk)
    }

    /// What the feed has next for this response.
    async fn next_plain(&mut self) -> Plain {
        if self.ended {
            return Plain::End;
        }
        loop {
            if self.turn.due(&self.state.feed, &self.state.drain) {
                // Shutdown, this stream's turn: the body ends cleanly, and EventSource
                // resumes with Last-Event-ID (elsewhere, or after the restart).
                return Plain::End;
            }
            let config = &self.state.config;
            let Ok(batch) = self.feed.since_within(
                self.cursor,
                config.max_batch as usize,
                config.max_write_bytes as usize,
                |e| e.sse.len(),
            ) else {
                return Plain::Gone;
            };
            if let Some(behind) = self.lag.exceeded(batch.head - self.cursor) {
                // Too slow: say so and end; EventSource reconnects with Last-Event-ID and
                // resumes from the cursor, which is still retained.
                self.ended = true;
                return Plain::Record(Bytes::from(format!(
                    "event: overflow\ndata: {{\"behind\":{behind},\"next\":{},\"reason\":\"client too slow (--max-lag {})\"}}\n\n",
                    self.cursor, self.state.config.max_lag()
                )));
            }
            if !batch.events.is_empty() || batch.missed > 0 {
                self.cursor = batch.next;
                self.last_write = Instant::now();
                // The feed's terminal event goes out, then the body ends: EventSource
                // reconnects once with its id and is answered 204, which stops it.
                self.ended = self.feed.finished_at(self.cursor).is_some();
                let missed = (batch.missed > 0).then(|| {
                    let first = batch.events.first().map_or(batch.next, |e| e.seq - 1);
                    Bytes::from(format!(
                        "event: missed\ndata: {{\"missed\":{},\"next\":{first}}}\n\n",
                        batch.missed
                    ))
                });
                return Plain::Events {
                    missed,
                    events: batch.events,
                };
            }
            let every = self.state.config.heartbeat;
            tokio::select! {
                biased;
                // Shutdown: the feed wakes every waiter when it closes, and the turn is drawn.
                changed = self.head.changed() => if changed.is_err() { return Plain::Gone },
                () = self.turn.wait() => {}
                _ = &mut self.heartbeat => {
                    let due = self.last_write + every;
                    if due > Instant::now() {
                        // Events went out since the timer was set: a heartbeat is due later.
                        self.heartbeat.as_mut().reset(due);
                        continue;
                    }
                    self.last_write = Instant::now();
                    self.heartbeat.as_mut().reset(self.last_write + every);
                    return Plain::Heartbeat;
                }
            }
        }
    }
}
