//! One event, serialised once for every wire format.
//!
//! Fan-out is the hot path: the publisher pays for serialisation exactly once, and every
//! connection then shares the same bytes (a reference-count bump), whatever its transport.
//! The gzip'd forms ([`Event::sse_gzip`], [`Event::json_gzip`]) are made on first need, once,
//! and shared the same way; an event no one asked gzip for is never compressed.

use std::{fmt::Write as _, sync::OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::compress::Piece;

pub type Seq = u64;

/// An event as every transport sends it.
#[derive(Debug)]
pub struct Event {
    pub seq: Seq,
    /// Publish time, microseconds since the Unix epoch.
    pub ts: u64,
    /// `{"seq":N,"ts":T,"data":…}`: a poll body item, and the payload of the WebSocket text frame.
    /// A view into `ws_frame`, not a copy.
    pub ws: ByteString,
    /// The whole WebSocket text frame, header included. Server frames are unmasked, so these
    /// bytes are the same for every client: the fast path writes them as they are.
    pub ws_frame: Bytes,
    /// The frame for permessage-deflate clients of `--ws-deflate shared`: the payload
    /// compressed on its own (RSV1 set), or `ws_frame` again when that is no larger or too short
    /// to compress. Made by the first such client to need it, so a feed without deflate clients
    /// never pays for it.
    pub(crate) ws_deflated: OnceLock<Bytes>,
    /// The SSE record: `id: N\ndata: {…}\n\n`. A view into `sse_chunk`.
    pub sse: Bytes,
    /// The SSE record as one HTTP/1.1 chunk (`<hex length>\r\n<record>\r\n`), which the fast
    /// path writes as it is.
    pub sse_chunk: Bytes,
    /// `sse` as a shared deflate piece, made by the first gzip'd SSE response that sends it.
    sse_gzip: OnceLock<Piece>,
    /// `json()` as a shared deflate piece, made by the first gzip'd poll that sends it.
    json_gzip: OnceLock<Piece>,
    /// The feed's terminal event (`POST /publish?end=1`): its JSON says `"end":true`, and
    /// every stream ends after it.
    pub end: bool,
    /// The binary WebSocket frame (`/ws?encoding=binary`, [`crate::transport::ws::binary`]),
    /// made by the first binary client to need it.
    pub(crate) ws_binary: OnceLock<Bytes>,
}

impl Event {
    /// Builds every encoding from `data_json`, which must be one compact JSON value (no raw
    /// newlines: `serde_json` output qualifies).
    pub fn encode(seq: Seq, ts: u64, data_json: &str) -> Self {
        Self::encode_as(seq, ts, data_json, false)
    }

    /// [`Event::encode`], for a feed's terminal event when `end`: the envelope gains
    /// `"end":true` after `data`.
    pub fn encode_as(seq: Seq, ts: u64, data_json: &str, end: bool) -> Self {
        let mut json = feedlab_wire::envelope(seq, ts, data_json);
        if end {
            json.pop();
            json.push_str(END_MARK);
        }
        let record_len = "id: \ndata: \n\n".len() + decimal_len(seq) + json.len();
        let mut sse = BytesMut::with_capacity(record_len + 24);
        let _ = write!(sse, "{record_len:x}\r\n");
        let start = sse.len();
        let _ = write!(sse, "id: {seq}\ndata: ");
        sse.put_slice(json.as_bytes());
        sse.put_slice(b"\n\n");
        debug_assert_eq!(sse.len() - start, record_len);
        sse.put_slice(b"\r\n");
        let sse_chunk = sse.freeze();
        let ws_frame = text_frame(json.as_bytes());
        let header = ws_frame.len() - json.len();
        // The payload is the JSON just written, so it is UTF-8.
        let ws = ByteString::try_from(ws_frame.slice(header..))
            .unwrap_or_else(|_| ByteString::from(json));
        Self {
            seq,
            ts,
            ws,
            ws_frame,
            ws_deflated: OnceLock::new(),
            sse: sse_chunk.slice(start..start + record_len),
            sse_chunk,
            sse_gzip: OnceLock::new(),
            json_gzip: OnceLock::new(),
            end,
            ws_binary: OnceLock::new(),
        }
    }

    /// The event's `data`, as the compact JSON it was published with.
    pub fn data_json(&self) -> &str {
        let tail = if self.end { END_MARK.len() } else { 1 };
        let s: &str = &self.ws;
        // `{"seq":N,"ts":T,"data":` comes first; the data runs to the envelope's tail.
        s.find("\"data\":")
            .map_or("null", |at| &s[at + 7..s.len() - tail])
    }

    /// The SSE record, compressed once for every gzip'd stream (`--http-gzip shared`).
    pub fn sse_gzip(&self) -> &Piece {
        self.sse_gzip.get_or_init(|| Piece::compressed(&self.sse))
    }

    /// The event JSON, compressed once for every gzip'd poll body (`--http-gzip shared`).
    pub fn json_gzip(&self) -> &Piece {
        self.json_gzip
            .get_or_init(|| Piece::compressed(self.json()))
    }

    /// The event JSON, as it appears inside poll bodies.
    pub fn json(&self) -> &Bytes {
        self.ws.as_bytes()
    }
}

/// How a terminal event's envelope ends.
const END_MARK: &str = ",\"end\":true}";

fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

pub use feedlab_wire::text_frame;

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
        let chunk = format!(
            "{:x}\r\n{}\r\n",
            e.sse.len(),
            std::str::from_utf8(&e.sse).unwrap()
        );
        assert_eq!(std::str::from_utf8(&e.sse_chunk).unwrap(), chunk);
        for seq in [0, 9, 10, 99, 100, u64::MAX] {
            let e = Event::encode(seq, 1, "1");
            assert_eq!(
                &e.sse_chunk[e.sse_chunk.len() - e.sse.len() - 2..][..e.sse.len()],
                &e.sse[..]
            );
        }
        assert_eq!(&e.ws_frame[..2], &[0x81, e.ws.len() as u8]);
        assert_eq!(&e.ws_frame[2..], e.ws.as_bytes());
    }

    #[test]
    fn frames_decode_with_actix_http_codec_at_every_length_class() {
        use actix_http::ws::{Codec, Frame};
        use tokio_util::codec::Decoder as _;
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 100_000] {
            let payload = "x".repeat(len);
            let mut buf = BytesMut::from(&text_frame(payload.as_bytes())[..]);
            let frame = Codec::new()
                .client_mode()
                .max_size(1 << 20)
                .decode(&mut buf)
                .unwrap()
                .unwrap();
            match frame {
                Frame::Text(t) => assert_eq!(t.len(), len),
                other => panic!("{other:?}"),
            }
            assert!(buf.is_empty());
        }
    }
}
