//! What the report says about the network a phase ran on: plain data, so the report crate
//! reads it without the emulator.

use serde::{Deserialize, Serialize};

use crate::{counts::DirCounts, tcp};

/// What the report says about the network a phase ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NetworkResult {
    /// `--network` as given: `none` (loopback), a profile, or figures.
    pub name: String,
    /// The link as it ran (canonical SPEC); null on loopback.
    pub spec: Option<String>,
    /// The RTT the link adds, ms; null on loopback.
    pub rtt_ms: Option<f64>,
    /// RTT of loadgen's sockets as the kernel measured it (`TCP_INFO`), at the end of
    /// publishing.
    pub tcp_rtt: Option<tcp::RttSample>,
    /// TCP segments sent and retransmitted by loadgen's sockets during the phase.
    pub client_segments: Option<tcp::Segments>,
    /// The same for the server's sockets (it sends most data, so most retransmissions).
    pub server_segments: Option<tcp::Segments>,
    /// Server to client.
    pub down: Option<DirCounts>,
    /// Client to server.
    pub up: Option<DirCounts>,
    /// CPU the forwarder used in the phase, s (charged to neither server nor loadgen: it is
    /// taken out of loadgen's CPU).
    pub forwarder_cpu_s: Option<f64>,
    /// Packets across the link (both ways) per event received.
    pub packets_per_event: Option<f64>,
    /// Events delayed by more than one RTT beyond what the transport needs without loss (the
    /// one-way delay; plus the poll interval for short polling).
    pub hol_stalls: Option<u64>,
    /// The latency above which an event counts as stalled, µs.
    pub hol_threshold_us: Option<u64>,
}
