//! WebSocket by hand, for tests that need what no client library sends: the handshake, masked
//! client frames of any shape, and the server's frames as they come off the wire.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Every read here is bounded by this, so a hang fails fast.
pub const LIMIT: Duration = Duration::from_secs(10);

/// RFC 6455's sample key and the version, as request header lines.
pub const KEY_HEADERS: &str =
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// An upgrade request for `path`, with `extra` header lines (each ending in `\r\n`).
#[must_use]
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         {KEY_HEADERS}{extra}\r\n"
    )
}

/// Reads a response head byte by byte (nothing after it): up to and including `\r\n\r\n`.
///
/// # Panics
/// When the connection closes first or nothing comes within [`LIMIT`].
pub async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(LIMIT, io.read(&mut byte))
            .await
            .expect("the response head in time")
            .expect("readable");
        assert_eq!(n, 1, "connection closed during the handshake");
        got.push(byte[0]);
    }
    got
}

/// Sends [`upgrade_request`] on `io` and reads the answer's head, which must be a 101.
/// Returns the head, lower-cased.
///
/// # Panics
/// When the answer is not `101 Switching Protocols`.
pub async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    path: &str,
    extra: &str,
) -> String {
    io.write_all(upgrade_request(path, extra).as_bytes())
        .await
        .expect("the upgrade request written");
    let head = String::from_utf8_lossy(&read_head(io).await).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    head
}

/// A masked client frame header whose first byte (FIN, RSV, opcode) is `first`, for `len`
/// payload bytes, and `mask`.
#[must_use]
pub fn client_header(first: u8, len: u64, mask: [u8; 4]) -> Vec<u8> {
    let mut h = vec![first];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xffff => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&mask);
    h
}

/// A whole masked client frame whose first byte is `first`.
#[must_use]
pub fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = client_header(first, payload.len() as u64, mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// The first byte of a frame: FIN and the opcode.
#[must_use]
pub fn first_byte(fin: bool, opcode: u8) -> u8 {
    (u8::from(fin) << 7) | opcode
}

/// The next server frame (unmasked) other than a ping: its first byte and payload.
///
/// # Panics
/// When no frame comes within [`LIMIT`] or the connection closes mid-frame.
pub async fn read_frame<S: AsyncRead + Unpin>(io: &mut S) -> (u8, Vec<u8>) {
    loop {
        let mut h = [0u8; 2];
        tokio::time::timeout(LIMIT, io.read_exact(&mut h))
            .await
            .expect("a frame in time")
            .expect("a frame");
        let len = match h[1] & 0x7f {
            126 => u64::from(io.read_u16().await.unwrap()),
            127 => io.read_u64().await.unwrap(),
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        tokio::time::timeout(LIMIT, io.read_exact(&mut payload))
            .await
            .expect("a frame's payload in time")
            .unwrap();
        if h[0] & 0x0f != 0x9 {
            return (h[0], payload);
        }
    }
}
