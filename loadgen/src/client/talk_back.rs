//! Talking back (`--send-rate`): every client publishes its own messages into the feed, as in a
//! chat room, and every client receives everyone's. Each transport goes up its natural way: a
//! WebSocket sends `{"op":"publish"}` on its own socket; SSE and polling clients `POST /publish`,
//! over HTTP/1.1 on a second keep-alive connection, over HTTP/2 as a stream on the connection
//! that carries their stream or polls, and over HTTP/1.0 on a new connection per message.
//!
//! Messages go out at fixed intended times ([`Schedule`]), and every latency is counted from
//! that intended time, so a message that waited behind a slow one carries the wait (no
//! coordinated omission). Each message has an idempotency key, reused when it is sent again after
//! a failure or a reconnect, so a server that deduplicates stores it once; resends are counted.
//!
//! The measurement itself is hand-written here (schedule, keys, acknowledgement matching); the
//! HTTP and WebSocket work is hyper's and tungstenite's, as everywhere in loadgen.

use std::{sync::Arc, time::Duration};

use feedlab_report::{Compared, TalkBack, TalkBackCheck};
use hyper::{header, Request};
use tokio::{sync::watch, time::Instant};

use crate::{
    client::publisher::{send_publish, Attempt},
    client::{failover, ClientCtx},
    clock::{self, Pace},
    heads::Kind as HeadKind,
    net::HttpVersion,
    net::{self, ByteCounts, Target},
    stats::receipts::{Kind, Samples, UpSink},
    stats::{ErrorCounts, Quantiles},
};

/// What every talking-back client of one transport in one phase shares.
#[derive(Debug)]
pub struct SendPlan {
    /// Messages per second per client.
    pub rate: f64,
    /// How long clients send (the phase's publishing time).
    pub duration: Duration,
    /// What each message carries besides its own fields: the run's `--payload` kind (a chat
    /// line for a chat room), so the way up compresses as real messages would.
    pub payload: crate::payload::Payload,
    /// This phase's part of every idempotency key, so no two runs' keys meet on one server.
    pub nonce: u64,
    /// Added to a client's index to give its `from`: unique across the transports of a phase.
    pub from_base: u64,
    /// Set when publishing starts.
    pub started: watch::Receiver<Option<Instant>>,
    pub sink: Arc<UpSink>,
}

impl SendPlan {
    pub fn from(&self, index: usize) -> u64 {
        self.from_base + index as u64
    }
}

/// `data` of message `n` of client `from`: `{"sent_us":…,"from":F,"msg":n,…}` with the
/// payload's fields (`"pad":"xxx…"`, or a chat line, a tick, …), different for every message.
pub fn body(from: u64, n: u64, sent_us: u64, payload: &crate::payload::Payload) -> String {
    let fields = payload.fields((from << 32) ^ n);
    format!(r#"{{"sent_us":{sent_us},"from":{from},"msg":{n},{fields}}}"#)
}

/// The idempotency key of message `n` of client `from` (`Idempotency-Key`, WebSocket `id`).
pub fn key(nonce: u64, from: u64, n: u64) -> String {
    format!("lg-{nonce:016x}-{from}-{n}")
}

/// The WebSocket frame publishing message `n`: `{"op":"publish","id":KEY,"data":…}`.
pub fn ws_publish(plan: &SendPlan, from: u64, due: &Due) -> String {
    format!(
        r#"{{"op":"publish","id":"{}","data":{}}}"#,
        key(plan.nonce, from, due.n),
        body(from, due.n, due.intended_us, &plan.payload)
    )
}

/// One message due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub n: u64,
    /// Its intended time on loadgen's clock (µs), the start of every latency it gets.
    pub intended_us: u64,
}

/// One client's fixed send times, from the moment publishing starts.
#[derive(Debug)]
pub struct Schedule {
    rate: f64,
    duration: Duration,
    started: watch::Receiver<Option<Instant>>,
    pace: Option<(Pace, u64)>,
    next: u64,
}

impl Schedule {
    pub fn new(plan: &SendPlan) -> Self {
        Self {
            rate: plan.rate,
            duration: plan.duration,
            started: plan.started.clone(),
            pace: None,
            next: 0,
        }
    }

