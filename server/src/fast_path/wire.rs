//! Writing to a fast-path connection: whole vectored writes under a deadline, response heads,
//! and refusals rendered from the same [`ApiError`] actix-web would have answered with.

use std::{io, io::IoSlice, time::Duration};

use actix_web::{body::MessageBody as _, http::StatusCode, ResponseError as _};
use tokio::{io::AsyncWriteExt as _, net::TcpStream};

use super::conn::Conn;
use crate::error::ApiError;

pub use crate::transport::ws::io_wire::Parts;

/// `writev` takes at most `IOV_MAX` (1024 on Linux) pieces per call.
const MAX_IOV: usize = 512;

/// Writes every byte of `bufs` within `limit`; a client that does not take them in time has
/// stopped reading (`ErrorKind::TimedOut`). Over TLS, into rustls and flushed
/// ([`crate::transport::ws::io_wire::write_all`]); on TCP, as follows, in this one future: a stream's future is as
/// large as its largest wait, and this is one of them.
pub async fn write_all(
    conn: &mut impl Conn,
    mut bufs: &mut [IoSlice<'_>],
    limit: Duration,
) -> io::Result<()> {
    let Some(stream) = conn.as_tcp() else {
        return crate::transport::ws::io_wire::write_all(conn, bufs, limit).await;
    };
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
    // Boxed: a full socket buffer is the rare case, and its timer and loop would otherwise be
    // part of every stream's future, and of its memory, for the stream's whole life.
    Box::pin(write_rest(stream, bufs, total, limit)).await
}

/// [`write_all`] once the socket buffer was full: the rest, within `limit`.
async fn write_rest(
    stream: &mut TcpStream,
    mut bufs: &mut [IoSlice<'_>],
    total: usize,
    limit: Duration,
) -> io::Result<()> {
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

/// `date: …\r\n`, as every HTTP/1.1 origin server with a clock sends, and `alt-svc: …\r\n`
/// after it when this worker's server serves HTTP/3 ([`advertise`]).
pub fn date_line() -> String {
    let mut out = String::with_capacity(DATE_LINE_LEN);
    with_date_line(|line| out.push_str(line));
    out
}

/// Bytes of a `date` line: `date: Thu, 01 Jan 1970 00:00:00 GMT\r\n`.
pub const DATE_LINE_LEN: usize = 37;

thread_local! {
    /// The date line of the current second, on this worker thread: formatting a date costs
    /// more than the rest of a poll answer's head, and it changes once a second.
    static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    /// `alt-svc: h3=":PORT"; ma=86400\r\n` when the server of this worker thread serves HTTP/3
    /// on its port (`--quic --quic-http3`), else empty.
    static ALT_SVC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Makes this worker thread's heads carry `Alt-Svc` as actix-web's responses do
/// ([`crate::app::alt_svc`]) when `state`'s server serves HTTP/3. Every fast-path head ends with
/// the date line, so the line rides on it: one place for every head, cached with the date.
/// Per thread, because each actix worker thread serves one server (tests run several servers
/// in one process).
pub fn advertise(state: &crate::state::AppState) {
    let line = crate::quic_info::alt_svc(&state.config, state.config.bind.port())
        .map_or_else(String::new, |v| format!("alt-svc: {v}\r\n"));
    ALT_SVC.with(|cell| *cell.borrow_mut() = line);
    DATE.with(|cell| cell.borrow_mut().0 = u64::MAX);
}

/// Calls `f` with the current `date: …\r\n` line (formatted at most once a second per thread),
/// and the `alt-svc` line when [`advertise`] set one.
pub fn with_date_line<T>(f: impl FnOnce(&str) -> T) -> T {
    let now = std::time::SystemTime::now();
    let second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            cached.1 = ALT_SVC
                .with(|alt| format!("date: {}\r\n{}", httpdate::fmt_http_date(now), alt.borrow()));
            cached.0 = second;
        }
        f(&cached.1)
    })
}

/// Writes a response head's fixed part for `status` and `headers`, and then `content-length`
/// (unless `204`), the CORS lines, `connection: close` when `close`, and `date`.
pub fn response_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: impl IntoIterator<Item = (impl AsRef<[u8]>, impl AsRef<[u8]>)>,
    body_len: usize,
    allowed_origin: Option<&str>,
    close: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    if status != StatusCode::NO_CONTENT {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_ref());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_ref());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(origin) = allowed_origin.filter(|o| !o.contains(['\r', '\n'])) {
        out.extend_from_slice(b"access-control-allow-origin: ");
        out.extend_from_slice(origin.as_bytes());
        out.extend_from_slice(b"\r\nvary: Origin\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    with_date_line(|line| out.extend_from_slice(line.as_bytes()));
    out.extend_from_slice(b"\r\n");
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

/// Whether the connection stays open after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    KeepAlive,
    Close,
}

/// Answers `err` (status, JSON reason, `Retry-After` and the like, exactly as actix-web would
/// render it), and closes unless `after` keeps the connection; returns the bytes written, or
/// `None` when the write failed (the connection is then done for).
pub async fn refuse(
    stream: &mut impl Conn,
    err: &ApiError,
    allowed_origin: Option<&str>,
    limit: Duration,
    after: After,
) -> Option<u64> {
    let res = err.error_response();
    let status = res.status();
    let headers: Vec<_> = res
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let body = res.into_body().try_into_bytes().unwrap_or_default();
    answer(stream, status, headers, &body, allowed_origin, limit, after).await
}

/// Answers with `status`, `headers` and `body` in one write, and closes unless `after` keeps
/// the connection; returns the bytes written, or `None` when the write failed (the connection
/// is then done for).
pub async fn answer(
    stream: &mut impl Conn,
    status: StatusCode,
    headers: impl IntoIterator<Item = (impl AsRef<[u8]>, impl AsRef<[u8]>)>,
    body: &[u8],
    allowed_origin: Option<&str>,
    limit: Duration,
    after: After,
) -> Option<u64> {
    let mut head = Vec::with_capacity(256);
    response_head(
        &mut head,
        status,
        headers,
        body.len(),
        allowed_origin,
        after == After::Close,
    );
    let n = (head.len() + body.len()) as u64;
    let written = write_all(
        stream,
        &mut [IoSlice::new(&head), IoSlice::new(body)],
        limit,
    )
    .await;
    if after == After::Close || written.is_err() {
        let _ = stream.shutdown().await;
    }
    written.ok().map(|()| n)
}

/// `408 Request Timeout`, as actix-web answers a head that did not arrive in time, and closes.
pub async fn request_timeout(mut stream: impl Conn, limit: Duration) {
    let head = format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n{}\r\n",
        date_line()
    );
    let _ = write_all(&mut stream, &mut [IoSlice::new(head.as_bytes())], limit).await;
    let _ = stream.shutdown().await;
}
