//! From a QUIC connection to an admitted WebTransport session: the handshake within
//! `--request-timeout`, then the CONNECT request's checks in the same order as a `/ws`
//! handshake's (path, origin, query, token, cursor), through the same functions
//! ([`QuicRequest`]), then the variant the client chose with `mode=` (`stream`, the default;
//! `streams`; `datagrams`: [`session`] says what each is). An unknown mode is refused with 400
//! and the modes named, so one server serves all three.
//!
//! A refusal answers the CONNECT with its HTTP status, then closes the connection with
//! [`H3_REQUEST_REJECTED`] and the refusal's text as the reason (what a non-browser client can
//! read; a browser sees the status), once the client left or after `--close-timeout`.

use std::sync::Arc;

use quinn::VarInt;
use web_transport_quinn::Request;

use super::{request::QuicRequest, session};
use crate::{
    accounting::{Meter, OpenGuard},
    error::ApiError,
    incoming::Incoming as _,
    state::AppState,
    transport::{start_cursor, FeedQuery, Transport},
};

/// HTTP/3's "no error": the code of a connection closed on purpose.
pub const H3_NO_ERROR: u32 = 0x100;

/// HTTP/3's "request rejected": the code of a connection closed after a refused CONNECT.
pub const H3_REQUEST_REJECTED: u32 = 0x10b;

/// The CONNECT request as the shared checks see it.
fn incoming(request: &Request) -> QuicRequest {
    let url = &request.url;
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    QuicRequest::new(
        authority,
        url.query().unwrap_or_default(),
        &request.headers,
        request.conn().remote_address().ip(),
    )
}

/// A `/wt` session that passed every check: what it starts from.
pub struct Ready {
    /// The variant (`mode=`): `wt`, `wt-streams` or `wt-datagrams`, also the meter's key.
    pub transport: Transport,
    pub meter: Meter,
    pub feed: Arc<crate::feed::Feed>,
    pub feed_name: Option<String>,
    pub cursor: u64,
}

/// The CONNECT request's checks, in `/ws`'s order. The connection was counted open already.
fn admit(request: &Request, state: &AppState) -> Result<Ready, ApiError> {
    if request.url.path() != Transport::Wt.path() {
        return Err(ApiError::NotFound(format!(
            "no WebTransport endpoint at {}; the feed is at /wt",
            request.url.path()
        )));
    }
    let req = incoming(request);
    state.origins.check(&req)?;
    let q = FeedQuery::from_request(&req)?;
    let transport = mode(request)?;
    // No first-message authentication as on `/ws`: the token comes with the CONNECT.
    q.authorize(&req, state)?;
    let meter = state.accounting.meter(transport, q.client.as_deref());
    meter.request_over(req.version());
    let feed = q.feed(state)?;
    let cursor = start_cursor(&feed, q.since)?;
    Ok(Ready {
        transport,
        meter,
        feed,
        feed_name: q.feed,
        cursor,
    })
}

/// The variant `mode=` names (the last one given); `stream` without it.
fn mode(request: &Request) -> Result<Transport, ApiError> {
    let Some(mode) = request
        .url
        .query_pairs()
        .filter(|(k, _)| k == "mode")
        .map(|(_, v)| v)
        .last()
    else {
        return Ok(Transport::Wt);
    };
    Transport::from_wt_mode(&mode).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`mode` is `stream`, `streams` or `datagrams`, got {:?}",
            crate::transport::ws::truncate_reason(mode.into_owned())
        ))
    })
}

/// One QUIC connection, from its first packet to its end. `open` is its place under the
/// connection limits, taken when it arrived (as `wt`), moved to its variant once admitted.
pub async fn connection(
    incoming: quinn::Incoming,
    open: Result<OpenGuard, String>,
    state: Arc<AppState>,
) {
    let config = &state.config;
    let Ok(connecting) = incoming.accept() else {
        return;
    };
    let Ok(Ok(conn)) = tokio::time::timeout(config.request_timeout, connecting).await else {
        return;
    };
    let mut open = match open {
        Ok(guard) => guard,
        Err(limit) => {
            let why = ApiError::TooManyConnections(limit).to_string();
            conn.close(VarInt::from_u32(H3_REQUEST_REJECTED), why.as_bytes());
            return;
        }
    };
    let request =
        match tokio::time::timeout(config.request_timeout, Request::accept(conn.clone())).await {
            Ok(Ok(request)) => request,
            Ok(Err(e)) => {
                let why = format!("not a WebTransport CONNECT: {e}");
                conn.close(VarInt::from_u32(H3_REQUEST_REJECTED), why.as_bytes());
                return;
            }
            Err(_) => {
                conn.close(
                    VarInt::from_u32(H3_REQUEST_REJECTED),
                    b"no WebTransport CONNECT within --request-timeout",
                );
                return;
            }
        };
    match admit(&request, &state) {
        Ok(ready) => {
            // Under its own variant and client from now on, not `wt`'s.
            open.move_to(&ready.meter);
            let Ok(session) = request.ok().await else {
                return;
            };
            session::serve(session, ready, state).await;
        }
        Err(error) => {
            refuse(request, &conn, &error, &state).await;
        }
    }
}

/// Answers the CONNECT with `error`'s status, then closes with its text as the reason.
async fn refuse(request: Request, conn: &quinn::Connection, error: &ApiError, state: &AppState) {
    let status = actix_web::ResponseError::status_code(error).as_u16();
    let status = web_transport_quinn::http::StatusCode::from_u16(status)
        .unwrap_or(web_transport_quinn::http::StatusCode::BAD_REQUEST);
    if request.reject(status).await.is_ok() {
        // The status first: the client that reads it and leaves ends the wait.
        let _ = tokio::time::timeout(state.config.close_timeout, conn.closed()).await;
    }
    let why = crate::transport::ws::truncate_reason(error.to_string());
    conn.close(VarInt::from_u32(H3_REQUEST_REJECTED), why.as_bytes());
}
