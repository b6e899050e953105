//! What talking back cost (`--send-rate`: every client also publishes its own messages, its
//! transport's way), as the report keeps it under the key `upstream`, and loadgen's counts of
//! those publishes against the server's.

use serde::{Deserialize, Serialize};

use super::{
    histogram::{ErrorCounts, Quantiles},
    Compared,
};

/// The report's `upstream` object: what talking back cost one transport in one phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(rename = "Upstream")]
pub struct TalkBack {
    /// `ws-message`, `post-h2-stream`, `post-second-connection` or `post-new-connection`.
    pub way: String,
    /// Messages per second per client asked for.
    pub send_rate: f64,
    /// Distinct messages the clients sent.
    pub messages_sent: u64,
    /// Messages the server acknowledged with their seq.
    pub messages_acked: u64,
    /// Sent and never acknowledged by the end of the phase.
    pub unacknowledged: u64,
    /// Resends after a failure or reconnect (each with the message's idempotency key).
    pub retried: u64,
    /// Resends whose first attempt may have reached the server (stored twice unless the server
    /// deduplicates by the key).
    pub maybe_twice: u64,
    /// Messages a client sent that never came back to it in the feed.
    pub lost_own: u64,
    /// `POST /publish` requests per message sent (0 on a WebSocket).
    pub requests_per_message: Option<f64>,
    /// Every HTTP request of the phase (stream or polls and POSTs) per client.
    pub requests_per_client: f64,
    /// Every TCP connection opened (stream or polls and sending) per client.
    pub connections_per_client: f64,
    /// Bytes the clients wrote to their sockets (all of them: subscription and sending) per
    /// message sent.
    pub bytes_up_per_message: Option<f64>,
    /// Bytes the clients read per message sent.
    pub bytes_down_per_message: Option<f64>,
    /// Bytes written on the sending-only connections (HTTP/1.x POSTs) per message: the cost of
    /// the way up alone; null where it shares the stream's connection (WebSocket, HTTP/2).
    pub bytes_up_sending_only_per_message: Option<f64>,
    /// Intended send → acknowledgement, µs.
    pub ack_us: Quantiles,
    /// Intended send → the sender received its own message, µs.
    pub own_receipt_us: Quantiles,
    /// Intended send → each other client received it, µs.
    pub others_receipt_us: Quantiles,
    /// How late messages left against their intended time, µs.
    pub send_lag_us: Quantiles,
    /// The phase's server CPU per message in, µs (the same CPU as per delivery out).
    pub server_cpu_us_per_message: Option<f64>,
    /// The phase's server CPU per delivery out, µs.
    pub server_cpu_us_per_delivery: Option<f64>,
    pub errors: ErrorCounts,
    /// loadgen's counts against the server's `/stats` publish counters; null when unavailable.
    #[serde(default)]
    pub server_check: Option<TalkBackCheck>,
}

/// The clients' publishes against the server's count of their way up (the phase's publisher,
/// which posts over HTTP/1.1, added to loadgen's side there).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(rename = "UpstreamCheck")]
pub struct TalkBackCheck {
    /// The `/stats` key: `ws`, `http/1.0`, `http/1.1` or `http/2`.
    pub way: String,
    pub requests: Compared,
    pub messages: Compared,
    /// Bytes written on the sending connections against the server's bytes read, within 1%.
    pub bytes: Compared,
    /// Why the bytes are shown but not checked (WebSocket, HTTP/2), or null.
    pub bytes_note: Option<String>,
    pub ok: bool,
}
