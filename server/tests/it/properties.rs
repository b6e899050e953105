//! Hostile input, generated: every parser the server owns yields a value or a clear error for
//! any input, never a panic, and the live server answers anything with a 2xx or 4xx.

use actix_ws::CloseCode;
use proptest::prelude::*;
use server::{
    origin::Origins,
    publish::compact_json,
    state::AppState,
    transport::{
        parse_u64,
        ws::{client_op, ClientOp},
        FeedQuery,
    },
    Config,
};

fn state() -> std::sync::Arc<AppState> {
    AppState::new(
        Config::from_args(["--rate", "0"]).unwrap(),
        tokio_util::sync::CancellationToken::new(),
    )
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_query_string_parses_or_names_its_fault(q in ".{0,80}") {
        match FeedQuery::parse(&q) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn every_u64_cursor_round_trips(n in any::<u64>(), t in any::<u64>()) {
        let q = FeedQuery::parse(&format!("since={n}&timeout_ms={t}&other=x")).unwrap();
        prop_assert_eq!(q.since, Some(n));
        prop_assert_eq!(q.timeout_ms, Some(t));
    }

    #[test]
    fn last_event_id_accepts_digits_only(s in ".{0,30}") {
        let ok = parse_u64("Last-Event-ID", &s).is_ok();
        let digits = !s.trim().is_empty() && s.trim().bytes().all(|b| b.is_ascii_digit());
        prop_assert!(!ok || digits, "{:?} accepted", s);
    }

    #[test]
    fn publish_bodies_either_compact_to_the_same_value_or_are_refused(body in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(compact) = compact_json(&body) {
            prop_assert!(!compact.contains('\n'));
            let before: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let after: serde_json::Value = serde_json::from_str(&compact).unwrap();
            prop_assert_eq!(before, after);
        }
    }

    #[test]
    fn any_json_value_publishes_intact(v in json_value()) {
        let compact = compact_json(v.to_string().as_bytes()).unwrap();
        prop_assert!(!compact.contains('\n'), "one SSE data line");
        let back: serde_json::Value = serde_json::from_str(&compact).unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn any_ws_text_is_understood_or_gets_a_valid_close(text in ".{0,60}") {
        if let Err(reason) = client_op(&text) {
            prop_assert!(matches!(reason.code, CloseCode::Invalid | CloseCode::Policy));
            prop_assert!(reason.description.unwrap().len() <= 123, "fits a close frame");
        }
    }

    #[test]
    fn ws_publish_of_any_data_carries_it_intact(v in json_value()) {
        let msg = serde_json::json!({"op": "publish", "data": v}).to_string();
        let Ok(ClientOp::Publish { data, .. }) = client_op(&msg) else {
            return Err(TestCaseError::fail("a publish op"));
        };
        prop_assert!(!data.contains('\n'));
        prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&data).unwrap(), v);
    }

    #[test]
    fn local_publishes_are_numbered_in_order(values in prop::collection::vec(json_value(), 1..5)) {
        let state = state();
        for (i, v) in values.iter().enumerate() {
            prop_assert_eq!(state.feed.publish(&v.to_string()).unwrap().seq, i as u64 + 1);
        }
    }

    #[test]
    fn origin_checks_never_panic(origin in ".{0,40}", host in ".{0,30}") {
        let _ = Origins::new(std::slice::from_ref(&origin)).allows(&origin, &host);
        let _ = Origins::new(&[]).allows(&origin, &host);
    }
}

/// Arbitrary query strings and bodies against a live server: never a 5xx.
#[tokio::test]
async fn live_server_answers_hostile_requests_with_4xx_not_5xx() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};

    use crate::common::*;

    let srv = TestServer::start(&["--long-poll-max", "1s", "--long-poll-timeout", "1s"]);
    let mut runner = TestRunner::deterministic();
    let query = "[a-z_=&%0-9.+-]{0,40}";
    for _ in 0..64 {
        let q = query.new_tree(&mut runner).unwrap().current();
        let q = percent_encoding::utf8_percent_encode(&q, percent_encoding::CONTROLS).to_string();
        for path in ["/poll", "/long-poll", "/stats/client/x"] {
            let url = srv.url(&format!("{path}?{q}&timeout_ms=0"));
            let status = get(&url).await.status;
            assert!(status.as_u16() < 500, "{url} -> {status}");
        }
        let body = prop::collection::vec(any::<u8>(), 0..40)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let status = post(&srv.url("/publish"), body).await.status;
        assert!(status.as_u16() < 500, "{status}");
    }
    assert_eq!(get(&srv.url("/healthz")).await.status, 200);
}
