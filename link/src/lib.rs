//! An emulated network link with real kernel TCP at both ends, the way Mahimahi builds one:
//! two network namespaces, a TUN device in each, and a forwarder in loadgen that carries the IP
//! packets between them with the delay, jitter, loss and bandwidth of a [`spec::LinkSpec`].
//! The server runs in one namespace (`ip netns exec`), loadgen's clients get their sockets from
//! the other ([`netns::Agent`]), so handshakes, congestion control, retransmissions and
//! head-of-line blocking are the kernel's own.
//!
//! Why not `tc netem`: the kernel here does not have it, and a forwarder in loadgen can count
//! exactly what the link did (packets carried, dropped by loss, dropped by the queue) and say
//! what it cost in CPU, apart from the server and the clients.
//!
//! - [`spec`]: `--network SPEC` and the named profiles, with their sources.
//! - [`netns`]: the namespaces (deleted on every exit path) and the threads inside them.
//! - [`shaper`]: what one direction does to a packet; [`forward`]: the threads that do it.
//! - [`tcp`]: what the kernel's TCP measured across the link.
//! - [`phones`]: a link per phone (an address each), [`records`]: every phone packet,
//!   [`wake`]: the latency of a sleeping radio, [`nat`] (with [`packet`]): a carrier NAT's idle
//!   timeout, [`notice`]: when each end of a connection the NAT killed let go of it. See the
//!   book's docs/src/guide/phones.md.
//! - [`counts`], [`result`], [`tcp`]'s samples: what a link did, as data (always built, no
//!   tokio: the report crate reads them with `default-features = false`).
//! - [`emulator`] ([`Link`]): brings the link up; behind the default feature `emulator`.
//!
//! loadgen's `link` subcommand (the live page across a link in a browser, and the link's own
//! packet-rate benchmark) is this crate used on its own; see the book's docs/src/guide/networks.md.

pub mod counts;
#[cfg(feature = "emulator")]
pub mod emulator;
#[cfg(feature = "emulator")]
pub mod forward;
pub mod nat;
#[cfg(feature = "emulator")]
pub mod netns;
#[cfg(feature = "emulator")]
pub mod notice;
pub mod packet;
#[cfg(feature = "emulator")]
pub mod phone_cost;
pub mod phones;
pub mod records;
pub mod result;
pub mod shaper;
pub mod spec;
pub mod tcp;
pub mod wake;

use std::net::Ipv4Addr;

pub use counts::DirCounts;
#[cfg(feature = "emulator")]
pub use emulator::{Link, Snapshot};
pub use result::{
    DeadConnections, NatResult, NetworkResult, Notice, PhonesResult, QuicPathStats, RadioResult,
    WakeResult,
};
pub use spec::{LinkSpec, Network};

/// The server's end (RFC 2544's benchmarking range, 198.18.0.0/15).
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The clients' end.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The least extra delay that counts as a head-of-line stall, for links with a tiny RTT (on
/// `rtt=0ms` a scheduling hiccup is not head-of-line blocking).
pub const HOL_MIN_EXTRA: std::time::Duration = std::time::Duration::from_millis(10);
