//! Compression in the report (`--compression`): per phase, what was offered and agreed and both
//! sides of the trade — the bytes it saves on the wire against the CPU it costs the server to
//! compress and loadgen (the browser's stand-in) to decode; and the "Compression" table that
//! puts each transport without and with it side by side.
//!
//! Kept out of `tables.rs` so the comparison has one home: the model's figures are filled here
//! too ([`result`]), from what the clients counted and the server's `/stats`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    spread::Range,
    tables::{bytes, num, Table},
    Report, TransportResult,
};
use crate::compression;

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

/// What the clients of one transport counted in one phase.
#[derive(Debug, Default)]
pub struct Counted {
    pub bytes_decoded: u64,
    pub cpu_ns: u64,
    pub answers: BTreeMap<String, u64>,
}

impl Counted {
    pub fn add(&mut self, d: &compression::Decoding) {
        self.bytes_decoded += d.decoded();
        self.cpu_ns += d.cpu_ns();
        for (k, v) in d.answers() {
            *self.answers.entry(k).or_default() += v;
        }
    }
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
        offer: offered.then(|| {
            if ws {
                compression::WS_OFFER
            } else {
                compression::ACCEPT_ENCODING
            }
            .to_owned()
        }),
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

impl TransportResult {
    /// Whether this phase offered compression (reports from before the flag did not).
    pub fn compressed(&self) -> bool {
        self.compression.as_ref().is_some_and(|c| c.offered)
    }
}

const HEADERS: [&str; 10] = [
    "Transport",
    "Compression",
    "Server answered",
    "Bytes/event (wire)",
    "Decoded ÷ wire",
    "Server CPU/delivery",
    "Server RSS/conn",
    "loadgen decode/event",
    "p50",
    "p99",
];

/// The "Compression" table: each transport (HTTP version, TLS, clients, rate) without and with
/// compression, when any phase offered it. With repeats, every figure is its median and range.
pub fn table(report: &Report) -> Option<Table> {
    if !report.phases.iter().any(TransportResult::compressed) {
        return None;
    }
    let mut t = Table {
        title: "Compression".into(),
        note: "Each transport without and with compression offered as a browser offers it (WebSocket permessage-deflate, HTTP Accept-Encoding). Bytes are on the socket, both ways; \"decoded ÷ wire\" is the payload after decoding over the bytes read. loadgen's decode CPU is the thread CPU of its decoder calls (HTTP) or of every WebSocket receive poll with compression on (the library inflates inside: an upper bound). Server memory per connection only from the phases with enough connections to measure it. With --repeat: median [min–max] over the runs.".into(),
        headers: HEADERS.iter().map(|h| (*h).to_owned()).collect(),
        rows: Vec::new(),
    };
    // One row per cell, in the order first measured, the uncompressed one first.
    let mut cells: Vec<&TransportResult> = Vec::new();
    for r in &report.phases {
        if !cells.iter().any(|c| c.same_cell(r)) {
            cells.push(r);
        }
    }
    cells.sort_by_key(|r| {
        let first = report
            .phases
            .iter()
            .position(|p| same_but_compression(p, r));
        (first, r.compressed())
    });
    for r in cells {
        t.rows.push(row(&report.runs_of(r)));
    }
    Some(t)
}

/// The same cell apart from compression.
fn same_but_compression(a: &TransportResult, b: &TransportResult) -> bool {
    a.transport == b.transport
        && a.http == b.http
        && a.tls == b.tls
        && a.clients == b.clients
        && a.rate == b.rate
        && a.network.as_ref().map(|n| &n.name) == b.network.as_ref().map(|n| &n.name)
}

fn row(runs: &[&TransportResult]) -> Vec<String> {
    let n = runs.len();
    let first = runs[0];
    let show = |f: &dyn Fn(&TransportResult) -> Option<f64>, fmt: &dyn Fn(f64) -> String| {
        let v: Vec<f64> = runs.iter().filter_map(|r| f(r)).collect();
        // A figure some run could not measure has no honest range.
        match Range::of(&v) {
            Some(range) if v.len() == n => range.show(n, fmt),
            _ => "–".to_owned(),
        }
    };
    let mut answers: BTreeMap<&str, u64> = BTreeMap::new();
    for r in runs {
        for (k, v) in r.compression.iter().flat_map(|c| &c.answers) {
            *answers.entry(k.as_str()).or_default() += v;
        }
    }
    let answered = if answers.is_empty() {
        "–".to_owned()
    } else {
        answers.keys().copied().collect::<Vec<_>>().join(", ")
    };
    let name = if first.http == "1.1" || first.transport == "ws" {
        first.transport.clone()
    } else {
        format!("{} HTTP/{}", first.transport, first.http)
    };
    let name = if first.tls {
        format!("{name} TLS")
    } else {
        name
    };
    vec![
        name,
        if first.compressed() { "on" } else { "off" }.to_owned(),
        answered,
        show(&|r| r.bytes_per_event, &bytes),
        show(&|r| r.compression.as_ref().and_then(|c| c.ratio), &num),
        show(&|r| r.server_cpu_us_per_event, &|v| {
            format!("{} µs", num(v))
        }),
        show(&|r| r.server_rss_per_connection_bytes, &bytes),
        show(
            &|r| {
                r.compression
                    .as_ref()
                    .and_then(|c| c.decode_cpu_us_per_event)
            },
            &|v| format!("{} µs", num(v)),
        ),
        show(
            &|r| (r.latency_us.count > 0).then_some(r.latency_us.p50 as f64),
            &|v| super::tables::us(v as u64),
        ),
        show(
            &|r| (r.latency_us.count > 0).then_some(r.latency_us.p99 as f64),
            &|v| super::tables::us(v as u64),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Report {
        serde_json::from_str(include_str!("../../../results/reference/report.json")).unwrap()
    }

    #[test]
    fn the_table_sets_each_transport_without_and_with_side_by_side_over_its_runs() {
        let mut r = reference();
        // Made before the flag: no compression, no table.
        assert!(table(&r).is_none());
        let plain = r.phases.clone();
        for p in &mut r.phases {
            p.compression = Some(result(
                p.transport == "ws",
                false,
                Counted::default(),
                p.bytes_down,
                p.events_received,
                None,
            ));
        }
        for mut p in plain {
            let counted = Counted {
                bytes_decoded: p.bytes_down * 3,
                cpu_ns: 1_000 * p.events_received,
                answers: BTreeMap::from([("gzip".to_owned(), p.http_requests)]),
            };
            p.bytes_down /= 2;
            p.bytes_per_event = p.bytes_per_event.map(|b| b / 2.0);
            p.compression = Some(result(
                p.transport == "ws",
                true,
                counted,
                p.bytes_down,
                p.events_received,
                Some((100, 50)),
            ));
            p.phase = r.phases.len();
            r.phases.push(p);
        }
        let t = table(&r).expect("a Compression table");
        let cells = reference().latest().len();
        assert_eq!(t.rows.len(), 2 * cells, "{:?}", t.rows);
        for pair in t.rows.chunks(2) {
            assert_eq!(pair[0][0], pair[1][0], "the same transport, off then on");
            assert_eq!((pair[0][1].as_str(), pair[1][1].as_str()), ("off", "on"));
            assert_eq!((pair[0][2].as_str(), pair[1][2].as_str()), ("–", "gzip"));
            // Three runs each: median [min–max].
            assert!(pair[1][4].starts_with("6"), "{:?}", pair[1]);
            assert!(pair[1][3].contains('['), "{:?}", pair[1]);
            assert!(pair[1][7].contains('['), "{:?}", pair[1]);
        }
        // Tables and charts keep to the first setting; the headline too.
        assert!(r.latest().iter().all(|p| !p.compressed()));
    }

    #[test]
    fn ratios_come_from_the_counts_and_an_older_server_leaves_its_side_empty() {
        let counted = Counted {
            bytes_decoded: 30_000,
            cpu_ns: 2_000_000,
            answers: BTreeMap::from([("gzip".to_owned(), 10)]),
        };
        let c = result(false, true, counted, 10_000, 100, None);
        assert_eq!(c.ratio, Some(3.0));
        assert_eq!(c.decoded_bytes_per_event, Some(300.0));
        assert_eq!(c.decode_cpu_us_per_event, Some(20.0));
        assert_eq!(c.offer.as_deref(), Some(compression::ACCEPT_ENCODING));
        assert_eq!(c.decode_cpu_covers, "decode_calls");
        assert_eq!(c.server_payload_bytes_uncompressed, None);
        assert_eq!(c.server_ratio, None);
        let c = result(true, false, Counted::default(), 0, 0, Some((4_000, 1_000)));
        assert_eq!(c.offer, None);
        assert_eq!(c.ratio, None);
        assert_eq!(c.server_ratio, Some(4.0));
        assert_eq!(c.decode_cpu_covers, "receive_polls");
    }
}
