//! Bytes per event on the wire for each payload kind, uncompressed and with `--http-gzip shared`
//! and `stream`: the numbers in the book's docs/src/results/compression.md. Deterministic (seeded
//! payloads, fixed timestamps, one deflate implementation), so no timing and no noise:
//!
//! ```text
//! cargo run -p server --example gzip_sizes
//! ```
//!
//! SSE: each event is a chunk of its own (a live feed at a modest rate flushes every event),
//! counted as body bytes (the HTTP/1.1 chunk framing is the same few bytes in each mode).
//! Polls: bodies of 10 events, per event.

use std::sync::Arc;

use feedlab_wire::payload::{Payload, PayloadKind};
use server::{
    compress::{GzStream, HttpGzip, Member, GZIP_HEADER},
    event::Event,
    feed::Batch,
    transport::batch_body,
};

const EVENTS: u64 = 1_000;
const POLL_BATCH: u64 = 10;

fn events(kind: PayloadKind) -> Vec<String> {
    let payload = Payload::new(kind, 100, 1);
    (1..=EVENTS)
        .map(|n| {
            format!(
                "{{\"source\":\"ticker\",\"tick\":{n},\"sent_us\":{},{}}}",
                1_764_600_000_000_000 + n * 1_000,
                payload.fields(n)
            )
        })
        .collect()
}

fn main() {
    println!(
        "| payload | SSE identity | SSE shared | SSE stream | poll identity | poll shared | poll stream |"
    );
    println!("|---|---|---|---|---|---|---|");
    for kind in [
        PayloadKind::Padding,
        PayloadKind::Tick,
        PayloadKind::Chat,
        PayloadKind::Metrics,
    ] {
        let datas = events(kind);
        let encoded: Vec<Event> = datas
            .iter()
            .enumerate()
            .map(|(i, d)| Event::encode(i as u64 + 1, 1_764_600_000_000_000 + i as u64, d))
            .collect();
        let identity: usize = encoded.iter().map(|e| e.sse.len()).sum();
        // Shared: the gzip header once, each event's piece, the trailer once.
        let mut member = Member::new();
        let shared: usize = GZIP_HEADER.len()
            + encoded
                .iter()
                .map(|e| member.push(e.sse_gzip()).len())
                .sum::<usize>()
            + member.trailer().len();
        let mut gz = GzStream::new();
        let stream: usize = encoded
            .iter()
            .map(|e| {
                gz.write(&e.sse);
                gz.flush().len()
            })
            .sum::<usize>()
            + gz.finish().len();

        let encoded: Vec<Arc<Event>> = encoded.into_iter().map(Arc::new).collect();
        let (mut poll_identity, mut poll_shared, mut poll_stream) = (0, 0, 0);
        for events in encoded.chunks(POLL_BATCH as usize) {
            let next = events.last().map_or(0, |e| e.seq);
            let batch = Batch {
                events: events.to_vec(),
                missed: 0,
                next,
                head: EVENTS,
            };
            poll_identity += batch_body(&batch, None).bytes.len();
            poll_shared += batch_body(&batch, Some(HttpGzip::Shared)).bytes.len();
            poll_stream += batch_body(&batch, Some(HttpGzip::Stream)).bytes.len();
        }
        let per = |n: usize| n as f64 / EVENTS as f64;
        println!(
            "| {} | {:.1} | {:.1} ({:.0} %) | {:.1} ({:.0} %) | {:.1} | {:.1} ({:.0} %) | {:.1} ({:.0} %) |",
            kind.as_str(),
            per(identity),
            per(shared),
            100.0 * shared as f64 / identity as f64,
            per(stream),
            100.0 * stream as f64 / identity as f64,
            per(poll_identity),
            per(poll_shared),
            100.0 * poll_shared as f64 / poll_identity as f64,
            per(poll_stream),
            100.0 * poll_stream as f64 / poll_identity as f64,
        );
    }
}
