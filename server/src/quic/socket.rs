//! The QUIC listener's UDP socket, bound with the kernel buffers `--quic-recv-buffer` and
//! `--quic-send-buffer` ask for.
//!
//! Why: one UDP socket takes every client's packets, and under a burst of handshakes (each
//! client's Initial padded to 1,200 bytes, twice with the Retry) the system's default receive
//! buffer (about 200 KiB) overflowed while the server was busy: the host's `RcvbufErrors`
//! (`/proc/net/snmp`, `Udp:`) rose by thousands and clients failed with "no answer to the
//! connect". TCP has no such loss (a SYN backlog, retransmitted segments within the
//! connection's own window); QUIC's handshake packets are retransmitted only after a timeout.
//!
//! Linux caps `SO_RCVBUF`/`SO_SNDBUF` at `net.core.rmem_max`/`wmem_max`; past the cap the
//! server asks again with `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE`, which a process with
//! CAP_NET_ADMIN may use, and otherwise keeps what it was granted. What it holds is read back
//! and logged at start-up, since it may be less than asked. Linux reports twice the size it
//! accepted (half of it for its own bookkeeping), so a buffer counts as granted in full when it
//! reports at least twice the size asked.

use std::{net::SocketAddr, os::fd::AsFd};

use anyhow::Context as _;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::QuicConfig;

/// Which of the socket's two buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Receive,
    Send,
}

impl Direction {
    fn flag(self) -> &'static str {
        match self {
            Self::Receive => "--quic-recv-buffer",
            Self::Send => "--quic-send-buffer",
        }
    }

    fn sysctl(self) -> &'static str {
        match self {
            Self::Receive => "net.core.rmem_max",
            Self::Send => "net.core.wmem_max",
        }
    }
}

/// One buffer as asked for and as granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffer {
    pub direction: Direction,
    /// Bytes asked for; 0 kept the system's default.
    pub asked: usize,
    /// Bytes the kernel reports holding for the socket (on Linux twice what it accepted).
    pub granted: usize,
    /// Whether the size came through `SO_*BUFFORCE`, past the system's cap.
    pub forced: bool,
    /// Why the force was not taken, when it was tried and refused.
    pub refused: Option<String>,
}

impl Buffer {
    /// Whether the socket holds at least what was asked (always, when nothing was): Linux
    /// reports twice what it accepted.
    pub fn is_full(&self) -> bool {
        self.granted >= self.asked.saturating_mul(2)
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        let what = match self.direction {
            Direction::Receive => "receive",
            Direction::Send => "send",
        };
        if self.asked == 0 {
            return format!(
                "UDP {what} buffer {} bytes (the system's default; {} 0)",
                self.granted,
                self.direction.flag()
            );
        }
        let mut line = format!(
            "UDP {what} buffer {} bytes granted for {} asked ({}; Linux reports twice what it accepted)",
            self.granted,
            self.asked,
            self.direction.flag()
        );
        if self.forced {
            line.push_str(&format!(", past {} by force", self.direction.sysctl()));
        }
        if !self.is_full() {
            line.push_str(&format!(
                "; less than asked: raise {} (sysctl) or run with CAP_NET_ADMIN",
                self.direction.sysctl()
            ));
            if let Some(why) = &self.refused {
                line.push_str(&format!(" (force refused: {why})"));
            }
        }
        line
    }
}

/// Binds `addr` over UDP with the buffers `quic` asks for; the socket and what it holds.
///
/// # Errors
/// The address cannot be bound, or a buffer size cannot be set or read at all (a size the
/// kernel caps is not an error: [`Buffer::is_full`] tells).
pub fn bind(
    addr: SocketAddr,
    quic: &QuicConfig,
) -> anyhow::Result<(std::net::UdpSocket, [Buffer; 2])> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .context("a UDP socket for QUIC")?;
    let recv = size(&socket, Direction::Receive, quic.quic_recv_buffer as usize)?;
    let send = size(&socket, Direction::Send, quic.quic_send_buffer as usize)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("binding {addr} over UDP for QUIC"))?;
    Ok((socket.into(), [recv, send]))
}

