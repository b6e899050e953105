//! WebTransport (`--transports wt`): the feed on one unidirectional stream of a WebTransport
//! session over QUIC, talk-back on a bidirectional stream per message. `wt-streams` and
//! `wt-datagrams` are the server's other variants (`/wt?mode=streams|datagrams`, its `quic`
//! session module says what each sends): their events arrive out of order (each on a stream of
//! its own, or as datagrams beside the control stream), so [`Order`] puts them back by `seq`
//! before the recorder sees them; the latency recorded is each event's arrival, not its turn.
//! A datagram that does not come is asked for again ([`Order::hole`]) once a later event or
//! the server's head line shows it missing and [`REORDER_WAIT`] passed (datagrams beside a
//! stream may overtake each other), with `{"op":"resend",…}` on a bidirectional stream; the
//! report counts those asked for and those recovered.
//!
//! web-transport-quinn on quinn, as the server (its `quic` module says why). QUIC
//! clients share their phase's few endpoints per source address ([`super::quic_endpoints`]
//! says why).
//!
//! Bytes: `plain_read`/`plain_written` count the streams' payload (what the server counts as
//! written and read, compared in the run's server check as the bytes inside TLS are);
//! `read`/`written` count the UDP payload of the client's QUIC connection (QUIC's packets with
//! their headers, encryption and acknowledgements; not the IP and UDP headers), added when a
//! connection ends. QUIC has no session resumption here and no 0-RTT: every connection is a
//! full handshake, after the server's Retry.
//!
//! Across `--network` the endpoints' sockets are made in the link's client namespace, as TCP's
//! are, and their transport settings make the comparison with TCP fair ([`fair_transport`]);
//! [`migrate`] moves them to another address mid-phase (`--migrate-at`).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::{atomic::Ordering::Relaxed, Arc},
};

use feedlab_wire::Transport;
use futures_util::{future::BoxFuture, stream::FuturesUnordered, StreamExt as _};
use tokio::time::Instant;
use web_transport_quinn::{ClientError, ConnectError, Session};

use super::{failover::Failover, ClientCtx, Shared, RESPONSE_TIMEOUT};
use crate::{
    client::talk_back::{self, Due, Outbox, Schedule},
    clock,
    event::{Marks, WsMsg},
    net::{ByteCounts, Target},
    stats::Recorder,
};

/// Longest line (one event, a missed notice) loadgen accepts on the feed stream, bytes.
pub const MAX_LINE: usize = 16 << 20;

/// Longest talk-back reply loadgen reads, bytes.
const MAX_REPLY: usize = 64 * 1024;

/// `wt-datagrams`: how long a missing event may stay missing before it is asked for again
/// (an event too large for a datagram comes on the control stream, beside the datagrams).
pub const REORDER_WAIT: std::time::Duration = std::time::Duration::from_millis(30);

/// The endpoint for client `ctx`'s connections from `source` to `target`: one of its phase's
/// shared endpoints ([`super::quic_endpoints`]), its UDP socket made in the target's namespace across
/// `--network` (the client end of the link, as TCP's sockets are), on loopback otherwise.
pub(crate) fn endpoint(
    ctx: &ClientCtx,
    target: &Target,
    source: Option<IpAddr>,
) -> std::io::Result<quinn::Endpoint> {
    ctx.shared.quic.pick(target, source, Some(ctx.index))
}

/// Moves every QUIC endpoint of the phase `shared` onto a new UDP socket bound to `to` (in the
/// namespace `agent` stands in, across `--network`), as a phone that changed networks: its
/// connections go on from the new address (QUIC's connection migration) without connecting
/// again. Returns how many endpoints moved.
///
/// # Errors
/// When a socket cannot be made or bound; the endpoints moved by then stay moved.
pub(crate) fn migrate(
    shared: &Arc<Shared>,
    agent: Option<&feedlab_link::netns::Agent>,
    to: IpAddr,
) -> std::io::Result<usize> {
    shared.quic.rebind(agent, to)
}

