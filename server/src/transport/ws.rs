//! WebSockets: one upgraded connection, full duplex.
//!
//! The only transport where the client can talk back on the same connection (`publish`, `echo`),
//! at the price of an upgrade that every proxy must be told about, a connection the server must
//! keep alive with pings, and state pinned to one process. The feed is read with the same cursor
//! as everywhere else, so a reconnect with `since=<last seq>` loses nothing.
//!
//! Here: the checks a handshake passes ([`admit`], also called by the fast path), the actix-web
//! handlers, and what a client's messages mean. The session itself, the same for every
//! connection whichever way it came in, is [`session`]; the frames, [`codec`]; compression
//! (permessage-deflate, negotiated by the same checks on every way in), [`deflate`]; how an
//! upgraded connection leaves actix-http for its session, [`takeover`].

pub mod binary;
pub mod codec;
pub mod deflate;
pub(crate) mod io_wire;
pub(crate) mod session;
pub(crate) mod takeover;

use actix_http::ws::{hash_key, verify_handshake, CloseCode, CloseReason};
use actix_web::{
    http::{header, Method},
    web, HttpMessage as _, HttpRequest, HttpResponse,
};
use serde_json::Value;

use super::{start_cursor, FeedQuery, Transport};
use crate::{
    accounting::{Handshake, Meter, OpenGuard},
    error::ApiError,
    incoming::Incoming,
    state::AppState,
};
use session::Mode;

/// A `/ws` request that passed every check: what its session starts from.
pub(crate) struct Ready {
    pub meter: Meter,
    pub open: OpenGuard,
    /// The feed it reads: the main one, or a named one (`?feed=`), and that one's name.
    pub feed: std::sync::Arc<crate::feed::Feed>,
    pub feed_name: Option<String>,
    pub cursor: u64,
    /// `encoding=binary`: events, acknowledgements and inputs as binary messages ([`binary`]).
    pub binary: bool,
    /// No token came with the handshake: the first message must be `{"op":"auth",…}`.
    pub must_authenticate: bool,
    /// permessage-deflate, when the client offered it and we accepted.
    pub deflate: Option<deflate::Agreement>,
}

/// Why a `/ws` request is refused, and its meter once it has one (so the refusal is counted).
pub(crate) struct Refusal {
    pub error: ApiError,
    pub meter: Option<Meter>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self { error, meter: None }
    }
}

/// The client's `Sec-WebSocket-Key` and our `Sec-WebSocket-Accept`, when `req` is a valid
/// handshake as actix-http judges it (the same function on every way in), carrying no body.
pub(crate) fn handshake(req: &impl Incoming) -> Result<(String, String), ApiError> {
    let mut head = actix_http::RequestHead::default();
    head.method = Method::GET;
    head.headers = req.headers().clone();
    verify_handshake(&head)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket handshake: {e}")))?;
    // A body on an upgrade request has no defined end: refused, the same on every path.
    if req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
    {
        return Err(ApiError::BadRequest(
            "a WebSocket handshake carries no body (Content-Length/Transfer-Encoding)".into(),
        ));
    }
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    Ok((
        String::from_utf8_lossy(key).into_owned(),
        String::from_utf8_lossy(&hash_key(key)).into_owned(),
    ))
}

/// Every check of a `/ws` handshake, in order: origin, handshake, query, token (or a first
/// auth message), cursor, connection limits. The fast path and actix-web both call this.
pub(crate) fn admit(req: &impl Incoming, state: &AppState) -> Result<Ready, Refusal> {
    state.origins.check(req)?;
    let (key, accept) = handshake(req)?;
    let q = FeedQuery::from_request(req)?;
    // A token in the URL or header is checked before the upgrade; without one, the session must
    // authenticate with its first message before it gets any event.
    let must_authenticate = match crate::auth::presented(req, q.token.as_deref()) {
        Some(_) => {
            q.authorize(req, state)?;
            false
        }
        None => state.config.auth_token.is_some(),
    };
    let meter = state.accounting.meter(Transport::Ws, q.client.as_deref());
    meter.request_over(req.version());
    let refused = |error, meter: &Meter| Refusal {
        error,
        meter: Some(meter.clone()),
    };
    let feed = q.feed(state).map_err(|e| refused(e, &meter))?;
    let cursor = start_cursor(&feed, q.since).map_err(|e| refused(e, &meter))?;
    let open = state.open(&meter, req).map_err(|e| refused(e, &meter))?;
    if let Some(client) = &meter.client {
        *client.ws_handshake.lock() = Some(Handshake { key, accept });
    }
    Ok(Ready {
        meter,
        open,
        feed,
        feed_name: q.feed.clone(),
        cursor,
        binary: q.binary,
        must_authenticate,
        // Binary sessions carry small binary messages as they are (see [`binary`]).
        deflate: if q.binary {
            None
        } else {
            deflate::negotiate(req.headers(), &state.config.ws_deflate())
        },
    })
}

/// `/ws` through actix-web (TLS, h2c, `--fast-path false`, and whatever the fast path left).
pub async fn handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ready = match admit(&req, &state) {
        Ok(ready) => ready,
        Err(Refusal { error, meter }) => {
            if let Some(meter) = meter {
                req.extensions_mut().insert(meter);
            }
            return Err(error);
        }
    };
    req.extensions_mut().insert(ready.meter.clone());
    upgrade(&req, Mode::Feed(ready))
}

