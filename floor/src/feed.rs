//! The feed: one ordered log of pre-encoded events, and a `watch` of its head.
//!
//! Connections hold a cursor, not a queue: a publish appends to the ring and bumps the head,
//! every streaming connection wakes, and each reads what follows its own cursor. So a publish
//! costs one encode and one wake-up per connection, a connection that falls behind costs no
//! memory per event it has not read yet, and there is no channel per client. A cursor that fell
//! out of retention gets an explicit count of what it missed (as on the real server), never a
//! silent gap.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicBool, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::{BufMut as _, Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::encode;

/// One event, in every encoding a connection may write (its seq is its place in the ring).
#[derive(Debug)]
pub struct Event {
    /// The complete WebSocket text frame.
    pub ws: Bytes,
    /// The SSE record, already framed as one HTTP/1.1 chunk.
    pub sse: Bytes,
    /// The event's JSON alone (what a poll body lists): a view into `ws`, not a copy.
    pub json: Bytes,
}

/// What a connection writes next, in one `write`.
#[derive(Debug)]
pub struct Batch {
    /// Events that fell out of retention before this connection read them (usually 0).
    pub missed: u64,
    /// The seq of the last missed event, when `missed > 0`.
    pub missed_up_to: u64,
    /// The events' encodings back to back: the event's own shared `Bytes` when there is one.
    pub bytes: Bytes,
    pub events: u64,
    /// The connection's cursor after this batch.
    pub next: u64,
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<Event>,
    head: u64,
}

#[derive(Debug)]
pub struct Feed {
    /// parking_lot `RwLock`, never held across `.await`: readers copy or clone out and let go.
    ring: RwLock<Ring>,
    retain: usize,
    /// Orders publishers, so seq and `ts` grow together while encoding happens outside `ring`'s
    /// write lock (readers are blocked only for the push itself).
    publishing: Mutex<()>,
    head: watch::Sender<u64>,
    stopping: AtomicBool,
}

