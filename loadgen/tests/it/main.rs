//! loadgen driven end to end: against the real server (in this process, and spawned by the
//! `loadgen` binary), and against a fake server that garbles the feed on purpose. One binary,
//! one module per concern.

mod binary;
mod chaos;
mod clap_markdown;
mod compression;
mod costs;
mod decide;
mod deps;
mod end_to_end;
mod fake_server;
mod idempotent_publish;
mod intermediaries;
mod nchan;
mod network;
mod nginx;
mod peers;
mod phones;
mod proxy_timeout;
mod quic_link;
mod readme;
mod shard;
mod storm;
mod talk_back;
mod tls_http2;
mod usecases;
mod wt;
