//! `POST /publish` on the socket itself: the handler's own steps
//! ([`crate::publish::publish_body`]) and the same answer, on a connection that stays open for
//! the next publish.
//!
//! Every event costs one publish, whatever the transport, and with few clients per event (a
//! short poll carrying 200 events a second to 100 clients) the publish is much of what the
//! server spends. Through actix-web a publish took about 66,000 instructions (callgrind, 100
//! short-poll clients at 200 events/s: request decoding, routing, extractors, the payload
//! stream, the response builder, a zeroed buffer), and paced at 200 a second it cost 3-4× the
//! floor's CPU, as each one ran through a cold framework. Here it is one read of the head and
//! body together (they are in the socket already, or about to be), the same checks, the same
//! publish, and one write.
//!
//! Only a body of a known length that is not encoded is read here (a chunked, encoded,
//! oversized or `Expect`ing upload is actix-web's, whose answers say why); what the body turns
//! out to be (not JSON, a refused key, a key used for another body) is answered here with the
//! same [`ApiError`] actix-web would render.

use tokio::io::AsyncReadExt as _;

use super::{conn::Conn, head::Head, wire, wire::After, Admission};
use crate::{
    error::ApiError,
    incoming::Incoming as _,
    publish::{answer_body, publish_body, replayed_header, IDEMPOTENCY_KEY},
    state::AppState,
    transport::FeedQuery,
};

/// A publish the fast path reads: what the head said, kept past the head itself.
pub struct Admitted {
    key: Option<String>,
    /// The query as parsed (the feed, `end`).
    q: FeedQuery,
    query: String,
    head_len: usize,
    body_len: usize,
}

/// What the handler would do with this head: read the body here, or leave it to actix-web
/// (a refused origin or token, a body over `--max-publish-bytes`: its error reads the same).
pub fn admit(head: &Head, state: &AppState) -> Admission<Admitted> {
    if state.origins.check(head).is_err() {
        return Admission::Actix;
    }
    let Ok(q) = FeedQuery::from_request(head) else {
        return Admission::Actix;
    };
    if q.authorize(head, state).is_err() || head.body_len > state.config.max_publish_bytes {
        return Admission::Actix;
    }
    let key = match head.headers().get(IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) => Some(key.to_owned()),
        Some(Err(_)) => return Admission::Actix,
    };
    Admission::Serve(Admitted {
        key,
        q,
        query: head.query_string().to_owned(),
        head_len: head.len,
        body_len: head.body_len,
    })
}

/// Reads the request (head and body, within `--body-timeout`), publishes, answers; `Some(After)`
/// when the answer was written, `None` when the connection is done for.
pub async fn serve(
    io: &mut impl Conn,
    admitted: Admitted,
    cors: Option<&str>,
    state: &AppState,
) -> Option<After> {
    let config = &state.config;
    let Admitted {
        key,
        q,
        query,
        head_len,
        body_len,
    } = admitted;
    let mut request = vec![0; head_len + body_len];
    match tokio::time::timeout(config.body_timeout, io.read_exact(&mut request)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return None,
        Err(_) => {
            // The body did not come: answered as actix-web does, and closed (what is left of
            // the body cannot be told from a next request).
            let late = humantime::format_duration(config.body_timeout).to_string();
            let err = ApiError::BodyTimeout(late);
            wire::refuse(io, &err, cors, config.send_timeout, After::Close).await;
            return None;
        }
    }
    let body = &request[head_len..];
    let published = match publish_body(state, &q, body, key.as_deref()).await {
        Ok(published) => published,
        Err(err) => {
            return wire::refuse(io, &err, cors, config.send_timeout, After::KeepAlive)
                .await
                .map(|_| After::KeepAlive)
        }
    };
    state
        .accounting
        .fast_published(&query, request.len() as u64);
    drop(request);
    let headers = std::iter::once(("content-type", "application/json"))
        .chain(replayed_header(key.as_deref(), published));
    let body = answer_body(published);
    let (status, limit) = (actix_web::http::StatusCode::OK, config.send_timeout);
    wire::answer(
        io,
        status,
        headers,
        body.as_bytes(),
        cors,
        limit,
        After::KeepAlive,
    )
    .await
    .map(|_| After::KeepAlive)
}
