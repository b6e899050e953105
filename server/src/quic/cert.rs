//! Renewing the short-lived QUIC certificate the server made, so a server that runs longer than
//! `--quic-cert-validity` never serves an expired one.
//!
//! Browsers trust a self-signed WebTransport server by its certificate's hash only for a
//! certificate valid for at most 14 days, so one certificate made at start-up cannot last. Once
//! less than `--quic-cert-renew-before` is left of the one served, [`renew`] makes the next on the
//! same key ([`QuicCertMaker`]) and [`Current`], the listener's rustls certificate resolver,
//! serves it to every handshake from then on. Connections already open keep the certificate
//! they were handshaken with: TLS looks at it only once. `GET /quic` then names the new hash
//! first and the old ones until they expire ([`crate::state::QuicListening`]); a page passes them all as
//! `serverCertificateHashes`.
//!
//! The wait is counted on the wall clock (certificates expire by it), re-read at least every
//! [`RECHECK`], so a clock step or a suspended machine does not leave the server past its time.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use parking_lot::RwLock;
use rustls::{
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio_util::sync::CancellationToken;

use crate::{state::AppState, tls::QuicCertMaker};

/// Longest sleep before the time left is looked at again.
const RECHECK: Duration = Duration::from_secs(60);

/// After a certificate could not be made: when the next try is, at most (sooner if less is
/// left of the one served).
const RETRY: Duration = Duration::from_secs(60);

/// The certificate the QUIC listener serves to a new handshake: the newest made.
#[derive(Debug)]
pub struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    pub fn new(first: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(Self(RwLock::new(first)))
    }

    fn set(&self, next: Arc<CertifiedKey>) {
        *self.0.write() = next;
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

/// Makes and serves the next certificate whenever less than `renew_before` is left of the one
/// served, until `stop`.
pub async fn renew(
    maker: Arc<QuicCertMaker>,
    current: Arc<Current>,
    state: Arc<AppState>,
    stop: CancellationToken,
) {
    let Some(listening) = state.quic.get() else {
        return;
    };
    let renew_before = state.config.quic.cert_renew_before();
    loop {
        let Some(served) = listening.current() else {
            return;
        };
        let due = served.not_after.checked_sub(renew_before);
        let wait = due
            .and_then(|due| due.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait.min(RECHECK)) => continue,
            }
        }
        match maker.make() {
            Ok((record, certified)) => {
                current.set(certified);
                println!(
                    "tls: QUIC certificate renewed ({} left of the last, --quic-cert-renew-before), \
                     valid until {}, SHA-256 {}",
                    humantime::format_duration(left(served.not_after)),
                    humantime::format_rfc3339_seconds(record.not_after),
                    crate::tls::base64(&record.sha256)
                );
                listening.renewed(record);
            }
            Err(e) => {
                tracing::error!("renewing the QUIC certificate: {e:#}");
                let retry = RETRY
                    .min(left(served.not_after) / 2)
                    .max(Duration::from_secs(1));
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(retry) => {}
                }
            }
        }
    }
}

/// What is left until `t`, to the second.
fn left(t: SystemTime) -> Duration {
    let d = t.duration_since(SystemTime::now()).unwrap_or_default();
    Duration::from_secs(d.as_secs())
}
