//! The one publisher: `POST /publish` on one keep-alive connection, at fixed intended times.
//!
//! loadgen publishes the events itself so that it knows exactly which seqs exist (integrity) and
//! when each left (latency, on loadgen's own clock). Its send time goes into `data.sent_us`; the
//! receipt time minus that is the delivery latency, true even against a remote server.
//! Pacing follows [`Pace`]: if a publish is slow, the next ones go out at once until the
//! schedule is met again, so the rate is what was asked for (how late each went out is reported).
//!
//! When servers die (`--chaos`) a publish may go unanswered. It is sent again until acknowledged
//! (failing over when there are several servers), because the integrity check counts an event as
//! lost only when it was acknowledged and never delivered: giving up on an unanswered publish
//! would make loss invisible rather than absent. Every publish carries an `Idempotency-Key`
//! (unique to the run and the event) and its retries the same key and body, so a retry of a
//! publish that had in fact been stored gets the first seq back instead of a second copy; the
//! server says so (`Idempotent-Replayed`), and an acknowledgement without that header (a server
//! that ignores keys) leaves the event counted as `maybe_twice`.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use feedlab_report::Published;
use http_body_util::{BodyExt as _, Full};
use hyper::{header, Request};
use tokio_util::sync::CancellationToken;

use crate::{
    client::target::Channel,
    clock::{self, Pace},
    net::HttpVersion,
    net::{self, ByteCounts, Target},
    stats::{new_histogram, Quantiles},
};

/// How long past the end of publishing an unacknowledged publish is still retried (a server
/// that does not come back must not hold the phase forever).
pub const RETRY_GRACE: Duration = Duration::from_secs(15);

/// The `data` of publish number `n`: `{"sent_us":…,"pub":n,…}` with the payload's `fields`
/// (see [`crate::payload`]) after loadgen's own two.
pub fn body(n: u64, sent_us: u64, fields: &str) -> String {
    format!(r#"{{"sent_us":{sent_us},"pub":{n},{fields}}}"#)
}

/// Which time goes into an event's `sent_us`, the start of its measured latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// When its first publish request left (the default: latency is the delivery's own).
    Sent,
    /// When it was due by the schedule (`--chaos`): events that could not be sent while no
    /// server answered carry that wait, as a user waiting for them would.
    Intended,
}

/// The `Idempotency-Key` of publish number `n` of a phase whose keys start with `run`.
pub fn key(run: u64, n: u64) -> String {
    format!("loadgen-{run:016x}-{n}")
}

/// One publish attempt's result (the publisher's and every talking-back client's).
pub(crate) enum Attempt {
    /// `replayed`: the server's `Idempotent-Replayed` header, if it sent one.
    Acked { seq: u64, replayed: Option<bool> },
    /// The server answered with a status that retrying will not change (a 4xx).
    Refused(String),
    /// No usable answer; `maybe_stored`: the request may have reached the server.
    Failed { kind: String, maybe_stored: bool },
}

type Conn = (net::Sender<Full<Bytes>>, tokio::task::JoinHandle<()>);

