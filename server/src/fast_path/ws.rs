//! `/ws` on the socket itself: the handshake and session of the actix-web handler, with each
//! event written as the complete frame every client shares ([`Event::ws_frame`]).
//!
//! Frames from the client are decoded by actix-http's WebSocket codec (the layer actix-ws is
//! built on); continuation frames are joined here, up to `--ws-max-message-bytes`. Idle, the
//! session holds no buffer at all: the read buffer is released whenever it is empty.
//!
//! [`Event::ws_frame`]: crate::event::Event::ws_frame

use std::{io, io::IoSlice, sync::Arc, time::Instant};

use actix_http::{
    ws::{
        hash_key, verify_handshake, CloseCode, CloseReason, Codec, Frame, Item, Message,
        ProtocolError,
    },
    RequestHead,
};
use actix_web::http::{header, Method};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use tokio::{io::AsyncWriteExt as _, net::TcpStream};
use tokio_util::codec::{Decoder as _, Encoder as _};

use super::{head::Head, wire, Admission};
use crate::{
    accounting::{ws_frame_len, Handshake, Meter, OpenGuard},
    event::text_frame,
    feed::LagLimit,
    incoming::Incoming as _,
    state::AppState,
    transport::{
        start_cursor,
        ws::{
            answer, check_auth_message, close, missed_notice, protocol_close, too_slow,
            AUTHENTICATED,
        },
        FeedQuery, Transport,
    },
};

pub struct Ready {
    meter: Meter,
    open: OpenGuard,
    cursor: u64,
    must_authenticate: bool,
    accept: String,
}

/// The checks of the actix-web handler, in its order; anything it would refuse goes to it.
pub fn admit(head: &Head, state: &Arc<AppState>) -> Admission<Ready> {
    let Some((key, accept)) = handshake(head, state) else {
        return Admission::Actix;
    };
    let Ok(q) = FeedQuery::from_request(head) else {
        return Admission::Actix;
    };
    let must_authenticate = match crate::auth::presented(head, q.token.as_deref()) {
        Some(_) if q.authorize(head, state).is_err() => return Admission::Actix,
        Some(_) => false,
        None => state.config.auth_token.is_some(),
    };
    let Ok(cursor) = start_cursor(state, q.since) else {
        return Admission::Actix;
    };
    let meter = state.accounting.meter(Transport::Ws, q.client.as_deref());
    meter.request();
    let open = match state.open(&meter, head) {
        Ok(open) => open,
        Err(err) => return Admission::Refuse(err, meter),
    };
    if let Some(client) = &meter.client {
        *client.ws_handshake.lock() = Some(Handshake {
            key,
            accept: accept.clone(),
        });
    }
    Admission::Serve(Ready {
        meter,
        open,
        cursor,
        must_authenticate,
        accept,
    })
}

/// Completes the handshake and runs the session until one side closes it.
pub async fn serve(mut socket: TcpStream, ready: Ready, state: Arc<AppState>) {
    match write_handshake(&mut socket, &ready.accept, state.config.send_timeout).await {
        Ok(n) => ready.meter.bytes(n as u64),
        Err(_) => return,
    }
    let mut session = Session {
        inbound: Inbound::new(state.config.ws_max_message_bytes),
        socket,
        meter: ready.meter,
        _open: ready.open,
        state,
    };
    let end = session.run(ready.cursor, ready.must_authenticate).await;
    session.finish(end).await;
}

/// How a session ends.
enum End {
    /// We close: send this close frame, then wait (`--close-timeout`) for the client's.
    Close(Option<CloseReason>),
    /// The client closed: answer with this close frame and hang up.
    Answer(Option<CloseReason>),
    /// The connection is gone; nothing more can be sent.
    Gone,
}

impl End {
    /// The close frame to send, and whether to wait for the client's; `None` when nothing can
    /// be sent.
    fn close_frame(self) -> Option<(Option<CloseReason>, bool)> {
        match self {
            Self::Gone => None,
            Self::Close(reason) => Some((reason, true)),
            Self::Answer(reason) => Some((reason, false)),
        }
    }
}

struct Session {
    socket: TcpStream,
    state: Arc<AppState>,
    meter: Meter,
    inbound: Inbound,
    _open: OpenGuard,
}

