//! `GET /sse` on the socket itself: the same checks and the same [`Stream`] as actix-web's
//! handler, written as chunks straight from the events' shared bytes.

use std::{io::IoSlice, mem::MaybeUninit, pin::Pin, sync::Arc, task::Poll};

use tokio::io::{AsyncWriteExt as _, ReadBuf};

use super::{conn::Conn, head::Head, wire, Admission};
use crate::{
    accounting::Framing,
    compress,
    incoming::Incoming as _,
    state::AppState,
    transport::{
        sse::{last_event_id, Chunk, Stream},
        start_cursor, FeedQuery, Transport,
    },
};

/// What the handler would do with this request: serve it here, refuse it here (a limit), or
/// leave it to actix-web (any malformed or unauthorised request, so its error reads the same).
pub fn admit(head: &Head, state: &Arc<AppState>) -> Admission<Ready> {
    let Ok(q) = FeedQuery::from_request(head) else {
        return Admission::Actix;
    };
    if q.authorize(head, state).is_err() {
        return Admission::Actix;
    }
    let Ok(last_event_id) = last_event_id(head) else {
        return Admission::Actix;
    };
    let feed = match q.feed(state) {
        Ok(feed) => feed,
        Err(err) => {
            return Admission::no_feed(err, Transport::Sse, q.client.as_deref(), head, state)
        }
    };
    let Ok(cursor) = start_cursor(&feed, last_event_id.or(q.since)) else {
        return Admission::Actix;
    };
    let cors = state.origins.check(head).ok().flatten();
    let meter = state.accounting.meter(Transport::Sse, q.client.as_deref());
    meter.request_over(head.version());
    match state.open(&meter, head) {
        Ok(open) => {
            let gzip = compress::negotiate(state.config.http_gzip, head.headers());
            let (prelude, stream) = Stream::start(
                state.clone(),
                feed,
                meter,
                open,
                cursor,
                Framing::Chunked,
                true,
                gzip,
            );
            Admission::Serve(Ready {
                prelude,
                stream,
                cors,
            })
        }
        Err(err) => Admission::Refuse(err, meter),
    }
}

pub struct Ready {
    prelude: bytes::Bytes,
    stream: Stream,
    cors: Option<String>,
}

/// Serves the response until the feed stops it (shutdown, `--max-lag`), the client leaves, or a
/// write does not complete within `--send-timeout`.
///
/// `ready` is used in place, never taken apart: an `async fn`'s arguments keep their own room
/// in its future for its whole life, so moving them into locals would hold every field twice
/// in every idle stream's memory. The response head is written by [`start`], boxed, so its
/// buffers are no part of that future either.
pub async fn serve<C: Conn>(mut socket: C, mut ready: Ready, state: Arc<AppState>) {
    let limit = state.config.send_timeout;
    if !Box::pin(start(&mut socket, &mut ready, &state)).await {
        return;
    }
    let stream = &mut ready.stream;
    // The client's FIN ends the stream, as a held long poll ends and as nginx ends a request
    // whose client closed: an EventSource never half-closes, so a FIN is a client that has
    // gone, and writing on would count events as delivered that nobody reads (until the
    // client's RST fails a write). A client gone without a FIN shows at the next write (a
    // heartbeat at the latest) or through TCP_USER_TIMEOUT.
    loop {
        tokio::select! {
            chunk = stream.next_chunk() => {
                let Some(chunk) = chunk else {
                    let _ = wire::write_all(&mut socket, &mut [IoSlice::new(b"0\r\n\r\n")], limit).await;
                    let _ = socket.shutdown().await;
                    return;
                };
                let written = match chunk {
                    Chunk::Events(events) => {
                        let mut parts: wire::Parts<'_> =
                            events.iter().map(|e| IoSlice::new(&e.sse_chunk)).collect();
                        wire::write_all(&mut socket, &mut parts[..], limit).await
                    }
                    Chunk::Parts(pieces) => {
                        let len = pieces.iter().map(|p| p.len()).sum();
                        let size = chunk_size(len);
                        let mut parts: wire::Parts<'_> = std::iter::once(IoSlice::new(&size.0[..size.1]))
                            .chain(pieces.iter().map(|p| IoSlice::new(p)))
                            .chain(std::iter::once(IoSlice::new(b"\r\n")))
                            .collect();
                        wire::write_all(&mut socket, &mut parts[..], limit).await
                    }
                    Chunk::Body(bytes) => {
                        let size = chunk_size(bytes.len());
                        let mut parts = [
                            IoSlice::new(&size.0[..size.1]),
                            IoSlice::new(&bytes),
                            IoSlice::new(b"\r\n"),
                        ];
                        wire::write_all(&mut socket, &mut parts, limit).await
                    }
                };
                if written.is_err() {
                    return;
                }
            }
            read = client_sent(&mut socket) => match read {
                Sent::Bytes => {}
                Sent::Gone => return,
            },
        }
    }
}

/// Writes the response head and the stream's prelude; `false` when that failed.
async fn start(socket: &mut impl Conn, ready: &mut Ready, state: &AppState) -> bool {
    let prelude = std::mem::take(&mut ready.prelude);
    let cors = ready.cors.take();
    let stream = &ready.stream;
    let limit = state.config.send_timeout;
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         x-accel-buffering: no\r\n{}{}transfer-encoding: chunked\r\nconnection: close\r\n{}\r\n",
        if stream.gzip() {
            "content-encoding: gzip\r\nvary: Accept-Encoding\r\n"
        } else {
            ""
        },
        wire::cors_lines(cors.as_deref()),
        wire::date_line()
    );
    stream.meter().bytes(head.len() as u64);
    let size = chunk_size(prelude.len());
    let mut first = [
        IoSlice::new(head.as_bytes()),
        IoSlice::new(&size.0[..size.1]),
        IoSlice::new(&prelude),
        IoSlice::new(b"\r\n"),
    ];
    wire::write_all(socket, &mut first, limit).await.is_ok()
}

enum Sent {
    /// Bytes, read and dropped.
    Bytes,
    /// Its FIN, a reset or another error: the client has gone.
    Gone,
}

/// Waits for the client to send something. The scrap buffer exists only while the connection
/// is polled: held across the wait, it would be part of every idle stream's memory.
async fn client_sent(socket: &mut impl Conn) -> Sent {
    std::future::poll_fn(|cx| {
        let mut scrap = [MaybeUninit::<u8>::uninit(); 512];
        let mut scrap = ReadBuf::uninit(&mut scrap);
        match Pin::new(&mut *socket).poll_read(cx, &mut scrap) {
            Poll::Ready(Ok(())) if scrap.filled().is_empty() => Poll::Ready(Sent::Gone),
            Poll::Ready(Ok(())) => Poll::Ready(Sent::Bytes),
            Poll::Ready(Err(_)) => Poll::Ready(Sent::Gone),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The chunk-size line for `len` bytes: hex digits and CRLF, in a stack buffer.
fn chunk_size(len: usize) -> ([u8; 18], usize) {
    let mut out = [0u8; 18];
    let digits = format!("{len:x}\r\n");
    out[..digits.len()].copy_from_slice(digits.as_bytes());
    (out, digits.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_hex_lines() {
        let (b, n) = chunk_size(0x1a2);
        assert_eq!(&b[..n], b"1a2\r\n");
        let (b, n) = chunk_size(usize::MAX);
        assert_eq!(n, 18);
        assert!(b.ends_with(b"\r\n"));
    }
}
