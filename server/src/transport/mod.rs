//! The four transports, and what they share: the cursor, the client id, the JSON batch body.
//!
//! Every transport reads the same [`Feed`](crate::feed::Feed) with the same cursor rule
//! (`since=N` means events with seq > N; none means from now on), so any difference the load
//! generator measures comes from the transport itself.

pub mod echo;
pub mod input;
pub mod long_poll;
pub mod poll;
pub mod sse;
pub mod ws;

use actix_web::{http::StatusCode, HttpMessage, HttpRequest, HttpResponse};
use bytes::{BufMut, Bytes, BytesMut};

pub use feedlab_wire::Transport;

pub use crate::query::{parse_client_id, parse_u64, FeedQuery};

use crate::{
    accounting::Meter,
    compress::{self, Part},
    error::ApiError,
    feed::{Batch, Feed},
    incoming::Incoming,
    state::AppState,
};

/// The request's meter for `transport`: the request is counted, and the meter is left in the
/// request's extensions for the accounting wrapper to add the response head to.
pub fn metered(
    req: &HttpRequest,
    state: &AppState,
    transport: Transport,
    client: Option<&str>,
) -> Meter {
    let meter = state.accounting.meter(transport, client);
    meter.request_over(req.version());
    req.extensions_mut().insert(meter.clone());
    meter
}

/// A poll or long-poll answer as both paths send it: actix-web's handlers turn it into an
/// [`HttpResponse`] ([`PollAnswer::into_response`]), the fast path writes it to the socket
/// ([`crate::fast_path::poll`]). One builder, so the two cannot send different bytes, and the
/// one place the body's coding (gzip, `--http-gzip`) is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollAnswer {
    pub status: StatusCode,
    /// Header names in lower case, as HTTP/1.1 sends them.
    pub headers: &'static [(&'static str, &'static str)],
    pub body: Bytes,
    /// The body's length before compression (`body.len()` when it is not gzip'd).
    pub uncompressed: u64,
}

/// The headers of a batch: JSON, never cached.
const BATCH_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("cache-control", "no-store"),
];

/// The headers of a gzip'd batch.
const GZIP_BATCH_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("cache-control", "no-store"),
    ("content-encoding", "gzip"),
    ("vary", "Accept-Encoding"),
];

/// The headers of a long poll that ended with nothing new.
const NOTHING_HEADERS: &[(&str, &str)] = &[("cache-control", "no-store")];

impl PollAnswer {
    /// `batch` as the JSON body, gzip'd when `gzip` (what the request accepts, from
    /// [`PollAnswer::coding`]) says so and the body is at least `--http-gzip-min-bytes`.
    pub fn batch(batch: &Batch, gzip: Option<compress::HttpGzip>, state: &AppState) -> Self {
        let gzip = gzip.filter(|_| batch_len(batch) >= state.config.http_gzip_min_bytes);
        Self::ok(batch_body(batch, gzip))
    }

    /// `200` with a poll body, its headers as its coding says.
    fn ok(body: BatchBody) -> Self {
        Self {
            status: StatusCode::OK,
            headers: if body.gzip {
                GZIP_BATCH_HEADERS
            } else {
                BATCH_HEADERS
            },
            body: body.bytes,
            uncompressed: body.raw_len,
        }
    }

    /// A short poll's answer to `cursor`, and how many events it carries: without compression
    /// the body is copied straight from the feed under its read lock ([`Feed::lend_since`]),
    /// with it from a batch (whose events' shared gzip pieces it needs).
    ///
    /// [`Feed::lend_since`]: crate::feed::Feed::lend_since
    pub fn since(
        state: &AppState,
        feed: &Feed,
        cursor: u64,
        gzip: Option<compress::HttpGzip>,
    ) -> Result<(Self, usize), crate::feed::CursorAhead> {
        let max = state.config.max_batch as usize;
        if gzip.is_some() {
            let batch = feed.since(cursor, max)?;
            return Ok((Self::batch(&batch, gzip, state), batch.events.len()));
        }
        feed.lend_since(cursor, max, |lent| {
            let events = lent.events.len();
            let body = BatchBody::identity(json_body(lent.events, lent.next, lent.missed));
            (Self::ok(body), events)
        })
    }

    /// The body coding a request accepts under `--http-gzip`.
    pub fn coding(req: &impl Incoming, state: &AppState) -> Option<compress::HttpGzip> {
        compress::negotiate(state.config.http_gzip, req.headers())
    }

    /// `204 No Content`: a long poll's hold passed with nothing new.
    pub fn nothing() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            headers: NOTHING_HEADERS,
            body: Bytes::new(),
            uncompressed: 0,
        }
    }

    /// The answer as actix-web sends it; a gzip'd body's size before compression is left in
    /// the request's extensions for the accounting wrapper.
    pub fn into_response(self, req: &HttpRequest) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        for &header in self.headers {
            res.insert_header(header);
        }
        if self.uncompressed != self.body.len() as u64 {
            req.extensions_mut()
                .insert(crate::accounting::Uncompressed(self.uncompressed));
        }
        if self.status == StatusCode::NO_CONTENT {
            res.finish()
        } else {
            res.body(self.body)
        }
    }
}

/// A poll body as it goes on the wire.
pub struct BatchBody {
    pub bytes: Bytes,
    /// `Content-Encoding: gzip`.
    pub gzip: bool,
    /// Its length before compression (`bytes.len()` when not gzip'd).
    pub raw_len: u64,
}

impl BatchBody {
    /// `bytes` as they are, without a coding.
    fn identity(bytes: Bytes) -> Self {
        Self {
            raw_len: bytes.len() as u64,
            bytes,
            gzip: false,
        }
    }
}

