//! Bytes on the wire per event for WebSocket clients, uncompressed and in the server's two
//! permessage-deflate forms (`--ws-deflate shared`: each event compressed on its own, once;
//! `context`: one compressor per connection, context takeover), for the payloads loadgen
//! publishes. The measurement behind the server's `--ws-deflate` default (the book,
//! docs/src/results/compression.md).
//!
//!     cargo run -p loadgen --example ws_deflate_sizes [EVENTS]
//!
//! With `--only plain|shared|context` it only compresses (no table), for instruction counts:
//!
//!     valgrind --tool=callgrind target/release/examples/ws_deflate_sizes --only context 1000

use loadgen::{
    client::publisher::body,
    payload::{Payload, PayloadKind},
};
use server::{
    config::WsDeflate,
    event::Event,
    transport::ws::deflate::{Agreement, Deflater, Settings},
};

const KINDS: [PayloadKind; 4] = [
    PayloadKind::Tick,
    PayloadKind::Chat,
    PayloadKind::Metrics,
    PayloadKind::Padding,
];

fn settings(mode: WsDeflate, window_bits: u8) -> Settings {
    Settings {
        mode,
        window_bits,
        level: 6,
        min_bytes: 64,
    }
}

/// `events` events of `kind`, as the server encodes them.
fn events(kind: PayloadKind, events: u64) -> Vec<Event> {
    let payload = Payload::new(kind, 100, 1);
    let t0 = 1_767_000_000_000_000u64;
    (1..=events)
        .map(|n| {
            let ts = t0 + n * 10_000;
            Event::encode(n, ts, &body(n, ts - 350, &payload.fields(n)))
        })
        .collect()
}

/// Total frame bytes of `events` in one form.
fn bytes(events: &[Event], form: &str, window_bits: u8) -> usize {
    match form {
        "plain" => events.iter().map(|e| e.ws_frame.len()).sum(),
        "shared" => {
            let s = settings(WsDeflate::Shared, window_bits);
            events.iter().map(|e| e.ws_frame_deflated(&s).len()).sum()
        }
        _ => {
            let mut d = Deflater::new(Agreement {
                server_no_context_takeover: false,
                server_window_bits: window_bits,
                settings: settings(WsDeflate::Context, window_bits),
            });
            events
                .iter()
                .map(|e| d.frame(1, e.ws.as_bytes(), || e.ws_frame.clone()).len())
                .sum()
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, form, n] = &args[..] {
        assert_eq!(
            flag, "--only",
            "usage: [--only plain|shared|context] [EVENTS]"
        );
        let n: u64 = n.parse().expect("EVENTS is a number");
        let total: usize = KINDS.iter().map(|k| bytes(&events(*k, n), form, 15)).sum();
        println!("{form}: {total} bytes");
        return;
    }
    let n: u64 = args
        .first()
        .map_or(1000, |a| a.parse().expect("EVENTS is a number"));
    println!("| payload | JSON bytes/event | plain frame | shared (15 bits) | context (15 bits) | context (10 bits) |");
    println!("|---|---|---|---|---|---|");
    for kind in KINDS {
        let evs = events(kind, n);
        let json: usize = evs.iter().map(|e| e.ws.len()).sum();
        let plain = bytes(&evs, "plain", 15);
        let per = |b: usize| {
            format!(
                "{:.1} ({:.0} %)",
                b as f64 / n as f64,
                100.0 * b as f64 / plain as f64
            )
        };
        println!(
            "| {} | {:.1} | {} | {} | {} | {} |",
            kind.as_str(),
            json as f64 / n as f64,
            per(plain),
            per(bytes(&evs, "shared", 15)),
            per(bytes(&evs, "context", 15)),
            per(bytes(&evs, "context", 10)),
        );
    }
}
