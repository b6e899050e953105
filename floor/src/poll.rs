//! `GET /poll` and `GET /long-poll`: the lower bound for a request/response transport, as
//! [`fanout`](crate::fanout) is for streams.
//!
//! Same envelope and cursor rule as the real server: `since=N` (events after N; none means
//! "from now on"), `200 {"events":[…],"next":M,"missed":K}` with at most [`MAX_BATCH`] events,
//! `409` with the head for a cursor ahead of it, and for a long poll `204` when `timeout_ms`
//! (default [`DEFAULT_HOLD`], at most [`MAX_HOLD`]) passes with nothing new. What the floor
//! does per request is the least that answers it: the head is parsed by `httparse` (in
//! [`http`]), and the answer is built in one buffer (head, then the events' JSON copied straight
//! out of the ring under its read lock, then the cursor) and written in one `write`. A held long
//! poll is the connection's own task waiting on the feed's head, a timer and its socket; a
//! client that hangs up while held ends it without an answer.

use std::{io::Write as _, sync::atomic::Ordering::Relaxed, time::Duration};

use bytes::BytesMut;
use tokio::io::AsyncReadExt as _;

use crate::{
    conn::{Shared, Stream},
    fanout,
    feed::{Feed, Pending},
    http::{self, send, Request, Response},
    stats::{Counters, Transport},
};

/// Most events in one answer: the real server's `--max-batch` default; `next` continues.
pub const MAX_BATCH: usize = 1_000;
/// How long a long poll is held without `timeout_ms`: the real server's `--long-poll-timeout`
/// default.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(25);
/// The largest `timeout_ms` accepted: the real server's `--long-poll-max` default.
pub const MAX_HOLD: Duration = Duration::from_secs(120);

const PREFIX: &[u8] = b"{\"events\":[";

/// Which poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Short,
    Long,
}

/// Answers one poll on `stream`. `Ok(true)`: the connection may serve its next request (whose
/// bytes, if any arrived while a long poll was held, are in `buf`).
pub async fn serve(
    stream: &mut impl Stream,
    buf: &mut BytesMut,
    shared: &Shared,
    req: &Request,
    kind: Kind,
    keep_alive: bool,
) -> bool {
    let counters = shared.stats.of(match kind {
        Kind::Short => Transport::ShortPoll,
        Kind::Long => Transport::LongPoll,
    });
    counters.requests.fetch_add(1, Relaxed);
    let answer = match kind {
        Kind::Short => short(&shared.feed, req, counters, keep_alive),
        Kind::Long => match long(stream, buf, shared, req, counters, keep_alive).await {
            Some(answer) => answer,
            // The client hung up while held.
            None => return false,
        },
    };
    let keep_alive = keep_alive && !answer.close;
    if send(stream, &answer.bytes).await.is_err() {
        return false;
    }
    counters.wrote(answer.bytes.len());
    keep_alive
}

/// A complete response, ready for one `write`.
struct Answer {
    bytes: Vec<u8>,
    /// The connection ends after it.
    close: bool,
}

impl Answer {
    fn refusal(res: &Response, keep_alive: bool) -> Self {
        let close = res.close || !keep_alive;
        Self {
            bytes: res.encode(!close),
            close,
        }
    }
}

fn short(feed: &Feed, req: &Request, counters: &Counters, keep_alive: bool) -> Answer {
    let cursor = match fanout::start_cursor(feed, "since", req.query("since")) {
        Ok(cursor) => cursor,
        Err(refusal) => return Answer::refusal(&refusal, keep_alive),
    };
    let (bytes, events) = feed.pending(cursor, MAX_BATCH, |p| encode(p, keep_alive));
    if events == 0 {
        counters.empty_responses.fetch_add(1, Relaxed);
    }
    counters.events_delivered.fetch_add(events, Relaxed);
    Answer {
        bytes,
        close: !keep_alive,
    }
}

