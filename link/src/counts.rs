//! One direction's packet counts as data: what the forwarder counted, copied out, and what the
//! report keeps. Apart from the forwarder so that reading them needs no emulator.

use serde::{Deserialize, Serialize};

/// A copy of one direction's counters (or the difference between two copies).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[schemars(deny_unknown_fields)]
pub struct DirCounts {
    pub packets_carried: u64,
    pub bytes_carried: u64,
    pub dropped_by_loss: u64,
    pub dropped_by_queue: u64,
    /// Longest the drop-tail queue got, packets.
    pub peak_queue_packets: u64,
    /// Of the carried packets, those carrying UDP (IP protocol 17: QUIC), and their IP bytes;
    /// the rest is TCP.
    #[serde(default)]
    #[schemars(skip_serializing_if = "added_later")]
    pub udp_packets_carried: u64,
    #[serde(default)]
    #[schemars(skip_serializing_if = "added_later")]
    pub udp_bytes_carried: u64,
    /// UDP packets the link dropped (loss and queue together).
    #[serde(default)]
    #[schemars(skip_serializing_if = "added_later")]
    pub udp_dropped: u64,
}

/// For the schema only (serde writes every field): marks a field added after the first reports
/// (it has `#[serde(default)]`) as optional, since reports written before it lack it (the
/// report crate's `model::schema::added_later`, which this crate cannot depend on).
fn added_later<T>(_: &T) -> bool {
    false
}

impl DirCounts {
    /// `self` minus `before` (the peak is `self`'s: peaks are reset, not subtracted).
    pub fn since(&self, before: &Self) -> Self {
        Self {
            packets_carried: self.packets_carried.saturating_sub(before.packets_carried),
            bytes_carried: self.bytes_carried.saturating_sub(before.bytes_carried),
            dropped_by_loss: self.dropped_by_loss.saturating_sub(before.dropped_by_loss),
            dropped_by_queue: self
                .dropped_by_queue
                .saturating_sub(before.dropped_by_queue),
            peak_queue_packets: self.peak_queue_packets,
            udp_packets_carried: self
                .udp_packets_carried
                .saturating_sub(before.udp_packets_carried),
            udp_bytes_carried: self
                .udp_bytes_carried
                .saturating_sub(before.udp_bytes_carried),
            udp_dropped: self.udp_dropped.saturating_sub(before.udp_dropped),
        }
    }
}