/// [`json_batch`], coded as `gzip` says (the result of [`compress::negotiate`]): with `shared`,
/// one gzip member made of each event's shared piece ([`Event::json_gzip`]) with the brackets,
/// commas and cursor stored between them; with `stream`, the whole body through one compressor.
/// Identity when gzip would not be smaller. The one implementation of a gzip'd poll body, for
/// both serving paths ([`PollAnswer::batch`]).
///
/// [`Event::json_gzip`]: crate::event::Event::json_gzip
pub fn batch_body(batch: &Batch, gzip: Option<compress::HttpGzip>) -> BatchBody {
    let Some(mode @ (compress::HttpGzip::Shared | compress::HttpGzip::Stream)) = gzip else {
        return BatchBody::identity(json_batch(batch));
    };
    let tail = format!("],\"next\":{},\"missed\":{}}}", batch.next, batch.missed);
    let events = batch.events.iter().enumerate().flat_map(|(i, e)| {
        let comma = (i > 0).then_some(Part::Own(b","));
        let data = e.json();
        comma.into_iter().chain(std::iter::once(match mode {
            compress::HttpGzip::Shared => Part::Shared {
                data,
                piece: e.json_gzip(),
            },
            _ => Part::Own(data),
        }))
    });
    let parts = std::iter::once(Part::Own(b"{\"events\":["))
        .chain(events)
        .chain(std::iter::once(Part::Own(tail.as_bytes())));
    let (bytes, raw_len) = compress::member_body(mode, parts);
    if bytes.len() as u64 >= raw_len {
        // Events too small or too random for their pieces to win back gzip's framing: the
        // identity body is the smaller answer, and just as acceptable to the client.
        return batch_body(batch, None);
    }
    BatchBody {
        bytes,
        gzip: true,
        raw_len,
    }
}

/// The cursor a request starts from: its `since`, or the head ("from now on"). A reader at or
/// past a named feed's terminal event is told the feed ended ([`ApiError::FeedEnded`], a 204).
pub fn start_cursor(feed: &Feed, since: Option<u64>) -> Result<u64, ApiError> {
    let head = feed.head();
    let cursor = match since {
        Some(cursor) if cursor > head => return Err(ApiError::CursorAhead { cursor, head }),
        Some(cursor) => cursor,
        None => head,
    };
    match feed.finished_at(cursor) {
        Some(seq) => Err(ApiError::FeedEnded { seq }),
        None => Ok(cursor),
    }
}

/// The length of [`json_batch`], without making it.
pub fn batch_len(batch: &Batch) -> usize {
    let events: usize = batch.events.iter().map(|e| e.json().len()).sum();
    let commas = batch.events.len().saturating_sub(1);
    let tail = r#"],"next":,"missed":}"#.len()
        + batch.next.to_string().len()
        + batch.missed.to_string().len();
    r#"{"events":["#.len() + events + commas + tail
}

/// `{"events":[…],"next":M,"missed":K}`, assembled from the events' shared JSON bytes.
pub fn json_batch(batch: &Batch) -> Bytes {
    json_body(batch.events.iter(), batch.next, batch.missed)
}

/// The one assembly of a poll's JSON body, from a batch or from events lent by the feed.
fn json_body<'a>(
    events: impl Iterator<Item = &'a std::sync::Arc<crate::event::Event>> + Clone,
    next: u64,
    missed: u64,
) -> Bytes {
    let len: usize = events.clone().map(|e| e.json().len() + 1).sum();
    let mut body = BytesMut::with_capacity(len + 64);
    body.put_slice(b"{\"events\":[");
    for (i, e) in events.enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.put_slice(e.json());
    }
    use std::fmt::Write as _;
    let _ = write!(body, "],\"next\":{next},\"missed\":{missed}}}");
    body.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Feed;

    #[test]
    fn json_batch_is_valid_json_with_the_events() {
        let feed = Feed::new(10);
        feed.publish(r#"{"a":1}"#).unwrap();
        feed.publish(r#""two""#).unwrap();
        let body = json_batch(&feed.since(0, 10).unwrap());
        assert_eq!(batch_len(&feed.since(0, 10).unwrap()), body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["events"][1]["data"], "two");
        assert_eq!(v["next"], 2);
        assert_eq!(v["missed"], 0);
        let empty = json_batch(&feed.since(2, 10).unwrap());
        assert_eq!(&empty[..], br#"{"events":[],"next":2,"missed":0}"#);
        assert_eq!(batch_len(&feed.since(2, 10).unwrap()), empty.len());
    }

    #[test]
    fn a_gzip_body_decodes_to_the_json_and_is_never_bigger() {
        use std::io::Read as _;
        let feed = Feed::new(100);
        for i in 0..20 {
            feed.publish(&format!(
                r#"{{"text":"{}"}}"#,
                "the build is green ".repeat(i)
            ))
            .unwrap();
        }
        for mode in [compress::HttpGzip::Shared, compress::HttpGzip::Stream] {
            let batch = feed.since(0, 100).unwrap();
            let body = batch_body(&batch, Some(mode));
            assert!(body.gzip, "{mode:?}");
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body.bytes[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, json_batch(&batch));
            assert_eq!(body.raw_len, out.len() as u64);
            // One tiny event: gzip's header, trailer (and per-piece flushes) outweigh the gain.
            let tiny = feed.since(0, 1).unwrap();
            let body = batch_body(&tiny, Some(mode));
            assert!(!body.gzip, "{mode:?}");
            assert_eq!(body.bytes, json_batch(&tiny));
        }
    }
}
