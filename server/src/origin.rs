//! The `Origin` check that stops cross-site WebSocket hijacking.
//!
//! Browsers attach cookies to a WebSocket handshake from any page, and the same-origin policy
//! does not cover WebSockets, so the server itself must refuse foreign pages before the upgrade.
//! Non-browser clients send no `Origin` and are let through; the CORS headers of the HTTP
//! transports follow the same list.

use actix_web::{http::header, HttpRequest};

use crate::error::ApiError;

#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Lower-cased `scheme://host[:port]`, without a trailing slash.
    allowed: Vec<String>,
}

impl Origins {
    pub fn new(allowed: &[String]) -> Self {
        Self {
            allowed: allowed.iter().map(|o| normalise(o)).collect(),
        }
    }

    /// `Ok(None)`: no `Origin` header; `Ok(Some(origin))`: an allowed one; `Err`: foreign.
    pub fn check(&self, req: &HttpRequest) -> Result<Option<String>, ApiError> {
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            return Ok(None);
        };
        let origin = origin.to_str().map_err(|_| {
            ApiError::ForbiddenOrigin(String::from_utf8_lossy(origin.as_bytes()).into())
        })?;
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
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
        with_port(authority, default_port) == with_port(&host.to_ascii_lowercase(), default_port)
    }
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
    fn allow_list_matches_exactly() {
        let o = Origins::new(&["http://app.example:3000/".to_owned()]);
        assert!(o.allows("http://app.example:3000", "api.example"));
        assert!(!o.allows("http://app.example:3001", "api.example"));
    }
}
