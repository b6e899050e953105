//! What a proxy did to a phase's connections, said in the report's warnings (an existing field,
//! so the report's model does not change): how many working connections ended, and after how
//! long. A proxy's idle timeout shows as lifetimes bunched at one value (nginx's 60 s, HAProxy's
//! 50 s), which is the figure an operator can act on.

/// The warning for a phase's `lifetimes` (µs each) through `proxy` (as the report names it), or
/// `None` without any.
pub fn cuts(phase: usize, transport: &str, proxy: &str, lifetimes: &[u64]) -> Option<String> {
    if lifetimes.is_empty() {
        return None;
    }
    let mut s: Vec<u64> = lifetimes.to_vec();
    s.sort_unstable();
    let secs = |us: u64| us as f64 / 1e6;
    let median = s[s.len() / 2];
    let (min, max) = (s[0], s[s.len() - 1]);
    // Within 10% (or 0.5 s) of the median: the mark of one timeout cutting them all.
    let band = (median / 10).max(500_000);
    let bunched = s.iter().filter(|&&v| v.abs_diff(median) <= band).count();
    let what = if bunched * 10 >= s.len() * 8 && s.len() >= 2 {
        format!(
            "; {bunched} of them after {:.1} s, the mark of an idle timeout: keep the server's heartbeat (SSE, WebSocket) and long-poll hold below it",
            secs(median)
        )
    } else {
        String::new()
    };
    Some(format!(
        "Phase {phase} ({transport}) through {proxy}: {} working connection(s) or held request(s) ended, after {:.1} s median (min {:.1}, max {:.1}){what}.",
        s.len(),
        secs(median),
        secs(min),
        secs(max),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_bunched_at_one_value_are_called_a_timeout() {
        let args = "haproxy (recommended configuration)";
        let w = cuts(0, "sse", args, &[50_000_000, 50_010_000, 49_990_000]).unwrap();
        assert!(w.contains("3 working connection(s)"), "{w}");
        assert!(
            w.contains("after 50.0 s, the mark of an idle timeout"),
            "{w}"
        );
        let spread = cuts(0, "sse", args, &[1_000_000, 20_000_000, 50_000_000]).unwrap();
        assert!(!spread.contains("idle timeout"), "{spread}");
        assert!(cuts(0, "ws", args, &[]).is_none());
    }
}
