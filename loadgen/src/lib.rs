//! feedlab's load generator: drives short polling, long polling, SSE and WebSockets with many
//! concurrent clients against one feed, measures what each costs and how fast it delivers, and
//! writes a report a user can decide from.
//!
//! loadgen publishes the events itself (`POST /publish`, its own clock inside `data`), so the
//! delivery latency is measured on one clock even against a remote server, and it knows exactly
//! which seqs every client must receive.
//!
//! # Layout
//! Imports go one way, down this list (`scripts/import_cycles.py` checks it in CI):
//! - [`run`] (and [`link_tool`], `loadgen link`): the only place that holds a plan and child
//!   processes: [`server_proc`] starts and samples the servers ([`redis_proc`] the Redis several
//!   share, [`proxy`] nginx in front), [`progress`] draws bars on stderr, [`sys`] makes the few
//!   system calls (signals, limits).
//! - [`cli`]: the flags (each also an environment variable); [`plan`] turns them into phases and
//!   checks the plan fits the open-file limit, and is the only reader of [`cli::Args`]: the
//!   run, the clients and the scenarios take the [`plan::Plan`] (`scripts/args_readers.py`
//!   checks it in CI); [`scenario`] the named workloads, each a plan.
//! - [`client`]: one simulated user per task, one module per transport, with the publisher that
//!   paces the events ([`client::publisher`]), talking back (`--send-rate`,
//!   [`client::talk_back`]) and the adapters for servers that are not feedlab's
//!   ([`client::target`], Nchan).
//! - [`net`]: where a server is and how a connection to it is made and counted
//!   ([`net::counting::CountingStream`], TLS, [`net::HttpVersion`], timeouts); [`probe`] reads
//!   `/stats` before and after.
//! - [`sequence`], [`stats`]: what each client saw (integrity, latency, counters), merged per
//!   transport; [`event`] parses what the server sends, without copying the padding; [`clock`],
//!   [`compression`] (decoding what was compressed), [`chaos`] (when to kill a server and how
//!   to read the latency around it), [`storm`] (how clients come back, as browsers do, and the
//!   reconnect storm's timeline).
//! - [`feedlab_report`] (its own crate): one model ([`feedlab_report::Report`]) rendered as
//!   JSON, Markdown, SVG and HTML; loadgen fills it ([`run`]).
//! - [`feedlab_link`] (its own crate): `--network`, an emulated link (namespaces, TUN devices, a
//!   forwarder) between the clients and the server.

pub mod chaos;
pub mod cli;
pub mod client;
pub mod clock;
pub mod compression;
pub mod costs;
pub mod decide;
pub mod event;
pub mod heads;
pub mod link_tool;
pub mod net;
/// What an event carries: one implementation with the server's ticker, in `feedlab-wire`.
pub use feedlab_wire::payload;
pub mod intermediary;
pub mod merge;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod proxy;

pub mod redis_proc;
pub mod run;
pub mod scenario;
pub mod sequence;
pub mod server_proc;
pub mod shard;
pub mod stats;
pub mod storm;
pub mod sys;
pub mod usecase;

pub use cli::Args;
pub use run::Outcome;

/// Runs everything `args` asks for and writes the report: the command line becomes a
/// [`plan::Plan`] here, and the run reads only the plan.
///
/// # Errors
/// When the run cannot start (bad flags, a plan past the open-file limit, no server); a phase
/// that fails midway ends the run early but still produces a report (with a warning).
pub async fn execute(args: Args, mode: run::Mode) -> anyhow::Result<Outcome> {
    let plan = plan::Plan::build(&args).map_err(anyhow::Error::msg)?;
    run::execute(plan, mode).await
}