/// Asks for `asked` bytes of `direction`'s buffer (0: leaves it), by force past the cap when
/// allowed; reads back what the socket holds.
fn size(socket: &Socket, direction: Direction, asked: usize) -> anyhow::Result<Buffer> {
    let read = |s: &Socket| match direction {
        Direction::Receive => s.recv_buffer_size(),
        Direction::Send => s.send_buffer_size(),
    };
    let mut buffer = Buffer {
        direction,
        asked,
        granted: 0,
        forced: false,
        refused: None,
    };
    if asked > 0 {
        match direction {
            Direction::Receive => socket.set_recv_buffer_size(asked),
            Direction::Send => socket.set_send_buffer_size(asked),
        }
        .with_context(|| format!("{} {asked}", direction.flag()))?;
    }
    buffer.granted = read(socket).with_context(|| format!("reading {}", direction.flag()))?;
    if !buffer.is_full() {
        let fd = socket.as_fd();
        let forced = match direction {
            Direction::Receive => {
                rustix::net::sockopt::set_socket_recv_buffer_size_force(fd, asked)
            }
            Direction::Send => rustix::net::sockopt::set_socket_send_buffer_size_force(fd, asked),
        };
        match forced {
            Ok(()) => {
                buffer.forced = true;
                buffer.granted =
                    read(socket).with_context(|| format!("reading {}", direction.flag()))?;
            }
            Err(e) => buffer.refused = Some(e.to_string()),
        }
    }
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn quic(args: &[&str]) -> QuicConfig {
        Config::from_args(args).unwrap().quic
    }

    /// The system's cap on what a process without CAP_NET_ADMIN may ask for.
    fn cap(direction: Direction) -> usize {
        let path = match direction {
            Direction::Receive => "/proc/sys/net/core/rmem_max",
            Direction::Send => "/proc/sys/net/core/wmem_max",
        };
        std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn the_buffers_asked_are_set_on_the_socket_as_far_as_the_kernel_grants() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        for asked in [64 << 10, 8 << 20] {
            let n = asked.to_string();
            let (socket, buffers) = bind(
                addr,
                &quic(&["--quic-recv-buffer", &n, "--quic-send-buffer", &n]),
            )
            .unwrap();
            let socket = Socket::from(socket);
            assert_ne!(socket.local_addr().unwrap().as_socket().unwrap().port(), 0);
            let held = [
                socket.recv_buffer_size().unwrap(),
                socket.send_buffer_size().unwrap(),
            ];
            for (b, held) in buffers.iter().zip(held) {
                assert_eq!(b.asked, asked, "{b:?}");
                assert_eq!(b.granted, held, "what is logged is what the socket holds");
                // Granted in full (by force past the system's cap, with CAP_NET_ADMIN), or
                // capped there with the reason told; Linux reports twice what it accepted.
                let capped = cap(b.direction).min(asked);
                assert!(
                    b.is_full() || (b.granted >= 2 * capped && b.refused.is_some()),
                    "{b:?}, cap {capped}"
                );
                assert_eq!(b.forced, asked > cap(b.direction) && b.is_full(), "{b:?}");
                assert!(b
                    .describe()
                    .contains(&format!("{} bytes granted", b.granted)));
            }
        }
    }

    #[test]
    fn zero_keeps_the_systems_default() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (_, [recv, send]) = bind(
            addr,
            &quic(&["--quic-recv-buffer", "0", "--quic-send-buffer", "0"]),
        )
        .unwrap();
        let default = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        assert_eq!(recv.granted, default.recv_buffer_size().unwrap());
        assert_eq!(send.granted, default.send_buffer_size().unwrap());
        assert!(!recv.forced && recv.describe().contains("system's default"));
    }
}
