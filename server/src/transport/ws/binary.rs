//! Binary messages on `/ws?encoding=binary`: an envelope of fixed fields instead of JSON.
//!
//! A game's state is bytes, 100–300 of them 30 times a second. SSE and polls can carry bytes
//! only as text, so a publisher sends them as `{"bin":"<base64>"}` and every text transport
//! carries that JSON (base64 adds a third, the envelope's field names more). A WebSocket can do
//! better: a session that asks for `encoding=binary` gets each event as one binary message of
//! fixed fields and the raw bytes, and sends its inputs the same way. The envelope is
//! hand-written because it is the measurement: its size against the JSON's is the encoding
//! overhead the game scenario reports. All integers are big-endian.
//!
//! Server → client, the first byte says what follows:
//! - `0x01` event: `seq` u64, `ts` u64 (µs since the Unix epoch), `flags` u8 (bit 0: the
//!   payload is the data's bytes, decoded from `{"bin":…}`; clear: the payload is the data's
//!   JSON; bit 1: the feed's terminal event), then the payload to the end of the message.
//! - `0x02` acknowledgement of an input: `n` u32.
//! - `0x03` missed: `missed` u64, `next` u64 (as `{"op":"missed"}`).
//!
//! Client → server: `0x10` input: `n` u32, then the input's bytes. Anything else closes the
//! session with 1003 and the reason. Binary sessions do not negotiate permessage-deflate:
//! small binary messages are what they are for.

use base64::Engine as _;
use bytes::{BufMut as _, Bytes, BytesMut};

use crate::event::Event;

pub const EVENT: u8 = 0x01;
pub const ACK: u8 = 0x02;
pub const MISSED: u8 = 0x03;
pub const INPUT: u8 = 0x10;

/// `flags` bit: the payload is raw bytes (the data was `{"bin":"<base64>"}`).
pub const RAW: u8 = 0x01;
/// `flags` bit: the feed's terminal event.
pub const END: u8 = 0x02;

/// The raw bytes of a `{"bin":"<base64>"}` data, if that is what `data_json` is.
pub fn raw_bytes(data_json: &str) -> Option<Vec<u8>> {
    let b64 = data_json.strip_prefix("{\"bin\":\"")?.strip_suffix("\"}")?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The whole binary frame of `event` (header included, unmasked: the same for every client).
pub fn event_frame(event: &Event) -> Bytes {
    let data = event.data_json();
    let (mut flags, payload) = match raw_bytes(data) {
        Some(raw) => (RAW, raw),
        None => (0, data.as_bytes().to_vec()),
    };
    if event.end {
        flags |= END;
    }
    let mut msg = BytesMut::with_capacity(18 + payload.len());
    msg.put_u8(EVENT);
    msg.put_u64(event.seq);
    msg.put_u64(event.ts);
    msg.put_u8(flags);
    msg.put_slice(&payload);
    super::codec::binary(&msg)
}

/// The frame is cached in the event (made by the first binary client to need it) but built
/// here, so [`crate::event`] needs no WebSocket codec.
impl Event {
    /// The whole binary WebSocket frame of this event.
    pub fn ws_binary_frame(&self) -> &Bytes {
        self.ws_binary.get_or_init(|| event_frame(self))
    }
}

/// The acknowledgement of input `n`, as a whole frame.
pub fn ack_frame(n: u32) -> Bytes {
    let mut msg = [0u8; 5];
    msg[0] = ACK;
    msg[1..].copy_from_slice(&n.to_be_bytes());
    super::codec::binary(&msg)
}

/// The `missed` notice, as a whole frame.
pub fn missed_frame(missed: u64, next: u64) -> Bytes {
    let mut msg = BytesMut::with_capacity(17);
    msg.put_u8(MISSED);
    msg.put_u64(missed);
    msg.put_u64(next);
    super::codec::binary(&msg)
}

/// An input message's `n`, or why it is not one.
pub fn input(msg: &[u8]) -> Result<u32, String> {
    match msg {
        [INPUT, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [INPUT, ..] => Err("binary input too short: 0x10, then n (u32), then bytes".into()),
        [kind, ..] => Err(format!(
            "binary message of kind {kind:#04x}: only inputs (0x10) are understood"
        )),
        [] => Err("empty binary message".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_published_as_base64_go_out_raw_and_json_as_it_is() {
        let e = Event::encode(7, 99, r#"{"bin":"AAEC/w=="}"#);
        let f = event_frame(&e);
        // 0x82, length, then the envelope.
        assert_eq!(f[0], 0x82);
        let msg = &f[2..];
        assert_eq!(msg[0], EVENT);
        assert_eq!(u64::from_be_bytes(msg[1..9].try_into().unwrap()), 7);
        assert_eq!(u64::from_be_bytes(msg[9..17].try_into().unwrap()), 99);
        assert_eq!(msg[17], RAW);
        assert_eq!(&msg[18..], &[0, 1, 2, 255]);
        let e = Event::encode_as(8, 1, r#"{"line":"done"}"#, true);
        let f = event_frame(&e);
        assert_eq!(f[2 + 17], END);
        assert_eq!(&f[2 + 18..], br#"{"line":"done"}"#);
    }

    #[test]
    fn inputs_are_parsed_or_refused_with_a_reason() {
        assert_eq!(input(&[INPUT, 0, 0, 1, 2, 9, 9]), Ok(258));
        assert!(input(&[INPUT, 0]).is_err());
        assert!(input(&[0x42, 0, 0, 0, 0]).unwrap_err().contains("0x42"));
        assert!(input(&[]).is_err());
    }
}
