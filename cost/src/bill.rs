//! The whole bill of one transport for a workload, per million client-hours, line by line:
//! server CPU, memory held, egress, load-balancer capacity and requests. Server CPU is a line,
//! not the bill.

use serde::Serialize;

use crate::{compose::PerClientHour, prices::Prices};

/// Client-hours a bill is quoted for.
pub const CLIENT_HOURS: f64 = 1e6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Line {
    ServerCpu,
    Memory,
    Egress,
    LoadBalancer,
    Requests,
}

impl Line {
    pub const ALL: [Line; 5] = [
        Line::ServerCpu,
        Line::Memory,
        Line::Egress,
        Line::LoadBalancer,
        Line::Requests,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::ServerCpu => "server CPU",
            Self::Memory => "memory held",
            Self::Egress => "egress",
            Self::LoadBalancer => "load balancer",
            Self::Requests => "requests",
        }
    }
}

/// $ per million client-hours, by line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bill {
    pub server_cpu: f64,
    pub memory: f64,
    pub egress: f64,
    pub load_balancer: f64,
    pub requests: f64,
    /// Which dimension set the load balancer's capacity units.
    pub balancer_dimension: &'static str,
}

impl Bill {
    pub fn of(h: &PerClientHour, clients: u64, p: &Prices) -> Self {
        let b = &p.balancer;
        let gib = 1024.0 * 1024.0 * 1024.0;
        // One client-hour is one hour of one client: its share of each capacity dimension.
        let dimensions = [
            (
                "new connections",
                h.new_connections / 3600.0 / b.new_connections_per_s,
            ),
            (
                "active connections",
                h.connections_held / b.active_connections,
            ),
            (
                "bytes processed",
                (h.bytes_up + h.bytes_down) / 1e9 / b.gb_per_hour,
            ),
            (
                "rule evaluations",
                if b.rule_evaluations_per_s > 0.0 {
                    let billed_rules = (b.rules - 10.0).max(0.0);
                    h.requests / 3600.0 * billed_rules / b.rule_evaluations_per_s
                } else {
                    0.0
                },
            ),
        ];
        let (dimension, units) = dimensions
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("four dimensions");
        // The balancer's own hourly price, shared by the clients it carries.
        let fixed = b.hourly / clients.max(1) as f64;
        Self {
            server_cpu: h.cpu_s / 3600.0 * p.vcpu_hour * CLIENT_HOURS,
            memory: h.memory_bytes / gib * p.gib_hour * CLIENT_HOURS,
            egress: h.bytes_down / 1e9 * p.egress_gb * CLIENT_HOURS,
            load_balancer: (units * b.unit_hour + fixed) * CLIENT_HOURS,
            requests: h.requests / 1e6 * p.million_requests * CLIENT_HOURS,
            balancer_dimension: dimension,
        }
    }

    pub fn line(&self, l: Line) -> f64 {
        match l {
            Line::ServerCpu => self.server_cpu,
            Line::Memory => self.memory,
            Line::Egress => self.egress,
            Line::LoadBalancer => self.load_balancer,
            Line::Requests => self.requests,
        }
    }

    pub fn total(&self) -> f64 {
        Line::ALL.iter().map(|&l| self.line(l)).sum()
    }

    /// The largest line.
    pub fn dominant(&self) -> Line {
        Line::ALL
            .into_iter()
            .max_by(|a, b| self.line(*a).total_cmp(&self.line(*b)))
            .expect("five lines")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification client: 178 KiB down an hour, 40 ms of CPU, one connection held.
    #[test]
    fn egress_outweighs_cpu_for_an_idle_audience() {
        let h = PerClientHour {
            cpu_s: 0.042,
            bytes_down: 178.0 * 1024.0,
            bytes_up: 2_000.0,
            connections_held: 1.0,
            new_connections: 6.0,
            memory_bytes: 2_300.0,
            ..Default::default()
        };
        let bill = Bill::of(&h, 50_000, &Prices::default());
        // 182,272 B × $0.09/GB × 1e6 = $16.40; 0.042 s / 3600 × $0.04048 × 1e6 = $0.47.
        assert!((bill.egress - 16.404).abs() < 0.01, "{bill:?}");
        assert!((bill.server_cpu - 0.4723).abs() < 0.001, "{bill:?}");
        assert_eq!(bill.dominant(), Line::Egress);
        // Active connections: 1/3000 LCU per client-hour × $0.008 × 1e6 = $2.67, plus the
        // balancer's $0.0225 an hour over 50,000 clients ($0.45).
        assert_eq!(bill.balancer_dimension, "active connections");
        assert!((bill.load_balancer - (8000.0 / 3000.0 + 0.45)).abs() < 0.01);
        assert!(
            (bill.total() - (bill.egress + bill.server_cpu + bill.memory + bill.load_balancer))
                .abs()
                < 1e-9
        );
    }

    #[test]
    fn an_nlb_prices_held_connections_lower() {
        let h = PerClientHour {
            connections_held: 1.0,
            ..Default::default()
        };
        let mut p = Prices::default();
        let alb = Bill::of(&h, 1_000_000, &p).load_balancer;
        p.balancer = crate::prices::Balancer::nlb();
        let nlb = Bill::of(&h, 1_000_000, &p).load_balancer;
        assert!(nlb < alb / 10.0, "alb {alb}, nlb {nlb}");
    }
}
