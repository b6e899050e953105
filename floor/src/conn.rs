//! Accepting connections and routing their requests: keep-alive for the short requests
//! (`POST /publish`, `/stats`, `/healthz`) and for [`poll`]s, hand-over to [`sse`] or [`ws`]
//! for the streams.
//!
//! A connection starts with a small read buffer that grows only as a request needs it. Once a
//! stream is accepted, this task (buffer, parsed request and all) ends and the stream continues
//! on a task of its own that holds only what the fan-out loop needs (see `fanout::spawn`).
//! With `--tls-cert`, the connection is rustls' first ([`crate::tls`]); everything after the
//! handshake is the same code.

use std::{
    sync::{atomic::Ordering::Relaxed, Arc},
    time::Duration,
};

use bytes::BytesMut;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};

use crate::{
    feed::Feed,
    http::{self, Method, ReadError, Request, Response},
    poll, sse,
    stats::Stats,
    ws,
};

/// Largest `POST /publish` body: the real server's `--max-publish-bytes` default.
pub const MAX_PUBLISH_BYTES: usize = 64 * 1024;

/// A client connection: TCP, or TLS over it.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    pub feed: Feed,
    pub stats: Stats,
}

impl Shared {
    pub fn new(retain: usize) -> Self {
        Self {
            feed: Feed::new(retain),
            stats: Stats::default(),
        }
    }
}

/// Accepts connections for ever, one task each; over TLS when `tls` is given.
pub async fn accept(listener: TcpListener, shared: Arc<Shared>, tls: Option<crate::tls::Acceptor>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                shared.stats.accepted.fetch_add(1, Relaxed);
                // Events are small writes that must leave at once: no Nagle delay.
                let _ = stream.set_nodelay(true);
                match &tls {
                    None => {
                        tokio::spawn(serve(stream, shared.clone()));
                    }
                    Some(tls) => {
                        let (tls, shared) = (tls.clone(), shared.clone());
                        tokio::spawn(async move {
                            // Boxed: the handshake's state is gone before the requests.
                            if let Some(stream) = Box::pin(tls.handshake(stream)).await {
                                serve(stream, shared).await;
                            }
                        });
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors, typically: back off rather than spin.
                eprintln!("floor: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serves one connection's requests until it closes or starts streaming.
async fn serve(mut stream: impl Stream, shared: Arc<Shared>) {
    let mut buf = BytesMut::new();
    loop {
        let req = match http::read_request(&mut stream, &mut buf).await {
            Ok(req) => req,
            Err(ReadError::Closed) => return,
            Err(ReadError::Refused(res)) => {
                let _ = res.write(&mut stream, false).await;
                return;
            }
        };
        // A body nobody read would be taken for the next request: close instead.
        let unread_body = req.has_body() && req.path() != "/publish";
        let keep_alive = req.keep_alive && !unread_body;
        let res = match (req.method, req.path()) {
            (Method::Get, "/ws") => return ws::serve(stream, &shared, req, buf).await,
            (Method::Get, "/sse") => {
                drop(buf);
                return sse::serve(stream, &shared, req).await;
            }
            (Method::Post, "/publish") => match publish(&mut stream, &mut buf, &shared, &req).await
            {
                Ok(res) => res,
                Err(_) => return,
            },
            (Method::Get, "/stats") => {
                Response::json(200, shared.stats.snapshot(&shared.feed).to_string())
            }
            (Method::Get, "/healthz") => Response::new(200, "text/plain", "ok"),
            (Method::Get, path @ ("/poll" | "/long-poll")) => {
                let kind = if path == "/poll" {
                    poll::Kind::Short
                } else {
                    poll::Kind::Long
                };
                if poll::serve(&mut stream, &mut buf, &shared, &req, kind, keep_alive).await {
                    continue;
                }
                return;
            }
            (_, "/ws" | "/sse" | "/stats" | "/healthz" | "/publish" | "/poll" | "/long-poll") => {
                Response::error(405, "method not allowed")
            }
            (_, path) => Response::error(404, &format!("no such path: {path}")),
        };
        let keep_alive = keep_alive && !res.close;
        if res.write(&mut stream, keep_alive).await.is_err() || !keep_alive {
            return;
        }
    }
}

/// `POST /publish`: any JSON value becomes the next event's `data`, validated and re-serialised
/// compactly (as the real server does) so it fits on one SSE `data:` line.
async fn publish(
    stream: &mut impl Stream,
    buf: &mut BytesMut,
    shared: &Shared,
    req: &Request,
) -> std::io::Result<Response> {
    if req.chunked {
        return Ok(Response::error(411, "send the body with Content-Length").closing());
    }
    let len = req.content_length.unwrap_or(0);
    if len > MAX_PUBLISH_BYTES {
        return Ok(Response::error(
            413,
            &format!("body of {len} bytes is over the floor's limit of {MAX_PUBLISH_BYTES}"),
        )
        .closing());
    }
    let body = http::read_body(stream, buf, len).await?;
    let data: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(Response::error(
                400,
                &format!("body is not valid JSON: {e}"),
            ))
        }
    };
    let seq = shared.feed.publish(&data.to_string());
    shared.stats.published.fetch_add(1, Relaxed);
    Ok(Response::json(200, format!("{{\"seq\":{seq}}}")))
}
