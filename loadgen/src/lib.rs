//! feedlab's load generator: drives short polling, long polling, SSE and WebSockets with many
//! concurrent clients against one feed, measures what each costs and how fast it delivers, and
//! writes a report a user can decide from.
//!
//! loadgen publishes the events itself (`POST /publish`, its own clock inside `data`), so the
//! delivery latency is measured on one clock even against a remote server, and it knows exactly
//! which seqs every client must receive.
//!
//! # Layout
//! - [`cli`]: the flags (each also an environment variable); [`plan`] turns them into phases and
//!   checks the plan fits the open-file limit.
//! - [`run`]: runs the phases: [`server_proc`] starts and samples the servers ([`redis_proc`]
//!   the Redis several share, [`proxy`] nginx in front), [`probe`] reads `/stats` before and
//!   after, [`publisher`] paces the events, [`client`] drives one simulated user per task over a
//!   [`net::counting::CountingStream`], [`chaos`] says when to kill a server and how to read
//!   the latency around it.
//! - [`upstream`]: `--send-rate`, every client publishing its own messages its transport's way
//!   (WebSocket message, or `POST /publish` beside the stream) and what that cost.
//! - [`sequence`], [`stats`]: what each client saw (integrity, latency, counters), merged per
//!   transport; [`event`] parses what the server sends, without copying the padding.
//! - [`report`]: one model ([`report::Report`]) rendered as JSON, Markdown, SVG and HTML.
//! - [`link`]: `--network`, an emulated link (namespaces, TUN devices, a forwarder) between
//!   the clients and the server.
//! - [`target`]: adapters for servers that are not feedlab's (Nchan).
//! - [`progress`]: bars on stderr; [`sys`]: the few system calls (signals, limits).

pub mod chaos;
pub mod cli;
pub mod client;
pub mod clock;
pub mod compression;
pub mod event;
pub mod link;
pub mod net;
/// What an event carries: one implementation with the server's ticker, in `feedlab-wire`.
pub use feedlab_wire::payload;
pub mod intermediary;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod proxy;
pub mod publisher;
pub mod redis_proc;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sequence;
pub mod server_proc;
pub mod stats;
pub mod sys;
pub mod target;
pub mod upstream;

pub use cli::Args;
pub use run::{execute, Outcome};
