//! `GET /sse`: one `200` head with a chunked `text/event-stream` body, then the feed.
//!
//! The body is chunked like the real server's (actix frames every streamed write as an HTTP/1.1
//! chunk), so the bytes per event compare; here each event's chunk framing was done once at
//! publish time (see `encode`), so a write needs no per-connection chunk header. What the floor
//! leaves out is what the real server adds for browsers and proxies (`retry:` hint,
//! heartbeats, `X-Accel-Buffering`, overflow notices): they are the price the comparison
//! measures.

use std::{
    ops::ControlFlow,
    sync::{atomic::Ordering::Relaxed, Arc},
};

use crate::{
    conn::{Shared, Stream},
    encode,
    fanout::{self, End, Wire},
    feed::Event,
    http::{send, Request},
    stats::{Counters, Transport},
};
use bytes::Bytes;

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

struct Sse;

impl Wire for Sse {
    const TRANSPORT: Transport = Transport::Sse;

    fn pick(event: &Event) -> &Bytes {
        &event.sse
    }

    fn missed(missed: u64, up_to: u64) -> Bytes {
        encode::sse_missed_chunk(missed, up_to)
    }

    /// An SSE client sends nothing after its request; whatever comes is ignored, and EOF
    /// (seen by the loop) ends the stream.
    fn inbound(&mut self, _data: &[u8], _counters: &Counters) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    fn goodbye(_end: End) -> &'static [u8] {
        encode::CHUNKED_END
    }
}

/// Answers `req` on `stream`, then hands the stream to the fan-out loop.
pub async fn serve(mut stream: impl Stream, shared: &Arc<Shared>, req: Request) {
    let counters = &shared.stats.sse;
    counters.requests.fetch_add(1, Relaxed);
    let head = shared.feed.subscribe();
    // Like EventSource's reconnect, `Last-Event-ID` wins over the URL's `since`.
    let since = match req.last_event_id.as_deref().filter(|v| !v.is_empty()) {
        Some(id) => fanout::start_cursor(&shared.feed, "Last-Event-ID", Some(id)),
        None => fanout::start_cursor(&shared.feed, "since", req.query("since")),
    };
    let cursor = match since {
        Ok(cursor) => cursor,
        Err(refusal) => {
            if let Ok(n) = refusal.write(&mut stream, false).await {
                counters.wrote(n);
            }
            return;
        }
    };
    drop(req);
    if send(&mut stream, HEAD).await.is_err() {
        return;
    }
    counters.wrote(HEAD.len());
    fanout::spawn(stream, shared.clone(), cursor, head, Sse);
}
