//! The clients of the cost windows: lean, one per connection, counting what a window divides
//! by. They are not the run's clients (no integrity tracking, no failover): a window needs to
//! know how many events, beats, requests and messages went through and how many bytes the
//! socket carried, and to open and close sessions on cue.
//!
//! Every client of a window shares one [`Tally`]; the window reads it before and after. Bytes
//! are counted on the socket under TLS ([`crate::net::connect`]'s counting stream), so TLS
//! records, HTTP/2 frames, heads, chunking, WebSocket framing and compression are all in them.
//! Over QUIC (`browser-h3`) the clients are [`super::h3`]'s and [`super::quic`]'s, which count
//! QUIC's UDP payload into the same [`Tally`].
//!
//! What counts as a beat: an SSE comment (`: heartbeat`), a WebSocket ping, a long poll answered
//! with no event (a renewal follows), and every short poll.

use std::{
    future::poll_fn,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use feedlab_cost::model::Condition;
use feedlab_wire::Transport;
use futures_util::SinkExt as _;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Empty};
use hyper::{header, upgrade::Upgraded, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_util::sync::CancellationToken;
use yawc::{close::CloseCode, Frame, OpCode, Options, Role, WebSocket};

use crate::heads::{Dress, Heads, Kind};
use crate::{
    clock, compression,
    event::{PollBody, WsMsg},
    net::HttpVersion,
    net::{self, ByteCounts as Wire, Sender, Target},
};

/// How long a request that should be answered at once may take.
const ANSWER: Duration = Duration::from_secs(15);

/// How one transport is reached under one condition.
#[derive(Debug)]
pub struct Setup {
    pub transport: Transport,
    pub condition: Condition,
    pub target: Arc<Target>,
    /// HTTP/2 for polls and SSE under `browser` (WebSockets upgrade HTTP/1.1), HTTP/3 under
    /// `browser-h3`, else 1.1.
    pub http: HttpVersion,
    /// Compression offered as a browser offers it (`browser` only).
    pub compress: bool,
    /// The heads, cookie and origin its requests carry.
    pub dress: Dress,
    pub poll_interval: Duration,
    /// Short polls start at a random moment of their first interval (held clients, so a window's
    /// polls are spread); without it a session polls at once when it starts (whole sessions).
    pub spread: bool,
    /// The UDP sockets its QUIC clients share (`browser-h3`; unused over TCP).
    pub quic: crate::client::quic_endpoints::Endpoints,
}

impl Setup {
    pub fn new(
        transport: Transport,
        condition: Condition,
        target: Arc<Target>,
        heads: Arc<Heads>,
        cookie: Option<String>,
        poll_interval: Duration,
    ) -> Self {
        let browser = condition != Condition::PlainH1;
        let http = if condition.is_quic() {
            HttpVersion::Http3
        } else if browser && transport != Transport::Ws {
            HttpVersion::Http2
        } else {
            HttpVersion::Http11
        };
        let scheme = if target.tls.is_some() {
            "https"
        } else {
            "http"
        };
        Self {
            dress: Dress::new(heads, cookie, format!("{scheme}://{}", target.host)),
            transport,
            condition,
            target,
            http,
            compress: browser,
            poll_interval,
            spread: true,
            quic: crate::client::quic_endpoints::Endpoints::default(),
        }
    }

    /// Which serving path answers this transport's requests: HTTP/2 goes through actix-web;
    /// HTTP/1.1, over TLS or not, through the fast path.
    pub fn served_by(&self) -> &'static str {
        if self.condition.is_quic() {
            "quic (quinn)"
        } else if self.http == HttpVersion::Http2 {
            "actix-web"
        } else {
            "fast path"
        }
    }

    /// The head lines of a request of `kind` after the protocol's own.
    fn decorate(
        &self,
        b: hyper::http::request::Builder,
        kind: Kind,
    ) -> hyper::http::request::Builder {
        self.dress
            .apply(b, kind, self.http == HttpVersion::Http2, self.compress)
    }

    fn get(&self, kind: Kind, path: &str, version: HttpVersion) -> Request<net::Body> {
        let b = self.decorate(self.target.get(path, version), kind);
        b.body(net::empty()).expect("a valid request")
    }

    fn post(&self, body: String, key: &str, version: HttpVersion) -> Request<net::Body> {
        let b = match version {
            HttpVersion::Http2 => {
                Request::post(self.target.uri("/publish")).version(hyper::Version::HTTP_2)
            }
            _ => {
                Request::post(self.target.path("/publish")).header(header::HOST, &self.target.host)
            }
        };
        let b = self
            .decorate(b, Kind::Publish)
            .header(feedlab_wire::IDEMPOTENCY_KEY, key);
        b.body(net::full(body)).expect("a valid request")
    }
}

