//! What a scenario asks of the transports, as the report keeps it: the requirements (a latency
//! budget, costs in order of importance) with their reasons, and the flags it set. loadgen reads
//! scenario files into these; the recommendation ranks against them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A value with the reason it was chosen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Why<T> {
    pub value: T,
    pub why: String,
}

/// What the transports are judged against.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// A transport whose p99 delivery latency (median over the runs) exceeds this is not
    /// recommended, whatever it costs.
    pub p99_latency_ms: Why<f64>,
    /// The costs to compare, most important first: a transport ahead on the first (beyond the
    /// spread) ranks higher; a tie there is decided by the next.
    pub priority: Why<Vec<Cost>>,
}

/// A figure a scenario can rank on, each read from a phase's own numbers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cost {
    LatencyP50,
    LatencyP99,
    BytesPerEvent,
    ServerCpuPerEvent,
    /// Server CPU per client per hour of connection: what an idle audience costs.
    ServerCpuPerClientHour,
    /// Every byte on every socket per client per hour (each connection's opening exchange
    /// included once per phase).
    BytesPerClientHour,
    /// HTTP requests per client per hour after each client's first (a stream's subscription is
    /// paid once per session, not once per phase).
    RequestsPerClientHour,
    /// Server memory per connection (only measured from 1,000 connections).
    MemoryPerConnection,
    /// The phone radio's energy per hour, J: the radio model (`radio=` in `--network`) over
    /// each phone's packet records, the mean phone (needs `phones` in `--network`).
    RadioEnergyPerHour,
}

impl Cost {
    pub fn label(self) -> &'static str {
        match self {
            Self::LatencyP50 => "p50 latency",
            Self::LatencyP99 => "p99 latency",
            Self::BytesPerEvent => "bytes per event",
            Self::ServerCpuPerEvent => "server CPU per 1000 events",
            Self::ServerCpuPerClientHour => "server CPU per client-hour",
            Self::BytesPerClientHour => "bytes per client-hour",
            Self::RequestsPerClientHour => "requests per client-hour",
            Self::MemoryPerConnection => "server memory per connection",
            Self::RadioEnergyPerHour => "phone radio energy per hour",
        }
    }
}

/// What a report says about the scenario it ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ScenarioInfo {
    pub name: String,
    pub summary: String,
    /// Each flag the scenario set, its value and why (flags the command line overrode are
    /// marked).
    pub flags: Vec<FlagUse>,
    pub requirements: Requirements,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FlagUse {
    pub flag: String,
    pub value: String,
    pub why: String,
    /// The command line (or an environment variable) gave another value, which the run used.
    pub overridden: bool,
}
