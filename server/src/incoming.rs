//! What the checks (origin, token, query, limits) need from a request, whoever parsed it:
//! actix-web for most connections, or the [`fast_path`](crate::fast_path) for the streaming
//! connections it serves itself. One set of checks for both, so the two cannot drift apart.

use std::net::IpAddr;

use actix_web::{
    http::{header::HeaderMap, Version},
    HttpRequest,
};

pub trait Incoming {
    fn headers(&self) -> &HeaderMap;
    /// The query string, without the `?`.
    fn query_string(&self) -> &str;
    fn peer_ip(&self) -> Option<IpAddr>;
    fn version(&self) -> Version;
    /// The URI's authority: HTTP/2's `:authority`, which takes the place of `Host` there.
    fn authority(&self) -> Option<&str>;
}

impl Incoming for HttpRequest {
    fn headers(&self) -> &HeaderMap {
        HttpRequest::headers(self)
    }

    fn query_string(&self) -> &str {
        HttpRequest::query_string(self)
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer_addr().map(|a| a.ip())
    }

    fn version(&self) -> Version {
        HttpRequest::version(self)
    }

    fn authority(&self) -> Option<&str> {
        self.uri().authority().map(|a| a.as_str())
    }
}
