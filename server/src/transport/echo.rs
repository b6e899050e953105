//! `/ws/echo`: a plain RFC 6455 echo, for round-trip measurements and conformance runs.
//!
//! It shares nothing with the feed, so it measures the WebSocket stack alone.

use std::sync::atomic::Ordering::Relaxed;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use futures_util::StreamExt as _;

use crate::{accounting::ws_frame_len, state::AppState, transport::ws::protocol_close};

pub async fn handler(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    state.origins.check(&req)?;
    let (res, mut session, msgs) = actix_ws::handle(&req, body)?;
    let max = state.config.ws_max_message_bytes;
    let mut msgs = msgs
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let stop = state.stop.clone();
    let state = state.into_inner();
    let counters = move |bytes: usize| {
        state
            .accounting
            .echo
            .messages_received
            .fetch_add(1, Relaxed);
        state
            .accounting
            .echo
            .bytes_written
            .fetch_add(ws_frame_len(bytes), Relaxed);
    };
    actix_web::rt::spawn(async move {
        let reason = loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => break Some(CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) }),
                msg = msgs.next() => msg,
            };
            let sent = match msg {
                None => break None,
                Some(Err(err)) => break Some(protocol_close(&err, max)),
                Some(Ok(AggregatedMessage::Text(text))) => {
                    counters(text.len());
                    session.text(text).await
                }
                Some(Ok(AggregatedMessage::Binary(bin))) => {
                    counters(bin.len());
                    session.binary(bin).await
                }
                Some(Ok(AggregatedMessage::Ping(p))) => session.pong(&p).await,
                Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
                Some(Ok(AggregatedMessage::Close(reason))) => {
                    break reason.map(|r| CloseReason {
                        code: r.code,
                        description: None,
                    })
                }
            };
            if sent.is_err() {
                break None;
            }
        };
        let _ = session.close(reason).await;
    });
    Ok(res)
}
