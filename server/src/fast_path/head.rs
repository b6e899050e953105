//! Deciding, from a peek at a connection's next request head, whether the fast path takes it.
//!
//! Only a peek: nothing is consumed until the fast path has accepted the request, so every
//! connection it declines reaches actix-web exactly as it arrived (or, on a keep-alive
//! connection the fast path answered before, with everything after its last answer).
//!
//! One definition of a valid request: the fast path takes a request only when it is sure
//! actix-web would accept it the same way (see [`parse`]); anything else, including anything
//! these checks are unsure of, goes to actix-web, whose parser and handlers answer it. And one
//! request-head deadline: the peek waits for the whole head, up to `--request-timeout` from
//! the connection's start, and answers 408 itself when it passes; a connection it hands over
//! carries its complete head (or a broken or oversized one), which actix-web answers at once,
//! so the two timers never add up. Between requests of a keep-alive connection the peek waits
//! up to `--keep-alive` for the next one to start, then `--request-timeout` for its head.

use std::{mem::MaybeUninit, net::IpAddr, time::Duration};

use actix_web::http::{
    header::{self, HeaderMap, HeaderName, HeaderValue},
    uri::Authority,
    Version,
};
use tokio::{io::ReadBuf, time::Instant};

use super::conn::Conn;
use crate::incoming::Incoming;

/// The first peek looks at this much; a longer head is peeked again with more room.
pub const PEEK_BYTES: usize = 4096;

/// The most a peek looks at: actix-http's own limit on a request head (its decoder refuses a
/// longer one), so a head that is still incomplete here is one actix-web refuses at once.
pub const MAX_HEAD_BYTES: usize = 131_072;

/// The most headers a fast-path request may have.
const MAX_HEADERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sse,
    Ws,
    Echo,
    Poll,
    LongPoll,
    Publish,
}

/// A parsed request head the fast path serves.
#[derive(Debug)]
pub struct Head {
    pub kind: Kind,
    query: String,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    /// Bytes of the head on the wire, to consume once the request is accepted.
    pub len: usize,
    /// Bytes of the body that follows the head (`Content-Length`; only `POST /publish` has one).
    pub body_len: usize,
    /// Whether the peek saw nothing after the head: once the head is read, the socket holds
    /// nothing that the peek did not see (see [`super::consume`]).
    pub alone: bool,
}

/// What a peek found.
#[derive(Debug)]
pub enum Peeked {
    /// A complete head of a request the fast path serves.
    Fast(Head),
    /// Anything else: actix-web serves it.
    Actix,
    /// The head was not all there within the request timeout: answer 408.
    TimedOut,
    /// A keep-alive connection sent nothing more within `--keep-alive`: close it.
    Idle,
    /// The peer left.
    Gone,
}

/// What a peek at the bytes so far says.
enum Verdict {
    Done(Option<Head>),
    /// The head is incomplete.
    More,
}

/// How long a peek waits.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// A new connection: its whole first head within `--request-timeout` of its start.
    First { request_timeout: Duration },
    /// Between requests: the next one starts within `keep_alive` (or the connection is idle
    /// and closed), and its head is complete within `request_timeout` of its first bytes.
    Next {
        keep_alive: Duration,
        request_timeout: Duration,
    },
}

/// Waits for a complete request head from `peer`, and classifies it.
pub async fn peek(stream: &mut impl Conn, peer: Option<IpAddr>, wait: Wait) -> Peeked {
    let start = Instant::now();
    let (first_bytes_by, head_timeout) = match wait {
        Wait::First { request_timeout } => (start + request_timeout, None),
        Wait::Next {
            keep_alive,
            request_timeout,
        } => (start + keep_alive, Some(request_timeout)),
    };
    // The common case, a whole head in the first look, peeked into a buffer on the stack that
    // exists only while the socket is polled: waiting holds no buffer at all.
    let first = std::future::poll_fn(|cx| {
        let mut buf = [MaybeUninit::<u8>::uninit(); PEEK_BYTES];
        let mut buf = ReadBuf::uninit(&mut buf);
        stream.poll_peek(cx, &mut buf).map(|read| match read {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(match verdict(buf.filled(), peer) {
                Verdict::Done(head) => Ok(head.map(|h| h.seen(n, PEEK_BYTES))),
                Verdict::More => Err(n),
            }),
        })
    });
    let n = match tokio::time::timeout_at(first_bytes_by, first).await {
        Err(_) if head_timeout.is_some() => return Peeked::Idle,
        Err(_) => return Peeked::TimedOut,
        Ok(None) => return Peeked::Gone,
        Ok(Some(Ok(Some(head)))) => return Peeked::Fast(head),
        Ok(Some(Ok(None))) => return Peeked::Actix,
        Ok(Some(Err(n))) => n,
    };
    let deadline = head_timeout.map_or(first_bytes_by, |t| Instant::now() + t);
    // Boxed: a head split over packets is rare, and its two timers would otherwise be part of
    // every connection's future (and its memory) for the connection's whole life.
    Box::pin(peek_rest(stream, peer, deadline, n)).await
}

