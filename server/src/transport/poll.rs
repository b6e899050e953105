//! Short polling: answer at once with whatever is new.
//!
//! The simplest transport and the most honest baseline: it works through every proxy and cache
//! rule, but it pays a full request per interval whether or not anything happened, and its
//! latency is bounded below by half the polling interval on average.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{batch_response, metered, start_cursor, FeedQuery, Transport};
use crate::{error::ApiError, state::AppState};

pub async fn handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = FeedQuery::from_request(&req)?;
    q.authorize(&req, &state)?;
    let meter = metered(&req, &state, Transport::ShortPoll, q.client.as_deref());
    let cursor = start_cursor(&state, q.since)?;
    let batch = state.feed.since(cursor, state.config.max_batch as usize)?;
    if batch.events.is_empty() {
        meter.empty_response();
    }
    meter.delivered(batch.events.len() as u64, 0);
    Ok(batch_response(&req, &state, &batch))
}
