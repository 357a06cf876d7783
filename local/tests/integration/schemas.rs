//! The web envelope, the batch endpoint, the schema registry, the error log and replays: the
//! second seed's own test cases, through HTTP and moto.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ABSENCE_SECONDS, TestStack, Watch, bill};

const SESSION: &str = "d66ac88b-f801-4984-953f-5c6b266494a0";

fn web(category: Option<&str>, name: &str, data: Value, timestamp: &str) -> Value {
    let mut event =
        json!({"session_id": SESSION, "name": name, "data": data, "timestamp": timestamp});
    if let Some(category) = category {
        event["category"] = json!(category);
    }
    event
}

/// Every error-log entry (newest first), once `n` of them are there.
async fn error_log(t: &TestStack, n: usize) -> Vec<Value> {
    let mut watch = Watch::new(&format!("{n} error-log entries"));
    loop {
        let (status, page) = t
            .admin(Method::GET, "/admin/api/errors?limit=200", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let entries = page["items"].as_array().cloned().unwrap_or_default();
        if entries.len() >= n {
            return entries;
        }
        watch.still_worth_waiting(t, &[entries.len() as u64]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn violations(entry: &Value) -> Vec<(String, String)> {
    entry["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            (
                v["path"].as_str().unwrap_or_default().to_owned(),
                v["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_web_cases_are_stored_or_logged_with_their_violations() {
    let t = TestStack::start().await;
    let at = "2022-04-01 09:15:27.243860";
    let valid = [
        web(
            Some("page interaction"),
            "pageview",
            json!({"host": "www.cwtech.dev", "path": "/"}),
            at,
        ),
        web(
            Some("page interaction"),
            "link click",
            json!({"host": "www.cwtech.dev", "path": "/", "element": "register"}),
            at,
        ),
        web(
            Some("form interaction"),
            "submit",
            json!({"host": "www.cwtech.dev", "path": "/", "form": {"first_name": "Ada", "last_name": "L"}}),
            "2022-04-01T09:15:27Z",
        ),
    ];
    for event in &valid {
        t.accept("/api/v1/event/", 40, event).await;
    }
    // Invalid payloads are accepted (202) and logged, never refused. The first is sent as
    // oddly spaced text to check the log keeps the bytes exactly as received.
    let empty_payload = r#"{"session_id": "d66ac88b-f801-4984-953f-5c6b266494a0",  "category": "page interaction", "name": "pageview", "data": {}, "timestamp": "2022-04-01 09:15:27.243860"}"#;
    let (status, answer) = t.post_text("/api/v1/event/", 41, empty_payload).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let invalid = [
        (
            42,
            web(
                Some("page interaction"),
                "pageview",
                json!({"host": "h", "path": "/", "invalid_field": "x"}),
                at,
            ),
        ),
        (
            43,
            web(Some("page interaction"), "scroll", json!({"host": "h"}), at),
        ),
        (
            44,
            web(None, "pageview", json!({"host": "h", "path": "/"}), at),
        ),
        (
            45,
            web(
                Some("page interaction"),
                "pageview",
                json!({"host": "h", "path": "/"}),
                "2999-01-01 00:00:00",
            ),
        ),
    ];
    for (user, event) in &invalid {
        t.accept("/api/v1/event/", *user, event).await;
    }
    t.wait_for_stream(8).await;
    let entries = error_log(&t, 5).await;
    assert_eq!(entries.len(), 5, "only the invalid events are logged");
    let by_user = |user: u64| {
        entries
            .iter()
            .find(|e| e["user"] == user)
            .unwrap_or_else(|| panic!("an entry for user {user}"))
    };
    let empty = by_user(41);
    assert_eq!(
        violations(empty),
        [
            ("$.data".to_owned(), "required".to_owned()),
            ("$.data".to_owned(), "required".to_owned())
        ]
    );
    assert_eq!(empty["raw"], empty_payload, "the raw event, byte for byte");
    assert_eq!(empty["schema"], json!({"id": "web-pageview", "version": 1}));
    assert_eq!(empty["event_type"], "web page interaction/pageview");
    assert_eq!(empty["status"], "open");
    let unknown = by_user(42);
    assert_eq!(
        violations(unknown),
        [("$.data".to_owned(), "unknown_field".to_owned())]
    );
    assert_eq!(
        unknown["violations"][0]["message"],
        "Unknown field(s): invalid_field"
    );
    let no_schema = by_user(43);
    assert_eq!(
        violations(no_schema),
        [("$".to_owned(), "no_schema".to_owned())]
    );
    assert_eq!(
        no_schema["violations"][0]["message"],
        "no schema for web page interaction/scroll"
    );
    assert_eq!(
        violations(by_user(44)),
        [("$.category".to_owned(), "missing_category".to_owned())]
    );
    assert_eq!(
        violations(by_user(45)),
        [("$.timestamp".to_owned(), "future_timestamp".to_owned())]
    );

    // One entry in full, and the log filtered by event type and by violation.
    let (status, one) = t
        .admin(
            Method::GET,
            &format!("/admin/api/errors/42/{}", unknown["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&one, unknown);
    let (_, filtered) = t
        .admin(
            Method::GET,
            "/admin/api/errors?violation=unknown_field",
            None,
        )
        .await;
    assert_eq!(filtered["items"].as_array().map(Vec::len), Some(1));
    let (_, filtered) = t
        .admin(
            Method::GET,
            "/admin/api/errors?type=web%20page%20interaction%2Fpageview",
            None,
        )
        .await;
    assert_eq!(filtered["items"].as_array().map(Vec::len), Some(3));
    // One user's entries: the user's page reads them so.
    let (status, of_user) = t
        .admin(Method::GET, "/admin/api/errors?user=43", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{of_user}");
    let users: Vec<&serde_json::Value> = of_user["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|entry| &entry["user"])
        .collect();
    assert_eq!(users, [&json!(43)], "{of_user}");
    let (status, refused) = t
        .admin(Method::GET, "/admin/api/errors?user=ann", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["field"], "user", "{refused}");

    // The valid ones are browsable by session, once the stream has listed them all.
    t.wait_until("the session's eight events listed", || async {
        let (_, page) = t
            .admin(
                Method::GET,
                &format!("/admin/api/events?session={SESSION}&limit=50"),
                None,
            )
            .await;
        page["items"].as_array().map(Vec::len) == Some(8)
    })
    .await;
    let (status, page) = t
        .admin(
            Method::GET,
            &format!("/admin/api/events?session={SESSION}&limit=50"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(8));
    let (_, page) = t
        .admin(
            Method::GET,
            &format!("/admin/api/events?session={SESSION}&user=40"),
            None,
        )
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(page["items"][0]["kind"], "web");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_envelope_is_refused_with_its_field() {
    let t = TestStack::start().await;
    let good = web(
        Some("page interaction"),
        "pageview",
        json!({"host": "h", "path": "/"}),
        "2022-04-01 09:15:27",
    );
    for (remove, replace, field) in [
        ("session_id", None, "session_id"),
        ("name", None, "name"),
        ("timestamp", Some(json!("yesterday")), "timestamp"),
        ("session_id", Some(json!("not-a-uuid")), "session_id"),
    ] {
        let mut body = good.clone();
        match replace {
            Some(value) => body[remove] = value,
            None => {
                body.as_object_mut().expect("object").remove(remove);
            }
        }
        let (status, answer) = t.post("/api/v1/event/", 50, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, answer) = t.post_text("/api/v1/event/", 50, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "malformed_json");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_answers_per_item_and_one_bad_item_sinks_nothing() {
    let t = TestStack::start().await;
    let mut with_id = bill(100);
    with_id["id"] = json!("batch-pay-1");
    let batch = json!({"events": [
        with_id,
        web(Some("page interaction"), "pageview", json!({"host": "h", "path": "/"}), "2022-04-01 09:15:27"),
        {"session_id": SESSION, "category": "page interaction", "data": {}, "timestamp": "2022-04-01 09:15:27"},
        web(Some("page interaction"), "pageview", json!({"host": "h", "path": "/", "x": 1}), "2022-04-01 09:15:27"),
        with_id,
        "not an event",
    ]});
    let (status, answer) = t.post("/api/v1/batch/", 60, &batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let statuses: Vec<&str> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "accepted",
            "accepted",
            "rejected",
            "accepted",
            "duplicate",
            "rejected"
        ]
    );
    assert_eq!(
        (
            &answer["accepted"],
            &answer["duplicates"],
            &answer["rejected"]
        ),
        (&json!(3), &json!(1), &json!(2))
    );
    assert_eq!(answer["results"][2]["error"]["field"], "name");
    assert_eq!(answer["results"][5]["error"]["code"], "invalid_body");
    assert_eq!(answer["results"][0]["id"], "batch-pay-1");

    // Sent again: everything with a client id is a duplicate, nothing is stored twice.
    let (_, again) = t
        .post("/api/v1/batch", 60, &json!({"events": [with_id]}))
        .await;
    assert_eq!(again["results"][0]["status"], "duplicate");

    t.wait_for_stream(3).await;
    // The schema-breaking item is accepted and lands in the error log like a single event.
    let entries = error_log(&t, 1).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        violations(&entries[0]),
        [("$.data".to_owned(), "unknown_field".to_owned())]
    );
    assert!(
        entries[0]["raw"]
            .as_str()
            .is_some_and(|raw| raw.contains(r#""x":1"#))
    );

    // Limits: at most 100 events, at most 512 KiB.
    let too_many = json!({"events": vec![bill(1); 101]});
    let (status, answer) = t.post("/api/v1/batch/", 60, &too_many).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "events");
    let huge = format!(
        r#"{{"events": [{{"noun": "bill", "verb": "paid", "properties": {{"pad": "{}"}}}}]}}"#,
        "x".repeat(600 * 1024)
    );
    let (status, _) = t.post_text("/api/v1/batch/", 60, &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_after_a_schema_fix_fires_the_rule_exactly_once() {
    let t = TestStack::start().await;
    let phone = t.register_phone(70).await;
    // A first bill payment without `type`: breaks mobile-bill-paid, so no rule may see it.
    let id = t
        .accept(
            "/api/v1/event/",
            70,
            &json!({"noun": "bill", "verb": "paid", "properties": {"amount": 2500}}),
        )
        .await;
    t.wait_for_stream(1).await;
    let entries = error_log(&t, 1).await;
    assert_eq!(
        violations(&entries[0]),
        [("$.properties".to_owned(), "required".to_owned())]
    );
    // Not even the absence rule: no check was scheduled for the invalid payment.
    let alerts = t
        .operator_alerts(Duration::from_secs(ABSENCE_SECONDS + 2))
        .await;
    assert!(alerts.is_empty(), "{alerts:?}");
    assert!(t.sms_to(&phone).await.is_empty());

    // Replaying before the fix changes nothing.
    let replay = format!("/admin/api/errors/70/{id}/replay");
    let (status, answer) = t.admin(Method::POST, &replay, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "still_invalid");
    assert!(t.sms_to(&phone).await.is_empty());

    // The operator relaxes the schema: `type` becomes optional.
    let (_, current) = t
        .admin(Method::GET, "/admin/api/schemas/mobile-bill-paid", None)
        .await;
    let mut fixed = current["schema"].clone();
    fixed["schema"]["required"] = json!(["amount"]);
    fixed["version"] = current["version"].clone();
    let (status, saved) = t
        .admin(
            Method::PUT,
            "/admin/api/schemas/mobile-bill-paid",
            Some(&fixed),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["version"], 2);

    let (status, answer) = t.admin(Method::POST, &replay, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "replayed", "{answer}");
    assert_eq!(answer["alerts_fired"], 1, "the first-payment SMS");
    // Twice, and through "replay all matching": never processed again.
    let (_, again) = t.admin(Method::POST, &replay, None).await;
    assert_eq!(again["outcome"], "already_replayed");
    let (status, all) = t
        .admin(Method::POST, "/admin/api/errors/replay", Some(&json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["replayed"], 0);

    let sms = t.sms_to(&phone).await;
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert!(sms[0].starts_with("Thanks for your first bill payment"));
    // The replayed payment schedules its absence check at its original receive time (already
    // past), so the missing-feedback alert follows once, at once.
    let alerts = t.expect_operator_alerts(1).await;
    let for_70: Vec<_> = alerts.iter().filter(|(a, _)| a["user"] == 70).collect();
    assert_eq!(for_70.len(), 1, "{alerts:?}");
    let (_, entry) = t
        .admin(Method::GET, &format!("/admin/api/errors/70/{id}"), None)
        .await;
    assert_eq!(entry["status"], "replayed");
    assert_eq!(entry["replayed_by"], crate::harness::ADMIN_SUB);
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_are_managed_like_rules() {
    let t = TestStack::start().await;
    let (status, list) = t.admin(Method::GET, "/admin/api/schemas", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["schemas"]
        .as_array()
        .expect("schemas")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "feedback",
            "mobile-bill-paid",
            "web-click",
            "web-form-submit",
            "web-pageview"
        ]
    );

    let bad = json!({"match": {"kind": "web", "name": "x"}, "schema": {"type": 7}});
    let (status, answer) = t
        .admin(Method::PUT, "/admin/api/schemas/scroll", Some(&bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_schema");
    let paths: Vec<&str> = answer["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert!(paths.contains(&"$.match.category"), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("$.schema")), "{paths:?}");

    let scroll = json!({"match": {"kind": "web", "category": "page interaction", "name": "scroll"},
                        "accept_without_schema": true});
    let (status, created) = t
        .admin(Method::PUT, "/admin/api/schemas/scroll", Some(&scroll))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, conflict) = t
        .admin(Method::PUT, "/admin/api/schemas/scroll", Some(&scroll))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    let (status, history) = t
        .admin(Method::GET, "/admin/api/schemas/scroll/versions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        history["versions"][0]["updated_by"],
        crate::harness::ADMIN_SUB
    );

    // Test an event against the stored registry, and against an unsaved schema.
    let event = web(
        Some("page interaction"),
        "scroll",
        json!({"anything": true}),
        "2022-04-01 09:15:27",
    );
    let (status, answer) = t
        .admin(
            Method::POST,
            "/admin/api/schemas/test",
            Some(&json!({"event": event})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], true);
    assert_eq!(answer["schema"]["id"], "scroll");
    let strict = json!({"id": "scroll", "match": {"kind": "web", "category": "page interaction", "name": "scroll"},
                        "schema": {"type": "object", "additionalProperties": false}});
    let (_, answer) = t
        .admin(
            Method::POST,
            "/admin/api/schemas/test",
            Some(&json!({"event": event, "schema": strict})),
        )
        .await;
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["violations"][0]["kind"], "unknown_field");
    assert_eq!(
        answer["violations"][0]["message"],
        "Unknown field(s): anything"
    );
}
