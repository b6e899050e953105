//! Connections as loadgen opens them: TCP (optionally from a chosen loopback source address,
//! since one address has only ~28,000 ephemeral ports), counted, TLS for `https://`, then handed
//! to hyper over HTTP/1 or HTTP/2.

pub mod counting;
pub mod forward_proxy;
pub mod h2_settings;
pub mod http_version;
pub mod tls;

use std::{
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper::{
    body::Incoming,
    client::conn::{http1, http2},
    Request, Response,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpSocket, TcpStream},
};

pub use counting::{ByteCounts, CountingStream};
pub use tls::{Alpn, TlsClient, TlsOptions};

pub use http_version::HttpVersion;

/// Longest wait for a response that should come at once (a short poll, a handshake, a `/stats`
/// read).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a TCP connect may take before it counts as `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server is.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// The `Host` header: `host:port` as given in `--url`.
    pub host: String,
    /// Path prefix from `--url` without the trailing slash (usually empty).
    pub base_path: String,
    /// Set for `https://` targets.
    pub tls: Option<Arc<TlsClient>>,
    /// With `--network`: the namespace whose sockets reach it (the client end of the link, or
    /// the server's own namespace for the publisher and `/stats`).
    pub netns: Option<Arc<feedlab_link::netns::Agent>>,
    /// A forward proxy (`--proxy squid`) the client is configured to use: plain requests go to
    /// it in absolute form, TLS and WebSockets through a CONNECT tunnel, as browsers do.
    pub forward_proxy: Option<SocketAddr>,
    /// The heads and cookie its clients' requests carry (`--heads`).
    pub dress: Arc<crate::heads::Dress>,
    /// Behind a link with a link per phone (`--network …,phones`): client `i` is phone
    /// `first_phone + i`, and every connection it opens comes from that phone's address.
    pub first_phone: Option<u32>,
}

impl Target {
    /// # Errors
    /// When the URL is not `http://` or `https://`, its host does not resolve, or the TLS
    /// settings are unusable (an unreadable `--ca`).
    pub async fn from_url(url: &url::Url, tls: &TlsOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "only http:// and https:// targets are supported, got {url}"
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
        let tls = if url.scheme() == "https" {
            Some(Arc::new(TlsClient::new(host, tls)?))
        } else {
            None
        };
        Ok(Self {
            addr,
            host: host_header,
            base_path: url.path().trim_end_matches('/').to_owned(),
            tls,
            netns: None,
            forward_proxy: None,
            dress: Arc::new(crate::heads::Dress::minimal()),
            first_phone: None,
        })
    }

    /// The same server, reached with sockets of the namespace `agent` stands in.
    pub fn via(&self, agent: &Arc<feedlab_link::netns::Agent>) -> Self {
        Self {
            netns: Some(agent.clone()),
            ..self.clone()
        }
    }

    /// The same server, its clients' requests dressed with `heads` and `cookie` as a page of
    /// its own origin would send them.
    pub fn dressed(&self, heads: Arc<crate::heads::Heads>, cookie: Option<String>) -> Self {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let origin = format!("{scheme}://{}", self.host);
        Self {
            dress: Arc::new(crate::heads::Dress::new(heads, cookie, origin)),
            ..self.clone()
        }
    }

    /// The same target for clients that are phones from `first` on (see [`Target::first_phone`]).
    pub fn phones_from(&self, first: u32) -> Self {
        Self {
            first_phone: Some(first),
            ..self.clone()
        }
    }

    /// The same server, reached through the forward proxy at `proxy`.
    pub fn through_forward_proxy(&self, proxy: SocketAddr) -> Self {
        Self {
            forward_proxy: Some(proxy),
            ..self.clone()
        }
    }

