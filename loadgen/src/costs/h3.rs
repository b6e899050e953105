//! The cost windows' clients for short polls, long polls and SSE over HTTP/3 (the `browser-h3`
//! condition, `server --quic --quic-http3`): the h3 crate's client over h3-quinn, as
//! `loadgen run --http 3` uses ([`crate::client::h3`]), with the TCP window clients' requests,
//! heads and compression and the same [`Tally`] counts: a short poll and an empty long-poll
//! answer are beats, as an SSE comment is; every request counts; a message up is a
//! `POST /publish` on the connection.
//!
//! One QUIC connection per client, every request of the client a stream on it. A browser puts
//! all of an origin's polls, SSE and fetches on one HTTP/3 connection, shared by its tabs; a
//! window client is one tab with one feed, so its connection carries that feed and its own
//! messages up and nothing else, as a TCP window client's connection does.
//!
//! Bytes and packets are counted as [`super::quic`] counts WebTransport's: QUIC's UDP payload
//! and datagrams both ways, read from the connection's stats when it is set up and again every
//! [`super::quic::SETTLE_EVERY`] for [`super::quic::SETTLING`] (its handshake's tail and first
//! request go with the session, not with whatever window its first answer falls in:
//! [`Counted::set_up`], shared with WebTransport's clients), after every answer or body piece, and when it ends. A session's
//! round trips: the server's Retry, the QUIC handshake, the request: 3
//! ([`super::quic::ROUND_TRIPS`]).

use std::{
    sync::{atomic::Ordering::Relaxed, Arc},
    time::Duration,
};

use bytes::{Buf as _, Bytes};
use feedlab_wire::Transport;
use hyper::{Request, StatusCode};
use tokio_util::sync::CancellationToken;

use super::{
    client::{jitter, Setup, SseParser, Talk, Tally},
    quic::{self, Counted, ANSWER, ROUND_TRIPS},
};
use crate::{clock, compression, heads::Kind};

type Requests = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
type Response = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// HTTP/3's code for a connection closed with nothing wrong (H3_NO_ERROR, RFC 9114 §8.1).
const H3_NO_ERROR: u32 = 0x100;

/// Longest poll answer or publish reply loadgen reads, bytes.
const MAX_BODY: usize = 16 << 20;

/// A QUIC connection to the setup's server with an HTTP/3 client on it (its driver on a task
/// that ends with the connection).
async fn open(setup: &Setup) -> Result<(quinn::Connection, Requests), String> {
    let opening = async {
        let conn = quic::connect(setup).await?;
        let (mut driver, requests) = h3::client::new(h3_quinn::Connection::new(conn.clone()))
            .await
            .map_err(|e| format!("h3: {e}"))?;
        tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        Ok::<_, String>((conn, requests))
    };
    tokio::time::timeout(ANSWER, opening)
        .await
        .map_err(|_| "h3: no answer to the connect".to_owned())?
}

/// Closes the connection and waits briefly for the close to be sent.
async fn close(conn: &quinn::Connection) {
    conn.close(quinn::VarInt::from_u32(H3_NO_ERROR), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
}

/// A request of `kind` (no body) for `path`, dressed as the browser condition dresses its
/// HTTP/2 requests (HTTP/3 names the host in `:authority`, as HTTP/2 does).
fn get(setup: &Setup, kind: Kind, path: &str) -> Result<Request<()>, String> {
    let b = Request::get(setup.target.uri(path));
    setup
        .dress
        .apply(b, kind, true, setup.compress)
        .body(())
        .map_err(|e| e.to_string())
}

/// Sends `req` (with `body`, if any) and waits for the answer's head: its status, its
/// `Content-Encoding`, and the stream its body comes on.
async fn send(
    requests: &mut Requests,
    req: Request<()>,
    body: Option<Bytes>,
) -> Result<(StatusCode, Option<String>, Response), String> {
    let mut stream = requests
        .send_request(req)
        .await
        .map_err(|e| format!("h3 request: {e}"))?;
    if let Some(body) = body {
        stream
            .send_data(body)
            .await
            .map_err(|e| format!("h3 request: {e}"))?;
    }
    stream
        .finish()
        .await
        .map_err(|e| format!("h3 request: {e}"))?;
    let head = stream
        .recv_response()
        .await
        .map_err(|e| format!("h3 response: {e}"))?;
    let encoding = compression::content_encoding(head.headers()).map(str::to_owned);
    Ok((head.status(), encoding, stream))
}

/// The whole body of an answer, at most [`MAX_BODY`].
async fn read_body(stream: &mut Response) -> Result<Bytes, String> {
    let mut body = Vec::new();
    while let Some(mut piece) = stream
        .recv_data()
        .await
        .map_err(|e| format!("h3 body: {e}"))?
    {
        if body.len() + piece.remaining() > MAX_BODY {
            return Err("h3 body: too long".into());
        }
        body.extend_from_slice(&piece.copy_to_bytes(piece.remaining()));
    }
    Ok(Bytes::from(body))
}

/// Opens one session and closes it: the handshake, the request and its answer (a short poll's
/// whole answer, SSE's head; a long poll, held by the server, is given `hold`), then the close.
/// Counts the session, its round trips, bytes and datagrams.
pub async fn session(setup: &Setup, tally: &Tally, hold: Duration) -> Result<(), String> {
    let (conn, mut requests) = open(setup).await?;
    let mut counted = Counted::default();
    let t = setup.transport;
    let (kind, path) = match t {
        Transport::Sse => (Kind::Sse, "/sse"),
        Transport::LongPoll => (Kind::LongPoll, "/long-poll"),
        _ => (Kind::Poll, "/poll"),
    };
    let req = get(setup, kind, path)?;
    let asked = async {
        let (status, _, mut stream) = send(&mut requests, req, None).await?;
        if t == Transport::ShortPoll {
            read_body(&mut stream).await?;
        }
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(format!("http {status}"))
        }
    };
    let answered = if t == Transport::LongPoll {
        // Held by the server: the user leaves while it waits.
        let _ = tokio::time::timeout(hold, asked).await;
        Ok(())
    } else {
        tokio::time::timeout(ANSWER, asked)
            .await
            .unwrap_or_else(|_| Err("no answer".into()))
    };
    drop(requests);
    close(&conn).await;
    counted.pump(&conn, tally);
    answered?;
    tally.requests.fetch_add(1, Relaxed);
    tally.sessions.fetch_add(1, Relaxed);
    tally.round_trips.fetch_add(ROUND_TRIPS, Relaxed);
    Ok(())
}