/// Publishes at `rate` per second for `duration` from now (and returns no earlier), or until
/// `stop`, to `targets[0]`; a publish that gets no acknowledgement is sent again (with its
/// original send time, so the outage shows in its latency), to the next target when there are
/// several, until it is acknowledged or [`RETRY_GRACE`] after the end. With a peer's
/// `channel`, each event goes to that channel as the whole envelope, seq `n + 1` for publish
/// number `n`, in the body the peer's adapter makes of it (see [`crate::client::target`]).
pub async fn run(
    targets: Vec<Arc<Target>>,
    rate: f64,
    duration: Duration,
    payload: crate::payload::Payload,
    stamp: Stamp,
    stop: CancellationToken,
    channel: Option<Arc<Channel>>,
) -> Published {
    let start = tokio::time::Instant::now();
    let give_up = start + duration + RETRY_GRACE;
    let pace = Pace::per_second(start, rate);
    let total = pace.count_within(duration);
    let wire = Arc::new(ByteCounts::default());
    let mut out = Published::default();
    let mut lag = new_histogram();
    let mut rtt = new_histogram();
    let mut data_total = 0u64;
    // Bodies actually built: after Ctrl-C fewer than `total`, and the average is over these.
    let mut bodies = 0u64;
    let mut conn: Option<Conn> = None;
    let mut current = 0usize;
    // Unique per phase, so a server reused across phases never mistakes one for another.
    let run_id: u64 = rand::random();
    'events: for n in 0..total {
        let due = pace.intended(n);
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        let mut first_sent: Option<u64> = None;
        let mut failures = 0u32;
        let mut maybe_stored_before = false;
        let key = key(run_id, n);
        loop {
            if failures > 0 {
                out.retried += 1;
                let wait = crate::client::failover::backoff(failures, targets.len(), 0.5);
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => { out.unacknowledged += 1; break 'events; }
                    _ = tokio::time::sleep(wait) => {}
                }
                if tokio::time::Instant::now() >= give_up {
                    out.unacknowledged += total - n;
                    break 'events;
                }
            }
            let target = &targets[current];
            if conn.is_none() {
                match connect(target, &wire).await {
                    Ok(c) => conn = Some(c),
                    Err(kind) => {
                        *out.errors.entry(kind).or_insert(0) += 1;
                        failures += 1;
                        current = crate::client::failover::next_target(current, targets.len());
                        continue;
                    }
                }
            }
            // unwrap: set just above.
            let (sender, _) = conn.as_mut().expect("publisher connection");
            let sent = *first_sent.get_or_insert_with(|| {
                let late = tokio::time::Instant::now()
                    .saturating_duration_since(due)
                    .as_micros() as u64;
                lag.saturating_record(late + 1);
                match stamp {
                    Stamp::Sent => clock::now_us(),
                    Stamp::Intended => clock::now_us().saturating_sub(late),
                }
            });
            let data = body(n, sent, &payload.fields(n));
            if failures == 0 {
                data_total += data.len() as u64;
                bodies += 1;
            }
            let (data, peer) = match &channel {
                Some(channel) => (
                    channel.publish_body(n + 1, sent, &data),
                    Some((channel.as_ref(), n + 1)),
                ),
                None => ((data, "application/json"), None),
            };
            let attempt_at = clock::now_us();
            match publish(sender, target, &key, data, peer).await {
                Attempt::Acked { seq, replayed } => {
                    match replayed {
                        Some(true) => out.replayed += 1,
                        Some(false) => {}
                        None if maybe_stored_before => out.maybe_twice += 1,
                        None => {}
                    }
                    rtt.saturating_record(clock::now_us().saturating_sub(attempt_at).max(1));
                    out.published += 1;
                    out.first_seq.get_or_insert(seq);
                    out.last_seq = Some(out.last_seq.map_or(seq, |l| l.max(seq)));
                    out.acked.push(seq);
                    break;
                }
                Attempt::Refused(kind) => {
                    *out.errors.entry(kind).or_insert(0) += 1;
                    break;
                }
                Attempt::Failed { kind, maybe_stored } => {
                    *out.errors.entry(kind).or_insert(0) += 1;
                    maybe_stored_before |= maybe_stored;
                    conn = None;
                    failures += 1;
                    current = crate::client::failover::next_target(current, targets.len());
                }
            }
        }
    }
    if let Some((sender, task)) = conn.take() {
        drop(sender);
        crate::client::close(task).await;
    }
    // The phase lasts `duration` whatever the rate (at rate 0 it measures idle connections).
    tokio::select! {
        biased;
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep_until(start + duration) => {}
    }
    if bodies > 0 {
        out.data_bytes = data_total as f64 / bodies as f64;
    } else {
        out.data_bytes = body(0, clock::now_us(), &payload.fields(0)).len() as f64;
    }
    out.acked.sort_unstable();
    out.bytes_up = wire.written();
    out.send_lag_us = Quantiles::of(&lag);
    out.rtt_us = Quantiles::of(&rtt);
    out
}

async fn connect(target: &Target, wire: &Arc<ByteCounts>) -> Result<Conn, String> {
    match net::connect(target, None, wire, net::Alpn::Http1).await {
        Ok(stream) => net::http(stream, HttpVersion::Http11)
            .await
            .map_err(|e| net::hyper_error_kind(&e).to_owned()),
        Err(e) => Err(net::io_error_kind(&e).to_owned()),
    }
}

