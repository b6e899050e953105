//! WebSockets: yawc over the counted TCP stream (TLS, when `wss://`, is loadgen's own layer
//! under it, so records are counted too), so frame headers, masks, pings and the close handshake
//! are all on the bill. At the end the client closes properly (1000) and reads the server's close
//! frame, which the server counts as written.
//!
//! Why yawc and not tungstenite: `--compression on` must offer and speak permessage-deflate
//! (RFC 7692) as a browser does. tungstenite (0.24 through 0.30) has no deflate support and
//! rejects any frame with RSV1 set, so it cannot even hand compressed messages to a decoder of
//! ours; yawc implements RFC 7692 (context takeover or not, window bits) on flate2. The upgrade
//! request is loadgen's own, sent with hyper over the counted stream, so the report can show
//! exactly what the server answered in `Sec-WebSocket-Extensions`; yawc then runs the protocol
//! on the upgraded stream with those agreed parameters. yawc inflates inside its frame reader,
//! so loadgen's decode CPU here is the thread CPU of each whole receive poll (read, unmask,
//! inflate): an upper bound of the inflating. It is measured only with compression offered, so
//! a run without it makes no extra system calls (the thread clock is not in the vDSO).

use std::{collections::VecDeque, future::poll_fn, task::Poll};

use bytes::Bytes;
use futures_util::SinkExt as _;
use http_body_util::{BodyExt as _, Empty};
use hyper::{header, upgrade::Upgraded, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};
use yawc::{close::CloseCode, Frame, OpCode, Options, Role, WebSocket, WebSocketError};

use super::{failover::Failover, ClientCtx, RESPONSE_TIMEOUT};
use crate::{
    client::talk_back::{self, Due, Outbox, Schedule, SendPlan},
    client::target::{Channel, WsText},
    clock,
    compression::{self, Decoding},
    event::WsMsg,
    heads::Kind,
    net::{self, Target},
    stats::Recorder,
};

/// Largest message (after inflating) and frame loadgen accepts, bytes.
pub const MAX_MESSAGE: usize = 16 << 20;

type Socket = WebSocket<TokioIo<Upgraded>>;

/// yawc's settings: loadgen holds 10,000 of these, so its buffers stay at their 8 KiB default;
/// with compression on, the agreed permessage-deflate also compresses what the client sends
/// (talking back), at zlib's default level, as browsers do.
fn options(compress: bool) -> Options {
    let o = Options::default()
        .with_max_payload_read(MAX_MESSAGE)
        .with_max_read_buffer(2 * MAX_MESSAGE);
    if compress {
        o.with_balanced_compression()
    } else {
        o.without_compression()
    }
}

/// Why a handshake failed: the report's error kind (and a refusal's `Retry-After`).
enum Refused {
    Status(StatusCode, Option<std::time::Duration>),
    Kind(&'static str),
}

/// The upgrade over `stream`, offering permessage-deflate when `compress`: the socket, and the
/// extension the server agreed to (if any).
async fn handshake(
    stream: net::Stream,
    target: &Target,
    path: &str,
    compress: bool,
) -> Result<(Socket, Option<String>), Refused> {
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| Refused::Kind(net::hyper_error_kind(&e)))?;
    let connection = tokio::spawn(conn.with_upgrades());
    let key = generate_key();
    let mut req = Request::get(target.path(path))
        .header(header::HOST, &target.host)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, &key);
    if compress {
        req = req.header(header::SEC_WEBSOCKET_EXTENSIONS, compression::WS_OFFER);
    }
    let req = target
        .dress
        .apply(req, Kind::Ws, false, compress)
        .body(Empty::new())
        .map_err(|_| Refused::Kind("bad_request"))?;
    let mut res = sender
        .send_request(req)
        .await
        .map_err(|e| Refused::Kind(net::hyper_error_kind(&e)))?;
    if res.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = res.status();
        let after =
            crate::storm::retry_after(res.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()));
        // Read the refusal to its end, so its bytes are counted as the server counts them.
        let _ = res.body_mut().collect().await;
        connection.abort();
        return Err(Refused::Status(status, after));
    }
    let accept = res.headers().get(header::SEC_WEBSOCKET_ACCEPT);
    if accept.map(|a| a.as_bytes()) != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
        return Err(Refused::Kind("ws_bad_accept"));
    }
    let agreed = res
        .headers()
        .get(header::SEC_WEBSOCKET_EXTENSIONS)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // A server may only agree to what was offered.
    if agreed.is_some() && !compress {
        return Err(Refused::Kind("ws_unoffered_extension"));
    }
    let upgraded = hyper::upgrade::on(&mut res)
        .await
        .map_err(|e| Refused::Kind(net::hyper_error_kind(&e)))?;
    let ws = WebSocket::from_stream_with_extensions(
        TokioIo::new(upgraded),
        Role::Client,
        agreed.as_deref(),
        options(compress),
    )
    .map_err(|e| Refused::Kind(error_kind(&e)))?;
    Ok((ws, agreed))
}