/// `/ws/echo` through actix-web: the handshake and `Origin` are checked; nothing else applies.
pub async fn echo_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.origins.check(&req)?;
    let agreed = deflate::negotiate(req.headers(), &state.config.ws_deflate());
    upgrade(&req, Mode::Echo(agreed))
}

/// Answers 101, and leaves the session to run on the connection once that is written
/// ([`takeover`]).
fn upgrade(req: &HttpRequest, mode: Mode) -> Result<HttpResponse, ApiError> {
    let (_, accept) = handshake(req)?;
    // Every HTTP/1 upgrade request comes through the takeover; an HTTP/2 request cannot carry
    // the handshake's `Connection`/`Upgrade` headers, so this is not expected to happen.
    let Some(takeover) = req.extensions().get::<takeover::Takeover>().cloned() else {
        return Err(ApiError::BadRequest(
            "a WebSocket handshake needs an HTTP/1.1 connection".into(),
        ));
    };
    let extensions = mode.deflate().map(|a| a.header());
    let mut answer = HttpResponse::SwitchingProtocols();
    answer
        .upgrade("websocket")
        .insert_header((header::SEC_WEBSOCKET_ACCEPT, accept))
        // What actix-web put on this answer when its body was the session's stream: the same
        // head as always on this path.
        .content_type("application/octet-stream");
    if let Some(extensions) = extensions {
        answer.insert_header((header::SEC_WEBSOCKET_EXTENSIONS, extensions));
    }
    takeover.hand_over(mode);
    Ok(answer.finish())
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

/// What a client's text message asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// `{"op":"publish","id":KEY,"data":…}`: publish `data` (compact JSON) once per `id`
    /// (optional, an idempotency key), answer with its seq. On a session of a named feed
    /// (`?feed=`) it goes to that feed, and `"end":true` makes it the feed's terminal event.
    Publish {
        data: String,
        id: Option<String>,
        end: bool,
    },
    /// `{"op":"echo",…}`: send the message back as it came.
    Echo,
    /// `{"op":"input","n":N,…}`: a game client's input ([`crate::input`]), acknowledged with
    /// `{"op":"ack","n":N}` and not published.
    Input { n: u64 },
}

/// Parses a client text message, or gives the reason to close.
pub fn client_op(text: &str) -> Result<ClientOp, CloseReason> {
    let msg: Value = serde_json::from_str(text)
        .map_err(|e| close(CloseCode::Invalid, format!("message is not JSON: {e}")))?;
    match msg.get("op").and_then(Value::as_str) {
        Some("publish") => {
            let id = match msg.get("id") {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) => Some(id.clone()),
                Some(_) => return Err(close(CloseCode::Policy, "`id` must be a string".into())),
            };
            msg.get("data")
                .map(|data| ClientOp::Publish {
                    data: data.to_string(),
                    id,
                    end: msg.get("end").and_then(Value::as_bool).unwrap_or(false),
                })
                .ok_or_else(|| close(CloseCode::Policy, "publish needs a `data` field".into()))
        }
        Some("echo") => Ok(ClientOp::Echo),
        Some("input") => msg
            .get("n")
            .and_then(Value::as_u64)
            .map(|n| ClientOp::Input { n })
            .ok_or_else(|| close(CloseCode::Policy, "input needs `n`, an integer ≥ 0".into())),
        Some(other) => Err(close(
            CloseCode::Policy,
            format!("unknown op {other:?}; expected publish, echo or input"),
        )),
        None => Err(close(
            CloseCode::Policy,
            "message needs an `op` field (publish, echo or input)".into(),
        )),
    }
}

/// The reply to a client text message, which took `wire_bytes` on the wire, or the reason to
/// close.
pub(crate) async fn answer(
    state: &AppState,
    feed: Option<&str>,
    op: ClientOp,
    text: &bytestring::ByteString,
    wire_bytes: u64,
) -> Result<bytestring::ByteString, CloseReason> {
    match op {
        ClientOp::Echo => Ok(text.clone()),
        // Taken by the session, which holds the input's rate (`session::Session::input`).
        ClientOp::Input { n } => Ok(format!("{{\"op\":\"ack\",\"n\":{n}}}").into()),
        ClientOp::Publish { data, id, end } => {
            let reply = crate::publish::publish_message(state, feed, &data, id.as_deref(), end)
                .await
                .map_err(|e| {
                    if actix_web::ResponseError::status_code(&e).is_client_error() {
                        return close(CloseCode::Policy, e.to_string());
                    }
                    tracing::error!("ws publish: {e}");
                    close(CloseCode::Error, "publishing failed on the server".into())
                })?;
            state.accounting.ws_published(wire_bytes);
            Ok(reply.into())
        }
    }
}

pub(crate) fn close(code: CloseCode, why: String) -> CloseReason {
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
    fn long_reasons_fit_a_control_frame() {
        let r = truncate_reason("é".repeat(100));
        assert!(r.len() <= 123);
        assert!(r.ends_with("..."));
    }
}
