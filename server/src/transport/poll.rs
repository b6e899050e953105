//! Short polling: answer at once with whatever is new.
//!
//! The simplest transport and the most honest baseline: it works through every proxy and cache
//! rule, but it pays a full request per interval whether or not anything happened, and its
//! latency is bounded below by half the polling interval on average.
//!
//! [`check`], [`read`] and [`count`] are the handler's steps, shared with the fast path
//! ([`crate::fast_path::poll`]), which serves the same request on the socket itself.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{metered, start_cursor, FeedQuery, PollAnswer, Transport};
use crate::{accounting::Meter, error::ApiError, feed::Batch, incoming::Incoming, state::AppState};

pub async fn handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = check(&req, &state)?;
    let meter = metered(&req, &state, Transport::ShortPoll, q.client.as_deref());
    let batch = read(&state, &q)?;
    count(&meter, &batch);
    let coding = PollAnswer::coding(&req, &state);
    Ok(PollAnswer::batch(&batch, coding, &state).into_response(&req))
}

/// The query, parsed and authorised.
pub fn check(req: &impl Incoming, state: &AppState) -> Result<FeedQuery, ApiError> {
    let q = FeedQuery::from_request(req)?;
    q.authorize(req, state)?;
    Ok(q)
}

/// What is new after the request's cursor, at most `--max-batch` events.
pub fn read(state: &AppState, q: &FeedQuery) -> Result<Batch, ApiError> {
    let cursor = start_cursor(state, q.since)?;
    Ok(state.feed.since(cursor, state.config.max_batch as usize)?)
}

/// Counts the answer on the request's meter.
pub fn count(meter: &Meter, batch: &Batch) {
    if batch.events.is_empty() {
        meter.empty_response();
    }
    meter.delivered(batch.events.len() as u64, 0);
}
