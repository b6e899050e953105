//! Optional shared-token authentication (`--auth-token`), for deployments where an `Origin`
//! check is not enough (non-browser clients can send any `Origin`).
//!
//! The token may come as `?token=` (the only option for `EventSource` and browser WebSockets,
//! which cannot set headers), as `Authorization: Bearer`, or on a WebSocket as the first message,
//! which keeps it out of URLs and access logs. Comparison is constant-time, so response timing
//! does not reveal how much of a guess was right.

use actix_web::http::header;
use subtle::ConstantTimeEq;

use crate::{error::ApiError, incoming::Incoming};

/// Whether `presented` equals `expected`, in time independent of where they differ.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    // Lengths may differ in timing; the secret's content may not.
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// The token a request presents: its `token` query parameter or its Bearer header.
pub fn presented<'a>(req: &'a impl Incoming, query_token: Option<&'a str>) -> Option<&'a str> {
    query_token.or_else(|| {
        req.headers()
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
    })
}

/// `Ok` when no token is configured or the request presents the right one.
pub fn check(expected: Option<&str>, presented: Option<&str>) -> Result<(), ApiError> {
    match (expected, presented) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(ApiError::Unauthorized("a token is required (--auth-token)")),
        (Some(e), Some(p)) if token_matches(e, p) => Ok(()),
        (Some(_), Some(_)) => Err(ApiError::Unauthorized("wrong token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "s3creT"));
        assert!(check(None, None).is_ok());
        assert!(check(Some("a"), None).is_err());
        assert!(check(Some("a"), Some("b")).is_err());
        assert!(check(Some("a"), Some("a")).is_ok());
    }
}
