//! `https://`/`wss://` with rustls, HTTP/2 by ALPN, and h2c on the plain port, each checked with
//! a real client (curl, Python `websockets`).

use std::process::Command;

use crate::common::*;

/// Runs curl with `args` and returns (stdout, the negotiated HTTP version).
async fn curl(args: Vec<String>) -> (String, String) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-s", "--max-time", "2", "-w", "\n%{http_version}"])
            .args(&args)
            .output()
            .expect("curl runs")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, version) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (body.to_owned(), version.to_owned())
}

fn tls_server(dir: &tempfile::TempDir) -> (TestServer, String) {
    let cert = dir.path().join("cert.pem").display().to_string();
    let srv = TestServer::start(&["--tls-self-signed", "--tls-write-cert", &cert]);
    (srv, cert)
}

#[tokio::test]
async fn https_serves_polling_and_sse_over_http2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, cert) = tls_server(&dir);
    assert!(srv.url("/").starts_with("https://"));
    let seq = tokio::task::spawn_blocking({
        let (url, cert) = (srv.url("/publish"), cert.clone());
        move || {
            Command::new("curl")
                .args(["-s", "--cacert", &cert, "-d", "{\"over\":\"tls\"}", &url])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&seq.stdout), "{\"seq\":1}");

    let (body, version) = curl(vec![
        "--cacert".into(),
        cert.clone(),
        srv.url("/poll?since=0"),
    ])
    .await;
    assert_eq!(version, "2", "ALPN picks HTTP/2");
    assert!(body.contains("\"over\":\"tls\""), "{body}");

    let (body, version) = curl(vec![
        "--cacert".into(),
        cert.clone(),
        "--http1.1".into(),
        srv.url("/long-poll?since=0"),
    ])
    .await;
    assert_eq!(version, "1.1");
    assert!(body.contains("\"seq\":1"));

    let (body, version) = curl(vec![
        "--cacert".into(),
        cert,
        "-N".into(),
        srv.url("/sse?since=0"),
    ])
    .await;
    assert_eq!(version, "2");
    assert!(body.contains("id: 1\ndata: {\"seq\":1,"), "{body}");
}

#[tokio::test]
async fn plain_port_speaks_h2c_with_prior_knowledge_when_enabled() {
    let srv = TestServer::start(&["--h2c"]);
    publish(&srv, serde_json::json!("h2c")).await;
    let (body, version) = curl(vec![
        "--http2-prior-knowledge".into(),
        srv.url("/poll?since=0"),
    ])
    .await;
    assert_eq!(version, "2");
    assert!(body.contains("\"h2c\""));
    let (body, version) = curl(vec![
        "--http2-prior-knowledge".into(),
        "-N".into(),
        srv.url("/sse?since=0"),
    ])
    .await;
    assert_eq!(version, "2");
    assert!(body.contains("id: 1\n"));
}

#[tokio::test]
async fn wss_works_with_a_real_client_that_verifies_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, cert) = tls_server(&dir);
    for i in 0..2 {
        let (body, _) = curl(vec![
            "--cacert".into(),
            cert.clone(),
            "-d".into(),
            i.to_string(),
            srv.url("/publish"),
        ])
        .await;
        assert!(body.contains("\"seq\""), "{body}");
    }
    let script = format!(
        "import asyncio, json, ssl, websockets\n\
         ctx = ssl.create_default_context(cafile={cert:?})\n\
         async def main():\n\
         \x20   async with websockets.connect({url:?}, ssl=ctx) as ws:\n\
         \x20       print(json.loads(await ws.recv())['seq'], json.loads(await ws.recv())['seq'])\n\
         asyncio.run(asyncio.wait_for(main(), 10))\n",
        url = srv.ws_url("/ws?since=0")
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 2\n");
}

#[test]
fn tls_settings_are_checked() {
    assert!(
        server::Config::from_args(["--tls-cert", "c.pem"]).is_err(),
        "a cert needs a key"
    );
    assert!(
        server::Config::from_args(["--tls-self-signed", "--tls-cert", "c", "--tls-key", "k"])
            .is_err()
    );
    let missing = server::Config::from_args([
        "--tls-cert",
        "/nonexistent/c.pem",
        "--tls-key",
        "/nonexistent/k.pem",
    ])
    .unwrap();
    let err = server::tls::server_config(&missing).unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/c.pem"), "{err:#}");
}

#[tokio::test]
async fn same_origin_writes_work_over_http2_where_there_is_no_host_header() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, cert) = tls_server(&dir);
    let origin = format!("Origin: https://{}", srv.addr);
    for version in ["--http2", "--http1.1"] {
        let (body, v) = curl(vec![
            "--cacert".into(),
            cert.clone(),
            version.into(),
            "-H".into(),
            origin.clone(),
            "-d".into(),
            "1".into(),
            srv.url("/publish"),
        ])
        .await;
        assert!(body.contains("\"seq\""), "{version} ({v}): {body}");
    }
}

/// `--tls-cert`/`--tls-key` read from PEM files (rustls-pki-types' parser): a key in PKCS#8 and
/// a chain of two certificates are accepted; a file without a key or a certificate is refused
/// with the file's name.
#[tokio::test]
async fn pem_files_are_read_and_bad_ones_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let pem = generated.cert.pem();
    std::fs::write(&cert, format!("{pem}{pem}")).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let config = server::Config::from_args(["--tls-cert", &cert_s, "--tls-key", &key_s]).unwrap();
    assert!(server::tls::server_config(&config).unwrap().is_some());

    let srv = TestServer::start(&["--tls-cert", &cert_s, "--tls-key", &key_s]);
    let url = srv.url("/healthz").replace("127.0.0.1", "localhost");
    let (body, _) = curl(vec![
        "--cacert".into(),
        cert_s.clone(),
        "--resolve".into(),
        format!("localhost:{}:127.0.0.1", srv.addr.port()),
        url,
    ])
    .await;
    assert_eq!(body, "ok");

    // The certificate given as the key, and the key as the certificate.
    let swapped = server::Config::from_args(["--tls-cert", &key_s, "--tls-key", &cert_s]).unwrap();
    let err = format!("{:#}", server::tls::server_config(&swapped).unwrap_err());
    assert!(err.contains(&key_s), "{err}");
    let no_key = server::Config::from_args(["--tls-cert", &cert_s, "--tls-key", &cert_s]).unwrap();
    let err = format!("{:#}", server::tls::server_config(&no_key).unwrap_err());
    assert!(
        err.contains("private key") && err.contains(&cert_s),
        "{err}"
    );
}
