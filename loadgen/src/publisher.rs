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
//! would make loss invisible rather than absent.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{header, Request};
use tokio_util::sync::CancellationToken;

use crate::{
    cli::HttpVersion,
    clock::{self, Pace},
    net::{self, Target, Wire},
    stats::{new_histogram, ErrorCounts, Quantiles},
};

/// How long past the end of publishing an unacknowledged publish is still retried (a server
/// that does not come back must not hold the phase forever).
pub const RETRY_GRACE: Duration = Duration::from_secs(15);

/// What the publisher did in one phase.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Published {
    /// Events the server confirmed (`{"seq":N}`).
    pub published: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Average `data` size in bytes (the payload every transport must carry).
    pub data_bytes: f64,
    /// How late each publish left against its intended time, µs.
    pub send_lag_us: Quantiles,
    /// Request → response time of `POST /publish`, µs (of the attempt that was answered).
    pub rtt_us: Quantiles,
    pub errors: ErrorCounts,
    /// Publish attempts repeated after a failure (on the next server, when there are several).
    #[serde(default)]
    pub retried: u64,
    /// Of those, attempts whose request may have reached a server that then failed to answer:
    /// such an event may be in the feed twice, under two seqs (the server takes no idempotency
    /// key).
    #[serde(default)]
    pub maybe_twice: u64,
    /// Events never acknowledged, even after retrying until [`RETRY_GRACE`] past the end.
    #[serde(default)]
    pub unacknowledged: u64,
    /// The seqs acknowledged, sorted: an event is lost only if it is one of these and a client
    /// never received it.
    #[serde(skip)]
    pub acked: Vec<u64>,
    /// Bytes the publisher wrote (its `POST /publish` requests, on HTTP/1.1), for the check of
    /// the clients' own publishes against the server's counts, which include these.
    #[serde(skip)]
    pub bytes_up: u64,
}

/// The `data` of publish number `n`: `{"sent_us":…,"pub":n,"pad":"xxx…"}`.
pub fn body(n: u64, sent_us: u64, pad: &str) -> String {
    format!(r#"{{"sent_us":{sent_us},"pub":{n},"pad":"{pad}"}}"#)
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

/// One publish attempt's result (the publisher's and every talking-back client's).
pub(crate) enum Attempt {
    Acked(u64),
    /// The server answered with a status that retrying will not change (a 4xx).
    Refused(String),
    /// No usable answer; `maybe_stored`: the request may have reached the server.
    Failed {
        kind: String,
        maybe_stored: bool,
    },
}

type Conn = (net::Sender<Full<Bytes>>, tokio::task::JoinHandle<()>);

/// Publishes at `rate` per second for `duration` from now (and returns no earlier), or until
/// `stop`, to `targets[0]`; a publish that gets no acknowledgement is sent again (with its
/// original send time, so the outage shows in its latency), to the next target when there are
/// several, until it is acknowledged or [`RETRY_GRACE`] after the end.
pub async fn run(
    targets: Vec<Arc<Target>>,
    rate: f64,
    duration: Duration,
    payload_bytes: usize,
    stamp: Stamp,
    stop: CancellationToken,
) -> Published {
    let pad = "x".repeat(payload_bytes);
    let start = tokio::time::Instant::now();
    let give_up = start + duration + RETRY_GRACE;
    let pace = Pace::per_second(start, rate);
    let total = pace.count_within(duration);
    let wire = Arc::new(Wire::default());
    let mut out = Published::default();
    let mut lag = new_histogram();
    let mut rtt = new_histogram();
    let mut data_total = 0u64;
    // Bodies actually built: after Ctrl-C fewer than `total`, and the average is over these.
    let mut bodies = 0u64;
    let mut conn: Option<Conn> = None;
    let mut current = 0usize;
    'events: for n in 0..total {
        let due = pace.intended(n);
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        let mut first_sent: Option<u64> = None;
        let mut failures = 0u32;
        loop {
            if failures > 0 {
                out.retried += 1;
                let wait = crate::client::link::backoff(failures, targets.len(), 0.5);
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
                        current = crate::client::link::next_target(current, targets.len());
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
            let data = body(n, sent, &pad);
            if failures == 0 {
                data_total += data.len() as u64;
                bodies += 1;
            }
            let attempt_at = clock::now_us();
            match publish(sender, target, data).await {
                Attempt::Acked(seq) => {
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
                    if maybe_stored {
                        out.maybe_twice += 1;
                    }
                    conn = None;
                    failures += 1;
                    current = crate::client::link::next_target(current, targets.len());
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
        out.data_bytes = body(0, clock::now_us(), &pad).len() as f64;
    }
    out.acked.sort_unstable();
    out.bytes_up = wire.written();
    out.send_lag_us = Quantiles::of(&lag);
    out.rtt_us = Quantiles::of(&rtt);
    out
}

async fn connect(target: &Target, wire: &Arc<Wire>) -> Result<Conn, String> {
    match net::connect(target, None, wire, net::Alpn::Http1).await {
        Ok(stream) => net::http(stream, HttpVersion::Http11)
            .await
            .map_err(|e| net::hyper_error_kind(&e).to_owned()),
        Err(e) => Err(net::io_error_kind(&e).to_owned()),
    }
}

async fn publish(sender: &mut net::Sender<Full<Bytes>>, target: &Target, data: String) -> Attempt {
    let req = Request::post(target.path("/publish"))
        .header(header::HOST, &target.host)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(data)));
    let Ok(req) = req else {
        return Attempt::Refused("bad_request".into());
    };
    send_publish(sender, req).await
}

/// Sends one `POST /publish` and reads its `{"seq":N}` (within [`crate::client::RESPONSE_TIMEOUT`]).
pub(crate) async fn send_publish<B>(sender: &mut net::Sender<B>, req: Request<B>) -> Attempt
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Err(e) = sender.ready().await {
        return Attempt::Failed {
            kind: net::hyper_error_kind(&e).into(),
            maybe_stored: false,
        };
    }
    let result = tokio::time::timeout(crate::client::RESPONSE_TIMEOUT, async {
        let res = sender.send_request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    })
    .await;
    match result {
        Ok(Ok((status, body))) if status.is_success() => {
            match serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["seq"].as_u64())
            {
                Some(seq) => Attempt::Acked(seq),
                None => Attempt::Refused("bad_body".into()),
            }
        }
        // 5xx: the server (or the proxy in front of it) could not store it now; try again.
        Ok(Ok((status, _))) if status.is_server_error() => Attempt::Failed {
            kind: format!("http_{}", status.as_u16()),
            maybe_stored: false,
        },
        Ok(Ok((status, _))) => Attempt::Refused(format!("http_{}", status.as_u16())),
        Ok(Err(e)) => Attempt::Failed {
            kind: net::hyper_error_kind(&e).into(),
            maybe_stored: true,
        },
        Err(_) => Attempt::Failed {
            kind: "timeout".into(),
            maybe_stored: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_json_with_the_probe_fields() {
        let b = body(3, 1_764_000_000_000_000, "xxxx");
        let e: crate::event::Probe = serde_json::from_str(&b).unwrap();
        assert_eq!(e.pub_n, Some(3));
        assert_eq!(e.sent_us, Some(1_764_000_000_000_000));
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["pad"].as_str().unwrap().len(), 4);
    }
}
