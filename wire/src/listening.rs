//! The first line a feedlab program prints (`feedlab listening on http://127.0.0.1:PORT/`): how
//! loadgen, the tests and the scripts learn the port a server picked. Written and read here so
//! the printer and its readers cannot drift.

use std::net::SocketAddr;

/// What the line starts with.
pub const PREFIX: &str = "feedlab listening on ";

/// The line for a program serving `scheme` (`http` or `https`) on `addr`, without its newline.
#[must_use]
pub fn line(scheme: &str, addr: SocketAddr) -> String {
    format!("{PREFIX}{scheme}://{addr}/")
}

/// The line → (`"http"` or `"https"`, the address); `None` for any other line.
#[must_use]
pub fn parse(line: &str) -> Option<(&str, SocketAddr)> {
    let rest = line.trim().strip_prefix(PREFIX)?;
    let (scheme, rest) = rest.split_once("://")?;
    let addr = rest.trim_end_matches('/').parse().ok()?;
    matches!(scheme, "http" | "https").then_some((scheme, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_line_reads_back() {
        let addr: SocketAddr = "127.0.0.1:41234".parse().unwrap();
        assert_eq!(
            parse(&format!("{}\n", line("http", addr))),
            Some(("http", addr))
        );
        let v6: SocketAddr = "[::1]:8443".parse().unwrap();
        assert_eq!(parse(&line("https", v6)), Some(("https", v6)));
    }

    #[test]
    fn other_lines_are_not_read() {
        assert!(parse("something else").is_none());
        assert!(parse("listening on http://127.0.0.1:1/").is_none());
        assert!(parse("feedlab listening on ftp://127.0.0.1:1/").is_none());
        assert!(parse("feedlab listening on http://localhost/").is_none());
    }
}
