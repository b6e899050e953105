//! What the server counts: per transport, and per `client=ID` for the page's own connections.
//!
//! Bytes are counted where the server produces them: bodies and WebSocket frames exactly, HTTP
//! response heads by the same rules actix-http uses to write them (status line, headers, `date`,
//! `content-length` or chunked framing). The load generator counts on its socket and checks
//! that the two agree.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::Instant,
};

use actix_web::{
    body::{BodySize, MessageBody},
    http::{header, StatusCode, Version},
    HttpRequest, HttpResponse,
};
use parking_lot::Mutex;
use serde::Serialize;

use feedlab_wire::Transport;

use crate::timings::{Cause, Timings};

/// A request extension: its response body's size before compression, for the accounting
/// wrapper (which sees only the body as written).
#[derive(Debug, Clone, Copy)]
pub struct Uncompressed(pub u64);

/// Counters of one transport (globally, or for one client).
#[derive(Debug, Default)]
pub struct Counters {
    pub open: AtomicI64,
    pub requests: AtomicU64,
    pub events_delivered: AtomicU64,
    pub empty_responses: AtomicU64,
    pub bytes_written: AtomicU64,
    /// What `bytes_written` would have been with nothing compressed: gzip'd bodies (SSE, polls)
    /// counted at their size before compression, permessage-deflate frames at their plain size;
    /// heads and framing as written. Equal to `bytes_written` when nothing was compressed.
    pub payload_bytes_uncompressed: AtomicU64,
    pub messages_received: AtomicU64,
    /// `wt-datagrams`' `{"op":"resend",…}` requests: a client asking for events again, not a
    /// message of its own, so not in `messages_received` (their replies are in
    /// `events_delivered` and `bytes_written`, as loadgen reads them).
    pub resends: AtomicU64,
    /// `requests` by the HTTP version each came over (HTTP/1.0, 1.1, 2, 3), so a run or a page
    /// can tell that its polls and streams really went over HTTP/3 and not a TCP fallback.
    pub by_version: [AtomicU64; 4],
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CountersSnapshot {
    pub open: i64,
    pub requests: u64,
    pub events_delivered: u64,
    pub empty_responses: u64,
    pub bytes_written: u64,
    pub payload_bytes_uncompressed: u64,
    pub messages_received: u64,
    pub resends: u64,
    pub requests_by_version: ByVersion,
}

/// Requests by HTTP version, as `/stats` names them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ByVersion {
    #[serde(rename = "http/1.0")]
    pub http1_0: u64,
    #[serde(rename = "http/1.1")]
    pub http1_1: u64,
    #[serde(rename = "http/2")]
    pub http2: u64,
    #[serde(rename = "http/3")]
    pub http3: u64,
}

/// Index of `version` in [`Counters::by_version`].
fn version_index(version: Version) -> usize {
    match version {
        Version::HTTP_09 | Version::HTTP_10 => 0,
        Version::HTTP_2 => 2,
        Version::HTTP_3 => 3,
        _ => 1,
    }
}

impl Counters {
    /// `bytes` written, `uncompressed` had nothing been compressed.
    pub fn add_bytes(&self, bytes: u64, uncompressed: u64) {
        self.bytes_written.fetch_add(bytes, Relaxed);
        self.payload_bytes_uncompressed
            .fetch_add(uncompressed, Relaxed);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            open: self.open.load(Relaxed),
            requests: self.requests.load(Relaxed),
            events_delivered: self.events_delivered.load(Relaxed),
            empty_responses: self.empty_responses.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            payload_bytes_uncompressed: self.payload_bytes_uncompressed.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            resends: self.resends.load(Relaxed),
            requests_by_version: ByVersion {
                http1_0: self.by_version[0].load(Relaxed),
                http1_1: self.by_version[1].load(Relaxed),
                http2: self.by_version[2].load(Relaxed),
                http3: self.by_version[3].load(Relaxed),
            },
        }
    }
}

/// The ways a publish comes up, as `/stats` names them: a WebSocket `{"op":"publish"}` message,
/// or `POST /publish` over each HTTP version.
pub const PUBLISH_WAYS: [&str; 4] = ["ws", "http/1.0", "http/1.1", "http/2"];

