//! Long polling: hold the request until something is new, or the hold time passes.
//!
//! The fallback that works through every proxy that allows a slow response: near-push latency
//! without an upgrade or a stream. It still pays one request per delivery batch, and the hold
//! must stay below the idle timeout of anything in between (nginx: 60 s by default).

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};

use super::{batch_response, metered, start_cursor, FeedQuery, Transport};
use crate::{error::ApiError, state::AppState};

pub async fn handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = FeedQuery::from_request(&req)?;
    q.authorize(&req, &state)?;
    let max = state.config.long_poll_max;
    let hold = match q.timeout_ms {
        Some(ms) if u128::from(ms) > max.as_millis() => {
            return Err(ApiError::TimeoutTooLong {
                value: ms,
                max: max.as_millis() as u64,
            })
        }
        Some(ms) => Duration::from_millis(ms),
        None => state.config.long_poll_timeout,
    };
    let meter = metered(&req, &state, Transport::LongPoll, q.client.as_deref());
    let cursor = start_cursor(&state, q.since)?;
    let _open = state.open(&meter, &req)?;

    // Subscribe before reading, so an event published in between still wakes us.
    let mut head = state.feed.subscribe();
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        let batch = state.feed.since(cursor, state.config.max_batch as usize)?;
        if !batch.events.is_empty() || batch.missed > 0 {
            meter.delivered(batch.events.len() as u64, 0);
            return Ok(batch_response(&req, &state, &batch));
        }
        tokio::select! {
            _ = state.stop.cancelled() => return Err(ApiError::ShuttingDown),
            _ = tokio::time::sleep_until(deadline) => {
                meter.empty_response();
                return Ok(HttpResponse::NoContent().insert_header(("Cache-Control", "no-store")).finish());
            }
            changed = head.changed() => if changed.is_err() { return Err(ApiError::ShuttingDown) },
        }
    }
}
