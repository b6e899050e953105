//! A request that arrived over QUIC (a WebTransport CONNECT or an HTTP/3 request) as the shared
//! checks see it ([`Incoming`]): the same origin, token, query and limit checks as a request
//! actix-web or the fast path parsed.
//!
//! The QUIC crates speak `http` 1; actix-web's checks take `http` 0.2's header map (through
//! actix-http), so the headers are carried over once per request: same names, same bytes.

use std::net::IpAddr;

use actix_web::http::{
    header::{HeaderMap, HeaderName, HeaderValue},
    Version,
};

use crate::incoming::Incoming;

pub struct QuicRequest {
    headers: HeaderMap,
    query: String,
    authority: String,
    peer: IpAddr,
}

impl QuicRequest {
    /// From the request's `:authority`, query (without `?`), headers and the peer's address.
    pub fn new(
        authority: String,
        query: &str,
        headers: &web_transport_quinn::http::HeaderMap,
        peer: IpAddr,
    ) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_str().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                map.append(name, value);
            }
        }
        Self {
            headers: map,
            query: query.to_owned(),
            authority,
            peer,
        }
    }
}

impl Incoming for QuicRequest {
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn query_string(&self) -> &str {
        &self.query
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        Some(self.peer)
    }

    fn version(&self) -> Version {
        Version::HTTP_3
    }

    fn authority(&self) -> Option<&str> {
        Some(&self.authority)
    }
}
