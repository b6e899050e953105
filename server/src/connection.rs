//! Socket options for every accepted connection.
//!
//! `TCP_USER_TIMEOUT` makes the kernel abort a connection whose sent data stays unacknowledged
//! (including a peer that keeps advertising a zero window, i.e. stopped reading) for longer than
//! `--send-timeout`. That is the only way to let go of an SSE client that stopped reading: actix
//! stops polling a response body while its write buffer is full, so no timer inside the stream
//! would ever run.
//!
//! Also where a new connection is first seen, so the limit on new connections per second
//! ([`NewConnections`]) is charged here, once per TCP (or TLS) connection, on either server.

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

/// Tries at a port chosen by the kernel before giving up (see [`listen_serving`]).
pub const QUIC_PORT_TRIES: usize = 64;

/// [`listen`], and for a server that also listens for QUIC (`quic`) on the same port number
/// over UDP: where `addr`'s port is 0, the kernel picks a TCP port without looking at UDP, and
/// the number it picks may already be some other socket's over UDP (a QUIC client's endpoint,
/// another server's listener). QUIC would then fail to bind, or, where the other socket shares
/// the port, a client would reach the other socket. So a port is taken only once that number
/// was also free over UDP; a fixed port is taken as given (its UDP bind then fails with the
/// reason). The one choice the server and the test server both make.
///
/// # Errors
/// The address cannot be bound, or no port free over both was found in [`QUIC_PORT_TRIES`].
pub fn listen_serving(
    addr: std::net::SocketAddr,
    backlog: u32,
    quic: bool,
) -> std::io::Result<std::net::TcpListener> {
    if !quic || addr.port() != 0 {
        return listen(addr, backlog);
    }
    for _ in 0..QUIC_PORT_TRIES {
        let listener = listen(addr, backlog)?;
        let taken = listener.local_addr()?;
        if std::net::UdpSocket::bind(taken).is_ok() {
            return Ok(listener);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!(
            "no port on {} free over both TCP and UDP in {QUIC_PORT_TRIES} tries",
            addr.ip()
        ),
    ))
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

/// `--max-new-connections-per-sec`: a token bucket holding one second's worth of connections,
/// refilled continuously, taken from once per accepted connection.
///
/// Written here rather than taken from `governor`, the well-kept rate-limiting crate, because it
/// is not in the dependency tree and this needs one shared bucket and nothing else: a lock
/// around two numbers, taken once per new connection (not per request or per event).
#[derive(Debug)]
pub struct NewConnections {
    /// Tokens per second, and the bucket's size; 0: no limit.
    per_sec: u32,
    retry_after: std::ops::RangeInclusive<u64>,
    bucket: parking_lot::Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

/// In a refused connection's data (`HttpRequest::conn_data`): every request on it gets 503,
/// but for the monitoring endpoints.
#[derive(Debug, Clone, Copy)]
pub struct OverRate;

impl NewConnections {
    pub fn new(config: &crate::Config) -> Self {
        let per_sec = config.max_new_connections_per_sec;
        Self {
            per_sec,
            retry_after: config.new_connections_retry_after_min
                ..=config.new_connections_retry_after_max,
            bucket: parking_lot::Mutex::new(Bucket {
                tokens: f64::from(per_sec),
                at: std::time::Instant::now(),
            }),
        }
    }

    /// Takes a token for a connection accepted now; `false`: past the rate, refuse it.
    pub fn admit(&self) -> bool {
        if self.per_sec == 0 {
            return true;
        }
        let rate = f64::from(self.per_sec);
        let now = std::time::Instant::now();
        let mut b = self.bucket.lock();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate);
        b.at = now;
        if b.tokens < 1.0 {
            return false;
        }
        b.tokens -= 1.0;
        true
    }

    /// The limit, for the refusal's reason.
    pub fn per_sec(&self) -> u32 {
        self.per_sec
    }

    /// A refusal's `Retry-After`, whole seconds drawn uniformly from the configured range, so
    /// the refused do not all come back in the same second either.
    pub fn retry_after(&self) -> u64 {
        use rand::Rng as _;
        rand::thread_rng().gen_range(self.retry_after.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_one_seconds_worth_and_refills() {
        let config =
            crate::Config::from_args(["--max-new-connections-per-sec", "3"]).expect("settings");
        let limit = NewConnections::new(&config);
        assert_eq!((0..10).filter(|_| limit.admit()).count(), 3);
        // A third of a second later (as if): one more token.
        limit.bucket.lock().at -= Duration::from_millis(350);
        assert!(limit.admit());
        assert!(!limit.admit());
        let off = NewConnections::new(&crate::Config::from_args::<_, &str>([]).unwrap());
        assert!((0..10_000).all(|_| off.admit()));
        assert!((0..100).all(|_| (1..=10).contains(&off.retry_after())));
    }

    #[test]
    fn a_port_for_quic_is_free_over_udp_too() {
        // Hold a fifth of the ephemeral range over UDP, as QUIC clients' endpoints would: a TCP
        // port the kernel picks blindly then lands on one of them in about one pick of five.
        let held: Vec<std::net::UdpSocket> = (0..5_000)
            .filter_map(|_| std::net::UdpSocket::bind("127.0.0.1:0").ok())
            .collect();
        let ports: std::collections::HashSet<u16> = held
            .iter()
            .map(|u| u.local_addr().unwrap().port())
            .collect();
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let blind = (0..100)
            .filter(|_| {
                let l = listen(any, 16).unwrap();
                ports.contains(&l.local_addr().unwrap().port())
            })
            .count();
        assert!(blind > 0, "the set-up holds too few ports to show anything");
        for _ in 0..50 {
            let l = listen_serving(any, 16, true).unwrap();
            let port = l.local_addr().unwrap().port();
            assert!(!ports.contains(&port), "port {port} is held over UDP");
        }
    }
}
