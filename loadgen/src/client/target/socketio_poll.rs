//! Socket.IO's long polling (Engine.IO v4's polling transport), on one kept HTTP/1.1 connection
//! per client, as a browser's Socket.IO client without WebSocket does it.
//!
//! A session opens with a `GET` (the answer `0{"sid":…}` names it), subscribes with a `POST`
//! of the namespace connect packet, and then `GET`s with its `sid`: each is held until the
//! server has packets for it, which come several to an answer, separated by `\x1e`. The
//! server's session buffers what is published between two polls, so a client that keeps its
//! session misses nothing; one that loses it (a `400`) opens a new one and loadgen counts the
//! gap. A ping packet (`2`) is answered with a `POST` of `3`. At the end of the phase a held
//! poll is abandoned.

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::{header, Request, StatusCode};

use super::{socketio, Channel, WsText};
use crate::{
    client::{failover::Failover, ClientCtx},
    clock,
    event::EventMsg,
    net::{self, HttpVersion, Sender, Target},
    stats::Recorder,
};

/// Separates packets in one polling answer.
const SEPARATOR: u8 = 0x1e;

/// Where a client's session is.
enum State {
    /// No session: the next request opens one.
    Closed,
    /// Opened (`sid`), the connect packet not yet answered.
    Opened(String),
    /// Subscribed.
    Subscribed(String),
}

pub async fn run(ctx: &ClientCtx, rec: &mut Recorder, channel: &Channel) {
    let s = &ctx.shared;
    let mut failover = Failover::new(ctx);
    let mut conn: Option<(Sender, net::Connection)> = None;
    let mut state = State::Closed;
    // Packets to send before the next poll (the connect packet, pongs).
    let mut outgoing: Vec<String> = Vec::new();
    while !s.stop.is_cancelled() {
        if conn.is_none() {
            let Some(_permit) = failover.attempt(ctx, rec).await else {
                break;
            };
            let target = failover.target(ctx).clone();
            match net::connect(&target, ctx.source_ip(&target), &ctx.wire, net::Alpn::Http1).await {
                Ok(stream) => match net::http_inline(stream, HttpVersion::Http11).await {
                    Ok(c) => {
                        rec.connections += 1;
                        conn = Some(c);
                    }
                    Err(e) => rec.error(net::hyper_error_kind(&e)),
                },
                Err(e) => rec.error(net::io_error_kind(&e)),
            }
            if conn.is_none() {
                failover.down(ctx, rec);
                continue;
            }
        }
        let target = failover.target(ctx).clone();
        let path = match &state {
            State::Closed => channel.poll.clone(),
            State::Opened(sid) | State::Subscribed(sid) => format!("{}&sid={sid}", channel.poll),
        };
        let post = match &state {
            State::Closed => None,
            _ if outgoing.is_empty() => None,
            _ => Some(outgoing.join("\u{1e}")),
        };
        let held = post.is_none() && matches!(state, State::Subscribed(_));
        let Some(req) = request(&target, &path, post.as_deref()) else {
            rec.error("bad_request");
            break;
        };
        let outcome = {
            let Some((sender, connection)) = conn.as_mut() else {
                break;
            };
            // A held poll waits for as long as nothing comes: the phase's end abandons it.
            match super::answered(exchange(sender, req), connection, held, &s.stop).await {
                Some(a) => a,
                None => break,
            }
        };
        let (status, body) = match outcome {
            Ok(a) => a,
            Err(kind) => {
                rec.error(kind);
                conn = None;
                state = State::Closed;
                failover.down(ctx, rec);
                continue;
            }
        };
        rec.request();
        if status != StatusCode::OK {
            // 400: the session is gone (unknown sid); anything else is the server's error.
            rec.error(format!("http_{}", status.as_u16()));
            state = State::Closed;
            outgoing.clear();
            failover.down(ctx, rec);
            continue;
        }
        if post.is_some() {
            outgoing.clear();
            continue;
        }
        let now = clock::now_us();
        let mut events = 0;
        for p in body.split(|&b| b == SEPARATOR).filter(|p| !p.is_empty()) {
            if let State::Closed = state {
                match open_sid(p) {
                    Some(sid) => {
                        outgoing.push(socketio::connect_packet(&channel.id));
                        state = State::Opened(sid);
                    }
                    None => rec.error("socketio_no_session"),
                }
                continue;
            }
            match socketio::packet(p) {
                WsText::Event(envelope) => match serde_json::from_slice::<EventMsg>(envelope) {
                    Ok(e) => {
                        events += 1;
                        rec.event(e.seq, e.ts, e.data, now);
                    }
                    Err(_) => rec.error("bad_body"),
                },
                WsText::Reply(pong) => outgoing.push(pong.to_owned()),
                WsText::Subscribed => {
                    if let State::Opened(sid) = &state {
                        state = State::Subscribed(sid.clone());
                        failover.up(ctx);
                    }
                }
                WsText::Ended(kind) => {
                    rec.error(kind);
                    state = State::Closed;
                }
                WsText::Other => {}
            }
        }
        if matches!(state, State::Closed) {
            outgoing.clear();
            failover.down(ctx, rec);
        } else if events == 0 && held {
            rec.empty_responses += 1;
        }
    }
    if let Some((sender, mut connection)) = conn.take() {
        drop(sender);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), connection.as_mut()).await;
    }
}

/// The session id in Engine.IO's open packet (`0{"sid":…}`).
fn open_sid(p: &[u8]) -> Option<String> {
    let json = p.strip_prefix(b"0")?;
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    v["sid"].as_str().map(str::to_owned)
}

/// A poll (`GET`), or a `POST` of `packets`.
fn request(target: &Target, path: &str, packets: Option<&str>) -> Option<Request<net::Body>> {
    match packets {
        None => target
            .get(path, HttpVersion::Http11)
            .body(net::empty())
            .ok(),
        Some(text) => Request::post(target.path(path))
            .header(header::HOST, &target.host)
            .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
            .body(net::full(Bytes::from(text.to_owned())))
            .ok(),
    }
}

async fn exchange(
    sender: &mut Sender,
    req: Request<net::Body>,
) -> Result<(StatusCode, Bytes), &'static str> {
    sender
        .ready()
        .await
        .map_err(|e| net::hyper_error_kind(&e))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| net::hyper_error_kind(&e))?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| net::hyper_error_kind(&e))?
        .to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_packet_names_the_session() {
        assert_eq!(
            open_sid(
                br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000}"#
            ),
            Some("lv_VI97HAXpY6yYWAAAC".into())
        );
        assert_eq!(open_sid(b"40"), None);
    }
}