impl Session {
    async fn run(&mut self, mut cursor: u64, mut must_authenticate: bool) -> End {
        let state = self.state.clone();
        let config = &state.config;
        let mut head = state.feed.subscribe();
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + config.heartbeat,
            config.heartbeat,
        );
        let auth_deadline = tokio::time::sleep(config.request_timeout);
        tokio::pin!(auth_deadline);
        let mut last_heard = Instant::now();
        let lag = LagLimit::new(config.max_lag(), state.feed.head().saturating_sub(cursor));
        loop {
            if !must_authenticate {
                match self.deliver(&mut cursor, &lag).await {
                    Ok(true) => continue, // more pending
                    Ok(false) => {}
                    Err(end) => return end,
                }
            }
            // Shutdown: the feed wakes every waiter when it closes (no shutdown future per pass,
            // whose polls would all take one shared lock).
            if state.feed.is_closed() {
                return End::Close(Some(CloseReason {
                    code: CloseCode::Away,
                    description: Some("server shutting down".into()),
                }));
            }
            tokio::select! {
                biased;
                ready = self.socket.readable() => {
                    if ready.is_err() {
                        return End::Gone;
                    }
                    last_heard = Instant::now();
                    match self.inbound.fill(&self.socket) {
                        Ok(true) => {}
                        Ok(false) | Err(_) => return End::Gone,
                    }
                    loop {
                        let msg = match self.inbound.next() {
                            Ok(Some(msg)) => msg,
                            Ok(None) => break,
                            Err(reason) => return End::Close(Some(reason)),
                        };
                        if let Some(end) = self.on_message(msg, &mut must_authenticate).await {
                            return end;
                        }
                    }
                }
                changed = head.changed() => {
                    if changed.is_err() {
                        return End::Close(None);
                    }
                }
                _ = heartbeat.tick(), if !must_authenticate => {
                    if last_heard.elapsed() > config.ws_client_timeout {
                        return End::Close(Some(close(
                            CloseCode::Policy,
                            "no pong within --ws-client-timeout".into(),
                        )));
                    }
                    self.meter.bytes(ws_frame_len(0));
                    if let Err(end) = self.send(&control(Message::Ping(Bytes::new()))).await {
                        return end;
                    }
                }
                _ = &mut auth_deadline, if must_authenticate => {
                    return End::Close(Some(close(
                        CloseCode::Policy,
                        "no auth message within --request-timeout".into(),
                    )));
                }
            }
        }
    }

    /// Writes what is pending after `cursor` in one vectored write; `Ok(true)` when more is.
    async fn deliver(&mut self, cursor: &mut u64, lag: &LagLimit) -> Result<bool, End> {
        let state = self.state.clone();
        let config = &state.config;
        let Ok(batch) = state.feed.since_within(
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
            let notice = missed_notice(&batch);
            self.meter.bytes(ws_frame_len(notice.len()));
            self.send(&text_frame(notice.as_bytes())).await?;
        }
        if !batch.events.is_empty() {
            let bytes: usize = batch.events.iter().map(|e| e.ws_frame.len()).sum();
            let limit = config.send_timeout;
            let mut parts: wire::Parts<'_> = batch
                .events
                .iter()
                .map(|e| IoSlice::new(&e.ws_frame))
                .collect();
            wire::write_all(&mut self.socket, &mut parts[..], limit)
                .await
                .map_err(write_failed)?;
            self.meter
                .delivered(batch.events.len() as u64, bytes as u64);
        }
        *cursor = batch.next;
        Ok(batch.behind() > 0)
    }

    async fn on_message(&mut self, msg: Msg, must_authenticate: &mut bool) -> Option<End> {
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
                Msg::Ping(bytes) => self.send(&control(Message::Pong(bytes))).await.err(),
                Msg::Pong => None,
                Msg::Binary(_) | Msg::Close(_) => Some(End::Close(Some(close(
                    CloseCode::Policy,
                    "authenticate first".into(),
                )))),
            };
        }
        match msg {
            Msg::Text(text) => {
                self.meter.message_received();
                match answer(&state, &text).await {
                    Ok(reply) => {
                        self.meter.bytes(ws_frame_len(reply.len()));
                        self.send(&text_frame(reply.as_bytes())).await.err()
                    }
                    Err(reason) => Some(End::Close(Some(reason))),
                }
            }
            Msg::Binary(_) => {
                self.meter.message_received();
                Some(End::Close(Some(close(
                    CloseCode::Unsupported,
                    "binary messages are not understood on /ws; send JSON text".into(),
                ))))
            }
            Msg::Ping(bytes) => {
                self.meter.bytes(ws_frame_len(bytes.len()));
                self.send(&control(Message::Pong(bytes))).await.err()
            }
            Msg::Pong => None,
            // Answer a close with the same code, as RFC 6455 section 5.5.1 suggests.
            Msg::Close(reason) => Some(End::Answer(Some(CloseReason {
                code: reason.map_or(CloseCode::Normal, |r| r.code),
                description: None,
            }))),
        }
    }

    async fn send(&mut self, frame: &Bytes) -> Result<(), End> {
        let limit = self.state.config.send_timeout;
        wire::write_all(&mut self.socket, &mut [IoSlice::new(frame)], limit)
            .await
            .map_err(write_failed)
    }

    /// Sends the close frame and lets the connection go: at once when the client closed first,
    /// after its close frame (or `--close-timeout`) when we did.
    async fn finish(mut self, end: End) {
        let Some((reason, wait)) = end.close_frame() else {
            return;
        };
        if let Some(r) = &reason {
            self.meter.bytes(ws_frame_len(
                2 + r.description.as_ref().map_or(0, String::len),
            ));
        }
        let config = &self.state.config;
        close_handshake(&mut self.socket, &mut self.inbound, reason, wait, config).await;
    }
}

