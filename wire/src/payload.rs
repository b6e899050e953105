//! What an event carries. The padding (`"pad":"xxxx…"`) is exact in size, which the fan-out
//! floor runs need, but it compresses to almost nothing and looks like no real feed; the other
//! kinds are JSON shaped like what live features publish — a market tick, a chat message, a
//! dashboard's metrics — with content that varies from event to event the way real content does
//! (names from a fixed set, numbers that wander, sentences made of common words), so that
//! sizes and any compression measured on them mean something. Every event is a pure function
//! of the kind, the run's seed and the event's number: two runs with one seed publish the same
//! bytes.
//!
//! Here, in the wire crate, because two programs make events: loadgen's publisher and the
//! server's built-in ticker (`server --payload`), and a compression measurement on either must
//! see the same content.

use std::fmt::Write as _;

use rand::{rngs::StdRng, Rng as _, SeedableRng as _};

/// `--payload` (loadgen's and the server's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum PayloadKind {
    /// `"pad":"xxxx…"` of exactly `--payload-bytes`: the fan-out floor's payload.
    Padding,
    /// A market tick: `{"sym":"NOVA","bid":…,"ask":…,"bid_size":…,"ask_size":…,"last":…,"venue":"XPAR"}`, about 120 B.
    Tick,
    /// A chat message: `{"room":"general","user":"mara_17","text":"…"}` with a sentence of 5–24 common words, 60–200 B.
    Chat,
    /// A dashboard sample: a host's CPU, memory, request rate, latency quantiles and error counts, about 230 B.
    Metrics,
}

impl PayloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Padding => "padding",
            Self::Tick => "tick",
            Self::Chat => "chat",
            Self::Metrics => "metrics",
        }
    }
}

/// Makes the content of each event of a run.
#[derive(Debug, Clone)]
pub struct Payload {
    pub kind: PayloadKind,
    seed: u64,
    pad: String,
}

const SYMBOLS: [(&str, f64); 12] = [
    ("NOVA", 182.4),
    ("ACME", 41.07),
    ("BRIX", 9.815),
    ("CYGN", 377.2),
    ("DUNE", 63.5),
    ("ELMO", 12.44),
    ("FJRD", 250.9),
    ("GLYF", 5.021),
    ("HALO", 98.3),
    ("IRIS", 144.75),
    ("JADE", 27.6),
    ("KOTO", 1203.0),
];
const VENUES: [&str; 4] = ["XPAR", "XAMS", "XETR", "XLON"];
const ROOMS: [&str; 5] = ["general", "random", "release-train", "support", "design"];
const NAMES: [&str; 16] = [
    "mara", "teo", "anouk", "sven", "lina", "omar", "yuki", "ines", "pavel", "zoe", "kofi", "noor",
    "emil", "rosa", "dev", "ada",
];
const WORDS: [&str; 64] = [
    "the",
    "build",
    "is",
    "green",
    "again",
    "after",
    "we",
    "moved",
    "that",
    "test",
    "to",
    "its",
    "own",
    "runner",
    "can",
    "someone",
    "look",
    "at",
    "latency",
    "on",
    "staging",
    "before",
    "lunch",
    "I",
    "think",
    "deploy",
    "went",
    "fine",
    "but",
    "cache",
    "looks",
    "cold",
    "will",
    "ship",
    "fix",
    "today",
    "thanks",
    "for",
    "review",
    "numbers",
    "are",
    "better",
    "than",
    "yesterday",
    "let's",
    "pair",
    "this",
    "afternoon",
    "meeting",
    "moved",
    "ten",
    "minutes",
    "later",
    "new",
    "dashboard",
    "shows",
    "errors",
    "dropping",
    "good",
    "catch",
    "sure",
    "why",
    "not",
    "tomorrow",
];
const HOSTS: [&str; 8] = [
    "web-01",
    "web-02",
    "web-03",
    "api-01",
    "api-02",
    "worker-01",
    "worker-02",
    "db-01",
];

impl Payload {
    pub fn new(kind: PayloadKind, payload_bytes: usize, seed: u64) -> Self {
        Self {
            kind,
            seed,
            pad: if kind == PayloadKind::Padding {
                "x".repeat(payload_bytes)
            } else {
                String::new()
            },
        }
    }

