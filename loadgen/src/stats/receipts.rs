//! Talking back's latencies (`--send-rate`), kept apart from how the messages travel: when a
//! message was acknowledged, when it came back to its sender, when everyone else got it, how late
//! it left. Part of the statistics (a client's [`crate::stats::Recorder`] holds its
//! [`Receipts`]), so it sits below the clients that feed it.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use hdrhistogram::Histogram;

use super::{new_histogram, FLUSH_EVERY};

/// Which latency a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Intended send time → acknowledgement (`{"seq":N}` or `{"op":"published"}`).
    Ack,
    /// Intended send time → the sender received its own message from the feed.
    Own,
    /// Intended send time → another client received it.
    Others,
    /// How late the message left against its intended time.
    Lag,
}

/// The talking-back latencies of one transport in one phase, shared by its clients (as
/// [`crate::stats::LatencySink`], and for the same reason: one histogram per client is too big).
#[derive(Debug)]
pub struct UpSink {
    shards: Vec<Mutex<[Histogram<u64>; 4]>>,
}

impl Default for UpSink {
    fn default() -> Self {
        Self {
            shards: (0..8)
                .map(|_| Mutex::new(std::array::from_fn(|_| new_histogram())))
                .collect(),
        }
    }
}

impl UpSink {
    fn record(&self, shard: usize, samples: &[(Kind, u64)]) {
        let mut h = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for &(kind, v) in samples {
            h[kind as usize].saturating_record(v.max(1));
        }
    }

    /// The merged histogram of one kind.
    pub fn merged(&self, kind: Kind) -> Histogram<u64> {
        let mut out = new_histogram();
        for shard in &self.shards {
            let h = shard.lock().unwrap_or_else(|p| p.into_inner());
            let _ = out.add(&h[kind as usize]);
        }
        out
    }
}

/// Latency samples a client buffers before it takes a shard's lock.
#[derive(Debug)]
pub struct Samples {
    shard: usize,
    sink: Arc<UpSink>,
    pending: Vec<(Kind, u64)>,
}

impl Samples {
    pub fn new(shard: usize, sink: Arc<UpSink>) -> Self {
        Self {
            shard,
            sink,
            pending: Vec::new(),
        }
    }

    pub fn add(&mut self, kind: Kind, us: u64) {
        self.pending.push((kind, us));
        if self.pending.len() >= FLUSH_EVERY {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.sink.record(self.shard, &self.pending);
            self.pending.clear();
        }
    }
}

/// The receiving side of talking back, inside a client's [`crate::stats::Recorder`]: which of
/// its own messages came back, and when everyone's arrived.
#[derive(Debug)]
pub struct Receipts {
    pub from: u64,
    /// Numbers of this client's own messages received (a repeat is a duplicate, counted by seq).
    pub own: BTreeSet<u64>,
    samples: Samples,
}

impl Receipts {
    pub fn new(from: u64, shard: usize, sink: Arc<UpSink>) -> Self {
        Self {
            from,
            own: BTreeSet::new(),
            samples: Samples::new(shard, sink),
        }
    }

    /// A client message arrived at `now_us`.
    pub fn message(&mut self, from: u64, n: u64, sent_us: u64, now_us: u64) {
        let us = now_us.saturating_sub(sent_us);
        if from == self.from {
            if self.own.insert(n) {
                self.samples.add(Kind::Own, us);
            }
        } else {
            self.samples.add(Kind::Others, us);
        }
    }

    pub fn flush(&mut self) {
        self.samples.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_messages_count_once_and_others_apart() {
        let sink = Arc::new(UpSink::default());
        let mut r = Receipts::new(1, 0, sink.clone());
        r.message(1, 0, 1_000, 1_500);
        r.message(1, 0, 1_000, 1_900); // a duplicate: its seq counts it
        r.message(2, 0, 1_000, 1_200);
        r.flush();
        assert_eq!(r.own.len(), 1);
        assert_eq!(sink.merged(Kind::Own).len(), 1);
        assert_eq!(sink.merged(Kind::Own).max(), 500);
        assert_eq!(sink.merged(Kind::Others).len(), 1);
    }
}
