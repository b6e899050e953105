//! The server, driven over real sockets by real clients: hyper, an SSE parser, tokio-tungstenite,
//! curl, Python's `websockets` and `zlib`. One binary, one module per concern.

mod bad_input;
mod common;
mod cross;
mod differential;
mod durable;
mod fast_path;
mod h3;
mod hostile;
mod http_gzip;
mod idempotency;
mod limits;
mod long_poll;
mod nginx;
mod poll;
mod properties;
mod readme;
mod redis;
mod shutdown;
mod sse;
mod stats;
mod storm;
mod timeouts;
mod tls;
mod tls_fast;
mod usecases;
mod ws;
mod ws_deflate;
mod wt;