/// `None` when the client hung up while held.
async fn long(
    stream: &mut impl Stream,
    buf: &mut BytesMut,
    shared: &Shared,
    req: &Request,
    counters: &Counters,
    keep_alive: bool,
) -> Option<Answer> {
    let hold = match hold(req.query("timeout_ms")) {
        Ok(hold) => hold,
        Err(refusal) => return Some(Answer::refusal(&refusal, keep_alive)),
    };
    let feed = &shared.feed;
    // Subscribed before the cursor is read: a publish in between still wakes this poll.
    let mut head = feed.subscribe();
    let cursor = match fanout::start_cursor(feed, "since", req.query("since")) {
        Ok(cursor) => cursor,
        Err(refusal) => return Some(Answer::refusal(&refusal, keep_alive)),
    };
    let _open = counters.open_guard();
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        head.borrow_and_update();
        if feed.stopping() {
            let res = Response::error(503, "the floor is shutting down").closing();
            return Some(Answer::refusal(&res, false));
        }
        let news = feed.pending(cursor, MAX_BATCH, |p| {
            (p.events.len() > 0 || p.missed > 0).then(|| encode(p, keep_alive))
        });
        if let Some((bytes, events)) = news {
            counters.events_delivered.fetch_add(events, Relaxed);
            return Some(Answer {
                bytes,
                close: !keep_alive,
            });
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return None },
            () = tokio::time::sleep_until(deadline) => {
                counters.empty_responses.fetch_add(1, Relaxed);
                let mut bytes = Vec::with_capacity(http::HEAD_ROOM);
                http::head(&mut bytes, 204, None, keep_alive);
                return Some(Answer { bytes, close: !keep_alive });
            }
            // Cancel-safe: nothing is read unless this branch wins. A pipelined request stays
            // in `buf` for the connection's next turn; EOF means the client is gone.
            read = stream.read_buf(buf) => match read {
                Ok(0) | Err(_) => return None,
                Ok(_) if buf.len() > http::MAX_HEAD => return None,
                Ok(_) => {}
            },
        }
    }
}

/// The hold time `timeout_ms` asks for.
fn hold(timeout_ms: Option<&str>) -> Result<Duration, Response> {
    let Some(raw) = timeout_ms else {
        return Ok(DEFAULT_HOLD);
    };
    let ms: u64 = raw.parse().map_err(|_| {
        Response::error(
            400,
            &format!("`timeout_ms` must be a non-negative integer, got {raw:?}"),
        )
    })?;
    if u128::from(ms) > MAX_HOLD.as_millis() {
        return Err(Response::error(
            400,
            &format!(
                "`timeout_ms` {ms} is over the floor's maximum of {}",
                MAX_HOLD.as_millis()
            ),
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// The `200` answer listing `p`'s events, and how many it carries.
fn encode(p: Pending<'_>, keep_alive: bool) -> (Vec<u8>, u64) {
    let count = p.events.len();
    let mut tail = [0u8; 64];
    let tail_len = {
        let mut w = &mut tail[..];
        // Two u64s and 21 bytes of JSON fit in 64.
        let _ = write!(w, "],\"next\":{},\"missed\":{}}}", p.next, p.missed);
        64 - w.len()
    };
    let json: usize = p.events.clone().map(|e| e.json.len()).sum();
    let body = PREFIX.len() + json + count.saturating_sub(1) + tail_len;
    let mut out = Vec::with_capacity(http::HEAD_ROOM + body);
    http::head(&mut out, 200, Some(("application/json", body)), keep_alive);
    out.extend_from_slice(PREFIX);
    for (i, e) in p.events.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&e.json);
    }
    out.extend_from_slice(&tail[..tail_len]);
    (out, count as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_one_buffer_with_the_exact_length() {
        let feed = Feed::new(10);
        feed.publish(r#"{"a":1}"#);
        feed.publish("2");
        let (bytes, events) = feed.pending(0, MAX_BATCH, |p| encode(p, true));
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(events, 2);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert!(!head.contains("Connection: close"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (v["next"].as_u64(), v["missed"].as_u64()),
            (Some(2), Some(0))
        );
        assert_eq!(v["events"][0]["data"]["a"], 1);
        assert_eq!(v["events"][1]["seq"], 2);
        let (bytes, events) = feed.pending(2, MAX_BATCH, |p| encode(p, false));
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(events, 0);
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n{\"events\":[],\"next\":2,\"missed\":0}"));
    }

    #[test]
    fn hold_defaults_and_refuses_what_the_server_refuses() {
        assert_eq!(hold(None).unwrap(), DEFAULT_HOLD);
        assert_eq!(hold(Some("250")).unwrap(), Duration::from_millis(250));
        assert_eq!(hold(Some("x")).unwrap_err().status, 400);
        assert_eq!(hold(Some("-1")).unwrap_err().status, 400);
        assert_eq!(hold(Some("120001")).unwrap_err().status, 400);
    }
}
