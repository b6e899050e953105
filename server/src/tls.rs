//! `https://` and `wss://` with rustls: a certificate from PEM files, or one generated at start.
//!
//! TLS is where `ws://` and `wss://` differ: the same frames, but encrypted, so proxies that do
//! not understand WebSockets cannot meddle with the upgrade, at the cost of a handshake and
//! per-record overhead that the load generator measures.
//!
//! A generated certificate is valid for centuries, which suits a browser told to trust it once
//! but not WebTransport's `serverCertificateHashes`: a page may trust a certificate by its
//! SHA-256 hash only if it is ECDSA P-256 and valid for at most 14 days. So with `--quic` the
//! server makes a second certificate for QUIC, on the same key (one SPKI for both, which is what
//! Chromium's `--ignore-certificate-errors-spki-list` pins), valid for `--quic-cert-validity`
//! and made again on that key before it expires ([`QuicCertMaker`], renewed by the QUIC
//! listener), and tells pages its hash (`GET /quic`). A client that trusts the written TCP certificate
//! (`--tls-write-cert`, loadgen's `--ca`) accepts the QUIC one too: same name, same key, so it
//! verifies as issued by the other. With `--tls-cert` both listeners serve that chain.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use rustls::pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::config::Config;

/// The names a generated certificate is for.
const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How far before it is made a generated QUIC certificate becomes valid, at most: a client
/// whose clock is a little behind still accepts it. Counted in `--quic-cert-validity`, of which
/// it takes at most a tenth (for the short validities of tests).
const CLOCK_SLACK: Duration = Duration::from_secs(60);

/// The TLS settings of both listeners.
#[derive(Debug)]
pub struct Tls {
    /// For `--bind` over TCP.
    pub tcp: rustls::ServerConfig,
    /// For the QUIC listener: the TCP one's, or with `--tls-self-signed --quic` the short-lived
    /// certificate's.
    pub quic: rustls::ServerConfig,
    /// The short-lived QUIC certificate, when the server made one, and what makes the next.
    pub quic_cert: Option<ShortLived>,
}

/// The short-lived QUIC certificate the server made: what pages trust by hash, what rustls
/// serves, and what makes its successor.
#[derive(Debug)]
pub struct ShortLived {
    pub cert: QuicCert,
    pub certified: Arc<rustls::sign::CertifiedKey>,
    pub maker: Arc<QuicCertMaker>,
}

/// What a page needs to trust the generated QUIC certificate by its hash.
#[derive(Debug, Clone)]
pub struct QuicCert {
    /// SHA-256 of the certificate (DER): `serverCertificateHashes`' value.
    pub sha256: [u8; 32],
    /// SHA-256 of its SubjectPublicKeyInfo, the TCP certificate's too (one key).
    pub spki_sha256: [u8; 32],
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// What makes the short-lived QUIC certificate: the TCP certificate's key and names, and how
/// long each is valid; kept so the QUIC listener can make the next before one expires
/// ([`crate::quic`]'s renewal).
pub struct QuicCertMaker {
    key: rcgen::KeyPair,
    names: Vec<String>,
    validity: Duration,
    spki_sha256: [u8; 32],
}

impl std::fmt::Debug for QuicCertMaker {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicCertMaker")
            .field("names", &self.names)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

impl QuicCertMaker {
    /// A new certificate, valid from a little before now (at most [`CLOCK_SLACK`]) for the
    /// validity, to the second: what a page trusts by hash, and what rustls serves.
    ///
    /// # Errors
    /// The certificate cannot be made or signed (a clock out of range, a key rustls refuses).
    pub fn make(&self) -> anyhow::Result<(QuicCert, Arc<rustls::sign::CertifiedKey>)> {
        let slack = CLOCK_SLACK.min(self.validity / 10);
        let not_before = whole_seconds(SystemTime::now() - slack)?;
        let not_after = whole_seconds(not_before + self.validity)?;
        let mut params = rcgen::CertificateParams::new(self.names.clone())
            .context("the QUIC certificate's names")?;
        params.not_before = offset_date_time(not_before)?;
        params.not_after = offset_date_time(not_after)?;
        let cert = params
            .self_signed(&self.key)
            .context("generating the QUIC certificate")?;
        let der = cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_ecdsa_type(&key)
            .context("the QUIC certificate's key")?;
        let record = QuicCert {
            sha256: Sha256::digest(der.as_ref()).into(),
            spki_sha256: self.spki_sha256,
            not_before,
            not_after,
        };
        Ok((
            record,
            Arc::new(rustls::sign::CertifiedKey::new(vec![der], signing)),
        ))
    }

