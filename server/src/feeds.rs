//! Named feeds (`?feed=job-42`): many small independent logs beside the main feed.
//!
//! A job's progress log is followed by one client, not fanned out to thousands: each job gets
//! a [`Feed`] of its own (its own seq, its own retained window, its own terminal event), made on
//! first use by a publish or a reader, and read by every transport with the same cursor rule as
//! the main feed. What this can make the server hold is bounded by named settings:
//! `--max-feeds` feeds at once (one more is refused with 429 and the reason), `--feed-retain`
//! events each, and a feed nobody waits on and nobody published to for `--feed-idle` is
//! dropped (a reader that comes back after that finds a new, empty feed and is told its
//! cursor is ahead).
//!
//! Named feeds live in this process's memory, not on disk (`--data-dir` keeps the main feed
//! only). With `--redis` they are shared by every instance ([`crate::redis_feed`]): seq, the
//! retained window and the terminal event are kept in Redis, and each instance's feeds here
//! mirror them.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use serde::Serialize;

use crate::{error::ApiError, feed::Feed, idempotency::KeyPolicy};

/// The named feeds of one server.
pub struct Feeds {
    map: Mutex<HashMap<String, Entry>>,
    max: usize,
    retain: usize,
    idle: Duration,
    keys: KeyPolicy,
    started: Instant,
    created: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
}

struct Entry {
    feed: Arc<Feed>,
    /// When it was last asked for (ms since `started`).
    used_ms: AtomicU64,
}

/// `/stats`' view of the named feeds.
#[derive(Debug, Serialize)]
pub struct FeedsView {
    pub open: usize,
    pub max: usize,
    pub retain: usize,
    pub idle_s: f64,
    pub created: u64,
    pub dropped: u64,
    pub refused: u64,
}

/// `/stats?feed=NAME`: one named feed.
#[derive(Debug, Serialize)]
pub struct FeedView {
    pub name: String,
    pub head: u64,
    pub oldest: u64,
    pub retained: usize,
    pub ended: Option<u64>,
    pub waiters: usize,
}

impl Feeds {
    pub fn new(max: usize, retain: usize, idle: Duration, keys: KeyPolicy) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max,
            retain: retain.max(1),
            idle,
            keys,
            started: Instant::now(),
            created: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The feed `name` (checked with [`parse_name`]), made if it does not exist.
    ///
    /// # Errors
    /// 429 when `--max-feeds` are open and none of them is idle.
    pub fn get(&self, name: &str) -> Result<Arc<Feed>, ApiError> {
        let now = self.now_ms();
        let mut map = self.map.lock();
        if let Some(entry) = map.get(name) {
            entry.used_ms.store(now, Relaxed);
            return Ok(entry.feed.clone());
        }
        if map.len() >= self.max {
            // Full: make room from the idle ones before refusing.
            self.sweep_locked(&mut map, now);
            if map.len() >= self.max {
                self.refused.fetch_add(1, Relaxed);
                return Err(ApiError::TooManyFeeds { max: self.max });
            }
        }
        let feed = Arc::new(Feed::with_keys(self.retain, self.keys));
        map.insert(
            name.to_owned(),
            Entry {
                feed: feed.clone(),
                used_ms: AtomicU64::new(now),
            },
        );
        self.created.fetch_add(1, Relaxed);
        Ok(feed)
    }

    /// `--max-feeds`.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Drops the feeds idle for `--feed-idle`: nobody waits on them and nobody asked for them.
    pub fn sweep(&self) {
        let now = self.now_ms();
        self.sweep_locked(&mut self.map.lock(), now);
    }

    fn sweep_locked(&self, map: &mut HashMap<String, Entry>, now: u64) {
        let idle = self.idle.as_millis() as u64;
        let before = map.len();
        map.retain(|_, e| {
            e.feed.waiters() > 0 || now.saturating_sub(e.used_ms.load(Relaxed)) < idle
        });
        self.dropped.fetch_add((before - map.len()) as u64, Relaxed);
    }

    /// Closes every named feed (shutdown), waking their waiters.
    pub fn close(&self) {
        for e in self.map.lock().values() {
            e.feed.close();
        }
    }

    pub fn view(&self) -> FeedsView {
        FeedsView {
            open: self.map.lock().len(),
            max: self.max,
            retain: self.retain,
            idle_s: self.idle.as_secs_f64(),
            created: self.created.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            refused: self.refused.load(Relaxed),
        }
    }

    /// One feed's view, if it exists (it is not made by looking).
    pub fn view_of(&self, name: &str) -> Option<FeedView> {
        let map = self.map.lock();
        let feed = &map.get(name)?.feed;
        Some(FeedView {
            name: name.to_owned(),
            head: feed.head(),
            oldest: feed.oldest(),
            retained: feed.retained(),
            ended: feed.ended(),
            waiters: feed.waiters(),
        })
    }

    /// How often idle feeds are looked for: a quarter of `--feed-idle`, at least every 100 ms.
    pub fn sweep_every(&self) -> Duration {
        (self.idle / 4).max(Duration::from_millis(100))
    }
}

/// A feed name: 1–64 characters of `A-Z a-z 0-9 _ - . :`.
///
/// # Errors
/// 400 with the rule.
pub fn parse_name(value: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::BadFeedName(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feeds(max: usize, idle_ms: u64) -> Feeds {
        Feeds::new(max, 4, Duration::from_millis(idle_ms), KeyPolicy::default())
    }

    #[test]
    fn a_name_is_one_feed_and_names_are_apart() {
        let f = feeds(10, 60_000);
        let a = f.get("job-1").unwrap();
        a.publish("1").unwrap();
        assert_eq!(f.get("job-1").unwrap().head(), 1);
        assert_eq!(f.get("job-2").unwrap().head(), 0);
        assert_eq!(f.view().open, 2);
    }

    #[test]
    fn past_the_bound_a_new_name_is_refused_until_one_is_idle() {
        let f = feeds(2, 0);
        let _held = {
            let a = f.get("a").unwrap();
            a.subscribe()
        };
        let _b = f.get("b").unwrap();
        // Idle after 0 ms, unless someone waits on it: "b" goes, "a" stays.
        f.get("c").unwrap();
        assert!(f.view_of("a").is_some() && f.view_of("b").is_none());
        let f = feeds(1, 60_000);
        f.get("a").unwrap();
        let Err(err) = f.get("b") else {
            panic!("a second feed past --max-feeds 1 must be refused")
        };
        assert!(err.to_string().contains("--max-feeds"), "{err}");
        assert_eq!(f.view().refused, 1);
    }

    #[test]
    fn names_are_checked() {
        assert!(parse_name("job-42").is_ok());
        assert!(parse_name("build:7.log").is_ok());
        for bad in ["", "a b", "x/y", &"x".repeat(65)] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
    }
}