/// The largest UDP payload loadgen's QUIC packets carry, bytes: the link's MTU (1,500, the TUN
/// devices') less the IPv4 and UDP headers, so QUIC's full packets are as large on the link as
/// TCP's full segments. Pinned, with path-MTU discovery off: discovery would probe above it
/// and lose the probes, and on loopback (MTU 65,536) grow packets no link carries.
pub const QUIC_MTU: u16 = 1_500 - 20 - 8;

/// QUIC's initial congestion window, bytes: ten full packets, as Linux TCP's (RFC 6928's IW10),
/// so neither side starts faster. quinn's own default is 12,000 (ten 1,200-byte packets).
pub const INITIAL_WINDOW: u64 = 10 * QUIC_MTU as u64;

/// How often an idle QUIC connection sends a PING: below the server's `--quic-idle-timeout`
/// (30 s by default; the shorter of the two sides' idle timeouts applies), so a connection
/// whose heartbeats were lost on the link is not timed out while QUIC still holds it.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(10);

/// The transport settings that make QUIC comparable with the kernel's TCP across the link:
/// the packet size pinned ([`QUIC_MTU`]), the same congestion control (CUBIC, Linux TCP's
/// default; quinn's too, named here so it stays so) and initial window ([`INITIAL_WINDOW`]),
/// and a keep-alive ([`KEEP_ALIVE`]).
pub fn fair_transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    let mut cubic = quinn::congestion::CubicConfig::default();
    cubic.initial_window(INITIAL_WINDOW);
    t.initial_mtu(QUIC_MTU)
        .min_mtu(QUIC_MTU)
        .mtu_discovery_config(None)
        .congestion_controller_factory(Arc::new(cubic))
        .keep_alive_interval(Some(KEEP_ALIVE));
    t
}

/// quinn's client settings over the target's TLS (ALPN `h3`), with [`fair_transport`].
pub(crate) fn client_config(target: &Target) -> Result<quinn::ClientConfig, &'static str> {
    let tls = target.tls.as_ref().ok_or("wt_needs_tls")?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls.h3.clone())
        .map_err(|_| "wt_tls_config")?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(fair_transport()));
    Ok(config)
}

/// A connect that failed: the report's error kind, and the CONNECT's status if it was refused.
fn connect_error(e: &ClientError) -> (String, Option<u16>) {
    match e {
        ClientError::HttpError(
            ConnectError::ErrorStatus(status)
            | ConnectError::ProtoError(web_transport_quinn::proto::ConnectError::WrongStatus(Some(
                status,
            ))),
        ) => (format!("http_{}", status.as_u16()), Some(status.as_u16())),
        ClientError::Connection(quinn::ConnectionError::ApplicationClosed(_)) => {
            ("wt_refused".into(), None)
        }
        ClientError::Connection(quinn::ConnectionError::TimedOut) => ("timeout".into(), None),
        _ => ("wt_connect".into(), None),
    }
}

/// Adds a finished connection's UDP payload to the client's socket counts, and what QUIC
/// measured of the path (losses, congestion events, RTT) to its QUIC counts.
pub(crate) fn count_udp(conn: &quinn::Connection, wire: &ByteCounts) {
    let stats = conn.stats();
    wire.read.fetch_add(stats.udp_rx.bytes, Relaxed);
    wire.written.fetch_add(stats.udp_tx.bytes, Relaxed);
    let q = &wire.quic;
    q.connections.fetch_add(1, Relaxed);
    q.lost_packets.fetch_add(stats.path.lost_packets, Relaxed);
    q.congestion_events
        .fetch_add(stats.path.congestion_events, Relaxed);
    q.datagrams_sent.fetch_add(stats.udp_tx.datagrams, Relaxed);
    q.datagrams_received
        .fetch_add(stats.udp_rx.datagrams, Relaxed);
    q.rtt_us
        .fetch_add(stats.path.rtt.as_micros() as u64, Relaxed);
}

