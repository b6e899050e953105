//! permessage-deflate (RFC 7692): what a handshake agrees on, and the two ways out.
//!
//! Compression trades the feed's bytes for the server's memory and CPU, so both ways are here
//! and `--ws-deflate` picks one:
//!
//! - `shared` answers `server_no_context_takeover`: each event is compressed on its own, once,
//!   the first time a deflate client needs it, and every such client gets the same frame
//!   ([`crate::event::Event::ws_frame_deflated`]). Nothing per connection; "encode once, write
//!   to everyone" survives.
//! - `context` keeps one [`Compress`] per connection (context takeover), so later events refer
//!   back to earlier ones: fewer bytes, but a compression per delivery and the compressor's
//!   memory for the connection's life: zlib-rs holds `4 × 2^bits + 192 KiB` (window and chain
//!   `4 × 2^bits`, a fixed 64 Ki-entry hash table of 128 KiB, 64 KiB of pending output at
//!   flate2's memLevel 8, which it does not let us change): 320 KiB at 15 window bits, 196 KiB
//!   at 10 (`--ws-deflate-window-bits`).
//!
//! Client messages are always inflated one at a time: the answer always carries
//! `client_no_context_takeover` (RFC 7692 section 7.1.1.2 lets a server ask for it), so no
//! inflater outlives a message and an idle connection holds none. What an inflated message may
//! grow to is `--ws-max-message-bytes`; past it the connection closes with 1009. Its compressed
//! form is held whole first, up to [`super::codec::compressed_max`] (the limit, an eighth more
//! and 1 KiB), so a message within the limit passes even when deflate made it longer.
//!
//! The offers are parsed here (RFC 7692 sections 5 and 7; the header grammar of RFC 6455
//! section 9.1): an offer with a parameter we do not know, a repeated one, or a bad value is
//! declined and the next is considered. An offer never fails the handshake.

use std::cell::RefCell;

use actix_http::ws::{CloseCode, CloseReason};
use actix_web::http::header::{HeaderMap, SEC_WEBSOCKET_EXTENSIONS};
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushDecompress, Status};

use super::{close, codec::too_big};
use crate::config::WsDeflate;

/// What every raw deflate block flushed with `Z_SYNC_FLUSH` ends with; RFC 7692 section 7.2.1
/// drops it from each message, section 7.2.2 puts it back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Smallest LZ77 window zlib makes for raw deflate (it refuses 8, RFC 7692's minimum).
pub const MIN_WINDOW_BITS: u8 = 9;

/// The server's deflate settings, from `--ws-deflate*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub mode: WsDeflate,
    /// Our LZ77 window (9..=15): what `context` compressors and the shared frames use.
    pub window_bits: u8,
    /// zlib level, 1..=9.
    pub level: u32,
    /// Messages shorter than this go out uncompressed (RSV1 clear), which RFC 7692 allows.
    pub min_bytes: usize,
}

// Beside the settings rather than in `config`, so the configuration imports nothing above it.
impl crate::config::Config {
    /// The `--ws-deflate*` settings together.
    pub fn ws_deflate(&self) -> Settings {
        Settings {
            mode: self.ws_deflate,
            window_bits: self.ws_deflate_window_bits,
            level: self.ws_deflate_level,
            min_bytes: self.ws_deflate_min_bytes,
        }
    }
}

/// What a handshake agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// We compress every message on its own (`server_no_context_takeover`).
    pub server_no_context_takeover: bool,
    /// The largest window we may use (`server_max_window_bits`, 8..=15). Below
    /// [`MIN_WINDOW_BITS`] we cannot compress at all, and send every message uncompressed.
    pub server_window_bits: u8,
    /// The settings in force when it was agreed.
    pub settings: Settings,
}

impl Agreement {
    /// The `Sec-WebSocket-Extensions` value of our answer.
    pub fn header(&self) -> String {
        let mut out = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        out.push_str("; client_no_context_takeover");
        if self.server_window_bits < 15 {
            out.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_window_bits
            ));
        }
        out
    }

    /// Whether the events' shared frames (made with our window) may go to this client.
    pub fn shared_frames(&self) -> bool {
        self.settings.mode == WsDeflate::Shared
            && self.server_window_bits >= self.settings.window_bits
    }
}

/// The first permessage-deflate offer in `headers` that we can accept, on our terms.
pub fn negotiate(headers: &HeaderMap, settings: &Settings) -> Option<Agreement> {
    if settings.mode == WsDeflate::Off {
        return None;
    }
    headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| split_outside_quotes(v, ','))
        .find_map(|offer| accept(offer, settings))
}

