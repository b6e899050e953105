//! Hostile input, generated: every parser the server owns yields a value or a clear error for
//! any input, never a panic, and the live server answers anything with a 2xx or 4xx.

use actix_http::ws::CloseCode;
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

/// A `/control` body: rates and payload sizes of every kind (tiny, huge, negative, fractional,
/// not numbers at all), unknown fields, not JSON.
fn control_body() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap_or_else(|_| "null".into())),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|u| u.to_string()),
        (0u32..400, prop::bool::ANY).prop_map(|(e, neg)| format!(
            "{}5e{}{e}",
            if neg { "-" } else { "" },
            if e % 2 == 0 { "-" } else { "" }
        )),
        prop::sample::select(vec![
            "5e-20", "1e308", "-0.0", "0", "0.001", "0.01", "10000", "10000.5", "\"2\"", "null",
            "[]", "1e400"
        ])
        .prop_map(str::to_owned),
    ];
    prop_oneof![
        (number.clone(), number.clone())
            .prop_map(|(r, p)| format!(r#"{{"rate":{r},"payload_bytes":{p}}}"#)),
        number.clone().prop_map(|r| format!(r#"{{"rate":{r}}}"#)),
        number.prop_map(|p| format!(r#"{{"payload_bytes":{p}}}"#)),
        "[ -~]{0,40}",
        Just(r#"{"rate":1,"extra":1}"#.to_owned()),
    ]
}

/// Whatever `/control` is sent, the answer is 200 or a 400 naming the allowed range, and the
/// ticker still ticks afterwards (`{"rate":5e-20}` once made it panic and stop for good).
#[test]
fn control_accepts_only_runnable_settings_and_the_ticker_survives_any_body() {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    use crate::common::*;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = TestServer::start(&[]);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 300,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[4; 32]),
    );
    runner
        .run(&control_body(), |body| {
            rt.block_on(async {
                let res = post(&srv.url("/control"), body.clone()).await;
                let text = String::from_utf8_lossy(&res.body).into_owned();
                prop_assert!(
                    res.status == 200 || res.status == 400,
                    "{body} -> {} {text}",
                    res.status
                );
                if res.status == 400
                    && (text.contains("rate must") || text.contains("payload_bytes must"))
                {
                    prop_assert!(text.contains("between"), "{body} -> {text}");
                }
                if res.status == 200 {
                    let rate = res.json()["rate"].as_f64().unwrap();
                    prop_assert!(
                        rate == 0.0 || (0.01..=10_000.0).contains(&rate),
                        "{body} -> {text}"
                    );
                }
                Ok(())
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        for rate in ["5e-20", "-1", "1e308"] {
            let res = post(&srv.url("/control"), format!(r#"{{"rate":{rate}}}"#)).await;
            assert_eq!(res.status, 400, "{rate}");
        }
        let res = post(&srv.url("/control"), r#"{"rate":100,"payload_bytes":0}"#).await;
        assert_eq!(res.status, 200);
        let head = get(&srv.url("/stats")).await.json()["feed"]["head"]
            .as_u64()
            .unwrap();
        let stats = crate::common::stats_when(&srv, "the ticker ticks", |s| {
            s["feed"]["head"].as_u64().unwrap() > head + 10
        })
        .await;
        assert_eq!(
            stats["feed"]["ticker_restarts"], 0,
            "the ticker never panicked"
        );
    });
}