impl Feed {
    pub fn new(retain: usize) -> Self {
        let retain = retain.max(1);
        Self {
            ring: RwLock::new(Ring {
                // Grows as events arrive; a big --retain costs nothing until it fills.
                events: VecDeque::with_capacity(retain.min(1024)),
                head: 0,
            }),
            retain,
            publishing: Mutex::new(()),
            head: watch::Sender::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// Appends an event whose `data` is `data_json` (one compact JSON value) and wakes every
    /// connection; returns its seq.
    pub fn publish(&self, data_json: &str) -> u64 {
        let _order = self.publishing.lock();
        let seq = self.head() + 1;
        let json = encode::event_json(seq, now_us(), data_json);
        let ws = encode::ws_text_frame(json.as_bytes());
        let event = Event {
            json: ws.slice(ws.len() - json.len()..),
            ws,
            sse: encode::sse_event_chunk(seq, &json),
        };
        {
            let mut ring = self.ring.write();
            if ring.events.len() == self.retain {
                ring.events.pop_front();
            }
            ring.events.push_back(event);
            ring.head = seq;
        }
        self.head.send_replace(seq);
        seq
    }

    pub fn head(&self) -> u64 {
        self.ring.read().head
    }

    /// The oldest retained seq (`head + 1` when nothing is retained) and how many are retained.
    pub fn retained(&self) -> (u64, usize) {
        let ring = self.ring.read();
        let n = ring.events.len();
        (ring.head + 1 - n as u64, n)
    }

    pub fn retain(&self) -> usize {
        self.retain
    }

    /// A receiver that wakes when the head moves (or [`Feed::stop`] is called).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Asks every streaming connection to end, and wakes them so they notice.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.head.send_modify(|_| {});
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The events after `cursor`, as the bytes `pick` selects from each, up to `max_bytes` (at
    /// least one event); `None` when the connection is caught up.
    pub fn read(
        &self,
        cursor: u64,
        max_bytes: usize,
        pick: impl Fn(&Event) -> &Bytes,
    ) -> Option<Batch> {
        let ring = self.ring.read();
        if cursor >= ring.head {
            return None;
        }
        let first = ring.head + 1 - ring.events.len() as u64;
        let (missed, start) = if cursor + 1 < first {
            (first - 1 - cursor, first)
        } else {
            (0, cursor + 1)
        };
        let mut pending = ring.events.range((start - first) as usize..);
        // `cursor < head`, so at least the newest event is pending.
        let one = pending.next()?;
        let mut total = pick(one).len();
        let mut count = 1;
        for e in pending.clone() {
            if total + pick(e).len() > max_bytes {
                break;
            }
            total += pick(e).len();
            count += 1;
        }
        let bytes = if count == 1 {
            pick(one).clone()
        } else {
            let mut buf = BytesMut::with_capacity(total);
            buf.put_slice(pick(one));
            for e in pending.take(count - 1) {
                buf.put_slice(pick(e));
            }
            buf.freeze()
        };
        Some(Batch {
            missed,
            missed_up_to: start - 1,
            bytes,
            events: count as u64,
            next: start + count as u64 - 1,
        })
    }
}

/// The events after a cursor, as a poll answers them: borrowed from the ring for as long as the
/// answer is being written.
#[derive(Debug)]
pub struct Pending<'a> {
    /// Events that fell out of retention after the cursor (usually 0).
    pub missed: u64,
    /// The cursor after these events (the cursor itself when there are none and none missed).
    pub next: u64,
    pub events: std::collections::vec_deque::Iter<'a, Event>,
}

impl Feed {
    /// Calls `f` with at most `max` events after `cursor` (which must not be ahead of the
    /// head), under the ring's read lock: a poll copies the events' JSON straight into its
    /// response, with no batch in between.
    pub fn pending<R>(&self, cursor: u64, max: usize, f: impl FnOnce(Pending<'_>) -> R) -> R {
        let ring = self.ring.read();
        let first = ring.head + 1 - ring.events.len() as u64;
        let (missed, start) = if cursor + 1 < first {
            (first - 1 - cursor, first)
        } else {
            (0, cursor.min(ring.head) + 1)
        };
        let skip = ((start - first) as usize).min(ring.events.len());
        let take = (ring.events.len() - skip).min(max);
        f(Pending {
            missed,
            next: start - 1 + take as u64,
            events: ring.events.range(skip..skip + take),
        })
    }
}

/// Microseconds since the Unix epoch: an event's `ts`.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(feed: &Feed, cursor: u64, max: usize) -> Option<Batch> {
        feed.read(cursor, max, |e| &e.ws)
    }

    #[test]
    fn seqs_start_at_one_and_each_event_is_encoded_for_both_transports() {
        let feed = Feed::new(10);
        assert_eq!(feed.publish("{}"), 1);
        assert_eq!(feed.publish("[1]"), 2);
        assert_eq!(*feed.subscribe().borrow(), 2);
        let b = ws(&feed, 1, 1 << 20).unwrap();
        assert_eq!((b.events, b.next, b.missed), (1, 2, 0));
        let text = std::str::from_utf8(&b.bytes[2..]).unwrap();
        assert!(text.starts_with(r#"{"seq":2,"ts":"#) && text.ends_with(r#","data":[1]}"#));
        let sse = feed.read(1, 1 << 20, |e| &e.sse).unwrap();
        assert!(std::str::from_utf8(&sse.bytes)
            .unwrap()
            .contains(&format!("\r\nid: 2\ndata: {text}\n\n\r\n")));
        assert!(ws(&feed, 2, 1 << 20).is_none(), "caught up");
    }

    #[test]
    fn a_batch_is_the_pending_events_back_to_back_within_max_bytes() {
        let feed = Feed::new(10);
        for _ in 0..5 {
            feed.publish("0");
        }
        let one = ws(&feed, 4, 1 << 20).unwrap().bytes.len();
        let b = ws(&feed, 0, 1 << 20).unwrap();
        assert_eq!((b.events, b.next, b.bytes.len()), (5, 5, 5 * one));
        let b = ws(&feed, 0, 2 * one + 1).unwrap();
        assert_eq!((b.events, b.next), (2, 2));
        let b = ws(&feed, 0, 1).unwrap();
        assert_eq!((b.events, b.next), (1, 1), "one event even past max_bytes");
    }

    #[test]
    fn pending_lists_at_most_max_events_and_what_was_missed() {
        let feed = Feed::new(3);
        let summary = |cursor, max| {
            feed.pending(cursor, max, |p| {
                let seqs: Vec<String> = p
                    .events
                    .map(|e| String::from_utf8(e.json.to_vec()).unwrap()[7..8].to_owned())
                    .collect();
                (p.missed, p.next, seqs.join(","))
            })
        };
        assert_eq!(summary(0, 10), (0, 0, String::new()), "empty feed");
        for _ in 0..5 {
            feed.publish("0");
        }
        assert_eq!(summary(0, 10), (2, 5, "3,4,5".into()));
        assert_eq!(summary(3, 1), (0, 4, "4".into()));
        assert_eq!(summary(5, 10), (0, 5, String::new()), "caught up");
    }

    #[test]
    fn an_expired_cursor_is_told_what_it_missed() {
        let feed = Feed::new(3);
        for _ in 0..7 {
            feed.publish("0");
        }
        assert_eq!(feed.retained(), (5, 3));
        let b = ws(&feed, 1, 1 << 20).unwrap();
        assert_eq!((b.missed, b.missed_up_to, b.events, b.next), (3, 4, 3, 7));
        let b = ws(&feed, 4, 1 << 20).unwrap();
        assert_eq!((b.missed, b.events), (0, 3));
    }
}
