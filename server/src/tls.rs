//! `https://` and `wss://` with rustls: a certificate from PEM files, or one generated at start.
//!
//! TLS is where `ws://` and `wss://` differ: the same frames, but encrypted, so proxies that do
//! not understand WebSockets cannot meddle with the upgrade, at the cost of a handshake and
//! per-record overhead that the load generator measures.

use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::config::Config;

/// The TLS settings for `--bind`, or `None` for plain TCP.
///
/// # Errors
/// Unreadable or invalid PEM files, or a certificate rustls refuses.
pub fn server_config(config: &Config) -> anyhow::Result<Option<rustls::ServerConfig>> {
    let (certs, key) = if config.tls_self_signed {
        let generated = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .context("generating a self-signed certificate")?;
        if let Some(path) = &config.tls_write_cert {
            // Written whole or not at all: clients wait for the file to appear.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, generated.cert.pem())
                .and_then(|()| std::fs::rename(&partial, path))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let der = generated.cert.der().clone();
        println!(
            "tls: self-signed certificate for localhost, SHA-256 fingerprint {}",
            fingerprint(&der)
        );
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der()));
        (vec![der], key)
    } else if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        // rustls-pki-types' own PEM parser (rustls-pemfile is unmaintained, RUSTSEC-2025-0134).
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .with_context(|| format!("reading certificates from {}", cert.display()))?;
        anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading the private key from {}", key.display()))?;
        (certs, key)
    } else {
        return Ok(None);
    };
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("certificate and key do not form a usable pair")?;
    Ok(Some(tls))
}

/// `AB:CD:…`, the form browsers show.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
