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
    /// feedlab's server or the floor: `/poll`, `/long-poll`, `/sse`, `/ws`, `/publish`, `/stats`.
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
            "feedlab" | "server" | "floor" => Ok(Self::Feedlab),
            "nchan" => Ok(Self::Nchan),
            other => Err(format!(
                "unknown --target {other:?} (expected feedlab or nchan)"
            )),
        }
    }
}

/// The flags of the target adapters (flattened into loadgen's).
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// What serves --url: `feedlab` (the server or the floor) or `nchan` (nginx with the Nchan
    /// module: one channel per phase, published and subscribed at the --nchan-* locations;
    /// needs one --url and --http 1.1; no /stats, so loadgen's counts are not checked against
    /// the server's and its CPU is not read).
    #[arg(long, env = "LOADGEN_TARGET", default_value = "feedlab")]
    pub target: TargetKind,

    /// With --target nchan: the `nchan_publisher` location; `{channel}` becomes the phase's
    /// channel id.
    #[arg(long, env = "LOADGEN_NCHAN_PUBLISH", default_value = "/pub/{channel}")]
    pub nchan_publish: String,

    /// With --target nchan: the `nchan_subscriber` location for WebSocket, EventSource and
    /// long-poll (with `nchan_longpoll_multipart_response raw` a long poll may list several
    /// messages, one per line).
    #[arg(
        long,
        env = "LOADGEN_NCHAN_SUBSCRIBE",
        default_value = "/sub/{channel}"
    )]
    pub nchan_subscribe: String,

    /// With --target nchan: the `nchan_subscriber interval-poll` location, for short polling.
    #[arg(long, env = "LOADGEN_NCHAN_POLL", default_value = "/poll/{channel}")]
    pub nchan_poll: String,
}

impl TargetArgs {
    /// Refuses what an adapter cannot do, saying why.
    ///
    /// # Errors
    /// A message naming the flags.
    pub fn check(&self, args: &crate::cli::Args) -> Result<(), String> {
        if self.target == TargetKind::Feedlab {
            return Ok(());
        }
        if args.urls.len() != 1 {
            return Err("--target nchan drives one running Nchan: give exactly one --url".into());
        }
        if args.urls[0].scheme() != "http" {
            return Err("--target nchan: plain http:// only".into());
        }
        if args.http != [crate::cli::HttpVersion::Http11] {
            return Err("--target nchan: pass --http 1.1 (the adapter keeps one HTTP/1.1 connection per client; 1.0 and 2 are not adapted)".into());
        }
        if args.chaos.is_on() || args.proxy != crate::cli::ProxyKind::None {
            return Err("--target nchan: no --chaos or --proxy (they need feedlab servers)".into());
        }
        for (flag, path) in [
            ("--nchan-publish", &self.nchan_publish),
            ("--nchan-subscribe", &self.nchan_subscribe),
            ("--nchan-poll", &self.nchan_poll),
        ] {
            if !path.starts_with('/') || !path.contains("{channel}") || path.contains('?') {
                return Err(format!(
                    "{flag} must be a path starting with / that contains {{channel}} and no query, got {path:?}"
                ));
            }
        }
        Ok(())
    }
}