/// One `POST` of `(body, content type)`, with its idempotency key; `peer`: the channel and
/// the seq the body carries.
async fn publish(
    sender: &mut net::Sender<Full<Bytes>>,
    target: &Target,
    key: &str,
    (data, content_type): (String, &'static str),
    peer: Option<(&Channel, u64)>,
) -> Attempt {
    let path = peer.map_or("/publish", |(channel, _)| channel.publish.as_str());
    let req = Request::post(target.path(path))
        .header(header::HOST, &target.host)
        .header(header::CONTENT_TYPE, content_type)
        .header(feedlab_wire::IDEMPOTENCY_KEY, key)
        // Nchan answers with the channel's state, as JSON when asked.
        .header(header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(data)));
    let Ok(req) = req else {
        return Attempt::Refused("bad_request".into());
    };
    match exchange(sender, req).await {
        Err(failed) => failed,
        Ok((status, _, body)) if status.is_success() && peer.is_some() => {
            let Some((channel, seq)) = peer else {
                return Attempt::Refused("bad_body".into());
            };
            // Stored either way; without its id a reconnect resumes from an earlier message.
            channel.acknowledged_body(seq, &body);
            Attempt::Acked {
                seq,
                replayed: None,
            }
        }
        Ok((status, replayed, body)) => answer(status, replayed, &body),
    }
}

/// Sends one `POST /publish` to feedlab's server and reads its `{"seq":N}` (within
/// [`crate::client::RESPONSE_TIMEOUT`]): the talking-back clients' way up.
pub(crate) async fn send_publish<B>(sender: &mut net::Sender<B>, req: Request<B>) -> Attempt
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match exchange(sender, req).await {
        Ok((status, replayed, body)) => answer(status, replayed, &body),
        Err(failed) => failed,
    }
}

/// One request and its whole answer: status, the `Idempotent-Replayed` header if any, body;
/// or the failed attempt.
async fn exchange<B>(
    sender: &mut net::Sender<B>,
    req: Request<B>,
) -> Result<(hyper::StatusCode, Option<bool>, Bytes), Attempt>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Err(e) = sender.ready().await {
        return Err(Attempt::Failed {
            kind: net::hyper_error_kind(&e).into(),
            maybe_stored: false,
        });
    }
    let result = tokio::time::timeout(crate::client::RESPONSE_TIMEOUT, async {
        let res = sender.send_request(req).await?;
        let status = res.status();
        let replayed = res
            .headers()
            .get(feedlab_wire::IDEMPOTENT_REPLAYED)
            .map(|v| v.as_bytes() == b"true");
        let body = res.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, replayed, body))
    })
    .await;
    match result {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(Attempt::Failed {
            kind: net::hyper_error_kind(&e).into(),
            maybe_stored: true,
        }),
        Err(_) => Err(Attempt::Failed {
            kind: "timeout".into(),
            maybe_stored: true,
        }),
    }
}

/// feedlab's answer to a publish.
fn answer(status: hyper::StatusCode, replayed: Option<bool>, body: &[u8]) -> Attempt {
    if status.is_success() {
        return match serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["seq"].as_u64())
        {
            Some(seq) => Attempt::Acked { seq, replayed },
            None => Attempt::Refused("bad_body".into()),
        };
    }
    // 5xx: the server (or the proxy in front of it) could not store it now; try again.
    if status.is_server_error() {
        Attempt::Failed {
            kind: format!("http_{}", status.as_u16()),
            maybe_stored: false,
        }
    } else {
        Attempt::Refused(format!("http_{}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_per_phase_and_event() {
        assert_eq!(key(0xab, 7), "loadgen-00000000000000ab-7");
        assert_ne!(key(1, 7), key(2, 7));
        assert_ne!(key(1, 7), key(1, 8));
    }

    #[test]
    fn body_is_json_with_the_probe_fields() {
        let b = body(3, 1_764_000_000_000_000, r#""pad":"xxxx""#);
        let e: crate::event::Marks = serde_json::from_str(&b).unwrap();
        assert_eq!(e.pub_n, Some(3));
        assert_eq!(e.sent_us, Some(1_764_000_000_000_000));
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["pad"].as_str().unwrap().len(), 4);
    }
}
