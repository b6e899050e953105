//! The QUIC endpoints (UDP sockets) a group of QUIC clients shares: the run's clients of one
//! transport in one phase ([`super::Shared::quic`]), or the cost windows' clients of one
//! transport and condition (`costs::client::Setup`).
//!
//! Why shared, and why several: one endpoint is one UDP socket and one driver task. One per
//! connection would be thousands of sockets where a browser's tabs share a few; one for
//! thousands of connections would make its task the bottleneck of the measurement. So
//! [`ENDPOINTS`] per source address, made on first use (on the caller's runtime: the endpoint's
//! driver runs there) and closed when the pool is dropped with its owner. Across `--network`
//! the sockets are made in the target's namespace (the client end of the link, as TCP's
//! sockets are); [`Endpoints::rebind`] moves them all to another address (connection
//! migration, `--migrate-at`).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc, Mutex,
    },
};

use crate::net::Target;

/// Endpoints (UDP sockets) per source address: client `i` uses endpoint `i mod ENDPOINTS`.
pub const ENDPOINTS: usize = 8;

/// A pool of QUIC client endpoints, by source address and slot.
#[derive(Debug, Default)]
pub struct Endpoints {
    sockets: Mutex<HashMap<(IpAddr, usize), quinn::Endpoint>>,
    /// The slot of the next client that names none.
    next: AtomicUsize,
}

impl Endpoints {
    /// The endpoint for client `client`'s connections from `source` to `target` (`None`: the
    /// next slot in turn; no source: any address of the target's family).
    ///
    /// # Errors
    /// When the socket cannot be made or bound.
    pub fn pick(
        &self,
        target: &Target,
        source: Option<IpAddr>,
        client: Option<usize>,
    ) -> std::io::Result<quinn::Endpoint> {
        let ip = source.unwrap_or(match target.addr {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        let slot = client.unwrap_or_else(|| self.next.fetch_add(1, Relaxed)) % ENDPOINTS;
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = sockets.get(&(ip, slot)) {
            return Ok(e.clone());
        }
        let e = match &target.netns {
            Some(agent) => quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                None,
                udp_socket(Some(agent), SocketAddr::new(ip, 0))?,
                Arc::new(quinn::TokioRuntime),
            )?,
            None => quinn::Endpoint::client(SocketAddr::new(ip, 0))?,
        };
        sockets.insert((ip, slot), e.clone());
        Ok(e)
    }

    /// Moves every endpoint onto a new UDP socket bound to `to` (in the namespace `agent`
    /// stands in, across `--network`), as a phone that changed networks: its connections go on
    /// from the new address without connecting again. Returns how many endpoints moved.
    ///
    /// # Errors
    /// When a socket cannot be made or bound; the endpoints moved by then stay moved.
    pub fn rebind(
        &self,
        agent: Option<&feedlab_link::netns::Agent>,
        to: IpAddr,
    ) -> std::io::Result<usize> {
        let endpoints: Vec<quinn::Endpoint> = self
            .sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for e in &endpoints {
            e.rebind(udp_socket(agent, SocketAddr::new(to, 0))?)?;
        }
        Ok(endpoints.len())
    }
}

/// A non-blocking UDP socket (as quinn needs) bound to `addr`, in the namespace `agent` stands
/// in when given.
fn udp_socket(
    agent: Option<&feedlab_link::netns::Agent>,
    addr: SocketAddr,
) -> std::io::Result<std::net::UdpSocket> {
    let bind = move || {
        let s = std::net::UdpSocket::bind(addr)?;
        s.set_nonblocking(true)?;
        Ok(s)
    };
    match agent {
        Some(agent) => agent.run_blocking(bind)?,
        None => bind(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clients_share_a_few_sockets_and_move_together() {
        let target = Target::from_url(
            &url::Url::parse("http://127.0.0.1:9").unwrap(),
            &crate::net::TlsOptions::default(),
        )
        .await
        .unwrap();
        let pool = Endpoints::default();
        let addr = |e: &quinn::Endpoint| e.local_addr().unwrap();
        let named: Vec<SocketAddr> = (0..2 * ENDPOINTS)
            .map(|i| addr(&pool.pick(&target, None, Some(i)).unwrap()))
            .collect();
        assert_eq!(
            named[0], named[ENDPOINTS],
            "client i and i + ENDPOINTS share"
        );
        assert_ne!(named[0], named[1]);
        let in_turn: std::collections::HashSet<SocketAddr> = (0..3 * ENDPOINTS)
            .map(|_| addr(&pool.pick(&target, None, None).unwrap()))
            .collect();
        assert_eq!(in_turn.len(), ENDPOINTS, "no more sockets than ENDPOINTS");
        let moved = pool.rebind(None, IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
        assert_eq!(moved, ENDPOINTS);
        let after = addr(&pool.pick(&target, None, Some(0)).unwrap());
        assert_eq!(after.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
