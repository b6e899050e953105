//! Exactly-once publish: an `Idempotency-Key` (HTTP) or `id` (WebSocket) makes a retried
//! publish return the first answer instead of adding the event again.
//!
//! A client that sent a publish and got no answer (the server died, the connection broke) cannot
//! tell whether the event was stored; without a key its retry may put the event in the feed twice,
//! under two seqs, which no client can tell from two publishes. With a key, the server remembers
//! (key → seq) for `--idempotency-window`, kept *with the event*: in the same redb transaction
//! (`--data-dir`, so it survives `kill -9`), in the same Redis script as the INCR+XADD (`--redis`,
//! so it holds across instances), or in memory (lost on restart). Reusing a key for a different
//! body is refused (422, as the IETF `Idempotency-Key` draft suggests) rather than answered with
//! another event's seq.
//!
//! Keys and bodies are remembered as 128-bit SHA-256 prefixes, so each remembered key costs the
//! same few dozen bytes whatever its length, and `--idempotency-max-keys` bounds the whole.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use sha2::{Digest as _, Sha256};

use crate::event::Seq;

/// What bounds the remembered keys (from `--idempotency-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// How long a key is remembered after its first publish.
    pub window: Duration,
    /// Most keys remembered; the oldest is forgotten first.
    pub max_keys: usize,
    /// Longest key accepted, in bytes.
    pub max_key_bytes: usize,
}

// Beside the policy rather than in `config`, so the configuration imports nothing above it.
impl crate::config::Config {
    /// What bounds the idempotency keys (`--idempotency-*`).
    pub fn key_policy(&self) -> KeyPolicy {
        KeyPolicy {
            window: self.idempotency_window,
            max_keys: usize::try_from(self.idempotency_max_keys).unwrap_or(usize::MAX),
            max_key_bytes: usize::try_from(self.idempotency_key_max_bytes).unwrap_or(usize::MAX),
        }
    }
}

impl Default for KeyPolicy {
    /// The documented defaults of the flags.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(600),
            max_keys: 100_000,
            max_key_bytes: 255,
        }
    }
}

impl KeyPolicy {
    pub fn window_us(&self) -> u64 {
        u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX)
    }
}

/// A publish's key and the fingerprint of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// SHA-256 of the key, first 128 bits.
    pub id: u128,
    /// SHA-256 of the compact JSON `data`, first 128 bits.
    pub body: u128,
}

/// Why a key was refused (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadKey(pub String);

impl Key {
    /// The key `raw` (an `Idempotency-Key` value: a token, or a quoted string as the IETF draft
    /// writes it) for a publish of `data_json`.
    ///
    /// # Errors
    /// Empty, longer than `max_key_bytes`, or not printable ASCII.
    pub fn parse(raw: &str, data_json: &str, policy: &KeyPolicy) -> Result<Self, BadKey> {
        let key = raw
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .unwrap_or(raw);
        if key.is_empty() {
            return Err(BadKey("idempotency key is empty".into()));
        }
        if key.len() > policy.max_key_bytes {
            return Err(BadKey(format!(
                "idempotency key is {} bytes; the limit is {} (--idempotency-key-max-bytes)",
                key.len(),
                policy.max_key_bytes
            )));
        }
        if !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(BadKey(
                "idempotency key must be printable ASCII (0x20-0x7e)".into(),
            ));
        }
        Ok(Self {
            id: digest(key.as_bytes()),
            body: digest(data_json.as_bytes()),
        })
    }

    /// The key id in hex: its name in Redis.
    pub fn id_hex(&self) -> String {
        format!("{:032x}", self.id)
    }

    /// The body fingerprint in hex, as Redis keeps it.
    pub fn body_hex(&self) -> String {
        format!("{:032x}", self.body)
    }
}

fn digest(bytes: &[u8]) -> u128 {
    let hash = Sha256::digest(bytes);
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(first)
}

/// What a key says about a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not within the window: publish it.
    New,
    /// Published before as this seq, with the same body: answer with that seq again.
    Replay(Seq),
    /// Published before as this seq, with another body: refuse (422).
    Conflict(Seq),
}

impl Seen {
    /// Compares a remembered `(seq, body)` with `key`.
    pub fn of(key: &Key, seq: Seq, body: u128) -> Self {
        if body == key.body {
            Self::Replay(seq)
        } else {
            Self::Conflict(seq)
        }
    }
}

/// What a keyed publish came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Added to the feed as this seq.
    Fresh(Seq),
    /// The key's first publish, with the same body, was this seq: nothing was added.
    Replay(Seq),
    /// The key was first used for another body (this seq): nothing was added; refuse.
    Conflict(Seq),
    /// The feed ended with this seq (its terminal event): nothing was added; refuse.
    Ended(Seq),
}

/// A remembered key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remembered {
    pub seq: Seq,
    /// When it was first published, µs since the Unix epoch.
    pub at_us: u64,
    pub body: u128,
}

/// The keys of one process's feed (in memory, and loaded from redb at start), bounded by the
/// window and the count. Redis keeps its own (see `redis_feed`).
#[derive(Debug)]
pub struct Window {
    policy: KeyPolicy,
    keys: HashMap<u128, Remembered>,
    /// Key ids in publish order, for forgetting the oldest first.
    order: VecDeque<u128>,
}

