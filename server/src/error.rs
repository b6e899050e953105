//! Every refusal the server gives over HTTP: a 4xx/5xx with a JSON reason, never a panic.
//!
//! Each message names the input or the setting at fault, so a user can fix the request
//! without reading the source.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("`{name}` must be a non-negative integer, got {value:?}")]
    BadNumber { name: &'static str, value: String },
    #[error("`timeout_ms` must be at most {max} (--long-poll-max), got {value}")]
    TimeoutTooLong { value: u64, max: u64 },
    #[error("`client` must be 1-64 characters of A-Z a-z 0-9 _ -, got {0:?}")]
    BadClientId(String),
    #[error("cursor {cursor} is ahead of the feed head {head}: the feed was reset; reconnect without a cursor")]
    CursorAhead { cursor: u64, head: u64 },
    #[error("body is not valid JSON: {0}")]
    BadJson(String),
    #[error("Content-Encoding {0:?} is not accepted on POST /publish: send the JSON uncompressed (an event is small, and an unpacked body would have to be bounded anew)")]
    UnsupportedEncoding(String),
    #[error("body is {size} bytes; the limit is {limit} (--max-publish-bytes)")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("the body did not arrive within {0} (--body-timeout)")]
    BodyTimeout(String),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("origin {0:?} is not allowed (same origin or --allowed-origin only)")]
    ForbiddenOrigin(String),
    #[error("changing the feed from outside is turned off (--feed-control)")]
    ControlDisabled,
    #[error("{0}")]
    BadControl(String),
    #[error("too many connections: {0}; retry later")]
    TooManyConnections(String),
    #[error("too many new connections: more than {per_sec} a second (--max-new-connections-per-sec); retry in {retry_after} s")]
    NewConnectionRate { per_sec: u32, retry_after: u64 },
    #[error("server is shutting down")]
    ShuttingDown,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("publishing failed: {0}")]
    Upstream(String),
    #[error("`feed` must be 1-64 characters of A-Z a-z 0-9 _ - . :, got {0:?}")]
    BadFeedName(String),
    #[error(
        "too many named feeds: {max} are open (--max-feeds); retry once one is idle (--feed-idle)"
    )]
    TooManyFeeds { max: usize },
    /// A reader at or past the terminal event: nothing more will come (answered 204, so that
    /// `EventSource` stops reconnecting).
    #[error("the feed ended at seq {seq}")]
    FeedEnded { seq: u64 },
    #[error("the feed ended at seq {seq} (its terminal event); publish to a new feed")]
    PublishAfterEnd { seq: u64 },
    #[error("input is {size} bytes; the limit is {limit} (--max-input-bytes)")]
    InputTooLarge { size: usize, limit: usize },
    #[error("more than {rate} inputs a second from this client (--max-input-rate): dropped")]
    InputRate { rate: u32 },
    #[error("this idempotency key was first used for a different publish (seq {seq}); use a new key for a new event")]
    KeyReused { seq: u64 },
}

/// The header of the 204 that answers a reader after a feed's terminal event: its seq.
pub const FEED_ENDED: &str = "Feed-Ended";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadNumber { .. }
            | Self::TimeoutTooLong { .. }
            | Self::BadClientId(_)
            | Self::BadJson(_)
            | Self::BadControl(_)
            | Self::BadRequest(_)
            | Self::BadFeedName(_) => StatusCode::BAD_REQUEST,
            Self::TooManyFeeds { .. } | Self::InputRate { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::FeedEnded { .. } => StatusCode::NO_CONTENT,
            Self::PublishAfterEnd { .. } => StatusCode::CONFLICT,
            Self::InputTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::CursorAhead { .. } => StatusCode::CONFLICT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::ForbiddenOrigin(_) | Self::ControlDisabled => StatusCode::FORBIDDEN,
            Self::TooManyConnections(_) | Self::ShuttingDown | Self::NewConnectionRate { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Upstream(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::KeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::FeedEnded { seq } = self {
            // No body (a 204 has none): the header says where the feed ended.
            return HttpResponse::NoContent()
                .insert_header((FEED_ENDED, seq.to_string()))
                .insert_header(("Cache-Control", "no-store"))
                .finish();
        }
        let mut res = HttpResponse::build(self.status_code());
        if matches!(self, Self::TooManyConnections(_) | Self::ShuttingDown) {
            res.insert_header(("Retry-After", "1"));
        }
        if let Self::NewConnectionRate { retry_after, .. } = self {
            // The connection is refused as a whole: nothing more is read from it.
            res.insert_header(("Retry-After", retry_after.to_string()))
                .force_close();
        }
        if matches!(self, Self::UnsupportedEncoding(_)) {
            // RFC 9110 section 15.5.16: a 415 for a content coding says which are accepted.
            res.insert_header((actix_web::http::header::ACCEPT_ENCODING, "identity"));
        }
        if matches!(self, Self::Unauthorized(_)) {
            res.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Self::CursorAhead { head, .. } = self {
            return res.json(serde_json::json!({ "error": self.to_string(), "head": head }));
        }
        res.json(serde_json::json!({ "error": self.to_string() }))
    }
}
