//! A fake feed server that garbles the stream on purpose — seq 3 never sent, 5 sent twice, 8
//! before 7, and 12 announced as missed instead of sent — on every transport. loadgen must report
//! exactly those gaps, duplicates, reorders and missed notices, per client.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{combinators::BoxBody, BodyExt as _, Full, StreamBody};
use hyper::{body::Frame, header, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use loadgen::{run::Mode, Args};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{self, protocol::Role, Message};

type Body = BoxBody<Bytes, Infallible>;

/// What the fake sends, in order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Event(u64),
    /// `missed` events lost up to `next`.
    Missed {
        missed: u64,
        next: u64,
    },
}

impl Item {
    /// The seq that must be published before this item can go out.
    fn needs(self) -> u64 {
        match self {
            Item::Event(s) => s,
            Item::Missed { next, .. } => next,
        }
    }
}

/// The garbled delivery order of seqs 1..=n.
fn script(n: u64) -> Vec<Item> {
    let mut out = vec![Item::Event(1), Item::Event(2)]; // 3 is skipped
    out.extend([4, 5, 5, 6, 8, 7, 9, 10, 11].map(Item::Event)); // 5 twice, 8 before 7
    out.push(Item::Missed {
        missed: 1,
        next: 12,
    }); // 12 announced, never sent
    out.extend((13..=n).map(Item::Event));
    out
}

struct Fake {
    /// Bodies of `POST /publish`, in seq order.
    published: Mutex<Vec<String>>,
    head: watch::Sender<u64>,
}

impl Fake {
    fn event_json(&self, seq: u64) -> String {
        let data = self.published.lock().unwrap()[seq as usize - 1].clone();
        feedlab_wire::envelope(seq, loadgen::clock::now_us(), &data)
    }

