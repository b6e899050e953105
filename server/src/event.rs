//! One event, serialised once for every wire format.
//!
//! Fan-out is the hot path: the publisher pays for serialisation exactly once, and every
//! connection then shares the same bytes (a reference-count bump), whatever its transport.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

pub type Seq = u64;

/// An event as every transport sends it.
#[derive(Debug)]
pub struct Event {
    pub seq: Seq,
    /// Publish time, microseconds since the Unix epoch.
    pub ts: u64,
    /// `{"seq":N,"ts":T,"data":…}`: a poll body item, and the payload of the WebSocket text frame.
    pub ws: ByteString,
    /// The SSE record: `id: N\ndata: {…}\n\n`.
    pub sse: Bytes,
}

impl Event {
    /// Builds every encoding from `data_json`, which must be one compact JSON value (no raw
    /// newlines: `serde_json` output qualifies).
    pub fn encode(seq: Seq, ts: u64, data_json: &str) -> Self {
        let mut json = String::with_capacity(data_json.len() + 48);
        // Writing to a String cannot fail.
        let _ = write!(json, "{{\"seq\":{seq},\"ts\":{ts},\"data\":{data_json}}}");
        let mut sse = BytesMut::with_capacity(json.len() + 32);
        let _ = write!(sse, "id: {seq}\ndata: ");
        sse.put_slice(json.as_bytes());
        sse.put_slice(b"\n\n");
        Self {
            seq,
            ts,
            ws: ByteString::from(json),
            sse: sse.freeze(),
        }
    }

    /// The event JSON, as it appears inside poll bodies.
    pub fn json(&self) -> &Bytes {
        self.ws.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_carries_the_same_json() {
        let e = Event::encode(7, 123, r#"{"a":"x\ny"}"#);
        assert_eq!(&*e.ws, r#"{"seq":7,"ts":123,"data":{"a":"x\ny"}}"#);
        assert_eq!(e.json().as_ref(), e.ws.as_bytes().as_ref());
        assert_eq!(
            std::str::from_utf8(&e.sse).unwrap(),
            "id: 7\ndata: {\"seq\":7,\"ts\":123,\"data\":{\"a\":\"x\\ny\"}}\n\n"
        );
        let v: serde_json::Value = serde_json::from_slice(e.json()).unwrap();
        assert_eq!(v["data"]["a"], "x\ny");
    }
}
