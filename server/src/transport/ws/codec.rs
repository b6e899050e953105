//! Client frames in, whole messages out; server frames out.
//!
//! Hand-written rather than actix-http's codec (or tungstenite's), because what it holds is the
//! point: every frame's header is checked the moment its 2–14 bytes are in, so a frame that
//! announces more than `--ws-max-message-bytes` (alone or added to the fragments before it) is
//! refused with 1009 before a byte of its payload is kept. Payload bytes are unmasked straight
//! into the one buffer of the message being received, as they arrive: no frame is ever buffered
//! whole, and a fragmented message costs its payload and nothing per fragment (a thousand
//! one-byte continuations hold a thousand bytes). actix-http's decoder checks a frame's size
//! only once the whole frame is buffered, and actix-ws keeps every fragment as its own `Bytes`.
//!
//! `--ws-max-message-bytes` counts what its name says, the message: a compressed message
//! (permessage-deflate) is measured by what it inflates to, inflating stops one byte past the
//! limit. Its compressed bytes are bounded too, by [`compressed_max`]: the limit plus an eighth
//! plus 1 KiB, room for any deflate encoder's expansion of data that does not compress (random
//! bytes come out a few bytes longer than they went in), so a message within the limit is never
//! refused for its compressed form, and no client can make us hold more than that.
//!
//! The checks are RFC 6455's: masking, reserved bits, opcodes, control frames (final, at most
//! 125 bytes), continuation order, close codes and reasons, UTF-8 of text messages.

use actix_http::ws::{CloseCode, CloseReason};
use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use bytestring::ByteString;

use super::close;

/// A whole message from the client.
#[derive(Debug)]
pub enum Msg {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    Close(Option<CloseReason>),
}

