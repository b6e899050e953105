//! WebSockets: tokio-tungstenite over the counted TCP stream (TLS, when `wss://`, is loadgen's
//! own layer under it, so records are counted too), so frame headers, masks, pings and the close
//! handshake are all on the bill. At the end the client closes properly (1000)
//! and reads the server's close frame, which the server counts as written.

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig, Message};

use std::collections::VecDeque;

use super::{link::Link, ClientCtx, RESPONSE_TIMEOUT};
use crate::{
    clock,
    event::WsMsg,
    net,
    stats::Recorder,
    upstream::{self, Due, Outbox, Schedule, SendPlan},
};

/// tungstenite's buffers, kept small: its defaults (128 KiB write buffer threshold) are sized
/// for throughput, and loadgen holds 10,000 of these.
fn config() -> WebSocketConfig {
    WebSocketConfig {
        write_buffer_size: 0,
        max_write_buffer_size: 1 << 20,
        max_message_size: Some(16 << 20),
        max_frame_size: Some(16 << 20),
        ..WebSocketConfig::default()
    }
}

pub async fn run(ctx: &ClientCtx, rec: &mut Recorder, mut out: Option<&mut Outbox>) {
    let s = &ctx.shared;
    let mut link = Link::new(ctx);
    // Talking back: messages go up this socket; their acknowledgements come back on it in order.
    let mut talk = s.send.as_ref().map(|plan| Talk {
        plan,
        from: plan.from(ctx.index),
        schedule: Schedule::new(plan),
        pending: VecDeque::new(),
    });
    'connection: loop {
        let Some(permit) = link.attempt(ctx, rec).await else {
            break;
        };
        let target = link.target(ctx).clone();
        // WebSockets upgrade HTTP/1.1 only: ALPN says so even when the phase's HTTP is 2.
        let stream = match net::connect(
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
                link.down(ctx, rec);
                continue;
            }
        };
        rec.connections += 1;
        let cursor = rec.seq.resume_cursor();
        let url = target.ws_url(&s.stream_path(cursor));
        let handshake = tokio_tungstenite::client_async_with_config(url, stream, Some(config()));
        let handshake = tokio::select! {
            biased;
            _ = s.stop.cancelled() => break,
            r = tokio::time::timeout(RESPONSE_TIMEOUT, handshake) => r,
        };
        let mut ws = match handshake {
            Ok(Ok((ws, _response))) => ws,
            Ok(Err(tungstenite::Error::Http(res))) => {
                rec.request();
                rec.error(format!("http_{}", res.status().as_u16()));
                link.down(ctx, rec);
                continue;
            }
            Ok(Err(e)) => {
                rec.error(error_kind(&e));
                link.down(ctx, rec);
                continue;
            }
            Err(_) => {
                rec.error("timeout");
                link.down(ctx, rec);
                continue;
            }
        };
        drop(permit);
        rec.request();
        link.up(ctx);
        // What the last socket left unacknowledged goes again, with the same keys.
        if let (Some(talk), Some(out)) = (talk.as_ref(), out.as_deref_mut()) {
            let mut resent = Ok(());
            for due in &talk.pending {
                out.retried += 1;
                out.maybe_twice += 1;
                resent = ws.send(Message::Text(talk.frame(due))).await;
                if resent.is_err() {
                    break;
                }
            }
            if let Err(e) = resent {
                rec.error(error_kind(&e));
                link.down(ctx, rec);
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
                    let _ = ws.send(Message::Close(None)).await;
                    let drain = async {
                        while let Some(Ok(msg)) = ws.next().await {
                            if let Message::Text(t) = msg {
                                text(&t, rec, talk.as_mut(), out.as_deref_mut());
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
                    if let Err(e) = ws.send(Message::Text(talk.frame(&due))).await {
                        rec.error(error_kind(&e));
                        break;
                    }
                    continue;
                }
                msg = ws.next() => msg,
            };
            match msg {
                Some(Ok(Message::Text(t))) => text(&t, rec, talk.as_mut(), out.as_deref_mut()),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    rec.error(format!("ws_close_{code}"));
                    // tungstenite answers the close; read until the stream ends.
                    let _ = tokio::time::timeout(RESPONSE_TIMEOUT, async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    break;
                }
                Some(Ok(_)) => {} // pings are answered by tungstenite
                Some(Err(e)) => {
                    rec.error(error_kind(&e));
                    break;
                }
                None => {
                    rec.error("ws_ended");
                    break;
                }
            }
        }
        link.down(ctx, rec);
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
        upstream::ws_publish(self.plan, self.from, due)
    }
}

fn text(t: &str, rec: &mut Recorder, talk: Option<&mut Talk<'_>>, out: Option<&mut Outbox>) {
    let now = clock::now_us();
    match serde_json::from_str::<WsMsg>(t) {
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
}

fn error_kind(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => net::io_error_kind(io).to_owned(),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "ws_closed".into()
        }
        tungstenite::Error::Protocol(_) => "ws_protocol".into(),
        tungstenite::Error::Capacity(_) => "ws_too_big".into(),
        tungstenite::Error::Http(res) => format!("http_{}", res.status().as_u16()),
        _ => "ws_other".into(),
    }
}
