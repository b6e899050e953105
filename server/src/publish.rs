//! `POST /publish`: any JSON value becomes the `data` of the next event.
//!
//! The body is read up to `--max-publish-bytes` and no further, so an oversized upload costs the
//! server that much memory at most, and the client learns the limit from the 413's reason.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;

use crate::{error::ApiError, state::AppState, transport::FeedQuery};

pub async fn handler(
    req: HttpRequest,
    mut body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.origins.check(&req)?;
    FeedQuery::from_request(&req)?.authorize(&req, &state)?;
    let limit = state.config.max_publish_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|&s| s > limit) {
        return Err(ApiError::BodyTooLarge { size, limit });
    }
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge {
                size: buf.len() + chunk.len(),
                limit,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    let seq = state.publish(&compact_json(&buf)?).await?;
    state.accounting.http_published(&req, buf.len());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "seq": seq })))
}

/// Validates `body` as one JSON value and re-serialises it compactly, so it can sit on one SSE
/// `data:` line.
pub fn compact_json(body: &[u8]) -> Result<String, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadJson(e.to_string()))?;
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bodies_are_validated_and_compacted() {
        assert_eq!(
            compact_json(b"{ \"a\" :\n [1, 2] }").unwrap(),
            r#"{"a":[1,2]}"#
        );
        assert_eq!(
            compact_json(b"\"line\\nbreak\"").unwrap(),
            r#""line\nbreak""#
        );
        assert!(compact_json(b"").is_err());
        assert!(compact_json(b"{nope").is_err());
        assert!(compact_json(b"1 2").is_err());
    }
}
