//! `GET/POST /control`: the page's knobs for the built-in ticker.
//!
//! Changing the feed is a write anyone who can reach the port could make, so it is on only where
//! that is harmless (a loopback bind, by default) and refused with a reason elsewhere.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::{
    config::{MAX_TICKER_PAYLOAD, MAX_TICKER_RATE},
    error::ApiError,
    state::AppState,
    ticker::TickerSettings,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    rate: Option<f64>,
    payload_bytes: Option<usize>,
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
    if let Some(rate) = change.rate {
        if !(0.0..=MAX_TICKER_RATE).contains(&rate) {
            return Err(ApiError::BadControl(format!(
                "rate must be between 0 and {MAX_TICKER_RATE}"
            )));
        }
        settings.rate = rate;
    }
    if let Some(bytes) = change.payload_bytes {
        if bytes > MAX_TICKER_PAYLOAD {
            return Err(ApiError::BadControl(format!(
                "payload_bytes must be at most {MAX_TICKER_PAYLOAD}"
            )));
        }
        settings.payload_bytes = bytes;
    }
    state.ticker.set(settings);
    Ok(HttpResponse::Ok().json(view(&state)))
}

fn view(state: &AppState) -> serde_json::Value {
    let TickerSettings {
        rate,
        payload_bytes,
    } = state.ticker.settings();
    serde_json::json!({
        "rate": rate,
        "payload_bytes": payload_bytes,
        "control_enabled": state.config.control_enabled(),
        "max_rate": MAX_TICKER_RATE,
        "max_payload_bytes": MAX_TICKER_PAYLOAD,
        "heartbeat_ms": state.config.heartbeat.as_millis() as u64,
        "long_poll_timeout_ms": state.config.long_poll_timeout.as_millis() as u64,
        "long_poll_max_ms": state.config.long_poll_max.as_millis() as u64,
    })
}
