//! Starts one intermediary of the matrix the way `loadgen --proxy` does, for
//! `scripts/intermediaries/matrix.py`'s probes, and stops it (by PID, temp dir removed) when
//! stdin closes:
//!
//!   cargo run -p loadgen --example intermediary -- SOFTWARE default|recommended UPSTREAM [nginx-read-timeout]
//!
//! Prints `listening <addr> <forward|reverse> <version>` once it accepts connections. A fourth
//! argument runs deploy/nginx.conf with that `proxy_read_timeout` (the emulations of a
//! load balancer's idle timeout).

use std::{io::Read as _, net::SocketAddr, time::Duration};

use loadgen::intermediary::{Flavor, Intermediary, Software};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: intermediary SOFTWARE default|recommended UPSTREAM[,UPSTREAM…] [nginx-read-timeout]"
    );
    let software: Software = args[0].parse().map_err(anyhow::Error::msg)?;
    let flavor =
        <Flavor as clap::ValueEnum>::from_str(&args[1], false).map_err(anyhow::Error::msg)?;
    let upstreams = args[2]
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<SocketAddr>, _>>()?;
    let keep: Box<dyn std::any::Any> = if let Some(t) = args.get(3) {
        let timeout: Duration = humantime::parse_duration(t)?;
        let n = loadgen::proxy::Nginx::start(None, &upstreams, timeout)?;
        let version = software.version(&software.find()?);
        println!("listening {} reverse {version}", n.url().authority());
        Box::new(n)
    } else {
        let i = Intermediary::start(software, flavor, &upstreams)?;
        println!(
            "listening {} {} {}",
            i.addr,
            if software.is_forward() {
                "forward"
            } else {
                "reverse"
            },
            i.version
        );
        Box::new(i)
    };
    // Until whoever started us closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(keep);
    Ok(())
}
