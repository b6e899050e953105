//! Whether an HTTP/2 server (a proxy's TLS front) allows WebSockets over HTTP/2 (RFC 8441): a
//! browser carries a WebSocket as a stream of its HTTP/2 connection only when the server's
//! SETTINGS carry `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`; otherwise it opens a separate
//! HTTP/1.1 connection for it, which is what loadgen's WebSocket clients always do.
//!
//! Read with the `h2` crate (the one inside hyper) rather than through hyper's client, which
//! keeps the peer's SETTINGS to itself. Only the handshake and one request are made here; the
//! measured traffic stays on loadgen's one HTTP/2 client ([`super::http`]).

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;

use super::{Alpn, TlsClient, TlsOptions};

/// How long the probe may take: the handshake, the SETTINGS and one small answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `addr` over TLS offering only `h2`, and says whether its SETTINGS enable the
/// extended CONNECT of RFC 8441.
///
/// # Errors
/// When it does not connect, does not negotiate h2 by ALPN, or does not answer in time.
pub async fn extended_connect(addr: SocketAddr, tls: &TlsOptions) -> anyhow::Result<bool> {
    tokio::time::timeout(PROBE_TIMEOUT, probe(addr, tls))
        .await
        .with_context(|| {
            format!("{addr} did not complete an HTTP/2 handshake within {PROBE_TIMEOUT:?}")
        })?
}

async fn probe(addr: SocketAddr, tls: &TlsOptions) -> anyhow::Result<bool> {
    let client = TlsClient::new(&addr.ip().to_string(), tls)?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let stream = client
        .connector(Alpn::H2)
        .connect(client.server_name.clone(), tcp)
        .await
        .context("TLS handshake")?;
    anyhow::ensure!(
        stream.get_ref().1.alpn_protocol() == Some(b"h2"),
        "{addr} did not offer h2 by ALPN"
    );
    let (send, connection) = h2::client::handshake(stream)
        .await
        .context("HTTP/2 handshake")?;
    let driver = tokio::spawn(connection);
    // The server's SETTINGS open its side of the connection, so they have been read by the
    // time any answer arrives.
    let mut send = send.ready().await.context("HTTP/2 connection")?;
    let request = hyper::Request::get(format!("https://{addr}/stats"))
        .body(())
        .context("the probe's request")?;
    let (answer, _) = send
        .send_request(request, true)
        .context("sending the probe's request")?;
    let answered = answer.await;
    let enabled = send.is_extended_connect_protocol_enabled();
    driver.abort();
    answered.context("the probe's answer")?;
    Ok(enabled)
}
