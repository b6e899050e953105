//! Deciding, from a peek at a connection's first bytes, whether the fast path takes it.
//!
//! Only a peek: nothing is consumed until the fast path has accepted the request, so every
//! connection it declines reaches actix-web exactly as it arrived. A head that is not all there
//! in the first peek (slow or huge) is declined too; actix-web has the timers for those.

use std::{net::IpAddr, time::Duration};

use actix_web::http::{
    header::{HeaderMap, HeaderName, HeaderValue},
    Version,
};
use tokio::net::TcpStream;

use crate::incoming::Incoming;

/// How much of a connection's first bytes are looked at. A streaming request's head is a few
/// hundred bytes; anything longer is left to actix-web.
pub const PEEK_BYTES: usize = 4096;

/// The most headers a fast-path request may have.
const MAX_HEADERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sse,
    Ws,
    Echo,
}

/// A parsed `GET /sse` or `GET /ws` request head.
#[derive(Debug)]
pub struct Head {
    pub kind: Kind,
    query: String,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    /// Bytes of the head on the wire, to consume once the request is accepted.
    pub len: usize,
}

/// What a peek found.
#[derive(Debug)]
pub enum Peeked {
    /// A complete head of a request the fast path serves.
    Fast(Head),
    /// Anything else: actix-web serves it.
    Actix,
    /// Nothing arrived within the request timeout, or the peer left.
    Gone,
}

/// Waits up to `timeout` for the first bytes, and classifies them.
pub async fn peek(stream: &TcpStream, timeout: Duration) -> Peeked {
    // On the heap, and dropped before the connection is served: a buffer in the connection's
    // future would stay allocated for as long as the connection lives.
    let mut buf = vec![0u8; PEEK_BYTES];
    match tokio::time::timeout(timeout, stream.peek(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => Peeked::Gone,
        Ok(Ok(n)) => match parse(&buf[..n], stream.peer_addr().ok().map(|a| a.ip())) {
            Some(head) => Peeked::Fast(head),
            None => Peeked::Actix,
        },
    }
}

/// The head in `bytes`, if it is a complete HTTP/1.1 `GET /sse` or WebSocket upgrade on `/ws`.
pub fn parse(bytes: &[u8], peer: Option<IpAddr>) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    if req.method != Some("GET") || req.version != Some(1) {
        return None;
    }
    let target = req.path?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        map.append(name, value);
    }
    let kind = match path {
        "/sse" => Kind::Sse,
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
        assert_eq!(kind("GET /poll HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(
            kind("GET /ws/echo HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
            Some(Kind::Echo)
        );
        assert_eq!(kind("GET /ws/echo HTTP/1.1\r\n\r\n"), None);
        assert_eq!(kind("POST /sse HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(kind("GET /sse HTTP/1.0\r\nHost: x\r\n\r\n"), None);
        assert_eq!(kind("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(kind("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), None);
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