/// The rest of a head the first peek saw `seen` bytes of: peeked again with more room, or
/// after a pause (a head split over packets, or a slow client), until `deadline`.
async fn peek_rest(
    stream: &mut impl Conn,
    peer: Option<IpAddr>,
    deadline: Instant,
    seen: usize,
) -> Peeked {
    let mut size = if seen == PEEK_BYTES {
        PEEK_BYTES * 2
    } else {
        PEEK_BYTES
    };
    let mut pause = Duration::from_millis(2);
    if seen < PEEK_BYTES
        && tokio::time::timeout_at(deadline, tokio::time::sleep(pause))
            .await
            .is_err()
    {
        return Peeked::TimedOut;
    }
    loop {
        // On the heap, and dropped before waiting again or serving: a buffer in the
        // connection's future would stay allocated for as long as the connection lives.
        let mut buf = vec![0u8; size];
        let peeked = std::future::poll_fn(|cx| stream.poll_peek(cx, &mut ReadBuf::new(&mut buf)));
        let n = match tokio::time::timeout_at(deadline, peeked).await {
            Err(_) => return Peeked::TimedOut,
            Ok(Ok(0)) | Ok(Err(_)) => return Peeked::Gone,
            Ok(Ok(n)) => n,
        };
        match verdict(&buf[..n], peer) {
            Verdict::Done(Some(head)) => return Peeked::Fast(head.seen(n, size)),
            Verdict::Done(None) => return Peeked::Actix,
            Verdict::More if n >= MAX_HEAD_BYTES => return Peeked::Actix,
            Verdict::More => {}
        }
        drop(buf);
        if n == size {
            size = (size * 2).min(MAX_HEAD_BYTES);
            continue;
        }
        // A peek does not consume, so the socket stays readable: wait a little, then look
        // again (a head split over packets, or a slow client).
        if tokio::time::timeout_at(deadline, tokio::time::sleep(pause))
            .await
            .is_err()
        {
            return Peeked::TimedOut;
        }
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn verdict(bytes: &[u8], peer: Option<IpAddr>) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Partial) => Verdict::More,
        Ok(httparse::Status::Complete(len)) => Verdict::Done(judge(&req, len, peer)),
        Err(_) => Verdict::Done(None),
    }
}

/// The head in `bytes`, if it is a complete HTTP/1.1 `GET /sse`, WebSocket upgrade on `/ws`
/// or `/ws/echo`, `GET /poll`, `GET /long-poll` or `POST /publish` that actix-web would take
/// the same way: one `Host` naming an authority, no header twice, no `Transfer-Encoding`, no
/// `Expect`, a body only on a publish (a plain `Content-Length`, no `Content-Encoding`), only
/// plain characters in the target and in header values, no upgrade on `/sse`. `None` for
/// anything else: actix-web decides.
pub fn parse(bytes: &[u8], peer: Option<IpAddr>) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => judge(&req, len, peer),
        _ => None,
    }
}

