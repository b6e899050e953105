//! Long polling: hold the request until something is new, or the hold time passes.
//!
//! The fallback that works through every proxy that allows a slow response: near-push latency
//! without an upgrade or a stream. It still pays one request per delivery batch, and the hold
//! must stay below the idle timeout of anything in between (nginx: 60 s by default).
//!
//! [`check`] and [`wait`] are the handler's steps, shared with the fast path
//! ([`crate::fast_path::poll`]), which holds the same request on the socket itself.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};

use super::{metered, start_cursor, FeedQuery, PollAnswer, Transport};
use crate::{
    accounting::Meter, compress::HttpGzip, error::ApiError, feed::Feed, incoming::Incoming,
    shutdown::Turn, state::AppState,
};

pub async fn handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (q, hold) = check(&req, &state)?;
    let meter = metered(&req, &state, Transport::LongPoll, q.client.as_deref());
    let feed = q.feed(&state)?;
    let cursor = start_cursor(&feed, q.since)?;
    let _open = state.open(&meter, &req)?;
    let coding = PollAnswer::coding(&req, &state);
    Ok(wait(&state, &feed, &meter, cursor, hold, coding)
        .await?
        .into_response(&req))
}

/// The query, parsed and authorised, and how long to hold (`timeout_ms`, at most
/// `--long-poll-max`; `--long-poll-timeout` without it).
pub fn check(req: &impl Incoming, state: &AppState) -> Result<(FeedQuery, Duration), ApiError> {
    let q = FeedQuery::from_request(req)?;
    q.authorize(req, state)?;
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
    Ok((q, hold))
}

/// Waits up to `hold` for events after `cursor`: the batch once there is one, `204` when the
/// hold passes first, [`ApiError::ShuttingDown`] at its turn once the server stops. Counted on `meter`;
/// the batch coded as `coding` (what the request accepts) allows.
pub async fn wait(
    state: &AppState,
    feed: &Feed,
    meter: &Meter,
    cursor: u64,
    hold: Duration,
    coding: Option<HttpGzip>,
) -> Result<PollAnswer, ApiError> {
    // Subscribe before reading, so an event published in between still wakes us.
    let mut head = feed.subscribe();
    let deadline = tokio::time::Instant::now() + hold;
    // Shutdown answers it at its turn within `--shutdown-drain`, not with every other at once.
    let mut turn = Turn::default();
    loop {
        let batch = feed.since(cursor, state.config.max_batch as usize)?;
        if !batch.events.is_empty() || batch.missed > 0 {
            meter.delivered(batch.events.len() as u64, 0);
            return Ok(PollAnswer::batch(&batch, coding, state));
        }
        if turn.due(&state.feed, &state.drain) {
            return Err(ApiError::ShuttingDown);
        }
        tokio::select! {
            () = turn.wait() => {}
            _ = tokio::time::sleep_until(deadline) => {
                meter.empty_response();
                return Ok(PollAnswer::nothing());
            }
            changed = head.changed() => if changed.is_err() { return Err(ApiError::ShuttingDown) },
        }
    }
}