/// The next frame, its payload counted on `decoding`, with the thread CPU of every poll it took
/// when `timed` (compression offered).
async fn next_frame(ws: &mut Socket, decoding: &Decoding, timed: bool) -> yawc::Result<Frame> {
    poll_fn(|cx| {
        let start = if timed {
            compression::thread_cpu_ns()
        } else {
            0
        };
        let r = ws.poll_next_frame(cx);
        let cpu = if timed {
            compression::thread_cpu_ns().saturating_sub(start)
        } else {
            0
        };
        let size = match &r {
            Poll::Ready(Ok(f)) if matches!(f.opcode(), OpCode::Text | OpCode::Binary) => {
                f.payload().len()
            }
            _ => 0,
        };
        decoding.add(size, cpu);
        r
    })
    .await
}

pub async fn run(ctx: &ClientCtx, rec: &mut Recorder, mut out: Option<&mut Outbox>) {
    let s = &ctx.shared;
    let decoding = &ctx.wire.decoding;
    let mut failover = Failover::new(ctx);
    // Talking back: messages go up this socket; their acknowledgements come back on it in order.
    let mut talk = s.send.as_ref().map(|plan| Talk {
        plan,
        from: plan.from(ctx.index),
        schedule: Schedule::new(plan),
        pending: VecDeque::new(),
    });
    'connection: loop {
        let Some(permit) = failover.attempt(ctx, rec).await else {
            break;
        };
        let target = failover.target(ctx).clone();
        // WebSockets upgrade HTTP/1.1 only: ALPN says so even when the phase's HTTP is 2.
        let stream = match net::connect_upgrade(
            &target,
            ctx.source_ip(&target),
            &ctx.wire,
            net::Alpn::Http1,
        )
        .await
        {
            Ok(stream) => stream,
            Err(e) => {
                rec.error(net::io_error_kind(&e));
                failover.down(ctx, rec);
                continue;
            }
        };
        rec.connections += 1;
        let cursor = rec.seq.resume_cursor();
        let path = s.stream_path(cursor);
        let handshake = handshake(stream, &target, &path, s.compression);
        let handshake = tokio::select! {
            biased;
            _ = s.stop.cancelled() => break,
            r = tokio::time::timeout(RESPONSE_TIMEOUT, handshake) => r,
        };
        let mut ws = match handshake {
            Ok(Ok((ws, agreed))) => {
                decoding.answer(agreed.as_deref().unwrap_or("none"));
                ws
            }
            Ok(Err(Refused::Status(status, after))) => {
                rec.request();
                rec.error(format!("http_{}", status.as_u16()));
                failover.refused(ctx, status.as_u16(), after);
                failover.down(ctx, rec);
                continue;
            }
            Ok(Err(Refused::Kind(kind))) => {
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
        // A peer that subscribes with a message of its own (Socket.IO): connected once it says so.
        if let Some(channel) = &s.channel {
            if let Err(kind) = subscribe(&mut ws, channel, decoding, s.compression).await {
                rec.error(kind);
                failover.down(ctx, rec);
                continue;
            }
        }
        failover.up(ctx);
        // What the last socket left unacknowledged goes again, with the same keys.
        if let (Some(talk), Some(out)) = (talk.as_ref(), out.as_deref_mut()) {
            let mut resent = Ok(());
            for due in &talk.pending {
                out.retried += 1;
                out.maybe_twice += 1;
                resent = ws.send(Frame::text(talk.frame(due))).await;
                if resent.is_err() {
                    break;
                }
            }
            if let Err(e) = resent {
                rec.error(error_kind(&e));
                failover.down(ctx, rec);
                continue;
            }
        }
        loop {
            let due = async {
                match talk.as_mut() {
                    Some(t) => t.schedule.due().await,
                    None => std::future::pending().await,
                }
            };
            let msg = tokio::select! {
                biased;
                _ = s.stop.cancelled() => {
                    // Close properly and read what is still in flight, then the server's close.
                    let _ = ws.send(Frame::close(CloseCode::Normal, b"")).await;
                    let drain = async {
                        while let Ok(frame) = next_frame(&mut ws, decoding, s.compression).await {
                            match frame.opcode() {
                                OpCode::Text => {
                                    let _ = text(frame.payload(), rec, talk.as_mut(), out.as_deref_mut(), s.channel.as_deref());
                                }
                                OpCode::Close => break,
                                _ => {}
                            }
                        }
                    };
                    let _ = tokio::time::timeout(RESPONSE_TIMEOUT, drain).await;
                    break 'connection;
                }
                due = due => {
                    // unwrap: only due when talking back.
                    let talk = talk.as_mut().expect("talking back");
                    if let Some(out) = out.as_deref_mut() {
                        out.first_send(&due);
                    }
                    talk.pending.push_back(due);
                    if let Err(e) = ws.send(Frame::text(talk.frame(&due))).await {
                        rec.error(error_kind(&e));
                        break;
                    }
                    continue;
                }
                msg = next_frame(&mut ws, decoding, s.compression) => msg,
            };
            match msg {
                Ok(frame) => match frame.opcode() {
                    OpCode::Text => {
                        let answer = text(
                            frame.payload(),
                            rec,
                            talk.as_mut(),
                            out.as_deref_mut(),
                            s.channel.as_deref(),
                        );
                        match answer {
                            Ok(None) => {}
                            Ok(Some(reply)) => {
                                if let Err(e) = ws.send(Frame::text(reply)).await {
                                    rec.error(error_kind(&e));
                                    break;
                                }
                            }
                            Err(kind) => {
                                rec.error(kind);
                                break;
                            }
                        }
                    }
                    OpCode::Close => {
                        let code = frame.close_code().map_or(1005, u16::from);
                        rec.error(format!("ws_close_{code}"));
                        // yawc answers the close; read until the stream ends.
                        let _ = tokio::time::timeout(RESPONSE_TIMEOUT, async {
                            while next_frame(&mut ws, decoding, s.compression).await.is_ok() {}
                        })
                        .await;
                        break;
                    }
                    _ => {} // pings are answered by yawc
                },
                Err(WebSocketError::ConnectionClosed) => {
                    rec.error("ws_ended");
                    break;
                }
                Err(e) => {
                    rec.error(error_kind(&e));
                    break;
                }
            }
        }
        failover.down(ctx, rec);
    }
}

/// One client's talking back on its socket.
struct Talk<'a> {
    plan: &'a SendPlan,
    from: u64,
    schedule: Schedule,
    /// Sent, not yet acknowledged, in the order sent (the server answers in that order).
    pending: VecDeque<Due>,
}