    /// Waits for the next message's intended time (forever when all are sent). Cancel-safe:
    /// nothing changes until it returns, so it can sit in a `select!`.
    pub async fn due(&mut self) -> Due {
        loop {
            if self.pace.is_none() {
                let start = *self.started.borrow_and_update();
                if let Some(start) = start {
                    let pace = Pace::per_second(start, self.rate);
                    self.pace = Some((pace, pace.count_within(self.duration)));
                } else if self.started.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            // unwrap: set just above.
            let (pace, total) = self.pace.expect("pace");
            if self.next >= total {
                std::future::pending::<()>().await;
            }
            let at = pace.intended(self.next);
            tokio::time::sleep_until(at).await;
            let late = Instant::now().saturating_duration_since(at).as_micros() as u64;
            let n = self.next;
            self.next += 1;
            return Due {
                n,
                intended_us: clock::now_us().saturating_sub(late),
            };
        }
    }

    /// Whether every message has been handed out.
    pub fn done(&self) -> bool {
        self.pace.is_some_and(|(_, total)| self.next >= total)
    }
}

/// The sending side of one client: what it sent, what was acknowledged, what it cost.
#[derive(Debug)]
pub struct Outbox {
    /// Distinct messages sent at least once.
    pub sent: u64,
    pub acked: u64,
    /// Sends repeated after a failure or a reconnect (same idempotency key).
    pub retried: u64,
    /// Of those, resends whose first attempt may have reached the server.
    pub maybe_twice: u64,
    /// HTTP requests (`POST /publish`) answered; 0 on a WebSocket.
    pub requests: u64,
    /// TCP connections opened for sending only (HTTP/1.x); none on WebSocket and HTTP/2.
    pub connections: u64,
    pub errors: ErrorCounts,
    /// The seqs acknowledged: each must reach every client.
    pub acked_seqs: Vec<u64>,
    /// Bytes on the sending-only connections (HTTP/1.x), apart from the stream's own.
    pub wire: Arc<ByteCounts>,
    samples: Samples,
}

impl Outbox {
    pub fn new(shard: usize, sink: Arc<UpSink>) -> Self {
        Self {
            sent: 0,
            acked: 0,
            retried: 0,
            maybe_twice: 0,
            requests: 0,
            connections: 0,
            errors: ErrorCounts::new(),
            acked_seqs: Vec::new(),
            wire: Arc::new(ByteCounts::default()),
            samples: Samples::new(shard, sink),
        }
    }

    /// A message leaves for the first time.
    pub fn first_send(&mut self, due: &Due) {
        self.sent += 1;
        self.samples
            .add(Kind::Lag, clock::now_us().saturating_sub(due.intended_us));
    }

    pub fn ack(&mut self, due: &Due, seq: u64) {
        self.acked += 1;
        self.acked_seqs.push(seq);
        self.samples
            .add(Kind::Ack, clock::now_us().saturating_sub(due.intended_us));
    }

    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_insert(0) += 1;
    }

    pub fn flush(&mut self) {
        self.samples.flush();
    }
}

/// The way up of an HTTP client: `POST /publish` on a second keep-alive connection (HTTP/1.1),
/// on a new connection per message (HTTP/1.0), or as a stream on the client's own HTTP/2
/// connection, which the receiving side hands over through `h2` whenever it (re)connects.
/// Sends one request at a time, as one `fetch` after another would; returns at the phase's stop.
pub async fn post_loop(
    ctx: &ClientCtx,
    plan: &SendPlan,
    out: &mut Outbox,
    mut h2: Option<watch::Receiver<Option<net::Sender>>>,
) {
    let s = &ctx.shared;
    let from = plan.from(ctx.index);
    let mut schedule = Schedule::new(plan);
    let mut target = failover::first_target(ctx.index, s.targets.len());
    let mut conn: Option<(net::Sender, tokio::task::JoinHandle<()>)> = None;
    'messages: loop {
        let due = tokio::select! {
            biased;
            _ = s.stop.cancelled() => break,
            d = schedule.due() => d,
        };
        out.first_send(&due);
        let data = body(from, due.n, due.intended_us, &plan.payload);
        let idem = key(plan.nonce, from, due.n);
        let mut failures = 0u32;
        loop {
            if failures > 0 {
                out.retried += 1;
                let wait = failover::backoff(failures, s.targets.len(), 0.5);
                if !crate::client::pause(&s.stop, wait).await {
                    break 'messages;
                }
            }
            let t = &s.targets[target];
            // The handle to send on: the HTTP/2 connection of the stream, or one of our own.
            let mut borrowed;
            let sender = if let Some(rx) = h2.as_mut() {
                let got = tokio::select! {
                    biased;
                    _ = s.stop.cancelled() => None,
                    r = rx.wait_for(Option::is_some) => r.ok().and_then(|g| g.as_ref().and_then(net::Sender::h2_clone)),
                };
                let Some(h) = got else { break 'messages };
                borrowed = h;
                &mut borrowed
            } else {
                if conn.is_none() {
                    match connect(ctx, t, &out.wire, s.http).await {
                        Ok(c) => {
                            out.connections += 1;
                            conn = Some(c);
                        }
                        Err(kind) => {
                            out.error(kind);
                            failures += 1;
                            target = failover::next_target(target, s.targets.len());
                            continue;
                        }
                    }
                }
                // unwrap: set just above.
                &mut conn.as_mut().expect("send connection").0
            };
            let req = request(t, s.http, &idem, data.clone());
            let Ok(req) = req else {
                out.error("bad_request");
                break;
            };
            let attempt = send_publish(sender, req).await;
            if s.http == HttpVersion::Http10 {
                if let Some((sender, task)) = conn.take() {
                    drop(sender);
                    crate::client::close(task).await;
                }
            }
            match attempt {
                Attempt::Acked { seq, .. } => {
                    out.requests += 1;
                    out.ack(&due, seq);
                    break;
                }
                Attempt::Refused(kind) => {
                    out.requests += 1;
                    out.error(kind);
                    break;
                }
                Attempt::Failed { kind, maybe_stored } => {
                    out.error(kind);
                    if maybe_stored {
                        out.maybe_twice += 1;
                    }
                    conn = None;
                    failures += 1;
                    if h2.is_none() {
                        target = failover::next_target(target, s.targets.len());
                    }
                }
            }
        }
    }
    if let Some((sender, task)) = conn.take() {
        drop(sender);
        crate::client::close(task).await;
    }
    out.flush();
}

