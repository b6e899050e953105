//! WebSockets: one upgraded connection, full duplex.
//!
//! The only transport where the client can talk back on the same connection (`publish`, `echo`),
//! at the price of an upgrade that every proxy must be told about, a connection the server must
//! keep alive with pings, and state pinned to one process. The feed is read with the same cursor
//! as everywhere else, so a reconnect with `since=<last seq>` loses nothing.

use std::{sync::Arc, time::Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session,
};
use futures_util::StreamExt as _;
use serde_json::Value;

use super::{metered, start_cursor, FeedQuery, Transport};
use crate::{
    accounting::{ws_frame_len, Handshake, Meter, OpenGuard},
    feed::LagLimit,
    state::AppState,
};

pub async fn handler(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    state.origins.check(&req)?;
    let q = FeedQuery::from_request(&req)?;
    // A token in the URL or header is checked before the upgrade; without one, the session must
    // authenticate with its first message before it gets any event.
    let must_authenticate = match crate::auth::presented(&req, q.token.as_deref()) {
        Some(_) => {
            q.authorize(&req, &state)?;
            false
        }
        None => state.config.auth_token.is_some(),
    };
    let meter = metered(&req, &state, Transport::Ws, q.client.as_deref());
    let cursor = start_cursor(&state, q.since)?;
    let open = state.open(&meter, &req)?;
    let (res, session, msgs) = actix_ws::handle(&req, body)?;
    if let Some(client) = &meter.client {
        let header = |h: &actix_web::http::header::HeaderMap, name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        *client.ws_handshake.lock() = Some(Handshake {
            key: header(req.headers(), "sec-websocket-key"),
            accept: header(res.headers(), "sec-websocket-accept"),
        });
    }
    let msgs = msgs
        .max_frame_size(state.config.ws_max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(state.config.ws_max_message_bytes);
    actix_web::rt::spawn(async move {
        let (mut session, mut msgs) = (session, msgs);
        if must_authenticate {
            if let Err(reason) = authenticate(&state, &mut session, &mut msgs).await {
                let _ = session.close(reason).await;
                return;
            }
        }
        session_loop(state.into_inner(), meter, open, session, msgs, cursor).await;
    });
    Ok(res)
}

/// Waits for `{"op":"auth","token":…}` as the first message, within `--request-timeout`.
async fn authenticate(
    state: &AppState,
    session: &mut Session,
    msgs: &mut AggregatedMessageStream,
) -> Result<(), Option<CloseReason>> {
    let refuse = |why: &str| {
        Some(CloseReason {
            code: CloseCode::Policy,
            description: Some(why.to_owned()),
        })
    };
    let deadline = tokio::time::Instant::now() + state.config.request_timeout;
    loop {
        let msg = match tokio::time::timeout_at(deadline, msgs.next()).await {
            Err(_) => return Err(refuse("no auth message within --request-timeout")),
            Ok(None) => return Err(None),
            Ok(Some(Err(err))) => {
                return Err(Some(protocol_close(
                    &err,
                    state.config.ws_max_message_bytes,
                )))
            }
            Ok(Some(Ok(msg))) => msg,
        };
        match msg {
            AggregatedMessage::Ping(bytes) => {
                let _ = session.pong(&bytes).await;
            }
            AggregatedMessage::Pong(_) => {}
            AggregatedMessage::Text(text) => {
                return match check_auth_message(state, &text) {
                    Ok(()) => {
                        let _ = session.text(AUTHENTICATED).await;
                        Ok(())
                    }
                    Err(reason) => Err(Some(reason)),
                };
            }
            AggregatedMessage::Binary(_) | AggregatedMessage::Close(_) => {
                return Err(refuse("authenticate first"))
            }
        }
    }
}

/// The close reason for a session more than `--max-lag` behind, naming where to resume.
pub(crate) fn too_slow(behind: u64, cursor: u64) -> CloseReason {
    close(
        CloseCode::Again,
        format!(
            "client too slow: {behind} events behind (--max-lag); reconnect with since={cursor}"
        ),
    )
}

/// `{"op":"missed",…}`: how many events after the cursor are gone, and where the batch resumes.
pub(crate) fn missed_notice(batch: &crate::feed::Batch) -> String {
    let first = batch.events.first().map_or(batch.next, |e| e.seq - 1);
    format!(
        "{{\"op\":\"missed\",\"missed\":{},\"next\":{first}}}",
        batch.missed
    )
}

/// The answer to a good `{"op":"auth"}` message.
pub(crate) const AUTHENTICATED: &str = "{\"op\":\"authenticated\"}";

/// Whether a session's first text message is `{"op":"auth","token":…}` with the right token.
pub(crate) fn check_auth_message(state: &AppState, text: &str) -> Result<(), CloseReason> {
    let msg: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if msg.get("op").and_then(Value::as_str) != Some("auth") {
        return Err(close(
            CloseCode::Policy,
            "authenticate first: {\"op\":\"auth\",\"token\":...}".into(),
        ));
    }
    let token = msg.get("token").and_then(Value::as_str);
    crate::auth::check(state.config.auth_token.as_deref(), token)
        .map_err(|_| close(CloseCode::Policy, "wrong token".into()))
}

/// What the loop does after a client message.
enum Next {
    Continue,
    Close(Option<CloseReason>),
}

async fn session_loop(
    state: Arc<AppState>,
    meter: Meter,
    _open: OpenGuard,
    mut session: Session,
    mut msgs: AggregatedMessageStream,
    mut cursor: u64,
) {
    let config = &state.config;
    let mut head = state.feed.subscribe();
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + config.heartbeat,
        config.heartbeat,
    );
    let mut last_heard = Instant::now();
    let max_batch = config.max_batch as usize;
    let lag = LagLimit::new(config.max_lag(), state.feed.head().saturating_sub(cursor));
    let send_timeout = config.send_timeout;
    let reason = 'session: loop {
        // Deliver everything pending before waiting: the cursor, not a queue, is our state.
        let max_bytes = config.max_write_bytes as usize;
        if let Ok(batch) = state
            .feed
            .since_within(cursor, max_batch, max_bytes, |e| e.ws.len())
        {
            if let Some(behind) = lag.exceeded(batch.head - cursor) {
                break Some(too_slow(behind, cursor));
            }
            if batch.missed > 0 {
                let notice = missed_notice(&batch);
                meter.bytes(ws_frame_len(notice.len()));
                if let Err(r) = send_within(send_timeout, session.text(notice)).await {
                    break 'session r;
                }
            }
            for event in &batch.events {
                if let Err(r) = send_within(send_timeout, session.text(event.ws.clone())).await {
                    break 'session r;
                }
                meter.delivered(1, ws_frame_len(event.ws.len()));
            }
            cursor = batch.next;
            if batch.behind() > 0 {
                continue; // more pending
            }
        }
        tokio::select! {
            biased;
            _ = state.stop.cancelled() => {
                break Some(CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) });
            }
            msg = msgs.next() => {
                last_heard = Instant::now();
                match msg {
                    None => break None,
                    Some(Err(err)) => break Some(protocol_close(&err, config.ws_max_message_bytes)),
                    Some(Ok(msg)) => match on_message(&state, &meter, &mut session, msg).await {
                        Next::Continue => {}
                        Next::Close(reason) => break reason,
                    },
                }
            }
            changed = head.changed() => if changed.is_err() { break None },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > config.ws_client_timeout {
                    break Some(CloseReason {
                        code: CloseCode::Policy,
                        description: Some("no pong within --ws-client-timeout".into()),
                    });
                }
                meter.bytes(ws_frame_len(0));
                if let Err(r) = send_within(send_timeout, session.ping(b"")).await {
                    break 'session r;
                }
            }
        }
    };
    if let Some(r) = &reason {
        meter.bytes(ws_frame_len(
            2 + r.description.as_ref().map_or(0, String::len),
        ));
    }
    // The close frame may not get through to a client that stopped reading: bounded too.
    let _ = tokio::time::timeout(send_timeout, session.close(reason)).await;
}

