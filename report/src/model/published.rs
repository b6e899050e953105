//! What the publisher did in one phase, as the report keeps it: events confirmed, retried, possibly
//! stored twice, never acknowledged, and how late and how slow its publishes were.

use super::histogram::{ErrorCounts, Quantiles};

// Doc comments below are the committed schema's descriptions (results/report.schema.json):
// kept word for word, links to where the items lived before the report was its own crate
// included.
/// What the publisher did in one phase.
#[derive(
    Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, schemars::JsonSchema,
)]
#[schemars(deny_unknown_fields)]
pub struct Published {
    /// Events the server confirmed (`{"seq":N}`).
    pub published: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Average `data` size in bytes (the payload every transport must carry).
    #[schemars(range(min = 0))]
    pub data_bytes: f64,
    /// How late each publish left against its intended time, µs.
    pub send_lag_us: Quantiles,
    /// Request → response time of `POST /publish`, µs (of the attempt that was answered).
    pub rtt_us: Quantiles,
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z0-9_]+$"}))]
    pub errors: ErrorCounts,
    /// Publish attempts repeated after a failure (on the next server, when there are several).
    #[serde(default)]
    #[schemars(skip_serializing_if = "crate::model::schema::added_later")]
    pub retried: u64,
    /// Events acknowledged after an attempt whose request may have reached a server that then
    /// failed to answer, by a server that did not honour the idempotency key: such an event may
    /// be in the feed twice, under two seqs. 0 against feedlab's server, which honours keys.
    #[serde(default)]
    #[schemars(skip_serializing_if = "crate::model::schema::added_later")]
    pub maybe_twice: u64,
    /// Retries the server answered as replays of a publish it had stored (`Idempotent-Replayed:
    /// true`): without the idempotency key each would be an event in the feed twice.
    #[serde(default)]
    #[schemars(skip_serializing_if = "crate::model::schema::added_later")]
    pub replayed: u64,
    /// Events never acknowledged, even after retrying until [`RETRY_GRACE`] past the end.
    #[serde(default)]
    #[schemars(skip_serializing_if = "crate::model::schema::added_later")]
    pub unacknowledged: u64,
    /// The seqs acknowledged, sorted: an event is lost only if it is one of these and a client
    /// never received it.
    #[serde(skip)]
    pub acked: Vec<u64>,
    /// Bytes the publisher wrote (its `POST /publish` requests, on HTTP/1.1), for the check of
    /// the clients' own publishes against the server's counts, which include these.
    #[serde(skip)]
    pub bytes_up: u64,
}
