//! The ordered log every transport reads from.
//!
//! Transports keep no queues of their own: a connection holds only a cursor and reads forward
//! from here, so a slow client cannot slow anyone else, and a client that comes back with its
//! last seq gets exactly what it missed, or an explicit count of what is gone, never silently less.
//! Waiting connections are woken through a `watch` of the head seq, not by polling the log.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::{
    event::{Event, Seq},
    idempotency::{Answer, Key, KeyPolicy, Remembered, Seen, Window},
    store::{Store, StoreError},
};

pub struct Feed {
    /// Serialises publishers and owns the on-disk store (`--data-dir`) and the idempotency keys.
    /// Held across the store's commit, so seqs reach the disk in order and a key is checked and
    /// remembered in one step; readers never wait for it.
    publisher: Mutex<Publisher>,
    /// parking_lot `RwLock`: held for a push or a slice copy, never across an `.await`.
    ring: RwLock<Ring>,
    /// The head seq. Waiters call `changed()`; the value is a wake-up, the log is the truth.
    head: watch::Sender<Seq>,
    retain: usize,
    /// Set at shutdown, with every waiter woken: streaming connections check this flag when
    /// they wake instead of each holding a shutdown future (whose every poll takes a lock shared
    /// by all of them).
    closed: AtomicBool,
    /// The seq of the feed's terminal event (`POST /publish?end=1`), 0 while it is open.
    ended: AtomicU64,
}

struct Publisher {
    store: Option<Store>,
    keys: Window,
}

struct Ring {
    events: VecDeque<Arc<Event>>,
    head: Seq,
}

impl Ring {
    /// Where a read after `cursor` starts: events missed (fallen out of retention), the
    /// first seq it gets, and that event's index in the ring.
    fn window(&self, cursor: Seq) -> Result<(u64, Seq, usize), CursorAhead> {
        if cursor > self.head {
            return Err(CursorAhead {
                cursor,
                head: self.head,
            });
        }
        let first = self.head + 1 - self.events.len() as u64;
        let (missed, start) = if cursor + 1 < first {
            (first - 1 - cursor, first)
        } else {
            (0, cursor + 1)
        };
        Ok((missed, start, (start - first) as usize))
    }
}

/// A read of the feed lent under its lock ([`Feed::lend_since`]): what a [`Batch`] holds,
/// borrowed.
pub struct Lent<'a> {
    pub events: std::collections::vec_deque::Iter<'a, Arc<Event>>,
    pub missed: u64,
    pub next: Seq,
}

/// What a cursor reads: the events after it, and how many it can no longer get.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Arc<Event>>,
    /// Events after the cursor that fell out of retention before it came back.
    pub missed: u64,
    /// The cursor to continue from.
    pub next: Seq,
    /// The feed's head when the batch was read.
    pub head: Seq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorAhead {
    pub cursor: Seq,
    pub head: Seq,
}

// Here rather than in `error`, so the errors import nothing above them.
impl From<CursorAhead> for crate::error::ApiError {
    fn from(a: CursorAhead) -> Self {
        Self::CursorAhead {
            cursor: a.cursor,
            head: a.head,
        }
    }
}

impl Batch {
    /// Events still unread after this batch.
    pub fn behind(&self) -> u64 {
        self.head - self.next
    }
}

/// How far behind the head a streaming connection may fall: `--max-lag`, or the backlog it
/// started with if that was larger (catching up from an old cursor is not being slow). The
/// queue may shrink; it must not grow past this.
#[derive(Debug, Clone, Copy)]
pub struct LagLimit {
    limit: u64,
}

impl LagLimit {
    pub fn new(max_lag: u64, initial_backlog: u64) -> Self {
        Self {
            limit: max_lag.max(initial_backlog),
        }
    }

    /// `Some(behind)` when the connection is too slow and must be let go.
    pub fn exceeded(&self, behind: u64) -> Option<u64> {
        (behind > self.limit).then_some(behind)
    }
}

impl Feed {
    pub fn new(retain: usize) -> Self {
        Self::with_keys(retain, KeyPolicy::default())
    }

    /// An in-memory feed whose idempotency keys are bounded by `keys`.
    pub fn with_keys(retain: usize, keys: KeyPolicy) -> Self {
        let retain = retain.max(1);
        Self {
            publisher: Mutex::new(Publisher {
                store: None,
                keys: Window::new(keys),
            }),
            ring: RwLock::new(Ring {
                events: VecDeque::with_capacity(retain.min(1 << 16)),
                head: 0,
            }),
            head: watch::Sender::new(0),
            retain,
            closed: AtomicBool::new(false),
            ended: AtomicU64::new(0),
        }
    }