/// Publishes accepted (answered with their seq) by one way up, so a client that talks back can
/// be checked against the server as deliveries are.
#[derive(Debug, Default)]
pub struct PublishCounters {
    /// `POST /publish` requests (0 for WebSocket messages).
    pub requests: AtomicU64,
    pub messages: AtomicU64,
    /// What the client sent: the request head (on HTTP/2 at its HTTP/1.1 size, HPACK hides the
    /// real one) and body, or the WebSocket frame as masked by the client.
    pub bytes_read: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PublishSnapshot {
    pub requests: u64,
    pub messages: u64,
    pub bytes_read: u64,
}

impl PublishCounters {
    pub fn snapshot(&self) -> PublishSnapshot {
        PublishSnapshot {
            requests: self.requests.load(Relaxed),
            messages: self.messages.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
        }
    }
}

/// The last WebSocket handshake of a client, shown by the page.
#[derive(Debug, Clone, Serialize)]
pub struct Handshake {
    pub key: String,
    pub accept: String,
}

#[derive(Debug)]
pub struct ClientRecord {
    pub transports: [Counters; Transport::EVERY.len()],
    /// When each transport wrote and read, for the page's radio figures ([`crate::timings`]).
    pub timings: [Timings; Transport::EVERY.len()],
    /// Its `POST /publish` requests (`client=ID`) by way up, so the page can show what a
    /// message cost going up.
    pub publishes: [PublishCounters; 4],
    pub ws_handshake: Mutex<Option<Handshake>>,
    last_seen: Mutex<Option<Instant>>,
}

impl ClientRecord {
    fn new(timings: usize) -> Self {
        Self {
            transports: Default::default(),
            timings: std::array::from_fn(|_| Timings::new(timings)),
            publishes: Default::default(),
            ws_handshake: Mutex::default(),
            last_seen: Mutex::default(),
        }
    }
}

#[derive(Debug)]
pub struct Accounting {
    pub transports: [Counters; Transport::EVERY.len()],
    /// `/ws/echo`, kept apart so round-trip tests do not blur the feed's numbers.
    pub echo: Counters,
    pub connections_accepted: AtomicU64,
    /// Connections the fast path handed to actix-web: at a request it does not take, or, over
    /// TLS, because the client picked HTTP/2 by ALPN.
    pub connections_to_actix: AtomicU64,
    pub refused_connections: AtomicU64,
    /// Requests refused on connections past `--max-new-connections-per-sec`.
    pub refused_new_connections: AtomicU64,
    pub published: AtomicU64,
    /// Publishes by way up, in [`PUBLISH_WAYS`] order.
    pub publishes: [PublishCounters; 4],
    /// Streaming connections and held long-polls, checked against `--max-connections`.
    pub open_streams: AtomicI64,
    /// Times the ticker task panicked and was restarted (a bug if ever above 0).
    pub ticker_restarts: AtomicU64,
    clients: Mutex<HashMap<String, Arc<ClientRecord>>>,
    max_clients: usize,
    /// `--client-timings`: stamps kept per tracked client and transport.
    timings: usize,
    /// Open streaming connections per client IP; only kept when that limit is on.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Accounting {
    pub fn new(max_clients: usize) -> Self {
        Self {
            transports: Default::default(),
            echo: Counters::default(),
            connections_accepted: AtomicU64::new(0),
            connections_to_actix: AtomicU64::new(0),
            refused_connections: AtomicU64::new(0),
            refused_new_connections: AtomicU64::new(0),
            published: AtomicU64::new(0),
            publishes: Default::default(),
            open_streams: AtomicI64::new(0),
            ticker_restarts: AtomicU64::new(0),
            clients: Mutex::new(HashMap::new()),
            max_clients: max_clients.max(1),
            timings: 2,
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps `per_client` write and read times per tracked client and transport
    /// (`--client-timings`).
    #[must_use]
    pub fn with_timings(mut self, per_client: usize) -> Self {
        self.timings = per_client;
        self
    }

    /// The record of `id`, created on first use; the least recently seen is forgotten when full.
    pub fn client(&self, id: &str) -> Arc<ClientRecord> {
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get(id) {
            *c.last_seen.lock() = Some(Instant::now());
            return c.clone();
        }
        if clients.len() >= self.max_clients {
            let oldest = clients
                .iter()
                .min_by_key(|(_, c)| *c.last_seen.lock())
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                clients.remove(&k);
            }
        }
        let record = Arc::new(ClientRecord::new(self.timings));
        *record.last_seen.lock() = Some(Instant::now());
        clients.insert(id.to_owned(), record.clone());
        record
    }

    /// A `POST /publish` of `body_len` bytes was stored.
    pub fn http_published(&self, req: &HttpRequest, body_len: usize) {
        let (way, version) = match req.version() {
            Version::HTTP_10 | Version::HTTP_09 => (1, "HTTP/1.0"),
            Version::HTTP_2 | Version::HTTP_3 => (3, "HTTP/1.1"),
            _ => (2, "HTTP/1.1"),
        };
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        // "POST /publish HTTP/1.1\r\n", each "name: value\r\n", "\r\n".
        let mut head = req.method().as_str().len() + 1 + target.len() + 1 + version.len() + 2;
        for (name, value) in req.headers() {
            head += name.as_str().len() + 2 + value.len() + 2;
        }
        self.published_over(way, req.query_string(), (head + 2 + body_len) as u64);
    }

    /// A `POST /publish` read off the fast path's socket: an HTTP/1.1 request of `bytes` on the
    /// wire (head and body), with the query `query`.
    pub fn fast_published(&self, query: &str, bytes: u64) {
        self.published_over(2, query, bytes);
    }

    /// A publish that came in way `way` (1 HTTP/1.0, 2 HTTP/1.1, 3 HTTP/2), `bytes` on the wire,
    /// counted for the feed and for the `client=` of `query`, when it is a known client.
    fn published_over(&self, way: usize, query: &str, bytes: u64) {
        let client = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("client="))
            .and_then(|id| self.known_client(id));
        for c in
            std::iter::once(&self.publishes[way]).chain(client.as_ref().map(|r| &r.publishes[way]))
        {
            c.requests.fetch_add(1, Relaxed);
            c.messages.fetch_add(1, Relaxed);
            c.bytes_read.fetch_add(bytes, Relaxed);
        }
    }

