//! Connections as loadgen opens them: TCP (optionally from a chosen loopback source address,
//! since one address has only ~28,000 ephemeral ports), counted, then handed to hyper.

pub mod counting;

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

pub use counting::{CountingStream, Wire};

/// How long a TCP connect may take before it counts as `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server is.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// The `Host` header: `host:port` as given in `--url`.
    pub host: String,
    /// Path prefix from `--url` without the trailing slash (usually empty).
    pub base_path: String,
}

impl Target {
    /// # Errors
    /// When the URL is not `http://` or its host does not resolve.
    pub async fn from_url(url: &url::Url) -> anyhow::Result<Self> {
        anyhow::ensure!(
            url.scheme() == "http",
            "only http:// targets are supported, got {url}"
        );
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("{url} has no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{host} does not resolve"))?;
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        Ok(Self {
            addr,
            host: host_header,
            base_path: url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `path_and_query` under the base path.
    pub fn path(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_path)
    }

    /// Whether the server is on this machine (its `ts` uses our wall clock).
    pub fn is_local(&self) -> bool {
        self.addr.ip().is_loopback()
    }
}

/// The source address for client `index` when connections are spread over `spread` loopback
/// addresses (127.0.0.1 …); `None` lets the kernel choose.
pub fn source_ip(target: &Target, spread: u8, index: usize) -> Option<IpAddr> {
    if spread <= 1 || !target.addr.ip().is_loopback() || !target.addr.is_ipv4() {
        return None;
    }
    let n = (index % spread as usize) as u8 + 1;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
}

/// Opens a counted TCP connection (no Nagle delay: requests are small and latency matters).
///
/// # Errors
/// Connect failures; a timeout becomes `io::ErrorKind::TimedOut`.
pub async fn connect(
    target: &Target,
    source: Option<IpAddr>,
    wire: &Arc<Wire>,
) -> io::Result<CountingStream<TcpStream>> {
    let connecting = async {
        let stream = match source {
            Some(ip) => {
                let socket = if ip.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(target.addr).await?
            }
            None => TcpStream::connect(target.addr).await?,
        };
        stream.set_nodelay(true)?;
        Ok::<_, io::Error>(stream)
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    Ok(CountingStream::new(stream, wire.clone()))
}

/// The request sender of a client connection whose requests have no body (every GET).
pub type Sender = http1::SendRequest<Empty<Bytes>>;

/// An HTTP/1 client connection over a counted stream; the connection is driven by its own task,
/// whose handle resolves when the connection has closed.
///
/// # Errors
/// When the handshake fails (it does no I/O for HTTP/1, so practically never).
pub async fn http1<B>(
    stream: CountingStream<TcpStream>,
) -> hyper::Result<(http1::SendRequest<B>, tokio::task::JoinHandle<()>)>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = http1::Builder::new()
        // Small buffers: at 10,000 connections every KiB here is 10 MiB of loadgen memory.
        .max_buf_size(64 * 1024)
        .handshake(TokioIo::new(stream))
        .await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, task))
}

/// The connection half of [`http1_inline`]: a future the caller polls itself.
pub type Connection = http1::Connection<TokioIo<CountingStream<TcpStream>>, Empty<Bytes>>;

/// An HTTP/1 client connection driven by the caller's own task (poll it alongside each
/// request), which saves a task and two cross-task wake-ups per request on the polling hot path.
///
/// # Errors
/// When the handshake fails (it does no I/O for HTTP/1, so practically never).
pub async fn http1_inline(
    stream: CountingStream<TcpStream>,
) -> hyper::Result<(Sender, std::pin::Pin<Box<Connection>>)> {
    let (sender, conn) = http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake(TokioIo::new(stream))
        .await?;
    Ok((sender, Box::pin(conn)))
}

/// A short key for an I/O error, for the report's error table.
pub fn io_error_kind(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect_refused",
        io::ErrorKind::TimedOut => "connect_timeout",
        io::ErrorKind::ConnectionReset => "reset",
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse => "no_source_port",
        _ if e.raw_os_error() == Some(24) => "too_many_open_files",
        _ => "io",
    }
}

/// A short key for a hyper error.
pub fn hyper_error_kind(e: &hyper::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        "closed"
    } else if e.is_parse() {
        "protocol"
    } else {
        "io"
    }
}