/// The parameters of one offer, when we accept it.
fn accept(offer: &str, settings: &Settings) -> Option<Agreement> {
    let mut parts = split_outside_quotes(offer, ';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("permessage-deflate")
    {
        return None;
    }
    let mut seen = [false; 4];
    let mut server_no_context_takeover = settings.mode == WsDeflate::Shared;
    let mut server_window_bits = settings.window_bits;
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim())?)),
            None => (param.trim(), None),
        };
        let index = [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ]
        .iter()
        .position(|known| name.eq_ignore_ascii_case(known))?;
        if std::mem::replace(&mut seen[index], true) {
            return None; // a parameter given twice: RFC 7692 section 7.1 declines the offer
        }
        match (index, value) {
            (0, None) => server_no_context_takeover = true,
            (1, None) => {} // we always answer client_no_context_takeover
            (2, Some(v)) => server_window_bits = server_window_bits.min(window_bits(v)?),
            (3, None) => {}
            (3, Some(v)) => {
                window_bits(v)?; // valid, and moot: we inflate with the largest window
            }
            _ => return None, // a value where none belongs, or none where one must be
        }
    }
    Some(Agreement {
        server_no_context_takeover,
        server_window_bits,
        settings: *settings,
    })
}

/// A window-bits value: 8..=15, digits only.
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// A token or quoted-string value, without its quotes.
fn unquote(v: &str) -> Option<&str> {
    match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').filter(|s| !s.contains(['"', '\\'])),
        None => Some(v),
    }
}

/// `s` split at each `sep` that is not inside a quoted string.
fn split_outside_quotes(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut quoted = false;
        for (i, c) in s.char_indices() {
            match c {
                '"' => quoted = !quoted,
                c if c == sep && !quoted => {
                    rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(s)
    })
}

/// What one connection compresses with, created on its first compressed message.
pub struct Deflater {
    agreement: Agreement,
    /// Boxed and lazy: a compressor is the largest thing a connection can hold.
    compress: Option<Box<Compress>>,
}

impl Deflater {
    pub fn new(agreement: Agreement) -> Self {
        Self {
            agreement,
            compress: None,
        }
    }

    pub fn agreement(&self) -> &Agreement {
        &self.agreement
    }

    /// The frame of a data message (`opcode` text or binary) for this connection: compressed
    /// with RSV1 set, or as it is when short, when our window cannot be honoured, or when
    /// compressing would not make it smaller.
    pub fn frame(&mut self, opcode: u8, payload: &[u8], plain: impl FnOnce() -> Bytes) -> Bytes {
        let a = &self.agreement;
        let bits = a.server_window_bits.min(a.settings.window_bits);
        if payload.len() < a.settings.min_bytes || bits < MIN_WINDOW_BITS {
            return plain();
        }
        let (level, reset) = (a.settings.level, a.server_no_context_takeover);
        let c = self
            .compress
            .get_or_insert_with(|| Box::new(compressor(level, bits)));
        let frame = deflate_frame(c, opcode, payload);
        if reset {
            c.reset();
            let plain = plain();
            if frame.len() >= plain.len() {
                return plain;
            }
        }
        // With context takeover the compressed bytes are now part of the client's window, so
        // they must be sent even when they are no smaller.
        frame
    }
}

fn compressor(level: u32, bits: u8) -> Compress {
    Compress::new_with_window_bits(Compression::new(level), false, bits)
}

/// `payload` compressed as one message (sync-flushed, its tail removed) in a frame with RSV1.
fn deflate_frame(c: &mut Compress, opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = crate::compress::sync_flushed(c, payload);
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    super::codec::frame_with(0xc0 | opcode, &out)
}

/// The shared frame of an event's payload: compressed on its own with our window, by a
/// compressor kept per thread (making one costs more than compressing a small event).
pub fn shared_frame(settings: &Settings, payload: &[u8]) -> Bytes {
    thread_local! {
        static SHARED: RefCell<Option<(u32, u8, Compress)>> = const { RefCell::new(None) };
    }
    SHARED.with(|cell| {
        let mut cell = cell.borrow_mut();
        let (level, bits) = (settings.level, settings.window_bits);
        if !matches!(&*cell, Some((l, b, _)) if *l == level && *b == bits) {
            *cell = Some((level, bits, compressor(level, bits)));
        }
        let (_, _, c) = cell.as_mut().expect("just set");
        let frame = deflate_frame(c, super::codec::TEXT, payload);
        c.reset();
        frame
    })
}

/// A compressed client message inflated, at most `max` bytes of it.
pub fn inflate(payload: &[u8], max: usize) -> Result<Bytes, CloseReason> {
    // The largest window inflates whatever window the client used; made per message, so no
    // inflater outlives one (we asked for client_no_context_takeover).
    let mut d = Decompress::new(false);
    let limit = max.saturating_add(1);
    let mut out: Vec<u8> = Vec::with_capacity(payload.len().saturating_mul(2).clamp(64, limit));
    for input in [payload, &TAIL[..]] {
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= limit {
                    return Err(too_big(max));
                }
                out.reserve_exact(out.capacity().min(limit - out.len()));
            }
            let before = d.total_in();
            let status = d
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
                .map_err(|e| {
                    close(
                        CloseCode::Invalid,
                        format!("compressed message does not inflate: {e}"),
                    )
                })?;
            pos += (d.total_in() - before) as usize;
            if status == Status::StreamEnd {
                break; // a final block: whatever follows is not part of the message
            }
            if pos == input.len() && out.len() < out.capacity() {
                break;
            }
        }
    }
    if out.len() > max {
        return Err(too_big(max));
    }
    Ok(Bytes::from(out))
}

