//! The built-in event source, so the page has something to show with no publisher running.
//!
//! What each event carries is loadgen's payload generator ([`feedlab_wire::payload`]): padding
//! by default, or tick/chat/metrics content whose compression means something (`--payload`).
//!
//! Its rate, payload kind and payload size can be changed while it runs (`POST /control`); the loop waits on a
//! `watch` for a change instead of polling its settings.

use std::time::Duration;

use feedlab_wire::payload::{Payload, PayloadKind};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{MAX_TICKER_RATE, MIN_TICKER_RATE},
    feed::now_us,
    state::AppState,
};

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

    /// Runs the ticker until `stop` is cancelled. A panic in it is a bug, but not a silent
    /// stop: it is logged and the ticker starts again (after a second, so a bug that panics at
    /// once cannot spin).
    pub async fn supervise(state: std::sync::Arc<AppState>, stop: CancellationToken) {
        loop {
            let task = tokio::spawn(Self::run(state.clone(), stop.clone()));
            match task.await {
                Err(e) if e.is_panic() => {
                    tracing::error!("ticker panicked (a bug; restarting it): {e}");
                    state
                        .accounting
                        .ticker_restarts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                _ => return,
            }
        }
    }

    /// Publishes at the current rate until `stop` is cancelled.
    pub async fn run(state: std::sync::Arc<AppState>, stop: CancellationToken) {
        let mut rx = state.ticker.settings.subscribe();
        let mut tick: u64 = 0;
        loop {
            let current = *rx.borrow_and_update();
            if current.rate <= 0.0 {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = rx.changed() => if r.is_err() { return },
                }
                continue;
            }
            let payload = Payload::new(current.payload, current.payload_bytes, state.ticker.seed);
            // Settings are checked where they come in (flags, /control); a rate that still made
            // no interval would run as the slowest allowed one, never panic.
            let period = Duration::try_from_secs_f64(1.0 / current.rate)
                .unwrap_or(Duration::MAX)
                .clamp(
                    Duration::from_secs_f64(1.0 / MAX_TICKER_RATE),
                    Duration::from_secs_f64(1.0 / MIN_TICKER_RATE),
                );
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = rx.changed() => { if r.is_err() { return } break; }
                    _ = interval.tick() => {
                        tick += 1;
                        let data = format!(
                            "{{\"source\":\"ticker\",\"tick\":{tick},\"sent_us\":{},{}}}",
                            now_us(),
                            payload.fields(tick)
                        );
                        if let Err(e) = state.publish(&data).await {
                            tracing::error!("ticker: {e}");
                        }
                    }
                }
            }
        }
    }
}