/// What the clients of one window did, counted as it happened.
#[derive(Debug)]
pub struct Tally {
    pub wire: Arc<Wire>,
    pub events: AtomicU64,
    pub beats: AtomicU64,
    pub requests: AtomicU64,
    pub messages: AtomicU64,
    pub errors: AtomicU64,
    /// Message connections opened again after the server closed them.
    pub reopened: AtomicU64,
    pub sessions: AtomicU64,
    pub round_trips: AtomicU64,
    /// QUIC datagrams both ways (TCP's packets are read from the kernel instead).
    pub packets: AtomicU64,
    /// Clients subscribed now.
    pub open: AtomicI64,
    /// Publish (or message) → receipt, µs.
    pub latency: Mutex<Histogram<u64>>,
    pub last_error: Mutex<Option<String>>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            wire: Arc::default(),
            events: AtomicU64::new(0),
            beats: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            reopened: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            open: AtomicI64::new(0),
            latency: Mutex::new(crate::stats::new_histogram()),
            last_error: Mutex::new(None),
        }
    }
}

/// A reading of a [`Tally`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snap {
    pub read: u64,
    pub written: u64,
    pub events: u64,
    pub beats: u64,
    pub requests: u64,
    pub messages: u64,
    pub errors: u64,
    pub sessions: u64,
    pub round_trips: u64,
    /// QUIC datagrams both ways.
    pub packets: u64,
}

impl std::ops::Sub for Snap {
    type Output = Snap;
    fn sub(self, b: Snap) -> Snap {
        Snap {
            read: self.read.saturating_sub(b.read),
            written: self.written.saturating_sub(b.written),
            events: self.events.saturating_sub(b.events),
            beats: self.beats.saturating_sub(b.beats),
            requests: self.requests.saturating_sub(b.requests),
            messages: self.messages.saturating_sub(b.messages),
            errors: self.errors.saturating_sub(b.errors),
            sessions: self.sessions.saturating_sub(b.sessions),
            round_trips: self.round_trips.saturating_sub(b.round_trips),
            packets: self.packets.saturating_sub(b.packets),
        }
    }
}

impl Tally {
    pub fn snap(&self) -> Snap {
        Snap {
            read: self.wire.read(),
            written: self.wire.written(),
            events: self.events.load(Relaxed),
            beats: self.beats.load(Relaxed),
            requests: self.requests.load(Relaxed),
            messages: self.messages.load(Relaxed),
            errors: self.errors.load(Relaxed),
            sessions: self.sessions.load(Relaxed),
            round_trips: self.round_trips.load(Relaxed),
            packets: self.packets.load(Relaxed),
        }
    }

    pub fn open(&self) -> i64 {
        self.open.load(Relaxed)
    }

