//! `GET /quic`: what a page needs to open WebTransport to this server, or why it cannot.
//!
//! A page cannot find out by trying: a refused `new WebTransport` tells a script nothing about
//! why (as with a WebSocket) and leaves an error in the console. So the server says whether its
//! QUIC listener serves WebTransport (`--quic`) or HTTP/3 (`--quic-http3`), on which UDP port
//! (`--bind`'s), and, when it made the QUIC certificate itself, that certificate's SHA-256 for
//! `new WebTransport(url, {serverCertificateHashes})` and its validity
//! ([`crate::tls`], `--quic-cert-validity`): `certificate`, the one served now, and
//! `certificates`, every one a page may name, that one first and then those it replaced
//! (renewed before they expire, `--quic-cert-renew-before`) until they expire; and the
//! `Alt-Svc` both TCP paths add.
//!
//! Apart from [`crate::quic`]: the routes and the fast path read these, and the QUIC listener
//! itself sits above the routes (its HTTP/3 bridge runs the actix-web app).

use std::time::SystemTime;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::{config::Config, state::AppState, tls, transport::Transport};

/// The `Alt-Svc` value that points browsers at the HTTP/3 endpoint on `port` (UDP), when the
/// server serves HTTP/3 there (`--quic --quic-http3`).
pub fn alt_svc(config: &Config, port: u16) -> Option<String> {
    (config.quic.enabled && config.quic.http3).then(|| format!("h3=\":{port}\"; ma=86400"))
}

pub async fn handler(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let quic = &state.config.quic;
    let listening = state.quic.get();
    let now = SystemTime::now();
    let cert = listening.and_then(|l| l.current());
    let accepted = listening.map(|l| l.accepted(now)).unwrap_or_default();
    let expired = cert.as_ref().filter(|c| c.not_after <= now);
    let (serves, why) = match (quic.enabled, quic.http3) {
        (false, _) => (
            None,
            Some(
                "the server runs without --quic; start it with --quic and --tls-self-signed \
                 (or --tls-cert) for WebTransport"
                    .to_owned(),
            ),
        ),
        (true, true) => (
            Some("http3"),
            Some(
                "this server's QUIC listener serves HTTP/3 (--quic-http3) instead of \
                 WebTransport: one or the other per server"
                    .to_owned(),
            ),
        ),
        (true, false) => match expired {
            Some(c) => (
                Some("webtransport"),
                Some(format!(
                    "the QUIC certificate expired at {} (--quic-cert-validity) and was not \
                     renewed (the server's log says why); restart the server",
                    humantime::format_rfc3339_seconds(c.not_after)
                )),
            ),
            None => (Some("webtransport"), None),
        },
    };
    let certificate = cert.as_ref().map(view);
    let certificates: Vec<_> = accepted.iter().map(view).collect();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "serves": serves,
            "why": why,
            "port": listening.map_or_else(|| req.app_config().local_addr().port(), |l| l.port),
            "path": Transport::Wt.path(),
            "certificate": certificate,
            "certificates": certificates,
        }))
}

/// A certificate as `/quic` shows it.
fn view(c: &tls::QuicCert) -> serde_json::Value {
    json!({
        "sha256": tls::base64(&c.sha256),
        "spki_sha256": tls::base64(&c.spki_sha256),
        "not_before": humantime::format_rfc3339_seconds(c.not_before).to_string(),
        "not_after": humantime::format_rfc3339_seconds(c.not_after).to_string(),
    })
}
