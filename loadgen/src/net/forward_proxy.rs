//! A client's side of a forward proxy's CONNECT (RFC 9110 §9.3.6): what a browser configured
//! with an HTTP proxy sends before a `wss://`, `https://` or `ws://` connection.

use std::io;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The longest proxy answer head read.
const MAX_HEAD: usize = 16 * 1024;

/// Asks the proxy at the other end of `stream` for a tunnel to `target` and reads its answer.
///
/// # Errors
/// I/O errors; a refusal as `PermissionDenied` with the proxy's status line; an answer without
/// an end as `InvalidData`.
pub async fn connect_tunnel(
    stream: &mut tokio::net::TcpStream,
    target: &crate::net::Target,
) -> io::Result<()> {
    let authority = if target.host.contains(':') {
        target.host.clone()
    } else {
        format!("{}:{}", target.host, target.addr.port())
    };
    stream
        .write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await?;
    // Byte by byte: what follows the head is the tunnel's, not ours to read.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the proxy closed during CONNECT",
            ));
        }
        head.push(byte[0]);
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the proxy's CONNECT answer has no end",
            ));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status = text.lines().next().unwrap_or("").trim().to_owned();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the forward proxy refused CONNECT {authority}: {status}"),
        ))
    }
}
