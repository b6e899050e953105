//! The WebSocket session: one implementation for every connection, whichever way it came in.
//!
//! The fast path hands it a TCP socket ([`crate::fast_path::ws`]); actix-http hands over the
//! connection once actix-web answered the handshake ([`super::takeover`]), on plain HTTP/1.1,
//! behind TLS, or on an h2c listener. Both are the same [`Wire`] over the connection: bytes in,
//! whole frames out, and a way to hang up. Everything a client can notice (auth, the feed loop, publish and echo ops,
//! heartbeats and the silent-client timeout, `--max-lag`, `--send-timeout`, the close handshake
//! and its codes) is decided here once, so the ways in cannot drift apart.
//!
//! What a client can make the session hold is bounded: the [`Decoder`] keeps at most one
//! message of `--ws-max-message-bytes` (compressed, also its compressed bytes, up to an eighth
//! plus 1 KiB more than the limit, [`codec::compressed_max`], and what they inflate to, up to
//! the limit), the read buffer at most one read (4 KiB), and after our close frame no application data is kept and the
//! connection is closed within `--close-timeout`. With permessage-deflate agreed, events go out
//! as their shared compressed frames or through the connection's own compressor
//! ([`super::deflate`]); control frames and the session's own short replies go out as they are.
//!
//! Heartbeats follow one policy with SSE's comments ([`crate::transport::sse`]): a ping goes out
//! only when nothing has been sent for `--heartbeat`, since any bytes reset a proxy's idle
//! timer, and a ping on a busy connection would only add cost to the transport being measured. A busy connection's dead client is found by its writes instead: they back up until
//! `--send-timeout` (or `--max-lag`) lets it go. The silent-client timeout counts from the
//! first ping not yet answered, never from the client's last bytes: a client that only listens
//! sends nothing while the feed is busy, and that silence says nothing about whether it is there.

use std::{io, sync::Arc, time::Duration};

use actix_http::ws::{CloseCode, CloseReason};
use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::{
    answer, binary, check_auth_message, client_op, close,
    codec::{self, Decoder, Msg},
    deflate::{Agreement, Deflater},
    missed_notice, too_slow, ClientOp, Ready, AUTHENTICATED,
};
use crate::{
    accounting::{ws_frame_len, Meter},
    event::text_frame,
    feed::{Feed, LagLimit},
    input::{Bucket, Verdict},
    state::AppState,
};

/// Most bytes read after our close frame while waiting for the client's: past this the
/// connection is closed without waiting for it.
const CLOSE_READ_LIMIT: usize = 64 * 1024;

/// The connection under a session.
pub(crate) trait Wire {
    /// Waits for bytes from the client and appends them to `buf`; `Ok(false)` at its EOF.
    /// Cancel-safe: dropped before completing, it has read nothing.
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool>;
    /// Writes `frames` whole and in order within `limit`. `ErrorKind::TimedOut`: the client
    /// took none of them in time (so a close frame may still follow); any other error: the
    /// connection is unusable.
    async fn write(&mut self, frames: &[&Bytes], limit: Duration) -> io::Result<()>;
    /// Hangs up, by `deadline` at the latest: the TCP connection is closed.
    async fn close(self, deadline: Instant);
}

/// What a session serves.
pub(crate) enum Mode {
    /// `/ws`: the feed from a cursor, and the client's `publish`/`echo` ops.
    Feed(Ready),
    /// `/ws/echo`: every message back as it came (compressed as agreed).
    Echo(Option<Agreement>),
}

impl Mode {
    /// The permessage-deflate agreement of the handshake, if any.
    pub fn deflate(&self) -> Option<&Agreement> {
        match self {
            Mode::Feed(ready) => ready.deflate.as_ref(),
            Mode::Echo(agreed) => agreed.as_ref(),
        }
    }
}

/// How a session ends.
enum End {
    /// We close, cleanly: send this close frame, then wait (`--close-timeout`) for the client's.
    Close(Option<CloseReason>),
    /// The client broke the protocol or a limit: send this close frame and hang up; nothing
    /// more it sends is read as frames.
    Fail(CloseReason),
    /// The client closed: answer with this close frame and hang up.
    Answer(Option<CloseReason>),
    /// The connection is gone; nothing more can be sent.
    Gone,
}

