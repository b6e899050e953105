//! What speaks at `--url`: feedlab's own protocol (the server, the floor), or a server that is
//! not feedlab's, through a small adapter. The only adapter is [`nchan`], so that loadgen can
//! put feedlab's numbers beside a server people run in production, with the same clients,
//! the same publisher and the same integrity and latency accounting.
//!
//! An adapter maps three things onto the foreign server: where to publish and how the
//! publish is acknowledged, where each transport subscribes and how a client resumes, and how
//! a poll's answer lists events. Events stay feedlab's envelope (`{"seq":N,"ts":T,"data":…}`)
//! end to end: the adapter's publisher sends the whole envelope as the message body, with
//! loadgen's own seq and send time inside, so a server that relays bodies as they are
//! (Nchan does) delivers exactly what loadgen's clients already parse.

pub mod nchan;
pub mod nchan_poll;

use std::str::FromStr;

/// `--target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetKind {
    /// feedlab's server or the floor (`--server-bin target/release/floor`): `/poll`,
    /// `/long-poll`, `/sse`, `/ws`, `/publish`, `/stats`.
    #[default]
    Feedlab,
    /// An nginx with the Nchan module (see [`nchan`]).
    Nchan,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Feedlab => "feedlab",
            Self::Nchan => "nchan",
        }
    }
}

impl FromStr for TargetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "feedlab" | "server" => Ok(Self::Feedlab),
            "nchan" => Ok(Self::Nchan),
            // The floor speaks feedlab's protocol: it is a server to start, not an adapter.
            "floor" => Err("--target floor: the floor speaks feedlab's protocol, so it is not a target of its own; start it with --server-bin target/release/floor (build it with cargo build --release -p floor)".into()),
            other => Err(format!(
                "unknown --target {other:?} (expected feedlab or nchan)"
            )),
        }
    }
}
