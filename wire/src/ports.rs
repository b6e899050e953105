//! A free loopback port for a program that must be told its port before it starts (Redis,
//! nginx and the other intermediaries, loadgen's proxies), shared by loadgen and the tests.
//!
//! Taken from below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), not by
//! binding port 0: a port the kernel hands out for a bind to 0 is from that range, and once the
//! probe's socket is closed the kernel may hand the same number straight to an outgoing
//! connection's source port, before the program it was picked for binds it. Under parallel tests
//! opening thousands of connections that happened (nginx: "Address already in use"). Below the
//! range the kernel never picks a port by itself, so only another caller of this function
//! could take it, at random among thousands.

use std::net::{Ipv4Addr, TcpListener};

use rand::Rng as _;

/// Random picks tried before the kernel is asked for one of its own.
pub const TRIES: usize = 1000;

/// The first port of the kernel's ephemeral range (32,768 where it cannot be read).
#[must_use]
pub fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A port on 127.0.0.1 that nothing listens on now, from the upper half of the ports below the
/// ephemeral range; the kernel's own pick if none of [`TRIES`] random ones is free.
///
/// # Errors
/// When no port can be bound at all.
pub fn free_loopback_port() -> std::io::Result<u16> {
    let top = ephemeral_start();
    let bottom = (top / 2).max(1024);
    if bottom < top {
        for _ in 0..TRIES {
            let port = rand::thread_rng().gen_range(bottom..top);
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_free_and_below_the_ephemeral_range() {
        let top = ephemeral_start();
        for _ in 0..50 {
            let port = free_loopback_port().unwrap();
            assert!(port < top, "{port} is in the ephemeral range from {top}");
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port is free");
        }
    }
}
