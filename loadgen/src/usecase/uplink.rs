//! A game client's inputs over HTTP (`POST /input` beside SSE or polls), sent the way a browser
//! sends fetches: side by side, not one after another. One request at a time would make every
//! input wait for the answers to those before it, so on a link with a long round trip the
//! input → acknowledgement latency would grow with the queue, which is loadgen's artefact and
//! not the transport's.
//!
//! On HTTP/2 each input is a stream of its own on the page's one connection (at most
//! [`H2_STREAMS`] at once, a server's usual `SETTINGS_MAX_CONCURRENT_STREAMS`). On HTTP/1.1,
//! where a connection carries one request at a time, inputs go over up to [`HTTP1_CONNECTIONS`]
//! connections, opened side by side as inputs wait for them (a browser opens at most 6 per
//! origin, and the states' stream or poll holds one of them). An input that no connection can
//! take yet waits, in order, for the first one free: its wait is in its latency, which counts
//! from its intended time. What waits is bounded by the inputs of one run (`--input-rate` ×
//! `--duration`).

use std::{collections::VecDeque, sync::Arc};

use bytes::Bytes;
use futures_util::{future::BoxFuture, stream::FuturesUnordered, StreamExt as _};
use hyper::{Request, StatusCode};

use crate::net::{self, ByteCounts, HttpVersion, Target};

/// Inputs in flight at once on HTTP/2: streams on the page's connection.
pub const H2_STREAMS: usize = 100;

/// HTTP/1.1 connections for inputs: a browser's 6 per origin, less the one the states use.
pub const HTTP1_CONNECTIONS: usize = 5;

type Answer = Result<(StatusCode, Bytes), String>;
type Connection = (net::Sender, tokio::task::JoinHandle<()>);

/// What finished: an input's request, or an HTTP/1.1 connection being opened.
enum Done {
    Answered(u32, net::Sender, Answer),
    Opened(Result<Connection, String>),
}

/// The inputs of one client, queued and in flight.
pub struct Uplink {
    target: Target,
    wire: Arc<ByteCounts>,
    http: HttpVersion,
    /// The page's connection, on HTTP/2: each input is a further stream on it.
    h2: Option<net::Sender>,
    idle: Vec<net::Sender>,
    /// Streams (HTTP/2) or connections (HTTP/1.1) leased, idle or being opened.
    open: usize,
    opening: usize,
    connections: Vec<tokio::task::JoinHandle<()>>,
    queued: VecDeque<(u32, Request<net::Body>)>,
    in_flight: FuturesUnordered<BoxFuture<'static, Done>>,
}

impl Uplink {
    /// Inputs beside `page`, the connection the states come on: its further streams on HTTP/2;
    /// on HTTP/1.1 a first connection of their own is opened now, as a page's first fetch
    /// would have opened it before the game starts.
    ///
    /// # Errors
    /// That first connection cannot be opened.
    pub async fn new(
        target: &Target,
        wire: &Arc<ByteCounts>,
        http: HttpVersion,
        page: &net::Sender,
    ) -> Result<Self, String> {
        let mut up = Self {
            target: target.clone(),
            wire: wire.clone(),
            http,
            h2: page.h2_clone(),
            idle: Vec::new(),
            open: 0,
            opening: 0,
            connections: Vec::new(),
            queued: VecDeque::new(),
            in_flight: FuturesUnordered::new(),
        };
        if up.h2.is_none() {
            let (sender, task) = super::connect(target, wire, http).await?;
            up.connections.push(task);
            up.idle.push(sender);
            up.open = 1;
        }
        Ok(up)
    }

    /// Queues input `n` and sends what a sender can take now.
    pub fn queue(&mut self, n: u32, req: Request<net::Body>) {
        self.queued.push_back((n, req));
        self.dispatch();
    }

    /// Sends every queued input a sender can take, and on HTTP/1.1 starts opening a connection
    /// for each one still waiting, within the bound.
    fn dispatch(&mut self) {
        while let Some((n, req)) = self.queued.pop_front() {
            let sender = match (self.idle.pop(), &self.h2) {
                (Some(s), _) => s,
                (None, Some(page)) if self.open < H2_STREAMS => {
                    self.open += 1;
                    page.h2_clone().expect("an HTTP/2 sender")
                }
                _ => {
                    self.queued.push_front((n, req));
                    break;
                }
            };
            self.in_flight.push(Box::pin(async move {
                let mut sender = sender;
                let answer = super::fetch(&mut sender, req).await;
                Done::Answered(n, sender, answer)
            }));
        }
        if self.h2.is_some() {
            return;
        }
        while self.opening < self.queued.len() && self.open < HTTP1_CONNECTIONS {
            self.open += 1;
            self.opening += 1;
            let (target, wire, http) = (self.target.clone(), self.wire.clone(), self.http);
            self.in_flight.push(Box::pin(async move {
                Done::Opened(super::connect(&target, &wire, http).await)
            }));
        }
    }

    /// The next input answered, and its answer (`Err`: a connection could not be opened);
    /// `None` at once while nothing is in flight. A sender that answered goes back to the pool
    /// (a failed one is dropped) and queued inputs take what is free. Nothing is lost if this
    /// is dropped before it returns.
    pub async fn answered(&mut self) -> Option<Result<(u32, Answer), String>> {
        loop {
            match self.in_flight.next().await? {
                Done::Answered(n, sender, answer) => {
                    if answer.is_ok() {
                        self.idle.push(sender);
                    } else {
                        self.open -= 1;
                    }
                    self.dispatch();
                    return Some(Ok((n, answer)));
                }
                Done::Opened(Ok((sender, task))) => {
                    self.opening -= 1;
                    self.connections.push(task);
                    self.idle.push(sender);
                    self.dispatch();
                }
                Done::Opened(Err(e)) => {
                    // Tried again with the next input queued, not at once.
                    self.opening -= 1;
                    self.open -= 1;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        for c in &self.connections {
            c.abort();
        }
    }
}