    /// A WebSocket `publish` message that took `wire_bytes` (its frames as the client masked,
    /// and perhaps compressed, them) was stored.
    pub fn ws_published(&self, wire_bytes: u64) {
        let c = &self.publishes[0];
        c.messages.fetch_add(1, Relaxed);
        c.bytes_read.fetch_add(wire_bytes, Relaxed);
    }

    pub fn known_client(&self, id: &str) -> Option<Arc<ClientRecord>> {
        self.clients.lock().get(id).cloned()
    }

    pub fn meter(self: &Arc<Self>, transport: Transport, client: Option<&str>) -> Meter {
        Meter {
            accounting: self.clone(),
            transport,
            client: client.map(|id| self.client(id)),
        }
    }
}

/// What one request or connection adds to: its transport's counters and, when the request
/// carried `client=ID`, that client's.
#[derive(Debug, Clone)]
pub struct Meter {
    accounting: Arc<Accounting>,
    pub transport: Transport,
    pub client: Option<Arc<ClientRecord>>,
}

impl Meter {
    fn each(&self, f: impl Fn(&Counters)) {
        f(&self.accounting.transports[self.transport.index()]);
        if let Some(c) = &self.client {
            f(&c.transports[self.transport.index()]);
        }
    }

    /// When the request carried `client=ID`: that this connection moved `bytes` now.
    fn stamp(&self, cause: Cause, bytes: u64) {
        if let Some(c) = &self.client {
            c.timings[self.transport.index()].stamp(cause, bytes);
        }
    }

    pub fn request(&self) {
        self.stamp(Cause::Client, 0);
        self.each(|c| {
            c.requests.fetch_add(1, Relaxed);
        });
    }

    /// A request that came over HTTP `version`: counted as [`Meter::request`] counts it, and
    /// by its version.
    pub fn request_over(&self, version: Version) {
        self.request();
        let i = version_index(version);
        self.each(|c| {
            c.by_version[i].fetch_add(1, Relaxed);
        });
    }

    pub fn empty_response(&self) {
        self.each(|c| {
            c.empty_responses.fetch_add(1, Relaxed);
        });
    }

    pub fn delivered(&self, events: u64, bytes: u64) {
        self.delivered_as(events, bytes, bytes);
    }

    /// `events` delivered in `written` bytes on the wire, which would have been `uncompressed`
    /// bytes with nothing compressed.
    pub fn delivered_as(&self, events: u64, written: u64, uncompressed: u64) {
        if events > 0 || written > 0 {
            let cause = if events > 0 {
                Cause::Event
            } else {
                Cause::NoEvent
            };
            self.stamp(cause, written);
        }
        self.each(|c| {
            c.events_delivered.fetch_add(events, Relaxed);
            c.add_bytes(written, uncompressed);
        });
    }

