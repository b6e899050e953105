//! `--tls-cert`/`--tls-key`: the floor over TLS, rustls on each connection (tokio-rustls) and
//! nothing else, so that the real server's TLS costs can be read against what TLS itself costs.
//!
//! The same library and settings as the real server's (rustls with ring, its safe default
//! protocol versions, TLS 1.3 tickets as rustls sends them), but ALPN offers only `http/1.1`:
//! the floor speaks nothing else. A handshake that does not finish within
//! [`HANDSHAKE_TIMEOUT`] (the real server's `--request-timeout` default) is dropped.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use rustls::pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::{server::TlsStream, TlsAcceptor};

/// How long a client has for its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Acceptor(TlsAcceptor);

impl Acceptor {
    /// rustls' server configuration from a PEM certificate chain and private key.
    ///
    /// # Errors
    /// Unreadable or invalid files, or a pair rustls refuses.
    pub fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .with_context(|| format!("reading certificates from {}", cert.display()))?;
        anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading the private key from {}", key.display()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not form a usable pair")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self(TlsAcceptor::from(Arc::new(config))))
    }

    /// The handshake; `None` when it failed or took too long.
    pub async fn handshake(&self, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.0.accept(stream)).await {
            Ok(Ok(tls)) => Some(tls),
            _ => None,
        }
    }
}
