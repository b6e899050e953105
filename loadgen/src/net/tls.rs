//! TLS for `https://`/`wss://` targets. The handshake runs over the counting stream, so the
//! report's bytes are what TLS puts on the wire (records, handshakes, alerts); a second counter
//! inside TLS keeps the plaintext, which is what the server counts and what `/stats` is checked
//! against.
//!
//! ALPN is chosen per connection, not per target: the HTTP transports offer `h2` only when a
//! phase asks for HTTP/2, everything else (WebSockets, the publisher, `/stats`) offers
//! `http/1.1`, so a phase measures exactly the protocol it names.

use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{pem::PemObject as _, CertificateDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// Where the system's CA bundle usually is, when neither `--ca` nor `--insecure` is given.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Which protocol a connection asks for in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    Http1,
    H2,
}

/// How loadgen trusts the server: `--ca` roots (or the system's), or nothing at all.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub ca: Option<std::path::PathBuf>,
    /// `--insecure`: accept any certificate ([`AcceptAnyCertificateForTests`]).
    pub insecure: bool,
}

/// The client side of TLS for one target.
#[derive(Clone)]
pub struct TlsClient {
    http1: tokio_rustls::TlsConnector,
    h2: tokio_rustls::TlsConnector,
    /// The same trust with ALPN `h3`, for QUIC (`--transports wt`).
    pub h3: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
    insecure: bool,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// # Errors
    /// When the CA file cannot be read or holds no certificate, or the host is not a valid
    /// server name.
    pub fn new(host: &str, opts: &TlsOptions) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = |alpn: &[u8]| -> anyhow::Result<ClientConfig> {
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?;
            let mut c = if opts.insecure {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificateForTests(
                        provider.clone(),
                    )))
                    .with_no_client_auth()
            } else {
                builder
                    .with_root_certificates(roots(opts.ca.as_deref())?)
                    .with_no_client_auth()
            };
            c.alpn_protocols = vec![alpn.to_vec()];
            Ok(c)
        };
        let name = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Self {
            http1: Arc::new(config(b"http/1.1")?).into(),
            h2: Arc::new(config(b"h2")?).into(),
            h3: Arc::new(config(b"h3")?),
            server_name: ServerName::try_from(name.to_owned())
                .with_context(|| format!("{name} is not a valid TLS server name"))?,
            insecure: opts.insecure,
        })
    }

    /// Whether this client checks the server's certificate.
    pub fn verifies(&self) -> bool {
        !self.insecure
    }

    pub fn connector(&self, alpn: Alpn) -> &tokio_rustls::TlsConnector {
        match alpn {
            Alpn::Http1 => &self.http1,
            Alpn::H2 => &self.h2,
        }
    }
}

/// Roots from `ca` (PEM, one or more certificates), else the system bundle.
fn roots(ca: Option<&Path>) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let path = match ca {
        Some(p) => p.to_owned(),
        None => match SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
            Some(p) => p.to_owned(),
            // No roots: every certificate will be refused, with rustls's own reason.
            None => return Ok(store),
        },
    };
    let pem = std::fs::read(&path).with_context(|| format!("reading --ca {}", path.display()))?;
    let mut n = 0;
    // rustls-pki-types' own PEM parser (rustls-pemfile is unmaintained, RUSTSEC-2025-0134).
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.with_context(|| format!("parsing {}", path.display()))?;
        store
            .add(cert)
            .with_context(|| format!("adding a certificate of {}", path.display()))?;
        n += 1;
    }
    anyhow::ensure!(
        n > 0 || ca.is_none(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(store)
}

/// Accepts every server certificate without looking at it (signatures of the handshake are
/// still checked, so the connection works, but anyone can pretend to be the server).
/// **Only for tests and benchmarks on a trusted machine** (`--insecure`).
#[derive(Debug)]
pub struct AcceptAnyCertificateForTests(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificateForTests {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether an I/O error is rustls refusing the server's certificate.
pub fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                cur = Some(inner);
                continue;
            }
        }
        cur = err.source();
    }
    false
}
