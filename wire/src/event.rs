//! The event as it travels: one JSON envelope, and the WebSocket frame that carries it.

use std::fmt::Write as _;

use bytes::{BufMut as _, Bytes, BytesMut};

/// `{"seq":N,"ts":T,"data":…}`: the event JSON of every transport (a poll body item, an SSE
/// `data:` line, a WebSocket text message). `data_json` must be one compact JSON value (no raw
/// newline, so the envelope fits on one SSE `data:` line); `ts` is µs since the Unix epoch.
pub fn envelope(seq: u64, ts: u64, data_json: &str) -> String {
    let mut json = String::with_capacity(data_json.len() + 48);
    // Writing to a String cannot fail.
    let _ = write!(json, "{{\"seq\":{seq},\"ts\":{ts},\"data\":{data_json}}}");
    json
}

/// An unmasked, final WebSocket text frame carrying `payload` (RFC 6455 section 5.2), with the
/// shortest length form. Server frames are unmasked, so these bytes are the same for every client.
pub fn text_frame(payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(payload.len() + 10);
    frame.put_u8(0x81); // FIN, text
    match payload.len() {
        n @ 0..=125 => frame.put_u8(n as u8),
        n @ 126..=0xffff => {
            frame.put_u8(126);
            frame.put_u16(n as u16);
        }
        n => {
            frame.put_u8(127);
            frame.put_u64(n as u64);
        }
    }
    frame.put_slice(payload);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_json_with_the_data_as_given() {
        let e = envelope(7, 123, r#"{"a":"x\ny"}"#);
        assert_eq!(e, r#"{"seq":7,"ts":123,"data":{"a":"x\ny"}}"#);
        let v: serde_json::Value = serde_json::from_str(&e).unwrap();
        assert_eq!(v["data"]["a"], "x\ny");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn frames_use_the_shortest_length_form() {
        for (len, header) in [
            (0, vec![0x81, 0]),
            (125, vec![0x81, 125]),
            (126, vec![0x81, 126, 0, 126]),
            (65_535, vec![0x81, 126, 0xff, 0xff]),
            (65_536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let f = text_frame(&vec![b'x'; len]);
            assert_eq!(&f[..header.len()], &header[..], "{len}");
            assert_eq!(f.len(), header.len() + len);
        }
    }
}
