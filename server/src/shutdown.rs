//! The process's stop signal, and how streams leave when it comes.
//!
//! Ending every stream at the same instant makes every client reconnect in the same second,
//! into whichever instance is left, or into this one's successor just as it starts. So on
//! shutdown each stream (SSE, WebSocket, held long-poll) draws its own [`Turn`], uniformly
//! within `--shutdown-drain` of the stop, and is ended then, as it always was (SSE ends its
//! body, a WebSocket closes with 1001, a long-poll is answered 503); until its turn it is served
//! as before.
//!
//! Streams learn of the stop the way they always have: the feed closes and wakes every waiter
//! once ([`crate::feed::Feed::close`]). A stream draws its turn when it first sees the feed
//! closed, and only then holds a timer for it, so the drain costs an idle stream one pointer.
//! With `--redis` the feed is still tailed until the process exits ([`crate::run`]), so a stream
//! waiting for its turn still gets the events published elsewhere.

use std::{pin::Pin, sync::OnceLock, time::Duration};

use tokio::time::{Instant, Sleep};

use crate::feed::Feed;

pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The drain window, and when the drain began.
#[derive(Debug)]
pub struct Drain {
    window: Duration,
    began: OnceLock<Instant>,
}

impl Drain {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            began: OnceLock::new(),
        }
    }

    /// Marks the drain begun now (if it was not already): the turns are counted from here.
    pub fn begin(&self) -> Instant {
        *self.began.get_or_init(Instant::now)
    }
}

/// One stream's turn to be ended on shutdown: drawn when the stream first sees the stop.
#[derive(Debug, Default)]
pub struct Turn(Option<Pin<Box<Sleep>>>);

impl Turn {
    /// Whether this stream's turn has come; the first call after the feed closed draws it.
    pub fn due(&mut self, feed: &Feed, drain: &Drain) -> bool {
        if self.0.is_none() {
            if !feed.is_closed() {
                return false;
            }
            let at = drain.begin() + drain.window.mul_f64(rand::random::<f64>());
            self.0 = Some(Box::pin(tokio::time::sleep_until(at)));
        }
        self.0
            .as_ref()
            .is_some_and(|turn| turn.deadline() <= Instant::now())
    }

    /// Resolves at this stream's turn; never before [`Turn::due`] has drawn it.
    pub async fn wait(&mut self) {
        match &mut self.0 {
            Some(turn) => turn.as_mut().await,
            None => std::future::pending().await,
        }
    }
}
