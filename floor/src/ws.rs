//! `GET /ws`: the RFC 6455 handshake, then the feed as text frames.
//!
//! The floor speaks only the server-to-client half that fan-out needs. Frames from the client
//! are not parsed, only skipped: [`Inbound`] reads each frame header to know how many payload
//! bytes to skip, so that a close frame (opcode 8) is recognised wherever it starts, and
//! answers it with close 1000. No pings, no message reassembly, no UTF-8 checks: those are
//! what the real server pays for and the floor does not.

use std::{
    ops::ControlFlow,
    sync::{atomic::Ordering::Relaxed, Arc},
};

use crate::{
    conn::{Shared, Stream},
    encode,
    fanout::{self, End, Wire},
    feed::Event,
    http::{send, Request, Response},
    stats::{Counters, Transport},
};
use bytes::{Bytes, BytesMut};

/// Close frames the floor sends: 1000 answering the client's close, 1001 on shutdown.
const CLOSE_NORMAL: [u8; 4] = encode::ws_close_frame(1000);
const CLOSE_GOING_AWAY: [u8; 4] = encode::ws_close_frame(1001);

/// Where the client's byte stream is: inside a frame header, or skipping a payload.
#[derive(Debug, Default)]
struct Inbound {
    /// The current frame header so far (2 to 14 bytes).
    header: [u8; 14],
    have: u8,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
}

impl Inbound {
    /// Length of a frame header whose second byte is `b1` (mask bit, 7-bit length).
    fn header_len(b1: u8) -> usize {
        let extended = match b1 & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        2 + extended + mask
    }

    fn payload_len(header: &[u8]) -> u64 {
        match header[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            127 => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&header[2..10]);
                u64::from_be_bytes(len)
            }
            n => u64::from(n),
        }
    }

    /// Consumes client bytes; `Break` at the header of a close frame. Counts data frames that
    /// end a message.
    fn feed(&mut self, mut data: &[u8], counters: &Counters) -> ControlFlow<()> {
        while let Some((&byte, rest)) = data.split_first() {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64) as usize;
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            self.header[usize::from(self.have)] = byte;
            self.have += 1;
            data = rest;
            let have = usize::from(self.have);
            if have < 2 || have < Self::header_len(self.header[1]) {
                continue;
            }
            let (fin, opcode) = (self.header[0] & 0x80 != 0, self.header[0] & 0x0F);
            if opcode == 0x8 {
                return ControlFlow::Break(());
            }
            if fin && opcode < 0x8 {
                counters.messages_received.fetch_add(1, Relaxed);
            }
            self.skip = Self::payload_len(&self.header);
            self.have = 0;
        }
        ControlFlow::Continue(())
    }
}

struct Ws {
    inbound: Inbound,
}

impl Wire for Ws {
    const TRANSPORT: Transport = Transport::Ws;

    fn pick(event: &Event) -> &Bytes {
        &event.ws
    }

    fn missed(missed: u64, up_to: u64) -> Bytes {
        encode::ws_missed_frame(missed, up_to)
    }

    fn inbound(&mut self, data: &[u8], counters: &Counters) -> ControlFlow<()> {
        self.inbound.feed(data, counters)
    }

    fn goodbye(end: End) -> &'static [u8] {
        match end {
            End::ClientClosed => &CLOSE_NORMAL,
            End::ServerStopping => &CLOSE_GOING_AWAY,
        }
    }
}

/// Handshakes on `stream`, then hands it to the fan-out loop; `early` holds whatever the
/// client sent after its request head.
pub async fn serve(mut stream: impl Stream, shared: &Arc<Shared>, req: Request, early: BytesMut) {
    let counters = &shared.stats.ws;
    counters.requests.fetch_add(1, Relaxed);
    let head = shared.feed.subscribe();
    let accepted = match (&req.ws_key, req.websocket) {
        (Some(key), true) => fanout::start_cursor(&shared.feed, "since", req.query("since"))
            .map(|cursor| (cursor, encode::ws_accept(key))),
        _ => Err(Response::error(
            400,
            "expected a WebSocket handshake (Upgrade: websocket, Sec-WebSocket-Key)",
        )),
    };
    let (cursor, accept) = match accepted {
        Ok(ok) => ok,
        Err(refusal) => {
            if let Ok(n) = refusal.write(&mut stream, false).await {
                counters.wrote(n);
            }
            return;
        }
    };
    drop(req);
    let switching = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if send(&mut stream, switching.as_bytes()).await.is_err() {
        return;
    }
    counters.wrote(switching.len());
    drop(switching);
    let mut inbound = Inbound::default();
    if inbound.feed(&early, counters).is_break() {
        if send(&mut stream, &CLOSE_NORMAL).await.is_ok() {
            counters.wrote(CLOSE_NORMAL.len());
        }
        return;
    }
    drop(early);
    fanout::spawn(stream, shared.clone(), cursor, head, Ws { inbound });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(opcode: u8, payload_len: usize) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        match payload_len {
            0..=125 => f.push(0x80 | payload_len as u8),
            126..=0xFFFF => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(payload_len as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        // Payload bytes that look like close frames, to prove they are skipped.
        f.extend(std::iter::repeat_n(0x88, payload_len));
        f
    }

    #[test]
    fn a_close_frame_is_found_after_payloads_of_every_length_form() {
        let counters = Counters::default();
        let mut bytes = Vec::new();
        for len in [0, 5, 125, 126, 300, 70_000] {
            bytes.extend(frame(0x1, len));
        }
        let mut inbound = Inbound::default();
        assert!(inbound.feed(&bytes, &counters).is_continue());
        assert_eq!(counters.messages_received.load(Relaxed), 6);
        // Byte by byte: a header split over reads still parses.
        let close = frame(0x8, 2);
        let mut split = Inbound::default();
        let stops: Vec<bool> = close
            .iter()
            .map(|b| split.feed(std::slice::from_ref(b), &counters).is_break())
            .collect();
        assert_eq!(stops.iter().position(|&s| s), Some(5), "after the mask key");
    }
}
