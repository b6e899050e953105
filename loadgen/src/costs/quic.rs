//! The cost windows' clients over QUIC (the `browser-h3` condition): WebTransport (`wt`) on a
//! `server --quic`, the feed on one unidirectional stream of the session, heartbeats as empty
//! lines, messages up on a bidirectional stream each (the session is subscribed, so its own copy
//! comes back on the feed, as a WebSocket's does).
//!
//! Why clients of their own rather than `client::wt`: a window reads its counts while the
//! connections live, and the run's client adds a connection's bytes only when it ends. Here every
//! connection adds what its QUIC stats grew by once its session is set up, whenever it reads from
//! the feed and when it ends,
//! so a window's edges see its bytes (lagging by the acknowledgements sent after the last read,
//! which the next read counts: one packet a connection at each edge, against the thousands a beat
//! window holds).
//!
//! Bytes are QUIC's UDP payload both ways (packets with their headers, encryption and
//! acknowledgements; not the IP and UDP headers), as TCP's are the socket's payload; packets are
//! UDP datagrams both ways (`ss` sees no UDP flows per connection, and on loopback each datagram
//! is one packet). A session's round trips: the server's Retry (address validation, always on),
//! the QUIC handshake with TLS 1.3 inside it, and the WebTransport CONNECT: 3.
//!
//! Clients share the setup's few UDP sockets, as the run's clients do
//! ([`crate::client::quic_endpoints`] says why). Polls, long polls and SSE over HTTP/3 are
//! [`super::h3`]'s, counted the same way.

use std::{
    sync::{atomic::Ordering::Relaxed, Arc},
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use web_transport_quinn::Session;

use super::client::{Setup, Talk, Tally};
use crate::{clock, event::WsMsg};

/// Longest line loadgen accepts on the feed stream, bytes.
const MAX_LINE: usize = 16 << 20;

/// Longest reply to a message up, bytes.
const MAX_REPLY: usize = 64 * 1024;

/// How long a step that should answer at once may take.
pub(super) const ANSWER: Duration = Duration::from_secs(15);

/// Round trips before the first event can arrive: Retry, handshake, CONNECT.
pub const ROUND_TRIPS: u64 = 3;

/// How often a held connection's bytes are counted again as its set-up, after it is set up
/// ([`Counted::set_up`], [`Counted::settled`]), for [`SETTLING`]: the handshake's last packets
/// (the client's Finished, the server's HANDSHAKE_DONE and session tickets, their
/// acknowledgements), HTTP/3's SETTINGS, the first request, and path-MTU discovery's probes
/// (quinn's default on both sides: padded PINGs up to 1,452 bytes, one at a time, each waiting
/// for its acknowledgement) go out after the connection is usable. Counted at the connection's
/// next read instead, those bytes fell in whatever window that read was in: a long poll's first
/// answer, priced as a delivery (ten times a delivery's at 2 events/s in a `--quick` trial),
/// or, for the connections topped up just before the beat window, their first heartbeat,
/// priced as holding: WebTransport's beat read 350–369 bytes down a heartbeat against SSE over
/// HTTP/3's 64 on the same server (the 2026-12-07 model). In a `--quick` trial about 3 KB down
/// and 1.5 KB up a connection came after its session was up: the server's MTU probes (2
/// PINGs), the client's, and their acknowledgements; its beat then read 117 bytes down and 106
/// up a heartbeat, and 42 and 34 once counted as they come (SSE over HTTP/3: 63 and 35).
pub(super) const SETTLE_EVERY: Duration = Duration::from_millis(100);

/// How long after its set-up a held connection's bytes are counted every [`SETTLE_EVERY`]: in
/// a `--quick` trial (debug build, 50 handshakes at once on the servers' one core) the server's
/// last MTU probe reached the client up to 320 ms after the session was up (within 100 ms for
/// three in four), so one count at 100 ms left a quarter of them to the first heartbeat. Every
/// count only moves bytes nearer to when they arrived (within [`SETTLE_EVERY`]), so counting
/// on past the set-up misprices nothing; after this the connection's own reads count it. The
/// windows open at least 300 ms (`--quick`; 1.5 s otherwise) after the last connection is up.
pub(super) const SETTLING: Duration = Duration::from_secs(1);

/// A connection's QUIC stats as last added to the tally, and, for a held connection, when its
/// set-up is next counted ([`SETTLE_EVERY`], until [`SETTLING`] after it was set up).
#[derive(Default)]
pub(super) struct Counted {
    read: u64,
    written: u64,
    datagrams: u64,
    settle: Option<Settle>,
}

/// The next count of a connection's set-up, and when they end.
struct Settle {
    next: std::pin::Pin<Box<tokio::time::Sleep>>,
    until: tokio::time::Instant,
}

impl Counted {
    /// Adds the connection's bytes now, as it is set up (while the set-up is under way, not at
    /// its first read, which may fall in a window), and counts them again every
    /// [`SETTLE_EVERY`] for [`SETTLING`] from now, when [`Self::settled`] is polled.
    pub(super) fn set_up(&mut self, conn: &quinn::Connection, tally: &Tally) {
        self.pump(conn, tally);
        let now = tokio::time::Instant::now();
        self.settle = Some(Settle {
            next: Box::pin(tokio::time::sleep_until(now + SETTLE_EVERY)),
            until: now + SETTLING,
        });
    }

    /// At the next [`SETTLE_EVERY`] since the last [`Self::set_up`], adds what the connection's
    /// stats grew by (its set-up's tail); pending for ever before any set-up and once
    /// [`SETTLING`] is over. For a `select!` beside the connection's reads, in a loop: dropped
    /// unfinished, it keeps its timer.
    pub(super) async fn settled(&mut self, conn: &quinn::Connection, tally: &Tally) {
        let Some(settle) = self.settle.as_mut() else {
            return std::future::pending().await;
        };
        settle.next.as_mut().await;
        let next = settle.next.deadline() + SETTLE_EVERY;
        if next <= settle.until {
            settle.next.as_mut().reset(next);
        } else {
            self.settle = None;
        }
        self.pump(conn, tally);
    }

    /// Adds what `conn`'s stats grew by since the last call.
    pub(super) fn pump(&mut self, conn: &quinn::Connection, tally: &Tally) {
        let s = conn.stats();
        let (read, written) = (s.udp_rx.bytes, s.udp_tx.bytes);
        let datagrams = s.udp_rx.datagrams + s.udp_tx.datagrams;
        tally
            .wire
            .read
            .fetch_add(read.saturating_sub(self.read), Relaxed);
        tally
            .wire
            .written
            .fetch_add(written.saturating_sub(self.written), Relaxed);
        tally
            .packets
            .fetch_add(datagrams.saturating_sub(self.datagrams), Relaxed);
        (self.read, self.written, self.datagrams) = (read, written, datagrams);
    }
}

/// A QUIC connection to the setup's server (ALPN `h3`, quinn's default transport settings),
/// from one of the setup's shared endpoints.
pub(super) async fn connect(setup: &Setup) -> Result<quinn::Connection, String> {
    let target = &setup.target;
    let tls = target.tls.as_ref().ok_or("QUIC needs TLS")?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls.h3.clone())
        .map_err(|e| format!("quic tls: {e}"))?;
    let config = quinn::ClientConfig::new(Arc::new(crypto));
    let endpoint = setup
        .quic
        .pick(target, None, None)
        .map_err(|e| format!("quic endpoint: {e}"))?;
    let name = tls.server_name.to_str().into_owned();
    endpoint
        .connect_with(config, target.addr, &name)
        .map_err(|e| format!("quic connect: {e}"))?
        .await
        .map_err(|e| format!("quic connect: {e}"))
}

