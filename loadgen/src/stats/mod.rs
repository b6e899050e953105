//! What clients saw, kept apart from how they saw it: counters, errors by kind, latency.
//!
//! Each client owns a [`Recorder`] (plain integers, no sharing on the hot path) and hands it back
//! when it ends; the phase adds them up. Latency is the exception: an hdrhistogram with 3
//! significant figures over 1 µs … 60 s takes ~140 KiB, so one per client would cost more than a
//! connection is allowed (64 KiB, see docs/src/reference/settings.md) at 10,000 clients. Clients therefore buffer a
//! few dozen samples and flush them into one of a few shared, sharded histograms, which the phase
//! merges at the end — the same numbers, for a lock taken once per [`FLUSH_EVERY`] events.

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Arc, Mutex,
};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use feedlab_report::model::histogram::{
    decode_histogram, encode_histogram, new_histogram, ErrorCounts, Quantiles,
};

pub mod receipts;

use crate::{
    event::Marks,
    sequence::{SeqSummary, SeqTracker},
};

/// Samples a client buffers before it takes a shard's lock.
pub const FLUSH_EVERY: usize = 64;

/// Shards of the shared histograms: enough that two worker threads rarely meet on one lock.
const SHARDS: usize = 8;

/// Latency histograms of one transport in one phase, shared by its clients.
#[derive(Debug)]
pub struct LatencySink {
    shards: Vec<Mutex<Pair>>,
    /// Keep every (publish time, latency) pair too, so latency can be split by when the event
    /// was published (chaos runs: inside the outage window or not). 16 B per delivery.
    keep_samples: bool,
}

#[derive(Debug)]
struct Pair {
    delivery: Histogram<u64>,
    server: Histogram<u64>,
    samples: Vec<(u64, u64)>,
}

impl Default for LatencySink {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencySink {
    pub fn new() -> Self {
        Self::keeping_samples(false)
    }

    /// A sink that also keeps every (publish time, latency) pair when `keep` is set.
    pub fn keeping_samples(keep: bool) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Pair {
                        delivery: new_histogram(),
                        server: new_histogram(),
                        samples: Vec::new(),
                    })
                })
                .collect(),
            keep_samples: keep,
        }
    }

    fn record(&self, shard: usize, delivery: &[u64], server: &[u64], samples: &[(u64, u64)]) {
        let mut pair = self.shards[shard % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for &v in delivery {
            pair.delivery.saturating_record(v.max(1));
        }
        for &v in server {
            pair.server.saturating_record(v.max(1));
        }
        pair.samples.extend_from_slice(samples);
    }

    /// Every (publish time µs, latency µs) pair kept (empty unless the sink keeps samples).
    pub fn samples(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let pair = shard.lock().unwrap_or_else(|p| p.into_inner());
            out.extend_from_slice(&pair.samples);
        }
        out
    }

    /// The merged histograms: publish → receipt, and server `ts` → receipt.
    pub fn merged(&self) -> (Histogram<u64>, Histogram<u64>) {
        let mut delivery = new_histogram();
        let mut server = new_histogram();
        for shard in &self.shards {
            let pair = shard.lock().unwrap_or_else(|p| p.into_inner());
            // Same bounds everywhere: adding cannot fail.
            let _ = delivery.add(&pair.delivery);
            let _ = server.add(&pair.server);
        }
        (delivery, server)
    }
}