    /// `path_and_query` under the base path.
    pub fn path(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_path)
    }

    /// The absolute URI HTTP/2 needs (`:scheme` and `:authority` come from it).
    pub fn uri(&self, path_and_query: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host, self.path(path_and_query))
    }

    /// `ws://` or `wss://` for `path_and_query`.
    pub fn ws_url(&self, path_and_query: &str) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.host, self.path(path_and_query))
    }

    /// Whether the server is on this machine (its `ts` uses our wall clock).
    pub fn is_local(&self) -> bool {
        // Behind the emulated link it is still this machine, on this clock.
        self.addr.ip().is_loopback() || self.netns.is_some()
    }

    /// A GET for `path_and_query` in the form `version` needs: origin-form with `Host` for
    /// HTTP/1.x, absolute-form (`:authority`) for HTTP/2.
    pub fn get(&self, path_and_query: &str, version: HttpVersion) -> hyper::http::request::Builder {
        match version {
            HttpVersion::Http2 => {
                Request::get(self.uri(path_and_query)).version(hyper::Version::HTTP_2)
            }
            // Through a forward proxy, a plain request names the whole URL (absolute form).
            HttpVersion::Http11 | HttpVersion::Http10
                if self.forward_proxy.is_some() && self.tls.is_none() =>
            {
                Request::get(self.uri(path_and_query))
                    .version(if version == HttpVersion::Http10 {
                        hyper::Version::HTTP_10
                    } else {
                        hyper::Version::HTTP_11
                    })
                    .header(hyper::header::HOST, &self.host)
            }
            // HTTP/3 requests are made by `client::h3`; a TCP GET beside them is HTTP/1.1.
            HttpVersion::Http11 | HttpVersion::Http10 | HttpVersion::Http3 => {
                Request::get(self.path(path_and_query))
                    .version(if version == HttpVersion::Http10 {
                        hyper::Version::HTTP_10
                    } else {
                        hyper::Version::HTTP_11
                    })
                    .header(hyper::header::HOST, &self.host)
            }
        }
    }
}

/// The source address for client `index`: its phone's, behind a link per phone; else, when
/// connections are spread over `spread` loopback addresses, one of 127.0.0.1 …; `None` lets the
/// kernel choose.
pub fn source_ip(target: &Target, spread: u8, index: usize) -> Option<IpAddr> {
    if let (Some(first), Some(_)) = (target.first_phone, &target.netns) {
        let n = u32::try_from(index).ok()?.checked_add(first)?;
        return feedlab_link::phones::addr(n).map(IpAddr::V4);
    }
    if spread <= 1 || !target.addr.ip().is_loopback() || !target.addr.is_ipv4() {
        return None;
    }
    let n = (index % spread as usize) as u8 + 1;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
}

