//! `/ws` and `/ws/echo` on the socket itself: the same admission checks and the same session as
//! the actix-web handlers ([`crate::transport::ws`]), over a [`Wire`] that is the TCP socket
//! ([`IoWire`], which also serves the connections actix-http hands over after a handshake,
//! TLS ones included).
//! Each event goes out as the complete frame every client shares ([`Event::ws_frame`], or its
//! compressed twin for `--ws-deflate shared`), many in one vectored write; idle, the connection
//! holds no buffer.
//!
//! [`Event::ws_frame`]: crate::event::Event::ws_frame
//! [`Wire`]: crate::transport::ws::session::Wire

use std::{io::IoSlice, sync::Arc};

use bytes::BytesMut;

use super::{conn::Conn, head::Head, wire, Admission};
use crate::{
    error::ApiError,
    incoming::Incoming as _,
    state::AppState,
    transport::ws::{
        admit as admit_ws, deflate, handshake,
        io_wire::IoWire,
        session::{self, Mode},
        Refusal,
    },
};

/// What the actix-web handler would do: a limit refuses it here (counted), anything else it
/// would refuse goes to it (so its error reads the same), the rest is served here.
pub(crate) fn admit(head: &Head, state: &Arc<AppState>) -> Admission<(Mode, String)> {
    let Ok((_, accept)) = handshake(head) else {
        return Admission::Actix;
    };
    match admit_ws(head, state) {
        Ok(ready) => Admission::Serve((Mode::Feed(ready), accept)),
        Err(Refusal {
            error: error @ (ApiError::TooManyConnections(_) | ApiError::TooManyFeeds { .. }),
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
pub(crate) async fn serve<C: Conn>(
    socket: C,
    ws: (Mode, String),
    state: Arc<AppState>,
    pending: BytesMut,
) {
    let (mode, accept) = ws;
    let Some(socket) = Box::pin(switch_protocols(socket, &mode, accept, &state)).await else {
        return;
    };
    session::serve(IoWire(socket), mode, state, pending).await;
}

/// Writes the `101 Switching Protocols` answer; the socket, or `None` when the write failed.
async fn switch_protocols<C: Conn>(
    mut socket: C,
    mode: &Mode,
    accept: String,
    state: &AppState,
) -> Option<C> {
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