/// A WebTransport session on the feed from its start, and its QUIC connection.
async fn open(setup: &Setup) -> Result<(quinn::Connection, Session), String> {
    let target = &setup.target;
    let url = format!("https://{}{}", target.host, target.path("/wt"));
    let url = url::Url::parse(&url).map_err(|e| e.to_string())?;
    let opening = async {
        let conn = connect(setup).await?;
        let session = Session::connect(conn.clone(), url)
            .await
            .map_err(|e| format!("wt connect: {e}"))?;
        Ok::<_, String>((conn, session))
    };
    tokio::time::timeout(ANSWER, opening)
        .await
        .map_err(|_| "wt: no answer to the connect".to_owned())?
}

/// Closes the session and waits briefly for the close to be acknowledged.
async fn close(conn: &quinn::Connection, session: &Session) {
    session.close(0, b"done");
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
}

/// Opens one session and closes it: the handshake, the CONNECT and the feed stream's arrival,
/// then the close. Counts the session, its round trips, bytes and datagrams.
pub async fn session(setup: &Setup, tally: &Tally) -> Result<(), String> {
    let (conn, session) = open(setup).await?;
    let mut counted = Counted::default();
    let feed = tokio::time::timeout(ANSWER, session.accept_uni()).await;
    let opened = matches!(feed, Ok(Ok(_)));
    close(&conn, &session).await;
    counted.pump(&conn, tally);
    if !opened {
        return Err("wt: no feed stream".into());
    }
    tally.requests.fetch_add(1, Relaxed);
    tally.sessions.fetch_add(1, Relaxed);
    tally.round_trips.fetch_add(ROUND_TRIPS, Relaxed);
    Ok(())
}

