//! The built-in event source, so the page has something to show with no publisher running.
//!
//! Its rate and payload size can be changed while it runs (`POST /control`); the loop waits on a
//! `watch` for a change instead of polling its settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{feed::now_us, state::AppState};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TickerSettings {
    /// Events per second; 0 stops the ticker.
    pub rate: f64,
    /// Bytes of padding in each event's `data.pad`.
    pub payload_bytes: usize,
}

pub struct Ticker {
    settings: watch::Sender<TickerSettings>,
}

impl Ticker {
    pub fn new(rate: f64, payload_bytes: usize) -> Self {
        Self {
            settings: watch::Sender::new(TickerSettings {
                rate,
                payload_bytes,
            }),
        }
    }

    pub fn settings(&self) -> TickerSettings {
        *self.settings.borrow()
    }

    pub fn set(&self, settings: TickerSettings) {
        self.settings.send_replace(settings);
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
            let pad = "x".repeat(current.payload_bytes);
            let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / current.rate));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = rx.changed() => { if r.is_err() { return } break; }
                    _ = interval.tick() => {
                        tick += 1;
                        let data = format!(
                            "{{\"source\":\"ticker\",\"tick\":{tick},\"sent_us\":{},\"pad\":\"{pad}\"}}",
                            now_us()
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