    fn rng(&self, n: u64) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The fields event `n` carries besides loadgen's own (`sent_us`, `pub`), as JSON object
    /// members without the braces.
    pub fn fields(&self, n: u64) -> String {
        let mut r = self.rng(n);
        let mut out = String::with_capacity(256);
        match self.kind {
            PayloadKind::Padding => {
                let _ = write!(out, r#""pad":"{}""#, self.pad);
            }
            PayloadKind::Tick => {
                let (sym, base) = SYMBOLS[r.gen_range(0..SYMBOLS.len())];
                let last = base * (1.0 + r.gen_range(-0.02..0.02));
                let spread = (base * r.gen_range(0.0001..0.0008)).max(0.001);
                let _ = write!(
                    out,
                    r#""sym":"{sym}","bid":{:.3},"ask":{:.3},"bid_size":{},"ask_size":{},"last":{:.3},"venue":"{}""#,
                    last - spread / 2.0,
                    last + spread / 2.0,
                    r.gen_range(1..50) * 100,
                    r.gen_range(1..50) * 100,
                    last,
                    VENUES[r.gen_range(0..VENUES.len())]
                );
            }
            PayloadKind::Chat => {
                let words = r.gen_range(5..=24);
                let mut text = String::new();
                for i in 0..words {
                    let w = WORDS[r.gen_range(0..WORDS.len())];
                    if i == 0 {
                        let mut c = w.chars();
                        if let Some(f) = c.next() {
                            text.extend(f.to_uppercase());
                            text.push_str(c.as_str());
                        }
                    } else {
                        text.push(' ');
                        text.push_str(w);
                    }
                }
                text.push(if r.gen_bool(0.2) { '?' } else { '.' });
                let _ = write!(
                    out,
                    r#""room":"{}","user":"{}_{}","text":"{text}""#,
                    ROOMS[r.gen_range(0..ROOMS.len())],
                    NAMES[r.gen_range(0..NAMES.len())],
                    r.gen_range(1..100)
                );
            }
            PayloadKind::Metrics => {
                let p50 = r.gen_range(2.0..20.0f64);
                let _ = write!(
                    out,
                    r#""host":"{}","cpu":{:.3},"mem_mb":{},"rps":{:.1},"latency_ms":{{"p50":{:.2},"p90":{:.2},"p99":{:.2}}},"errors":{{"4xx":{},"5xx":{}}},"disk_free_gb":{:.1},"uptime_s":{}"#,
                    HOSTS[r.gen_range(0..HOSTS.len())],
                    r.gen_range(0.02..0.97f64),
                    r.gen_range(300..15_000),
                    r.gen_range(10.0..4_000.0f64),
                    p50,
                    p50 * r.gen_range(1.5..3.0),
                    p50 * r.gen_range(3.0..9.0),
                    r.gen_range(0..40),
                    r.gen_range(0..3),
                    r.gen_range(4.0..900.0f64),
                    r.gen_range(1_000..9_000_000)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_json_deterministic_and_varies() {
        for kind in [
            PayloadKind::Padding,
            PayloadKind::Tick,
            PayloadKind::Chat,
            PayloadKind::Metrics,
        ] {
            let p = Payload::new(kind, 100, 7);
            let a = p.fields(1);
            let v: serde_json::Value = serde_json::from_str(&format!("{{{a}}}"))
                .unwrap_or_else(|e| panic!("{kind:?}: {a}: {e}"));
            assert!(v.is_object());
            assert_eq!(
                a,
                Payload::new(kind, 100, 7).fields(1),
                "{kind:?}: same seed, same bytes"
            );
            if kind != PayloadKind::Padding {
                let distinct: std::collections::HashSet<String> =
                    (0..50).map(|n| p.fields(n)).collect();
                assert!(distinct.len() > 45, "{kind:?} varies from event to event");
                assert_ne!(
                    a,
                    Payload::new(kind, 100, 8).fields(1),
                    "{kind:?}: another seed"
                );
            }
        }
        assert_eq!(
            Payload::new(PayloadKind::Padding, 100, 0).fields(0).len(),
            108
        );
    }

    #[test]
    fn realistic_kinds_do_not_compress_like_padding() {
        // The point of these kinds: padding is almost all redundancy; real-looking content is
        // not. A crude but honest check: distinct bytes in 100 events.
        let distinct = |k| {
            let p = Payload::new(k, 100, 1);
            let all: String = (0..100).map(|n| p.fields(n)).collect();
            all.bytes().collect::<std::collections::HashSet<u8>>().len()
        };
        assert!(distinct(PayloadKind::Padding) < 10);
        for k in [PayloadKind::Tick, PayloadKind::Chat, PayloadKind::Metrics] {
            assert!(distinct(k) > 30, "{k:?}");
        }
    }
}
