//! What the lines of a bill cost, each a setting with its source and the date it was read.
//!
//! Defaults are AWS us-east-1 list prices as found in December 2026. They are here so that a
//! bill can be ranked as users pay it: egress and load-balancer capacity are often larger lines
//! than server CPU for an audience of mostly idle connections, and ranking on CPU alone would
//! put the smallest line first.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Prices {
    /// $ per vCPU-hour of server CPU (Fargate, Linux/x86).
    pub vcpu_hour: f64,
    /// $ per GiB-hour of memory held (Fargate, Linux/x86).
    pub gib_hour: f64,
    /// $ per GB of data out to the internet (the first 10 TB a month).
    pub egress_gb: f64,
    /// $ per million requests, for a front that bills requests (0: the load balancer's
    /// capacity units already count them).
    pub million_requests: f64,
    pub balancer: Balancer,
}

/// The load balancer's capacity unit: the largest of its dimensions, per hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Balancer {
    /// `alb` or `nlb`.
    pub name: String,
    /// $ per capacity-unit-hour.
    pub unit_hour: f64,
    /// $ per hour for the balancer itself, whatever it carries (amortised over the clients).
    pub hourly: f64,
    /// New connections per second one unit carries.
    pub new_connections_per_s: f64,
    /// Active connections one unit carries.
    pub active_connections: f64,
    /// GB processed (both directions) per hour one unit carries.
    pub gb_per_hour: f64,
    /// Rule evaluations per second one unit carries (ALB: requests × rules past the first 10
    /// free; 0 when not billed).
    pub rule_evaluations_per_s: f64,
    /// Listener rules each request is evaluated against.
    pub rules: f64,
}

/// Where each default comes from, for the README and `decide`'s output.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "vcpu_hour, gib_hour",
        "AWS Fargate on-demand, Linux/x86, us-east-1: $0.04048 per vCPU-hour, $0.004445 per GB-hour (aws.amazon.com/fargate/pricing, as quoted in March 2026 by vantage.sh and cloudburn.io; read December 2026)",
    ),
    (
        "egress_gb",
        "Amazon EC2 data transfer out to the internet, us-east-1, first 10 TB/month: $0.09 per GB (aws.amazon.com/ec2/pricing/on-demand; read December 2026)",
    ),
    (
        "alb",
        "Application Load Balancer, us-east-1: $0.0225 per hour and $0.008 per LCU-hour; one LCU = 25 new connections/s, 3,000 active connections, 1 GB processed per hour (EC2/IP targets), 1,000 rule evaluations/s with the first 10 rules free (aws.amazon.com/elasticloadbalancing/pricing; read December 2026)",
    ),
    (
        "nlb",
        "Network Load Balancer, us-east-1, TCP: $0.0225 per hour and $0.006 per NLCU-hour; one NLCU = 800 new flows/s, 100,000 active flows, 1 GB processed per hour (aws.amazon.com/elasticloadbalancing/pricing; read December 2026)",
    ),
];

impl Balancer {
    pub fn alb() -> Self {
        Self {
            name: "alb".into(),
            unit_hour: 0.008,
            hourly: 0.0225,
            new_connections_per_s: 25.0,
            active_connections: 3000.0,
            gb_per_hour: 1.0,
            rule_evaluations_per_s: 1000.0,
            rules: 1.0,
        }
    }

    pub fn nlb() -> Self {
        Self {
            name: "nlb".into(),
            unit_hour: 0.006,
            hourly: 0.0225,
            new_connections_per_s: 800.0,
            active_connections: 100_000.0,
            gb_per_hour: 1.0,
            rule_evaluations_per_s: 0.0,
            rules: 0.0,
        }
    }

    pub fn named(name: &str) -> Result<Self, String> {
        match name {
            "alb" => Ok(Self::alb()),
            "nlb" => Ok(Self::nlb()),
            _ => Err(format!("unknown load balancer {name:?}: one of alb, nlb")),
        }
    }
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            vcpu_hour: 0.04048,
            gib_hour: 0.004445,
            egress_gb: 0.09,
            million_requests: 0.0,
            balancer: Balancer::alb(),
        }
    }
}

impl Prices {
    /// Refuses prices no bill could use.
    pub fn check(&self) -> Result<(), String> {
        let b = &self.balancer;
        for (name, v) in [
            ("--price-vcpu-hour", self.vcpu_hour),
            ("--price-gib-hour", self.gib_hour),
            ("--price-egress-gb", self.egress_gb),
            ("--price-million-requests", self.million_requests),
            ("balancer unit price", b.unit_hour),
            ("balancer hourly price", b.hourly),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a finite price ≥ 0 (got {v})"));
            }
        }
        if !(b.new_connections_per_s > 0.0 && b.active_connections > 0.0 && b.gb_per_hour > 0.0) {
            return Err("a balancer's capacity unit must carry something in each dimension".into());
        }
        Ok(())
    }
}