pub async fn run(ctx: &ClientCtx, rec: &mut Recorder, mut out: Option<&mut Outbox>) {
    let s = &ctx.shared;
    let mut failover = Failover::new(ctx);
    let mut schedule = s.send.as_ref().map(Schedule::new);
    'connection: loop {
        let Some(permit) = failover.attempt(ctx, rec).await else {
            break;
        };
        let target = failover.target(ctx).clone();
        let config = match client_config(&target) {
            Ok(c) => c,
            Err(kind) => {
                rec.error(kind);
                break;
            }
        };
        let endpoint = match endpoint(ctx, &target, ctx.source_ip(&target)) {
            Ok(e) => e,
            Err(e) => {
                rec.error(crate::net::io_error_kind(&e));
                failover.down(ctx, rec);
                continue;
            }
        };
        rec.connections += 1;
        let cursor = rec.seq.resume_cursor();
        let url = format!(
            "https://{}{}",
            target.host,
            target.path(&s.stream_path(cursor))
        );
        let Ok(url) = url::Url::parse(&url) else {
            rec.error("bad_request");
            break;
        };
        let server_name = target
            .tls
            .as_ref()
            .map_or_else(String::new, |t| t.server_name.to_str().into_owned());
        let connect = async {
            let conn = endpoint
                .connect_with(config, target.addr, &server_name)
                .map_err(|e| (ClientError::from(e), None))?;
            let conn = conn.await.map_err(|e| (ClientError::from(e), None))?;
            Session::connect(conn.clone(), url)
                .await
                .map_err(|e| (e, Some(conn)))
        };
        let connected = tokio::select! {
            biased;
            _ = s.stop.cancelled() => break,
            r = tokio::time::timeout(RESPONSE_TIMEOUT, connect) => r,
        };
        let session = match connected {
            Ok(Ok(session)) => session,
            Ok(Err((e, conn))) => {
                let (kind, status) = connect_error(&e);
                if let Some(conn) = conn {
                    count_udp(&conn, &ctx.wire);
                }
                if let Some(status) = status {
                    rec.request();
                    failover.refused(ctx, status, None);
                }
                rec.error(kind);
                failover.down(ctx, rec);
                continue;
            }
            Err(_) => {
                rec.error("timeout");
                failover.down(ctx, rec);
                continue;
            }
        };
        drop(permit);
        rec.request();
        // `wt`: the feed stream; the others: the control stream, the one bidirectional stream
        // the server opens.
        let mode = s.transport;
        let control = async {
            if mode == Transport::Wt {
                session.accept_uni().await
            } else {
                session.accept_bi().await.map(|(_, recv)| recv)
            }
        };
        let feed = tokio::select! {
            biased;
            _ = s.stop.cancelled() => {
                session.close(0, b"done");
                count_udp(&session, &ctx.wire);
                break;
            }
            r = tokio::time::timeout(RESPONSE_TIMEOUT, control) => r,
        };
        let mut feed = match feed {
            Ok(Ok(feed)) => feed,
            Ok(Err(_)) => {
                rec.error("wt_no_stream");
                count_udp(&session, &ctx.wire);
                failover.down(ctx, rec);
                continue;
            }
            Err(_) => {
                rec.error("timeout");
                session.close(0, b"no feed stream");
                count_udp(&session, &ctx.wire);
                failover.down(ctx, rec);
                continue;
            }
        };
        failover.up(ctx);
        let mut partial = Vec::new();
        let mut talks = FuturesUnordered::new();
        let mut order = (mode != Transport::Wt)
            .then(|| Order::new(rec.seq.resume_cursor(), mode == Transport::WtDatagrams));
        let mut events: FuturesUnordered<BoxFuture<'static, Option<Vec<u8>>>> =
            FuturesUnordered::new();
        let mut resend: Option<BoxFuture<'static, Option<Vec<u8>>>> = None;
        loop {
            let ask_at = order
                .as_ref()
                .filter(|_| resend.is_none())
                .and_then(|o| o.hole_since)
                .map(|at| at + REORDER_WAIT);
            let due = async {
                match schedule.as_mut() {
                    Some(schedule) => schedule.due().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = s.stop.cancelled() => {
                    // What is still in flight is read before closing, so both sides count it.
                    let _ = tokio::time::timeout(RESPONSE_TIMEOUT, talks.for_each(|answer| {
                        ack(answer, rec, out.as_deref_mut());
                        std::future::ready(())
                    })).await;
                    session.close(0, b"done");
                    let _ = tokio::time::timeout(RESPONSE_TIMEOUT, session.closed()).await;
                    count_udp(&session, &ctx.wire);
                    break 'connection;
                }
                Some(answer) = talks.next() => ack(answer, rec, out.as_deref_mut()),
                uni = session.accept_uni(), if mode == Transport::WtStreams => match uni {
                    Ok(mut recv) => events.push(Box::pin(async move {
                        recv.read_to_end(MAX_LINE).await.ok()
                    })),
                    Err(_) => {
                        rec.error("wt_closed");
                        break;
                    }
                },
                Some(read) = events.next(), if !events.is_empty() => {
                    if let (Some(bytes), Some(order)) = (read, order.as_mut()) {
                        ctx.wire.plain_read.fetch_add(bytes.len() as u64, Relaxed);
                        line(&bytes, rec, Some(order), false);
                    }
                }
                datagram = session.read_datagram(), if mode == Transport::WtDatagrams => match datagram {
                    Ok(bytes) => {
                        ctx.wire.plain_read.fetch_add(bytes.len() as u64, Relaxed);
                        line(&bytes, rec, order.as_mut(), false);
                    }
                    Err(_) => {
                        rec.error("wt_closed");
                        break;
                    }
                },
                () = tokio::time::sleep_until(ask_at.unwrap_or_else(Instant::now)), if ask_at.is_some() => {
                    if let Some(order) = order.as_mut() {
                        order.hole_since = None;
                        if let Some((since, until)) = order.hole() {
                            rec.datagrams_lost += order.ask(since, until);
                            resend = Some(Box::pin(ask_again(session.clone(), since, until, ctx.wire.clone())));
                        }
                    }
                }
                reply = async { resend.as_mut().expect("guarded").await }, if resend.is_some() => {
                    resend = None;
                    if let Some(order) = order.as_mut() {
                        if let Some(reply) = reply {
                            for text in reply.split(|&b| b == b'\n') {
                                line(text, rec, Some(&mut *order), true);
                            }
                        }
                        order.check(Instant::now());
                    }
                }
                due = due => {
                    if let (Some(plan), Some(out)) = (s.send.as_ref(), out.as_deref_mut()) {
                        out.first_send(&due);
                        let message = talk_back::ws_publish(plan, plan.from(ctx.index), &due);
                        talks.push(talk(session.clone(), message, due, ctx.wire.clone()));
                    }
                }
                chunk = feed.read_chunk(64 * 1024, true) => match chunk {
                    Ok(Some(chunk)) => {
                        ctx.wire.plain_read.fetch_add(chunk.bytes.len() as u64, Relaxed);
                        if let Err(kind) = lines(&mut partial, &chunk.bytes, rec, order.as_mut()) {
                            rec.error(kind);
                            session.close(0, b"bad line");
                            break;
                        }
                    }
                    Ok(None) => {
                        rec.error("wt_ended");
                        break;
                    }
                    Err(_) => {
                        rec.error(match session.close_reason() {
                            Some(web_transport_quinn::SessionError::WebTransportError(
                                web_transport_quinn::WebTransportError::Closed(code, _),
                            )) => format!("wt_close_{code}"),
                            _ => "wt_closed".into(),
                        });
                        break;
                    }
                },
            }
        }
        count_udp(&session, &ctx.wire);
        failover.down(ctx, rec);
    }
}