/// Holds one subscription until `stop`: polls at the setup's interval, long polls one after
/// another, or one SSE response; with `talk`, messages up on the same connection.
pub async fn hold(
    setup: &Arc<Setup>,
    tally: &Arc<Tally>,
    stop: &CancellationToken,
    talk: Option<&Arc<Talk>>,
) -> Result<(), String> {
    let (conn, mut requests) = open(setup).await?;
    let mut counted = Counted::default();
    // The handshake's bytes now, while the connection is being set up, and its tail as it
    // comes (see the module doc).
    counted.set_up(&conn, tally);
    let poster = talk.map(|talk| {
        let (setup, tally, stop, talk) = (setup.clone(), tally.clone(), stop.clone(), talk.clone());
        let requests = requests.clone();
        // Its bytes are the connection's, counted here as the feed reads and at the end.
        tokio::spawn(async move { post_loop(&setup, &tally, &stop, &talk, requests, None).await })
    });
    let mut feed = Feed {
        setup,
        tally,
        conn: &conn,
        counted: &mut counted,
    };
    let end = if setup.transport == Transport::Sse {
        feed.events(stop, &mut requests).await
    } else {
        feed.polls(stop, &mut requests).await
    };
    if let Some(p) = poster {
        if end.is_err() {
            p.abort();
        }
        let _ = p.await;
    }
    drop(requests);
    close(&conn).await;
    counted.pump(&conn, tally);
    end
}

/// One held subscription's connection and what of it has been counted.
struct Feed<'a> {
    setup: &'a Setup,
    tally: &'a Tally,
    conn: &'a quinn::Connection,
    counted: &'a mut Counted,
}