    pub(super) fn error(&self, what: impl Into<String>) {
        self.errors.fetch_add(1, Relaxed);
        let what = what.into();
        tracing::debug!("costs client: {what}");
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Empties the latency histogram (at a window's start).
    pub fn reset_latency(&self) {
        self.latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reset();
    }

    /// p99 of the latencies since the last reset, µs.
    pub fn p99_us(&self) -> f64 {
        let h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        if h.is_empty() {
            return f64::NAN;
        }
        h.value_at_quantile(0.99) as f64
    }

    pub(super) fn event(&self, sent_us: Option<u64>, now: u64) {
        self.events.fetch_add(1, Relaxed);
        if let Some(sent) = sent_us {
            let us = now.saturating_sub(sent).max(1);
            self.latency
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .saturating_record(us);
        }
    }
}

/// Talking back: messages up at `rate` per second, each transport's way.
#[derive(Debug)]
pub struct Talk {
    pub rate: f64,
    pub from: u64,
    pub nonce: u64,
    pub payload: crate::payload::Payload,
}

impl Talk {
    pub(super) fn body(&self, n: u64) -> String {
        crate::client::talk_back::body(self.from, n, clock::now_us(), &self.payload)
    }
    pub(super) fn key(&self, n: u64) -> String {
        crate::client::talk_back::key(self.nonce, self.from, n)
    }
}

/// Holds one subscription until `stop`, reconnecting after a failure (counted).
pub async fn hold(
    setup: Arc<Setup>,
    tally: Arc<Tally>,
    stop: CancellationToken,
    talk: Option<Arc<Talk>>,
) {
    // Over HTTP/1.1, messages up go on a second keep-alive connection, as a browser's fetch
    // beside its EventSource or polls would.
    let poster =
        match (&talk, setup.transport, setup.http) {
            (Some(t), tr, HttpVersion::Http11) if tr != Transport::Ws => Some(tokio::spawn(
                post_loop(setup.clone(), tally.clone(), stop.clone(), t.clone(), None),
            )),
            _ => None,
        };
    loop {
        let r = match setup.transport {
            // Polls, long polls and SSE over HTTP/3, their messages up on the same connection.
            Transport::ShortPoll | Transport::LongPoll | Transport::Sse
                if setup.http == HttpVersion::Http3 =>
            {
                super::h3::hold(&setup, &tally, &stop, talk.as_ref()).await
            }
            Transport::Sse => sse(&setup, &tally, &stop, talk.as_ref()).await,
            Transport::Ws => ws(&setup, &tally, &stop, talk.as_deref()).await,
            Transport::Wt => super::quic::hold(&setup, &tally, &stop, talk.as_deref()).await,
            // The model's QUIC condition measures WebTransport's headline variant only.
            Transport::WtStreams | Transport::WtDatagrams => Err(
                "loadgen costs measures wt, not its wt-streams or wt-datagrams variants".to_owned(),
            ),
            Transport::ShortPoll | Transport::LongPoll => {
                poll(&setup, &tally, &stop, talk.as_ref()).await
            }
        };
        match r {
            Ok(()) => break,
            Err(e) => {
                tally.error(format!("{}: {e}", setup.transport));
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
    if let Some(p) = poster {
        let _ = p.await;
    }
}

/// Round trips the TLS handshake of `stream` took: 1 for TLS 1.3, 2 for 1.2, 0 without TLS.
fn tls_round_trips(stream: &net::Stream) -> u64 {
    match stream {
        net::Stream::Plain(_) => 0,
        net::Stream::Tls(s) => match s.get_ref().get_ref().1.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => 1,
            _ => 2,
        },
    }
}

/// A counted connection (TLS when the target is `https`) and the round trips it took.
async fn connect_counted(
    setup: &Setup,
    wire: &Arc<Wire>,
    alpn: net::Alpn,
) -> Result<(net::Stream, u64), String> {
    let stream = net::connect(&setup.target, None, wire, alpn)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let rtt = 1 + tls_round_trips(&stream);
    Ok((stream, rtt))
}

/// Splits an SSE byte stream into blocks and counts them: events (latency from `data`'s
/// `sent_us`) and comments (heartbeats).
#[derive(Default)]
pub(super) struct SseParser {
    buf: BytesMut,
}

impl SseParser {
    pub(super) fn feed(&mut self, chunk: &[u8], tally: &Tally) {
        self.buf.extend_from_slice(chunk);
        while let Some(end) = find(&self.buf, b"\n\n") {
            let block = self.buf.split_to(end + 2);
            let now = clock::now_us();
            let text = String::from_utf8_lossy(&block);
            if text.starts_with(':') {
                tally.beats.fetch_add(1, Relaxed);
                continue;
            }
            let mut event = "message";
            let mut data = String::new();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = if v.trim() == "message" {
                        "message"
                    } else {
                        "other"
                    };
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if event == "message" && !data.is_empty() {
                match serde_json::from_str::<crate::event::EventMsg>(&data) {
                    Ok(e) => tally.event(e.data.sent_us, now),
                    Err(_) => tally.error("sse: bad event"),
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn sse(
    setup: &Arc<Setup>,
    tally: &Arc<Tally>,
    stop: &CancellationToken,
    talk: Option<&Arc<Talk>>,
) -> Result<(), String> {
    let (stream, _) = connect_counted(setup, &tally.wire, net::alpn_for(setup.http)).await?;
    let (mut sender, task): (Sender, _) = net::http(stream, setup.http)
        .await
        .map_err(|e| e.to_string())?;
    let req = setup.get(Kind::Sse, "/sse", setup.http);
    tally.requests.fetch_add(1, Relaxed);
    let res = tokio::select! {
        _ = stop.cancelled() => { task.abort(); return Ok(()); }
        r = tokio::time::timeout(ANSWER, sender.send_request(req)) => r,
    };
    let res = res
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| e.to_string())?;
    if res.status() != StatusCode::OK {
        return Err(format!("http {}", res.status()));
    }
    let mut decoder =
        compression::BodyDecoder::for_encoding(compression::content_encoding(res.headers()))
            .map_err(|e| e.kind().to_owned())?;
    tally.open.fetch_add(1, Relaxed);
    let poster = h2_poster(setup, tally, stop, talk, &sender);
    let mut body = res.into_body();
    let mut parser = SseParser::default();
    let decoding = compression::Decoding::default();
    let end = loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            f = body.frame() => f,
        };
        match frame {
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    match decoder.feed(data, &decoding) {
                        Ok(plain) => parser.feed(&plain, tally),
                        Err(e) => break Err(e.kind().to_owned()),
                    }
                }
            }
            Some(Err(e)) => break Err(e.to_string()),
            None => break Err("stream ended".to_owned()),
        }
    };
    tally.open.fetch_sub(1, Relaxed);
    drop(body);
    finish(poster, end.is_err()).await;
    drop(sender);
    crate::client::close(task).await;
    end
}

/// Messages up over HTTP with no subscription beside them: `POST /publish` on an HTTP/2
/// connection of its own (browser), an HTTP/3 one (browser-h3) or a keep-alive HTTP/1.1 one,
/// until `stop`.
pub async fn post_only(
    setup: Arc<Setup>,
    tally: Arc<Tally>,
    stop: CancellationToken,
    talk: Arc<Talk>,
) {
    if setup.http == HttpVersion::Http3 {
        return super::h3::post_only(setup, tally, stop, talk).await;
    }
    if setup.http != HttpVersion::Http2 {
        return post_loop(setup, tally, stop, talk, None).await;
    }
    let stream = match connect_counted(&setup, &tally.wire, net::Alpn::H2).await {
        Ok((s, _)) => s,
        Err(e) => return tally.error(format!("post: {e}")),
    };
    let (sender, task) = match net::http::<net::Body>(stream, HttpVersion::Http2).await {
        Ok(c) => c,
        Err(e) => return tally.error(format!("post: {e}")),
    };
    post_loop(setup, tally, stop, talk, Some(sender)).await;
    crate::client::close(task).await;
}

/// Messages up over HTTP: `POST /publish` at the talk's rate until `stop`, on `sender` (an
/// HTTP/2 connection shared with the subscription) or on a keep-alive connection of its own.
async fn post_loop(
    setup: Arc<Setup>,
    tally: Arc<Tally>,
    stop: CancellationToken,
    talk: Arc<Talk>,
    sender: Option<Sender>,
) {
    // Over HTTP/1.1 the connection is this loop's own, and is opened again (as a browser's
    // fetch would) when the server has closed it; an HTTP/2 one is the subscription's.
    let own = sender.is_none();
    let version = if own {
        HttpVersion::Http11
    } else {
        HttpVersion::Http2
    };
    let mut conn: Option<(Sender, Option<tokio::task::JoinHandle<()>>)> = sender.map(|s| (s, None));
    let pace = clock::Pace::per_second(
        tokio::time::Instant::now() + jitter(1.0 / talk.rate.max(1e-9)),
        talk.rate,
    );
    let mut n = 0u64;
    let mut reopened = false;
    'messages: loop {
        if !reopened {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(pace.intended(n)) => {}
            }
        }
        if conn.is_none() {
            if !own {
                break;
            }
            let opened = match connect_counted(&setup, &tally.wire, net::Alpn::Http1).await {
                Ok((stream, _)) => net::http::<net::Body>(stream, HttpVersion::Http11)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match opened {
                Ok((s, t)) => conn = Some((s, Some(t))),
                Err(e) => {
                    tally.error(format!("post: {e}"));
                    break;
                }
            }
        }
        let (sender, _) = conn.as_mut().expect("connected above");
        let req = setup.post(talk.body(n), &talk.key(n), version);
        tally.requests.fetch_add(1, Relaxed);
        let sent = async {
            sender.ready().await?;
            let res = sender.send_request(req).await?;
            let ok = res.status().is_success();
            res.into_body().collect().await?;
            Ok::<_, hyper::Error>(ok)
        };
        match tokio::time::timeout(ANSWER, sent).await {
            Ok(Ok(true)) => {
                tally.messages.fetch_add(1, Relaxed);
            }
            Ok(Ok(false)) => tally.error("post: refused"),
            Ok(Err(e)) if own && !reopened => {
                // Closed by the server while idle: once more, on a new connection.
                tracing::debug!("post: {e}; reconnecting");
                tally.reopened.fetch_add(1, Relaxed);
                if let Some((s, t)) = conn.take() {
                    drop(s);
                    if let Some(t) = t {
                        t.abort();
                    }
                }
                reopened = true;
                continue 'messages;
            }
            Ok(Err(e)) => {
                tally.error(format!("post: {e}"));
                break;
            }
            Err(_) => tally.error("post: no answer"),
        }
        reopened = false;
        n += 1;
    }
    if let Some((s, t)) = conn {
        drop(s);
        if let Some(t) = t {
            crate::client::close(t).await;
        }
    }
}

/// A random delay in `0..max_s` seconds, so clients started together do not act in step.
pub(super) fn jitter(max_s: f64) -> Duration {
    Duration::from_secs_f64(rand::random::<f64>() * max_s.clamp(0.0, 3600.0))
}

/// A held client's polls from now: one every `setup.poll_interval`, the first at once or, when
/// the setup spreads its clients (`setup.spread`), after a random part of an interval, so
/// clients started together do not poll in step. The TCP and the HTTP/3 window clients' one
/// pace.
pub(super) fn pace(setup: &Setup) -> clock::Pace {
    let first = if setup.spread {
        jitter(setup.poll_interval.as_secs_f64())
    } else {
        Duration::ZERO
    };
    clock::Pace {
        start: tokio::time::Instant::now() + first,
        interval: setup.poll_interval,
    }
}

async fn poll(
    setup: &Arc<Setup>,
    tally: &Arc<Tally>,
    stop: &CancellationToken,
    talk: Option<&Arc<Talk>>,
) -> Result<(), String> {
    let long = setup.transport == Transport::LongPoll;
    let (stream, _) = connect_counted(setup, &tally.wire, net::alpn_for(setup.http)).await?;
    let (mut sender, mut conn) = net::http_inline(stream, setup.http)
        .await
        .map_err(|e| e.to_string())?;
    tally.open.fetch_add(1, Relaxed);
    let poster = h2_poster(setup, tally, stop, talk, &sender);
    let pace = pace(setup);
    let mut cursor: Option<u64> = None;
    let mut n = 0u64;
    let decoding = compression::Decoding::default();
    let kind = if long { Kind::LongPoll } else { Kind::Poll };
    let mut ended = false;
    let end = loop {
        if !long {
            let due = pace.intended(n);
            n += 1;
            tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                _ = tokio::time::sleep_until(due) => {}
            }
        }
        let path = match (cursor, long) {
            (Some(c), true) => format!("/long-poll?since={c}"),
            (None, true) => "/long-poll".to_owned(),
            (Some(c), false) => format!("/poll?since={c}"),
            (None, false) => "/poll".to_owned(),
        };
        let req = setup.get(kind, &path, setup.http);
        tally.requests.fetch_add(1, Relaxed);
        let exchange = async {
            sender.ready().await?;
            let res = sender.send_request(req).await?;
            let status = res.status();
            let enc = compression::content_encoding(res.headers()).map(str::to_owned);
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, enc, body))
        };
        tokio::pin!(exchange);
        let answer = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            a = &mut exchange => a,
            _ = conn.as_mut() => {
                // The connection's future is done: it must not be polled again below.
                ended = true;
                break Err("connection closed by the server".to_owned());
            }
        };
        let (status, enc, body) = match answer {
            Ok(a) => a,
            Err(e) => break Err(e.to_string()),
        };
        if let Err(e) = answered(
            tally,
            long,
            status,
            enc.as_deref(),
            body,
            &decoding,
            &mut cursor,
        ) {
            break Err(e);
        }
    };
    tally.open.fetch_sub(1, Relaxed);
    finish(poster, end.is_err()).await;
    drop(sender);
    if !ended {
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.as_mut()).await;
    }
    end
}

