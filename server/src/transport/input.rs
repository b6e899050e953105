//! `POST /input`: how a client of the HTTP transports sends an input ([`crate::input`] bounds
//! and counts it). Here rather than beside the bounds, since it reads the whole state.

use crate::{
    error::ApiError,
    input::{ack_text, input_number},
};

/// `POST /input?client=ID`: one input, `{"n":N,…}` (any JSON object with a number `n`),
/// acknowledged with `{"ack":N}`.
pub async fn handler(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    state: actix_web::web::Data<crate::state::AppState>,
) -> Result<actix_web::HttpResponse, ApiError> {
    state.origins.check(&req)?;
    let q = super::FeedQuery::from_request(&req)?;
    q.authorize(&req, &state)?;
    let client = q.client.as_deref().ok_or_else(|| {
        ApiError::BadRequest("POST /input needs `client=ID`: inputs are limited per client".into())
    })?;
    state.inputs.take_http(&state.config, client, body.len())?;
    let n = input_number(&body)?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-store"))
        .body(ack_text(n)))
}
