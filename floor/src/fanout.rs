//! The one loop both streaming transports run: wake on the feed's head, write what follows the
//! cursor in one `write_all`, repeat.
//!
//! This loop is the floor's whole per-client cost, so it does nothing else: no JSON, no
//! framing (the bytes were framed at publish time), no queue. When one event is pending the
//! write is the event's own shared `Bytes`; when a connection was slow and several are pending
//! they are copied back to back into one buffer of at most [`MAX_WRITE_BYTES`], still one
//! write. While waiting, the connection reads what its client sends into a 64-byte scratch,
//! which is how it learns of EOF or a WebSocket close; the transport decides what the bytes
//! mean. A stream's state is its socket, its cursor, a `watch` receiver and that scratch, on a
//! task of its own: about 1.2 KiB of RSS per idle connection, measured with
//! `floor/scripts/idle_rss.py`.

use std::{ops::ControlFlow, sync::Arc};

use bytes::Bytes;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    sync::watch,
};

use crate::{
    conn::{Shared, Stream},
    feed::{Event, Feed},
    http::{send, Response},
    stats::{Counters, Transport},
};

/// Most bytes one write carries when a connection is behind: the real server's
/// `--max-write-bytes` default, so a catching-up client is written to in the same steps.
pub const MAX_WRITE_BYTES: usize = 16 * 1024;

/// Why a stream ends with a goodbye from the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client asked to close (a WebSocket close frame).
    ClientClosed,
    /// SIGINT/SIGTERM.
    ServerStopping,
}

/// What differs between SSE and WebSockets, all of it decided outside the hot path except
/// [`Wire::pick`], which is a field access.
pub trait Wire {
    const TRANSPORT: Transport;
    /// This transport's encoding of an event.
    fn pick(event: &Event) -> &Bytes;
    /// The notice for events lost to retention, written before the events that remain.
    fn missed(missed: u64, up_to: u64) -> Bytes;
    /// Bytes from the client; `Break` when it asked to close.
    fn inbound(&mut self, data: &[u8], counters: &Counters) -> ControlFlow<()>;
    /// The last bytes of the stream.
    fn goodbye(end: End) -> &'static [u8];
}

/// The cursor a new stream starts from: `since` (events after it), or the head when absent
/// ("from now on"); a cursor ahead of the head is refused with 409 and the head, as on the
/// real server.
///
/// # Errors
/// The response that refuses the request.
pub fn start_cursor(feed: &Feed, name: &str, since: Option<&str>) -> Result<u64, Response> {
    let head = feed.head();
    let Some(since) = since else {
        return Ok(head);
    };
    let cursor: u64 = since.parse().map_err(|_| {
        Response::error(
            400,
            &format!("`{name}` must be a non-negative integer, got {since:?}"),
        )
    })?;
    if cursor > head {
        let body = serde_json::json!({
            "error": format!("cursor {cursor} is ahead of the feed's head {head}"),
            "head": head,
        });
        return Err(Response::json(409, body.to_string()));
    }
    Ok(cursor)
}

/// Streams the feed from `cursor` to `stream` on a task of its own, until the client goes, asks
/// to close, or the floor stops. `head` must have been subscribed before `cursor` was read
/// from the feed.
///
/// A task of its own because a task's memory is sized by its largest state: the task that read
/// and answered the request (head buffer, parsed request, handshake) ends here, and what an idle
/// stream keeps is only this loop's state.
pub fn spawn<W: Wire + Send + 'static>(
    stream: impl Stream,
    shared: Arc<Shared>,
    cursor: u64,
    head: watch::Receiver<u64>,
    wire: W,
) {
    tokio::spawn(run(stream, shared, cursor, head, wire));
}

async fn run<W: Wire>(
    mut stream: impl Stream,
    shared: Arc<Shared>,
    mut cursor: u64,
    mut head: watch::Receiver<u64>,
    mut wire: W,
) {
    let counters = shared.stats.of(W::TRANSPORT);
    let _open = counters.open_guard();
    let feed = &shared.feed;
    let mut scratch = [0u8; 64];
    let end = 'stream: loop {
        // Mark the head seen before reading the ring: a publish after this wakes us again.
        head.borrow_and_update();
        if feed.stopping() {
            break End::ServerStopping;
        }
        while let Some(batch) = feed.read(cursor, MAX_WRITE_BYTES, W::pick) {
            if batch.missed > 0 {
                let notice = W::missed(batch.missed, batch.missed_up_to);
                if send(&mut stream, &notice).await.is_err() {
                    return;
                }
                counters.wrote(notice.len());
            }
            if send(&mut stream, &batch.bytes).await.is_err() {
                return;
            }
            counters.delivered(batch.events, batch.bytes.len());
            cursor = batch.next;
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return },
            read = stream.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if wire.inbound(&scratch[..n], counters).is_break() {
                    break 'stream End::ClientClosed;
                },
            },
        }
    };
    let bye = W::goodbye(end);
    if send(&mut stream, bye).await.is_ok() {
        counters.wrote(bye.len());
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    impl Wire for Nothing {
        const TRANSPORT: Transport = Transport::Sse;
        fn pick(event: &Event) -> &Bytes {
            &event.sse
        }
        fn missed(_: u64, _: u64) -> Bytes {
            Bytes::new()
        }
        fn inbound(&mut self, _: &[u8], _: &Counters) -> ControlFlow<()> {
            ControlFlow::Continue(())
        }
        fn goodbye(_: End) -> &'static [u8] {
            b""
        }
    }

    /// What an idle stream costs in user space is this state, tokio's task header, the socket's
    /// registration and allocator rounding: about 1.2 KiB measured (`floor/scripts/idle_rss.py`).
    /// A field or a buffer held across an `.await` here is paid 10,000 times.
    #[tokio::test]
    async fn an_idle_stream_holds_only_a_small_task() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let shared = Arc::new(Shared::new(1));
        let head = shared.feed.subscribe();
        let task = run(stream, shared, 0, head, Nothing);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 768, "the fan-out loop's state grew to {size} bytes");
    }
}
