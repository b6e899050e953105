//! The query parameters the transports (and `POST /publish`, `POST /input`) understand:
//! `since`, `timeout_ms`, `client`, `token`, `feed`, `end`, `encoding`. Apart from
//! [`crate::transport`] so that what the handlers below it ([`crate::publish`]) read of a
//! request does not make them import the transports back.

use std::{borrow::Cow, sync::Arc};

use crate::{error::ApiError, feed::Feed, incoming::Incoming, state::AppState};

/// The query parameters the transports understand, parsed with errors that name the field.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FeedQuery {
    pub since: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub client: Option<String>,
    /// `--auth-token`, when the client sends it in the URL.
    pub token: Option<String>,
    /// `feed=NAME`: a named feed ([`crate::feeds`]) instead of the main one.
    pub feed: Option<String>,
    /// `end=1` on a publish: the named feed's terminal event.
    pub end: bool,
    /// `encoding=binary` on `/ws`: binary messages both ways ([`crate::transport::ws::binary`]).
    pub binary: bool,
}

impl FeedQuery {
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut q = FeedQuery::default();
        for (key, value) in form_pairs(query) {
            match key.as_ref() {
                "since" => q.since = Some(parse_u64("since", &value)?),
                "timeout_ms" => q.timeout_ms = Some(parse_u64("timeout_ms", &value)?),
                "client" => q.client = Some(parse_client_id(&value)?),
                "token" => q.token = Some(value.into_owned()),
                "feed" => q.feed = Some(crate::feeds::parse_name(&value)?),
                "end" => q.end = parse_flag("end", &value)?,
                "encoding" => {
                    q.binary = match value.as_ref() {
                        "binary" => true,
                        "json" => false,
                        _ => {
                            return Err(ApiError::BadRequest(format!(
                                "`encoding` is `json` or `binary`, got {value:?}"
                            )))
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(q)
    }

    pub fn from_request(req: &impl Incoming) -> Result<Self, ApiError> {
        Self::parse(req.query_string())
    }

    /// The feed this request reads or publishes to ([`AppState::feed_of`]).
    pub fn feed(&self, state: &AppState) -> Result<Arc<Feed>, ApiError> {
        state.feed_of(self.feed.as_deref())
    }

    /// Checks `--auth-token` against the URL's `token` or the Bearer header.
    pub fn authorize(&self, req: &impl Incoming, state: &AppState) -> Result<(), ApiError> {
        crate::auth::check(
            state.config.auth_token.as_deref(),
            crate::auth::presented(req, self.token.as_deref()),
        )
    }
}

/// Splits `a=1&b=2` and percent-decodes; `+` is a space, as in HTML forms.
fn form_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

/// Borrowed when there is nothing to decode, which is every parameter a poll sends
/// (`since=N&timeout_ms=T`): parsing a poll's query then allocates nothing.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'+' || b == b'%') {
        return Cow::Borrowed(s);
    }
    let s = s.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn parse_flag(name: &'static str, value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "true" | "" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(ApiError::BadRequest(format!(
            "`{name}` is 1 or 0, got {value:?}"
        ))),
    }
}

pub fn parse_u64(name: &'static str, value: &str) -> Result<u64, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadNumber {
            name,
            value: value.to_owned(),
        });
    }
    trimmed.parse().map_err(|_| ApiError::BadNumber {
        name,
        value: value.to_owned(),
    })
}

pub fn parse_client_id(value: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::BadClientId(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_names_the_bad_field() {
        assert_eq!(
            FeedQuery::parse("since=5&timeout_ms=100&client=page-1").unwrap(),
            FeedQuery {
                since: Some(5),
                timeout_ms: Some(100),
                client: Some("page-1".into()),
                ..FeedQuery::default()
            }
        );
        for bad in [
            "since=abc",
            "since=-1",
            "since=",
            "since=1.5",
            "since=99999999999999999999999",
        ] {
            let err = FeedQuery::parse(bad).unwrap_err().to_string();
            assert!(err.contains("`since`"), "{bad}: {err}");
        }
        assert!(FeedQuery::parse("timeout_ms=-5").is_err());
        assert!(FeedQuery::parse("client=a%20b").is_err());
        assert!(FeedQuery::parse(&format!("client={}", "x".repeat(65))).is_err());
        assert_eq!(FeedQuery::parse("").unwrap(), FeedQuery::default());
        // Decoded only where there is something to decode.
        assert!(matches!(decode("since"), Cow::Borrowed("since")));
        assert_eq!(
            FeedQuery::parse("client=a%2Db&token=x+y%21").unwrap(),
            FeedQuery {
                client: Some("a-b".into()),
                token: Some("x y!".into()),
                ..FeedQuery::default()
            }
        );
    }
}
