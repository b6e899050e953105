//! `/stats` before and after a phase: the server's own counts, to check loadgen's against
//! (requests and deliveries must match exactly, bytes within 1%), and the server's CPU and
//! memory when it is not a process loadgen started.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::{header, Request};
use serde::{Deserialize, Serialize};

use crate::net::{self, ByteCounts, Target};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Stats {
    /// The server's version, as its `/stats` gives it (feedlab's server and the floor do).
    #[serde(default)]
    pub version: Option<String>,
    pub feed: Feed,
    #[serde(default)]
    pub transports: BTreeMap<String, TransportCounters>,
    #[serde(default)]
    pub connections: Connections,
    #[serde(default)]
    pub process: Process,
    /// Publishes accepted by way up (`ws`, `http/1.0`, `http/1.1`, `http/2`); empty from a
    /// server that does not count them.
    #[serde(default)]
    pub publishes: BTreeMap<String, PublishCounters>,
}

/// One way up's publish counters in `/stats`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct PublishCounters {
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub bytes_read: u64,
}

impl PublishCounters {
    /// `self - before`, per counter.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            requests: self.requests.saturating_sub(before.requests),
            messages: self.messages.saturating_sub(before.messages),
            bytes_read: self.bytes_read.saturating_sub(before.bytes_read),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
pub struct Feed {
    pub head: u64,
    #[serde(default)]
    pub oldest: u64,
    #[serde(default)]
    pub published: u64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct TransportCounters {
    #[serde(default)]
    pub open: i64,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub events_delivered: u64,
    #[serde(default)]
    pub empty_responses: u64,
    #[serde(default)]
    pub bytes_written: u64,
    #[serde(default)]
    pub messages_received: u64,
    /// The payload the server wrote before compressing it (`bytes_written` is after); absent
    /// from a server without compression.
    #[serde(default)]
    pub payload_bytes_uncompressed: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Connections {
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub open_streams: i64,
    #[serde(default)]
    pub refused: u64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
pub struct Process {
    #[serde(default)]
    pub cpu_s: f64,
    #[serde(default)]
    pub rss_bytes: u64,
    #[serde(default)]
    pub rss_peak_bytes: u64,
}

impl Stats {
    pub fn transport(&self, name: &str) -> TransportCounters {
        self.transports.get(name).copied().unwrap_or_default()
    }
}

impl TransportCounters {
    /// `self - before`, per counter.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            open: self.open,
            requests: self.requests.saturating_sub(before.requests),
            events_delivered: self
                .events_delivered
                .saturating_sub(before.events_delivered),
            empty_responses: self.empty_responses.saturating_sub(before.empty_responses),
            bytes_written: self.bytes_written.saturating_sub(before.bytes_written),
            messages_received: self
                .messages_received
                .saturating_sub(before.messages_received),
            payload_bytes_uncompressed: self
                .payload_bytes_uncompressed
                .map(|a| a.saturating_sub(before.payload_bytes_uncompressed.unwrap_or(0))),
        }
    }
}

/// Reads `/stats` on a connection of its own (not counted as any client's traffic).
///
/// # Errors
/// When the server cannot be reached or does not answer JSON of the expected shape.
pub async fn stats(target: &Target) -> anyhow::Result<Stats> {
    let wire = std::sync::Arc::new(ByteCounts::default());
    let stream = net::connect(target, None, &wire, net::Alpn::Http1).await?;
    let (mut sender, task) =
        net::http::<Empty<Bytes>>(stream, crate::net::HttpVersion::Http11).await?;
    let req = Request::get(target.path("/stats"))
        .header(header::HOST, &target.host)
        .body(Empty::new())?;
    let res = tokio::time::timeout(crate::net::RESPONSE_TIMEOUT, async {
        let res = sender.send_request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    })
    .await
    .map_err(|_| anyhow::anyhow!("GET /stats timed out"))??;
    drop(sender);
    task.abort();
    anyhow::ensure!(res.0.is_success(), "GET /stats answered {}", res.0);
    Ok(serde_json::from_slice(&res.1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_before_compressing_is_read_when_the_server_reports_it() {
        let old: Stats = serde_json::from_str(
            r#"{"feed":{"head":1},"transports":{"sse":{"bytes_written":10}}}"#,
        )
        .unwrap();
        assert_eq!(old.transport("sse").payload_bytes_uncompressed, None);
        let before: Stats = serde_json::from_str(
            r#"{"feed":{"head":1},"transports":{"sse":{"bytes_written":10,"payload_bytes_uncompressed":30}}}"#,
        )
        .unwrap();
        let after: Stats = serde_json::from_str(
            r#"{"feed":{"head":9},"transports":{"sse":{"bytes_written":110,"payload_bytes_uncompressed":430}}}"#,
        )
        .unwrap();
        let d = after.transport("sse").since(&before.transport("sse"));
        assert_eq!(
            (d.bytes_written, d.payload_bytes_uncompressed),
            (100, Some(400))
        );
        // An older server (no such counter) gives no figure, not a wrong one.
        assert_eq!(
            old.transport("sse")
                .since(&before.transport("sse"))
                .payload_bytes_uncompressed,
            None
        );
    }
}