/// `wt-streams` and `wt-datagrams`: events put back in order by `seq` before the recorder sees
/// them. What waits behind a missing event when the session ends is dropped: the next session
/// resumes after the last one recorded and gets it again.
struct Order {
    /// The next seq the recorder is due.
    next: u64,
    /// Events that came before their turn: seq → (ts, data, arrival).
    pending: BTreeMap<u64, (u64, Marks, u64)>,
    /// The highest seq known to exist: seen, or a head line's.
    head: u64,
    /// `wt-datagrams`: an event that comes again (a late datagram after its resend) is dropped,
    /// not counted as a duplicate; seqs asked for again and not yet come.
    datagrams: bool,
    asked: BTreeSet<u64>,
    /// Since when the next event has been missing with later ones known.
    hole_since: Option<Instant>,
}

impl Order {
    fn new(cursor: u64, datagrams: bool) -> Self {
        Self {
            next: cursor + 1,
            pending: BTreeMap::new(),
            head: cursor,
            datagrams,
            asked: BTreeSet::new(),
            hole_since: None,
        }
    }

    /// An event arrived (`resent`: in a resend's reply).
    fn event(
        &mut self,
        seq: u64,
        ts: u64,
        data: Marks,
        now: u64,
        rec: &mut Recorder,
        resent: bool,
    ) {
        if self.datagrams && (seq < self.next || self.pending.contains_key(&seq)) {
            return;
        }
        if self.asked.remove(&seq) && resent {
            rec.datagrams_recovered += 1;
        }
        if seq < self.next {
            // Not a datagram's: a real duplicate or a stray, for the recorder to count.
            rec.event(seq, ts, data, now);
            return;
        }
        self.head = self.head.max(seq);
        self.pending.insert(seq, (ts, data, now));
        self.flush(rec);
    }

