//! Inputs: what a game client sends many times a second, acknowledged and never fanned out.
//!
//! A multiplayer game's client sends small inputs 20–60 times a second; the server (the game
//! loop) takes them, acknowledges each so the client can measure input → acknowledgement, and
//! publishes the world's state on its own tick. Inputs come as `{"op":"input","n":N,…}` or a
//! binary message on a WebSocket ([`crate::transport::ws::binary`]), or `POST /input` on the
//! HTTP transports ([`crate::transport::input`]). Whichever way, one client cannot flood the
//! server: `--max-input-bytes` bounds each input (a WebSocket is closed with 1009, a POST
//! answered 413) and `--max-input-rate` each connection's rate (past it an input is dropped, not
//! acknowledged, and counted; a POST is answered 429).
//!
//! The rate is a token bucket (a second's worth of burst), hand-written because it is four
//! lines of arithmetic on the caller's own clock, held in the session itself.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Instant,
};

use parking_lot::Mutex;
use serde::Serialize;

use crate::{config::Config, error::ApiError};

/// One connection's input rate: `rate` a second, a burst of as many.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            at: Instant::now(),
        }
    }

    /// Takes one input's token at `now`; `false` when the rate is spent (drop the input).
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full again (its client has been quiet for a second).
    fn full(&self, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * self.rate >= self.rate
    }
}

/// Every input the server took, acknowledged, dropped or refused.
#[derive(Default)]
pub struct Inputs {
    pub received: AtomicU64,
    pub acked: AtomicU64,
    /// Past `--max-input-rate`: not acknowledged.
    pub dropped: AtomicU64,
    /// Past `--max-input-bytes`: the WebSocket closed, the POST refused.
    pub too_large: AtomicU64,
    pub bytes: AtomicU64,
    /// `POST /input`'s buckets by `client`, at most `--max-tracked-clients` of them.
    http: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Serialize)]
pub struct InputsView {
    pub received: u64,
    pub acked: u64,
    pub dropped: u64,
    pub too_large: u64,
    pub bytes: u64,
}

/// What to do with one input.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Ack,
    Drop,
}

impl Inputs {
    /// Checks one input of `len` bytes against the limits and counts it, with `bucket` the
    /// connection's rate.
    ///
    /// # Errors
    /// The input is over `--max-input-bytes`.
    pub fn take(
        &self,
        config: &Config,
        bucket: &mut Bucket,
        len: usize,
    ) -> Result<Verdict, ApiError> {
        self.received.fetch_add(1, Relaxed);
        self.bytes.fetch_add(len as u64, Relaxed);
        if len > config.max_input_bytes {
            self.too_large.fetch_add(1, Relaxed);
            return Err(ApiError::InputTooLarge {
                size: len,
                limit: config.max_input_bytes,
            });
        }
        if bucket.take(Instant::now()) {
            self.acked.fetch_add(1, Relaxed);
            Ok(Verdict::Ack)
        } else {
            self.dropped.fetch_add(1, Relaxed);
            Ok(Verdict::Drop)
        }
    }

    /// [`Inputs::take`] for `POST /input` from `client`, whose bucket is kept here.
    ///
    /// # Errors
    /// Over `--max-input-bytes` (413) or `--max-input-rate` (429), or too many clients at once.
    pub fn take_http(&self, config: &Config, client: &str, len: usize) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut map = self.http.lock();
        if !map.contains_key(client) && map.len() >= config.max_tracked_clients {
            // Forget the clients that have been quiet for a second: theirs are full buckets.
            map.retain(|_, b| !b.full(now));
            if map.len() >= config.max_tracked_clients {
                return Err(ApiError::TooManyConnections(format!(
                    "{} clients are sending inputs (--max-tracked-clients)",
                    map.len()
                )));
            }
        }
        let bucket = map
            .entry(client.to_owned())
            .or_insert_with(|| Bucket::new(config.max_input_rate));
        match self.take(config, bucket, len)? {
            Verdict::Ack => Ok(()),
            Verdict::Drop => Err(ApiError::InputRate {
                rate: config.max_input_rate,
            }),
        }
    }

    pub fn view(&self) -> InputsView {
        InputsView {
            received: self.received.load(Relaxed),
            acked: self.acked.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            too_large: self.too_large.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
        }
    }
}

/// The `n` of an input, `{"n":N,…}`.
///
/// # Errors
/// 400: not a JSON object with a non-negative integer `n`.
pub fn input_number(body: &[u8]) -> Result<u64, ApiError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadJson(e.to_string()))?;
    v.get("n")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| {
            ApiError::BadRequest("an input is {\"n\":N,...} with N an integer ≥ 0".into())
        })
}

/// The acknowledgement of input `n` on the HTTP transports.
pub fn ack_text(n: u64) -> String {
    format!("{{\"ack\":{n}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_bucket_allows_its_rate_and_a_burst_of_as_many() {
        let mut b = Bucket::new(10);
        let t0 = b.at;
        assert_eq!((0..15).filter(|_| b.take(t0)).count(), 10);
        // A tenth of a second later, one more.
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(100)));
        assert!(b.full(t0 + Duration::from_secs(2)));
    }
}
