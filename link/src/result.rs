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
    /// With a link per phone (`phones` in the SPEC): the phones, their radio's cost, what the
    /// NAT and the wake-up delay did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phones: Option<PhonesResult>,
    /// IP bytes across the link (both ways, every header included) per event received: the
    /// one layer where TCP+TLS and QUIC compare byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_bytes_per_event: Option<f64>,
    /// UDP datagrams the client namespace's kernel could not deliver during the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_udp: Option<tcp::UdpErrors>,
    /// The same for the server's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_udp: Option<tcp::UdpErrors>,
    /// QUIC's own view of the link, from its clients' connections (over QUIC transports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic: Option<QuicPathStats>,
}

/// What the clients' QUIC connections measured (quinn's `Connection::stats()`), summed over the
/// phase's connections when each ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct QuicPathStats {
    pub connections: u64,
    /// Packets the clients sent that they declared lost (their own sends: mostly
    /// acknowledgements; the server's losses are its own and not in here).
    pub client_lost_packets: u64,
    /// Congestion events the clients' controllers saw.
    pub client_congestion_events: u64,
    /// UDP datagrams the clients sent and received.
    pub client_datagrams_sent: u64,
    pub client_datagrams_received: u64,
    /// Mean over connections of the smoothed RTT when each ended, ms.
    pub rtt_ms_mean: Option<f64>,
}

/// A transport's phones over a phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PhonesResult {
    /// Phones (addresses) whose packets this transport's result counts.
    pub phones: u64,
    /// Their packet records in the phase.
    pub packets: u64,
    /// Records the link could not keep (past its cap): when not 0, the radio figures are low.
    pub records_dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radio: Option<RadioResult>,
    /// The NAT over the whole phase (all transports of the phase together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatResult>,
    /// The wake-up delay over the whole phase (all transports of the phase together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<WakeResult>,
}

/// The radio model (feedlab-radio) over each phone's packet records: the mean phone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RadioResult {
    pub profile: String,
    /// The profile's timers, printed beside every energy figure.
    pub timers: String,
    /// `foreground` (the page's timers run) or `background` (frozen).
    pub regime: String,
    /// The radio's energy per hour, J (the mean phone; idle paging included).
    pub energy_per_hour_j: f64,
    /// Per delivered event, J (null when none was delivered).
    pub energy_per_event_j: Option<f64>,
    pub radio_on_share: f64,
    pub wake_ups_per_hour: f64,
    /// Share of the energy spent in tails (connected, waiting for a timer).
    pub tail_share: f64,
    /// What one wake-up costs alone on this profile, J.
    pub isolated_wake_up_j: f64,
}

/// What the NAT did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NatResult {
    pub idle_timeout_s: f64,
    /// `drop` or `reset`.
    pub mode: String,
    /// Mappings found expired by a later packet.
    pub expired: u64,
    /// Packets dropped for having no mapping.
    pub dropped: u64,
    /// Resets the NAT sent.
    pub resets: u64,
    /// This transport's connections whose mapping lapsed in the phase, and when each end
    /// noticed (its socket gone or closing, read from its own kernel every 50 ms): what a
    /// dropping NAT's silently dead connection costs before anyone reconnects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead: Option<DeadConnections>,
}

/// The connections a NAT killed, and how long each end took to notice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DeadConnections {
    /// Mappings that lapsed in the phase (a mapping counts when a later packet finds it gone).
    pub connections: u64,
    /// Time from the mapping's end to the server letting go of its socket
    /// (`--send-timeout`'s `TCP_USER_TIMEOUT`, a WebSocket client timeout, a failed write).
    pub server: Notice,
    /// The same for the client, with [`Self::client_watchdog`].
    pub client: Notice,
    /// What makes the client notice: loadgen's response timeout for a poll; none for SSE and
    /// WebSocket (as a browser's EventSource and WebSocket have none, and the page has no
    /// silence watchdog).
    pub client_watchdog: String,
}

/// How long one end took to notice dead connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Notice {
    /// Noticed before the phase ended.
    pub noticed: u64,
    /// Not noticed by then: still held open, silently dead.
    pub unnoticed: u64,
    /// Of the noticed, ms.
    pub median_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// What the wake-up delay did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WakeResult {
    /// Packets that found the modelled radio idle.
    pub wake_ups: u64,
    /// Packets that waited for a wake-up.
    pub delayed: u64,
    /// Their mean wait, ms.
    pub mean_delay_ms: Option<f64>,
}