/// Awaits a send for at most `limit`: a send that cannot complete means the client stopped
/// reading. `Err` carries the close reason (`None` when the session is already gone).
async fn send_within(
    limit: std::time::Duration,
    send: impl std::future::Future<Output = Result<(), actix_ws::Closed>>,
) -> Result<(), Option<CloseReason>> {
    match tokio::time::timeout(limit, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_closed)) => Err(None),
        Err(_elapsed) => Err(Some(CloseReason {
            code: CloseCode::Again,
            description: Some("client stopped reading (--send-timeout)".into()),
        })),
    }
}

async fn on_message(
    state: &AppState,
    meter: &Meter,
    session: &mut Session,
    msg: AggregatedMessage,
) -> Next {
    match msg {
        AggregatedMessage::Text(text) => {
            meter.message_received();
            let reply = match answer(state, &text).await {
                Ok(reply) => reply,
                Err(reason) => return Next::Close(Some(reason)),
            };
            meter.bytes(ws_frame_len(reply.len()));
            if session.text(reply).await.is_err() {
                return Next::Close(None);
            }
            Next::Continue
        }
        AggregatedMessage::Binary(_) => {
            meter.message_received();
            Next::Close(Some(CloseReason {
                code: CloseCode::Unsupported,
                description: Some(
                    "binary messages are not understood on /ws; send JSON text".into(),
                ),
            }))
        }
        AggregatedMessage::Ping(bytes) => {
            meter.bytes(ws_frame_len(bytes.len()));
            if session.pong(&bytes).await.is_err() {
                return Next::Close(None);
            }
            Next::Continue
        }
        AggregatedMessage::Pong(_) => Next::Continue,
        // Answer a close with the same code, as RFC 6455 section 5.5.1 suggests.
        AggregatedMessage::Close(reason) => Next::Close(Some(CloseReason {
            code: reason.map_or(CloseCode::Normal, |r| r.code),
            description: None,
        })),
    }
}

