//! Which servers share a window, so that twelve servers (four transports over TCP in two
//! conditions, four over QUIC) fit in the measurement's 30 minutes without a window measuring
//! a loaded machine.
//!
//! - **Sessions**: one TCP server at a time, since their packets are the system's
//!   `Tcp: OutSegs`, which counts every TCP connection on the machine; the QUIC servers'
//!   together, in one window, since their clients count their own datagrams (and the few TCP
//!   segments of theirs are read per socket): about 160 handshakes a second on two cores,
//!   against a TCP window's 40.
//! - **Deliveries at a rate above the lowest**: servers share a window as long as their
//!   deliveries per second together stay within [`delivery_budget`], what the lowest rate's
//!   window already carries at the most clients with every server in it; one alone may exceed
//!   it (a server at 20 events/s × 1,000 clients always runs alone). With the defaults, the
//!   100-client windows at 20 events/s run six servers at a time instead of one.

use feedlab_cost::model::Condition;
use feedlab_wire::Transport;

use super::Plan;

/// The session windows' groups, as indices into `pairs` (in that order): each TCP server
/// alone, then the QUIC servers together.
pub fn session_groups(pairs: &[(Condition, Transport)]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut quic = Vec::new();
    for (k, (c, _)) in pairs.iter().enumerate() {
        if c.is_quic() {
            quic.push(k);
        } else {
            groups.push(vec![k]);
        }
    }
    if !quic.is_empty() {
        groups.push(quic);
    }
    groups
}

/// Deliveries per second a shared delivery window may carry: every server at the lowest rate
/// with the most clients, as the lowest rate's window (all servers at once) does.
pub fn delivery_budget(plan: &Plan, servers: usize) -> f64 {
    let lowest = plan.rates.first().copied().unwrap_or(0.0);
    let most = plan.clients.last().copied().unwrap_or(0);
    servers as f64 * lowest * f64::from(most)
}

/// The groups of the delivery windows at `rate` with `clients` each, as indices into `pairs`
/// (in order, each group consecutive): as many servers as stay within [`delivery_budget`].
pub fn delivery_groups(
    plan: &Plan,
    pairs: &[(Condition, Transport)],
    rate: f64,
    clients: u32,
) -> Vec<Vec<usize>> {
    let each = rate * f64::from(clients);
    let budget = delivery_budget(plan, pairs.len());
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for k in 0..pairs.len() {
        match groups.last_mut() {
            Some(g) if (g.len() + 1) as f64 * each <= budget => g.push(k),
            _ => groups.push(vec![k]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let args = <crate::cli::Cli as clap::Parser>::try_parse_from(["loadgen", "costs"])
            .map(|c| match c.command {
                Some(crate::cli::Command::Costs(a)) => a,
                _ => panic!("costs expected"),
            })
            .unwrap();
        Plan::build(&args).unwrap()
    }

    #[test]
    fn tcp_sessions_run_alone_and_quic_sessions_together() {
        let pairs = [
            (Condition::BrowserH3, Transport::Sse),
            (Condition::Browser, Transport::Sse),
            (Condition::BrowserH3, Transport::Wt),
            (Condition::PlainH1, Transport::Ws),
        ];
        assert_eq!(session_groups(&pairs), [vec![1], vec![3], vec![0, 2]]);
        assert_eq!(session_groups(&pairs[1..2]), [vec![0]]);
    }

    #[test]
    fn light_delivery_windows_are_shared_within_the_lowest_rates_load() {
        let plan = plan();
        let pairs = plan.pairs();
        assert_eq!(pairs.len(), 12);
        // 12 servers × 1/s × 1,000 clients = 12,000/s: six at 20/s × 100 (2,000/s each).
        let light = delivery_groups(&plan, &pairs, 20.0, 100);
        assert_eq!(light.len(), 2, "{light:?}");
        assert!(light.iter().all(|g| g.len() == 6));
        // 20/s × 1,000 is past the budget: every server alone.
        let heavy = delivery_groups(&plan, &pairs, 20.0, 1000);
        assert_eq!(heavy, (0..12).map(|k| vec![k]).collect::<Vec<_>>());
        let every: Vec<usize> = light.into_iter().flatten().collect();
        assert_eq!(
            every,
            (0..12).collect::<Vec<_>>(),
            "each server once, in order"
        );
    }
}