const CONTINUATION: u8 = 0x0;
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Frame {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes already unmasked (the mask's phase).
    offset: usize,
}

/// Turns the client's bytes into messages, holding at most one message's payload.
#[derive(Debug)]
pub struct Decoder {
    max: usize,
    /// Header bytes of the next frame, gathered until the whole header is in.
    header: [u8; 14],
    header_len: usize,
    frame: Option<Frame>,
    /// The data message being received (all its fragments so far), and whether it is text.
    message: BytesMut,
    message_kind: Option<u8>,
    /// The payload of the control frame being received (at most 125 bytes).
    control: BytesMut,
    /// After our close frame: data payloads are skipped, not kept, and only a close is reported.
    discarding: bool,
    /// permessage-deflate was negotiated: RSV1 may mark a data message as compressed.
    inflate: bool,
    /// The message being received came with RSV1 (compressed).
    compressed: bool,
    /// Bytes the message being received took on the wire so far (frame headers, masks, payload).
    wire: u64,
    /// What the last complete data message took on the wire.
    last_wire: u64,
}

impl Decoder {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            header: [0; 14],
            header_len: 0,
            frame: None,
            message: BytesMut::new(),
            message_kind: None,
            control: BytesMut::new(),
            discarding: false,
            inflate: false,
            compressed: false,
            wire: 0,
            last_wire: 0,
        }
    }

    /// Accepts compressed messages (RSV1 on a message's first frame), as permessage-deflate
    /// was negotiated; each is inflated to at most the same limit when complete.
    pub fn inflating(mut self, on: bool) -> Self {
        self.inflate = on;
        self
    }

    /// From now on, application data is dropped as it is read (we sent a close, RFC 6455
    /// section 1.4: the client's close is all that still matters).
    pub fn discard_data(&mut self) {
        self.discarding = true;
        self.message = BytesMut::new();
    }

    /// What the last data message returned took on the wire: its frames' headers, masks and
    /// payloads (compressed, if it was), as the client sent them.
    pub fn last_message_wire_bytes(&self) -> u64 {
        self.last_wire
    }

    /// Bytes of message payload held right now.
    pub fn held(&self) -> usize {
        self.message.capacity() + self.control.capacity()
    }

    /// Consumes bytes from `input` until a message is complete (`Some`) or `input` is used up
    /// (`None`); `Err` is the close reason for a frame that breaks the protocol or the limit.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<Msg>, CloseReason> {
        loop {
            let Some(mut frame) = self.frame else {
                if !self.read_header(input)? {
                    return Ok(None);
                }
                continue;
            };
            let n = usize::try_from(frame.remaining)
                .unwrap_or(usize::MAX)
                .min(input.len());
            let chunk = input.split_to(n);
            let target = if frame.opcode >= CLOSE {
                Some(&mut self.control)
            } else if self.discarding {
                None
            } else {
                Some(&mut self.message)
            };
            if let Some(target) = target {
                let start = target.len();
                target.extend_from_slice(&chunk);
                for (i, b) in target[start..].iter_mut().enumerate() {
                    *b ^= frame.mask[(frame.offset + i) % 4];
                }
            }
            frame.offset = (frame.offset + n) % 4;
            frame.remaining -= n as u64;
            if frame.remaining > 0 {
                self.frame = Some(frame);
                return Ok(None);
            }
            self.frame = None;
            if let Some(msg) = self.complete(frame)? {
                return Ok(Some(msg));
            }
        }
    }

    /// Gathers and checks the next frame header; `Ok(false)` when more bytes are needed.
    fn read_header(&mut self, input: &mut BytesMut) -> Result<bool, CloseReason> {
        let needed = |h: &[u8], have: usize| -> usize {
            if have < 2 {
                return 2;
            }
            let ext = match h[1] & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            2 + ext + if h[1] & 0x80 != 0 { 4 } else { 0 }
        };
        loop {
            let want = needed(&self.header, self.header_len);
            if self.header_len == 2 {
                self.check_start()?;
            }
            if self.header_len >= want {
                break;
            }
            if input.is_empty() {
                return Ok(false);
            }
            let take = (want - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            input.advance(take);
            self.header_len += take;
        }
        let h = self.header;
        let len7 = h[1] & 0x7f;
        let (len, mask_at) = match len7 {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let len = u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]);
                if len >> 63 != 0 {
                    return Err(protocol("frame length has its most significant bit set"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let opcode = h[0] & 0x0f;
        if opcode < CLOSE && !self.discarding {
            // A message's first frame says whether it is compressed; its continuations follow.
            let compressed = match opcode {
                TEXT | BINARY => h[0] & 0x40 != 0,
                _ => self.compressed,
            };
            let total = (self.message.len() as u64).saturating_add(len);
            if compressed && total > compressed_max(self.max) as u64 {
                return Err(too_big_compressed(self.max));
            }
            if !compressed && total > self.max as u64 {
                return Err(too_big(self.max));
            }
        }
        self.header_len = 0;
        if opcode < CLOSE {
            self.wire = self.wire.saturating_add(mask_at as u64 + 4 + len);
        }
        self.frame = Some(Frame {
            fin: h[0] & 0x80 != 0,
            opcode,
            mask: [h[mask_at], h[mask_at + 1], h[mask_at + 2], h[mask_at + 3]],
            remaining: len,
            offset: 0,
        });
        if opcode == TEXT || opcode == BINARY {
            self.message_kind = Some(opcode);
            self.compressed = h[0] & 0x40 != 0;
        }
        Ok(true)
    }

    /// The checks the first two header bytes allow.
    fn check_start(&self) -> Result<(), CloseReason> {
        let [b0, b1, ..] = self.header;
        let (rsv1, opcode) = (b0 & 0x40 != 0, b0 & 0x0f);
        if b0 & 0x30 != 0 || (rsv1 && !self.inflate) {
            return Err(protocol("reserved bits set without an extension"));
        }
        if rsv1 && opcode != TEXT && opcode != BINARY {
            // RFC 7692 section 6.1: only a data message's first frame says it is compressed.
            return Err(protocol("RSV1 on a continuation or control frame"));
        }
        if b1 & 0x80 == 0 {
            return Err(protocol("client frames must be masked"));
        }
        let (fin, len7) = (b0 & 0x80 != 0, b1 & 0x7f);
        match opcode {
            CLOSE | PING | PONG => {
                if !fin {
                    return Err(protocol("fragmented control frame"));
                }
                if len7 > 125 {
                    return Err(protocol("control frame longer than 125 bytes"));
                }
            }
            CONTINUATION if self.message_kind.is_none() => {
                return Err(protocol("continuation frame without a message to continue"));
            }
            TEXT | BINARY if self.message_kind.is_some() => {
                return Err(protocol(
                    "new message before the fragmented one was finished",
                ));
            }
            CONTINUATION | TEXT | BINARY => {}
            other => return Err(protocol(&format!("unknown opcode {other:#x}"))),
        }
        Ok(())
    }

    /// A frame's payload is all in: the message it completes, if any.
    fn complete(&mut self, frame: Frame) -> Result<Option<Msg>, CloseReason> {
        match frame.opcode {
            PING => {
                let payload = std::mem::take(&mut self.control).freeze();
                Ok((!self.discarding).then_some(Msg::Ping(payload)))
            }
            PONG => {
                self.control = BytesMut::new();
                Ok((!self.discarding).then_some(Msg::Pong))
            }
            CLOSE => {
                let payload = std::mem::take(&mut self.control);
                close_payload(&payload).map(|reason| Some(Msg::Close(reason)))
            }
            _ if !frame.fin => Ok(None),
            _ => {
                let kind = self.message_kind.take();
                self.last_wire = std::mem::take(&mut self.wire);
                // The buffer goes with the message: an idle session holds none.
                let bytes = std::mem::take(&mut self.message).freeze();
                if self.discarding {
                    return Ok(None);
                }
                let bytes = if std::mem::take(&mut self.compressed) {
                    super::deflate::inflate(&bytes, self.max)?
                } else {
                    bytes
                };
                if kind == Some(TEXT) {
                    ByteString::try_from(bytes)
                        .map(|t| Some(Msg::Text(t)))
                        .map_err(|_| {
                            close(CloseCode::Invalid, "text message is not valid UTF-8".into())
                        })
                } else {
                    Ok(Some(Msg::Binary(bytes)))
                }
            }
        }
    }
}

/// The code and reason of a client's close frame, checked as RFC 6455 section 7.4 asks.
fn close_payload(payload: &[u8]) -> Result<Option<CloseReason>, CloseReason> {
    match payload {
        [] => Ok(None),
        [_] => Err(protocol("close frame with a 1-byte payload")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                return Err(protocol(&format!("close code {code} is not allowed")));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| close(CloseCode::Invalid, "close reason is not valid UTF-8".into()))?;
            Ok(Some(CloseReason {
                code: CloseCode::from(code),
                description: (!reason.is_empty()).then(|| reason.to_owned()),
            }))
        }
    }
}

fn protocol(why: &str) -> CloseReason {
    close(CloseCode::Protocol, format!("protocol error: {why}"))
}

/// 1009, named after the setting.
pub fn too_big(max: usize) -> CloseReason {
    close(
        CloseCode::Size,
        format!("message larger than {max} bytes (--ws-max-message-bytes)"),
    )
}

/// Most compressed bytes a message may take when the limit on what it inflates to is `max`:
/// an eighth more, and 1 KiB. Deflate's worst case for data that does not compress is 5 bytes
/// per stored block (zlib: about 0.03 %, 13 bytes at least); an encoder that only knows the fixed
/// Huffman codes spends at most 9 bits on a byte, which the eighth covers; the 1 KiB covers
/// short messages and encoders that flush often.
pub fn compressed_max(max: usize) -> usize {
    max.saturating_add(max / 8).saturating_add(1024)
}

/// 1009 for a compressed message whose compressed bytes alone pass [`compressed_max`].
fn too_big_compressed(max: usize) -> CloseReason {
    close(
        CloseCode::Size,
        format!(
            "compressed message larger than {} bytes (--ws-max-message-bytes {max}, + 1/8 + 1 KiB)",
            compressed_max(max)
        ),
    )
}

/// An unmasked, final frame (server side) with `opcode` and `payload`.
fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    frame_with(0x80 | opcode, payload)
}