    /// The server's missed notice: nothing up to `up_to` will come.
    fn missed(&mut self, missed: u64, up_to: u64, rec: &mut Recorder) {
        rec.seq.missed(missed, up_to);
        self.pending.retain(|&seq, _| seq > up_to);
        self.asked.retain(|&seq| seq > up_to);
        self.next = self.next.max(up_to + 1);
        self.head = self.head.max(up_to);
        self.flush(rec);
    }

    /// The server's head line: it has sent up to `seq`.
    fn told_head(&mut self, seq: u64) {
        self.head = self.head.max(seq);
        self.check(Instant::now());
    }

    fn flush(&mut self, rec: &mut Recorder) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let (ts, data, now) = entry.remove();
            rec.event(self.next, ts, data, now);
            self.next += 1;
        }
        self.check(Instant::now());
    }

    /// Starts or ends the wait on a hole.
    fn check(&mut self, now: Instant) {
        if self.hole().is_none() {
            self.hole_since = None;
        } else if self.hole_since.is_none() {
            self.hole_since = Some(now);
        }
    }

    /// The missing run after the last event recorded, as a resend's `since` and `until`.
    fn hole(&self) -> Option<(u64, u64)> {
        if !self.datagrams || self.next > self.head {
            return None;
        }
        let until = self
            .pending
            .first_key_value()
            .map_or(self.head, |(&seq, _)| seq - 1);
        Some((self.next - 1, until))
    }

    /// Marks `since+1..=until` asked for; how many had not been asked for before.
    fn ask(&mut self, since: u64, until: u64) -> u64 {
        (since + 1..=until)
            .filter(|&seq| self.asked.insert(seq))
            .count() as u64
    }
}

