//! `POST /publish`: any JSON value becomes the `data` of the next event.
//!
//! The body is read up to `--max-publish-bytes` and no further, so an oversized upload costs the
//! server that much memory at most, and the client learns the limit from the 413's reason.
//!
//! A compressed body (`Content-Encoding` other than `identity`) is refused with 415 and the
//! reason: a JSON event is small, and unpacking would need a second bound (on the unpacked size)
//! for no measurable gain; responses are where gzip pays (`--http-gzip`).
//!
//! `?feed=NAME` publishes to a named feed ([`crate::feeds`]), made on first use; `&end=1`
//! makes the event that feed's terminal one (`"end":true`): streams end after it, a reader
//! that comes back after it is answered 204, and a later publish 409.
//!
//! An `Idempotency-Key` header makes the publish count once (see [`crate::idempotency`]): a
//! retry within `--idempotency-window` gets the first answer, `{"seq":N}` with the first seq,
//! marked `Idempotent-Replayed: true`. Every keyed answer carries that header (`false` when the
//! event was added), so a client can tell that its key was honoured.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;

use crate::{
    error::ApiError,
    idempotency::Key,
    query::FeedQuery,
    state::{AppState, Published},
};

pub use feedlab_wire::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED as REPLAYED};

pub async fn handler(
    req: HttpRequest,
    mut body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.origins.check(&req)?;
    let q = FeedQuery::from_request(&req)?;
    q.authorize(&req, &state)?;
    if let Some(coding) = req
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .flat_map(|v| v.to_str().unwrap_or("\u{fffd}").split(','))
        .map(str::trim)
        .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
    {
        return Err(ApiError::UnsupportedEncoding(coding.to_owned()));
    }
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
    let deadline = state.config.body_timeout;
    let read = async {
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
        Ok(())
    };
    tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| ApiError::BodyTimeout(humantime::format_duration(deadline).to_string()))??;
    let mut keys = req.headers().get_all(IDEMPOTENCY_KEY);
    let key = match (keys.next(), keys.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "more than one Idempotency-Key header".into(),
            ))
        }
        (Some(raw), None) => Some(raw.to_str().map_err(|_| {
            ApiError::BadRequest("idempotency key must be printable ASCII (0x20-0x7e)".into())
        })?),
    };
    let published = publish_body(&state, &q, &buf, key).await?;
    state.accounting.http_published(&req, buf.len());
    let mut res = HttpResponse::Ok();
    if let Some((name, value)) = replayed_header(key, published) {
        res.insert_header((name, value));
    }
    Ok(res
        .content_type("application/json")
        .body(answer_body(published)))
}

/// The steps of a publish after its body is read, on either way in (actix-web's handler and
/// the fast path): the body validated and compacted, the key checked against it, the event
/// published once.
///
/// # Errors
/// 400 for a body that is not one JSON value or a refused key, 422 for a key used with another
/// body, the store's or Redis' failure.
pub async fn publish_body(
    state: &AppState,
    q: &FeedQuery,
    body: &[u8],
    key: Option<&str>,
) -> Result<Published, ApiError> {
    let data = compact_json(body)?;
    let key = key.map(|raw| parse_key(raw, &data, state)).transpose()?;
    state
        .publish_to(q.feed.as_deref(), &data, key.as_ref(), q.end)
        .await
}

/// The answer's body: `{"seq":N}`.
pub fn answer_body(published: Published) -> String {
    format!("{{\"seq\":{}}}", published.seq)
}

/// `Idempotent-Replayed` for a keyed publish (every keyed answer carries it).
pub fn replayed_header(
    key: Option<&str>,
    published: Published,
) -> Option<(&'static str, &'static str)> {
    key.map(|_| (REPLAYED, if published.replayed { "true" } else { "false" }))
}

/// The idempotency key `raw` of a publish of `data` (compact JSON), checked against the
/// `--idempotency-*` limits: the one parser of keys for `POST /publish` and WebSocket `id`s.
///
/// # Errors
/// 400 with the reason.
pub fn parse_key(raw: &str, data: &str, state: &AppState) -> Result<Key, ApiError> {
    Key::parse(raw, data, &state.config.key_policy()).map_err(|e| ApiError::BadRequest(e.0))
}

/// A WebSocket `{"op":"publish","id":…,"data":…}`: publishes once per `id` and gives the reply
/// text, `{"op":"published","seq":N}`, with `"id"` and `"replayed"` when an id was given.
///
/// # Errors
/// The id is refused (the reason), the store failed, or the id was used for another body.
pub async fn publish_message(
    state: &AppState,
    feed: Option<&str>,
    data: &str,
    id: Option<&str>,
    end: bool,
) -> Result<String, ApiError> {
    let key = id.map(|id| parse_key(id, data, state)).transpose()?;
    let Published { seq, replayed } = state.publish_to(feed, data, key.as_ref(), end).await?;
    Ok(match id {
        Some(id) => serde_json::json!({
            "op": "published",
            "seq": seq,
            "id": id,
            "replayed": replayed,
        })
        .to_string(),
        None => format!("{{\"op\":\"published\",\"seq\":{seq}}}"),
    })
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
