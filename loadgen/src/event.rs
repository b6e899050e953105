//! What the server sends, parsed for only the fields loadgen needs.
//!
//! Every client parses every event it receives, so this is loadgen's hot path: `data` is read by
//! a visitor that keeps `sent_us` and `pub` and skips the rest (the padding is never copied), and
//! events that another publisher made (no `pub`) still count for integrity.

use std::fmt;

use serde::{
    de::{self, IgnoredAny, MapAccess, Visitor},
    Deserialize, Deserializer,
};

/// One feed event: `{"seq":N,"ts":T,"data":…}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct EventMsg {
    pub seq: u64,
    /// The server's publish time (µs since the epoch).
    #[serde(default)]
    pub ts: u64,
    #[serde(default)]
    pub data: Marks,
}

/// The marks loadgen stamps into an event's `data`: the publisher's
/// `{"sent_us":…,"pub":…,"pad":"xxx"}`, or a
/// talking-back client: `{"sent_us":…,"from":…,"msg":…,"pad":"xxx"}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// Loadgen's clock when the publish request was sent.
    pub sent_us: Option<u64>,
    /// The publisher's own counter; present only on events this loadgen published.
    pub pub_n: Option<u64>,
    /// A talking-back client's number (`--send-rate`), on the messages clients publish.
    pub from: Option<u64>,
    /// That client's own message counter.
    pub msg: Option<u64>,
}

impl<'de> Deserialize<'de> for Marks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Marks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Marks, A::Error> {
                let mut p = Marks::default();
                while let Some(key) = map.next_key::<KeyName>()? {
                    match key {
                        KeyName::SentUs => p.sent_us = map.next_value::<MaybeU64>()?.0,
                        KeyName::Pub => p.pub_n = map.next_value::<MaybeU64>()?.0,
                        KeyName::From => p.from = map.next_value::<MaybeU64>()?.0,
                        KeyName::Msg => p.msg = map.next_value::<MaybeU64>()?.0,
                        KeyName::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Marks, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Marks::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Marks, E> {
                Ok(Marks::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Marks, E> {
                Ok(Marks::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Marks, E> {
                Ok(Marks::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Marks, E> {
                Ok(Marks::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Marks, E> {
                Ok(Marks::default())
            }
            fn visit_unit<E>(self) -> Result<Marks, E> {
                Ok(Marks::default())
            }
            fn visit_none<E>(self) -> Result<Marks, E> {
                Ok(Marks::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A number when it is a non-negative integer, else nothing (any other value is skipped).
struct MaybeU64(Option<u64>);

impl<'de> Deserialize<'de> for MaybeU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeU64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E>(self, v: u64) -> Result<MaybeU64, E> {
                Ok(MaybeU64(Some(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<MaybeU64, E> {
                Ok(MaybeU64(u64::try_from(v).ok()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeU64, E> {
                Ok(MaybeU64(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeU64, E> {
                Ok(MaybeU64(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<MaybeU64, E> {
                Ok(MaybeU64(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeU64, E> {
                Ok(MaybeU64(None))
            }
            fn visit_none<E>(self) -> Result<MaybeU64, E> {
                Ok(MaybeU64(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeU64, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeU64(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeU64, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeU64(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The keys of `data` that matter, read without allocating.
enum KeyName {
    SentUs,
    Pub,
    From,
    Msg,
    Other,
}

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyName, E> {
                Ok(match v {
                    "sent_us" => KeyName::SentUs,
                    "pub" => KeyName::Pub,
                    "from" => KeyName::From,
                    "msg" => KeyName::Msg,
                    _ => KeyName::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A short-poll or long-poll body: `{"events":[…],"next":M,"missed":K}`.
#[derive(Debug, Default, Deserialize)]
pub struct PollBody {
    pub events: Vec<EventMsg>,
    pub next: u64,
    #[serde(default)]
    pub missed: u64,
}

impl PollBody {
    /// The seq up to which events were announced missed, when `missed > 0`: just before the
    /// first event, or `next` when the batch is empty.
    pub fn missed_up_to(&self) -> Option<u64> {
        (self.missed > 0).then(|| self.events.first().map_or(self.next, |e| e.seq - 1))
    }
}

/// A WebSocket text frame: an event, or `{"op":"missed","missed":K,"next":M}`.
#[derive(Debug, Default, Deserialize)]
pub struct WsMsg {
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub ts: u64,
    #[serde(default)]
    pub data: Marks,
    #[serde(default)]
    pub missed: u64,
    #[serde(default)]
    pub next: u64,
}

/// The `data` of an SSE `event: missed` record.
#[derive(Debug, Default, Deserialize)]
pub struct MissedNotice {
    pub missed: u64,
    pub next: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_events_and_skips_the_padding() {
        let e: EventMsg = serde_json::from_str(
            r#"{"seq":7,"ts":123,"data":{"pad":"xxxx","sent_us":99,"pub":3,"nested":{"a":[1,2]}}}"#,
        )
        .unwrap();
        assert_eq!(e.seq, 7);
        assert_eq!(e.ts, 123);
        assert_eq!(e.data.sent_us, Some(99));
        assert_eq!(e.data.pub_n, Some(3));
    }

    #[test]
    fn foreign_events_count_without_a_probe() {
        let odd: EventMsg =
            serde_json::from_str(r#"{"seq":1,"data":{"pub":"x","sent_us":[1],"z":2}}"#).unwrap();
        assert_eq!(odd.data, Marks::default());
        for data in [
            r#""text""#,
            "1",
            "null",
            "[1,{}]",
            r#"{"tick":1}"#,
            "true",
            "-2.5",
        ] {
            let e: EventMsg =
                serde_json::from_str(&format!(r#"{{"seq":1,"ts":2,"data":{data}}}"#)).unwrap();
            assert_eq!(e.data, Marks::default(), "{data}");
        }
    }

    #[test]
    fn poll_bodies_and_notices() {
        let b: PollBody =
            serde_json::from_str(r#"{"events":[{"seq":5,"ts":1,"data":{}}],"next":5,"missed":3}"#)
                .unwrap();
        assert_eq!(b.missed_up_to(), Some(4));
        let b: PollBody = serde_json::from_str(r#"{"events":[],"next":9,"missed":2}"#).unwrap();
        assert_eq!(b.missed_up_to(), Some(9));
        let m: WsMsg = serde_json::from_str(r#"{"op":"missed","missed":2,"next":8}"#).unwrap();
        assert_eq!(
            (m.op.as_deref(), m.seq, m.missed, m.next),
            (Some("missed"), None, 2, 8)
        );
        let e: WsMsg =
            serde_json::from_str(r#"{"seq":3,"ts":4,"data":{"pub":0,"sent_us":1}}"#).unwrap();
        assert_eq!((e.op, e.seq, e.data.pub_n), (None, Some(3), Some(0)));
    }
}