/// A poll's or long poll's answer, over HTTP/1.1, 2 or 3: its events and beat counted, the
/// cursor moved on; an error names what was wrong with it.
pub(super) fn answered(
    tally: &Tally,
    long: bool,
    status: StatusCode,
    encoding: Option<&str>,
    body: Bytes,
    decoding: &compression::Decoding,
    cursor: &mut Option<u64>,
) -> Result<(), String> {
    let now = clock::now_us();
    match status {
        StatusCode::OK => {
            let body = compression::decode_body(encoding, body, decoding)
                .map_err(|e| e.kind().to_owned())?;
            let batch = serde_json::from_slice::<PollBody>(&body)
                .map_err(|e| format!("bad poll body: {e}"))?;
            for e in &batch.events {
                tally.event(e.data.sent_us, now);
            }
            if !long || batch.events.is_empty() {
                tally.beats.fetch_add(1, Relaxed);
            }
            *cursor = Some(batch.next);
        }
        StatusCode::NO_CONTENT if long => {
            tally.beats.fetch_add(1, Relaxed);
        }
        other => return Err(format!("http {other}")),
    }
    Ok(())
}

/// Waits for a poster to stop with the subscription (at once when the subscription failed).
async fn finish(poster: Option<tokio::task::JoinHandle<()>>, failed: bool) {
    if let Some(p) = poster {
        if failed {
            p.abort();
        }
        let _ = p.await;
    }
}

