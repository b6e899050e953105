//! Losing a connection and finding the feed again, the same way for all four transports.
//!
//! Before this was one helper, each client had its own copy of the backoff, the reconnect count
//! and the connection gate, and they drifted apart. Failover needs one more rule that must be the
//! same everywhere: a client that loses its connection moves to the next server of the phase and
//! resumes there from its own last seq. And the report's reconnect time must mean one thing for
//! every transport: from the moment a client saw its working connection fail to its next
//! successful subscription (an SSE or WebSocket handshake) or poll response.

use std::{sync::Arc, time::Duration};

use rand::Rng as _;
use tokio::sync::SemaphorePermit;

use super::{pause, ClientCtx, BACKOFF, MAX_BACKOFF};
use crate::{
    chaos::Reconnect,
    clock,
    net::Target,
    stats::Recorder,
    storm::{self, Step},
};

/// The server client `index` starts on, of `n`: round-robin, so each gets an equal share.
pub fn first_target(index: usize, n: usize) -> usize {
    index % n.max(1)
}

/// Where a client goes after losing server `current` of `n`: the next one, wrapping around.
pub fn next_target(current: usize, n: usize) -> usize {
    (current + 1) % n.max(1)
}

/// The pause before attempt number `failures` (1 = the first after a loss) with `targets`
/// servers: none when failing over to another server for the first time (it is presumably up),
/// else [`BACKOFF`] doubling to [`MAX_BACKOFF`]; `jitter` in 0..1 spreads a crowd that lost the
/// same server over the second half of the pause.
pub fn backoff(failures: u32, targets: usize, jitter: f64) -> Duration {
    if failures == 0 || (failures == 1 && targets > 1) {
        return Duration::ZERO;
    }
    let doublings = failures
        .saturating_sub(if targets > 1 { 2 } else { 1 })
        .min(8);
    let full = (BACKOFF * (1 << doublings)).min(MAX_BACKOFF);
    full / 2 + full.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

/// One client's connection state across reconnects.
#[derive(Debug)]
pub struct Failover {
    target: usize,
    /// Failed attempts or lost connections since the last success.
    failures: u32,
    /// Whether the client has a working connection (or its last request succeeded).
    up: bool,
    /// When a working connection was lost (loadgen's clock), until the next success.
    down_since: Option<u64>,
    /// Whether the phase was told this client is connected.
    signalled: bool,
    /// Connection attempts made.
    attempts: u64,
    /// When the working connection came up, or the last request succeeded (loadgen's clock).
    up_at: Option<u64>,
    /// The last `retry:` hint an SSE stream gave (`--reconnect browser`, `app`).
    hint: Option<Duration>,
    /// The last attempt was refused with an HTTP status, and its `Retry-After` if any.
    refused: Option<Option<Duration>>,
}

impl Failover {
    pub fn new(ctx: &ClientCtx) -> Self {
        Self {
            target: first_target(ctx.index, ctx.shared.targets.len()),
            failures: 0,
            up: false,
            down_since: None,
            signalled: false,
            attempts: 0,
            up_at: None,
            hint: None,
            refused: None,
        }
    }

    /// The server's `retry:` hint for this client's next reconnect (SSE).
    pub fn retry_hint(&mut self, hint: Duration) {
        self.hint = Some(hint);
    }

    /// The attempt was refused with HTTP `status` (and a `Retry-After`, when it said one): a
    /// client-like `--reconnect` waits for that differently. [`Failover::down`] follows.
    pub fn refused(&mut self, ctx: &ClientCtx, status: u16, retry_after: Option<Duration>) {
        self.refused = Some(retry_after);
        if status == 503 {
            self.count(ctx, Step::Refused);
        }
    }

    fn count(&self, ctx: &ClientCtx, step: Step) {
        if let Some(t) = &ctx.shared.storm {
            t.count(ctx.shared.transport, self.target, step);
        }
    }

    /// The server to talk to now.
    pub fn target<'a>(&self, ctx: &'a ClientCtx) -> &'a Arc<Target> {
        &ctx.shared.targets[self.target]
    }

    /// Whether this is a later attempt (so a resume header such as `Last-Event-ID` belongs).
    pub fn resuming(&self) -> bool {
        self.attempts > 1
    }

    /// Whether the last attempt or request failed (and the next one must go through
    /// [`Failover::attempt`] even for a client that connects per request).
    pub fn failing(&self) -> bool {
        self.failures > 0
    }

    /// Before a connection attempt: waits out the backoff after a failure (`--reconnect`
    /// decides how long), counts a reconnect when one follows a failure, and takes a place at
    /// the phase's connection gate (held until the permit is dropped, after the handshake;
    /// client-like reconnects skip it, see [`crate::storm`]). `None` when the phase stops first.
    pub async fn attempt<'a>(
        &mut self,
        ctx: &'a ClientCtx,
        rec: &mut Recorder,
    ) -> Option<Option<SemaphorePermit<'a>>> {
        let s = &ctx.shared;
        if self.failures > 0 {
            rec.reconnects += 1;
            let jitter = rand::thread_rng().gen::<f64>();
            let lost = storm::Lost {
                transport: s.transport,
                failures: self.failures,
                hint: self.hint,
                refused: self.refused.take(),
            };
            let wait = storm::wait(s.reconnect, &lost, jitter)
                .unwrap_or_else(|| backoff(self.failures, s.targets.len(), jitter));
            if !wait.is_zero() && !pause(&s.stop, wait).await {
                return None;
            }
        }
        if s.stop.is_cancelled() {
            return None;
        }
        self.attempts += 1;
        self.count(ctx, Step::Attempt);
        if s.reconnect.is_client_like() && self.attempts > 1 {
            return Some(None);
        }
        tokio::select! {
            biased;
            _ = s.stop.cancelled() => None,
            p = s.connect_gate.acquire() => p.ok().map(Some),
        }
    }

    /// The subscription or response came: the client is connected (the first time, the phase
    /// is told), and a reconnect, if this ends one, is timed.
    pub fn up(&mut self, ctx: &ClientCtx) {
        if !self.up {
            self.count(ctx, Step::Up);
        }
        self.failures = 0;
        self.up = true;
        self.up_at = Some(clock::now_us());
        if let Some(down) = self.down_since.take() {
            let trip = Reconnect {
                down_us: down,
                up_us: clock::now_us(),
            };
            ctx.shared
                .reconnects
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(trip);
        }
        self.ready(ctx);
    }

    /// Tells the phase this client is connected (once), for a client with nothing to hold open.
    pub fn ready(&mut self, ctx: &ClientCtx) {
        if !self.signalled {
            self.signalled = true;
            ctx.shared
                .live
                .connected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The connection failed or ended, or an attempt did: a working connection counts as a
    /// disconnect (and starts the reconnect clock), and the client moves to the next server.
    pub fn down(&mut self, ctx: &ClientCtx, rec: &mut Recorder) {
        if self.up {
            self.count(ctx, Step::Down);
            self.up = false;
            rec.disconnects += 1;
            let now = clock::now_us();
            self.down_since = Some(now);
            if let Some(at) = self.up_at {
                ctx.shared
                    .lifetimes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(now.saturating_sub(at));
            }
        }
        self.failures = self.failures.saturating_add(1);
        // A client-like client refused by a server that is up tries it again, as it would
        // behind a balancer that health-checks (the server answered, so it is up); anything
        // else moves on.
        if !(ctx.shared.reconnect.is_client_like() && self.refused.is_some()) {
            self.target = next_target(self.target, ctx.shared.targets.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_spread_round_robin_and_fail_over_in_turn() {
        let starts: Vec<usize> = (0..7).map(|i| first_target(i, 3)).collect();
        assert_eq!(starts, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(next_target(0, 3), 1);
        assert_eq!(next_target(2, 3), 0);
        assert_eq!(next_target(0, 1), 0, "one server: back to it");
        assert_eq!(first_target(5, 0), 0, "no division by zero");
    }

    #[test]
    fn backoff_fails_over_at_once_then_grows_to_its_cap() {
        let ms = |d: Duration| d.as_millis();
        // Several servers: the first retry goes straight to the next one.
        assert_eq!(ms(backoff(1, 2, 0.0)), 0);
        assert_eq!(ms(backoff(2, 2, 0.0)), 100);
        assert_eq!(ms(backoff(2, 2, 1.0)), 200);
        assert_eq!(ms(backoff(3, 2, 1.0)), 400);
        // One server: nowhere else to go, so wait from the start.
        assert_eq!(ms(backoff(1, 1, 1.0)), 200);
        assert_eq!(ms(backoff(2, 1, 1.0)), 400);
        assert_eq!(ms(backoff(30, 1, 1.0)), MAX_BACKOFF.as_millis());
        assert_eq!(ms(backoff(30, 1, 0.0)), MAX_BACKOFF.as_millis() / 2);
        assert_eq!(ms(backoff(0, 1, 1.0)), 0);
    }
}
