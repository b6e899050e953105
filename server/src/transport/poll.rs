//! Short polling: answer at once with whatever is new.
//!
//! The simplest transport and the most honest baseline: it works through every proxy and cache
//! rule, but it pays a full request per interval whether or not anything happened, and its
//! latency is bounded below by half the polling interval on average.
//!
//! [`check`], [`answer`] and [`count`] are the handler's steps, shared with the fast path
//! ([`crate::fast_path::poll`]), which serves the same request on the socket itself.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{metered, start_cursor, FeedQuery, PollAnswer, Transport};
use crate::{accounting::Meter, error::ApiError, incoming::Incoming, state::AppState};

pub async fn handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = check(&req, &state)?;
    let meter = metered(&req, &state, Transport::ShortPoll, q.client.as_deref());
    let (answer, events) = answer(&state, &q, PollAnswer::coding(&req, &state))?;
    count(&meter, events);
    Ok(answer.into_response(&req))
}

/// The query, parsed and authorised.
pub fn check(req: &impl Incoming, state: &AppState) -> Result<FeedQuery, ApiError> {
    let q = FeedQuery::from_request(req)?;
    q.authorize(req, state)?;
    Ok(q)
}

/// The answer with what is new after the request's cursor (at most `--max-batch` events),
/// coded as `gzip` says, and how many events it carries.
pub fn answer(
    state: &AppState,
    q: &FeedQuery,
    gzip: Option<crate::compress::HttpGzip>,
) -> Result<(PollAnswer, usize), ApiError> {
    let feed = q.feed(state)?;
    let cursor = start_cursor(&feed, q.since)?;
    Ok(PollAnswer::since(state, &feed, cursor, gzip)?)
}

/// Counts an answer carrying `events` on the request's meter.
pub fn count(meter: &Meter, events: usize) {
    if events == 0 {
        meter.empty_response();
    }
    meter.delivered(events as u64, 0);
}
