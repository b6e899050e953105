//! The one definition of the transport names, for the server, loadgen and the page: the four
//! over TCP, and WebTransport over QUIC (issue 31), which runs only when named.

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
    /// WebTransport over HTTP/3 (QUIC): `/wt` on the server's port over UDP.
    Wt,
}

impl Transport {
    /// The four over TCP: what `all` means (in loadgen's `--transports`, the reports, the main
    /// job), so runs made before WebTransport existed stay comparable.
    pub const ALL: [Transport; 4] = [Self::ShortPoll, Self::LongPoll, Self::Sse, Self::Ws];

    /// Every transport, WebTransport included: what the server counts, and what a name parses to.
    pub const EVERY: [Transport; 5] = [
        Self::ShortPoll,
        Self::LongPoll,
        Self::Sse,
        Self::Ws,
        Self::Wt,
    ];

    /// The name used in reports, stats and the page.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShortPoll => "short-poll",
            Self::LongPoll => "long-poll",
            Self::Sse => "sse",
            Self::Ws => "ws",
            Self::Wt => "wt",
        }
    }

    /// The URL path that serves it.
    pub fn path(self) -> &'static str {
        match self {
            Self::ShortPoll => "/poll",
            Self::LongPoll => "/long-poll",
            Self::Sse => "/sse",
            Self::Ws => "/ws",
            Self::Wt => "/wt",
        }
    }

    /// Index into per-transport arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether a connection of this transport stays open between events.
    pub fn is_streaming(self) -> bool {
        matches!(self, Self::Sse | Self::Ws | Self::Wt)
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
                format!("unknown transport {s:?} (expected short-poll, long-poll, sse, ws or wt)")
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
        }
    }
}
