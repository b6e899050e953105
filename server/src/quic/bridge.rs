//! Every other route over HTTP/3: what [`http3`](super::http3) does not serve itself (the page
//! and its scripts, `/stats`, `/control`, `/quic`, `POST /publish`, the reports) is answered by
//! the same actix-web app the TCP listener runs ([`crate::app`]), in process.
//!
//! Why: `Alt-Svc` (and Chromium's `--origin-to-force-quic-on`) move a whole origin to HTTP/3,
//! not a few paths. A browser that learned `h3=":PORT"` sends the page's script and its `/stats`
//! there too; a 404 for them would break the page the moment it switched. Polls, long polls and
//! SSE stay in [`http3`](super::http3), which streams and holds them; what comes here is
//! answered whole (a file, a JSON body), so it is read whole: the request body up to
//! `--max-publish-bytes` (the largest body any route takes), the response up to
//! [`MAX_RESPONSE_BYTES`].
//!
//! actix-web's app is not `Send`: it runs on a thread of its own (an actix system), and requests
//! reach it over a channel of [`QUEUE`] places; a request finding it full is answered 503.

use std::{net::SocketAddr, rc::Rc, sync::Arc};

use actix_web::{
    dev::Service as _,
    http::header::{HeaderName, HeaderValue},
    test::TestRequest,
};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use web_transport_quinn::http;

use crate::state::AppState;

/// Most bytes of one bridged response body (a report's HTML is the largest the app serves).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Requests waiting for the app's thread.
const QUEUE: usize = 256;

/// A request as it came over HTTP/3, with its body read.
pub struct Asked {
    pub method: http::Method,
    pub path_and_query: String,
    pub authority: Option<String>,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

/// The app's answer: status, headers (`http` 1's), body.
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Bytes,
}

type Job = (Asked, oneshot::Sender<Answer>);

/// The way to the app's thread; cloned per connection.
#[derive(Clone)]
pub struct Bridge {
    tx: mpsc::Sender<Job>,
}

impl Bridge {
    /// Starts the app's thread; it ends when every [`Bridge`] is dropped.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn start(state: Arc<AppState>) -> anyhow::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("h3-bridge".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    // The app's factories cannot fail (no route has an init step).
                    let app = Rc::new(actix_web::test::init_service(crate::app(&state)).await);
                    while let Some((asked, reply)) = rx.recv().await {
                        let app = app.clone();
                        actix_web::rt::spawn(async move {
                            let res = match app.call(request(asked)).await {
                                Ok(res) => res.map_into_boxed_body().into_parts().1,
                                Err(e) => e.error_response(),
                            };
                            let _ = reply.send(answer(res).await);
                        });
                    }
                });
            })?;
        Ok(Self { tx })
    }

    /// The app's answer to `asked`; 503 when the app's thread is busy past [`QUEUE`] or gone.
    pub async fn ask(&self, asked: Asked) -> Answer {
        let (reply, answered) = oneshot::channel();
        if self.tx.try_send((asked, reply)).is_err() {
            return busy();
        }
        answered.await.unwrap_or_else(|_| busy())
    }
}

fn busy() -> Answer {
    Answer {
        status: http::StatusCode::SERVICE_UNAVAILABLE,
        headers: vec![(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        )],
        body: Bytes::from_static(b"the HTTP/3 bridge to the app is busy; try again\n"),
    }
}

/// The request as actix-web sees one: HTTP/3, the `:authority` as `Host` (which actix-web's
/// checks read), the peer's address.
fn request(asked: Asked) -> actix_http::Request {
    let method = actix_web::http::Method::from_bytes(asked.method.as_str().as_bytes())
        .unwrap_or(actix_web::http::Method::GET);
    let mut req = TestRequest::default()
        .method(method)
        .uri(&asked.path_and_query)
        .version(actix_web::http::Version::HTTP_3)
        .peer_addr(asked.peer);
    for (name, value) in &asked.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            req = req.append_header((name, value));
        }
    }
    if let Some(authority) = asked.authority {
        req = req.insert_header((actix_web::http::header::HOST, authority));
    }
    req.set_payload(asked.body).to_request()
}

/// The response read whole (up to [`MAX_RESPONSE_BYTES`]), its headers carried over. `Alt-Svc`
/// is left out: the client is on HTTP/3 already.
async fn answer(res: actix_web::HttpResponse) -> Answer {
    let status = http::StatusCode::from_u16(res.status().as_u16())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res
        .headers()
        .iter()
        .filter(|(name, _)| *name != actix_web::http::header::ALT_SVC)
        .filter_map(|(name, value)| {
            Some((
                http::HeaderName::from_bytes(name.as_str().as_bytes()).ok()?,
                http::HeaderValue::from_bytes(value.as_bytes()).ok()?,
            ))
        })
        .collect();
    let body = match actix_web::body::to_bytes_limited(res.into_body(), MAX_RESPONSE_BYTES).await {
        Ok(Ok(body)) => body,
        _ => {
            return Answer {
                status: http::StatusCode::INTERNAL_SERVER_ERROR,
                headers: Vec::new(),
                body: Bytes::from_static(b"response too large for the HTTP/3 bridge\n"),
            }
        }
    };
    Answer {
        status,
        headers,
        body,
    }
}
