//! `GET/POST /control`: the page's knobs for the built-in ticker.
//!
//! Changing the feed is a write anyone who can reach the port could make, so it is on only where
//! that is harmless (a loopback bind, by default) and refused with a reason elsewhere.

use actix_web::{web, HttpRequest, HttpResponse};
use feedlab_wire::payload::PayloadKind;
use serde::Deserialize;

use crate::{
    config::{check_payload, check_rate, MAX_TICKER_PAYLOAD, MAX_TICKER_RATE, MIN_TICKER_RATE},
    error::ApiError,
    state::AppState,
    ticker::TickerSettings,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    rate: Option<f64>,
    payload_bytes: Option<usize>,
    /// `padding`, `tick`, `chat` or `metrics` (`--payload`).
    payload: Option<PayloadKind>,
}

pub async fn get(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(view(&state))
}

pub async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.origins.check(&req)?;
    crate::transport::FeedQuery::from_request(&req)?.authorize(&req, &state)?;
    if !state.config.control_enabled() {
        return Err(ApiError::ControlDisabled);
    }
    let change: Change = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadControl(format!("bad control body: {e}")))?;
    let mut settings = state.ticker.settings();
    // The same checks as the flags: every value accepted is one the ticker can run with.
    if let Some(rate) = change.rate {
        settings.rate = check_rate(rate).map_err(ApiError::BadControl)?;
    }
    if let Some(bytes) = change.payload_bytes {
        settings.payload_bytes = check_payload(bytes).map_err(ApiError::BadControl)?;
    }
    if let Some(kind) = change.payload {
        settings.payload = kind;
    }
    state.ticker.set(settings);
    Ok(HttpResponse::Ok().json(view(&state)))
}

fn view(state: &AppState) -> serde_json::Value {
    let TickerSettings {
        rate,
        payload_bytes,
        payload,
    } = state.ticker.settings();
    serde_json::json!({
        "rate": rate,
        "payload_bytes": payload_bytes,
        "payload": payload,
        "control_enabled": state.config.control_enabled(),
        "min_rate": MIN_TICKER_RATE,
        "max_rate": MAX_TICKER_RATE,
        "max_payload_bytes": MAX_TICKER_PAYLOAD,
        "heartbeat_ms": state.config.heartbeat.as_millis() as u64,
        "long_poll_timeout_ms": state.config.long_poll_timeout.as_millis() as u64,
        "long_poll_max_ms": state.config.long_poll_max.as_millis() as u64,
    })
}
