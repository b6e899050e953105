//! A user's workload, as `loadgen decide` takes it: how long a session lasts, how busy the feed
//! is, how often each client talks back, how many clients. Nonsense is refused here, with the
//! flag named, before anything is composed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::Condition;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Workload {
    /// Concurrent clients.
    pub clients: u64,
    /// How long one client stays connected, s.
    pub session_s: f64,
    /// Events each client receives per hour (a broadcast feed: every client gets every event).
    pub events_per_hour: f64,
    /// Messages each client sends per hour.
    pub messages_per_hour: f64,
    /// The payload kind of the events (one the model measured).
    pub payload: String,
    /// The network (one the model measured, or `loopback`).
    pub network: String,
    pub condition: Condition,
    /// p99 delivery latency the application can bear, ms; none: no budget.
    pub latency_budget_ms: Option<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkloadError {
    #[error("--clients must be at least 1 (got {0})")]
    Clients(u64),
    #[error("--session must be at least 1 s (got {0} s): a session shorter than its own set-up measures nothing")]
    Session(f64),
    #[error("--events-per-hour must be a finite number ≥ 0 (got {0})")]
    Events(f64),
    #[error("--messages-per-hour must be a finite number ≥ 0 (got {0})")]
    Messages(f64),
    #[error("--events-per-hour {0} is more than one event per millisecond per client: outside anything a feed of this kind carries")]
    EventsTooMany(f64),
    #[error("--latency-budget must be a positive number of ms (got {0})")]
    Budget(f64),
}

/// The most events per hour a workload may ask for: 1,000 a second.
pub const MAX_EVENTS_PER_HOUR: f64 = 3_600_000.0;

impl Workload {
    pub fn check(&self) -> Result<(), WorkloadError> {
        if self.clients == 0 {
            return Err(WorkloadError::Clients(self.clients));
        }
        if !(self.session_s.is_finite() && self.session_s >= 1.0) {
            return Err(WorkloadError::Session(self.session_s));
        }
        if !(self.events_per_hour.is_finite() && self.events_per_hour >= 0.0) {
            return Err(WorkloadError::Events(self.events_per_hour));
        }
        if self.events_per_hour > MAX_EVENTS_PER_HOUR {
            return Err(WorkloadError::EventsTooMany(self.events_per_hour));
        }
        if !(self.messages_per_hour.is_finite() && self.messages_per_hour >= 0.0) {
            return Err(WorkloadError::Messages(self.messages_per_hour));
        }
        if let Some(b) = self.latency_budget_ms {
            if !(b.is_finite() && b > 0.0) {
                return Err(WorkloadError::Budget(b));
            }
        }
        Ok(())
    }
}