/// Live totals for the progress bar, updated in batches (never per event).
#[derive(Debug, Default)]
pub struct Live {
    pub connected: AtomicU64,
    pub events: AtomicU64,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

/// What one client saw. Owned by its task; merged with `+=` at the end.
#[derive(Debug)]
pub struct Recorder {
    pub seq: SeqTracker,
    /// HTTP requests answered (WebSocket and SSE handshakes included).
    pub requests: u64,
    /// Polls that brought no event (short-poll 200 with no event, long-poll 204).
    pub empty_responses: u64,
    /// TCP connections opened.
    pub connections: u64,
    /// Connection attempts made after a lost connection or a failed attempt.
    pub reconnects: u64,
    /// Working connections (or, polling, requests after a success) that failed or ended.
    pub disconnects: u64,
    pub errors: ErrorCounts,
    /// Events whose publish time this loadgen knows (it published them).
    pub latency_samples: u64,
    /// `wt-datagrams`: events whose datagram did not come and were asked for again, and those
    /// of them that came back over a stream.
    pub datagrams_lost: u64,
    pub datagrams_recovered: u64,
    shard: usize,
    local_server: bool,
    pending_delivery: Vec<u64>,
    pending_server: Vec<u64>,
    pending_samples: Vec<(u64, u64)>,
    unflushed_events: u64,
    unflushed_requests: u64,
    sink: Arc<LatencySink>,
    live: Arc<Live>,
    /// Talking back (`--send-rate`): the client messages received.
    pub receipts: Option<crate::stats::receipts::Receipts>,
}

impl Recorder {
    /// A client numbered `index` that starts after `cursor`; `local_server`: the server's
    /// clock is this machine's, so its `ts` can be compared with ours.
    pub fn new(
        index: usize,
        cursor: u64,
        local_server: bool,
        sink: Arc<LatencySink>,
        live: Arc<Live>,
    ) -> Self {
        Self {
            seq: SeqTracker::new(cursor),
            requests: 0,
            empty_responses: 0,
            connections: 0,
            reconnects: 0,
            disconnects: 0,
            errors: ErrorCounts::new(),
            latency_samples: 0,
            datagrams_lost: 0,
            datagrams_recovered: 0,
            shard: index,
            local_server,
            pending_delivery: Vec::new(),
            pending_server: Vec::new(),
            pending_samples: Vec::new(),
            unflushed_events: 0,
            unflushed_requests: 0,
            sink,
            live,
            receipts: None,
        }
    }

    /// An event arrived at `now_us` (loadgen's clock).
    pub fn event(&mut self, seq: u64, ts: u64, marks: Marks, now_us: u64) {
        self.seq.record(seq);
        self.unflushed_events += 1;
        if let (Some(r), Some(from), Some(n), Some(sent)) =
            (self.receipts.as_mut(), marks.from, marks.msg, marks.sent_us)
        {
            r.message(from, n, sent, now_us);
        }
        if marks.pub_n.is_some() {
            if let Some(sent) = marks.sent_us {
                self.latency_samples += 1;
                if self.pending_delivery.capacity() == 0 {
                    self.pending_delivery.reserve_exact(FLUSH_EVERY);
                }
                self.pending_delivery.push(now_us.saturating_sub(sent));
                if self.sink.keep_samples {
                    self.pending_samples
                        .push((sent, now_us.saturating_sub(sent)));
                }
                if self.local_server && ts > 0 {
                    if self.pending_server.capacity() == 0 {
                        self.pending_server.reserve_exact(FLUSH_EVERY);
                    }
                    self.pending_server.push(now_us.saturating_sub(ts));
                }
            }
        }
        if self.pending_delivery.len() >= FLUSH_EVERY
            || self.pending_server.len() >= FLUSH_EVERY
            || self.unflushed_events >= FLUSH_EVERY as u64
        {
            self.flush();
        }
    }

    /// Moves buffered samples into the shared histograms and live totals.
    pub fn flush(&mut self) {
        if let Some(r) = self.receipts.as_mut() {
            r.flush();
        }
        if !self.pending_delivery.is_empty() || !self.pending_server.is_empty() {
            self.sink.record(
                self.shard,
                &self.pending_delivery,
                &self.pending_server,
                &self.pending_samples,
            );
            self.pending_delivery.clear();
            self.pending_server.clear();
            self.pending_samples.clear();
        }
        if self.unflushed_events > 0 {
            self.live.events.fetch_add(self.unflushed_events, Relaxed);
            self.unflushed_events = 0;
        }
        if self.unflushed_requests > 0 {
            self.live
                .requests
                .fetch_add(self.unflushed_requests, Relaxed);
            self.unflushed_requests = 0;
        }
    }

    pub fn request(&mut self) {
        self.requests += 1;
        // The live total is shared by every client: add to it in batches, not per request.
        self.unflushed_requests += 1;
        if self.unflushed_requests >= FLUSH_EVERY as u64 {
            self.flush();
        }
    }

    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_insert(0) += 1;
        self.live.errors.fetch_add(1, Relaxed);
    }

    /// The client's totals once it stopped; `end` is the last seq it should have received,
    /// `acked` the seqs the publisher was told were stored (sorted), for `lost`.
    pub fn finish(mut self, end: u64, acked: &[u64]) -> ClientTotals {
        self.flush();
        let mut seq = self.seq.summary(end);
        seq.lost = self.seq.lost(acked, end);
        ClientTotals {
            seq,
            requests: self.requests,
            empty_responses: self.empty_responses,
            connections: self.connections,
            reconnects: self.reconnects,
            disconnects: self.disconnects,
            errors: std::mem::take(&mut self.errors),
            latency_samples: self.latency_samples,
            clients: 1,
            datagrams_lost: self.datagrams_lost,
            datagrams_recovered: self.datagrams_recovered,
        }
    }
}