/// Holds one WebTransport session until `stop`: events and heartbeats off the feed stream, and
/// messages up at `talk`'s rate on a stream each.
pub async fn hold(
    setup: &Setup,
    tally: &Arc<Tally>,
    stop: &CancellationToken,
    talk: Option<&Talk>,
) -> Result<(), String> {
    let (conn, session) = open(setup).await?;
    let mut counted = Counted::default();
    let mut feed = match tokio::time::timeout(ANSWER, session.accept_uni()).await {
        Ok(Ok(feed)) => feed,
        _ => {
            close(&conn, &session).await;
            counted.pump(&conn, tally);
            return Err("wt: no feed stream".into());
        }
    };
    tally.requests.fetch_add(1, Relaxed);
    tally.open.fetch_add(1, Relaxed);
    // The handshake's and the CONNECT's bytes now, while the session is being set up, and its
    // tail as it comes (`SETTLE_EVERY`): counted at the first read instead, they would fall
    // into whatever window that read is in (a beat window's first heartbeat, for the
    // connections topped up just before it), and be priced as holding.
    counted.set_up(&conn, tally);
    let pace = talk.map(|t| {
        clock::Pace::per_second(
            tokio::time::Instant::now()
                + Duration::from_secs_f64(rand::random::<f64>() / t.rate.max(1e-9)),
            t.rate,
        )
    });
    let mut n = 0u64;
    let mut line = Vec::new();
    let mut talks = tokio::task::JoinSet::new();
    let end = loop {
        let due = async {
            match &pace {
                Some(p) => tokio::time::sleep_until(p.intended(n)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => {
                // Replies still in flight are read before closing, so both sides count them.
                let _ = tokio::time::timeout(ANSWER, async {
                    while talks.join_next().await.is_some() {}
                })
                .await;
                close(&conn, &session).await;
                break Ok(());
            }
            () = due => {
                // unwrap: only due when talking.
                let t = talk.expect("talking");
                let msg = format!(r#"{{"op":"publish","id":"{}","data":{}}}"#, t.key(n), t.body(n));
                n += 1;
                talks.spawn(message(session.clone(), msg, tally.clone()));
            }
            Some(_) = talks.join_next(), if !talks.is_empty() => {}
            () = counted.settled(&conn, tally) => {}
            chunk = feed.read_chunk(64 * 1024, true) => match chunk {
                Ok(Some(chunk)) => {
                    lines(&mut line, &chunk.bytes, tally);
                    if line.len() > MAX_LINE {
                        close(&conn, &session).await;
                        break Err("wt: line too long".into());
                    }
                    counted.pump(&conn, tally);
                }
                Ok(None) => break Err("wt: the feed stream ended".into()),
                Err(e) => break Err(format!("wt: {e}")),
            },
        }
    };
    counted.pump(&conn, tally);
    tally.open.fetch_sub(1, Relaxed);
    end
}

/// Sends one message up on a stream of its own and reads the reply (`published`).
async fn message(session: Session, msg: String, tally: Arc<Tally>) {
    let exchange = async {
        let (mut send, mut recv) = session.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(msg.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let _ = send.finish();
        let reply = recv
            .read_to_end(MAX_REPLY)
            .await
            .map_err(|e| e.to_string())?;
        match serde_json::from_slice::<WsMsg>(&reply) {
            Ok(m) if m.op.as_deref() == Some("published") => Ok(()),
            _ => Err(format!(
                "unexpected reply {}",
                String::from_utf8_lossy(&reply)
            )),
        }
    };
    match tokio::time::timeout(ANSWER, exchange).await {
        Ok(Ok(())) => {
            tally.messages.fetch_add(1, Relaxed);
        }
        Ok(Err(e)) => tally.error(format!("wt message: {e}")),
        Err(_) => tally.error("wt message: no reply"),
    }
}

/// Splits what arrived into lines and counts each: an empty line is a heartbeat, an event line
/// an event.
fn lines(partial: &mut Vec<u8>, mut bytes: &[u8], tally: &Tally) {
    while let Some(at) = bytes.iter().position(|&b| b == b'\n') {
        partial.extend_from_slice(&bytes[..at]);
        one(partial, tally);
        partial.clear();
        bytes = &bytes[at + 1..];
    }
    partial.extend_from_slice(bytes);
}

fn one(text: &[u8], tally: &Tally) {
    if text.is_empty() {
        tally.beats.fetch_add(1, Relaxed);
        return;
    }
    let now = clock::now_us();
    match serde_json::from_slice::<WsMsg>(text) {
        Ok(m) if m.seq.is_some() && m.op.is_none() => tally.event(m.data.sent_us, now),
        Ok(_) => {}
        Err(_) => tally.error("wt: bad line"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_lines_are_events_or_heartbeats() {
        let t = Tally::default();
        let mut partial = Vec::new();
        lines(
            &mut partial,
            b"\n{\"seq\":3,\"ts\":1,\"data\":{\"sent_us\":5}}\n{\"se",
            &t,
        );
        assert_eq!((t.snap().beats, t.snap().events), (1, 1));
        lines(&mut partial, b"q\":4,\"ts\":1,\"data\":{}}\n\n", &t);
        assert_eq!((t.snap().beats, t.snap().events), (2, 2));
        assert_eq!(t.snap().errors, 0);
    }
}
