//! The `Origin` check that stops cross-site WebSocket hijacking.
//!
//! Browsers attach cookies to a WebSocket handshake from any page, and the same-origin policy
//! does not cover WebSockets, so the server itself must refuse foreign pages before the upgrade.
//! Non-browser clients send no `Origin` and are let through; the CORS headers of the HTTP
//! transports follow the same list.

use actix_web::http::header;

use crate::{error::ApiError, incoming::Incoming};

#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Lower-cased `scheme://host[:port]`, without a trailing slash.
    allowed: Vec<String>,
    /// The server listens on loopback only: then "same origin" also requires a loopback `Host`.
    /// Otherwise a page on a name that an attacker points at 127.0.0.1 (DNS rebinding) would
    /// pass as same-origin, since the attacker chooses both its `Origin` and its `Host`.
    loopback_only: bool,
}

impl Origins {
    pub fn new(allowed: &[String]) -> Self {
        Self {
            allowed: allowed.iter().map(|o| normalise(o)).collect(),
            loopback_only: false,
        }
    }

    /// The allow-list for a server bound to `bind`.
    pub fn for_bind(allowed: &[String], bind: std::net::SocketAddr) -> Self {
        Self {
            loopback_only: bind.ip().is_loopback(),
            ..Self::new(allowed)
        }
    }

    /// `Ok(None)`: no `Origin` header; `Ok(Some(origin))`: an allowed one; `Err`: foreign.
    pub fn check(&self, req: &impl Incoming) -> Result<Option<String>, ApiError> {
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            return Ok(None);
        };
        let origin = origin.to_str().map_err(|_| {
            ApiError::ForbiddenOrigin(String::from_utf8_lossy(origin.as_bytes()).into())
        })?;
        // HTTP/2 carries the host as `:authority`, which actix puts in the URI, not in `Host`.
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.authority())
            .unwrap_or_default();
        if self.allows(origin, host) {
            Ok(Some(origin.to_owned()))
        } else {
            Err(ApiError::ForbiddenOrigin(origin.to_owned()))
        }
    }

    /// Whether a page from `origin` may talk to a server reached as `host` (the `Host` header).
    pub fn allows(&self, origin: &str, host: &str) -> bool {
        let origin = normalise(origin);
        if self.allowed.contains(&origin) {
            return true;
        }
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false; // "null" and other opaque origins
        };
        let default_port = match scheme {
            "http" | "ws" => "80",
            "https" | "wss" => "443",
            _ => return false,
        };
        let host = host.to_ascii_lowercase();
        if self.loopback_only && !is_loopback_host(&host) {
            return false;
        }
        with_port(authority, default_port) == with_port(&host, default_port)
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `host` → `host:port` with the scheme's default port; IPv6 literals keep their brackets.
fn with_port(authority: &str, default_port: &str) -> String {
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_is_allowed_with_or_without_default_port() {
        let o = Origins::new(&[]);
        assert!(o.allows("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(o.allows("http://Example.com", "example.com:80"));
        assert!(o.allows("https://example.com", "example.com"));
        assert!(o.allows("http://[::1]:9000", "[::1]:9000"));
    }

    #[test]
    fn foreign_and_opaque_origins_are_refused() {
        let o = Origins::new(&[]);
        assert!(!o.allows("http://evil.example:8080", "127.0.0.1:8080"));
        assert!(!o.allows("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!o.allows("null", "127.0.0.1:8080"));
    }

    #[test]
    fn on_a_loopback_bind_same_origin_needs_a_loopback_host() {
        let o = Origins::for_bind(&[], "127.0.0.1:8080".parse().unwrap());
        assert!(o.allows("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(o.allows("http://localhost:8080", "localhost:8080"));
        assert!(o.allows("http://[::1]:8080", "[::1]:8080"));
        // DNS rebinding: attacker.example resolves to 127.0.0.1, Origin and Host both say so.
        assert!(!o.allows(
            "http://rebind.attacker.example:8080",
            "rebind.attacker.example:8080"
        ));
        let public = Origins::for_bind(&[], "0.0.0.0:8080".parse().unwrap());
        assert!(public.allows("http://feed.example:8080", "feed.example:8080"));
    }

    #[test]
    fn allow_list_matches_exactly() {
        let o = Origins::new(&["http://app.example:3000/".to_owned()]);
        assert!(o.allows("http://app.example:3000", "api.example"));
        assert!(!o.allows("http://app.example:3001", "api.example"));
    }
}