/// Sends the close frame; when we closed first, waits up to `close_timeout` for the client's
/// (reading and dropping anything before it); then shuts the connection down.
async fn close_handshake(
    socket: &mut TcpStream,
    inbound: &mut Inbound,
    reason: Option<CloseReason>,
    wait: bool,
    config: &crate::config::Config,
) {
    let frame = control(Message::Close(reason));
    if wire::write_all(socket, &mut [IoSlice::new(&frame)], config.send_timeout)
        .await
        .is_err()
    {
        return;
    }
    if wait {
        let until_closed = async {
            loop {
                if socket.readable().await.is_err() {
                    return;
                }
                match inbound.fill(socket) {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return,
                }
                loop {
                    match inbound.next() {
                        Ok(Some(Msg::Close(_))) | Err(_) => return,
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                    }
                }
            }
        };
        let _ = tokio::time::timeout(config.close_timeout, until_closed).await;
    }
    let _ = socket.shutdown().await;
}

/// The client's `Sec-WebSocket-Key` and our `Sec-WebSocket-Accept`, when `head` is a valid
/// handshake (as actix-http judges it) from an allowed origin; `None` leaves the request to the
/// actix-web handler, which answers why not.
fn handshake(head: &Head, state: &AppState) -> Option<(String, String)> {
    let mut request = RequestHead::default();
    request.method = Method::GET;
    request.headers = head.headers().clone();
    if verify_handshake(&request).is_err() || state.origins.check(head).is_err() {
        return None;
    }
    let key = head.headers().get(header::SEC_WEBSOCKET_KEY)?.as_bytes();
    Some((
        String::from_utf8_lossy(key).into_owned(),
        String::from_utf8_lossy(&hash_key(key)).into_owned(),
    ))
}

/// `/ws/echo`: checked like the actix-web handler (handshake, `Origin`); nothing else applies.
pub fn admit_echo(head: &Head, state: &Arc<AppState>) -> Admission<String> {
    match handshake(head, state) {
        Some((_, accept)) => Admission::Serve(accept),
        None => Admission::Actix,
    }
}

