//! A floor process per test, and a raw HTTP/1.1 client that counts every byte it reads.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpStream,
};

/// A client connection, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The built `floor` binary on `127.0.0.1:<free port>`, killed when dropped.
pub struct Floor {
    pub addr: SocketAddr,
    /// `http`, or `https` with `--tls-cert`.
    pub scheme: String,
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl Floor {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_floor"))
            .args(["--bind", "127.0.0.1:0", "--workers", "1"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting floor");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let (scheme, addr) = feedlab_testkit::parse_listening_line(&line)
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Self {
            addr,
            scheme: scheme.to_owned(),
            child,
            _stdout: stdout,
        }
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection (TCP, or TLS with [`Conn::open_tls`]), read through a buffer; `bytes_read`
/// counts what came off it (decrypted, over TLS).
pub struct Conn {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    read: usize,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Self {
        Self::over(Box::new(TcpStream::connect(addr).await.unwrap()))
    }

    /// A TLS connection that trusts `cert` and offers `alpn`; the handshake's error when it
    /// fails.
    pub async fn open_tls(
        addr: SocketAddr,
        cert: &std::path::Path,
        alpn: &[&[u8]],
    ) -> std::io::Result<Self> {
        use rustls::pki_types::{pem::PemObject as _, CertificateDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        Ok(Self::over(Box::new(tls)))
    }

    fn over(stream: Box<dyn Io>) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            read: 0,
        }
    }

    pub fn bytes_read(&self) -> usize {
        self.read
    }

    pub async fn send(&mut self, raw: &str) {
        self.stream.write_all(raw.as_bytes()).await.unwrap();
        // Over TLS, what rustls still holds goes out.
        self.stream.flush().await.unwrap();
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed early");
        self.read += n;
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn take_until(&mut self, delimiter: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = self
                .buf
                .windows(delimiter.len())
                .position(|w| w == delimiter)
            {
                let out = self.buf[..at].to_vec();
                self.buf.drain(..at + delimiter.len());
                return out;
            }
            self.fill().await;
        }
    }

    async fn take(&mut self, len: usize) -> Vec<u8> {
        while self.buf.len() < len {
            self.fill().await;
        }
        self.buf.drain(..len).collect()
    }

    /// The status and the whole head (status line and headers, each ending in CRLF).
    pub async fn head(&mut self) -> (u16, String) {
        let head = String::from_utf8(self.take_until(b"\r\n\r\n").await).unwrap() + "\r\n";
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        (status, head)
    }

    /// Sends a request and reads a `Content-Length` response.
    pub async fn request(&mut self, raw: &str) -> (u16, String, Vec<u8>) {
        self.send(raw).await;
        self.response().await
    }

    /// Reads a `Content-Length` response.
    pub async fn response(&mut self) -> (u16, String, Vec<u8>) {
        let (status, head) = self.head().await;
        let len = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().unwrap())
            })
            .unwrap_or_else(|| {
                // A 204 has no body, and so no length.
                assert_eq!(status, 204, "Content-Length expected in {head:?}");
                0
            });
        let body = self.take(len).await;
        (status, head, body)
    }

    /// Whether the server closed the connection (EOF) with nothing more unread.
    pub async fn at_eof(&mut self) -> bool {
        let mut byte = [0u8; 1];
        self.buf.is_empty() && matches!(self.stream.read(&mut byte).await, Ok(0))
    }

    /// Whether nothing arrives for `d`.
    pub async fn quiet_for(&mut self, d: std::time::Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        tokio::time::timeout(d, self.fill()).await.is_err()
    }

    /// The payload of the next server WebSocket frame (unmasked, under 64 KiB).
    pub async fn take_frame(&mut self) -> Vec<u8> {
        let header = self.take(2).await;
        let len = match header[1] & 0x7f {
            126 => {
                let ext = self.take(2).await;
                usize::from(u16::from_be_bytes([ext[0], ext[1]]))
            }
            n => usize::from(n),
        };
        self.take(len).await
    }

    /// The data of the next chunk of a chunked body (empty for the last chunk).
    pub async fn chunk(&mut self) -> Vec<u8> {
        let size = String::from_utf8(self.take_until(b"\r\n").await).unwrap();
        let len = usize::from_str_radix(size.trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size:?}"));
        let data = self.take(len).await;
        assert_eq!(self.take(2).await, b"\r\n", "chunk ends in CRLF");
        data
    }
}
