//! Writing to a fast-path socket: whole vectored writes under a deadline, response heads, and
//! refusals rendered from the same [`ApiError`] actix-web would have answered with.

use std::{io, io::IoSlice, time::Duration};

use actix_web::{body::MessageBody as _, ResponseError as _};
use tokio::{io::AsyncWriteExt as _, net::TcpStream};

use crate::error::ApiError;

/// The pieces of one write; a few live on the stack, so a batch costs no allocation.
pub type Parts<'a> = smallvec::SmallVec<[IoSlice<'a>; 8]>;

/// `writev` takes at most `IOV_MAX` (1024 on Linux) pieces per call.
const MAX_IOV: usize = 512;

/// Writes every byte of `bufs` within `limit`; a client that does not take them in time has
/// stopped reading (`ErrorKind::TimedOut`).
pub async fn write_all(
    stream: &mut TcpStream,
    mut bufs: &mut [IoSlice<'_>],
    limit: Duration,
) -> io::Result<()> {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    // Nearly every write fits in the socket buffer at once: try that first, without a timer.
    while !bufs.is_empty() {
        let tried = if let [one] = bufs {
            stream.try_write(one)
        } else {
            stream.try_write_vectored(&bufs[..bufs.len().min(MAX_IOV)])
        };
        match tried {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    if bufs.is_empty() {
        return Ok(());
    }
    let write = async {
        while !bufs.is_empty() {
            // One piece goes out with send(2), which costs less than writev(2).
            let n = if let [one] = bufs {
                stream.write(one).await?
            } else {
                let end = bufs.len().min(MAX_IOV);
                stream.write_vectored(&bufs[..end]).await?
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut bufs, n);
        }
        Ok(())
    };
    match tokio::time::timeout(limit, write).await {
        Ok(result) => result,
        // `TimedOut` only when no byte of these buffers went out: after part of a frame or
        // chunk, nothing else may follow on this connection (not even a close frame).
        Err(_) if bufs.iter().map(|b| b.len()).sum::<usize>() == total => {
            Err(io::ErrorKind::TimedOut.into())
        }
        Err(_) => Err(io::Error::other(
            "write cut off by --send-timeout mid-message",
        )),
    }
}

/// `date: …\r\n`, as every HTTP/1.1 origin server with a clock sends.
pub fn date_line() -> String {
    format!(
        "date: {}\r\n",
        httpdate::fmt_http_date(std::time::SystemTime::now())
    )
}

/// `access-control-allow-origin` for an allowed cross-site page, as the CORS wrapper adds on
/// actix-web's responses.
pub fn cors_lines(allowed_origin: Option<&str>) -> String {
    match allowed_origin {
        Some(origin) if !origin.contains(['\r', '\n']) => {
            format!("access-control-allow-origin: {origin}\r\nvary: Origin\r\n")
        }
        _ => String::new(),
    }
}

/// Answers `err` (status, JSON reason, `Retry-After` and the like, exactly as actix-web would
/// render it) and closes; returns the bytes written.
pub async fn refuse(
    stream: &mut TcpStream,
    err: &ApiError,
    allowed_origin: Option<&str>,
    limit: Duration,
) -> u64 {
    let res = err.error_response();
    let status = res.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in res.headers() {
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let body = res.into_body().try_into_bytes().unwrap_or_default();
    head.push_str(&format!(
        "{}content-length: {}\r\nconnection: close\r\n{}\r\n",
        cors_lines(allowed_origin),
        body.len(),
        date_line()
    ));
    let n = (head.len() + body.len()) as u64;
    let _ = write_all(
        stream,
        &mut [IoSlice::new(head.as_bytes()), IoSlice::new(&body)],
        limit,
    )
    .await;
    let _ = stream.shutdown().await;
    n
}

/// `408 Request Timeout`, as actix-web answers a head that did not arrive in time, and closes.
pub async fn request_timeout(mut stream: TcpStream, limit: Duration) {
    let head = format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n{}\r\n",
        date_line()
    );
    let _ = write_all(&mut stream, &mut [IoSlice::new(head.as_bytes())], limit).await;
    let _ = stream.shutdown().await;
}