/// [`parse`]'s judgement of a complete head of `len` bytes.
fn judge(req: &httparse::Request<'_, '_>, len: usize, peer: Option<IpAddr>) -> Option<Head> {
    let post = match req.method {
        Some("GET") => false,
        Some("POST") => true,
        _ => return None,
    };
    if req.version != Some(1) {
        return None;
    }
    let target = req.path?;
    if !target.bytes().all(plain_target_byte) {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if map.contains_key(&name)
            || !h
                .value
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return None;
        }
        map.append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    let host = map.get(header::HOST)?.to_str().ok()?;
    if host.contains('@') || host.parse::<Authority>().is_err() {
        return None;
    }
    if map.contains_key(header::TRANSFER_ENCODING) || map.contains_key(header::EXPECT) {
        return None;
    }
    let body_len = match map.get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => Some(plain_length(value.as_bytes())?),
    };
    let upgrade = map.contains_key(header::UPGRADE);
    let kind = match path {
        // A publish's body is read here only when its length is given and it is not encoded
        // (actix-web refuses an encoded one with the reason); its connection stays open.
        "/publish"
            if post
                && body_len.is_some()
                && !upgrade
                && plain_keep_alive(&map)
                && !map.contains_key(header::CONTENT_ENCODING) =>
        {
            Kind::Publish
        }
        _ if post || body_len.is_some() => return None,
        "/sse" if !upgrade && !connection_has(&map, "upgrade") => Kind::Sse,
        // A poll is answered on a connection that stays open: only without any `Connection`
        // option but keep-alive (`close` and the rest are actix-web's to honour).
        "/poll" | "/long-poll" if !upgrade && plain_keep_alive(&map) => {
            if path == "/poll" {
                Kind::Poll
            } else {
                Kind::LongPoll
            }
        }
        "/ws" if wants_websocket(&map) => Kind::Ws,
        "/ws/echo" if wants_websocket(&map) => Kind::Echo,
        _ => return None,
    };
    Some(Head {
        kind,
        query: query.to_owned(),
        headers: map,
        peer,
        len,
        body_len: body_len.unwrap_or(0),
        alone: false,
    })
}

impl Head {
    /// The head, as found by a peek that saw `peeked` bytes through a buffer of `room`: a full
    /// buffer may have left bytes unseen.
    fn seen(mut self, peeked: usize, room: usize) -> Self {
        self.alone = peeked == self.len + self.body_len && peeked < room;
        self
    }
}

/// A `Content-Length` as actix-web reads one without doubt: decimal digits only, short enough
/// that it cannot overflow.
fn plain_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Characters a request target may carry here: RFC 3986's unreserved, sub-delims, `:`, `@`,
/// `/`, `?` and `%`. Anything else (`<`, `>`, `"`, `{`, `\`, …) is actix-web's to judge.
fn plain_target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether every `Connection` option is `keep-alive` (HTTP/1.1's default), or there is none.
fn plain_keep_alive(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .all(|v| match v.to_str() {
            Ok(v) => v
                .split(',')
                .all(|t| t.trim().eq_ignore_ascii_case("keep-alive")),
            Err(_) => false,
        })
}

fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(actix_web::http::header::UPGRADE)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("websocket"))
}

impl Incoming for Head {
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn query_string(&self) -> &str {
        &self.query
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer
    }

    fn version(&self) -> Version {
        Version::HTTP_11
    }

    fn authority(&self) -> Option<&str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(raw: &str) -> Option<Kind> {
        parse(raw.as_bytes(), None).map(|h| h.kind)
    }