/// What a client's text message asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// `{"op":"publish","data":…}`: publish `data` (compact JSON), answer with its seq.
    Publish(String),
    /// `{"op":"echo",…}`: send the message back as it came.
    Echo,
}

/// Parses a client text message, or gives the reason to close.
pub fn client_op(text: &str) -> Result<ClientOp, CloseReason> {
    let msg: Value = serde_json::from_str(text)
        .map_err(|e| close(CloseCode::Invalid, format!("message is not JSON: {e}")))?;
    match msg.get("op").and_then(Value::as_str) {
        Some("publish") => msg
            .get("data")
            .map(|data| ClientOp::Publish(data.to_string()))
            .ok_or_else(|| close(CloseCode::Policy, "publish needs a `data` field".into())),
        Some("echo") => Ok(ClientOp::Echo),
        Some(other) => Err(close(
            CloseCode::Policy,
            format!("unknown op {other:?}; expected publish or echo"),
        )),
        None => Err(close(
            CloseCode::Policy,
            "message needs an `op` field (publish or echo)".into(),
        )),
    }
}

/// The reply to a client text message, or the reason to close.
pub(crate) async fn answer(
    state: &AppState,
    text: &bytestring::ByteString,
) -> Result<bytestring::ByteString, CloseReason> {
    match client_op(text)? {
        ClientOp::Echo => Ok(text.clone()),
        ClientOp::Publish(data) => {
            let seq = state.publish(&data).await.map_err(|e| {
                tracing::error!("ws publish: {e}");
                close(CloseCode::Error, "publishing failed on the server".into())
            })?;
            state.accounting.ws_published(text.len());
            Ok(format!("{{\"op\":\"published\",\"seq\":{seq}}}").into())
        }
    }
}

pub(crate) fn close(code: CloseCode, why: String) -> CloseReason {
    CloseReason {
        code,
        description: Some(truncate_reason(why)),
    }
}

/// The close code and reason for a broken client frame.
pub fn protocol_close(err: &ProtocolError, max: usize) -> CloseReason {
    let (code, why) = match err {
        ProtocolError::Overflow => (
            CloseCode::Size,
            format!("message larger than {max} bytes (--ws-max-message-bytes)"),
        ),
        // actix-http reports reserved bits and bad UTF-8 as the same error kind; only the
        // message tells a protocol violation (1002) from bad text (1007).
        ProtocolError::Io(e)
            if e.kind() == std::io::ErrorKind::InvalidData
                && e.to_string().contains("reserved bits") =>
        {
            (
                CloseCode::Protocol,
                "reserved bits set without an extension".to_owned(),
            )
        }
        ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => (
            CloseCode::Invalid,
            "text message is not valid UTF-8".to_owned(),
        ),
        other => (CloseCode::Protocol, format!("protocol error: {other}")),
    };
    CloseReason {
        code,
        description: Some(truncate_reason(why)),
    }
}

/// Close reasons must fit a control frame: 125 bytes less the 2-byte code.
pub(crate) fn truncate_reason(mut why: String) -> String {
    if why.len() > 123 {
        let mut end = 120;
        while !why.is_char_boundary(end) {
            end -= 1;
        }
        why.truncate(end);
        why.push_str("...");
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_errors_map_to_rfc_close_codes() {
        let io = |msg: &str| {
            ProtocolError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                msg.to_owned(),
            ))
        };
        let reserved = io("Received a frame with non-zero reserved bits");
        assert_eq!(protocol_close(&reserved, 10).code, CloseCode::Protocol);
        assert_eq!(
            protocol_close(&io("invalid utf-8 sequence"), 10).code,
            CloseCode::Invalid
        );
        assert_eq!(
            protocol_close(&ProtocolError::Overflow, 10).code,
            CloseCode::Size
        );
        assert_eq!(
            protocol_close(&ProtocolError::UnmaskedFrame, 10).code,
            CloseCode::Protocol
        );
    }

    #[test]
    fn long_reasons_fit_a_control_frame() {
        let r = truncate_reason("é".repeat(100));
        assert!(r.len() <= 123);
        assert!(r.ends_with("..."));
    }
}