/// Over HTTP/2, messages up are streams on the subscription's own connection.
fn h2_poster(
    setup: &Arc<Setup>,
    tally: &Arc<Tally>,
    stop: &CancellationToken,
    talk: Option<&Arc<Talk>>,
    sender: &Sender,
) -> Option<tokio::task::JoinHandle<()>> {
    let (talk, h2) = (talk?, sender.h2_clone()?);
    Some(tokio::spawn(post_loop(
        setup.clone(),
        tally.clone(),
        stop.clone(),
        talk.clone(),
        Some(h2),
    )))
}

type Socket = WebSocket<TokioIo<Upgraded>>;

/// The upgrade with the condition's head lines: the socket and the round trips it took.
async fn ws_open(setup: &Setup, wire: &Arc<Wire>) -> Result<(Socket, u64), String> {
    let (stream, rtt) = connect_counted(setup, wire, net::Alpn::Http1).await?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn.with_upgrades());
    let key = generate_key();
    let mut b = Request::get(setup.target.path("/ws"))
        .header(header::HOST, &setup.target.host)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13");
    b = setup.decorate(b, Kind::Ws);
    b = b.header(header::SEC_WEBSOCKET_KEY, &key);
    if setup.compress {
        b = b.header(header::SEC_WEBSOCKET_EXTENSIONS, compression::WS_OFFER);
    }
    let req = b.body(Empty::new()).map_err(|e| e.to_string())?;
    let mut res = tokio::time::timeout(ANSWER, sender.send_request(req))
        .await
        .map_err(|_| "no answer to the upgrade".to_owned())?
        .map_err(|e| e.to_string())?;
    if res.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(format!("upgrade answered {}", res.status()));
    }
    let agreed = res
        .headers()
        .get(header::SEC_WEBSOCKET_EXTENSIONS)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let upgraded = hyper::upgrade::on(&mut res)
        .await
        .map_err(|e| e.to_string())?;
    let options = Options::default().with_max_payload_read(16 << 20);
    let options = if agreed.is_some() {
        options.with_balanced_compression()
    } else {
        options.without_compression()
    };
    let ws = WebSocket::from_stream_with_extensions(
        TokioIo::new(upgraded),
        Role::Client,
        agreed.as_deref(),
        options,
    )
    .map_err(|e| e.to_string())?;
    Ok((ws, rtt + 1))
}