/// Runs a session on `wire` until one side closes it; `pending` holds bytes the client sent
/// along with its handshake.
pub(crate) async fn serve<W: Wire>(wire: W, mode: Mode, state: Arc<AppState>, pending: BytesMut) {
    let agreed = mode.deflate().copied();
    let (feed, feed_name, binary) = match &mode {
        Mode::Feed(ready) => (ready.feed.clone(), ready.feed_name.clone(), ready.binary),
        Mode::Echo(_) => (state.feed.clone(), None, false),
    };
    let mut session = Session {
        feed_name,
        bucket: Bucket::new(state.config.max_input_rate),
        feed,
        binary,
        last_write: Instant::now(),
        decoder: Decoder::new(state.config.ws_max_message_bytes).inflating(agreed.is_some()),
        deflater: agreed.map(Deflater::new),
        inbound: pending,
        wire,
        state,
    };
    match mode {
        Mode::Feed(ready) => {
            let Ready {
                meter,
                open,
                cursor,
                must_authenticate,
                ..
            } = ready;
            let end = session.feed(&meter, cursor, must_authenticate).await;
            // Boxed: the close handshake happens once, and its timers and reads would otherwise
            // make every idle session's future larger.
            Box::pin(session.finish(end, Some(&meter))).await;
            drop(open);
        }
        Mode::Echo(_) => {
            let end = session.echo().await;
            Box::pin(session.finish(end, None)).await;
        }
    }
}

struct Session<W> {
    wire: W,
    state: Arc<AppState>,
    /// The feed the session reads (the main one, or `?feed=NAME`), and its name.
    feed: Arc<Feed>,
    feed_name: Option<String>,
    /// `encoding=binary` ([`binary`]).
    binary: bool,
    /// The connection's input rate (`--max-input-rate`).
    bucket: Bucket,
    decoder: Decoder,
    /// permessage-deflate was agreed: how this connection's messages are compressed.
    deflater: Option<Deflater>,
    /// Bytes read and not yet decoded; released whenever empty, so an idle session holds none.
    inbound: BytesMut,
    /// When the last write to the client completed: a ping is due `--heartbeat` after it.
    last_write: Instant,
}

impl<W: Wire> Session<W> {
    /// The next whole message among the bytes read so far.
    fn next_msg(&mut self) -> Result<Option<Msg>, CloseReason> {
        // Nothing read since the last call: the decoder can have nothing new (a call that
        // returned `None` wanted more bytes). Every wake of a feed session passes here, and
        // nearly all of them with nothing read.
        if self.inbound.is_empty() {
            return Ok(None);
        }
        let msg = self.decoder.decode(&mut self.inbound);
        if self.inbound.is_empty() && self.inbound.capacity() > 0 {
            self.inbound = BytesMut::new();
        }
        msg
    }