    /// How long each certificate it makes is valid (`--quic-cert-validity`).
    pub fn validity(&self) -> Duration {
        self.validity
    }
}

/// The TLS settings for `--bind` (and the QUIC listener), or `None` for plain TCP.
///
/// # Errors
/// Unreadable or invalid PEM files, or a certificate rustls refuses.
pub fn server_config(config: &Config) -> anyhow::Result<Option<Tls>> {
    if config.tls_self_signed {
        return self_signed(config).map(Some);
    }
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    // rustls-pki-types' own PEM parser (rustls-pemfile is unmaintained, RUSTSEC-2025-0134).
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading certificates from {}", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key from {}", key.display()))?;
    let tcp = rustls_config(certs, key)?;
    Ok(Some(Tls {
        quic: tcp.clone(),
        tcp,
        quic_cert: None,
    }))
}

/// A certificate for [`SELF_SIGNED_NAMES`] valid for centuries, and with `--quic` a second one
/// on the same key valid for `--quic-cert-validity`.
fn self_signed(config: &Config) -> anyhow::Result<Tls> {
    let key_pair = rcgen::KeyPair::generate().context("generating a key pair")?;
    let names: Vec<String> = SELF_SIGNED_NAMES.map(str::to_owned).into();
    let cert = rcgen::CertificateParams::new(names.clone())
        .and_then(|params| params.self_signed(&key_pair))
        .context("generating a self-signed certificate")?;
    if let Some(path) = &config.tls_write_cert {
        // Written whole or not at all: clients wait for the file to appear.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, cert.pem())
            .and_then(|()| std::fs::rename(&partial, path))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let der = cert.der().clone();
    let spki_sha256: [u8; 32] = Sha256::digest(key_pair.public_key_der()).into();
    println!(
        "tls: self-signed certificate for localhost, SHA-256 fingerprint {}, SPKI SHA-256 {}",
        fingerprint(&der),
        base64(&spki_sha256)
    );
    let key = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let tcp = rustls_config(vec![der], key())?;
    if !config.quic.enabled {
        return Ok(Tls {
            quic: tcp.clone(),
            tcp,
            quic_cert: None,
        });
    }
    let quic = key();
    let maker = QuicCertMaker {
        key: key_pair,
        names,
        validity: config.quic.quic_cert_validity,
        spki_sha256,
    };
    let (quic_cert, certified) = maker.make()?;
    let quic_cert = ShortLived {
        cert: quic_cert,
        certified,
        maker: Arc::new(maker),
    };
    println!(
        "tls: QUIC certificate valid for {} (--quic-cert-validity), SHA-256 {}",
        humantime::format_duration(config.quic.quic_cert_validity),
        base64(&quic_cert.cert.sha256)
    );
    Ok(Tls {
        quic: rustls_config(quic_cert.certified.cert.clone(), quic)?,
        tcp,
        quic_cert: Some(quic_cert),
    })
}

/// `t` truncated to the second, as a certificate holds it.
fn whole_seconds(t: SystemTime) -> anyhow::Result<SystemTime> {
    let secs = t.duration_since(UNIX_EPOCH).context("clock before 1970")?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs.as_secs()))
}

fn rustls_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<rustls::ServerConfig> {
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not form a usable pair")
}

/// `t` to the second, as rcgen takes it.
fn offset_date_time(t: SystemTime) -> anyhow::Result<time::OffsetDateTime> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs();
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs)?)
        .context("a certificate date out of range")
}

/// Standard base64, the form `--ignore-certificate-errors-spki-list` and `GET /quic` use.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `AB:CD:…`, the form browsers show.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