/// Echoes every message back as it came, answers pings, and closes like the feed session.
pub async fn serve_echo(mut socket: TcpStream, accept: String, state: Arc<AppState>) {
    let config = &state.config;
    let limit = config.send_timeout;
    if write_handshake(&mut socket, &accept, limit).await.is_err() {
        return;
    }
    let echo = &state.accounting.echo;
    let mut inbound = Inbound::new(config.ws_max_message_bytes);
    // Echo sessions take no events: they wait for shutdown alone, not for every publish.
    let stopped = state.stop.clone().cancelled_owned();
    tokio::pin!(stopped);
    let end = 'session: loop {
        tokio::select! {
            _ = &mut stopped => {
                break End::Close(Some(close(CloseCode::Away, "server shutting down".into())));
            }
            ready = socket.readable() => {
                if ready.is_err() {
                    break End::Gone;
                }
                match inbound.fill(&socket) {
                    Ok(true) => {}
                    Ok(false) | Err(_) => break End::Gone,
                }
                loop {
                    let frame = match inbound.next() {
                        Ok(Some(Msg::Text(text))) => text_frame(text.as_bytes()),
                        Ok(Some(Msg::Binary(bytes))) => control(Message::Binary(bytes)),
                        Ok(Some(Msg::Ping(bytes))) => control(Message::Pong(bytes)),
                        Ok(Some(Msg::Pong)) => continue,
                        Ok(Some(Msg::Close(reason))) => {
                            break 'session End::Answer(reason.map(|r| CloseReason {
                                code: r.code,
                                description: None,
                            }))
                        }
                        Ok(None) => break,
                        Err(reason) => break 'session End::Close(Some(reason)),
                    };
                    if !matches!(frame.first(), Some(0x8a)) {
                        echo.messages_received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        echo.bytes_written
                            .fetch_add(frame.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    if let Err(e) = wire::write_all(&mut socket, &mut [IoSlice::new(&frame)], limit).await {
                        break 'session write_failed(e);
                    }
                }
            }
        }
    };
    let Some((reason, wait)) = end.close_frame() else {
        return;
    };
    close_handshake(&mut socket, &mut inbound, reason, wait, config).await;
}

/// Writes the `101 Switching Protocols` answer.
async fn write_handshake(
    socket: &mut TcpStream,
    accept: &str,
    limit: std::time::Duration,
) -> io::Result<usize> {
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-accept: {accept}\r\n{}\r\n",
        wire::date_line()
    );
    wire::write_all(socket, &mut [IoSlice::new(head.as_bytes())], limit).await?;
    Ok(head.len())
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

/// A control frame (ping, pong, close), encoded by actix-http's codec (unmasked: server side).
fn control(msg: Message) -> Bytes {
    let mut buf = BytesMut::new();
    // Control messages always encode; an error would mean a payload over 125 bytes, which
    // close reasons are truncated below and pings/pongs echo from a decoded control frame.
    let _ = Codec::new().encode(msg, &mut buf);
    buf.freeze()
}

/// A whole message from the client.
#[derive(Debug)]
enum Msg {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    Close(Option<CloseReason>),
}

/// Client frames in, whole messages out.
struct Inbound {
    codec: Codec,
    buf: BytesMut,
    /// A fragmented message being joined: whether it is text, and its bytes so far.
    partial: Option<(bool, BytesMut)>,
    max: usize,
}

impl Inbound {
    fn new(max: usize) -> Self {
        Self {
            codec: Codec::new().max_size(max),
            buf: BytesMut::new(),
            partial: None,
            max,
        }
    }