    /// Uncompressed bytes written.
    pub fn bytes(&self, bytes: u64) {
        if bytes > 0 {
            self.stamp(Cause::NoEvent, bytes);
        }
        self.each(|c| c.add_bytes(bytes, bytes));
    }

    pub fn message_received(&self) {
        self.stamp(Cause::Client, 0);
        self.each(|c| {
            c.messages_received.fetch_add(1, Relaxed);
        });
    }

    /// A WebTransport client asked for events again (`{"op":"resend",…}`): read from it, but
    /// not a message.
    pub fn resend_received(&self) {
        self.stamp(Cause::Client, 0);
        self.each(|c| {
            c.resends.fetch_add(1, Relaxed);
        });
    }

    /// A WebSocket pong: counted nowhere else, but it wakes a phone's radio as a message does.
    pub fn pong_received(&self) {
        self.stamp(Cause::Client, 0);
    }

    /// Marks a streaming connection (or held long-poll) open until the guard drops; refuses it,
    /// with the limit that was hit, past any of `limits`.
    pub fn open(&self, limits: &Limits, ip: Option<IpAddr>) -> Result<OpenGuard, String> {
        self.open_as(limits, ip, Some(&[self.transport]))
    }

    /// Like [`Meter::open`] for a connection whose transport is one of `family`, not yet known
    /// which (a QUIC connection before its WebTransport CONNECT names the variant): counted
    /// under this meter's transport until [`OpenGuard::move_to`] moves it, and refused past
    /// `--max-transport-connections` counted over the whole family, so the limit holds for
    /// whichever it turns out to be.
    pub fn open_one_of(
        &self,
        family: &[Transport],
        limits: &Limits,
        ip: Option<IpAddr>,
    ) -> Result<OpenGuard, String> {
        self.open_as(limits, ip, Some(family))
    }

    /// Like [`Meter::open`] for a connection that belongs to no transport yet and may carry
    /// several (an HTTP/3 QUIC connection): counted in `--max-connections` and
    /// `--max-connections-per-ip` only, not under this meter's transport.
    pub fn open_connection(
        &self,
        limits: &Limits,
        ip: Option<IpAddr>,
    ) -> Result<OpenGuard, String> {
        self.open_as(limits, ip, None)
    }

    /// `family`: the transports whose open connections `--max-transport-connections` counts
    /// for this one; `None` counts it under no transport.
    fn open_as(
        &self,
        limits: &Limits,
        ip: Option<IpAddr>,
        family: Option<&[Transport]>,
    ) -> Result<OpenGuard, String> {
        let a = &self.accounting;
        let transport = family.is_some();
        let total = a.open_streams.fetch_add(1, Relaxed);
        let mine: i64 = family
            .unwrap_or_default()
            .iter()
            .map(|t| a.transports[t.index()].open.load(Relaxed))
            .sum();
        let refusal = if total >= limits.total as i64 {
            Some(format!(
                "{} open connections (--max-connections)",
                limits.total
            ))
        } else if transport && mine >= limits.per_transport as i64 {
            Some(format!(
                "{} open {} connections (--max-transport-connections)",
                limits.per_transport, self.transport
            ))
        } else {
            None
        };
        let ip = ip.filter(|_| limits.per_ip > 0);
        let refusal = refusal.or_else(|| {
            let ip = ip?;
            let mut per_ip = a.per_ip.lock();
            let n = per_ip.entry(ip).or_insert(0);
            if *n >= limits.per_ip {
                Some(format!(
                    "{} open connections from {ip} (--max-connections-per-ip)",
                    limits.per_ip
                ))
            } else {
                *n += 1;
                None
            }
        });
        if let Some(why) = refusal {
            a.open_streams.fetch_sub(1, Relaxed);
            a.refused_connections.fetch_add(1, Relaxed);
            return Err(why);
        }
        if transport {
            self.each(|c| {
                c.open.fetch_add(1, Relaxed);
            });
        }
        Ok(OpenGuard {
            meter: self.clone(),
            ip,
            transport,
        })
    }

    pub fn accounting(&self) -> &Arc<Accounting> {
        &self.accounting
    }
}

/// The connection limits a new streaming connection is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub total: usize,
    pub per_transport: usize,
    /// 0: no per-IP limit.
    pub per_ip: usize,
}

#[derive(Debug)]
pub struct OpenGuard {
    meter: Meter,
    ip: Option<IpAddr>,
    /// Counted under the meter's transport too.
    transport: bool,
}