    /// A feed kept in `store`: the retained tail is loaded, and seq continues after it.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn with_store(retain: usize, keys: KeyPolicy, store: Store) -> anyhow::Result<Self> {
        let feed = Self::with_keys(retain, keys);
        {
            let mut ring = feed.ring.write();
            for e in store.tail(feed.retain)? {
                ring.events
                    .push_back(Arc::new(Event::encode(e.seq, e.ts, &e.data)));
                ring.head = e.seq;
            }
            feed.head.send_replace(ring.head);
        }
        {
            let mut publisher = feed.publisher.lock();
            for (id, r) in store.keys(&keys, now_us())? {
                publisher.keys.remember(id, r);
            }
            publisher.store = Some(store);
        }
        Ok(feed)
    }

    /// Appends one event whose `data` is `data_json` (one compact JSON value) and wakes waiters.
    /// With a store, the event is on disk before anyone can see it or its seq.
    ///
    /// # Errors
    /// The store failed; the event was not published.
    pub fn publish(&self, data_json: &str) -> Result<Arc<Event>, StoreError> {
        let mut publisher = self.publisher.lock();
        self.append_locked(&mut publisher, data_json, None, false)
    }

    /// Publishes `data_json` unless `key` was used within the idempotency window, in which case
    /// nothing is added and the first publish's seq is the answer. With a store, the key is
    /// remembered in the event's own transaction.
    ///
    /// # Errors
    /// The store failed; the event was not published.
    pub fn publish_once(&self, data_json: &str, key: Option<&Key>) -> Result<Answer, StoreError> {
        self.publish_ending(data_json, key, false)
    }

    /// [`Feed::publish_once`], and when `end`, the feed's terminal event: every stream ends
    /// after it, and nothing more can be published ([`Answer::Ended`]).
    ///
    /// # Errors
    /// The store failed; the event was not published.
    pub fn publish_ending(
        &self,
        data_json: &str,
        key: Option<&Key>,
        end: bool,
    ) -> Result<Answer, StoreError> {
        let mut publisher = self.publisher.lock();
        if let Some(seq) = self.ended() {
            return Ok(Answer::Ended(seq));
        }
        if let Some(key) = key {
            match publisher.keys.check(key, now_us()) {
                Seen::New => {}
                Seen::Replay(seq) => return Ok(Answer::Replay(seq)),
                Seen::Conflict(seq) => return Ok(Answer::Conflict(seq)),
            }
        }
        let event = self.append_locked(&mut publisher, data_json, key, end)?;
        Ok(Answer::Fresh(event.seq))
    }

    fn append_locked(
        &self,
        publisher: &mut parking_lot::MutexGuard<'_, Publisher>,
        data_json: &str,
        key: Option<&Key>,
        end: bool,
    ) -> Result<Arc<Event>, StoreError> {
        let seq = self.ring.read().head + 1;
        let ts = now_us();
        // Window first (it only computes), store second: a failed commit must leave no key
        // behind, so the window is changed only once the event is on disk.
        let remembered = key.map(|k| {
            (
                k.id,
                Remembered {
                    seq,
                    at_us: ts,
                    body: k.body,
                },
            )
        });
        if let Some(store) = publisher.store.as_ref() {
            let forgotten = match remembered {
                Some(_) => publisher.keys.expiring(ts),
                None => Vec::new(),
            };
            store.append_keyed(seq, ts, data_json, remembered, &forgotten)?;
        }
        if let Some((id, r)) = remembered {
            publisher.keys.remember(id, r);
        }
        let event = Arc::new(Event::encode_as(seq, ts, data_json, end));
        if end {
            // Before the head moves: a stream woken by this event sees that it is the last.
            self.ended.store(seq, Ordering::Release);
        }
        {
            let mut ring = self.ring.write();
            if ring.events.len() == self.retain {
                ring.events.pop_front();
            }
            ring.events.push_back(event.clone());
            ring.head = seq;
        }
        self.head.send_replace(seq);
        Ok(event)
    }

    /// Appends an event whose seq was assigned elsewhere (Redis), the feed's terminal event when
    /// `end`. Older or repeated seqs are ignored; a seq past `head + 1` means the ones between
    /// are gone for good, so the ring restarts there and cursors in the hole are told what they
    /// missed.
    pub fn append(&self, seq: Seq, ts: u64, data_json: &str, end: bool) {
        {
            let mut ring = self.ring.write();
            if seq <= ring.head {
                return;
            }
            if end {
                // Before the head moves, as in a publish here.
                self.ended.store(seq, Ordering::Release);
            }
            if seq != ring.head + 1 {
                ring.events.clear();
            }
            if ring.events.len() == self.retain {
                ring.events.pop_front();
            }
            ring.events
                .push_back(Arc::new(Event::encode_as(seq, ts, data_json, end)));
            ring.head = seq;
        }
        self.head.send_replace(seq);
    }

    pub fn head(&self) -> Seq {
        self.ring.read().head
    }

    /// The seq of the feed's terminal event, once it has one.
    pub fn ended(&self) -> Option<Seq> {
        match self.ended.load(Ordering::Acquire) {
            0 => None,
            seq => Some(seq),
        }
    }

    /// Whether a stream at `cursor` has had everything the feed will ever have.
    pub fn finished_at(&self, cursor: Seq) -> Option<Seq> {
        self.ended().filter(|&end| cursor >= end)
    }

    /// Connections waiting on this feed (streams, held long polls).
    pub fn waiters(&self) -> usize {
        self.head.receiver_count()
    }

    /// Oldest retained seq, or `head + 1` when nothing is retained yet.
    pub fn oldest(&self) -> Seq {
        let ring = self.ring.read();
        ring.head + 1 - ring.events.len() as u64
    }

    pub fn retained(&self) -> usize {
        self.ring.read().events.len()
    }

    /// Marks the feed closed (shutdown) and wakes every waiter.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.head.send_modify(|_| {});
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn subscribe(&self) -> watch::Receiver<Seq> {
        self.head.subscribe()
    }

    /// Events with seq > `cursor`, at most `max` of them.
    pub fn since(&self, cursor: Seq, max: usize) -> Result<Batch, CursorAhead> {
        self.since_within(cursor, max, usize::MAX, |_| 0)
    }

    /// Like [`Feed::since`], and stops before the events' `weight` (their size in some wire
    /// format) would pass `max_bytes`, though it always takes at least one event. A client that
    /// is behind thus gets bounded writes: one batch is at most about `max_bytes` in memory.
    pub fn since_within(
        &self,
        cursor: Seq,
        max: usize,
        max_bytes: usize,
        weight: impl Fn(&Event) -> usize,
    ) -> Result<Batch, CursorAhead> {
        let ring = self.ring.read();
        let (missed, start, skip) = ring.window(cursor)?;
        let mut bytes = 0usize;
        let events: Vec<_> = ring
            .events
            .range(skip..)
            .take(max)
            .take_while(|e| {
                let first = bytes == 0;
                bytes = bytes.saturating_add(weight(e));
                first || bytes <= max_bytes
            })
            .cloned()
            .collect();
        let next = events.last().map_or(start - 1, |e| e.seq);
        Ok(Batch {
            events,
            missed,
            next,
            head: ring.head,
        })
    }

    /// What [`Feed::since`] reads, lent to `f` under the read lock instead of cloned out: a
    /// poll answered without compression copies the events' bytes straight into its body,
    /// without taking and dropping a reference to each event (at one short poll a second and
    /// fifty events a second, that was a fifth of the server's own work per request).
    pub fn lend_since<T>(
        &self,
        cursor: Seq,
        max: usize,
        f: impl FnOnce(Lent<'_>) -> T,
    ) -> Result<T, CursorAhead> {
        let ring = self.ring.read();
        let (missed, start, skip) = ring.window(cursor)?;
        let events = ring.events.range(skip..(skip + max).min(ring.events.len()));
        let next = start - 1 + events.len() as u64;
        Ok(f(Lent {
            events,
            missed,
            next,
        }))
    }
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(b: &Batch) -> Vec<Seq> {
        b.events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn seq_starts_at_one_and_grows_by_one() {
        let feed = Feed::new(10);
        assert_eq!(feed.publish("1").unwrap().seq, 1);
        assert_eq!(feed.publish("2").unwrap().seq, 2);
        assert_eq!(feed.head(), 2);
    }

    #[test]
    fn since_returns_exactly_what_follows_the_cursor() {
        let feed = Feed::new(10);
        for i in 0..5 {
            feed.publish(&i.to_string()).unwrap();
        }
        let b = feed.since(2, 100).unwrap();
        assert_eq!(seqs(&b), [3, 4, 5]);
        assert_eq!((b.missed, b.next), (0, 5));
        let b = feed.since(5, 100).unwrap();
        assert!(b.events.is_empty());
        assert_eq!(b.next, 5);
    }

    #[test]
    fn expired_cursor_is_told_what_it_missed() {
        let feed = Feed::new(3);
        for i in 0..10 {
            feed.publish(&i.to_string()).unwrap();
        }
        assert_eq!(feed.oldest(), 8);
        let b = feed.since(2, 100).unwrap();
        assert_eq!(seqs(&b), [8, 9, 10]);
        assert_eq!(b.missed, 5, "seqs 3..=7 are gone");
        let b = feed.since(7, 100).unwrap();
        assert_eq!((b.missed, seqs(&b)), (0, vec![8, 9, 10]));
    }

    #[test]
    fn batches_are_capped_and_continue_from_next() {
        let feed = Feed::new(100);
        for i in 0..10 {
            feed.publish(&i.to_string()).unwrap();
        }
        let b = feed.since(0, 4).unwrap();
        assert_eq!((seqs(&b), b.next), (vec![1, 2, 3, 4], 4));
        let b = feed.since(b.next, 4).unwrap();
        assert_eq!(seqs(&b), [5, 6, 7, 8]);
    }

    #[test]
    fn lag_limit_tolerates_the_initial_backlog_but_not_growth() {
        let lag = LagLimit::new(100, 500);
        assert_eq!(lag.exceeded(500), None);
        assert_eq!(lag.exceeded(501), Some(501));
        let lag = LagLimit::new(100, 3);
        assert_eq!(lag.exceeded(100), None);
        assert_eq!(lag.exceeded(101), Some(101));
    }

    #[test]
    fn byte_bounded_batches_take_at_least_one_event() {
        let feed = Feed::new(100);
        for _ in 0..10 {
            feed.publish(&format!("\"{}\"", "x".repeat(100))).unwrap();
        }
        let b = feed.since_within(0, 100, 350, |e| e.sse.len()).unwrap();
        assert!(b.events.len() >= 2 && b.events.iter().map(|e| e.sse.len()).sum::<usize>() <= 350);
        let one = feed.since_within(0, 100, 10, |e| e.sse.len()).unwrap();
        assert_eq!(
            one.events.len(),
            1,
            "an event bigger than the cap still goes out alone"
        );
        assert_eq!(one.next, 1);
    }

    #[test]
    fn appended_seqs_keep_order_and_holes_become_missed() {
        let feed = Feed::new(10);
        feed.append(1, 10, "1", false);
        feed.append(2, 20, "2", false);
        feed.append(2, 20, "2", false);
        feed.append(1, 10, "1", false);
        assert_eq!(feed.head(), 2);
        feed.append(6, 60, "6", false);
        let b = feed.since(1, 10).unwrap();
        assert_eq!(
            (seqs(&b), b.missed),
            (vec![6], 4),
            "2 left the ring with the hole; 3..=5 never came"
        );
    }

    #[test]
    fn cursor_ahead_of_head_is_an_error() {
        let feed = Feed::new(10);
        feed.publish("1").unwrap();
        assert_eq!(
            feed.since(5, 10).unwrap_err(),
            CursorAhead { cursor: 5, head: 1 }
        );
    }

    #[test]
    fn a_lent_read_is_the_batch_a_cloned_read_gets() {
        let feed = Feed::new(5);
        for i in 0..8 {
            feed.publish(&i.to_string()).unwrap();
        }
        // Behind retention, in the middle, at the head, and capped by `max`.
        for (cursor, max) in [(0, 10), (4, 10), (8, 10), (3, 2), (5, 0)] {
            let batch = feed.since(cursor, max).unwrap();
            let lent = feed
                .lend_since(cursor, max, |l| {
                    let seqs: Vec<_> = l.events.map(|e| e.seq).collect();
                    (seqs, l.missed, l.next)
                })
                .unwrap();
            let seqs: Vec<_> = batch.events.iter().map(|e| e.seq).collect();
            assert_eq!(
                lent,
                (seqs, batch.missed, batch.next),
                "since={cursor} max={max}"
            );
        }
        assert_eq!(
            feed.lend_since(9, 10, |_| ()).unwrap_err(),
            CursorAhead { cursor: 9, head: 8 }
        );
    }

    #[tokio::test]
    async fn closing_wakes_waiters_and_says_so() {
        let feed = Arc::new(Feed::new(10));
        let mut rx = feed.subscribe();
        let f = feed.clone();
        let waiter = tokio::spawn(async move { rx.changed().await.is_ok() });
        tokio::task::yield_now().await;
        assert!(!feed.is_closed());
        f.close();
        assert!(waiter.await.unwrap());
        assert!(feed.is_closed());
    }

    #[tokio::test]
    async fn publishing_wakes_waiters() {
        let feed = Arc::new(Feed::new(10));
        let mut rx = feed.subscribe();
        let f = feed.clone();
        let waiter = tokio::spawn(async move { rx.wait_for(|h| *h >= 1).await.map(|h| *h) });
        tokio::task::yield_now().await;
        f.publish("1").unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), 1);
    }
}
