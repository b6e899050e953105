//! The built-in event source, so the page has something to show with no publisher running.
//!
//! What each event carries is loadgen's payload generator ([`feedlab_wire::payload`]): padding
//! by default, or tick/chat/metrics content whose compression means something (`--payload`).
//!
//! Its rate, payload kind and payload size can be changed while it runs (`POST /control`); the loop waits on a
//! `watch` for a change instead of polling its settings. That loop publishes through the whole
//! [`crate::state::AppState`], so it lives in the crate root beside [`crate::run`], which starts
//! it; this module holds only the settings, and stays below the state that holds it.

use feedlab_wire::payload::PayloadKind;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TickerSettings {
    /// Events per second; 0 stops the ticker.
    pub rate: f64,
    /// Bytes of padding in each event's `data.pad` (kind `padding`).
    pub payload_bytes: usize,
    /// What each event carries.
    pub payload: PayloadKind,
}

pub struct Ticker {
    settings: watch::Sender<TickerSettings>,
    /// `--seed`: tick N carries payload N of this seed.
    seed: u64,
}

impl Ticker {
    pub fn new(rate: f64, payload_bytes: usize, payload: PayloadKind, seed: u64) -> Self {
        Self {
            settings: watch::Sender::new(TickerSettings {
                rate,
                payload_bytes,
                payload,
            }),
            seed,
        }
    }

    pub fn settings(&self) -> TickerSettings {
        *self.settings.borrow()
    }

    pub fn set(&self, settings: TickerSettings) {
        self.settings.send_replace(settings);
    }

    /// Tells of every change of the settings, for the loop that publishes ([`crate::run`]).
    pub fn subscribe(&self) -> watch::Receiver<TickerSettings> {
        self.settings.subscribe()
    }

    /// `--seed`: tick N carries payload N of this seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}
