//! The one definition of the transport names, for the server, loadgen and the page: the four
//! over TCP, and WebTransport over QUIC (issue 31) in its three variants, which run only when
//! named.
//!
//! The WebTransport variants are transports of their own rather than a mode of `wt`: each is a
//! row of its own in `/stats` and in loadgen's reports (a stream per event and datagrams cost and
//! fail differently from one stream), keyed by the same name everywhere without a second key.

use serde::{Deserialize, Serialize};

/// The four ways a browser can follow the feed. The kebab-case name is the key in `/stats`, in
/// loadgen's `--transports` and reports, and the `data-transport` of the page's panes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    ShortPoll,
    LongPoll,
    Sse,
    Ws,
    /// WebTransport over HTTP/3 (QUIC): `/wt` on the server's port over UDP, the feed on one
    /// unidirectional stream.
    Wt,
    /// WebTransport, a unidirectional stream per event (`/wt?mode=streams`).
    WtStreams,
    /// WebTransport, an event per QUIC datagram, recovered over a stream when lost
    /// (`/wt?mode=datagrams`).
    WtDatagrams,
}

impl Transport {
    /// The four over TCP: what `all` means (in loadgen's `--transports`, the reports, the main
    /// job), so runs made before WebTransport existed stay comparable.
    pub const ALL: [Transport; 4] = [Self::ShortPoll, Self::LongPoll, Self::Sse, Self::Ws];

    /// Every transport, WebTransport included: what the server counts, and what a name parses to.
    pub const EVERY: [Transport; 7] = [
        Self::ShortPoll,
        Self::LongPoll,
        Self::Sse,
        Self::Ws,
        Self::Wt,
        Self::WtStreams,
        Self::WtDatagrams,
    ];

    /// The name used in reports, stats and the page.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShortPoll => "short-poll",
            Self::LongPoll => "long-poll",
            Self::Sse => "sse",
            Self::Ws => "ws",
            Self::Wt => "wt",
            Self::WtStreams => "wt-streams",
            Self::WtDatagrams => "wt-datagrams",
        }
    }

    /// The URL path that serves it.
    pub fn path(self) -> &'static str {
        match self {
            Self::ShortPoll => "/poll",
            Self::LongPoll => "/long-poll",
            Self::Sse => "/sse",
            Self::Ws => "/ws",
            Self::Wt | Self::WtStreams | Self::WtDatagrams => "/wt",
        }
    }

    /// A WebTransport variant's `mode=` on `/wt` (`stream`, `streams`, `datagrams`); `None`
    /// for the four over TCP.
    pub fn wt_mode(self) -> Option<&'static str> {
        match self {
            Self::Wt => Some("stream"),
            Self::WtStreams => Some("streams"),
            Self::WtDatagrams => Some("datagrams"),
            _ => None,
        }
    }

    /// The WebTransport variant a `mode=` names.
    pub fn from_wt_mode(mode: &str) -> Option<Self> {
        [Self::Wt, Self::WtStreams, Self::WtDatagrams]
            .into_iter()
            .find(|t| t.wt_mode() == Some(mode))
    }

    /// Whether it is one of the WebTransport variants (QUIC, `/wt`).
    pub fn is_wt(self) -> bool {
        self.wt_mode().is_some()
    }

    /// Index into per-transport arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether a connection of this transport stays open between events.
    pub fn is_streaming(self) -> bool {
        matches!(self, Self::Sse | Self::Ws) || self.is_wt()
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::EVERY
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                format!("unknown transport {s:?} (expected short-poll, long-poll, sse, ws, wt, wt-streams or wt-datagrams)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        assert!(!Transport::ALL.contains(&Transport::Wt));
        for t in Transport::EVERY {
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.name())
            );
            assert_eq!(t.name().parse::<Transport>().unwrap(), t);
            assert_eq!(Transport::EVERY[t.index()], t);
            if let Some(mode) = t.wt_mode() {
                assert_eq!(Transport::from_wt_mode(mode), Some(t));
            }
        }
    }
}
