//! The HTTP contract: every refusal is a 4xx with a structured error, never a 500.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use std::sync::Arc;
use std::time::Duration;

use crate::harness::{TEST_SECRET, TestStack, bill, released_together};
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::UserId;
use cuba_web::auth::{TokenSecret, TokenVerifier};

async fn raw(
    t: &TestStack,
    method: Method,
    path: &str,
    auth: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = t
        .http
        .request(method, format!("{}{path}", t.base))
        .body(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn assert_error(
    status: StatusCode,
    body: &Value,
    want_status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "a human message: {body}"
    );
    assert_eq!(
        body["error"]["field"],
        field.map_or(Value::Null, Value::from),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_failures_are_401_and_a_foreign_user_is_403() {
    let t = TestStack::start().await;
    let body = serde_json::to_vec(&bill(10)).expect("json");
    let json = Some("application/json");

    let (status, answer) = raw(&t, Method::POST, "/api/v1/event/", None, json, body.clone()).await;
    assert_error(
        status,
        &answer,
        StatusCode::UNAUTHORIZED,
        "missing_token",
        None,
    );

    let (status, answer) = raw(
        &t,
        Method::POST,
        "/api/v1/event/",
        Some("Bearer not.a.jwt"),
        json,
        body.clone(),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        None,
    );

    let forger = TokenVerifier::new(
        &TokenSecret::new(b"some-other-secret-some-other-secret".to_vec()).expect("secret"),
    );
    let forged = format!("Bearer {}", forger.issue(UserId(1), SystemClock.now(), 60));
    let (status, answer) = raw(
        &t,
        Method::POST,
        "/api/v1/event/",
        Some(&forged),
        json,
        body.clone(),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        None,
    );

    let real =
        TokenVerifier::new(&TokenSecret::new(TEST_SECRET.as_bytes().to_vec()).expect("secret"));
    let expired = format!(
        "Bearer {}",
        real.issue(UserId(1), SystemClock.now().minus_seconds(7200), 60)
    );
    let (status, answer) = raw(
        &t,
        Method::POST,
        "/api/v1/feedback/",
        Some(&expired),
        json,
        body.clone(),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::UNAUTHORIZED,
        "expired_token",
        None,
    );

    let (status, answer) = t
        .post(
            "/api/v1/event/",
            1,
            &json!({"user": 2, "noun": "bill", "verb": "paid"}),
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::FORBIDDEN,
        "user_mismatch",
        Some("user"),
    );
    let (status, answer) = t
        .send(
            Method::PUT,
            "/api/v1/user/",
            1,
            &json!({"user": 2, "phone": "+15555550100"}),
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::FORBIDDEN,
        "user_mismatch",
        Some("user"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_structured_400s() {
    let t = TestStack::start().await;
    let auth = format!("Bearer {}", t.token(1));
    let json = Some("application/json");
    let cases: [(&str, &[u8], &str, Option<&str>); 9] = [
        ("/api/v1/event/", b"{\"noun\": ", "malformed_json", None),
        ("/api/v1/event/", b"[]", "invalid_body", None),
        (
            "/api/v1/event/",
            br#"{"verb": "paid"}"#,
            "missing_field",
            Some("noun"),
        ),
        (
            "/api/v1/event/",
            br#"{"noun": "bill", "verb": 1}"#,
            "invalid_type",
            Some("verb"),
        ),
        (
            "/api/v1/event/",
            br#"{"noun": "bill", "verb": "paid", "ts": "last tuesday"}"#,
            "invalid_value",
            Some("ts"),
        ),
        (
            "/api/v1/event/",
            br#"{"noun": "bill", "verb": "paid", "amount": 3}"#,
            "unknown_field",
            Some("amount"),
        ),
        (
            "/api/v1/feedback/",
            br#"{"rating": 9}"#,
            "invalid_value",
            Some("rating"),
        ),
        (
            "/api/v1/feedback",
            br#"{"rating": 3, "comment": 5}"#,
            "invalid_type",
            Some("comment"),
        ),
        (
            "/api/v1/event",
            br#"{"noun": "bill", "verb": "paid", "id": "has space"}"#,
            "invalid_value",
            Some("id"),
        ),
    ];
    for (path, body, code, field) in cases {
        let (status, answer) = raw(&t, Method::POST, path, Some(&auth), json, body.to_vec()).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, code, field);
    }
    let (status, answer) = raw(
        &t,
        Method::PUT,
        "/api/v1/user",
        Some(&auth),
        json,
        br#"{"phone": "0800 123"}"#.to_vec(),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("phone"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn content_type_size_and_routing_errors() {
    let t = TestStack::start().await;
    let auth = format!("Bearer {}", t.token(1));
    let body = serde_json::to_vec(&bill(10)).expect("json");

    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, answer) = raw(
            &t,
            Method::POST,
            "/api/v1/event/",
            Some(&auth),
            content_type,
            body.clone(),
        )
        .await;
        assert_error(
            status,
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        );
    }
    let (status, _) = raw(
        &t,
        Method::POST,
        "/api/v1/event/",
        Some(&auth),
        Some("application/json; charset=utf-8"),
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let mut big = bill(10);
    big["properties"]["note"] = json!("x".repeat(33 * 1024));
    let (status, answer) = raw(
        &t,
        Method::POST,
        "/api/v1/event/",
        Some(&auth),
        Some("application/json"),
        serde_json::to_vec(&big).expect("json"),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    );

    let (status, answer) = raw(
        &t,
        Method::POST,
        "/api/v1/nothing",
        Some(&auth),
        Some("application/json"),
        body.clone(),
    )
    .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found", None);
    let (status, answer) = raw(
        &t,
        Method::GET,
        "/api/v1/event/",
        Some(&auth),
        None,
        Vec::new(),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_path_works_with_and_without_the_trailing_slash() {
    let t = TestStack::start().await;
    for path in ["/api/v1/event", "/api/v1/event/"] {
        t.accept(path, 2, &bill(10)).await;
    }
    for path in ["/api/v1/feedback", "/api/v1/feedback/"] {
        t.accept(path, 2, &json!({"user": 2, "rating": 4, "comment": "test"}))
            .await;
    }
    for path in ["/api/v1/user", "/api/v1/user/"] {
        let (status, answer) = t
            .send(
                Method::PUT,
                path,
                2,
                &json!({"user": 2, "phone": "+15555550123"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["verified"], false, "a code was texted");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_event_is_accepted_as_posted() {
    let t = TestStack::start().await;
    let seed = json!({"user": 1, "ts": "1234567890", "latlong": "76.865, 98.975", "noun": "bill", "verb": "paid",
                      "time": 5, "properties": {"amount": 3000, "type": "electricity"}});
    let id = t.accept("/api/v1/event/", 1, &seed).await;
    assert!(!id.is_empty());
    for ts in [
        json!(1234567890),
        json!(1234567890123u64),
        json!("2009-02-13T23:31:30Z"),
    ] {
        let mut event = seed.clone();
        event["ts"] = ts;
        t.accept("/api/v1/event/", 1, &event).await;
    }
}

/// The same new id through the single and the batch endpoint at once: exactly one request stores
/// its body (the other answers `duplicate`), and the stored body is the winner's. Before batch
/// writes were conditional, the batch could overwrite the single event's body unseen.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_id_through_both_endpoints_at_once_is_stored_once() {
    let t = TestStack::start().await;
    let races = 12;
    let mut handles = Vec::new();
    for i in 0..races {
        let id = format!("race-{i}");
        let single = json!({"id": id, "noun": "bill", "verb": "paid",
                            "properties": {"amount": 1, "type": "single"}});
        let batch = json!({"events": [{"id": id, "noun": "bill", "verb": "paid",
                                       "properties": {"amount": 2, "type": "batch"}}]});
        let (t1, t2) = (&t, &t);
        handles.push(async move {
            let (one, many) = tokio::join!(
                t1.post("/api/v1/event/", 40, &single),
                t2.post("/api/v1/batch/", 40, &batch)
            );
            (id, one, many)
        });
    }
    for (id, (single_status, single), (batch_status, batch)) in
        futures::future::join_all(handles).await
    {
        assert!(
            single_status == StatusCode::ACCEPTED || single_status == StatusCode::OK,
            "{single}"
        );
        assert_eq!(batch_status, StatusCode::OK, "{batch}");
        let single_won = single["status"] == "accepted";
        let batch_won = batch["results"][0]["status"] == "accepted";
        assert!(
            single_won != batch_won,
            "{id}: exactly one stores it: {single} / {batch}"
        );
        let (_, page) = t
            .admin(Method::GET, "/admin/api/events?user=40&limit=200", None)
            .await;
        let stored: Vec<&Value> = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["id"] == id.as_str())
            .collect();
        assert_eq!(stored.len(), 1, "{id}");
        let kind = if single_won { "single" } else { "batch" };
        assert_eq!(
            stored[0]["properties"]["type"], kind,
            "{id}: the winner's body"
        );
    }
}

/// Fifty wrong guesses at one code, released together against moto: exactly as many are
/// compared as the code has attempts (five), every other one is refused, and the right code
/// comes too late.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_get_no_more_attempts_than_a_code_has() {
    const GUESSES: usize = 50;
    let t = TestStack::start().await;
    let user = 80;
    let salt = uuid::Uuid::new_v4().as_u128() % 1000;
    let phone = format!("+1559{salt:03}{:04}", crate::harness::unique() % 10_000);
    let (status, body) = t
        .send(Method::PUT, "/api/v1/user/", user, &json!({"phone": phone}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let code = t.verification_code(&phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let guess = json!({"code": wrong});
    let answers = released_together(vec![&guess; GUESSES], |body| {
        t.post("/api/v1/user/verify", user, body)
    })
    .await;
    let mut by_code = std::collections::BTreeMap::<String, usize>::new();
    for (status, body) in &answers {
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let expected = match code.as_str() {
            "wrong_code" => StatusCode::BAD_REQUEST,
            _ => StatusCode::TOO_MANY_REQUESTS,
        };
        assert_eq!(*status, expected, "{body}");
        *by_code.entry(code).or_default() += 1;
    }
    assert_eq!(
        by_code,
        std::collections::BTreeMap::from([
            ("too_many_attempts".to_owned(), GUESSES - 5),
            ("wrong_code".to_owned(), 5),
        ])
    );
    let (status, body) = t
        .post("/api/v1/user/verify", user, &json!({"code": code}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
}

/// One account asks for codes to forty numbers at once: one request wins the profile and its
/// code goes out; the others are refused, and the day's code budget counts exactly the codes
/// sent (a lost race gives its count back).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_codes_sent_are_charged_to_the_budget() {
    const REQUESTS: usize = 40;
    let t = TestStack::start().await;
    let user = 81;
    let salt = uuid::Uuid::new_v4().as_u128() % 100;
    let numbers: Vec<String> = (0..REQUESTS)
        .map(|n| {
            format!(
                "+1554{salt:02}{:05}",
                crate::harness::unique() * 100 + n as u64
            )
        })
        .collect();
    let bodies: Vec<Value> = numbers
        .iter()
        .map(|phone| json!({"phone": phone}))
        .collect();
    let answers = released_together(bodies.iter().collect(), |body| {
        t.send(Method::PUT, "/api/v1/user/", user, body)
    })
    .await;
    let accepted = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::ACCEPTED)
        .count();
    for (status, body) in &answers {
        assert!(
            *status == StatusCode::ACCEPTED || body["error"]["code"] == "conflict",
            "{status} {body}"
        );
    }
    assert!(accepted >= 1, "one request wins the profile");
    assert!(
        accepted <= 3,
        "at most 3 codes an hour per user, whatever the concurrency: {accepted}"
    );
    let mut sent = 0;
    for phone in &numbers {
        sent += t.all_sms_to(phone).await.len();
    }
    assert_eq!(
        sent, accepted,
        "a code for every accepted request, none for the others"
    );

    let dynamodb = aws_sdk_dynamodb::Client::new(&t.sdk);
    let table = t
        .stack
        .provisioned
        .table("RuleStateTable")
        .expect("the rule-state table");
    let day = SystemClock.now().utc_day();
    let mut charged = 0;
    for shard in 0..cuba_aws::partition_keys::SMS_BUDGET_SHARDS {
        let key = cuba_aws::partition_keys::sms_budget(
            cuba_core::delivery::ports::SmsBudget::Codes,
            day,
            shard,
        );
        let item = dynamodb
            .get_item()
            .table_name(table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key))
            .consistent_read(true)
            .send()
            .await
            .expect("read a budget shard")
            .item;
        charged += item
            .and_then(|item| item.get("sent").and_then(|n| n.as_n().ok()).cloned())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
    }
    assert_eq!(
        charged, sent,
        "the budget counts the codes sent, and only them"
    );
}

/// Two ingest instances (as Lambda runs many), each a router of its own over the stack's
/// tables, with a small limit: 1 event a second, bursts of 100, so a 10-second window allows
/// 110. Alone, each would take a full burst of 100; sharing the count, they stop the user soon
/// after 110 between them, and the user's next request is told when to retry.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_spread_over_instances_is_held_to_one_rate() {
    use cuba_lambda::config::IngestConfig;
    use cuba_lambda::settings::{Settings, env};
    use cuba_local::runner::INGEST_FUNCTION;

    let t = TestStack::start().await;
    let mut vars = t.stack.function_env[INGEST_FUNCTION].clone();
    vars.insert(env::USER_EVENTS_PER_SECOND.into(), "1".into());
    vars.insert(env::USER_EVENT_BURST.into(), "100".into());
    let settings = Settings::new(move |name| vars.get(name).cloned());
    let config = IngestConfig::from_settings(&settings).expect("the ingest configuration");
    let clients = cuba_lambda::AwsClients::new(&t.sdk);
    let mut instances = Vec::new();
    for _ in 0..2 {
        let api = cuba_lambda::wiring::ingest_api(&config, &clients, Arc::new(SystemClock))
            .await
            .expect("an ingest instance");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        instances.push(format!("http://{}", listener.local_addr().expect("bound")));
        tokio::spawn(axum::serve(listener, cuba_web::ingest::router(api)).into_future());
    }
    // Start just after a window begins, so all ten requests fall in one.
    let into_window = SystemClock.now().0 % 10_000;
    if into_window > 2_000 {
        tokio::time::sleep(Duration::from_millis(10_000 - into_window + 50)).await;
    }
    let user = 6_100 + crate::harness::unique();
    let batch = json!({"events": (1..=20).map(bill).collect::<Vec<_>>()});
    let mut admitted = 0;
    let mut refused = Vec::new();
    for round in 0..10 {
        let response = t
            .http
            .post(format!("{}/api/v1/batch/", instances[round % 2]))
            .bearer_auth(t.token(user))
            .json(&batch)
            .send()
            .await
            .expect("the instance answers");
        let status = response.status();
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::OK => admitted += body["accepted"].as_u64().unwrap_or(0),
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                assert!(retry_after.is_some(), "{body}");
                refused.push(round);
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(
        (110..200).contains(&admitted),
        "{admitted} admitted across two instances whose bursts alone would take 200"
    );
    assert!(
        refused.contains(&9),
        "the user's last request is refused: {refused:?}"
    );
}
