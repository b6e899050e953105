//! Socket options for every accepted connection.
//!
//! `TCP_USER_TIMEOUT` makes the kernel abort a connection whose sent data stays unacknowledged
//! (including a peer that keeps advertising a zero window, i.e. stopped reading) for longer than
//! `--send-timeout`. That is the only way to let go of an SSE client that stopped reading: actix
//! stops polling a response body while its write buffer is full, so no timer inside the stream
//! would ever run.

use std::{any::Any, time::Duration};

use actix_web::rt::net::TcpStream;

pub fn configure(conn: &dyn Any, user_timeout: Duration) {
    let tcp = if let Some(tcp) = conn.downcast_ref::<TcpStream>() {
        tcp
    } else if let Some(tls) =
        conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()
    {
        tls.get_ref().0
    } else {
        return;
    };
    configure_tcp(tcp, user_timeout);
}

/// A listening socket on `addr` with room for `backlog` pending connections (std's `bind`
/// gives 128, which a burst of clients overflows).
///
/// # Errors
/// The address cannot be bound.
pub fn listen(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Sets `TCP_NODELAY` and `TCP_USER_TIMEOUT` on one accepted socket.
pub fn configure_tcp(tcp: &TcpStream, user_timeout: Duration) {
    let sock = socket2::SockRef::from(tcp);
    let _ = sock.set_nodelay(true);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = sock.set_tcp_user_timeout(Some(user_timeout));
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = user_timeout;
}