/// `wt-datagrams`: asks for the events after `since` up to `until` on a stream of its own; the
/// reply's bytes (lines), or `None` when the session went.
async fn ask_again(
    session: Session,
    since: u64,
    until: u64,
    wire: Arc<ByteCounts>,
) -> Option<Vec<u8>> {
    let exchange = async {
        let (mut send, mut recv) = session.open_bi().await.ok()?;
        let message = format!(r#"{{"op":"resend","since":{since},"until":{until}}}"#);
        send.write_all(message.as_bytes()).await.ok()?;
        wire.plain_written.fetch_add(message.len() as u64, Relaxed);
        let _ = send.finish();
        let reply = recv.read_to_end(MAX_LINE).await.ok()?;
        wire.plain_read.fetch_add(reply.len() as u64, Relaxed);
        Some(reply)
    };
    tokio::time::timeout(RESPONSE_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}

/// Splits what arrived into lines (one kept partial line at most [`MAX_LINE`]) and records each.
fn lines(
    partial: &mut Vec<u8>,
    mut bytes: &[u8],
    rec: &mut Recorder,
    mut order: Option<&mut Order>,
) -> Result<(), &'static str> {
    while let Some(at) = bytes.iter().position(|&b| b == b'\n') {
        if partial.is_empty() {
            line(&bytes[..at], rec, order.as_deref_mut(), false);
        } else {
            partial.extend_from_slice(&bytes[..at]);
            line(partial, rec, order.as_deref_mut(), false);
            partial.clear();
        }
        bytes = &bytes[at + 1..];
    }
    if partial.len() + bytes.len() > MAX_LINE {
        return Err("wt_line_too_long");
    }
    partial.extend_from_slice(bytes);
    Ok(())
}

/// One line of the feed or control stream, an event stream or a datagram: an event, a missed
/// notice, a head line, or (empty) a heartbeat; through `order` when the variant needs it
/// (`resent`: from a resend's reply).
fn line(text: &[u8], rec: &mut Recorder, order: Option<&mut Order>, resent: bool) {
    if text.is_empty() {
        return;
    }
    let now = clock::now_us();
    match (serde_json::from_slice::<WsMsg>(text), order) {
        (
            Ok(WsMsg {
                seq: Some(seq),
                ts,
                data,
                op: None,
                ..
            }),
            order,
        ) => match order {
            Some(order) => order.event(seq, ts, data, now, rec, resent),
            None => rec.event(seq, ts, data, now),
        },
        (Ok(m), order) if m.op.as_deref() == Some("missed") => match order {
            Some(order) => order.missed(m.missed, m.next, rec),
            None => rec.seq.missed(m.missed, m.next),
        },
        (Ok(m), Some(order)) if m.op.as_deref() == Some("head") => {
            order.told_head(m.seq.unwrap_or(0));
        }
        (Ok(_), _) => {}
        (Err(_), _) => rec.error("bad_body"),
    }
}

/// A talk-back message's answer: the message, and the seq it was published as (or why not).
type Answer = (Due, Result<u64, &'static str>);

/// Sends `message` on a stream of its own and reads the server's reply.
async fn talk(session: Session, message: String, due: Due, wire: Arc<ByteCounts>) -> Answer {
    let exchange = async {
        let (mut send, mut recv) = session.open_bi().await.map_err(|_| "wt_closed")?;
        send.write_all(message.as_bytes())
            .await
            .map_err(|_| "wt_closed")?;
        wire.plain_written.fetch_add(message.len() as u64, Relaxed);
        let _ = send.finish();
        let reply = recv.read_to_end(MAX_REPLY).await.map_err(|_| "wt_closed")?;
        wire.plain_read.fetch_add(reply.len() as u64, Relaxed);
        match serde_json::from_slice::<WsMsg>(&reply) {
            Ok(m) if m.op.as_deref() == Some("published") => m.seq.ok_or("bad_body"),
            _ => Err("bad_body"),
        }
    };
    let answer = tokio::time::timeout(RESPONSE_TIMEOUT, exchange)
        .await
        .unwrap_or(Err("timeout"));
    (due, answer)
}

fn ack((due, answer): Answer, rec: &mut Recorder, out: Option<&mut Outbox>) {
    match (answer, out) {
        (Ok(seq), Some(out)) => out.ack(&due, seq),
        (Err(kind), Some(out)) => out.error(kind),
        (_, None) => rec.error("wt_unexpected_ack"),
    }
}
