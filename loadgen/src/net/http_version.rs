//! `--http`: how the polling transports use TCP (a new connection per request, keep-alive, or
//! HTTP/2 streams). In the network layer, not the command line's, because the clients and the
//! connection code decide by it; the command line only parses it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `--http`: how the polling transports use TCP, or QUIC (`3`).
/// Spelled as in the report (`1.0`, `1.1`, `2`, `3`); `1`, `2.0`, `h2`, `h2c`, `h3` and an
/// `HTTP/` prefix are accepted too.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
pub enum HttpVersion {
    /// A new TCP connection per request (`HTTP/1.0` without keep-alive).
    #[serde(rename = "1.0")]
    #[value(name = "1.0", alias = "1", alias = "HTTP/1.0", alias = "HTTP/1")]
    Http10,
    /// One keep-alive connection per client.
    #[serde(rename = "1.1")]
    #[value(name = "1.1", alias = "HTTP/1.1")]
    Http11,
    /// One HTTP/2 connection per client, each request (or SSE stream) a stream on it.
    #[serde(rename = "2")]
    #[value(
        name = "2",
        alias = "2.0",
        alias = "h2",
        alias = "h2c",
        alias = "HTTP/2",
        alias = "HTTP/2.0"
    )]
    Http2,
    /// One HTTP/3 connection per client over QUIC (`--tls on`; the server serves HTTP/3 on its
    /// port over UDP, `--quic --quic-http3`): polls, long polls and SSE only.
    #[serde(rename = "3")]
    #[value(name = "3", alias = "3.0", alias = "h3", alias = "HTTP/3")]
    Http3,
}

impl HttpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "1.0",
            Self::Http11 => "1.1",
            Self::Http2 => "2",
            Self::Http3 => "3",
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
