//! `--tls-cert`/`--tls-key`: the same feed, bytes and answers over TLS, HTTP/1.1 by ALPN only.

use serde_json::Value;

use crate::{open_sse_on, publish, stats, support::Conn, within};
use support_tls::Certs;

const HTTP_1_1: &[&[u8]] = &[b"http/1.1"];
const H2: &[&[u8]] = &[b"h2"];

mod support_tls {
    /// A self-signed certificate for localhost and its key, as PEM files.
    pub struct Certs {
        pub dir: tempfile::TempDir,
    }

    impl Certs {
        pub fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let generated =
                rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
            std::fs::write(dir.path().join("cert.pem"), generated.cert.pem()).unwrap();
            std::fs::write(
                dir.path().join("key.pem"),
                generated.key_pair.serialize_pem(),
            )
            .unwrap();
            Self { dir }
        }

        pub fn cert(&self) -> std::path::PathBuf {
            self.dir.path().join("cert.pem")
        }

        pub fn args(&self) -> Vec<String> {
            let path = |f: &str| self.dir.path().join(f).display().to_string();
            vec![
                "--tls-cert".into(),
                path("cert.pem"),
                "--tls-key".into(),
                path("key.pem"),
            ]
        }
    }
}

#[tokio::test]
async fn over_tls_streams_polls_and_publishes_carry_the_same_bytes() {
    let certs = Certs::new();
    let args = certs.args();
    let floor = crate::support::Floor::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(floor.scheme, "https");
    let cert = certs.cert();
    within(async {
        let open = || Conn::open_tls(floor.addr, &cert, HTTP_1_1);
        let mut sse = open().await.unwrap();
        open_sse_on(&mut sse, "", "").await;
        let mut ws = open().await.unwrap();
        ws.send(
            "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await;
        assert_eq!(ws.head().await.0, 101);
        let mut long = open().await.unwrap();
        long.send("GET /long-poll?since=0&timeout_ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        let mut publisher = open().await.unwrap();
        assert_eq!(publish(&mut publisher, r#"{"n": 1}"#).await, 1);

        let record = String::from_utf8(sse.chunk().await).unwrap();
        assert!(record.starts_with("id: 1\ndata: {\"seq\":1,"), "{record}");
        // One unmasked text frame: the SSE record's JSON.
        let json = record["id: 1\ndata: ".len()..].trim_end();
        let frame = ws.take_frame().await;
        assert_eq!(frame, json.as_bytes());
        let (status, _, body) = long.response().await;
        assert_eq!(status, 200);
        let polled: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(polled["events"][0]["data"]["n"], 1, "{polled}");
        let (status, _, body) = publisher
            .request("GET /poll?since=0 HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        assert_eq!(status, 200);
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["next"], 1);
        let s = stats(&mut publisher).await;
        assert_eq!(s["transports"]["sse"]["events_delivered"], 1);
        assert_eq!(s["transports"]["ws"]["events_delivered"], 1);
    })
    .await;
}

#[tokio::test]
async fn a_client_that_speaks_only_h2_is_refused_in_the_handshake() {
    let certs = Certs::new();
    let args = certs.args();
    let floor = crate::support::Floor::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let cert = certs.cert();
    within(async {
        assert!(Conn::open_tls(floor.addr, &cert, H2).await.is_err());
        // A client that offers nothing gets HTTP/1.1.
        let mut c = Conn::open_tls(floor.addr, &cert, &[]).await.unwrap();
        let (status, _, body) = c.request("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    })
    .await;
}
