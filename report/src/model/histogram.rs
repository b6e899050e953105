//! Latency as the report keeps it: the histogram every latency goes into (1 µs to 60 s, 3
//! significant figures), its summary numbers ([`Quantiles`]), and the HdrHistogram V2 encoding
//! the report stores whole histograms in (readable by every HdrHistogram port). Errors by kind
//! ([`ErrorCounts`]) beside them: both are what clients counted, in the report's shape.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The histogram every latency goes into: 1 µs to 60 s, 3 significant figures. Microseconds
/// because loopback delivery is sub-millisecond.
pub fn new_histogram() -> Histogram<u64> {
    // unwrap: constant, valid bounds.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Error kinds, as report keys: `connect_refused`, `connect_timeout`, `timeout`, `http_503`,
/// `ws_close_1001`, `reset`, `io`, `protocol`, `bad_body`, `sse_overflow`.
pub type ErrorCounts = BTreeMap<String, u64>;

/// The summary numbers of a latency histogram, in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Quantiles {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    #[schemars(range(min = 0))]
    pub mean: f64,
}

impl Quantiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min: h.min(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// A histogram as base64 of its HdrHistogram V2 encoding (readable by every HdrHistogram port).
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    let mut buf = Vec::new();
    // Serializing into a Vec cannot fail for a valid histogram.
    use hdrhistogram::serialization::Serializer as _;
    let _ = hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut buf);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// The inverse of [`encode_histogram`].
///
/// # Errors
/// When `s` is not base64 of a V2 histogram.
pub fn decode_histogram(s: &str) -> anyhow::Result<Histogram<u64>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    let h = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(|e| anyhow::anyhow!("histogram: {e:?}"))?;
    Ok(h)
}