    /// Reads what the socket has without waiting. `Ok(false)`: the client closed its side.
    fn fill(&mut self, socket: &TcpStream) -> io::Result<bool> {
        let mut chunk = [0u8; 2048];
        let mut read_any = false;
        loop {
            match socket.try_read(&mut chunk) {
                // After data, the end is reported by the next call, once that data is handled.
                Ok(0) => return Ok(read_any),
                Ok(n) => {
                    read_any = true;
                    self.buf.extend_from_slice(&chunk[..n]);
                    // A partial read means the socket is drained; a buffer past one message is
                    // enough to decode (or to refuse) before reading more.
                    if n < chunk.len() || self.buf.len() > self.max.saturating_add(chunk.len()) {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) => return Err(e),
            }
        }
    }

    /// The next whole message in the buffer, or the close reason for a broken one.
    fn next(&mut self) -> Result<Option<Msg>, CloseReason> {
        loop {
            let frame = match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    if self.buf.is_empty() {
                        self.buf = BytesMut::new(); // idle sessions keep no buffer
                    }
                    return Ok(None);
                }
                Err(err) => return Err(protocol_close(&err, self.max)),
            };
            match frame {
                Frame::Text(bytes) => return text(bytes).map(Some),
                Frame::Binary(bytes) => return Ok(Some(Msg::Binary(bytes))),
                Frame::Ping(bytes) => return Ok(Some(Msg::Ping(bytes))),
                Frame::Pong(_) => return Ok(Some(Msg::Pong)),
                Frame::Close(reason) => return Ok(Some(Msg::Close(reason))),
                Frame::Continuation(Item::FirstText(bytes)) => self.start(true, &bytes)?,
                Frame::Continuation(Item::FirstBinary(bytes)) => self.start(false, &bytes)?,
                Frame::Continuation(Item::Continue(bytes)) => {
                    self.append(&bytes)?;
                }
                Frame::Continuation(Item::Last(bytes)) => {
                    let is_text = self.append(&bytes)?;
                    let (_, joined) = self.partial.take().unwrap_or_default();
                    return if is_text {
                        text(joined.freeze()).map(Some)
                    } else {
                        Ok(Some(Msg::Binary(joined.freeze())))
                    };
                }
            }
        }
    }

    fn start(&mut self, is_text: bool, bytes: &[u8]) -> Result<(), CloseReason> {
        self.partial = Some((is_text, BytesMut::new()));
        self.append(bytes).map(|_| ())
    }

    /// Adds a fragment to the message being joined; returns whether it is text.
    fn append(&mut self, bytes: &[u8]) -> Result<bool, CloseReason> {
        let Some((is_text, joined)) = &mut self.partial else {
            return Err(protocol_close(
                &ProtocolError::ContinuationNotStarted,
                self.max,
            ));
        };
        if joined.len() + bytes.len() > self.max {
            return Err(protocol_close(&ProtocolError::Overflow, self.max));
        }
        joined.extend_from_slice(bytes);
        Ok(*is_text)
    }
}

fn text(bytes: Bytes) -> Result<Msg, CloseReason> {
    ByteString::try_from(bytes)
        .map(Msg::Text)
        .map_err(|_| close(CloseCode::Invalid, "text message is not valid UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame (RFC 6455 section 5.3), as a browser would send it.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        assert!(payload.len() < 126);
        f.push(0x80 | payload.len() as u8);
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn feed(inbound: &mut Inbound, bytes: &[u8]) {
        inbound.buf.extend_from_slice(bytes);
    }

    #[test]
    fn fragments_are_joined_into_one_message() {
        let mut inbound = Inbound::new(100);
        feed(&mut inbound, &client_frame(false, 0x1, b"{\"op\":"));
        feed(&mut inbound, &client_frame(true, 0x9, b"p")); // a ping between fragments
        feed(&mut inbound, &client_frame(false, 0x0, b"\"echo\""));
        feed(&mut inbound, &client_frame(true, 0x0, b"}"));
        assert!(matches!(inbound.next(), Ok(Some(Msg::Ping(p))) if &p[..] == b"p"));
        match inbound.next() {
            Ok(Some(Msg::Text(t))) => assert_eq!(&*t, "{\"op\":\"echo\"}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(inbound.next(), Ok(None)));
        assert_eq!(inbound.buf.capacity(), 0, "an idle session keeps no buffer");
    }

    #[test]
    fn broken_frames_get_the_rfc_close_codes() {
        let mut inbound = Inbound::new(8);
        feed(&mut inbound, &client_frame(false, 0x1, b"12345"));
        feed(&mut inbound, &client_frame(true, 0x0, b"6789"));
        assert_eq!(inbound.next().unwrap_err().code, CloseCode::Size);

        let mut inbound = Inbound::new(100);
        feed(&mut inbound, &client_frame(true, 0x1, &[0xff, 0xfe]));
        assert_eq!(inbound.next().unwrap_err().code, CloseCode::Invalid);

        let mut inbound = Inbound::new(100);
        feed(&mut inbound, &[0x81, 0x01, b'x']); // unmasked
        assert_eq!(inbound.next().unwrap_err().code, CloseCode::Protocol);
    }
}
