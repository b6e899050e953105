//! HTTP/1.1 in the least code that is still correct: `httparse` reads request heads, bodies are
//! read by `Content-Length`, and responses are written whole, in one `write`.
//!
//! The floor is measured, not browsed, so this is deliberately narrow: no chunked request
//! bodies (411), no `Expect: 100-continue`, heads up to [`MAX_HEAD`]. Keep-alive is kept,
//! because loadgen publishes every event on one connection and `/stats` is read in between.
//! A parsed request keeps only the few fields the floor acts on, as owned values, so nothing
//! borrows the read buffer once the head is parsed and the buffer can be dropped before a
//! connection starts streaming.

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::conn::Stream;

/// Largest request head; more is refused with 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// Headers parsed per request: generous for loadgen, curl and browsers (about 15).
const MAX_HEADERS: usize = 32;
/// What a connection's read buffer grows by: one request head from loadgen or curl fits.
const READ_STEP: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Other,
}

/// The parts of a request head the floor acts on.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    /// Path and query, as sent.
    target: String,
    pub keep_alive: bool,
    pub content_length: Option<usize>,
    pub chunked: bool,
    /// `Upgrade: websocket` was asked for.
    pub websocket: bool,
    pub ws_key: Option<String>,
    pub last_event_id: Option<String>,
}

impl Request {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The value of query parameter `name` (no percent-decoding: the floor's parameters are
    /// numbers).
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// Whether the request carries a body this code would have to skip to stay in sync.
    pub fn has_body(&self) -> bool {
        self.chunked || self.content_length.is_some_and(|n| n > 0)
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed (or the socket failed) between requests: nothing to answer.
    Closed,
    /// A malformed or oversized head: answer this, then close.
    Refused(Response),
}

/// Reads the next request head into `buf` (which may already hold it, pipelined) and removes
/// it from there; what follows the head stays in `buf`.
///
/// # Errors
/// [`ReadError::Closed`] on EOF or a socket error, [`ReadError::Refused`] for a bad head.
pub async fn read_request(
    stream: &mut impl Stream,
    buf: &mut BytesMut,
) -> Result<Request, ReadError> {
    loop {
        if !buf.is_empty() {
            if let Some((req, len)) = parse(buf).map_err(ReadError::Refused)? {
                buf.advance(len);
                return Ok(req);
            }
            if buf.len() >= MAX_HEAD {
                return Err(ReadError::Refused(Response::error(
                    431,
                    "request head too large",
                )));
            }
        }
        if buf.capacity() - buf.len() < READ_STEP / 2 {
            buf.reserve(READ_STEP);
        }
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(ReadError::Closed),
            Ok(_) => {}
        }
    }
}

/// `Some((request, head length))` once `buf` holds a whole head.
fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, Response> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::error(431, "too many request headers"))
        }
        Err(e) => return Err(Response::error(400, &format!("bad request head: {e}"))),
    };
    let mut out = Request {
        method: match req.method {
            Some("GET") => Method::Get,
            Some("POST") => Method::Post,
            _ => Method::Other,
        },
        target: req.path.unwrap_or("/").to_owned(),
        // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when asked.
        keep_alive: req.version == Some(1),
        content_length: None,
        chunked: false,
        websocket: false,
        ws_key: None,
        last_event_id: None,
    };
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| Response::error(400, "bad Content-Length"))?;
            out.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            out.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    out.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    out.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            out.websocket = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            out.ws_key = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("last-event-id") {
            out.last_event_id = Some(value.to_owned());
        }
    }
    Ok(Some((out, len)))
}

/// Reads a body of `len` bytes (part of which may already be in `buf`) and takes it out of
/// `buf`.
///
/// # Errors
/// When the client closes before sending `len` bytes, or the socket fails.
pub async fn read_body(
    stream: &mut impl Stream,
    buf: &mut BytesMut,
    len: usize,
) -> std::io::Result<BytesMut> {
    while buf.len() < len {
        buf.reserve(len - buf.len());
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(buf.split_to(len))
}

/// A complete, non-streaming response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// Close the connection after this response (the request's body was not read).
    pub close: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            close: false,
        }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "application/json", body)
    }

    /// `{"error":"<reason>"}`, the real server's refusal shape.
    pub fn error(status: u16, reason: &str) -> Self {
        Self::json(status, serde_json::json!({ "error": reason }).to_string())
    }

    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// Head and body in one buffer, ready for one `write`.
    pub fn encode(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_ROOM + self.body.len());
        head(
            &mut out,
            self.status,
            Some((self.content_type, self.body.len())),
            keep_alive,
        );
        out.extend_from_slice(&self.body);
        out
    }

    /// Writes it; returns the bytes written.
    ///
    /// # Errors
    /// When the socket fails.
    pub async fn write(
        &self,
        stream: &mut impl Stream,
        keep_alive: bool,
    ) -> std::io::Result<usize> {
        let bytes = self.encode(keep_alive);
        send(stream, &bytes).await?;
        Ok(bytes.len())
    }
}

/// Writes all of `bytes` and flushes: on TCP the flush does nothing, over TLS it writes out
/// what rustls still holds (a `write_all` alone may leave the last record there).
///
/// # Errors
/// When the connection fails.
pub async fn send(stream: &mut impl Stream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Room a response head takes (status line and the floor's few headers), to size buffers.
pub const HEAD_ROOM: usize = 160;

/// Appends a response head to `out`: the status line, `Content-Type` and `Content-Length` when
/// there is a body (`Some((type, length))`; a 204 has neither), `Cache-Control: no-store`, and
/// `Connection: close` unless the connection is kept.
pub fn head(out: &mut Vec<u8>, status: u16, body: Option<(&str, usize)>, keep_alive: bool) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some((content_type, len)) = body {
        let _ = write!(
            out,
            "Content-Type: {content_type}\r\nContent-Length: {len}\r\n"
        );
    }
    out.extend_from_slice(b"Cache-Control: no-store\r\n");
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_parsed_only_once_complete_and_keeps_what_the_floor_needs() {
        let raw = b"GET /sse?client=a&since=5 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\nrest";
        assert!(parse(&raw[..20]).unwrap().is_none());
        let (req, len) = parse(raw).unwrap().unwrap();
        assert_eq!(&raw[len..], b"rest");
        assert_eq!((req.method, req.path()), (Method::Get, "/sse"));
        assert_eq!((req.query("since"), req.query("nope")), (Some("5"), None));
        assert_eq!(req.last_event_id.as_deref(), Some("7"));
        assert!(req.keep_alive && !req.has_body());
    }

    #[test]
    fn connection_and_body_headers_are_honoured() {
        let raw = b"POST /publish HTTP/1.1\r\nConnection: close\r\nContent-Length: 3\r\n\r\n";
        let (req, _) = parse(raw).unwrap().unwrap();
        assert!(!req.keep_alive && req.has_body());
        assert_eq!(req.content_length, Some(3));
        let (req, _) = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!req.keep_alive);
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(parse(b"\x01 nonsense\r\n\r\n").unwrap_err().status, 400);
    }

    #[test]
    fn responses_carry_their_length_and_close_when_asked() {
        let r = String::from_utf8(Response::error(404, "no").encode(false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(r.contains("Content-Length: 14\r\n") && r.contains("Connection: close\r\n"));
        assert!(r.ends_with("\r\n\r\n{\"error\":\"no\"}"));
    }
}
