//! `GET /poll` and `GET /long-poll` on the socket itself: the handlers' own steps
//! ([`transport::poll`], [`transport::long_poll`]) and the same [`PollAnswer`], written as one
//! head-and-body write on a connection that stays open for the next request.
//!
//! A poll is one small request and one small answer, many times over: actix-web's per-request
//! work (routing, extractors, middleware, its 8 KiB buffers) is nearly all of what a poll
//! costs the server. Here a poll costs a peek, the checks, a read of the request head into
//! nothing, and one write; between requests the connection holds no buffer.
//!
//! [`transport::poll`]: crate::transport::poll
//! [`transport::long_poll`]: crate::transport::long_poll

use std::{io::IoSlice, mem::MaybeUninit, sync::Arc, time::Duration};

use tokio::io::ReadBuf;

use super::{
    conn::Conn,
    head::Head,
    wire::{self, After},
    Admission,
};
use crate::{
    accounting::{Meter, OpenGuard},
    compress::HttpGzip,
    error::ApiError,
    incoming::Incoming as _,
    state::AppState,
    transport::{long_poll, poll, start_cursor, PollAnswer, Transport},
};

/// A short poll, answered: what to write and whom to count it for.
pub struct Answered {
    answer: PollAnswer,
    meter: Meter,
}

/// What the handler would do: answer here when it would answer 200; anything it would refuse
/// goes to actix-web, which refuses it the same way (nothing is counted here first).
pub fn admit(head: &Head, state: &AppState) -> Admission<Answered> {
    let Ok(q) = poll::check(head, state) else {
        return Admission::Actix;
    };
    if let Err(err) = q.feed(state) {
        return Admission::no_feed(err, Transport::ShortPoll, q.client.as_deref(), head, state);
    }
    let Ok((answer, events)) = poll::answer(state, &q, PollAnswer::coding(head, state)) else {
        return Admission::Actix;
    };
    let meter = state
        .accounting
        .meter(Transport::ShortPoll, q.client.as_deref());
    meter.request_over(head.version());
    poll::count(&meter, events);
    Admission::Serve(Answered { answer, meter })
}

/// A long poll, admitted: held open (counted against the connection limits) until it is
/// answered.
pub struct Held {
    feed: Arc<crate::feed::Feed>,
    meter: Meter,
    _open: OpenGuard,
    cursor: u64,
    hold: Duration,
    coding: Option<HttpGzip>,
}

/// What the handler would do: hold it here, refuse it here (a connection limit, counted), or
/// leave it to actix-web (a malformed or unauthorised request, so its error reads the same).
pub fn admit_long(head: &Head, state: &Arc<AppState>) -> Admission<Held> {
    let Ok((q, hold)) = long_poll::check(head, state) else {
        return Admission::Actix;
    };
    let feed = match q.feed(state) {
        Ok(feed) => feed,
        Err(err) => {
            return Admission::no_feed(err, Transport::LongPoll, q.client.as_deref(), head, state)
        }
    };
    let Ok(cursor) = start_cursor(&feed, q.since) else {
        return Admission::Actix;
    };
    let meter = state
        .accounting
        .meter(Transport::LongPoll, q.client.as_deref());
    meter.request_over(head.version());
    match state.open(&meter, head) {
        Ok(open) => Admission::Serve(Held {
            feed,
            meter,
            _open: open,
            cursor,
            hold,
            coding: PollAnswer::coding(head, state),
        }),
        Err(err) => Admission::Refuse(err, meter),
    }
}

/// Writes a short poll's answer; `false` when the connection is done for.
pub async fn answer(
    socket: &mut impl Conn,
    answered: Answered,
    cors: Option<&str>,
    state: &AppState,
) -> bool {
    let Answered { answer, meter } = answered;
    write(socket, &answer, &meter, cors, state.config.send_timeout).await
}

/// Holds a long poll until it has an answer, then writes it; `false` when the connection is
/// done for (the client left, the server is stopping, a write failed).
pub async fn hold(
    socket: &mut impl Conn,
    held: Held,
    cors: Option<&str>,
    state: &AppState,
) -> bool {
    let limit = state.config.send_timeout;
    let waited = {
        let wait = long_poll::wait(
            state,
            &held.feed,
            &held.meter,
            held.cursor,
            held.hold,
            held.coding,
        );
        tokio::select! {
            answer = wait => answer,
            () = client_left(&mut *socket) => return false,
        }
    };
    match waited {
        Ok(answer) => write(socket, &answer, &held.meter, cors, limit).await,
        Err(err) => {
            // Shutting down: answered as actix-web does, and the connection closes.
            let after = match err {
                ApiError::ShuttingDown => After::Close,
                _ => After::KeepAlive,
            };
            let written = wire::refuse(socket, &err, cors, limit, after).await;
            if let Some(n) = written {
                held.meter.bytes(n);
            }
            written.is_some() && after == After::KeepAlive
        }
    }
}

/// One write of `answer`'s head and body, counted on `meter`; `false` when it failed.
async fn write(
    socket: &mut impl Conn,
    answer: &PollAnswer,
    meter: &Meter,
    cors: Option<&str>,
    limit: Duration,
) -> bool {
    let mut head = Vec::with_capacity(HEAD_CAPACITY);
    wire::response_head(
        &mut head,
        answer.status,
        answer.headers.iter().copied(),
        answer.body.len(),
        cors,
        false,
    );
    meter.delivered_as(
        0,
        (head.len() + answer.body.len()) as u64,
        head.len() as u64 + answer.uncompressed,
    );
    let mut parts = [IoSlice::new(&head), IoSlice::new(&answer.body)];
    let parts = if answer.body.is_empty() {
        &mut parts[..1]
    } else {
        &mut parts[..]
    };
    wire::write_all(socket, parts, limit).await.is_ok()
}

/// Room for a poll answer's head without growing: status line, length, two headers, CORS for
/// an origin of ordinary length, date.
const HEAD_CAPACITY: usize = 256;

/// Resolves when the client has closed its side (or the connection broke) while a long poll is
/// held; never when it sends something (a pipelined request, left unread for its turn).
async fn client_left(socket: &mut impl Conn) {
    let peeked = std::future::poll_fn(|cx| {
        let mut one = [MaybeUninit::<u8>::uninit(); 1];
        let mut buf = ReadBuf::uninit(&mut one);
        socket.poll_peek(cx, &mut buf)
    })
    .await;
    match peeked {
        Ok(0) | Err(_) => {}
        // Bytes are waiting (and a peek would find them again at once): the client is there.
        Ok(_) => std::future::pending().await,
    }
}