async fn connect(
    ctx: &ClientCtx,
    target: &Target,
    wire: &Arc<ByteCounts>,
    http: HttpVersion,
) -> Result<(net::Sender, tokio::task::JoinHandle<()>), String> {
    let stream = net::connect(target, ctx.source_ip(target), wire, net::Alpn::Http1)
        .await
        .map_err(|e| net::io_error_kind(&e).to_owned())?;
    // HTTP/1.x only here: over HTTP/2 the stream's own connection carries the POSTs.
    let version = if http == HttpVersion::Http10 {
        HttpVersion::Http10
    } else {
        HttpVersion::Http11
    };
    net::http(stream, version)
        .await
        .map_err(|e| net::hyper_error_kind(&e).to_owned())
}

fn request(
    target: &Target,
    http: HttpVersion,
    idem: &str,
    data: String,
) -> hyper::http::Result<Request<net::Body>> {
    let builder = match http {
        HttpVersion::Http2 => Request::post(target.uri("/publish")).version(hyper::Version::HTTP_2),
        // Over HTTP/3 the publishes go on a TCP connection of their own (HTTP/1.1).
        HttpVersion::Http11 | HttpVersion::Http10 | HttpVersion::Http3 => {
            Request::post(target.path("/publish"))
                .version(if http == HttpVersion::Http10 {
                    hyper::Version::HTTP_10
                } else {
                    hyper::Version::HTTP_11
                })
                .header(header::HOST, &target.host)
        }
    };
    // A page's publish: its heads (Content-Type among them) as a browser's fetch sends them;
    // the answer is small JSON, so nothing is offered for it to be compressed.
    target
        .dress
        .apply(
            builder,
            HeadKind::Publish,
            http == HttpVersion::Http2,
            false,
        )
        .header("idempotency-key", idem)
        .body(net::full(data))
}

/// The way up of each transport, as the report names it.
pub fn way_up(transport: feedlab_wire::Transport, http: HttpVersion) -> &'static str {
    match (transport, http) {
        (feedlab_wire::Transport::Ws, _) => "ws-message",
        (
            feedlab_wire::Transport::Wt
            | feedlab_wire::Transport::WtStreams
            | feedlab_wire::Transport::WtDatagrams,
            _,
        ) => "wt-stream",
        (_, HttpVersion::Http2) => "post-h2-stream",
        (_, HttpVersion::Http11 | HttpVersion::Http3) => "post-second-connection",
        (_, HttpVersion::Http10) => "post-new-connection",
    }
}