impl OpenGuard {
    /// Counts the connection under `meter`'s transport (and client) from now on instead of the
    /// one it was opened under: a QUIC connection counted as `wt` from its first packet is a
    /// `wt-streams` or `wt-datagrams` one once its CONNECT says so. The limits it was admitted
    /// under are not checked again.
    pub fn move_to(&mut self, meter: &Meter) {
        if self.transport {
            self.meter.each(|c| {
                c.open.fetch_sub(1, Relaxed);
            });
            meter.each(|c| {
                c.open.fetch_add(1, Relaxed);
            });
        }
        self.meter = meter.clone();
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let a = &self.meter.accounting;
        a.open_streams.fetch_sub(1, Relaxed);
        if let Some(ip) = self.ip {
            let mut per_ip = a.per_ip.lock();
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        if self.transport {
            self.meter.each(|c| {
                c.open.fetch_sub(1, Relaxed);
            });
        }
    }
}

/// Bytes actix-http writes for this response's head on an HTTP/1.x connection: status line,
/// length or chunking header, connection header, the response's headers, `date`, blank line.
/// (On HTTP/2 the head is HPACK-compressed; this HTTP/1.1 size is then an upper estimate.)
pub fn response_head_len<B: MessageBody>(req: &HttpRequest, res: &HttpResponse<B>) -> u64 {
    let status = res.status();
    let reason = status.canonical_reason().unwrap_or("<unknown status code>");
    // "HTTP/1.1 200 OK\r\n"
    let mut n = 9 + 3 + 1 + reason.len() + 2;
    let no_body = matches!(
        status,
        StatusCode::SWITCHING_PROTOCOLS | StatusCode::NO_CONTENT | StatusCode::CONTINUE
    );
    if !no_body {
        n += match res.body().size() {
            BodySize::Stream => "transfer-encoding: chunked\r\n".len(),
            BodySize::Sized(len) => "content-length: \r\n".len() + decimal_digits(len),
            BodySize::None => 0,
        };
    }
    let upgrade = res.headers().contains_key(header::UPGRADE);
    if upgrade {
        n += "connection: upgrade\r\n".len();
    } else {
        let wants = req
            .headers()
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if req.version() < Version::HTTP_11 && wants.contains("keep-alive") {
            n += "connection: keep-alive\r\n".len();
        } else if req.version() >= Version::HTTP_11 && wants.contains("close") {
            n += "connection: close\r\n".len();
        }
    }
    for (name, value) in res.headers() {
        if name == header::CONNECTION
            || (!no_body && (name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING))
        {
            continue;
        }
        n += name.as_str().len() + 2 + value.len() + 2;
    }
    if !res.headers().contains_key(header::DATE) {
        n += "date: Thu, 01 Jan 1970 00:00:00 GMT\r\n".len();
    }
    (n + 2) as u64
}

/// How a streamed body is framed on the wire: HTTP/1.1 chunked encoding, or HTTP/2 DATA frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Chunked,
    Http2,
    /// HTTP/3 (`crate::quic::http3`): a DATA frame's type and length varint before each piece;
    /// the body ends with the QUIC stream.
    Http3,
    /// HTTP/1.0: no chunked coding; the body ends when the connection does.
    Eof,
}

impl Framing {
    pub fn of(req: &impl crate::incoming::Incoming) -> Self {
        match req.version() {
            Version::HTTP_2 => Self::Http2,
            Version::HTTP_3 => Self::Http3,
            Version::HTTP_10 | Version::HTTP_09 => Self::Eof,
            _ => Self::Chunked,
        }
    }

    /// Bytes a piece of `len` body bytes takes on the wire.
    pub fn chunk_len(self, len: usize) -> u64 {
        match self {
            Self::Chunked => (hex_digits(len) + 2 + len + 2) as u64,
            Self::Http2 => (9 + len) as u64,
            Self::Http3 => (1 + varint_len(len) + len) as u64,
            Self::Eof => len as u64,
        }
    }

    /// Bytes that end the body: `0\r\n\r\n`, or an empty DATA frame with END_STREAM.
    pub fn end_len(self) -> u64 {
        match self {
            Self::Chunked => 5,
            Self::Http2 => 9,
            Self::Http3 | Self::Eof => 0,
        }
    }
}

