//! `/ws` and `/ws/echo` on the socket itself: the same admission checks and the same session as
//! the actix-web handlers ([`crate::transport::ws`]), over a [`Wire`] that is the TCP socket.
//! Each event goes out as the complete frame every client shares ([`Event::ws_frame`], or its
//! compressed twin for `--ws-deflate shared`), many in one vectored write; idle, the connection
//! holds no buffer.
//!
//! [`Event::ws_frame`]: crate::event::Event::ws_frame

use std::{
    io::{self, IoSlice},
    sync::Arc,
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use tokio::{io::AsyncWriteExt as _, net::TcpStream, time::Instant};

use super::{head::Head, wire, Admission};
use crate::{
    error::ApiError,
    incoming::Incoming as _,
    state::AppState,
    transport::ws::{
        admit as admit_ws, deflate, handshake,
        session::{self, Mode, Wire},
        Refusal,
    },
};

/// Most bytes drained (read and dropped) while closing, before the socket is simply dropped.
const DRAIN_LIMIT: usize = 64 * 1024;

/// What the actix-web handler would do: a limit refuses it here (counted), anything else it
/// would refuse goes to it (so its error reads the same), the rest is served here.
pub(crate) fn admit(head: &Head, state: &Arc<AppState>) -> Admission<(Mode, String)> {
    let Ok((_, accept)) = handshake(head) else {
        return Admission::Actix;
    };
    match admit_ws(head, state) {
        Ok(ready) => Admission::Serve((Mode::Feed(ready), accept)),
        Err(Refusal {
            error: error @ ApiError::TooManyConnections(_),
            meter: Some(meter),
        }) => Admission::Refuse(error, meter),
        Err(_) => Admission::Actix,
    }
}

/// `/ws/echo`: checked like the actix-web handler (handshake, `Origin`); nothing else applies.
pub(crate) fn admit_echo(head: &Head, state: &Arc<AppState>) -> Admission<(Mode, String)> {
    if state.origins.check(head).is_err() {
        return Admission::Actix;
    }
    match handshake(head) {
        Ok((_, accept)) => Admission::Serve((
            Mode::Echo(deflate::negotiate(
                head.headers(),
                &state.config.ws_deflate(),
            )),
            accept,
        )),
        Err(_) => Admission::Actix,
    }
}

/// Completes the handshake and runs the session until one side closes it; `pending` is what
/// the client sent after its request head.
///
/// The `101` is written by a boxed future that is gone before the session starts: its head and
/// buffers are no part of the future an idle connection keeps.
pub(crate) async fn serve(
    socket: TcpStream,
    ws: (Mode, String),
    state: Arc<AppState>,
    pending: BytesMut,
) {
    let (mode, accept) = ws;
    let Some(socket) = Box::pin(switch_protocols(socket, &mode, accept, &state)).await else {
        return;
    };
    session::serve(TcpWire(socket), mode, state, pending).await;
}

/// Writes the `101 Switching Protocols` answer; the socket, or `None` when the write failed.
async fn switch_protocols(
    mut socket: TcpStream,
    mode: &Mode,
    accept: String,
    state: &AppState,
) -> Option<TcpStream> {
    let extensions = mode.deflate().map_or_else(String::new, |a| {
        format!("sec-websocket-extensions: {}\r\n", a.header())
    });
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-accept: {accept}\r\n{extensions}{}\r\n",
        wire::date_line()
    );
    let limit = state.config.send_timeout;
    if wire::write_all(&mut socket, &mut [IoSlice::new(head.as_bytes())], limit)
        .await
        .is_err()
    {
        return None;
    }
    if let Mode::Feed(ready) = mode {
        ready.meter.bytes(head.len() as u64);
    }
    Some(socket)
}

struct TcpWire(TcpStream);

impl Wire for TcpWire {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        loop {
            self.0.readable().await?;
            // A stack buffer used after the await only: it is no part of the idle connection.
            let mut chunk = [0u8; 4096];
            match self.0.try_read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    async fn write(&mut self, frames: &[&Bytes], limit: Duration) -> io::Result<()> {
        let mut parts: wire::Parts<'_> = frames.iter().map(|f| IoSlice::new(f)).collect();
        wire::write_all(&mut self.0, &mut parts[..], limit).await
    }

    async fn close(mut self, deadline: Instant) {
        // FIN after what was written; then what the client still sends is read and dropped
        // (closing a socket with unread bytes resets it, which can destroy our close frame
        // before the client reads it), until its FIN, the deadline or DRAIN_LIMIT bytes.
        let _ = self.0.shutdown().await;
        let drain = async {
            let mut drained = 0;
            while drained < DRAIN_LIMIT {
                let mut scrap = BytesMut::new();
                match self.read(&mut scrap).await {
                    Ok(true) => drained += scrap.len(),
                    Ok(false) | Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout_at(deadline, drain).await;
    }
}
