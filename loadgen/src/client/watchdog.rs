//! What makes each of loadgen's clients notice a connection that died in silence (a carrier
//! NAT dropped its mapping, and nothing tells either end): named in the phones report beside
//! the time it took. loadgen's SSE and WebSocket clients have no silence watchdog on purpose:
//! they behave like a browser's `EventSource` and `WebSocket`, which have none, and the live
//! page adds none (its `stall.js` is about connection limits, not silence). A poll notices
//! through its response timeout.

use feedlab_wire::Transport;

/// The watchdog of `transport`'s client, as the report names it.
pub fn name(transport: Transport) -> &'static str {
    match transport {
        Transport::ShortPoll => "loadgen's response timeout (15 s) on each poll",
        Transport::LongPoll => {
            "loadgen's response timeout (15 s beyond the hold) on each long poll"
        }
        Transport::Sse => "none: a browser's EventSource has none, nor does the page",
        Transport::Ws => "none: a browser's WebSocket has none, nor does the page",
        Transport::Wt | Transport::WtStreams | Transport::WtDatagrams => {
            "not measured: the NAT times out TCP flows only"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_polls_name_the_response_timeout_they_use() {
        let secs = format!("{} s", super::super::RESPONSE_TIMEOUT.as_secs());
        for t in [Transport::ShortPoll, Transport::LongPoll] {
            assert!(name(t).contains(&secs), "{}", name(t));
        }
    }
}
