//! `/stats`: the real server's JSON shape, so loadgen checks the floor's counts exactly as it
//! checks the server's (requests and deliveries exact, bytes within 1%).
//!
//! Counting is part of the floor's cost, so it is kept to relaxed atomic adds, one set per
//! transport on its own cache line. `bytes_written` is every byte the floor writes on a
//! transport's connections: response heads, chunk framing, WebSocket frames and close frames.

use std::{
    sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
    time::Instant,
};

use serde_json::{json, Value};

use crate::feed::Feed;

/// The transports the floor serves (the real server's names in `/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    ShortPoll,
    LongPoll,
    Sse,
    Ws,
}

/// Counters of one transport. Aligned so SSE and WS writers on different cores do not share a
/// cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Counters {
    pub open: AtomicI64,
    pub requests: AtomicU64,
    pub events_delivered: AtomicU64,
    /// Polls answered with no event (a short poll's empty batch, a long poll's 204).
    pub empty_responses: AtomicU64,
    pub bytes_written: AtomicU64,
    pub messages_received: AtomicU64,
}

impl Counters {
    pub fn wrote(&self, bytes: usize) {
        self.bytes_written.fetch_add(bytes as u64, Relaxed);
    }

    pub fn delivered(&self, events: u64, bytes: usize) {
        self.events_delivered.fetch_add(events, Relaxed);
        self.wrote(bytes);
    }

    /// Counts a stream (or a held long poll) as open while the guard lives.
    pub fn open_guard(&self) -> OpenGuard<'_> {
        self.open.fetch_add(1, Relaxed);
        OpenGuard(self)
    }

    fn json(&self) -> Value {
        json!({
            "open": self.open.load(Relaxed),
            "requests": self.requests.load(Relaxed),
            "events_delivered": self.events_delivered.load(Relaxed),
            "empty_responses": self.empty_responses.load(Relaxed),
            "bytes_written": self.bytes_written.load(Relaxed),
            "messages_received": self.messages_received.load(Relaxed),
        })
    }
}

/// See [`Counters::open_guard`].
#[derive(Debug)]
pub struct OpenGuard<'a>(&'a Counters);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

#[derive(Debug)]
pub struct Stats {
    pub short_poll: Counters,
    pub long_poll: Counters,
    pub sse: Counters,
    pub ws: Counters,
    pub accepted: AtomicU64,
    pub published: AtomicU64,
    started: Instant,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            short_poll: Counters::default(),
            long_poll: Counters::default(),
            sse: Counters::default(),
            ws: Counters::default(),
            accepted: AtomicU64::new(0),
            published: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl Stats {
    pub fn of(&self, t: Transport) -> &Counters {
        match t {
            Transport::ShortPoll => &self.short_poll,
            Transport::LongPoll => &self.long_poll,
            Transport::Sse => &self.sse,
            Transport::Ws => &self.ws,
        }
    }

    /// Open SSE and WebSocket streams, and long polls being held.
    pub fn open_streams(&self) -> i64 {
        self.sse.open.load(Relaxed) + self.ws.open.load(Relaxed) + self.long_poll.open.load(Relaxed)
    }

    pub fn snapshot(&self, feed: &Feed) -> Value {
        let (oldest, retained) = feed.retained();
        json!({
            "server": "floor",
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "feed": {
                "head": feed.head(),
                "oldest": oldest,
                "retained": retained,
                "retain": feed.retain(),
                "published": self.published.load(Relaxed),
            },
            "transports": {
                "short-poll": self.short_poll.json(),
                "long-poll": self.long_poll.json(),
                "sse": self.sse.json(),
                "ws": self.ws.json(),
            },
            "connections": {
                "accepted": self.accepted.load(Relaxed),
                "open_streams": self.open_streams(),
                "refused": 0,
            },
            "process": process_usage(),
        })
    }
}

/// The floor's own CPU time and memory from `/proc/self` (zeros where it cannot be read), with
/// the real server's field names.
fn process_usage() -> Value {
    let (mut user, mut system, mut threads, mut rss, mut peak, mut fds) = (0.0, 0.0, 0, 0, 0, 0);
    if let Ok(me) = procfs::process::Process::myself() {
        let tps = procfs::ticks_per_second() as f64;
        if let Ok(stat) = me.stat() {
            user = stat.utime as f64 / tps;
            system = stat.stime as f64 / tps;
            threads = stat.num_threads;
        }
        if let Ok(status) = me.status() {
            rss = status.vmrss.unwrap_or(0) * 1024;
            peak = status.vmhwm.unwrap_or(0) * 1024;
        }
        fds = me.fd_count().unwrap_or(0);
    }
    json!({
        "cpu_user_s": user,
        "cpu_system_s": system,
        "cpu_s": user + system,
        "rss_bytes": rss,
        "rss_peak_bytes": peak,
        "threads": threads,
        "open_fds": fds,
    })
}
