//! Every byte the floor sends for an event, built once at publish time.
//!
//! The floor's claim is that fan-out costs one `write` per client and nothing else, so all
//! framing happens here, before the event is shared: the WebSocket text frame is complete
//! (header and payload), and the SSE record is already wrapped in its HTTP/1.1 chunk, so an SSE
//! write needs no per-connection chunk header either. Connections only ever copy these bytes
//! (or, for one event, hand the shared `Bytes` straight to the socket).

use std::fmt::Write as _;

use base64::Engine as _;
use bytes::{BufMut as _, Bytes, BytesMut};
use sha1::{Digest as _, Sha1};

/// The GUID RFC 6455 appends to `Sec-WebSocket-Key` before hashing (section 1.3).
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The last chunk of a chunked HTTP/1.1 body: ends an SSE response.
pub const CHUNKED_END: &[u8] = b"0\r\n\r\n";

/// `{"seq":N,"ts":T,"data":…}`, the one JSON every transport carries; `data_json` must be one
/// compact JSON value (no raw newline, so it fits on one SSE `data:` line).
pub fn event_json(seq: u64, ts_us: u64, data_json: &str) -> String {
    let mut json = String::with_capacity(data_json.len() + 48);
    // Writing to a String cannot fail.
    let _ = write!(
        json,
        "{{\"seq\":{seq},\"ts\":{ts_us},\"data\":{data_json}}}"
    );
    json
}

/// A complete server-to-client WebSocket text frame: FIN + opcode 1, no mask, the 7-, 16- or
/// 64-bit length (RFC 6455 section 5.2), then `payload`.
pub fn ws_text_frame(payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(payload.len() + 10);
    frame.put_u8(0x81);
    match payload.len() {
        len @ 0..=125 => frame.put_u8(len as u8),
        len @ 126..=0xFFFF => {
            frame.put_u8(126);
            frame.put_u16(len as u16);
        }
        len => {
            frame.put_u8(127);
            frame.put_u64(len as u64);
        }
    }
    frame.put_slice(payload);
    frame.freeze()
}

/// A close frame with a status `code` and no reason: the whole of the floor's close handshake.
pub const fn ws_close_frame(code: u16) -> [u8; 4] {
    let [hi, lo] = code.to_be_bytes();
    [0x88, 0x02, hi, lo]
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn ws_accept(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The SSE record of an event (`id: N\ndata: <json>\n\n`) as one HTTP/1.1 chunk.
pub fn sse_event_chunk(seq: u64, json: &str) -> Bytes {
    let mut record = String::with_capacity(json.len() + 32);
    let _ = write!(record, "id: {seq}\ndata: {json}\n\n");
    http_chunk(record.as_bytes())
}

/// `data` framed as one chunk of a chunked body: hex length, CRLF, data, CRLF.
pub fn http_chunk(data: &[u8]) -> Bytes {
    let mut chunk = BytesMut::with_capacity(data.len() + 20);
    let _ = write!(chunk, "{:x}\r\n", data.len());
    chunk.put_slice(data);
    chunk.put_slice(b"\r\n");
    chunk.freeze()
}

/// What a client whose cursor fell out of retention is told before the events that remain:
/// the same notices the real server sends (`missed` events lost, up to seq `up_to`).
pub fn ws_missed_frame(missed: u64, up_to: u64) -> Bytes {
    ws_text_frame(format!("{{\"op\":\"missed\",\"missed\":{missed},\"next\":{up_to}}}").as_bytes())
}

/// The SSE form of [`ws_missed_frame`], chunk-framed.
pub fn sse_missed_chunk(missed: u64, up_to: u64) -> Bytes {
    http_chunk(
        format!("event: missed\ndata: {{\"missed\":{missed},\"next\":{up_to}}}\n\n").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_is_the_rfc_6455_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            ws_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn ws_frames_use_the_shortest_length_form() {
        let f = ws_text_frame(b"hi");
        assert_eq!(&f[..], b"\x81\x02hi");
        let f = ws_text_frame(&[b'a'; 125]);
        assert_eq!((f[1], f.len()), (125, 127));
        let f = ws_text_frame(&[b'a'; 126]);
        assert_eq!((&f[1..4], f.len()), (&[126, 0, 126][..], 130));
        let f = ws_text_frame(&[b'a'; 65_536]);
        assert_eq!(&f[1..10], &[127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(f.len(), 65_536 + 10);
        assert_eq!(ws_close_frame(1000), [0x88, 2, 0x03, 0xE8]);
    }

    #[test]
    fn sse_record_is_one_complete_chunk() {
        let json = event_json(7, 123, r#"{"a":"x\ny"}"#);
        assert_eq!(json, r#"{"seq":7,"ts":123,"data":{"a":"x\ny"}}"#);
        let chunk = sse_event_chunk(7, &json);
        let record = format!("id: 7\ndata: {json}\n\n");
        assert_eq!(
            std::str::from_utf8(&chunk).unwrap(),
            format!("{:x}\r\n{record}\r\n", record.len())
        );
        assert_eq!(&http_chunk(&[b'x'; 16])[..4], b"10\r\n");
    }

    #[test]
    fn missed_notices_match_the_real_servers() {
        assert_eq!(
            &ws_missed_frame(2, 5)[2..],
            br#"{"op":"missed","missed":2,"next":5}"#
        );
        assert!(std::str::from_utf8(&sse_missed_chunk(2, 5))
            .unwrap()
            .contains("event: missed\ndata: {\"missed\":2,\"next\":5}\n\n"));
    }
}