/// `payload` as a client would send it compressed (no context takeover): for tests.
/// The frame is cached in the event (made by the first deflate client to need it) but built
/// here, so [`crate::event`] needs no WebSocket codec.
impl crate::event::Event {
    /// The frame every `--ws-deflate shared` client gets (see the `ws_deflated` field).
    pub fn ws_frame_deflated(&self, settings: &Settings) -> &Bytes {
        self.ws_deflated.get_or_init(|| {
            if self.ws.len() < settings.min_bytes {
                return self.ws_frame.clone();
            }
            let frame = shared_frame(settings, self.ws.as_bytes());
            if frame.len() < self.ws_frame.len() {
                frame
            } else {
                self.ws_frame.clone()
            }
        })
    }
}

#[cfg(test)]
pub fn deflate_raw(payload: &[u8]) -> Vec<u8> {
    let mut c = compressor(6, 15);
    let frame = deflate_frame(&mut c, 1, payload);
    let header = if frame[1] < 126 { 2 } else { 4 };
    frame[header..].to_vec()
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn settings(mode: WsDeflate) -> Settings {
        Settings {
            mode,
            window_bits: 15,
            level: 6,
            min_bytes: 0,
        }
    }

    fn offer(values: &[&str], mode: WsDeflate) -> Option<Agreement> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(v).unwrap());
        }
        negotiate(&h, &settings(mode))
    }

    #[test]
    fn offers_are_accepted_declined_and_answered() {
        use WsDeflate::*;
        assert_eq!(offer(&[], Shared), None);
        assert_eq!(offer(&["permessage-deflate"], Off), None);
        let browser = offer(&["permessage-deflate; client_max_window_bits"], Context).unwrap();
        assert_eq!(
            browser.header(),
            "permessage-deflate; client_no_context_takeover"
        );
        assert_eq!(
            offer(&["permessage-deflate"], Shared).unwrap().header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        // Several offers in one header and across headers: the first we can accept wins.
        let a = offer(
            &[
                "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=7",
                "permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits=8",
            ],
            Context,
        )
        .unwrap();
        assert_eq!(a.server_window_bits, 10);
        assert!(!a.server_no_context_takeover);
        assert!(a.header().ends_with("server_max_window_bits=10"));
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=\"9",
        ] {
            assert_eq!(offer(&[bad], Context), None, "{bad}");
        }
        let snct = offer(&["permessage-deflate; server_no_context_takeover"], Context).unwrap();
        assert!(snct.server_no_context_takeover);
    }

    #[test]
    fn messages_round_trip_in_both_forms() {
        let text = br#"{"seq":1,"ts":2,"data":{"sym":"AAPL","bid":187.120,"ask":187.160}}"#;
        for mode in [WsDeflate::Shared, WsDeflate::Context] {
            let a = offer(&["permessage-deflate"], mode).unwrap();
            let mut d = Deflater::new(a);
            // A client's inflater, kept across messages (context takeover) as RFC 7692 asks.
            let mut client = Decompress::new(false);
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let frame = d.frame(1, text, || crate::event::text_frame(text));
                assert_eq!(frame[0], 0xc1, "final text frame with RSV1");
                let mut input = frame[2..].to_vec();
                input.extend_from_slice(&TAIL);
                let mut out = Vec::with_capacity(4096);
                client
                    .decompress_vec(&input, &mut out, FlushDecompress::Sync)
                    .unwrap();
                assert_eq!(&out[..], text);
                sizes.push(frame.len());
            }
            match mode {
                // Each message on its own: the same bytes every time.
                WsDeflate::Shared => assert!(sizes.iter().all(|s| *s == sizes[0])),
                // Repeats refer back to the first: a few bytes each.
                _ => assert!(sizes[1] < 16 && sizes[2] < 16, "{sizes:?}"),
            }
        }
        let shared = shared_frame(&settings(WsDeflate::Shared), text);
        assert_eq!(&inflate(&shared[2..], 1 << 20).unwrap()[..], text);
    }

    #[test]
    fn a_bomb_is_cut_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let bomb = deflate_raw(&zeros);
        assert!(bomb.len() < 64 * 1024);
        let err = inflate(&bomb, 64 * 1024).unwrap_err();
        assert_eq!(err.code, CloseCode::Size);
        assert_eq!(inflate(&bomb, 10 << 20).unwrap().len(), 10 << 20);
        assert_eq!(
            inflate(b"\xff\xff\xff", 100).unwrap_err().code,
            CloseCode::Invalid
        );
    }
}
