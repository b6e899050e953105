//! Compression in the report (`--compression`): per phase, what was offered and agreed and both
//! sides of the trade — the bytes it saves on the wire against the CPU it costs the server to
//! compress and loadgen (the browser's stand-in) to decode; and the "Compression" table that
//! puts each transport without and with it side by side.
//!
//! Kept out of `tables.rs` so the comparison has one home (the model's figures are filled by
//! loadgen, from what the clients counted and the server's `/stats`).

use std::collections::BTreeMap;

use crate::{
    spread::Range,
    tables::Table,
    units::{bytes, num},
    Report, TransportResult,
};

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
            &|v| crate::units::us(v as u64),
        ),
        show(
            &|r| (r.latency_us.count > 0).then_some(r.latency_us.p99 as f64),
            &|v| crate::units::us(v as u64),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::compression::{result, Counted, ACCEPT_ENCODING};

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
            // A range where the runs differ as written, the value alone where they do not.
            assert!(
                pair[1][3].contains('[') || !pair[1][3].contains('–'),
                "{:?}",
                pair[1]
            );
            // A range only where the runs differ as written ("1 µs" in every run: no range).
            assert!(
                pair[1][7].contains('[') || !pair[1][7].contains('–'),
                "{:?}",
                pair[1]
            );
        }
        assert!(t.rows.iter().any(|r| r[3].contains('[')), "{:?}", t.rows);
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
        assert_eq!(c.offer.as_deref(), Some(ACCEPT_ENCODING));
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