    async fn feed(&mut self, meter: &Meter, mut cursor: u64, mut must_authenticate: bool) -> End {
        let state = self.state.clone();
        let config = &state.config;
        let feed = self.feed.clone();
        let mut head = feed.subscribe();
        // One timer for the next ping and the silent-client deadline, whichever is sooner. It is
        // moved on after every delivery (as SSE's is): moving a pending timer later is one
        // atomic store in tokio, while a timer left to fire wakes the session and polls all of
        // it only to find that nothing is due. At one event every few seconds that was one
        // wake-up per connection per event, 6–9% of the server's CPU per delivery at 15,000
        // connections (`scripts/beyond/burst_cost.py`).
        let mut heartbeat = Box::pin(tokio::time::sleep_until(self.last_write + config.heartbeat));
        // Boxed, and only while it matters: a timer is big, and an idle session is mostly this
        // future.
        let mut auth_deadline =
            must_authenticate.then(|| Box::pin(tokio::time::sleep(config.request_timeout)));
        // When the first ping the client has not answered went out. Anything the client sends
        // answers it: a pong (every browser sends one by itself), or any other frame or part of
        // one, since bytes arriving show that the client and the way to it are alive.
        let mut unanswered: Option<Instant> = None;
        let lag = LagLimit::new(config.max_lag(), feed.head().saturating_sub(cursor));
        let mut turn = crate::shutdown::Turn::default();
        loop {
            loop {
                match self.next_msg() {
                    Ok(Some(msg)) => {
                        // Boxed: a client's message (a pong, a publish that may wait for the
                        // store or Redis) is rare on a feed, and its state would otherwise be
                        // part of every idle session's future.
                        let handled =
                            Box::pin(self.on_feed_message(msg, meter, &mut must_authenticate));
                        if let Some(end) = handled.await {
                            return end;
                        }
                    }
                    Ok(None) => break,
                    Err(reason) => return End::Fail(reason),
                }
            }
            if !must_authenticate {
                let wrote = self.last_write;
                let delivered = self.deliver(meter, &mut cursor, &lag).await;
                if self.last_write != wrote {
                    heartbeat
                        .as_mut()
                        .reset(next_beat(config, self.last_write, unanswered));
                }
                match delivered {
                    Ok(true) => continue, // more pending
                    Ok(false) => {}
                    Err(end) => return end,
                }
            }
            // Shutdown: the feed wakes every waiter when it closes (no shutdown future per
            // pass, whose polls would all take one shared lock); the session closes at its
            // turn within --shutdown-drain.
            if turn.due(&state.feed, &state.drain) {
                return End::Close(Some(shutting_down()));
            }
            tokio::select! {
                biased;
                () = turn.wait() => {}
                read = self.wire.read(&mut self.inbound) => match read {
                    Ok(true) => unanswered = None,
                    Ok(false) | Err(_) => return End::Gone,
                },
                changed = head.changed() => {
                    if changed.is_err() {
                        return End::Close(None);
                    }
                }
                () = &mut heartbeat, if !must_authenticate => {
                    let now = Instant::now();
                    if unanswered.is_some_and(|since| now >= since + config.ws_client_timeout) {
                        return End::Close(Some(close(
                            CloseCode::Policy,
                            "no pong within --ws-client-timeout of a ping".into(),
                        )));
                    }
                    if now >= self.last_write + config.heartbeat {
                        meter.bytes(ws_frame_len(0));
                        if let Err(end) = self.send(&codec::ping()).await {
                            return end;
                        }
                        unanswered.get_or_insert(now);
                    }
                    heartbeat
                        .as_mut()
                        .reset(next_beat(config, self.last_write, unanswered));
                }
                _ = async { auth_deadline.as_mut().expect("set while authenticating").await },
                    if must_authenticate =>
                {
                    return End::Close(Some(close(
                        CloseCode::Policy,
                        "no auth message within --request-timeout".into(),
                    )));
                }
            }
        }
    }

    /// Writes what is pending after `cursor` in one write; `Ok(true)` when more is.
    async fn deliver(
        &mut self,
        meter: &Meter,
        cursor: &mut u64,
        lag: &LagLimit,
    ) -> Result<bool, End> {
        let state = self.state.clone();
        let config = &state.config;
        let feed = self.feed.clone();
        let Ok(batch) = feed.since_within(
            *cursor,
            config.max_batch as usize,
            config.max_write_bytes as usize,
            |e| e.ws_frame.len(),
        ) else {
            return Ok(false);
        };
        if let Some(behind) = lag.exceeded(batch.head - *cursor) {
            return Err(End::Close(Some(too_slow(behind, *cursor))));
        }
        if batch.missed > 0 {
            let frame = if self.binary {
                let first = batch.events.first().map_or(batch.next, |e| e.seq - 1);
                binary::missed_frame(batch.missed, first)
            } else {
                text_frame(missed_notice(&batch).as_bytes())
            };
            meter.bytes(frame.len() as u64);
            self.send(&frame).await?;
        }
        if !batch.events.is_empty() {
            // Compressed per connection (`--ws-deflate context`, or a window the shared frames
            // do not fit): owned frames; otherwise every frame is an event's shared bytes.
            // `plain`: the text frames' bytes before compression (none for binary frames,
            // which are never compressed).
            let compressed: smallvec::SmallVec<[Bytes; 8]>;
            let (frames, plain): (smallvec::SmallVec<[&Bytes; 8]>, Option<usize>) = if self.binary {
                let frames = batch.events.iter().map(|e| e.ws_binary_frame()).collect();
                (frames, None)
            } else {
                let plain: usize = batch.events.iter().map(|e| e.ws_frame.len()).sum();
                let frames = match &mut self.deflater {
                    None => batch.events.iter().map(|e| &e.ws_frame).collect(),
                    Some(d) if d.agreement().shared_frames() => {
                        let settings = d.agreement().settings;
                        batch
                            .events
                            .iter()
                            .map(|e| e.ws_frame_deflated(&settings))
                            .collect()
                    }
                    Some(d) => {
                        compressed = batch
                            .events
                            .iter()
                            .map(|e| d.frame(codec::TEXT, e.ws.as_bytes(), || e.ws_frame.clone()))
                            .collect();
                        compressed.iter().collect()
                    }
                };
                (frames, Some(plain))
            };
            let bytes: usize = frames.iter().map(|f| f.len()).sum();
            self.wire
                .write(&frames, config.send_timeout)
                .await
                .map_err(write_failed)?;
            self.last_write = Instant::now();
            meter.delivered_as(
                batch.events.len() as u64,
                bytes as u64,
                plain.unwrap_or(bytes) as u64,
            );
        }
        *cursor = batch.next;
        if let Some(seq) = feed.finished_at(*cursor) {
            // The feed's terminal event is out: nothing more will come.
            return Err(End::Close(Some(close(
                CloseCode::Normal,
                format!("the feed ended at seq {seq}"),
            ))));
        }
        Ok(batch.behind() > 0)
    }