/// The clients' publishes against the server's count of their way up: `stats_way` is the
/// delta of the way's counters over the phase; `loadgen` is (requests, messages, bytes written
/// on connections that only publish).
pub fn check(
    transport: feedlab_wire::Transport,
    http: HttpVersion,
    stats_way: crate::probe::PublishCounters,
    loadgen: (u64, u64, u64),
) -> TalkBackCheck {
    let way = stats_way_key(transport, http);
    let requests = Compared::exact(loadgen.0, stats_way.requests);
    let messages = Compared::exact(loadgen.1, stats_way.messages);
    let bytes = Compared::within(loadgen.2, stats_way.bytes_read, 0.01);
    let bytes_note = match (transport, http) {
            (feedlab_wire::Transport::Ws, _) => Some("not checked: a WebSocket's publishes share its socket with pongs and the close handshake".to_owned()),
            (feedlab_wire::Transport::Wt | feedlab_wire::Transport::WtStreams | feedlab_wire::Transport::WtDatagrams, _) => Some("not checked: WebTransport's publishes share their QUIC connection with the feed".to_owned()),
            (_, HttpVersion::Http2) => Some("not checked: over HTTP/2 the server counts each request head at its HTTP/1.1 size (HPACK compresses it)".to_owned()),
            _ => None,
        };
    TalkBackCheck {
        way: way.to_owned(),
        ok: requests.ok && messages.ok && (bytes.ok || bytes_note.is_some()),
        requests,
        messages,
        bytes,
        bytes_note,
    }
}

/// The `/stats` `publishes` key of a transport's way up.
pub fn stats_way_key(transport: feedlab_wire::Transport, http: HttpVersion) -> &'static str {
    match (transport, http) {
        // The server answers a WebTransport message as a WebSocket's, and counts it there.
        (
            feedlab_wire::Transport::Ws
            | feedlab_wire::Transport::Wt
            | feedlab_wire::Transport::WtStreams
            | feedlab_wire::Transport::WtDatagrams,
            _,
        ) => "ws",
        (_, HttpVersion::Http10) => "http/1.0",
        (_, HttpVersion::Http11 | HttpVersion::Http3) => "http/1.1",
        (_, HttpVersion::Http2) => "http/2",
    }
}

/// `u`'s latency quantiles from the transport's shared sink.
pub fn latencies(u: &mut TalkBack, sink: &UpSink) {
    u.ack_us = Quantiles::of(&sink.merged(Kind::Ack));
    u.own_receipt_us = Quantiles::of(&sink.merged(Kind::Own));
    u.others_receipt_us = Quantiles::of(&sink.merged(Kind::Others));
    u.send_lag_us = Quantiles::of(&sink.merged(Kind::Lag));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_bodies_carry_sender_number_and_time() {
        use crate::payload::{Payload, PayloadKind};
        let chat = Payload::new(PayloadKind::Chat, 0, 1);
        let b = body(7, 3, 1_764_000_000_000_000, &chat);
        let p: crate::event::Marks = serde_json::from_str(&b).unwrap();
        assert_eq!(
            (p.from, p.msg, p.sent_us, p.pub_n),
            (Some(7), Some(3), Some(1_764_000_000_000_000), None)
        );
        // The --payload kind's fields, different from message to message and sender to sender.
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert!(v["text"].is_string() && v["room"].is_string(), "{b}");
        assert_ne!(b, body(7, 4, 1_764_000_000_000_000, &chat)[..]);
        assert_ne!(b, body(8, 3, 1_764_000_000_000_000, &chat)[..]);
        let pad = body(7, 3, 0, &Payload::new(PayloadKind::Padding, 2, 1));
        assert!(pad.ends_with(r#""pad":"xx"}"#), "{pad}");
        assert_eq!(key(0xab, 7, 3), "lg-00000000000000ab-7-3");
    }

    #[tokio::test(start_paused = true)]
    async fn schedule_waits_for_the_start_then_keeps_fixed_times() {
        let (tx, rx) = watch::channel(None);
        let plan = SendPlan {
            rate: 10.0,
            duration: Duration::from_millis(250),
            payload: crate::payload::Payload::new(crate::payload::PayloadKind::Padding, 0, 0),
            nonce: 1,
            from_base: 0,
            started: rx,
            sink: Arc::new(UpSink::default()),
        };
        let mut s = Schedule::new(&plan);
        let waiting = tokio::time::timeout(Duration::from_secs(1), s.due()).await;
        assert!(waiting.is_err(), "nothing is due before publishing starts");
        let start = Instant::now();
        tx.send_replace(Some(start));
        assert_eq!(s.due().await.n, 0);
        // A stall: the late messages go at once, the schedule does not shift.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(s.due().await.n, 1);
        assert_eq!(s.due().await.n, 2);
        assert!(s.done(), "three messages fit in 250 ms at 10/s");
        assert!(tokio::time::timeout(Duration::from_secs(5), s.due())
            .await
            .is_err());
    }
}