impl Feed<'_> {
    /// Short or long polls until `stop`, each a request on the connection.
    async fn polls(
        &mut self,
        stop: &CancellationToken,
        requests: &mut Requests,
    ) -> Result<(), String> {
        let (setup, tally) = (self.setup, self.tally);
        let long = setup.transport == Transport::LongPoll;
        tally.open.fetch_add(1, Relaxed);
        let pace = super::client::pace(setup);
        let mut cursor: Option<u64> = None;
        let mut n = 0u64;
        let decoding = compression::Decoding::default();
        let kind = if long { Kind::LongPoll } else { Kind::Poll };
        let end = 'polls: loop {
            if !long {
                let due = pace.intended(n);
                n += 1;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break 'polls Ok(()),
                        () = self.counted.settled(self.conn, tally) => {}
                        _ = tokio::time::sleep_until(due) => break,
                    }
                }
            }
            let path = match (cursor, long) {
                (Some(c), true) => format!("/long-poll?since={c}"),
                (None, true) => "/long-poll".to_owned(),
                (Some(c), false) => format!("/poll?since={c}"),
                (None, false) => "/poll".to_owned(),
            };
            let req = match get(setup, kind, &path) {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            tally.requests.fetch_add(1, Relaxed);
            let exchange = async {
                let (status, encoding, mut stream) = send(requests, req, None).await?;
                let body = read_body(&mut stream).await?;
                Ok::<_, String>((status, encoding, body))
            };
            tokio::pin!(exchange);
            let answer = loop {
                tokio::select! {
                    _ = stop.cancelled() => break 'polls Ok(()),
                    () = self.counted.settled(self.conn, tally) => {}
                    a = &mut exchange => break a,
                }
            };
            let (status, encoding, body) = match answer {
                Ok(a) => a,
                Err(e) => break Err(e),
            };
            self.counted.pump(self.conn, tally);
            if let Err(e) = super::client::answered(
                tally,
                long,
                status,
                encoding.as_deref(),
                body,
                &decoding,
                &mut cursor,
            ) {
                break Err(e);
            }
        };
        tally.open.fetch_sub(1, Relaxed);
        end
    }

    /// One SSE response, read until `stop`: events and comments (heartbeats).
    async fn events(
        &mut self,
        stop: &CancellationToken,
        requests: &mut Requests,
    ) -> Result<(), String> {
        let (setup, tally) = (self.setup, self.tally);
        let req = get(setup, Kind::Sse, "/sse")?;
        tally.requests.fetch_add(1, Relaxed);
        let sent = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            r = tokio::time::timeout(ANSWER, send(requests, req, None)) => r,
        };
        let (status, encoding, mut stream) = sent.map_err(|_| "no answer".to_owned())??;
        if status != StatusCode::OK {
            return Err(format!("http {status}"));
        }
        let mut decoder = compression::BodyDecoder::for_encoding(encoding.as_deref())
            .map_err(|e| e.kind().to_owned())?;
        // The request and the answer's head are the subscription's set-up, and so is what
        // follows them (counted from here again, as `Counted::set_up` says).
        self.counted.set_up(self.conn, tally);
        tally.open.fetch_add(1, Relaxed);
        let mut parser = SseParser::default();
        let decoding = compression::Decoding::default();
        let end = loop {
            let piece = tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                () = self.counted.settled(self.conn, tally) => continue,
                p = stream.recv_data() => p,
            };
            match piece {
                Ok(Some(mut piece)) => {
                    let bytes = piece.copy_to_bytes(piece.remaining());
                    match decoder.feed(bytes, &decoding) {
                        Ok(plain) => parser.feed(&plain, tally),
                        Err(e) => break Err(e.kind().to_owned()),
                    }
                    self.counted.pump(self.conn, tally);
                }
                Ok(None) => break Err("stream ended".to_owned()),
                Err(e) => break Err(format!("h3 body: {e}")),
            }
        };
        tally.open.fetch_sub(1, Relaxed);
        end
    }
}

/// Messages up with no subscription beside them: `POST /publish` on an HTTP/3 connection of
/// its own, until `stop`.
pub async fn post_only(
    setup: Arc<Setup>,
    tally: Arc<Tally>,
    stop: CancellationToken,
    talk: Arc<Talk>,
) {
    let (conn, requests) = match open(&setup).await {
        Ok(c) => c,
        Err(e) => return tally.error(format!("post: {e}")),
    };
    let mut counted = Counted::default();
    post_loop(
        &setup,
        &tally,
        &stop,
        &talk,
        requests,
        Some((&conn, &mut counted)),
    )
    .await;
    close(&conn).await;
    counted.pump(&conn, &tally);
}

/// `POST /publish` at the talk's rate until `stop`, each a request on `requests`' connection;
/// with `count`, that connection's bytes counted after every answer.
async fn post_loop(
    setup: &Setup,
    tally: &Tally,
    stop: &CancellationToken,
    talk: &Talk,
    mut requests: Requests,
    mut count: Option<(&quinn::Connection, &mut Counted)>,
) {
    let pace = clock::Pace::per_second(
        tokio::time::Instant::now() + jitter(1.0 / talk.rate.max(1e-9)),
        talk.rate,
    );
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(pace.intended(n)) => {}
        }
        let b = Request::post(setup.target.uri("/publish"));
        let req = setup
            .dress
            .apply(b, Kind::Publish, true, setup.compress)
            .header(feedlab_wire::IDEMPOTENCY_KEY, talk.key(n))
            .body(());
        let req = match req {
            Ok(r) => r,
            Err(e) => return tally.error(format!("post: {e}")),
        };
        let body = Bytes::from(talk.body(n));
        n += 1;
        tally.requests.fetch_add(1, Relaxed);
        let exchange = async {
            let (status, _, mut stream) = send(&mut requests, req, Some(body)).await?;
            read_body(&mut stream).await?;
            Ok::<_, String>(status.is_success())
        };
        match tokio::time::timeout(ANSWER, exchange).await {
            Ok(Ok(true)) => {
                tally.messages.fetch_add(1, Relaxed);
            }
            Ok(Ok(false)) => tally.error("post: refused"),
            Ok(Err(e)) => {
                tally.error(format!("post: {e}"));
                break;
            }
            Err(_) => tally.error("post: no answer"),
        }
        if let Some((conn, counted)) = count.as_mut() {
            counted.pump(conn, tally);
        }
    }
}