    /// One input of `len` bytes, numbered `n`: acknowledged (in the input's own encoding,
    /// binary when `binary`), dropped past `--max-input-rate` (counted), or the session closed
    /// with 1009 past `--max-input-bytes`.
    async fn input(&mut self, meter: &Meter, n: u64, len: usize, binary: bool) -> Option<End> {
        let state = self.state.clone();
        match state.inputs.take(&state.config, &mut self.bucket, len) {
            Err(e) => Some(End::Close(Some(close(CloseCode::Size, e.to_string())))),
            Ok(Verdict::Drop) => None,
            Ok(Verdict::Ack) => {
                let frame = if binary {
                    binary::ack_frame(n as u32)
                } else {
                    text_frame(format!("{{\"op\":\"ack\",\"n\":{n}}}").as_bytes())
                };
                meter.bytes(frame.len() as u64);
                self.send(&frame).await.err()
            }
        }
    }

    async fn on_feed_message(
        &mut self,
        msg: Msg,
        meter: &Meter,
        must_authenticate: &mut bool,
    ) -> Option<End> {
        let state = self.state.clone();
        if *must_authenticate {
            return match msg {
                Msg::Text(text) => match check_auth_message(&state, &text) {
                    Ok(()) => {
                        *must_authenticate = false;
                        self.send(&text_frame(AUTHENTICATED.as_bytes())).await.err()
                    }
                    Err(reason) => Some(End::Close(Some(reason))),
                },
                Msg::Ping(bytes) => self.send(&codec::pong(&bytes)).await.err(),
                Msg::Pong => None,
                Msg::Binary(_) | Msg::Close(_) => Some(End::Close(Some(close(
                    CloseCode::Policy,
                    "authenticate first".into(),
                )))),
            };
        }
        match msg {
            Msg::Text(text) => {
                meter.message_received();
                let op = match client_op(&text) {
                    Ok(op) => op,
                    Err(reason) => return Some(End::Close(Some(reason))),
                };
                if let ClientOp::Input { n } = op {
                    return self.input(meter, n, text.len(), false).await;
                }
                // Boxed: publishing (to the store, or Redis) is a large future, and an idle
                // session's state must not be sized for it.
                let wire = self.decoder.last_message_wire_bytes();
                let feed = self.feed_name.clone();
                match Box::pin(answer(&state, feed.as_deref(), op, &text, wire)).await {
                    Ok(reply) => {
                        meter.bytes(ws_frame_len(reply.len()));
                        self.send(&text_frame(reply.as_bytes())).await.err()
                    }
                    Err(reason) => Some(End::Close(Some(reason))),
                }
            }
            Msg::Binary(bytes) if self.binary => {
                meter.message_received();
                match binary::input(&bytes) {
                    Ok(n) => self.input(meter, u64::from(n), bytes.len(), true).await,
                    Err(why) => Some(End::Close(Some(close(CloseCode::Unsupported, why)))),
                }
            }
            Msg::Binary(_) => {
                meter.message_received();
                Some(End::Close(Some(close(
                    CloseCode::Unsupported,
                    "binary messages need /ws?encoding=binary; send JSON text".into(),
                ))))
            }
            Msg::Ping(bytes) => {
                meter.bytes(ws_frame_len(bytes.len()));
                self.send(&codec::pong(&bytes)).await.err()
            }
            Msg::Pong => {
                meter.pong_received();
                None
            }
            // Answer a close with the same code, as RFC 6455 section 5.5.1 suggests.
            Msg::Close(reason) => Some(End::Answer(Some(CloseReason {
                code: reason.map_or(CloseCode::Normal, |r| r.code),
                description: None,
            }))),
        }
    }