impl Window {
    pub fn new(policy: KeyPolicy) -> Self {
        Self {
            policy,
            keys: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// What `key` says at `now_us`.
    pub fn check(&self, key: &Key, now_us: u64) -> Seen {
        match self.keys.get(&key.id) {
            Some(r) if now_us.saturating_sub(r.at_us) < self.policy.window_us() => {
                Seen::of(key, r.seq, r.body)
            }
            _ => Seen::New,
        }
    }

    /// Remembers `id` (published now as `seq`) and forgets what fell out of the window or past
    /// the count; returns the ids forgotten, for the store to delete with the same commit.
    pub fn remember(&mut self, id: u128, r: Remembered) -> Vec<u128> {
        let mut gone = self.forget(r.at_us);
        if self.keys.insert(id, r).is_some() {
            // Still remembered (the clock stepped back): its old place in the order goes.
            self.order.retain(|k| *k != id);
        }
        self.order.push_back(id);
        gone.extend(self.forget(r.at_us));
        gone.retain(|k| *k != id);
        gone
    }

    /// The ids that remembering one more key at `now_us` will forget (so a store can delete them
    /// in the same commit), without changing anything.
    pub fn expiring(&self, now_us: u64) -> Vec<u128> {
        let window = self.policy.window_us();
        let mut left = self.order.len() + 1;
        self.order
            .iter()
            .take_while(|id| {
                let expired = self
                    .keys
                    .get(id)
                    .is_none_or(|r| now_us.saturating_sub(r.at_us) >= window);
                let go = expired || left > self.policy.max_keys;
                left -= usize::from(go);
                go
            })
            .copied()
            .collect()
    }

    /// Forgets keys older than the window at `now_us`, and the oldest past the count.
    pub fn forget(&mut self, now_us: u64) -> Vec<u128> {
        let mut gone = Vec::new();
        while let Some(&oldest) = self.order.front() {
            let expired = self
                .keys
                .get(&oldest)
                .is_none_or(|r| now_us.saturating_sub(r.at_us) >= self.policy.window_us());
            if !expired && self.order.len() <= self.policy.max_keys {
                break;
            }
            self.order.pop_front();
            self.keys.remove(&oldest);
            gone.push(oldest);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_defaults_are_the_default_policy() {
        let c = crate::config::Config::from_args::<_, &str>([]).unwrap();
        assert_eq!(c.key_policy(), KeyPolicy::default());
    }

    fn policy(window_s: u64, max_keys: usize) -> KeyPolicy {
        KeyPolicy {
            window: Duration::from_secs(window_s),
            max_keys,
            max_key_bytes: 16,
        }
    }

    fn at(seq: Seq, at_s: u64, key: &Key) -> Remembered {
        Remembered {
            seq,
            at_us: at_s * 1_000_000,
            body: key.body,
        }
    }

    #[test]
    fn keys_are_checked_and_hashed() {
        let p = policy(10, 10);
        let k = Key::parse("abc", "1", &p).unwrap();
        assert_eq!(k, Key::parse("\"abc\"", "1", &p).unwrap(), "quoted form");
        assert_ne!(k.body, Key::parse("abc", "2", &p).unwrap().body);
        assert_ne!(k.id, Key::parse("abd", "1", &p).unwrap().id);
        let long = Key::parse(&"x".repeat(17), "1", &p).unwrap_err();
        assert!(
            long.0.contains("17 bytes") && long.0.contains("16"),
            "{long:?}"
        );
        assert!(Key::parse("", "1", &p).is_err());
        assert!(Key::parse("\"\"", "1", &p).is_err());
        assert!(Key::parse("a\u{7f}", "1", &p).is_err());
        assert!(Key::parse("é", "1", &p).is_err());
    }

    #[test]
    fn a_key_replays_within_the_window_and_conflicts_on_another_body() {
        let p = policy(10, 10);
        let mut w = Window::new(p);
        let k = Key::parse("k", "1", &p).unwrap();
        assert_eq!(w.check(&k, 0), Seen::New);
        assert!(w.remember(k.id, at(7, 100, &k)).is_empty());
        assert_eq!(w.check(&k, 105_000_000), Seen::Replay(7));
        let other = Key::parse("k", "2", &p).unwrap();
        assert_eq!(w.check(&other, 105_000_000), Seen::Conflict(7));
        assert_eq!(w.check(&k, 110_000_000), Seen::New, "window passed");
        assert_eq!(w.forget(110_000_000), vec![k.id]);
        assert!(w.is_empty());
    }

    #[test]
    fn the_oldest_keys_go_past_the_count() {
        let p = policy(1000, 2);
        let mut w = Window::new(p);
        let keys: Vec<Key> = (0..3)
            .map(|i| Key::parse(&i.to_string(), "1", &p).unwrap())
            .collect();
        w.remember(keys[0].id, at(1, 1, &keys[0]));
        w.remember(keys[1].id, at(2, 2, &keys[1]));
        assert_eq!(w.expiring(3_000_000), vec![keys[0].id]);
        assert_eq!(w.remember(keys[2].id, at(3, 3, &keys[2])), vec![keys[0].id]);
        assert_eq!(w.len(), 2);
        assert_eq!(w.check(&keys[0], 4), Seen::New);
        assert_eq!(w.check(&keys[2], 4_000_000), Seen::Replay(3));
        // A key reused after it expired takes a new place, once.
        let mut w = Window::new(policy(1, 10));
        w.remember(keys[0].id, at(1, 1, &keys[0]));
        w.remember(keys[0].id, at(5, 5, &keys[0]));
        assert_eq!(w.len(), 1);
        assert_eq!(w.forget(5_500_000), Vec::<u128>::new());
        assert_eq!(w.forget(6_000_000), vec![keys[0].id]);
    }
}