impl Talk<'_> {
    fn frame(&self, due: &Due) -> String {
        talk_back::ws_publish(self.plan, self.from, due)
    }
}

/// Sends the peer's subscribe message, if it has one, and reads until the peer confirms it
/// (within [`RESPONSE_TIMEOUT`], answering what asks for an answer meanwhile).
async fn subscribe(
    ws: &mut Socket,
    channel: &Channel,
    decoding: &Decoding,
    timed: bool,
) -> Result<(), &'static str> {
    let Some(hello) = channel.peer.ws_hello(&channel.id) else {
        return Ok(());
    };
    ws.send(Frame::text(hello))
        .await
        .map_err(|e| error_kind(&e))?;
    tokio::time::timeout(RESPONSE_TIMEOUT, confirmed(ws, channel, decoding, timed))
        .await
        .unwrap_or(Err("timeout"))
}

/// Reads frames until the peer confirms the subscription.
async fn confirmed(
    ws: &mut Socket,
    channel: &Channel,
    decoding: &Decoding,
    timed: bool,
) -> Result<(), &'static str> {
    loop {
        let frame = next_frame(ws, decoding, timed)
            .await
            .map_err(|e| error_kind(&e))?;
        match frame.opcode() {
            OpCode::Text => match channel.peer.ws_text(frame.payload()) {
                WsText::Subscribed => return Ok(()),
                WsText::Reply(r) => ws.send(Frame::text(r)).await.map_err(|e| error_kind(&e))?,
                WsText::Ended(kind) => return Err(kind),
                WsText::Event(_) | WsText::Other => {}
            },
            OpCode::Close => return Err("ws_closed"),
            _ => {}
        }
    }
}

/// Handles a text frame; a peer's frame may ask for an answer (`Ok(Some)`) or end the
/// subscription (`Err`: the error kind).
fn text(
    t: &[u8],
    rec: &mut Recorder,
    talk: Option<&mut Talk<'_>>,
    out: Option<&mut Outbox>,
    channel: Option<&Channel>,
) -> Result<Option<&'static str>, &'static str> {
    let t = match channel.map(|c| c.peer.ws_text(t)) {
        None => t,
        Some(WsText::Event(envelope)) => envelope,
        Some(WsText::Reply(r)) => return Ok(Some(r)),
        Some(WsText::Ended(kind)) => return Err(kind),
        Some(WsText::Subscribed | WsText::Other) => return Ok(None),
    };
    let now = clock::now_us();
    match serde_json::from_slice::<WsMsg>(t) {
        Ok(m) if m.op.as_deref() == Some("published") => {
            match (talk.and_then(|t| t.pending.pop_front()), out, m.seq) {
                (Some(due), Some(out), Some(seq)) => out.ack(&due, seq),
                _ => rec.error("ws_unexpected_ack"),
            }
        }
        Ok(WsMsg {
            seq: Some(seq),
            ts,
            data,
            ..
        }) => rec.event(seq, ts, data, now),
        Ok(m) if m.op.as_deref() == Some("missed") => rec.seq.missed(m.missed, m.next),
        Ok(_) => {}
        Err(_) => rec.error("bad_body"),
    }
    Ok(None)
}

fn error_kind(e: &WebSocketError) -> &'static str {
    match e {
        WebSocketError::IoError(io) => net::io_error_kind(io),
        WebSocketError::HTTPError(e) => net::hyper_error_kind(e),
        WebSocketError::ConnectionClosed => "ws_closed",
        WebSocketError::FrameTooLarge => "ws_too_big",
        WebSocketError::CompressionNotSupported => "ws_deflate",
        _ => "ws_protocol",
    }
}