/// An unmasked frame whose first byte (FIN, RSV bits, opcode) is `first`.
pub(crate) fn frame_with(first: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    out.put_u8(first);
    match payload.len() {
        n @ 0..=125 => out.put_u8(n as u8),
        n @ 126..=0xffff => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(payload);
    out.freeze()
}

pub fn ping() -> Bytes {
    frame(PING, b"")
}

pub fn pong(payload: &[u8]) -> Bytes {
    frame(PONG, payload)
}

pub fn binary(payload: &[u8]) -> Bytes {
    frame(BINARY, payload)
}

/// A close frame; the reason is cut to fit a control frame.
pub fn close_frame(reason: Option<&CloseReason>) -> Bytes {
    let Some(reason) = reason else {
        return frame(CLOSE, b"");
    };
    let mut payload = u16::from(reason.code).to_be_bytes().to_vec();
    if let Some(why) = &reason.description {
        payload.extend_from_slice(super::truncate_reason(why.clone()).as_bytes());
    }
    frame(CLOSE, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame (RFC 6455 section 5.3), as a browser would send it.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn all(d: &mut Decoder, bytes: &[u8]) -> Result<Vec<Msg>, CloseReason> {
        let mut input = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = d.decode(&mut input)? {
            out.push(m);
        }
        assert!(input.is_empty());
        Ok(out)
    }

    #[test]
    fn fragments_are_joined_and_split_input_is_fine() {
        let mut wire = client_frame(false, TEXT, b"{\"op\":");
        wire.extend(client_frame(true, PING, b"p")); // a ping between fragments
        wire.extend(client_frame(false, CONTINUATION, b"\"echo\""));
        wire.extend(client_frame(true, CONTINUATION, b"}"));
        // One byte at a time: headers and payloads split anywhere.
        let mut d = Decoder::new(100);
        let mut msgs = Vec::new();
        for b in &wire {
            msgs.extend(all(&mut d, &[*b]).unwrap());
        }
        assert!(matches!(&msgs[0], Msg::Ping(p) if &p[..] == b"p"));
        assert!(matches!(&msgs[1], Msg::Text(t) if &**t == "{\"op\":\"echo\"}"));
        assert_eq!(msgs.len(), 2);
        // The three data frames, headers and masks included; not the ping.
        assert_eq!(d.last_message_wire_bytes(), wire.len() as u64 - 7);
        assert_eq!(d.held(), 0, "an idle decoder keeps no buffer");
    }

    #[test]
    fn an_announced_length_over_the_limit_is_refused_from_the_header() {
        let mut d = Decoder::new(64 * 1024);
        // 2^40 bytes announced; only the header and mask are sent.
        let mut header = vec![0x82, 0xff];
        header.extend_from_slice(&(1u64 << 40).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(all(&mut d, &header).unwrap_err().code, CloseCode::Size);
        // Fragments: the one that would pass the limit is refused by its header.
        let mut d = Decoder::new(8);
        let mut wire = client_frame(false, TEXT, b"12345");
        wire.extend(&client_frame(true, CONTINUATION, b"6789")[..6]); // header and mask only
        assert_eq!(all(&mut d, &wire).unwrap_err().code, CloseCode::Size);
    }

    #[test]
    fn many_small_fragments_cost_their_bytes_only() {
        let mut d = Decoder::new(100_000);
        let mut wire = client_frame(false, TEXT, b"x");
        for _ in 0..10_000 {
            wire.extend(client_frame(false, CONTINUATION, b"y"));
        }
        assert!(all(&mut d, &wire).unwrap().is_empty());
        assert!(d.held() < 64 * 1024, "{}", d.held());
    }

    #[test]
    fn a_compressed_message_is_held_to_the_limit_by_what_it_inflates_to() {
        // Bytes that do not compress: their deflated form is longer than they are.
        let mut x = 7u64;
        let noise: Vec<u8> = (0..1000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        let deflated = super::super::deflate::deflate_raw(&noise);
        assert!(deflated.len() > noise.len(), "{}", deflated.len());
        let frame = |payload: &[u8]| {
            let mut f = client_frame(true, BINARY, payload);
            f[0] |= 0x40; // RSV1: compressed
            f
        };
        let decoder = |max| Decoder::new(max).inflating(true);
        // Exactly at the limit once inflated: accepted, though its frame is larger.
        let msgs = all(&mut decoder(1000), &frame(&deflated)).unwrap();
        assert!(matches!(&msgs[..], [Msg::Binary(b)] if b[..] == noise[..]));
        // One byte over once inflated: 1009 naming the message.
        let err = all(&mut decoder(999), &frame(&deflated)).unwrap_err();
        assert_eq!(err.code, CloseCode::Size);
        assert!(err
            .description
            .unwrap()
            .starts_with("message larger than 999"));
        // The compressed bytes themselves are bounded: refused from the header, compressed
        // fragments counted together.
        let max = 100;
        let mut wire = client_frame(false, BINARY, &[0; 100]);
        wire[0] |= 0x40;
        let header = client_frame(true, CONTINUATION, &vec![0; compressed_max(max) - 99]);
        wire.extend(&header[..8]);
        let err = all(&mut decoder(max), &wire).unwrap_err();
        assert_eq!(err.code, CloseCode::Size);
        assert!(err
            .description
            .unwrap()
            .starts_with("compressed message larger than"));
        // Uncompressed, the limit is the message's length, fragments included.
        let mut wire = client_frame(false, BINARY, &[0; 100]);
        wire.extend(&client_frame(true, CONTINUATION, b"x")[..7]);
        assert_eq!(
            all(&mut decoder(max), &wire).unwrap_err().code,
            CloseCode::Size
        );
    }

    #[test]
    fn broken_frames_get_the_rfc_close_codes() {
        let code = |bytes: &[u8]| all(&mut Decoder::new(100), bytes).unwrap_err().code;
        assert_eq!(
            code(&client_frame(true, TEXT, &[0xff, 0xfe])),
            CloseCode::Invalid
        );
        assert_eq!(code(&[0x81, 0x01, b'x']), CloseCode::Protocol); // unmasked
        assert_eq!(code(&client_frame(true, 0x3, b"")), CloseCode::Protocol);
        assert_eq!(code(&client_frame(true, 0xc1, b"")), CloseCode::Protocol); // RSV1
        assert_eq!(code(&client_frame(false, PING, b"")), CloseCode::Protocol);
        assert_eq!(
            code(&client_frame(true, PING, &[0; 126])),
            CloseCode::Protocol
        );
        assert_eq!(
            code(&client_frame(true, CONTINUATION, b"x")),
            CloseCode::Protocol
        );
        let mut two = client_frame(false, TEXT, b"a");
        two.extend(client_frame(true, TEXT, b"b"));
        assert_eq!(code(&two), CloseCode::Protocol);
        assert_eq!(code(&client_frame(true, CLOSE, &[3])), CloseCode::Protocol);
        assert_eq!(
            code(&client_frame(true, CLOSE, &[0x03, 0xed])),
            CloseCode::Protocol
        ); // 1005
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.extend_from_slice(&[0xff]);
        assert_eq!(
            code(&client_frame(true, CLOSE, &bad_reason)),
            CloseCode::Invalid
        );
    }

    #[test]
    fn after_our_close_data_is_skipped_and_only_a_close_counts() {
        let mut d = Decoder::new(1000);
        d.discard_data();
        let mut wire = client_frame(true, TEXT, &[b'x'; 900]);
        wire.extend(client_frame(true, PING, b"p"));
        wire.extend(client_frame(true, CLOSE, &1000u16.to_be_bytes()));
        let msgs = all(&mut d, &wire).unwrap();
        assert!(matches!(&msgs[..], [Msg::Close(Some(r))] if r.code == CloseCode::Normal));
        assert_eq!(d.held(), 0);
    }

    #[test]
    fn server_frames_are_unmasked_and_sized() {
        assert_eq!(&ping()[..], &[0x89, 0]);
        assert_eq!(&pong(b"ab")[..], &[0x8a, 2, b'a', b'b']);
        let reason = close(CloseCode::Away, "bye".into());
        assert_eq!(
            &close_frame(Some(&reason))[..],
            &[0x88, 5, 0x03, 0xe9, b'b', b'y', b'e']
        );
        assert_eq!(binary(&[0; 200])[1], 126);
        assert!(close_frame(Some(&close(CloseCode::Away, "é".repeat(200)))).len() <= 127);
    }
}
