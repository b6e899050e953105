//! The clients' path changing under them during publishing (`--migrate-at`,
//! `--nat-rebind-at`): what a phone meets when it changes networks, or when its carrier's NAT
//! forgets a mapping and makes a new one. QUIC names a connection by IDs rather than by the
//! addresses it runs between, so its connections can follow; a TCP connection is its four
//! addresses and ports, and is cut (a client that only listens is not even told). The report's
//! reconnects and events received per transport say which went on.

use std::{net::IpAddr, sync::Arc};

use feedlab_link::Link;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    client::{wt, Shared},
    plan::{PathChange, MIGRATED_ADDR, MIGRATED_LOOPBACK},
};

/// Makes each change at its time after `publish_start`; returns what went wrong, as warnings.
pub async fn run(
    changes: Vec<PathChange>,
    publish_start: Instant,
    link: Option<Arc<Link>>,
    phase: Vec<Arc<Shared>>,
    stop: CancellationToken,
) -> Vec<String> {
    let mut changes = changes;
    changes.sort_by_key(|c| match c {
        PathChange::Migrate(at) | PathChange::NatRebind(at) => *at,
    });
    let mut warnings = Vec::new();
    for change in changes {
        let at = match change {
            PathChange::Migrate(at) | PathChange::NatRebind(at) => at,
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep_until(publish_start + at) => {}
        }
        match change {
            PathChange::NatRebind(_) => match &link {
                Some(l) => l.rebind_ports(),
                None => warnings.push("--nat-rebind-at: no emulated link to rebind".into()),
            },
            PathChange::Migrate(_) => {
                let quic = phase.iter().any(|s| {
                    s.transport == feedlab_wire::Transport::Wt
                        || s.http == crate::net::HttpVersion::Http3
                });
                let link = link.clone();
                let phase = phase.clone();
                let moved = tokio::task::spawn_blocking(move || {
                    let (agent, to) = match &link {
                        Some(l) => (Some(&*l.client), IpAddr::V4(MIGRATED_ADDR)),
                        None => (None, IpAddr::V4(MIGRATED_LOOPBACK)),
                    };
                    phase
                        .iter()
                        .map(|s| wt::migrate(s, agent, to))
                        .collect::<std::io::Result<Vec<usize>>>()
                })
                .await;
                match moved {
                    Ok(Ok(n)) if quic && n.iter().sum::<usize>() == 0 => warnings.push(
                        "--migrate-at: the QUIC clients had no endpoint to move (none connected yet?)"
                            .into(),
                    ),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => warnings.push(format!(
                        "--migrate-at: the QUIC clients could not move to a second address: {e}"
                    )),
                    Err(e) => warnings.push(format!("--migrate-at: {e}")),
                }
            }
        }
    }
    warnings
}