    /// `/ws/echo`: no feed, no heartbeats; shutdown alone ends it from our side.
    async fn echo(&mut self) -> End {
        let state = self.state.clone();
        let echo = &state.accounting.echo;
        let stopped = state.stop.clone().cancelled_owned();
        tokio::pin!(stopped);
        loop {
            loop {
                let (frame, plain) = match self.next_msg() {
                    Ok(Some(Msg::Text(text))) => {
                        let plain = || text_frame(text.as_bytes());
                        match &mut self.deflater {
                            Some(d) => (d.frame(codec::TEXT, text.as_bytes(), plain), text.len()),
                            None => (plain(), text.len()),
                        }
                    }
                    Ok(Some(Msg::Binary(bytes))) => {
                        let plain = || codec::binary(&bytes);
                        match &mut self.deflater {
                            Some(d) => (d.frame(codec::BINARY, &bytes, plain), bytes.len()),
                            None => (plain(), bytes.len()),
                        }
                    }
                    Ok(Some(Msg::Ping(bytes))) => {
                        if let Err(end) = self.send(&codec::pong(&bytes)).await {
                            return end;
                        }
                        continue;
                    }
                    Ok(Some(Msg::Pong)) => continue,
                    Ok(Some(Msg::Close(reason))) => {
                        return End::Answer(reason.map(|r| CloseReason {
                            code: r.code,
                            description: None,
                        }))
                    }
                    Ok(None) => break,
                    Err(reason) => return End::Fail(reason),
                };
                use std::sync::atomic::Ordering::Relaxed;
                echo.messages_received.fetch_add(1, Relaxed);
                echo.add_bytes(frame.len() as u64, ws_frame_len(plain));
                if let Err(end) = self.send(&frame).await {
                    return end;
                }
            }
            tokio::select! {
                _ = &mut stopped => return End::Close(Some(shutting_down())),
                read = self.wire.read(&mut self.inbound) => match read {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return End::Gone,
                },
            }
        }
    }

    async fn send(&mut self, frame: &Bytes) -> Result<(), End> {
        let limit = self.state.config.send_timeout;
        self.wire
            .write(&[frame], limit)
            .await
            .map_err(write_failed)?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// The close handshake: our close frame, then (when we closed cleanly) the client's close
    /// within `--close-timeout`, reading and dropping anything before it; then the connection
    /// is closed, by `--close-timeout` after our close frame at the latest.
    async fn finish(mut self, end: End, meter: Option<&Meter>) {
        let state = self.state.clone();
        let config = &state.config;
        let (reason, wait) = match end {
            End::Gone => return self.wire.close(Instant::now()).await,
            End::Close(reason) => (reason, true),
            End::Fail(reason) => (Some(reason), false),
            End::Answer(reason) => (reason, false),
        };
        if let (Some(meter), Some(r)) = (meter, &reason) {
            meter.bytes(ws_frame_len(
                2 + r.description.as_ref().map_or(0, String::len),
            ));
        }
        let frame = codec::close_frame(reason.as_ref());
        if self
            .wire
            .write(&[&frame], config.send_timeout)
            .await
            .is_err()
        {
            return self.wire.close(Instant::now()).await;
        }
        let deadline = Instant::now() + config.close_timeout;
        if wait {
            let _ = tokio::time::timeout_at(deadline, self.client_close()).await;
        }
        self.wire.close(deadline).await;
    }

    /// Reads until the client's close frame, keeping no application data.
    async fn client_close(&mut self) {
        self.decoder.discard_data();
        let mut read = self.inbound.len();
        loop {
            loop {
                match self.next_msg() {
                    Ok(Some(Msg::Close(_))) | Err(_) => return,
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                }
            }
            if read > CLOSE_READ_LIMIT {
                return;
            }
            match self.wire.read(&mut self.inbound).await {
                Ok(true) => read += self.inbound.len(),
                Ok(false) | Err(_) => return,
            }
        }
    }
}

/// When the heartbeat timer is next due: a ping `--heartbeat` after the last write, or the
/// silent-client deadline (`--ws-client-timeout` after the first unanswered ping), whichever is
/// sooner.
fn next_beat(
    config: &crate::config::Config,
    last_write: Instant,
    unanswered: Option<Instant>,
) -> Instant {
    let ping = last_write + config.heartbeat;
    unanswered.map_or(ping, |since| ping.min(since + config.ws_client_timeout))
}

fn shutting_down() -> CloseReason {
    close(CloseCode::Away, "server shutting down".into())
}

fn write_failed(err: io::Error) -> End {
    if err.kind() == io::ErrorKind::TimedOut {
        End::Close(Some(close(
            CloseCode::Again,
            "client stopped reading (--send-timeout)".into(),
        )))
    } else {
        End::Gone
    }
}
