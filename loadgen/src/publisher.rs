//! The one publisher: `POST /publish` on one keep-alive connection, at fixed intended times.
//!
//! loadgen publishes the events itself so that it knows exactly which seqs exist (integrity) and
//! when each left (latency, on loadgen's own clock). Its send time goes into `data.sent_us`; the
//! receipt time minus that is the delivery latency, true even against a remote server.
//! Pacing follows [`Pace`]: if a publish is slow, the next ones go out at once until the
//! schedule is met again, so the rate is what was asked for (how late each went out is reported).

use std::sync::Arc;

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
    /// Request → response time of `POST /publish`, µs.
    pub rtt_us: Quantiles,
    pub errors: ErrorCounts,
}

/// The `data` of publish number `n`: `{"sent_us":…,"pub":n,"pad":"xxx…"}`.
pub fn body(n: u64, sent_us: u64, pad: &str) -> String {
    format!(r#"{{"sent_us":{sent_us},"pub":{n},"pad":"{pad}"}}"#)
}

/// Publishes at `rate` per second for `duration` from now (and returns no earlier), or until
/// `stop`.
pub async fn run(
    target: Arc<Target>,
    rate: f64,
    duration: std::time::Duration,
    payload_bytes: usize,
    stop: CancellationToken,
) -> Published {
    let pad = "x".repeat(payload_bytes);
    let start = tokio::time::Instant::now();
    let pace = Pace::per_second(start, rate);
    let total = pace.count_within(duration);
    let wire = Arc::new(Wire::default());
    let mut out = Published::default();
    let mut lag = new_histogram();
    let mut rtt = new_histogram();
    let mut data_total = 0u64;
    let mut conn: Option<(net::Sender<Full<Bytes>>, tokio::task::JoinHandle<()>)> = None;
    for n in 0..total {
        let due = pace.intended(n);
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        if conn.is_none() {
            match net::connect(&target, None, &wire, net::Alpn::Http1).await {
                Ok(stream) => match net::http(stream, HttpVersion::Http11).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        *out.errors
                            .entry(net::hyper_error_kind(&e).into())
                            .or_insert(0) += 1;
                        continue;
                    }
                },
                Err(e) => {
                    *out.errors.entry(net::io_error_kind(&e).into()).or_insert(0) += 1;
                    continue;
                }
            }
        }
        // unwrap: set just above.
        let (sender, _) = conn.as_mut().expect("publisher connection");
        let sent = clock::now_us();
        lag.saturating_record(
            tokio::time::Instant::now()
                .saturating_duration_since(due)
                .as_micros() as u64
                + 1,
        );
        let data = body(n, sent, &pad);
        data_total += data.len() as u64;
        let req = Request::post(target.path("/publish"))
            .header(header::HOST, &target.host)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(data)));
        let Ok(req) = req else { continue };
        let result = tokio::time::timeout(crate::client::RESPONSE_TIMEOUT, async {
            sender.ready().await?;
            let res = sender.send_request(req).await?;
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        match result {
            Ok(Ok((status, body))) if status.is_success() => {
                rtt.saturating_record(clock::now_us().saturating_sub(sent).max(1));
                match serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["seq"].as_u64())
                {
                    Some(seq) => {
                        out.published += 1;
                        out.first_seq.get_or_insert(seq);
                        out.last_seq = Some(out.last_seq.map_or(seq, |l| l.max(seq)));
                    }
                    None => *out.errors.entry("bad_body".into()).or_insert(0) += 1,
                }
            }
            Ok(Ok((status, _))) => {
                *out.errors
                    .entry(format!("http_{}", status.as_u16()))
                    .or_insert(0) += 1;
            }
            Ok(Err(e)) => {
                *out.errors
                    .entry(net::hyper_error_kind(&e).into())
                    .or_insert(0) += 1;
                conn = None;
            }
            Err(_) => {
                *out.errors.entry("timeout".into()).or_insert(0) += 1;
                conn = None;
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
    if total > 0 {
        out.data_bytes = data_total as f64 / total.max(1) as f64;
    } else {
        out.data_bytes = body(0, clock::now_us(), &pad).len() as f64;
    }
    out.send_lag_us = Quantiles::of(&lag);
    out.rtt_us = Quantiles::of(&rtt);
    out
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