/// A counted connection, with or without TLS. Socket bytes are counted under TLS, plaintext
/// bytes above it.
#[derive(Debug)]
pub enum Stream {
    Plain(CountingStream<TcpStream>),
    Tls(Box<CountingStream<tokio_rustls::client::TlsStream<CountingStream<TcpStream>>>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens a counted TCP connection (no Nagle delay: requests are small and latency matters),
/// and for an `https://` target does the TLS handshake offering `alpn`.
///
/// # Errors
/// Connect failures (a timeout becomes `io::ErrorKind::TimedOut`) and TLS handshake failures
/// (a refused certificate is an `InvalidData` error holding the `rustls::Error`).
pub async fn connect(
    target: &Target,
    source: Option<IpAddr>,
    wire: &Arc<ByteCounts>,
    alpn: Alpn,
) -> io::Result<Stream> {
    connect_via(target, source, wire, alpn, target.tls.is_some()).await
}

/// [`connect`] for a WebSocket: through a forward proxy, always a CONNECT tunnel (what
/// browsers do for ws:// and wss://).
///
/// # Errors
/// As [`connect`]; and a proxy that refuses the CONNECT (`PermissionDenied`, its status line).
pub async fn connect_upgrade(
    target: &Target,
    source: Option<IpAddr>,
    wire: &Arc<ByteCounts>,
    alpn: Alpn,
) -> io::Result<Stream> {
    connect_via(target, source, wire, alpn, true).await
}

async fn connect_via(
    target: &Target,
    source: Option<IpAddr>,
    wire: &Arc<ByteCounts>,
    alpn: Alpn,
    tunnel: bool,
) -> io::Result<Stream> {
    let dial = target.forward_proxy.unwrap_or(target.addr);
    let connecting = async {
        let mut stream = match (source, &target.netns) {
            (source, Some(agent)) => {
                let socket = agent.tcp_socket().await?;
                if let Some(ip) = source {
                    socket.bind(SocketAddr::new(ip, 0))?;
                }
                socket.connect(dial).await?
            }
            (Some(ip), None) => {
                let socket = if ip.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(dial).await?
            }
            (None, None) => TcpStream::connect(dial).await?,
        };
        stream.set_nodelay(true)?;
        if target.forward_proxy.is_some() && tunnel {
            forward_proxy::connect_tunnel(&mut stream, target).await?;
        }
        Ok::<_, io::Error>(stream)
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let counted = CountingStream::new(stream, wire.clone());
    let Some(tls) = &target.tls else {
        return Ok(Stream::Plain(counted));
    };
    let handshake = tls
        .connector(alpn)
        .connect(tls.server_name.clone(), counted);
    let tls_stream = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    Ok(Stream::Tls(Box::new(CountingStream::plaintext(
        tls_stream,
        wire.clone(),
    ))))
}

/// The ALPN protocol an HTTP connection of `version` offers.
pub fn alpn_for(version: HttpVersion) -> Alpn {
    match version {
        HttpVersion::Http2 => Alpn::H2,
        // HTTP/3 is QUIC's ALPN (`client::h3`); its TCP connections (publishes) are HTTP/1.1.
        HttpVersion::Http10 | HttpVersion::Http11 | HttpVersion::Http3 => Alpn::Http1,
    }
}

/// The body of a client's requests: empty for its GETs, a JSON message for the `POST /publish`
/// a talking-back client sends as a stream on the same HTTP/2 connection.
pub type Body = http_body_util::Either<Empty<Bytes>, Full<Bytes>>;

/// An empty request body.
pub fn empty() -> Body {
    http_body_util::Either::Left(Empty::new())
}

/// A request body of `data`.
pub fn full(data: impl Into<Bytes>) -> Body {
    http_body_util::Either::Right(Full::new(data.into()))
}

/// The request half of a client connection, HTTP/1 or HTTP/2.
#[derive(Debug)]
pub enum Sender<B = Body> {
    H1(http1::SendRequest<B>),
    H2(http2::SendRequest<B>),
}

impl<B> Sender<B> {
    /// A second handle on the same HTTP/2 connection (its requests are further streams on it);
    /// `None` for HTTP/1, whose connection takes one request at a time.
    pub fn h2_clone(&self) -> Option<Self> {
        match self {
            Self::H1(_) => None,
            Self::H2(s) => Some(Self::H2(s.clone())),
        }
    }
}

impl<B> Sender<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Waits until the connection can take a request.
    ///
    /// # Errors
    /// When the connection is closed.
    pub async fn ready(&mut self) -> hyper::Result<()> {
        match self {
            Self::H1(s) => s.ready().await,
            Self::H2(s) => s.ready().await,
        }
    }

    /// # Errors
    /// When the request cannot be sent or the connection fails before the response head.
    pub async fn send_request(&mut self, req: Request<B>) -> hyper::Result<Response<Incoming>> {
        match self {
            Self::H1(s) => s.send_request(req).await,
            Self::H2(s) => s.send_request(req).await,
        }
    }
}

/// A client connection of `version` over a counted stream; the connection is driven by its own
/// task, whose handle resolves when the connection has closed.
///
/// # Errors
/// When the handshake fails (HTTP/2 sends its preface in the connection task, so this is rare).
pub async fn http<B>(
    stream: Stream,
    version: HttpVersion,
) -> hyper::Result<(Sender<B>, tokio::task::JoinHandle<()>)>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if version == HttpVersion::Http2 {
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(stream))
            .await?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        return Ok((Sender::H2(sender), task));
    }
    let (sender, conn) = http1::Builder::new()
        // Small buffers: at 10,000 connections every KiB here is 10 MiB of loadgen memory.
        .max_buf_size(64 * 1024)
        .handshake(TokioIo::new(stream))
        .await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((Sender::H1(sender), task))
}

/// The connection half of [`http_inline`]: a future the caller polls itself.
pub type Connection = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A client connection driven by the caller's own task (poll it alongside each request), which
/// saves a task and two cross-task wake-ups per request on the HTTP/1 polling hot path. HTTP/2
/// must answer pings and settings between requests, so its connection gets a task and the
/// returned future only waits for it.
///
/// # Errors
/// When the handshake fails.
pub async fn http_inline(
    stream: Stream,
    version: HttpVersion,
) -> hyper::Result<(Sender, Connection)> {
    if version == HttpVersion::Http2 {
        let (sender, task) = http(stream, version).await?;
        return Ok((
            sender,
            Box::pin(async move {
                let _ = task.await;
            }),
        ));
    }
    let (sender, conn) = http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake(TokioIo::new(stream))
        .await?;
    Ok((
        Sender::H1(sender),
        Box::pin(async move {
            let _ = conn.await;
        }),
    ))
}

/// A short key for an I/O error, for the report's error table.
pub fn io_error_kind(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect_refused",
        io::ErrorKind::PermissionDenied => "proxy_refused",
        io::ErrorKind::TimedOut => "connect_timeout",
        io::ErrorKind::ConnectionReset => "reset",
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse => "no_source_port",
        _ if e.raw_os_error() == Some(24) => "too_many_open_files",
        io::ErrorKind::InvalidData if tls::is_certificate_error(e) => "tls_certificate",
        io::ErrorKind::InvalidData if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => "tls",
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