    /// The items from `pos` on that can go out now, for a connection opened when the head
    /// was `base` (each phase of the run garbles its own events the same way).
    fn ready(&self, base: u64, pos: usize) -> Vec<Item> {
        let head = *self.head.borrow();
        script(head.saturating_sub(base).max(13))
            .into_iter()
            .map(|i| match i {
                Item::Event(s) => Item::Event(base + s),
                Item::Missed { missed, next } => Item::Missed {
                    missed,
                    next: base + next,
                },
            })
            .skip(pos)
            .take_while(|i| i.needs() <= head)
            .collect()
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

/// A poll body for the next ready items: a missed notice only at the start of a batch.
fn poll_body(fake: &Fake, (base, pos): &mut (u64, usize)) -> Option<String> {
    let items = fake.ready(*base, *pos);
    if items.is_empty() {
        return None;
    }
    let mut missed = 0;
    let mut events = Vec::new();
    let mut next = 0;
    for (i, item) in items.iter().enumerate() {
        match *item {
            Item::Missed { missed: m, next: n } if i == 0 => {
                missed = m;
                next = n;
            }
            Item::Missed { .. } => break,
            Item::Event(s) => {
                events.push(fake.event_json(s));
                next = next.max(s);
            }
        }
        *pos += 1;
    }
    Some(format!(
        r#"{{"events":[{}],"next":{next},"missed":{missed}}}"#,
        events.join(",")
    ))
}

async fn handle(
    fake: Arc<Fake>,
    pos: Arc<Mutex<(u64, usize)>>,
    mut req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    Ok(match path.as_str() {
        "/stats" => full(
            StatusCode::OK,
            format!(
                r#"{{"feed":{{"head":{}}},"transports":{{}}}}"#,
                *fake.head.borrow()
            ),
        ),
        "/publish" => {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let seq = {
                let mut p = fake.published.lock().unwrap();
                p.push(String::from_utf8(body.to_vec()).unwrap());
                p.len() as u64
            };
            fake.head.send_replace(seq);
            full(StatusCode::OK, format!(r#"{{"seq":{seq}}}"#))
        }
        "/poll" => {
            let body = {
                let mut p = pos.lock().unwrap();
                poll_body(&fake, &mut p)
            };
            full(
                StatusCode::OK,
                body.unwrap_or_else(|| r#"{"events":[],"next":0,"missed":0}"#.into()),
            )
        }
        "/long-poll" => {
            let mut head = fake.head.subscribe();
            let wait = async {
                loop {
                    let body = {
                        let mut p = pos.lock().unwrap();
                        poll_body(&fake, &mut p)
                    };
                    if let Some(b) = body {
                        return b;
                    }
                    let _ = head.changed().await;
                }
            };
            match tokio::time::timeout(Duration::from_millis(300), wait).await {
                Ok(body) => full(StatusCode::OK, body),
                Err(_) => full(StatusCode::NO_CONTENT, Bytes::new()),
            }
        }
        "/sse" => {
            let fake = fake.clone();
            let base = pos.lock().unwrap().0;
            let stream = futures_util::stream::unfold(
                (fake, 0usize),
                move |(fake, mut pos)| async move {
                    let mut head = fake.head.subscribe();
                    loop {
                        let items = fake.ready(base, pos);
                        if !items.is_empty() {
                            let mut chunk = String::new();
                            for item in items {
                                pos += 1;
                                match item {
                                Item::Event(s) => chunk.push_str(&format!("id: {s}\ndata: {}\n\n", fake.event_json(s))),
                                Item::Missed { missed, next } => chunk.push_str(&format!(
                                    "event: missed\ndata: {{\"missed\":{missed},\"next\":{next}}}\n\n"
                                )),
                            }
                            }
                            return Some((
                                Ok::<_, Infallible>(Frame::data(Bytes::from(chunk))),
                                (fake, pos),
                            ));
                        }
                        let _ = head.changed().await;
                    }
                },
            );
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(http_body_util::BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
        "/ws" => {
            let key = req.headers()[header::SEC_WEBSOCKET_KEY].as_bytes().to_vec();
            let upgrade = hyper::upgrade::on(&mut req);
            let base = pos.lock().unwrap().0;
            tokio::spawn(async move {
                let io = TokioIo::new(upgrade.await.unwrap());
                let ws =
                    tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None)
                        .await;
                let (mut tx, mut rx) = ws.split();
                let mut head = fake.head.subscribe();
                let mut pos = 0;
                loop {
                    for item in fake.ready(base, pos) {
                        pos += 1;
                        let text = match item {
                            Item::Event(s) => fake.event_json(s),
                            Item::Missed { missed, next } => {
                                format!(r#"{{"op":"missed","missed":{missed},"next":{next}}}"#)
                            }
                        };
                        if tx.send(Message::Text(text)).await.is_err() {
                            return;
                        }
                    }
                    tokio::select! {
                        _ = head.changed() => {}
                        msg = rx.next() => match msg {
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                                let _ = tx.send(Message::Close(None)).await;
                                return;
                            }
                            _ => {}
                        },
                    }
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header(header::CONNECTION, "upgrade")
                .header(header::UPGRADE, "websocket")
                .header(
                    header::SEC_WEBSOCKET_ACCEPT,
                    tungstenite::handshake::derive_accept_key(&key),
                )
                .body(Full::new(Bytes::new()).boxed())
                .unwrap()
        }
        _ => full(StatusCode::NOT_FOUND, "{}"),
    })
}

async fn start_fake() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Arc::new(Fake {
        published: Mutex::new(Vec::new()),
        head: watch::Sender::new(0),
    });
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let fake = fake.clone();
            // One script position per connection: each keep-alive poller is one client, and
            // its script starts after the head at connect time (the phase's cursor).
            let pos = Arc::new(Mutex::new((*fake.head.borrow(), 0usize)));
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| handle(fake.clone(), pos.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_repeated_reordered_and_missed_seqs_are_counted_exactly() {
    let addr = start_fake().await;
    let out = tempfile::tempdir().unwrap();
    let clients = 3u64;
    let args = Args::from_args([
        "--repeat",
        "1",
        "--url",
        &format!("http://{addr}/"),
        "--clients",
        &clients.to_string(),
        "--duration",
        "500ms",
        "--rate",
        "40",
        "--poll-interval",
        "50ms",
        "--drain",
        "400ms",
        "--http",
        "1.1",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("in time")
    .expect("run");
    let report = &outcome.report;
    assert_eq!(report.transports.len(), 4);
    for (name, r) in &report.transports {
        let n = r.events_published;
        assert_eq!(n, 20, "{name}: 40/s for 0.5 s");
        assert_eq!(r.events_expected, clients * n, "{name}");
        assert_eq!(
            r.gaps,
            clients * 2,
            "{name}: 3 skipped and 12 missed, per client"
        );
        assert_eq!(r.duplicates, clients, "{name}: 5 twice, per client");
        assert_eq!(r.out_of_order, clients, "{name}: 7 after 8, per client");
        assert_eq!(
            r.missed_reported, clients,
            "{name}: one missed notice per client"
        );
        assert_eq!(
            r.events_received,
            clients * (n - 2 + 1),
            "{name}: n − 2 skipped + 1 repeat"
        );
        assert_eq!(r.events_unique, clients * (n - 2), "{name}");
    }
    assert!(report.loss, "loss is reported");
    assert!(!outcome.clean());
    assert!(
        report.conclusions[0].contains("LOSS"),
        "{:?}",
        report.conclusions
    );
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("WARNING: this run saw loss"),
        "loss is loud in the report"
    );
    assert!(md.contains("**LOSS**"), "and in the integrity table");
}