/// One client's totals, or the sum over many (`+=`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientTotals {
    pub seq: SeqSummary,
    pub requests: u64,
    pub empty_responses: u64,
    pub connections: u64,
    pub reconnects: u64,
    pub disconnects: u64,
    pub errors: ErrorCounts,
    pub latency_samples: u64,
    pub clients: u64,
    #[serde(default)]
    pub datagrams_lost: u64,
    #[serde(default)]
    pub datagrams_recovered: u64,
}

impl std::ops::AddAssign<&ClientTotals> for ClientTotals {
    fn add_assign(&mut self, o: &ClientTotals) {
        self.seq += o.seq;
        self.requests += o.requests;
        self.empty_responses += o.empty_responses;
        self.connections += o.connections;
        self.reconnects += o.reconnects;
        self.disconnects += o.disconnects;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
        self.latency_samples += o.latency_samples;
        self.clients += o.clients;
        self.datagrams_lost += o.datagrams_lost;
        self.datagrams_recovered += o.datagrams_recovered;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(sent: u64) -> Marks {
        Marks {
            sent_us: Some(sent),
            pub_n: Some(0),
            ..Marks::default()
        }
    }

    #[test]
    fn recorders_merge_counters_errors_and_latency() {
        let sink = Arc::new(LatencySink::new());
        let live = Arc::new(Live::default());
        let mut a = Recorder::new(0, 0, true, sink.clone(), live.clone());
        let mut b = Recorder::new(1, 0, false, sink.clone(), live.clone());
        a.event(1, 900, marks(1_000), 1_500);
        a.event(2, 0, Marks::default(), 1_600); // foreign: integrity only
        a.request();
        a.error("http_503");
        b.event(1, 900, marks(1_000), 3_000);
        b.event(2, 900, marks(1_000), 3_000);
        b.error("http_503");
        b.error("timeout");
        let mut total = a.finish(2, &[1, 2]);
        total += &b.finish(2, &[1, 2]);
        assert_eq!(total.clients, 2);
        assert_eq!(total.seq.expected, 4);
        assert_eq!(total.seq.gaps, 0);
        assert_eq!(total.requests, 1);
        assert_eq!(total.latency_samples, 3);
        assert_eq!(total.errors["http_503"], 2);
        assert_eq!(total.errors["timeout"], 1);
        let (delivery, server) = sink.merged();
        assert_eq!(delivery.len(), 3);
        assert_eq!(delivery.min(), 500);
        assert_eq!(
            server.len(),
            1,
            "only the local-server client compares with ts"
        );
        assert_eq!(live.events.load(Relaxed), 4);
        assert_eq!(total.seq.lost, 0);
        assert!(sink.samples().is_empty(), "pairs only when asked for");
    }

    #[test]
    fn a_sink_keeping_samples_keeps_publish_time_and_latency() {
        let sink = Arc::new(LatencySink::keeping_samples(true));
        let mut r = Recorder::new(0, 0, false, sink.clone(), Arc::new(Live::default()));
        r.event(1, 0, marks(1_000), 1_250);
        r.event(3, 0, marks(2_000), 2_100);
        let t = r.finish(3, &[1, 2, 3]);
        assert_eq!(sink.samples(), vec![(1_000, 250), (2_000, 100)]);
        assert_eq!(
            (t.seq.gaps, t.seq.lost),
            (1, 1),
            "2 was acknowledged and never came"
        );
    }

    #[test]
    fn flushes_in_batches_and_histograms_round_trip() {
        let sink = Arc::new(LatencySink::new());
        let live = Arc::new(Live::default());
        let mut r = Recorder::new(3, 0, false, sink.clone(), live);
        for i in 1..=(FLUSH_EVERY as u64 + 1) {
            r.event(i, 0, marks(0), i * 10);
        }
        assert_eq!(
            sink.merged().0.len(),
            FLUSH_EVERY as u64,
            "one batch flushed"
        );
        r.finish(FLUSH_EVERY as u64 + 1, &[]);
        let (h, _) = sink.merged();
        assert_eq!(h.len(), FLUSH_EVERY as u64 + 1);
        let q = Quantiles::of(&h);
        assert_eq!(q.count, 65);
        assert!(q.p50 >= 320 && q.p50 <= 340, "{q:?}");
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back, h);
    }
}
