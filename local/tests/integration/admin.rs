//! The admin API: auth on every route, rule CRUD with versions and history, validation, the
//! 409 on a stale write, the dry run, and rules that take effect without a restart.

use std::time::Duration;

use cuba_core::model::clock::{Clock, SystemClock};
use cuba_web::auth::{AdminVerifier, TokenSecret};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TEST_ADMIN_SECRET, TEST_SECRET, TestStack, bill};

fn big_payment_rule() -> Value {
    json!({
        "description": "any single payment of 10000 or more",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid", "properties.amount": {"gte": 10000}},
        "condition": {"type": "first"},
        "action": {"type": "notify_operator", "severity": "critical"},
        "message": "big payment of {{properties.amount}} by user {{user}}"
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_admin_route_refuses_missing_user_forged_and_roleless_tokens() {
    let t = TestStack::start().await;
    let now = SystemClock.now();
    let user_token = t.token(1);
    let forged =
        AdminVerifier::new(&TokenSecret::new(TEST_SECRET.as_bytes().to_vec()).expect("secret"))
            .issue("mallory", Some("admin"), now, 600);
    let roleless = AdminVerifier::new(
        &TokenSecret::new(TEST_ADMIN_SECRET.as_bytes().to_vec()).expect("secret"),
    )
    .issue("mallory", None, now, 600);
    let expired = AdminVerifier::new(
        &TokenSecret::new(TEST_ADMIN_SECRET.as_bytes().to_vec()).expect("secret"),
    )
    .issue("ops", Some("admin"), now.minus_seconds(7200), 60);
    let routes = [
        (Method::GET, "/admin/api/rules"),
        (Method::GET, "/admin/api/rules/first-bill-payment"),
        (Method::PUT, "/admin/api/rules/new-rule"),
        (
            Method::DELETE,
            "/admin/api/rules/first-bill-payment?version=1",
        ),
        (Method::PUT, "/admin/api/rules/first-bill-payment/enabled"),
        (Method::GET, "/admin/api/rules/first-bill-payment/versions"),
        (Method::POST, "/admin/api/rules/test"),
        (Method::POST, "/admin/api/rules/first-bill-payment/backtest"),
        (Method::POST, "/admin/api/rules/backtest"),
        (Method::GET, "/admin/api/rule-language"),
        (Method::GET, "/admin/api/event-types"),
        (Method::GET, "/admin/api/events"),
        (Method::GET, "/admin/api/feedback"),
        (Method::GET, "/admin/api/alerts"),
        (Method::GET, "/admin/api/users/1"),
        (Method::GET, "/admin/api/activity"),
        (Method::GET, "/admin/api/schemas"),
        (Method::GET, "/admin/api/schemas/feedback"),
        (Method::PUT, "/admin/api/schemas/new-schema"),
        (Method::DELETE, "/admin/api/schemas/feedback?version=1"),
        (Method::PUT, "/admin/api/schemas/feedback/enabled"),
        (Method::GET, "/admin/api/schemas/feedback/versions"),
        (Method::POST, "/admin/api/schemas/test"),
        (Method::GET, "/admin/api/errors"),
        (Method::GET, "/admin/api/errors/1/e1"),
        (Method::POST, "/admin/api/errors/1/e1/replay"),
        (Method::POST, "/admin/api/errors/replay"),
    ];
    let cases: [(Option<&str>, StatusCode, &str); 5] = [
        (None, StatusCode::UNAUTHORIZED, "missing_token"),
        (Some(&user_token), StatusCode::UNAUTHORIZED, "invalid_token"),
        (Some(&forged), StatusCode::UNAUTHORIZED, "invalid_token"),
        (Some(&expired), StatusCode::UNAUTHORIZED, "expired_token"),
        (Some(&roleless), StatusCode::FORBIDDEN, "not_admin"),
    ];
    for (method, path) in routes {
        for (token, status, code) in cases {
            let mut request = t
                .http
                .request(method.clone(), format!("{}{path}", t.base))
                .json(&json!({"enabled": false, "version": 1}));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("answers");
            assert_eq!(response.status(), status, "{method} {path} with {code}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["error"]["code"], code, "{method} {path}");
        }
    }
    // Nothing changed underneath.
    let (_, rules) = t.admin(Method::GET, "/admin/api/rules", None).await;
    assert!(
        rules["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .all(|r| r["version"] == 1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_rules_are_stored_on_first_start() {
    let t = TestStack::start().await;
    let (status, body) = t.admin(Method::GET, "/admin/api/rules", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "bill-paid-no-feedback",
            "bill-payment-burst",
            "first-bill-payment"
        ]
    );
    let first = &body["rules"][2];
    assert_eq!(first["version"], 1);
    assert_eq!(first["enabled"], true);
    assert_eq!(first["updated_by"], "cuba (initial rules)");
    assert_eq!(first["rule"]["condition"]["type"], "first");
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_are_created_replaced_switched_and_deleted_with_versions_and_history() {
    let t = TestStack::start().await;
    let (status, created) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/big-payment",
            Some(&big_payment_rule()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["version"], 1);
    assert_eq!(created["updated_by"], "ops@cube.test");
    assert_eq!(created["rule"]["id"], "big-payment");

    let (status, again) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/big-payment",
            Some(&big_payment_rule()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "creating an existing rule: {again}"
    );
    assert_eq!(again["error"]["code"], "version_conflict");

    let mut edited = big_payment_rule();
    edited["message"] = json!("large payment: {{properties.amount}}");
    edited["version"] = json!(1);
    let (status, updated) = t
        .admin(Method::PUT, "/admin/api/rules/big-payment", Some(&edited))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 2);

    // Someone still holding version 1 loses.
    let (status, stale) = t
        .admin(Method::PUT, "/admin/api/rules/big-payment", Some(&edited))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(stale["error"]["field"], "version");
    assert!(
        stale["error"]["message"]
            .as_str()
            .expect("message")
            .contains("version 2")
    );

    let (status, off) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/big-payment/enabled",
            Some(&json!({"enabled": false, "version": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(
        (off["version"].clone(), off["enabled"].clone()),
        (json!(3), json!(false))
    );
    let (status, _) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/big-payment/enabled",
            Some(&json!({"enabled": true, "version": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, fetched) = t
        .admin(Method::GET, "/admin/api/rules/big-payment", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        fetched["rule"]["message"],
        "large payment: {{properties.amount}}"
    );
    assert_eq!(fetched["enabled"], false);

    let (status, _) = t
        .admin(
            Method::DELETE,
            "/admin/api/rules/big-payment?version=2",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = t
        .admin(Method::DELETE, "/admin/api/rules/big-payment", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the version is required");
    let (status, deleted) = t
        .admin(
            Method::DELETE,
            "/admin/api/rules/big-payment?version=3",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["version"], 4);
    let (status, _) = t
        .admin(Method::GET, "/admin/api/rules/big-payment", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, history) = t
        .admin(Method::GET, "/admin/api/rules/big-payment/versions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<(u64, &str, &str)> = history["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap_or(0),
                v["action"].as_str().unwrap_or_default(),
                v["updated_by"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (4, "deleted", "ops@cube.test"),
            (3, "disabled", "ops@cube.test"),
            (2, "updated", "ops@cube.test"),
            (1, "created", "ops@cube.test")
        ]
    );
    assert_eq!(
        history["versions"][2]["document"]["message"],
        "large payment: {{properties.amount}}"
    );
    assert_eq!(history["versions"][0]["document"], Value::Null);

    // A deleted rule can be created again; its history continues.
    let (status, recreated) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/big-payment",
            Some(&big_payment_rule()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{recreated}");
    assert_eq!(recreated["version"], 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_rule_is_refused_with_every_problem_and_never_stored() {
    let t = TestStack::start().await;
    let bad = json!({
        "id": "other-id",
        "when": {"properties.amount": {"between": [1, 2]}},
        "condition": {"type": "window", "seconds": 0},
        "action": {"type": "email"},
        "message": "{{unclosed"
    });
    let (status, body) = t
        .admin(Method::PUT, "/admin/api/rules/bad-rule", Some(&bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_rule");
    let paths: Vec<&str> = body["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        ["$.id"],
        "a mismatched id is reported first and alone"
    );

    let mut bad = bad;
    bad["id"] = json!("bad-rule");
    let (status, body) = t
        .admin(Method::PUT, "/admin/api/rules/bad-rule", Some(&bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let paths: Vec<&str> = body["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "$.when[\"properties.amount\"].between",
            "$.condition.seconds",
            "$.condition",
            "$.action.type",
            "$.message"
        ]
    );
    for problem in body["error"]["problems"].as_array().expect("problems") {
        assert!(problem["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, _) = t
        .admin(Method::GET, "/admin/api/rules/bad-rule", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/Bad%20Id",
            Some(&big_payment_rule()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "id");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dry_run_explains_without_storing_or_sending_anything() {
    let t = TestStack::start().await;
    let phone = t.register_phone(50).await;

    // An unsaved rule that matches.
    let (status, answer) = t
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(&json!({"rule": {"id": "try", "when": {"noun": "bill"}, "condition": {"type": "first"},
                                   "action": {"type": "sms_user"}, "message": "hi {{user}}: {{properties.amount}}"},
                         "user": 50, "event": bill(123)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["matches"], true);
    assert_eq!(answer["outcome"], "fires");
    assert_eq!(answer["message"], "hi 50: 123");
    assert_eq!(
        answer["action"],
        json!({"type": "sms_user", "quiet_hours": "defer", "expires_after_seconds": 86400}),
        "the action as it will run, defaults included"
    );

    // An operator rule that groups: the answer says its alert goes out in a group message.
    let (status, grouped) = t
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(&json!({"rule": {"id": "try-grouped", "when": {"noun": "bill"}, "condition": {"type": "first"},
                                   "action": {"type": "notify_operator", "group_wait_seconds": 60},
                                   "message": "paid"},
                         "user": 50, "event": bill(123)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{grouped}");
    assert_eq!(
        grouped["action"],
        json!({"type": "notify_operator", "severity": "warning", "group_wait_seconds": 60, "group_interval_seconds": 300})
    );
    assert!(
        grouped["explanation"]
            .as_str()
            .is_some_and(|e| e.ends_with("ops get one message for the rule's alerts 60 s after a quiet rule's first, then one per 300 s")),
        "{grouped}"
    );

    // A saved rule against an event it does not match.
    let (_, answer) = t
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(&json!({"rule_id": "first-bill-payment", "user": 50, "feedback": {"rating": 5}})),
        )
        .await;
    assert_eq!(
        (answer["matches"].clone(), answer["outcome"].clone()),
        (json!(false), json!("does_not_fire"))
    );

    // After a real first payment, the first-payment rule would not fire again.
    t.accept("/api/v1/event/", 50, &bill(100)).await;
    t.wait_for_stream(1).await;
    let (_, answer) = t
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(&json!({"rule_id": "first-bill-payment", "user": 50, "event": bill(1)})),
        )
        .await;
    assert_eq!(answer["outcome"], "does_not_fire", "{answer}");

    // Four stored payments plus the tested one reach the burst threshold.
    for _ in 0..3 {
        t.accept("/api/v1/event/", 50, &bill(6000)).await;
    }
    t.wait_for_stream(4).await;
    let (_, answer) = t
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(&json!({"rule_id": "bill-payment-burst", "user": 50, "event": bill(6000)})),
        )
        .await;
    assert_eq!(answer["outcome"], "fires", "{answer}");
    assert_eq!(answer["window"]["count"], 5);
    assert_eq!(answer["window"]["sum"], 24100.0);

    let (_, answer) = t
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(&json!({"rule_id": "bill-paid-no-feedback", "user": 50, "event": bill(1)})),
        )
        .await;
    assert_eq!(answer["outcome"], "schedules_check");

    let (status, answer) = t
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(&json!({"rule": {"id": "x"}, "user": 50, "event": bill(1)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "invalid_rule");
    let (status, answer) = t
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(&json!({"rule_id": "first-bill-payment", "user": 50, "event": {"noun": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "event.noun");

    // Only the real first payment sent anything.
    assert_eq!(t.sms_to(&phone).await.len(), 1);
    assert_eq!(t.ledger_without_absence().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_saved_through_the_api_takes_effect_without_a_restart() {
    let t = TestStack::start().await;
    let phone = t.register_phone(60).await;
    let (status, _) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/big-payment",
            Some(&big_payment_rule()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, first) = t
        .admin(Method::GET, "/admin/api/rules/first-bill-payment", None)
        .await;
    let (status, _) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/first-bill-payment/enabled",
            Some(&json!({"enabled": false, "version": first["version"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The local stack re-reads rules every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let event_id = t.accept("/api/v1/event/", 60, &bill(15000)).await;
    t.wait_for_stream(1).await;

    let alerts = t.expect_operator_alerts(1).await;
    let big: Vec<_> = alerts
        .iter()
        .filter(|(body, _)| body["rule_id"] == "big-payment")
        .collect();
    assert_eq!(big.len(), 1, "{alerts:?}");
    assert_eq!(big[0].0["text"], "big payment of 15000 by user 60");
    assert_eq!(big[0].0["event_ids"], json!([event_id]));
    assert_eq!(big[0].1["severity"], "critical");
    assert!(
        t.sms_to(&phone).await.is_empty(),
        "the disabled first-payment rule stayed quiet"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backtest_lists_what_a_rule_would_have_fired_and_sends_nothing() {
    let t = TestStack::start().await;
    let phone = t.register_phone(70).await;
    let mut burst_ids = Vec::new();
    for _ in 0..5 {
        burst_ids.push(t.accept("/api/v1/event/", 70, &bill(5000)).await);
    }
    for _ in 0..4 {
        t.accept("/api/v1/event/", 71, &bill(5000)).await;
    }
    t.wait_for_stream(9).await;
    let sms_before = t.sms_to(&phone).await;
    let ledger_before = t.ledger_without_absence().await.len();

    let from = SystemClock.now().minus_seconds(3600).0;
    let (status, report) = t
        .admin(
            Method::POST,
            "/admin/api/rules/bill-payment-burst/backtest",
            Some(&json!({"from": from})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["events_replayed"], 9);
    let alerts = report["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 1, "{report}");
    assert_eq!(alerts[0]["user"], 70);
    assert_eq!(alerts[0]["trigger_event_id"], json!(burst_ids[4]));
    assert_eq!(alerts[0]["event_ids"], json!(burst_ids));

    let (_, report) = t
        .admin(
            Method::POST,
            "/admin/api/rules/bill-payment-burst/backtest",
            Some(&json!({"from": from, "user": 71})),
        )
        .await;
    assert_eq!(report["alerts"], json!([]));
    let (_, report) = t
        .admin(
            Method::POST,
            "/admin/api/rules/first-bill-payment/backtest",
            Some(&json!({"from": from})),
        )
        .await;
    let users: Vec<u64> = report["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["user"].as_u64())
        .collect();
    assert_eq!(users, [70, 71]);

    let (status, answer) = t
        .admin(
            Method::POST,
            "/admin/api/rules/first-bill-payment/backtest",
            Some(&json!({"from": "2030-01-01T00:00:00Z", "to": "2029-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "from");
    let (status, _) = t
        .admin(
            Method::POST,
            "/admin/api/rules/no-such-rule/backtest",
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An unsaved rule (the rule builder's preview): counts, users and a rendered message.
    let draft = json!({"id": "draft", "when": {"kind": "activity", "noun": "bill"},
        "condition": {"type": "window", "seconds": 600, "count_at_least": 4},
        "action": {"type": "sms_user"}, "message": "{{window.count}} bills, last {{properties.amount}}"});
    let (status, report) = t
        .admin(
            Method::POST,
            "/admin/api/rules/backtest",
            Some(&json!({"rule": draft, "from": from})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["users"], 2, "{report}");
    assert_eq!(report["alerts"].as_array().map(Vec::len), Some(2));
    assert!(report.get("version").is_none(), "{report}");
    assert_eq!(report["preview"]["fires"], true, "{report}");
    assert_eq!(report["preview"]["text"], "4 bills, last 5000");
    let (status, answer) = t
        .admin(
            Method::POST,
            "/admin/api/rules/backtest",
            Some(
                &json!({"rule": {"id": "draft", "when": {}, "condition": {"type": "window"},
                "action": {"type": "sms_user"}, "message": "m"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let paths: Vec<&str> = answer["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert!(paths.contains(&"$.rule.condition.seconds"), "{answer}");

    // What the builder offers: the language, and the types seen with their fields.
    let (status, language) = t.admin(Method::GET, "/admin/api/rule-language", None).await;
    assert_eq!(status, StatusCode::OK);
    let operators: Vec<&str> = language["operators"]
        .as_array()
        .expect("operators")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert!(operators.contains(&"gte") && operators.contains(&"anything_but"));
    let (status, types) = t.admin(Method::GET, "/admin/api/event-types", None).await;
    assert_eq!(status, StatusCode::OK, "{types}");
    let bills = &types["types"][0];
    assert_eq!(bills["label"], "activity bill/paid", "{types}");
    assert_eq!(bills["seen"], 9);
    assert_eq!(bills["schema"], "mobile-bill-paid");
    assert!(
        bills["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["path"] == "properties.amount" && f["types"] == json!(["number"])),
        "{bills}"
    );
    let (status, answer) = t
        .admin(Method::GET, "/admin/api/event-types?days=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "days");

    assert_eq!(
        t.sms_to(&phone).await,
        sms_before,
        "a backtest sends nothing"
    );
    assert_eq!(t.ledger_without_absence().await.len(), ledger_before);
}

async fn collect_pages(t: &TestStack, path: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next: Option<String> = None;
    loop {
        let url = match &next {
            None => path.to_owned(),
            Some(cursor) => format!("{path}&cursor={cursor}"),
        };
        let (status, page) = t.admin(Method::GET, &url, None).await;
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        pages += 1;
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => return (items, pages),
        }
        assert!(pages < 50, "pagination terminates");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_feedback_alerts_and_profiles_are_browsable_newest_first_with_cursors() {
    let t = TestStack::start().await;
    let phone80 = t.register_phone(80).await;
    let mut posted = Vec::new();
    for (user, body) in [
        (80, bill(100)),
        (81, bill(200)),
        (80, bill(300)),
        (
            80,
            json!({"rating": 2, "comment": "<script>alert(1)</script>"}),
        ),
        (81, bill(400)),
        (80, bill(500)),
    ] {
        let path = if body.get("rating").is_some() {
            "/api/v1/feedback/"
        } else {
            "/api/v1/event/"
        };
        posted.push((user, t.accept(path, user, &body).await));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.wait_for_stream(6).await;
    let newest_first = |user: Option<u64>| -> Vec<String> {
        posted
            .iter()
            .rev()
            .filter(|(u, _)| user.is_none_or(|want| *u == want))
            .map(|(_, id)| id.clone())
            .collect()
    };
    let ids = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .filter_map(|i| i["id"].as_str().map(str::to_owned))
            .collect()
    };

    let (items, pages) = collect_pages(&t, "/admin/api/events?user=80&limit=2").await;
    assert_eq!(ids(&items), newest_first(Some(80)));
    assert!(pages >= 2, "two per page");
    let (items, pages) = collect_pages(&t, "/admin/api/events?limit=4").await;
    assert_eq!(
        ids(&items),
        newest_first(None),
        "everyone's events, newest first"
    );
    assert!(pages >= 2);

    let (items, _) = collect_pages(&t, "/admin/api/feedback?limit=10").await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["comment"], "<script>alert(1)</script>",
        "returned as data, unchanged"
    );
    let (items, _) = collect_pages(&t, "/admin/api/events?user=81&kind=feedback").await;
    assert!(items.is_empty());

    let (alerts, _) = collect_pages(&t, "/admin/api/alerts?rule=first-bill-payment").await;
    let users: Vec<u64> = alerts.iter().filter_map(|a| a["user"].as_u64()).collect();
    assert_eq!(users, [81, 80], "newest first");
    let (alerts, _) = collect_pages(&t, "/admin/api/alerts?user=80&rule=first-bill-payment").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["status"], "sent");
    assert!(alerts[0]["message_id"].as_str().is_some());
    let (alerts, _) = collect_pages(&t, "/admin/api/alerts?user=81&rule=first-bill-payment").await;
    assert_eq!(alerts[0]["status"], "undeliverable");
    assert_eq!(alerts[0]["reason"], "user 81 has no phone number on file");

    let (status, profile) = t.admin(Method::GET, "/admin/api/users/80", None).await;
    assert_eq!(status, StatusCode::OK);
    // Masked: the console answers "which number?" without handing the number to every admin.
    assert_eq!(
        profile["phone"],
        format!("+{}…{}", &phone80[1..4], &phone80[phone80.len() - 3..]),
        "{profile}"
    );
    assert_eq!(profile["phone_verified"], true);
    assert!(
        profile.get("pending_code").is_none()
            && profile.get("codes_sent").is_none()
            && profile.get("code_hash").is_none(),
        "{profile}"
    );
    // When its code was texted (it verified by one a moment ago), never the code.
    let sent = profile["codes_sent_at"]
        .as_array()
        .expect("the times codes were sent");
    assert_eq!(sent.len(), 1, "{profile}");
    assert!(sent[0].is_u64(), "{profile}");
    let (status, _) = t.admin(Method::GET, "/admin/api/users/999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, chart) = t.admin(Method::GET, "/admin/api/activity", None).await;
    assert_eq!(status, StatusCode::OK, "{chart}");
    let counts = |key: &str| -> Vec<u64> {
        chart[key]
            .as_array()
            .expect("per-minute counts")
            .iter()
            .filter_map(Value::as_u64)
            .collect()
    };
    assert_eq!(
        counts("events").len(),
        60,
        "one bucket per minute of the last hour"
    );
    assert_eq!(counts("events").iter().sum::<u64>(), 6);
    assert!(
        counts("alerts").iter().sum::<u64>() >= 2,
        "both first payments alerted: {chart}"
    );
    assert_eq!(
        counts("events")[..58].iter().sum::<u64>(),
        0,
        "everything happened in the last minute or two"
    );
    assert_eq!(chart["bucket_seconds"], 60);
    let (_, short) = t
        .admin(Method::GET, "/admin/api/activity?minutes=5", None)
        .await;
    assert_eq!(short["events"].as_array().map(Vec::len), Some(5));

    for (path, field) in [
        ("/admin/api/activity?minutes=0", "minutes"),
        ("/admin/api/activity?minutes=181", "minutes"),
        ("/admin/api/events?cursor=garbage", "cursor"),
        ("/admin/api/events?limit=0", "limit"),
        ("/admin/api/events?limit=201", "limit"),
        (
            "/admin/api/events?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z",
            "from",
        ),
        ("/admin/api/events?from=2020-01-01T00:00:00Z", "from"),
        ("/admin/api/events?kind=other", "kind"),
        ("/admin/api/alerts?rule=Not%20A%20Rule", "id"),
    ] {
        let (status, body) = t.admin(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_is_served_from_the_binary_with_a_strict_content_security_policy() {
    let t = TestStack::start().await;
    for path in ["/admin", "/admin/", "/admin/index.html"] {
        let response = t
            .http
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let page = response.text().await.expect("text");
        // Every script, in the order they share one scope: dom.js first, app.js last.
        let tags: Vec<usize> = cuba_web::admin_ui::ASSETS
            .iter()
            .filter(|(name, _, _)| name.ends_with(".js"))
            .map(|(name, _, _)| {
                page.find(&format!(
                    r#"<script src="/admin/assets/{name}" defer></script>"#
                ))
                .unwrap_or_else(|| panic!("the page loads {name}"))
            })
            .collect();
        assert_eq!(tags.len(), 7);
        assert!(tags.is_sorted(), "the page loads the scripts in order");
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no CDN"
        );
    }
    for (name, content_type, _) in cuba_web::admin_ui::ASSETS {
        let path = format!("/admin/assets/{name}");
        let response = t
            .http
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], content_type);
        let body = response.text().await.expect("text");
        // The icon is small; every script and the style sheet is over a kilobyte.
        let real = if name.ends_with(".svg") {
            body.starts_with("<svg") && body.contains("</svg>")
        } else {
            body.len() > 1000
        };
        assert!(real, "{path} is the real asset");
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!body.contains(sink), "{path} never hands strings to {sink}");
        }
    }
    let response = t
        .http
        .get(format!("{}/admin/assets/missing.js", t.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// One rule per new pattern operator, created through the admin API, each fires on the event
/// written for it and on no other.
#[tokio::test(flavor = "multi_thread")]
async fn rules_using_each_pattern_operator_fire_on_the_local_stack() {
    let t = TestStack::start().await;
    // Rules see only valid events: let every activity through.
    let (status, answer) = t
        .admin(
            Method::PUT,
            "/admin/api/schemas/any-activity",
            Some(&json!({"match": {"kind": "activity", "noun": "*", "verb": "*"}, "schema": {"type": "object"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let whens = [
        (
            "op-prefix",
            json!({"properties.type": {"prefix": "utility-"}}),
        ),
        (
            "op-suffix",
            json!({"properties.type": {"suffix": "-invoice"}}),
        ),
        (
            "op-wildcard",
            json!({"properties.type": {"wildcard": "phone-*-plan"}}),
        ),
        (
            "op-anything-but",
            json!({"noun": "bill", "properties.account": {"anything_but": {"prefix": "test-"}}}),
        ),
        (
            "op-ignore-case",
            json!({"properties.city": {"equals_ignore_case": "Paris"}}),
        ),
        (
            "op-numeric",
            json!({"noun": "topup", "properties.amount": {"numeric": [">=", 1000, "<", 5000]}}),
        ),
        (
            "op-not-exists",
            json!({"noun": "refund", "properties.reason": {"exists": false}}),
        ),
        (
            "op-or",
            json!({"$or": [{"noun": "loan"}, {"noun": "card", "verb": "blocked"}]}),
        ),
    ];
    for (id, when) in &whens {
        let rule = json!({
            "when": when,
            "condition": {"type": "first"},
            "action": {"type": "notify_operator", "severity": "info"},
            "message": "{{rule_id}} fired"
        });
        let (status, answer) = t
            .admin(Method::PUT, &format!("/admin/api/rules/{id}"), Some(&rule))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{id}: {answer}");
    }
    let (status, answer) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/op-bad",
            Some(&json!({"when": {"properties.type": {"wildcard": "a**b"}}, "condition": {"type": "first"},
                "action": {"type": "sms_user"}, "message": "m"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["error"]["problems"][0]["path"], "$.when[\"properties.type\"].wildcard",
        "{answer}"
    );
    // The local stack re-reads rules every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Each event is meant for exactly one rule (events from distinct users, so `first` holds).
    let events = [
        (
            "op-prefix",
            json!({"noun": "app", "verb": "used", "properties": {"type": "utility-water"}}),
        ),
        (
            "op-suffix",
            json!({"noun": "app", "verb": "used", "properties": {"type": "gas-invoice"}}),
        ),
        (
            "op-wildcard",
            json!({"noun": "app", "verb": "used", "properties": {"type": "phone-5g-plan"}}),
        ),
        (
            "op-anything-but",
            json!({"noun": "bill", "verb": "seen", "properties": {"account": "acme"}}),
        ),
        (
            "op-ignore-case",
            json!({"noun": "app", "verb": "used", "properties": {"city": "PARIS"}}),
        ),
        (
            "op-numeric",
            json!({"noun": "topup", "verb": "made", "properties": {"amount": 2.5e3}}),
        ),
        (
            "op-not-exists",
            json!({"noun": "refund", "verb": "asked", "properties": {}}),
        ),
        (
            "op-or",
            json!({"noun": "card", "verb": "blocked", "properties": {}}),
        ),
        // Near misses: none of these may fire anything.
        (
            "",
            json!({"noun": "bill", "verb": "seen", "properties": {"account": "test-1"}}),
        ),
        (
            "",
            json!({"noun": "topup", "verb": "made", "properties": {"amount": 5000}}),
        ),
        (
            "",
            json!({"noun": "refund", "verb": "asked", "properties": {"reason": "late"}}),
        ),
        (
            "",
            json!({"noun": "app", "verb": "used", "properties": {"type": "phone-plan", "city": "Pariss"}}),
        ),
    ];
    for (i, (_, event)) in events.iter().enumerate() {
        t.accept("/api/v1/event/", 9_000 + i as u64, event).await;
    }
    t.wait_for_stream(events.len() as u64).await;
    let mut expected: Vec<(String, u64)> = events
        .iter()
        .enumerate()
        .filter(|(_, (rule, _))| !rule.is_empty())
        .map(|(i, (rule, _))| ((*rule).to_owned(), 9_000 + i as u64))
        .collect();
    expected.sort();
    let mut fired: Vec<(String, u64)> = t
        .expect_operator_alerts(expected.len())
        .await
        .into_iter()
        .map(|(body, _)| {
            (
                body["rule_id"].as_str().unwrap_or_default().to_owned(),
                body["user"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    fired.sort();
    assert_eq!(fired, expected);
}

/// Posts 16 events for each of 12 users and pages through every user's events in pages of
/// `limit`: every event once, newest first, and no cursor near the limit (the cursor keeps one
/// position, not one per shard).
async fn page_through_every_event(t: &TestStack, limit: usize) {
    const USERS: u64 = 12;
    const EACH: usize = 16;
    let mut posted = std::collections::BTreeSet::new();
    for user in 0..USERS {
        let events: Vec<Value> = (0..EACH)
            .map(|n| json!({"id": format!("page-{user}-{n}"), "noun": "app", "verb": "opened"}))
            .collect();
        let (status, answer) = t
            .post("/api/v1/batch/", 300 + user, &json!({"events": events}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        posted.extend((0..EACH).map(|n| format!("page-{user}-{n}")));
    }
    // Listed across everyone once the stream has read them. (The stream's progress counts each
    // event's second record too, its invalid flag: these events have no schema.)
    t.wait_until("every posted event listed", || async {
        let (items, _) = collect_pages(t, "/admin/api/events?limit=200").await;
        items.len() >= posted.len()
    })
    .await;
    let mut seen = Vec::new();
    let mut times = Vec::new();
    let mut longest = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let path = match &cursor {
            Some(c) => format!("/admin/api/events?limit={limit}&cursor={c}"),
            None => format!("/admin/api/events?limit={limit}"),
        };
        let (status, page) = t.admin(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().into_iter().flatten() {
            seen.push(item["id"].as_str().unwrap_or_default().to_owned());
            times.push(item["received_at"].as_u64().unwrap_or_default());
        }
        match page["next"].as_str() {
            Some(next) => {
                longest = longest.max(next.len());
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert!(times.iter().all(|&at| at > 0), "receive times were read");
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let unique: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    assert_eq!(unique, posted, "every event");
    assert!(longest < 512, "cursors stay small: {longest} characters");
}

/// At the most shards a deployment may set (256), in pages of 50: every page of the 192
/// events loads (each page queries all 256 shards, so pages are kept few on moto).
#[tokio::test(flavor = "multi_thread")]
async fn load_more_pages_through_256_shards() {
    let t = TestStack::start_with(crate::harness::Options {
        env: vec![(cuba_lambda::settings::env::LISTING_SHARDS, "256".to_owned())],
        ..crate::harness::Options::default()
    })
    .await;
    page_through_every_event(&t, 50).await;
}

/// Paging through every user's events at the deployed shard count (32), in pages smaller than
/// what each shard holds. A cursor opens only for the filters that made it.
#[tokio::test(flavor = "multi_thread")]
async fn load_more_pages_through_every_shard_with_small_cursors() {
    let t = TestStack::start().await;
    page_through_every_event(&t, 2).await;
    let (status, first) = t
        .admin(Method::GET, "/admin/api/events?limit=2&user=300", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let next = first["next"].as_str().expect("more than a page");
    let (status, answer) = t
        .admin(
            Method::GET,
            &format!("/admin/api/events?limit=2&user=301&cursor={next}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_cursor");
}