/// Closes properly (1000) and reads until the server's close, briefly.
async fn ws_close(ws: &mut Socket) {
    let _ = ws.send(Frame::close(CloseCode::Normal, b"")).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(f) = poll_fn(|cx| ws.poll_next_frame(cx)).await {
            if f.opcode() == OpCode::Close {
                break;
            }
        }
    })
    .await;
}

async fn ws(
    setup: &Setup,
    tally: &Tally,
    stop: &CancellationToken,
    talk: Option<&Talk>,
) -> Result<(), String> {
    let (mut ws, _) = ws_open(setup, &tally.wire).await?;
    tally.requests.fetch_add(1, Relaxed);
    tally.open.fetch_add(1, Relaxed);
    let pace = talk.map(|t| {
        clock::Pace::per_second(
            tokio::time::Instant::now() + jitter(1.0 / t.rate.max(1e-9)),
            t.rate,
        )
    });
    let mut n = 0u64;
    let end = loop {
        let due = async {
            match &pace {
                Some(p) => tokio::time::sleep_until(p.intended(n)).await,
                None => std::future::pending().await,
            }
        };
        let frame = tokio::select! {
            _ = stop.cancelled() => {
                ws_close(&mut ws).await;
                break Ok(());
            }
            () = due => {
                // unwrap: only due when talking.
                let t = talk.expect("talking");
                let msg = format!(r#"{{"op":"publish","id":"{}","data":{}}}"#, t.key(n), t.body(n));
                n += 1;
                if let Err(e) = ws.send(Frame::text(msg)).await {
                    break Err(e.to_string());
                }
                continue;
            }
            f = poll_fn(|cx| ws.poll_next_frame(cx)) => f,
        };
        match frame {
            Ok(f) => match f.opcode() {
                OpCode::Text => {
                    let now = clock::now_us();
                    match serde_json::from_slice::<WsMsg>(f.payload()) {
                        Ok(m) if m.op.as_deref() == Some("published") => {
                            tally.messages.fetch_add(1, Relaxed);
                        }
                        Ok(m) if m.seq.is_some() => tally.event(m.data.sent_us, now),
                        Ok(_) => {}
                        Err(_) => tally.error("ws: bad message"),
                    }
                }
                OpCode::Ping => {
                    tally.beats.fetch_add(1, Relaxed);
                }
                OpCode::Close => break Err("closed by the server".to_owned()),
                _ => {}
            },
            Err(e) => break Err(e.to_string()),
        }
    };
    tally.open.fetch_sub(1, Relaxed);
    end
}

/// Opens one session and closes it: connect (and TLS), the subscription (the SSE request's
/// answer head, the WebSocket upgrade, the short poll's answer; a long poll's request, held by
/// the server, is given `hold` to arrive), then the close. Counts the session and the round
/// trips before the first event could have arrived.
pub async fn session(setup: &Setup, tally: &Tally, hold: Duration) -> Result<(), String> {
    let rtt = match setup.transport {
        Transport::Wt => return super::quic::session(setup, tally).await,
        Transport::ShortPoll | Transport::LongPoll | Transport::Sse
            if setup.http == HttpVersion::Http3 =>
        {
            return super::h3::session(setup, tally, hold).await
        }
        Transport::WtStreams | Transport::WtDatagrams => {
            return Err(
                "loadgen costs measures wt, not its wt-streams or wt-datagrams variants".to_owned(),
            )
        }
        Transport::Ws => {
            let (mut ws, rtt) = ws_open(setup, &tally.wire).await?;
            ws_close(&mut ws).await;
            rtt
        }
        t => {
            let (stream, rtt) =
                connect_counted(setup, &tally.wire, net::alpn_for(setup.http)).await?;
            let (mut sender, task): (Sender, _) = net::http(stream, setup.http)
                .await
                .map_err(|e| e.to_string())?;
            let (kind, path) = match t {
                Transport::Sse => (Kind::Sse, "/sse"),
                Transport::LongPoll => (Kind::LongPoll, "/long-poll"),
                _ => (Kind::Poll, "/poll"),
            };
            let req = setup.get(kind, path, setup.http);
            let send = async {
                sender.ready().await?;
                let res = sender.send_request(req).await?;
                if t == Transport::ShortPoll {
                    res.into_body().collect().await?;
                }
                Ok::<_, hyper::Error>(())
            };
            if t == Transport::LongPoll {
                // Held by the server: the user leaves while it waits.
                let _ = tokio::time::timeout(hold, send).await;
            } else {
                tokio::time::timeout(ANSWER, send)
                    .await
                    .map_err(|_| "no answer".to_owned())?
                    .map_err(|e| e.to_string())?;
            }
            drop(sender);
            crate::client::close(task).await;
            rtt + 1
        }
    };
    tally.requests.fetch_add(1, Relaxed);
    tally.sessions.fetch_add(1, Relaxed);
    tally.round_trips.fetch_add(rtt, Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks_are_events_or_heartbeats() {
        let t = Tally::default();
        let mut p = SseParser::default();
        p.feed(b"retry: 1000\n\n: heartbeat\n\nid: 3\ndata: {\"seq\":3,\"ts\":1,\"data\":{\"sent_us\":5}}\n", &t);
        assert_eq!(t.snap().beats, 1);
        assert_eq!(t.snap().events, 0);
        p.feed(b"\nevent: missed\ndata: {}\n\n", &t);
        assert_eq!(t.snap().events, 1);
        assert_eq!(t.snap().errors, 0);
    }
}
