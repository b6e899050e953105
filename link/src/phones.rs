//! Phones on the link: each emulated phone is one source address in [`NET`], so every
//! connection it opens (an SSE stream and the POSTs beside it, a WebSocket, each poll) is
//! grouped by address alone, as a phone's radio link carries all of its connections. The
//! forwarder gives each address its own shaper (its own delay, bandwidth, loss and queue) and
//! records its packets; the radio model reads those records per phone.
//!
//! The client namespace holds the whole /16 as local addresses (`ip route add local`), so a
//! client binds any of them without configuring 65,000 addresses.

use std::net::Ipv4Addr;

/// The phones' addresses: 198.19.0.0/16, the upper half of RFC 2544's benchmarking range the
/// link already lives in (198.18.0.0/15).
pub const NET: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 19, 0, 0), 16);

/// The most phones one link addresses: the /16 without its first and last address.
pub const MAX_PHONES: u32 = 65_534;

/// Phone `n`'s address (phone 0 is 198.19.0.1), or `None` past [`MAX_PHONES`].
pub fn addr(n: u32) -> Option<Ipv4Addr> {
    (n < MAX_PHONES).then(|| Ipv4Addr::from(u32::from(NET.0) + 1 + n))
}

/// The phone an address belongs to, if it is a phone's.
pub fn of(ip: Ipv4Addr) -> Option<u32> {
    let base = u32::from(NET.0);
    let v = u32::from(ip);
    let n = v.checked_sub(base + 1)?;
    (n < MAX_PHONES).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_addresses_map_both_ways() {
        assert_eq!(addr(0), Some(Ipv4Addr::new(198, 19, 0, 1)));
        assert_eq!(addr(999), Some(Ipv4Addr::new(198, 19, 3, 232)));
        assert_eq!(addr(MAX_PHONES), None);
        for n in [0, 1, 255, 256, 999, MAX_PHONES - 1] {
            assert_eq!(of(addr(n).unwrap()), Some(n));
        }
        assert_eq!(of(Ipv4Addr::new(198, 18, 0, 2)), None);
        assert_eq!(of(Ipv4Addr::new(198, 19, 0, 0)), None);
        assert_eq!(of(Ipv4Addr::new(198, 19, 255, 255)), None);
    }
}