/// Bytes of a QUIC variable-length integer (RFC 9000 section 16) holding `n`.
fn varint_len(n: usize) -> usize {
    match n {
        0..=63 => 1,
        64..=16_383 => 2,
        16_384..=1_073_741_823 => 4,
        _ => 8,
    }
}

/// Bytes of an unmasked (server-to-client) WebSocket frame carrying `len` payload bytes.
pub fn ws_frame_len(len: usize) -> u64 {
    let header = match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (header + len) as u64
}

fn decimal_digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn hex_digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 16 {
        n /= 16;
        d += 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_and_chunk_sizes() {
        assert_eq!(ws_frame_len(0), 2);
        assert_eq!(ws_frame_len(125), 127);
        assert_eq!(ws_frame_len(126), 130);
        assert_eq!(ws_frame_len(70_000), 70_010);
        assert_eq!(Framing::Chunked.chunk_len(15), 1 + 2 + 15 + 2);
        assert_eq!(Framing::Chunked.chunk_len(16), 2 + 2 + 16 + 2);
        assert_eq!(Framing::Http2.chunk_len(16), 9 + 16);
    }

    #[test]
    fn client_table_is_bounded() {
        let a = Accounting::new(2);
        a.client("a");
        a.client("b");
        a.client("c");
        assert_eq!(a.clients.lock().len(), 2);
        assert!(a.known_client("c").is_some());
    }

    #[test]
    fn open_guard_counts_and_limits() {
        let a = Arc::new(Accounting::new(4));
        let m = a.meter(Transport::Sse, Some("page"));
        let limits = Limits {
            total: 2,
            per_transport: 10,
            per_ip: 0,
        };
        let g1 = m.open(&limits, None).unwrap();
        let _g2 = m.open(&limits, None).unwrap();
        assert!(m
            .open(&limits, None)
            .unwrap_err()
            .contains("--max-connections"));
        drop(g1);
        assert!(m.open(&limits, None).is_ok());
        assert_eq!(a.refused_connections.load(Relaxed), 1);
        assert_eq!(
            a.known_client("page").unwrap().transports[2]
                .open
                .load(Relaxed),
            1
        );
    }

    #[test]
    fn a_connection_of_a_family_is_limited_as_any_and_moved_to_its_own() {
        let a = Arc::new(Accounting::new(4));
        let limits = Limits {
            total: 100,
            per_transport: 2,
            per_ip: 0,
        };
        let family = [Transport::Wt, Transport::WtStreams, Transport::WtDatagrams];
        let first = a.meter(Transport::Wt, None);
        let mut g1 = first.open_one_of(&family, &limits, None).unwrap();
        g1.move_to(&a.meter(Transport::WtStreams, Some("c")));
        let open = |t: Transport| a.transports[t.index()].open.load(Relaxed);
        assert_eq!((open(Transport::Wt), open(Transport::WtStreams)), (0, 1));
        assert_eq!(
            a.known_client("c").unwrap().transports[Transport::WtStreams.index()]
                .open
                .load(Relaxed),
            1
        );
        let _g2 = first.open_one_of(&family, &limits, None).unwrap();
        assert!(first
            .open_one_of(&family, &limits, None)
            .unwrap_err()
            .contains("--max-transport-connections"));
        drop(g1);
        assert_eq!(open(Transport::WtStreams), 0);
        assert_eq!(
            a.known_client("c").unwrap().transports[Transport::WtStreams.index()]
                .open
                .load(Relaxed),
            0
        );
        assert_eq!(a.open_streams.load(Relaxed), 1);
    }

    #[test]
    fn per_transport_and_per_ip_limits() {
        let a = Arc::new(Accounting::new(4));
        let limits = Limits {
            total: 100,
            per_transport: 1,
            per_ip: 2,
        };
        let sse = a.meter(Transport::Sse, None);
        let ws = a.meter(Transport::Ws, None);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let _s = sse.open(&limits, Some(ip)).unwrap();
        assert!(sse
            .open(&limits, Some(ip))
            .unwrap_err()
            .contains("--max-transport-connections"));
        let w = ws.open(&limits, Some(ip)).unwrap();
        let other = a.meter(Transport::LongPoll, None);
        assert!(other
            .open(&limits, Some(ip))
            .unwrap_err()
            .contains("--max-connections-per-ip"));
        assert!(other
            .open(&limits, Some("10.0.0.2".parse().unwrap()))
            .is_ok());
        drop(w);
        assert!(
            other.open(&limits, Some(ip)).is_ok(),
            "a closed connection frees its IP slot"
        );
    }
}