    #[test]
    fn takes_only_complete_http11_streaming_gets() {
        assert_eq!(
            kind("GET /sse?since=3 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Kind::Sse)
        );
        let ws = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(kind(ws), Some(Kind::Ws));
        // Incomplete, other paths, other methods, HTTP/1.0, /ws without an upgrade: actix-web.
        assert_eq!(kind("GET /sse HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(kind("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(
            kind("GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"),
            Some(Kind::Echo)
        );
        assert_eq!(kind("GET /ws/echo HTTP/1.1\r\n\r\n"), None);
        assert_eq!(kind("POST /sse HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(kind("GET /sse HTTP/1.0\r\nHost: x\r\n\r\n"), None);
        assert_eq!(kind("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(kind("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), None);
    }

    #[test]
    fn takes_polls_that_keep_the_connection_plainly_open() {
        let poll = |extra: &str| {
            kind(&format!(
                "GET /poll?since=1 HTTP/1.1\r\nHost: x\r\n{extra}\r\n"
            ))
        };
        assert_eq!(poll(""), Some(Kind::Poll));
        assert_eq!(poll("Connection: keep-alive\r\n"), Some(Kind::Poll));
        assert_eq!(
            kind("GET /long-poll?timeout_ms=5 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Kind::LongPoll)
        );
        for refused in [
            "Connection: close\r\n",
            "Connection: keep-alive, Upgrade\r\n",
            "Upgrade: websocket\r\n",
            "Content-Length: 0\r\n",
        ] {
            assert_eq!(poll(refused), None, "{refused:?}");
        }
        assert_eq!(kind("POST /poll HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(kind("GET /poll HTTP/1.0\r\nHost: x\r\n\r\n"), None);
        assert_eq!(kind("GET /poll/ HTTP/1.1\r\nHost: x\r\n\r\n"), None);
    }

    #[test]
    fn takes_publishes_with_a_plain_length_on_a_connection_kept_open() {
        let publish = |extra: &str| {
            parse(
                format!("POST /publish HTTP/1.1\r\nHost: x\r\n{extra}\r\n{{}}").as_bytes(),
                None,
            )
        };
        let head = publish("Content-Length: 2\r\nIdempotency-Key: k\r\n").unwrap();
        assert_eq!((head.kind, head.body_len), (Kind::Publish, 2));
        assert_eq!(head.len + 2, head.len + head.body_len);
        assert_eq!(
            publish("Content-Length: 0\r\nConnection: keep-alive\r\n").map(|h| h.kind),
            Some(Kind::Publish)
        );
        for refused in [
            "",                                            // no length: actix-web's 411 or its own
            "Content-Length: +2\r\n",                      // not plain digits
            "Content-Length: 2 \r\nContent-Length: 2\r\n", // twice
            "Content-Length: 1234567890123456789\r\n",     // too long to be sure of
            "Transfer-Encoding: chunked\r\n",
            "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: 2\r\nExpect: 100-continue\r\n",
            "Content-Length: 2\r\nContent-Encoding: gzip\r\n", // actix-web's 415
            "Content-Length: 2\r\nConnection: close\r\n",
            "Content-Length: 2\r\nUpgrade: websocket\r\n",
        ] {
            assert!(publish(refused).is_none(), "{refused:?}");
        }
        // Other methods and paths with bodies, and a publish by GET or HTTP/1.0: actix-web.
        for raw in [
            "POST /poll HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "GET /publish HTTP/1.1\r\nHost: x\r\n\r\n",
            "PUT /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "POST /publish HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "POST /sse HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert_eq!(kind(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn anything_actix_web_might_judge_differently_is_left_to_it() {
        let sse = |extra: &str| kind(&format!("GET /sse HTTP/1.1\r\n{extra}\r\n"));
        assert_eq!(sse("Host: x\r\n"), Some(Kind::Sse));
        for refused in [
            "",                       // no Host
            "Host: x\r\nHost: y\r\n", // two Hosts
            "Host: a b\r\n",          // not an authority
            "Host: u@x\r\n",          // userinfo
            "Host: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n",
            "Host: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
            "Host: x\r\nContent-Length: -1\r\n",
            "Host: x\r\nTransfer-Encoding: gzip, chunked, xyz\r\n",
            "Host: x\r\nExpect: 100-continue\r\n",
            "Host: x\r\nAccept: a\r\nAccept: b\r\n", // any header twice
            "Host: x\r\nX: caf\u{e9}\r\n",           // obs-text
            "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        ] {
            assert_eq!(sse(refused), None, "{refused:?}");
        }
        for target in [
            "/sse?<",
            "/sse?>",
            "/sse?\"",
            "/sse?{}",
            "/sse?a\\b",
            "/sse#x",
        ] {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(kind(&raw), None, "{target}");
        }
        let ws_te = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Transfer-Encoding: chunked\r\n\r\n";
        assert_eq!(kind(ws_te), None);
    }

    #[test]
    fn keeps_the_query_and_the_head_length() {
        let raw = "GET /sse?since=3&client=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 9\r\n\r\nextra";
        let head = parse(raw.as_bytes(), None).unwrap();
        assert_eq!(head.query_string(), "since=3&client=a");
        assert_eq!(head.len, raw.len() - "extra".len());
        assert_eq!(head.headers().get("last-event-id").unwrap(), "9");
    }
}
