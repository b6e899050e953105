//! What compression came to in one phase (`--compression`): what was offered and agreed, and both
//! sides of the trade, the bytes it saves on the wire against the CPU it costs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TransportResult;

/// One transport in one phase: compression offered, agreed, and what it came to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CompressionResult {
    /// loadgen offered compression in this phase (`--compression on`, or the second run of
    /// each phase with `both`).
    pub offered: bool,
    /// What was offered: the `Sec-WebSocket-Extensions` or `Accept-Encoding` value; null when
    /// nothing was.
    pub offer: Option<String>,
    /// What the server answered, counted per WebSocket handshake or HTTP response: the agreed
    /// extension with its parameters (`permessage-deflate; server_no_context_takeover`, …), the
    /// `Content-Encoding` (`gzip`, `deflate`, `br`), or `none`.
    pub answers: BTreeMap<String, u64>,
    /// Payload after decoding (WebSocket message payloads, HTTP bodies), bytes: with
    /// compression off, the payload as it arrived.
    pub bytes_decoded: u64,
    /// bytes_decoded / events_received.
    #[schemars(range(min = 0))]
    pub decoded_bytes_per_event: Option<f64>,
    /// bytes_decoded / bytes on the socket (`bytes_down`): above 1 when compression saves more
    /// than the framing costs; below 1 without compression (heads and framing).
    #[schemars(range(min = 0))]
    pub ratio: Option<f64>,
    /// loadgen's CPU decoding, s, on the thread CPU clock (`CLOCK_THREAD_CPUTIME_ID`).
    #[schemars(range(min = 0))]
    pub decode_cpu_s: f64,
    /// decode_cpu_s per received event, µs.
    #[schemars(range(min = 0))]
    pub decode_cpu_us_per_event: Option<f64>,
    /// What `decode_cpu_s` covers: `decode_calls` (HTTP: only the decoder's calls, nothing with
    /// compression off) or `receive_polls` (WebSocket: every poll of the socket — reading,
    /// unmasking, inflating — since the library inflates inside, so an upper bound of the
    /// inflating; not measured, 0, with compression off).
    #[schemars(extend("enum" = ["decode_calls", "receive_polls"]))]
    pub decode_cpu_covers: String,
    /// The payload the server wrote before compressing it, from `/stats`
    /// (`payload_bytes_uncompressed`), bytes; null from a server that does not report it.
    pub server_payload_bytes_uncompressed: Option<u64>,
    /// server_payload_bytes_uncompressed / the server's `bytes_written`.
    #[schemars(range(min = 0))]
    pub server_ratio: Option<f64>,
}

impl TransportResult {
    /// Whether this phase offered compression (reports from before the flag did not).
    pub fn compressed(&self) -> bool {
        self.compression.as_ref().is_some_and(|c| c.offered)
    }
}

/// The WebSocket extension offered, as Chrome and Firefox send it.
pub const WS_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The HTTP encodings offered, as browsers send them.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br";

/// What the clients of one transport counted in one phase.
#[derive(Debug, Default)]
pub struct Counted {
    pub bytes_decoded: u64,
    pub cpu_ns: u64,
    pub answers: BTreeMap<String, u64>,
}

/// The server's side, summed over its instances: (payload before compressing, bytes written).
pub type ServerSide = Option<(u64, u64)>;

/// One transport's [`CompressionResult`] from what its clients counted.
pub fn result(
    ws: bool,
    offered: bool,
    counted: Counted,
    bytes_down: u64,
    received: u64,
    server: ServerSide,
) -> CompressionResult {
    let per_event = |v: f64| (received > 0).then(|| v / received as f64);
    let decode_cpu_s = counted.cpu_ns as f64 / 1e9;
    CompressionResult {
        offered,
        offer: offered.then(|| if ws { WS_OFFER } else { ACCEPT_ENCODING }.to_owned()),
        answers: counted.answers,
        bytes_decoded: counted.bytes_decoded,
        decoded_bytes_per_event: per_event(counted.bytes_decoded as f64),
        ratio: (bytes_down > 0).then(|| counted.bytes_decoded as f64 / bytes_down as f64),
        decode_cpu_s,
        decode_cpu_us_per_event: per_event(decode_cpu_s * 1e6),
        decode_cpu_covers: if ws { "receive_polls" } else { "decode_calls" }.to_owned(),
        server_payload_bytes_uncompressed: server.map(|(u, _)| u),
        server_ratio: server.and_then(|(u, w)| (w > 0).then(|| u as f64 / w as f64)),
    }
}
