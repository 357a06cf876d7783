//! Both routers in-process (`tower::ServiceExt::oneshot`, no server, no port) over the memory
//! ports: the HTTP contract of every route family, including what a failing port answers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use cuba_core::console::activity::MinuteCounts;
use cuba_core::console::ports::ActivityTally;
use cuba_core::delivery::alert::{Alert, AlertId, Delivery, Lease};
use cuba_core::delivery::limits::{SmsAdmission, SmsPolicy};
use cuba_core::delivery::ports::AlertLedger;
use cuba_core::delivery::ports::ProfileStore;
use cuba_core::delivery::quiet_hours::SmsManners;
use cuba_core::delivery::verification::PhoneVerifier;
use cuba_core::evaluation::source::SchemaSource;
use cuba_core::intake::rate::UserRateLimiter;
use cuba_core::intake::rate_limit::RateLimit;
use cuba_core::model::clock::{Clock, ManualClock, SystemClock};
use cuba_core::model::domain::{EventId, Millis, PhoneNumber, UserId};
use cuba_core::model::ports::DocumentStore;
use cuba_core::rules::{Action, RuleId, RuleSet};
use cuba_core::schemas::{DEFAULT_SCHEMAS, SchemaSet, documents_of_file};
use cuba_memory::{Fault, MemoryPorts};
use cuba_web::admin::{self, AdminApi, CursorSeal};
use cuba_web::auth::{AdminVerifier, PhoneCodeHasher, Rotating, TokenSecret, TokenVerifier};
use cuba_web::ingest::{self, IngestApi};
use serde_json::{Value, json};
use tower::ServiceExt;

const START: Millis = Millis(1_750_000_020_000);
const SECRET: &str = "router-test-secret-0123456789abcdefgh";
const ADMIN_SECRET: &str = "router-admin-secret-0123456789abcdefg";

struct Harness {
    ports: Arc<MemoryPorts>,
    schemas: Arc<SchemaSource>,
    clock: ManualClock,
    ingest: Router,
    admin: Router,
    user_tokens: TokenVerifier,
    admin_tokens: AdminVerifier,
}

fn secret(raw: &str) -> TokenSecret {
    TokenSecret::new(raw.as_bytes().to_vec()).expect("a long secret")
}

/// A limit no test but the rate limit's own reaches.
const GENEROUS: (u32, u32) = (100_000, 1_000_000);

/// The ingest router on the harness's ports, with `(per_second, burst)` as the event rate.
fn ingest_router(
    ports: &MemoryPorts,
    schemas: &Arc<SchemaSource>,
    user_tokens: &TokenVerifier,
    clock: Arc<dyn Clock>,
    (per_second, burst): (u32, u32),
) -> Router {
    let limit =
        RateLimit::new(per_second, burst, ingest::MAX_BATCH_EVENTS as u32).expect("a valid limit");
    ingest::router(IngestApi {
        events: ports.events.clone(),
        schemas: schemas.clone(),
        phones: PhoneVerifier {
            profiles: ports.profiles.clone(),
            sender: ports.notifier.clone(),
            hasher: Arc::new(PhoneCodeHasher::new(&secret(SECRET))),
            quotas: ports.quotas.clone(),
            sms: SmsPolicy::default(),
            clock: clock.clone(),
        },
        verifier: Rotating::fixed(user_tokens.clone()).into(),
        limiter: Arc::new(UserRateLimiter::new(
            limit,
            ports.rates.clone(),
            clock.clone(),
        )),
        clock,
    })
}

fn seed_of(text: &str, key: &str) -> Vec<(RuleId, Value)> {
    let document: Value = serde_json::from_str(text).expect("JSON");
    document[key]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            (
                RuleId::parse(d["id"].as_str().unwrap_or_default()).expect("an id"),
                d,
            )
        })
        .collect()
}

impl Harness {
    async fn new() -> Harness {
        let ports = Arc::new(MemoryPorts::new());
        let clock = ManualClock::at(START);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        ports
            .rules
            .seed(
                &seed_of(cuba_core::rules::DEFAULT_RULES_JSON, "rules"),
                "seed",
                START,
            )
            .await
            .expect("seeded");
        ports
            .schemas
            .seed(&seed_of(DEFAULT_SCHEMAS, "schemas"), "seed", START)
            .await
            .expect("seeded");
        let unseeded_schemas = SchemaSet::from_documents(
            documents_of_file(DEFAULT_SCHEMAS)
                .expect("schemas")
                .iter()
                .map(|d| (1, d)),
        )
        .0;
        let schemas = ports.schema_source(unseeded_schemas);
        let pipeline = ports.pipeline(
            ports.rule_source(RuleSet::default()),
            schemas.clone(),
            shared.clone(),
        );
        let user_tokens = TokenVerifier::new(&secret(SECRET));
        let admin_tokens = AdminVerifier::new(&secret(ADMIN_SECRET));
        let cursors = CursorSeal::new(&secret(ADMIN_SECRET));
        let ingest = ingest_router(&ports, &schemas, &user_tokens, shared.clone(), GENEROUS);
        let admin = admin::router(AdminApi {
            rules: ports.rules.clone(),
            schemas: ports.schemas.clone(),
            errors: ports.errors.clone(),
            pipeline,
            browse: ports.browse.clone(),
            tally: ports.tally.clone(),
            profiles: ports.profiles.clone(),
            events: ports.events.clone(),
            state: ports.rule_state.clone(),
            verifier: Rotating::fixed(admin_tokens.clone()).into(),
            cursors,
            silences: ports.silences.clone(),
            redrive: None,
            clock: shared,
        });
        Harness {
            schemas,
            ports,
            clock,
            ingest,
            admin,
            user_tokens,
            admin_tokens,
        }
    }

    /// Tokens are checked against the real time, whatever the test's clock says.
    fn user_token(&self, user: u64) -> String {
        self.user_tokens
            .issue(UserId(user), SystemClock.now(), 3600)
    }

    fn admin_token(&self) -> String {
        self.admin_tokens
            .issue("ops@cube.test", Some("admin"), SystemClock.now(), 3600)
    }

    async fn send(
        router: &Router,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(bytes) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let response = router
            .clone()
            .oneshot(request.body(body).expect("a request"))
            .await
            .expect("an answer");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn ingest(
        &self,
        method: Method,
        path: &str,
        user: u64,
        body: Value,
    ) -> (StatusCode, Value) {
        let token = self.user_token(user);
        let (status, _, body) = Self::send(
            &self.ingest,
            method,
            path,
            Some(&token),
            Some(body.to_string().into_bytes()),
        )
        .await;
        (status, body)
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let token = self.admin_token();
        let (status, _, body) = Self::send(
            &self.admin,
            method,
            path,
            Some(&token),
            body.map(|b| b.to_string().into_bytes()),
        )
        .await;
        (status, body)
    }
}

fn bill(amount: u64) -> Value {
    json!({"noun": "bill", "verb": "paid", "properties": {"amount": amount, "type": "gas"}})
}

fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str, field: Option<&str>) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body["error"]["field"],
        field.map_or(Value::Null, Value::from),
        "{body}"
    );
}

#[tokio::test]
async fn ingest_stores_once_and_answers_duplicates() {
    let h = Harness::new().await;
    let event = json!({"id": "c-1", "noun": "bill", "verb": "paid", "properties": {"amount": 5, "type": "gas"}});
    let first = h
        .ingest(Method::POST, "/api/v1/event/", 1, event.clone())
        .await;
    assert_eq!(
        first,
        (
            StatusCode::ACCEPTED,
            json!({"id": "c-1", "status": "accepted"})
        )
    );
    h.clock.advance_seconds(5);
    let again = h.ingest(Method::POST, "/api/v1/event", 1, event).await;
    assert_eq!(
        again,
        (StatusCode::OK, json!({"id": "c-1", "status": "duplicate"}))
    );
    let stored = h.ports.events.all();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].event.received_at, START,
        "the first receive time stands"
    );

    let batch =
        json!({"events": [bill(1), {"noun": 5}, {"id": "c-1", "noun": "bill", "verb": "paid"}]});
    let (status, answer) = h.ingest(Method::POST, "/api/v1/batch/", 1, batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (
            answer["accepted"].clone(),
            answer["duplicates"].clone(),
            answer["rejected"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    assert_eq!(answer["results"][1]["error"]["field"], "noun");
    assert_eq!(answer["results"][2]["status"], "duplicate");
}

/// The code texted to a number, read from the SMS the memory notifier recorded.
fn last_code(h: &Harness) -> String {
    let sms = h.ports.notifier.sms();
    let text = &sms.last().expect("a code SMS").text;
    text.split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 6)
        .expect("six digits in the SMS")
        .to_owned()
}

#[tokio::test]
async fn phone_numbers_are_verified_with_a_texted_code() {
    let h = Harness::new().await;
    let phone = json!({"phone": "+15555550100"});
    let (status, saved) = h
        .ingest(Method::PUT, "/api/v1/user/", 1, phone.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{saved}");
    assert_eq!(saved["verified"], false);
    assert_eq!(saved["phone"], "+15555550100");
    let expires = START.plus_seconds(600).0;
    assert_eq!(saved["code_expires_at"], expires);
    let code = last_code(&h);
    let stored = h.ports.profiles.profile(UserId(1)).await.expect("read");
    let stored = stored.expect("a profile");
    let hash = stored.pending_code.expect("a pending code").hash;
    assert!(!hash.contains(&code), "the code is stored hashed");

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let answer = h
        .ingest(
            Method::POST,
            "/api/v1/user/verify",
            1,
            json!({"code": wrong}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "wrong_code", Some("code"));
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("4 attempts left")
    );
    assert_error(
        &h.ingest(
            Method::POST,
            "/api/v1/user/verify",
            2,
            json!({"code": code}),
        )
        .await,
        StatusCode::CONFLICT,
        "no_pending_code",
        None,
    );
    let (status, verified) = h
        .ingest(
            Method::POST,
            "/api/v1/user/verify",
            1,
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(
        verified,
        json!({"user": 1, "phone": "+15555550100", "verified": true,
               "time_zone": null, "locale": null})
    );
    let sent = h.ports.notifier.sms().len();
    let (status, again) = h.ingest(Method::PUT, "/api/v1/user/", 1, phone).await;
    assert_eq!(
        (status, again["verified"].clone()),
        (StatusCode::OK, json!(true))
    );
    assert_eq!(
        h.ports.notifier.sms().len(),
        sent,
        "a verified number gets no new code"
    );

    // The zone and language change without a new code, and stay when a later write leaves
    // them out.
    let (status, local) = h
        .ingest(
            Method::PUT,
            "/api/v1/user/",
            1,
            json!({"phone": "+15555550100", "time_zone": "America/Sao_Paulo", "locale": "pt-br"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{local}");
    assert_eq!(
        (&local["verified"], &local["time_zone"], &local["locale"]),
        (&json!(true), &json!("America/Sao_Paulo"), &json!("pt-BR"))
    );
    let (_, kept) = h
        .ingest(
            Method::PUT,
            "/api/v1/user/",
            1,
            json!({"phone": "+15555550100"}),
        )
        .await;
    assert_eq!(kept["time_zone"], "America/Sao_Paulo");
    assert_eq!(h.ports.notifier.sms().len(), sent, "still no new code");
    let (_, cleared) = h
        .ingest(
            Method::PUT,
            "/api/v1/user/",
            1,
            json!({"phone": "+15555550100", "locale": null}),
        )
        .await;
    assert_eq!(
        (&cleared["time_zone"], &cleared["locale"]),
        (&json!("America/Sao_Paulo"), &json!(null))
    );
    assert_error(
        &h.ingest(
            Method::PUT,
            "/api/v1/user/",
            1,
            json!({"phone": "+15555550100", "time_zone": "Mars/Olympus"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("time_zone"),
    );
}

/// Codes to one number, asked for by many accounts, stop at the number's code cap, and spend
/// nothing of what the number's owner's alerts need.
#[tokio::test]
async fn code_sms_count_against_a_cap_of_their_own_per_phone() {
    let h = Harness::new().await;
    let victim = json!({"phone": "+15555550777"});
    let policy = SmsPolicy::default();
    let cap = policy.codes_per_phone;
    for user in 1..=u64::from(cap) {
        let (status, answer) = h
            .ingest(Method::PUT, "/api/v1/user/", user, victim.clone())
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    assert_error(
        &h.ingest(Method::PUT, "/api/v1/user/", 99, victim).await,
        StatusCode::TOO_MANY_REQUESTS,
        "sms_limit",
        Some("phone"),
    );
    assert_eq!(
        h.ports.notifier.sms().len(),
        cap as usize,
        "no code beyond the cap"
    );
    let phone = PhoneNumber::parse("+15555550777").expect("a phone");
    let now = h.clock.now();
    for n in 0..policy.per_phone {
        let owner = UserId(500 + u64::from(n));
        let alert = AlertId::first(&RuleId::parse("first-bill-payment").expect("an id"), owner);
        assert_eq!(
            policy
                .admit(
                    h.ports.quotas.as_ref(),
                    (owner, SmsManners::default().local_day(None, now)),
                    &phone,
                    &alert,
                    now,
                )
                .await,
            Ok(SmsAdmission::Admitted),
            "the number's alerts keep their whole cap"
        );
    }
}

#[tokio::test]
async fn verification_codes_are_limited() {
    let h = Harness::new().await;
    let put = |n: u64| json!({"phone": format!("+1555555010{n}")});
    for n in 0..3 {
        let (status, _) = h.ingest(Method::PUT, "/api/v1/user/", 1, put(n)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        h.clock.advance_seconds(60);
    }
    let (status, headers, body) = Harness::send(
        &h.ingest,
        Method::PUT,
        "/api/v1/user/",
        Some(&h.user_token(1)),
        Some(put(4).to_string().into_bytes()),
    )
    .await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_codes",
        None,
    );
    assert_eq!(
        headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("3420"),
        "the first code leaves the hour in 57 minutes"
    );
    assert_eq!(h.ports.notifier.sms().len(), 3);

    // Five wrong attempts use a code up.
    let code = last_code(&h);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (0..5).rev() {
        let answer = h
            .ingest(
                Method::POST,
                "/api/v1/user/verify",
                1,
                json!({"code": wrong}),
            )
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "wrong_code", Some("code"));
        assert!(
            answer.1["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("{left} attempts left"))
        );
    }
    assert_error(
        &h.ingest(
            Method::POST,
            "/api/v1/user/verify",
            1,
            json!({"code": code}),
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        None,
    );

    // After an hour a new code may be sent; it expires ten minutes later.
    h.clock.advance_seconds(3600);
    let (status, _) = h.ingest(Method::PUT, "/api/v1/user/", 1, put(5)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = last_code(&h);
    h.clock.advance_seconds(601);
    assert_error(
        &h.ingest(
            Method::POST,
            "/api/v1/user/verify",
            1,
            json!({"code": code}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "code_expired",
        Some("code"),
    );
    assert_error(
        &h.ingest(
            Method::POST,
            "/api/v1/user/verify",
            1,
            json!({"code": "12345"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("code"),
    );
}

#[tokio::test]
async fn an_event_the_store_refuses_is_that_events_400() {
    let h = Harness::new().await;
    h.ports.events.limit_items_to(250);
    let long = json!({"id": "long", "noun": "bill", "verb": "paid", "properties": {"amount": 5, "type": "x".repeat(200)}});
    let short = json!({"id": "short", "noun": "bill", "verb": "paid", "properties": {"amount": 5, "type": "gas"}});
    let (status, answer) = h
        .ingest(
            Method::POST,
            "/api/v1/batch/",
            1,
            json!({"events": [long, short]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["results"][0]["status"], "rejected", "{answer}");
    assert_eq!(
        answer["results"][0]["error"]["code"], "unstorable",
        "{answer}"
    );
    assert_eq!(answer["results"][1]["status"], "accepted", "{answer}");
    assert_eq!(
        (answer["accepted"].clone(), answer["rejected"].clone()),
        (json!(1), json!(1))
    );
    assert_error(
        &h.ingest(Method::POST, "/api/v1/event/", 1, long).await,
        StatusCode::BAD_REQUEST,
        "unstorable",
        None,
    );
}

#[tokio::test]
async fn ingest_refuses_with_structured_errors() {
    let h = Harness::new().await;
    let (status, _, body) = Harness::send(
        &h.ingest,
        Method::POST,
        "/api/v1/event/",
        None,
        Some(bill(1).to_string().into_bytes()),
    )
    .await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "missing_token",
        None,
    );
    assert_error(
        &h.ingest(
            Method::POST,
            "/api/v1/event/",
            1,
            json!({"user": 2, "noun": "bill", "verb": "paid"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "user_mismatch",
        Some("user"),
    );
    assert_error(
        &h.ingest(Method::POST, "/api/v1/feedback/", 1, json!({"rating": 9}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("rating"),
    );
    let (status, _, body) =
        Harness::send(&h.ingest, Method::GET, "/api/v1/event/", None, None).await;
    assert_error(
        &(status, body),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
    );
    let (status, _, body) = Harness::send(&h.ingest, Method::GET, "/nowhere", None, None).await;
    assert_error(&(status, body), StatusCode::NOT_FOUND, "not_found", None);
    let token = h.user_token(1);
    let huge = vec![b' '; 40 * 1024];
    let (status, _, body) = Harness::send(
        &h.ingest,
        Method::POST,
        "/api/v1/event/",
        Some(&token),
        Some(huge),
    )
    .await;
    assert_error(
        &(status, body),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    );
    assert!(h.ports.events.all().is_empty());
}

#[tokio::test]
async fn a_failing_store_answers_a_retryable_503() {
    let h = Harness::new().await;
    let token = h.user_token(1);
    h.ports.faults.fail_next("events.insert", Fault::Before);
    let (status, headers, body) = Harness::send(
        &h.ingest,
        Method::POST,
        "/api/v1/event/",
        Some(&token),
        Some(bill(1).to_string().into_bytes()),
    )
    .await;
    assert_error(
        &(status, body),
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        None,
    );
    assert_eq!(
        headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    // Stored but the answer lost: the client's retry with the same id (a moment later) is a
    // duplicate, not a second event.
    let event = json!({"id": "r-1", "noun": "bill", "verb": "paid", "properties": {"amount": 5, "type": "gas"}});
    h.ports.faults.fail_next("events.insert", Fault::After);
    let (status, _) = h
        .ingest(Method::POST, "/api/v1/event/", 1, event.clone())
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    h.clock.advance_seconds(1);
    let (status, answer) = h.ingest(Method::POST, "/api/v1/event/", 1, event).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (StatusCode::OK, json!("duplicate"))
    );
    assert_eq!(h.ports.events.all().len(), 1);
}

#[tokio::test]
async fn every_admin_route_needs_an_admin_token() {
    let h = Harness::new().await;
    let user = h.user_token(1);
    let roleless = h
        .admin_tokens
        .issue("ops@cube.test", None, SystemClock.now(), 3600);
    for (method, path) in [
        (Method::GET, "/admin/api/rules"),
        (Method::PUT, "/admin/api/rules/x"),
        (Method::POST, "/admin/api/rules/test"),
        (Method::GET, "/admin/api/schemas"),
        (Method::GET, "/admin/api/errors"),
        (Method::POST, "/admin/api/errors/replay"),
        (Method::GET, "/admin/api/events"),
        (Method::GET, "/admin/api/activity"),
        (Method::GET, "/admin/api/stream-failures"),
        (Method::POST, "/admin/api/stream-failures/redrive"),
        (Method::GET, "/admin/api/silences"),
        (Method::POST, "/admin/api/silences"),
        (Method::DELETE, "/admin/api/silences/x"),
    ] {
        for (token, status, code) in [
            (None, StatusCode::UNAUTHORIZED, "missing_token"),
            (
                Some(user.as_str()),
                StatusCode::UNAUTHORIZED,
                "invalid_token",
            ),
            (Some(roleless.as_str()), StatusCode::FORBIDDEN, "not_admin"),
        ] {
            let (got, headers, body) =
                Harness::send(&h.admin, method.clone(), path, token, Some(b"{}".to_vec())).await;
            assert_eq!(
                (got, body["error"]["code"].clone()),
                (status, json!(code)),
                "{method} {path}"
            );
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(
                    headers.get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()),
                    Some(&b"Bearer"[..])
                );
            }
        }
    }
}

/// A deployment without a stream failure queue says so, by code, rather than failing.
#[tokio::test]
async fn the_redrive_without_a_failure_queue_is_a_clear_404() {
    let h = Harness::new().await;
    for (method, path) in [
        (Method::GET, "/admin/api/stream-failures"),
        (Method::POST, "/admin/api/stream-failures/redrive"),
    ] {
        let (status, body) = h.admin(method.clone(), path, None).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (StatusCode::NOT_FOUND, json!("no_failure_queue")),
            "{method} {path}: {body}"
        );
    }
}

#[tokio::test]
async fn rules_are_versioned_documents() {
    let h = Harness::new().await;
    let (status, list) = h.admin(Method::GET, "/admin/api/rules", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["rules"].as_array().map(Vec::len), Some(3));
    assert_eq!(list["rules"][0]["rule"]["id"], list["rules"][0]["id"]);

    let rule = json!({"when": {"noun": "bill"}, "condition": {"type": "first"},
                      "action": {"type": "sms_user"}, "message": "hi"});
    let (status, created) = h
        .admin(Method::PUT, "/admin/api/rules/new-one", Some(rule.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (
            created["version"].clone(),
            created["updated_by"].clone(),
            created["rule"]["id"].clone()
        ),
        (json!(1), json!("ops@cube.test"), json!("new-one"))
    );
    assert_error(
        &h.admin(Method::PUT, "/admin/api/rules/new-one", Some(rule.clone()))
            .await,
        StatusCode::CONFLICT,
        "version_conflict",
        Some("version"),
    );
    let mut update = rule.clone();
    update["version"] = json!(1);
    update["enabled"] = json!(false);
    let (status, updated) = h
        .admin(Method::PUT, "/admin/api/rules/new-one", Some(update))
        .await;
    assert_eq!(
        (
            status,
            updated["version"].clone(),
            updated["enabled"].clone()
        ),
        (StatusCode::OK, json!(2), json!(false))
    );

    let (status, switched) = h
        .admin(
            Method::PUT,
            "/admin/api/rules/new-one/enabled",
            Some(json!({"enabled": true, "version": 2})),
        )
        .await;
    assert_eq!(
        (
            status,
            switched["version"].clone(),
            switched["enabled"].clone()
        ),
        (StatusCode::OK, json!(3), json!(true))
    );
    assert_error(
        &h.admin(
            Method::PUT,
            "/admin/api/rules/new-one/enabled",
            Some(json!({"enabled": "yes", "version": 3})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_type",
        Some("enabled"),
    );
    assert_error(
        &h.admin(
            Method::PUT,
            "/admin/api/rules/new-one/enabled",
            Some(json!({"enabled": true})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "missing_field",
        Some("version"),
    );
    let mut negative = rule.clone();
    negative["version"] = json!(-1);
    assert_error(
        &h.admin(Method::PUT, "/admin/api/rules/new-one", Some(negative))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("version"),
    );
    let (status, invalid) = h
        .admin(
            Method::PUT,
            "/admin/api/rules/broken",
            Some(json!({"when": {}, "condition": {"type": "window", "seconds": 0}})),
        )
        .await;
    assert_eq!(
        (status, invalid["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_rule"))
    );
    let paths: Vec<&str> = invalid["error"]["problems"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["path"].as_str()).collect())
        .unwrap_or_default();
    assert!(paths.contains(&"$.condition.seconds"), "{paths:?}");

    let (status, versions) = h
        .admin(Method::GET, "/admin/api/rules/new-one/versions", None)
        .await;
    let actions: Vec<&str> = versions["versions"]
        .as_array()
        .map(|v| v.iter().filter_map(|r| r["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        (status, actions),
        (StatusCode::OK, vec!["enabled", "updated", "created"])
    );
    assert_error(
        &h.admin(Method::DELETE, "/admin/api/rules/new-one", None)
            .await,
        StatusCode::BAD_REQUEST,
        "missing_field",
        Some("version"),
    );
    let (status, deleted) = h
        .admin(Method::DELETE, "/admin/api/rules/new-one?version=3", None)
        .await;
    assert_eq!(
        (status, deleted["status"].clone()),
        (StatusCode::OK, json!("deleted"))
    );
    assert_error(
        &h.admin(Method::GET, "/admin/api/rules/new-one", None).await,
        StatusCode::NOT_FOUND,
        "rule_not_found",
        None,
    );
    assert_error(
        &h.admin(Method::GET, "/admin/api/rules/Bad%20Id", None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("id"),
    );
}

#[tokio::test]
async fn schemas_are_versioned_documents_of_their_own_name() {
    let h = Harness::new().await;
    let (status, list) = h.admin(Method::GET, "/admin/api/schemas", None).await;
    assert_eq!(status, StatusCode::OK);
    let first = &list["schemas"][0];
    assert!(first["schema"]["match"].is_object(), "{first}");
    assert!(first.get("rule").is_none(), "{first}");
    let (status, conflict) = h
        .admin(
            Method::PUT,
            "/admin/api/schemas/feedback/enabled",
            Some(json!({"enabled": false, "version": 9})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        conflict["error"]["message"],
        "the schema is at version 1; reload it and apply your change again"
    );
    let (status, invalid) = h
        .admin(
            Method::PUT,
            "/admin/api/schemas/odd",
            Some(json!({"match": {"kind": "web"}, "schema": 5})),
        )
        .await;
    assert_eq!(
        (status, invalid["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_schema"))
    );
    assert!(
        invalid["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("the schema has"))
    );
    let (status, tested) = h
        .admin(
            Method::POST,
            "/admin/api/schemas/test",
            Some(json!({"event": {"noun": "bill", "verb": "paid", "properties": {"amount": 1}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["valid"], false);
    assert_eq!(tested["schema"]["id"], "mobile-bill-paid");
    assert_error(
        &h.admin(Method::POST, "/admin/api/schemas/test", Some(json!({})))
            .await,
        StatusCode::BAD_REQUEST,
        "missing_field",
        Some("event"),
    );
}

#[tokio::test]
async fn the_dry_run_and_the_backtest_answer_from_the_stores() {
    let h = Harness::new().await;
    let (status, answer) = h
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(json!({"rule_id": "first-bill-payment", "user": 5, "event": bill(30)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (
            answer["outcome"].clone(),
            answer["message"].clone(),
            answer["action"].clone()
        ),
        (
            json!("fires"),
            json!("Thanks for your first bill payment on Cube: 30 for gas."),
            json!({"type": "sms_user", "quiet_hours": "defer", "expires_after_seconds": 86400})
        )
    );
    let (_, answer) = h
        .admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(json!({"rule_id": "bill-paid-no-feedback", "user": 5, "event": bill(1)})),
        )
        .await;
    assert_eq!(answer["outcome"], "schedules_check");
    assert_eq!(answer["check_due_at"], START.plus_seconds(900).0);
    assert_error(
        &h.admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(json!({"rule_id": "first-bill-payment", "event": bill(1)})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "missing_field",
        Some("user"),
    );
    assert_error(
        &h.admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(json!({"rule_id": "first-bill-payment", "user": "five", "event": bill(1)})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_type",
        Some("user"),
    );
    assert_error(
        &h.admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(json!({"user": 5, "event": bill(1)})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
        Some("rule"),
    );
    assert_error(
        &h.admin(
            Method::POST,
            "/admin/api/rules/test",
            Some(json!({"rule_id": "first-bill-payment", "user": 5, "event": {"noun": 1}})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_type",
        Some("event.noun"),
    );
    let token = h.admin_token();
    let (status, _, body) = Harness::send(
        &h.admin,
        Method::POST,
        "/admin/api/rules/test",
        Some(&token),
        Some(b"{oops".to_vec()),
    )
    .await;
    assert_error(
        &(status, body),
        StatusCode::BAD_REQUEST,
        "malformed_json",
        None,
    );
    let (status, _, body) = Harness::send(
        &h.admin,
        Method::POST,
        "/admin/api/rules/test",
        Some(&token),
        Some(b"[1]".to_vec()),
    )
    .await;
    assert_error(
        &(status, body),
        StatusCode::BAD_REQUEST,
        "invalid_body",
        None,
    );

    for i in 0..5 {
        h.ingest(Method::POST, "/api/v1/event/", 6, bill(5_000))
            .await;
        h.clock.advance_seconds(10 + i);
    }
    let (status, report) = h
        .admin(
            Method::POST,
            "/admin/api/rules/bill-payment-burst/backtest",
            Some(json!({"user": 6, "from": START.0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["events_replayed"], 5);
    assert_eq!(report["alerts"].as_array().map(Vec::len), Some(1));
    assert_error(
        &h.admin(
            Method::POST,
            "/admin/api/rules/bill-payment-burst/backtest",
            Some(json!({"from": "yesterday"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("from"),
    );
    assert_error(
        &h.admin(
            Method::POST,
            "/admin/api/rules/bill-payment-burst/backtest",
            Some(json!({"from": START.0 + 10_000, "to": START.0})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("from"),
    );
}

#[tokio::test]
async fn browsing_pages_newest_first() {
    let h = Harness::new().await;
    for i in 0..5 {
        h.ingest(
            Method::POST,
            "/api/v1/event/",
            7,
            json!({"id": format!("v{i}"), "noun": "bill", "verb": "paid"}),
        )
        .await;
        h.clock.advance_seconds(1);
    }
    let (status, page) = h
        .admin(Method::GET, "/admin/api/events?user=7&limit=2", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // A query string the listing cannot read gets the JSON error, not axum's plain text.
    let (status, refused) = h
        .admin(Method::GET, "/admin/api/events?user=7&user=8", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], "invalid_query", "{refused}");
    assert_eq!(refused["error"]["field"], "query");
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(ids(&page), ["v4", "v3"]);
    let next = page["next"].as_str().expect("a cursor").to_owned();
    let (_, page) = h
        .admin(
            Method::GET,
            &format!("/admin/api/events?user=7&limit=2&cursor={next}"),
            None,
        )
        .await;
    assert_eq!(ids(&page), ["v2", "v1"]);
    // Only a cursor this deployment sealed for this listing is taken back.
    let mut tampered = next.clone();
    let flipped = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., flipped);
    for (path, why) in [
        (
            format!("/admin/api/events?user=7&limit=2&cursor={tampered}"),
            "tampered",
        ),
        (
            format!("/admin/api/events?limit=2&cursor={next}"),
            "another index's",
        ),
        (
            format!("/admin/api/alerts?user=7&cursor={next}"),
            "another listing's",
        ),
        (
            "/admin/api/events?user=7&cursor=1750000020000:7/v9".to_owned(),
            "the port's own, unsealed",
        ),
    ] {
        let (status, body) = h.admin(Method::GET, &path, None).await;
        assert_eq!(
            (
                status,
                body["error"]["code"].clone(),
                body["error"]["field"].clone()
            ),
            (
                StatusCode::BAD_REQUEST,
                json!("invalid_cursor"),
                json!("cursor")
            ),
            "{why}: {body}"
        );
    }
    for (path, field) in [
        ("/admin/api/events?cursor=garbage", "cursor"),
        ("/admin/api/events?limit=0", "limit"),
        ("/admin/api/events?kind=other", "kind"),
        ("/admin/api/events?from=2020-01-01T00:00:00Z", "from"),
        ("/admin/api/activity?minutes=181", "minutes"),
        ("/admin/api/errors?status=shut", "status"),
    ] {
        let (status, body) = h.admin(Method::GET, path, None).await;
        assert_eq!(
            (status, body["error"]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!(field)),
            "{path}"
        );
    }
    // The chart reads the per-minute tally the stream consumer keeps (there is no stream here):
    // the five events as it would have counted them, and one alert an hour ago, off the chart.
    let mut counted = MinuteCounts::default();
    for i in 0..5 {
        counted.event(Millis(h.clock.now().0 - i * 1000));
    }
    counted.alert(Millis(h.clock.now().0 - 3_600_000));
    h.ports.tally.add(&counted).await.expect("counted");
    let (status, chart) = h
        .admin(Method::GET, "/admin/api/activity?minutes=5", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let total = |series: &str| {
        chart[series]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_u64).sum::<u64>())
    };
    assert_eq!(
        (total("events"), total("alerts")),
        (Some(5), Some(0)),
        "{chart}"
    );
    assert_eq!(chart["events"].as_array().map(Vec::len), Some(5));
    assert_error(
        &h.admin(Method::GET, "/admin/api/users/7", None).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
        None,
    );
}

#[tokio::test]
async fn the_error_log_replays_after_a_schema_fix() {
    let h = Harness::new().await;
    let event = json!({"id": "bad-1", "noun": "bill", "verb": "paid", "properties": {"amount": 5}});
    h.ingest(Method::POST, "/api/v1/event/", 8, event).await;
    let (status, replayed) = h
        .admin(Method::POST, "/admin/api/errors/8/bad-1/replay", None)
        .await;
    assert_error(
        &(status, replayed),
        StatusCode::NOT_FOUND,
        "error_not_found",
        None,
    );
    // The stream consumer's step, as the rules function would run it.
    let stored = h.ports.events.all();
    let (_, report) = h.admin(Method::GET, "/admin/api/errors", None).await;
    assert_eq!(report["items"].as_array().map(Vec::len), Some(0));
    let pipeline = h.ports.pipeline(
        h.ports.rule_source(RuleSet::default()),
        h.ports.schema_source(SchemaSet::default()),
        Arc::new(h.clock.clone()),
    );
    pipeline.process(&stored[0]).await.expect("processed");
    let (_, report) = h
        .admin(Method::GET, "/admin/api/errors?status=open", None)
        .await;
    assert_eq!(report["items"][0]["id"], "bad-1");
    let (status, answer) = h
        .admin(
            Method::POST,
            "/admin/api/errors/replay",
            Some(json!({"limit": 0})),
        )
        .await;
    assert_error(
        &(status, answer),
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("limit"),
    );
    let (_, answer) = h
        .admin(Method::POST, "/admin/api/errors/replay", Some(json!({})))
        .await;
    assert_eq!(
        (answer["replayed"].clone(), answer["still_invalid"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(answer["results"][0]["outcome"], "still_invalid");

    let (_, current) = h
        .admin(Method::GET, "/admin/api/schemas/mobile-bill-paid", None)
        .await;
    let mut fixed = current["schema"].clone();
    fixed["schema"]["required"] = json!(["amount"]);
    fixed["version"] = current["version"].clone();
    let (status, _) = h
        .admin(
            Method::PUT,
            "/admin/api/schemas/mobile-bill-paid",
            Some(fixed),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = h
        .admin(Method::POST, "/admin/api/errors/8/bad-1/replay", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"user": 8, "id": "bad-1", "outcome": "replayed", "alerts_fired": 1})
    );
    let (_, again) = h
        .admin(Method::POST, "/admin/api/errors/8/bad-1/replay", None)
        .await;
    assert_eq!(again["outcome"], "already_replayed");
}

/// A clock a millisecond later at every reading, as time passes while a request is handled.
struct Ticking(std::sync::atomic::AtomicU64);

impl Clock for Ticking {
    fn now(&self) -> Millis {
        Millis(self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
    }
}

#[tokio::test]
async fn a_user_over_the_event_rate_is_refused_with_when_to_retry_and_others_are_not() {
    let mut h = Harness::new().await;
    let clock: Arc<dyn Clock> = Arc::new(h.clock.clone());
    h.ingest = ingest_router(&h.ports, &h.schemas, &h.user_tokens, clock, (10, 100));
    let batch = |n: u64| json!({"events": (1..=n).map(bill).collect::<Vec<_>>()});
    let (status, answer) = h.ingest(Method::POST, "/api/v1/batch/", 1, batch(95)).await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (StatusCode::OK, Some(95))
    );
    let (status, answer) = h.ingest(Method::POST, "/api/v1/batch/", 1, batch(10)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["error"]["code"], "rate_limited");
    for _ in 0..5 {
        let (status, _) = h.ingest(Method::POST, "/api/v1/event/", 1, bill(7)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let token = h.user_token(1);
    let (status, headers, answer) = Harness::send(
        &h.ingest,
        Method::POST,
        "/api/v1/feedback/",
        Some(&token),
        Some(json!({"rating": 5}).to_string().into_bytes()),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(
        h.ports.events.all().len(),
        100,
        "nothing refused was stored, the refused batch in whole"
    );
    let (status, _) = h.ingest(Method::POST, "/api/v1/event/", 2, bill(1)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "another user is not held up");
    h.clock.set(h.clock.now().plus_millis(1_000));
    let (status, _) = h.ingest(Method::POST, "/api/v1/batch/", 1, batch(10)).await;
    assert_eq!(status, StatusCode::OK, "a second later, 10 more");
}

#[tokio::test]
async fn a_batchs_events_share_one_receive_time() {
    let mut h = Harness::new().await;
    let ticking: Arc<dyn Clock> = Arc::new(Ticking(std::sync::atomic::AtomicU64::new(START.0)));
    h.ingest = ingest_router(&h.ports, &h.schemas, &h.user_tokens, ticking, GENEROUS);
    let batch = json!({"events": (1..=5).map(bill).collect::<Vec<_>>()});
    let (status, answer) = h.ingest(Method::POST, "/api/v1/batch/", 1, batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 5);
    let times: std::collections::BTreeSet<Millis> = h
        .ports
        .events
        .all()
        .iter()
        .map(|e| e.event.received_at)
        .collect();
    assert_eq!(
        times.len(),
        1,
        "one receive time for the request: {times:?}"
    );
}

#[tokio::test]
async fn a_valid_event_is_stored_once_and_an_invalid_one_keeps_its_raw_text() {
    let h = Harness::new().await;
    let valid = json!({"id": "v-1", "noun": "bill", "verb": "paid", "properties": {"amount": 5, "type": "gas"}});
    // No schema covers app/opened: it fails at intake and goes to the error log.
    let invalid = r#"{"id": "i-1",  "noun": "app", "verb": "opened"}"#;
    assert_eq!(
        h.ingest(Method::POST, "/api/v1/event/", 1, valid).await.0,
        StatusCode::ACCEPTED
    );
    let token = h.user_token(1);
    let (status, _, _) = Harness::send(
        &h.ingest,
        Method::POST,
        "/api/v1/event/",
        Some(&token),
        Some(invalid.as_bytes().to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let raw_of = |id: &str| {
        h.ports
            .events
            .all()
            .into_iter()
            .find(|r| r.event.id.as_str() == id)
            .map(|r| r.raw)
            .expect("stored")
    };
    assert_eq!(raw_of("v-1"), "", "the parsed fields are the one copy");
    assert_eq!(raw_of("i-1"), invalid, "byte for byte, for the error log");
}

/// Silences through the admin API: created for a rule that exists, with a reason and an end;
/// listed with their state; ended early; refused with the field at fault.
#[tokio::test]
async fn silences_are_created_listed_and_ended_by_admins() {
    let h = Harness::new().await;
    let (status, created) = h
        .admin(
            Method::POST,
            "/admin/api/silences",
            Some(json!({"rule_id": "bill-paid-no-feedback", "minutes": 60,
                        "reason": "payments provider maintenance"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "active");
    assert_eq!(created["created_by"], "ops@cube.test");
    assert_eq!(
        created["ends_at"]
            .as_u64()
            .zip(created["starts_at"].as_u64())
            .map(|(e, s)| e - s),
        Some(3_600_000)
    );
    let later = h.clock.now().plus_seconds(600).0;
    let (status, pending) = h
        .admin(
            Method::POST,
            "/admin/api/silences",
            Some(
                json!({"rule_id": "bill-paid-no-feedback", "user": 7, "starts_at": later,
                        "ends_at": later + 60_000, "reason": "user 7 is a load test"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");
    assert_eq!(pending["state"], "pending");

    let (_, list) = h.admin(Method::GET, "/admin/api/silences", None).await;
    let states: Vec<&str> = list["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["state"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(states, ["active", "pending"]);

    let id = created["id"].as_str().expect("an id");
    let (status, ended) = h
        .admin(Method::DELETE, &format!("/admin/api/silences/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["state"], "expired");
    assert_eq!(ended["ended_by"], "ops@cube.test");
    let (_, expired) = h
        .admin(Method::GET, "/admin/api/silences?state=expired", None)
        .await;
    assert_eq!(expired["items"].as_array().map(Vec::len), Some(1));

    let refusals = [
        (
            json!({"rule_id": "no-such-rule", "minutes": 5, "reason": "x"}),
            StatusCode::NOT_FOUND,
            "rule_not_found",
            "rule_id",
        ),
        (
            json!({"rule_id": "operator-cap", "minutes": 5, "reason": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "rule_id",
        ),
        (
            json!({"rule_id": "bill-paid-no-feedback", "reason": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "ends_at",
        ),
        (
            json!({"rule_id": "bill-paid-no-feedback", "minutes": 100000, "reason": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "minutes",
        ),
        (
            json!({"rule_id": "bill-paid-no-feedback", "minutes": 5, "reason": "  "}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "reason",
        ),
        (
            json!({"rule_id": "bill-paid-no-feedback", "ends_at": 1, "reason": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "ends_at",
        ),
        (
            json!({"rule_id": "bill-paid-no-feedback", "minutes": 5}),
            StatusCode::BAD_REQUEST,
            "missing_field",
            "reason",
        ),
    ];
    for (body, status, code, field) in refusals {
        assert_error(
            &h.admin(Method::POST, "/admin/api/silences", Some(body))
                .await,
            status,
            code,
            Some(field),
        );
    }
    assert_error(
        &h.admin(
            Method::DELETE,
            "/admin/api/silences/00000000-0000-4000-8000-000000000000",
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "silence_not_found",
        None,
    );
    assert_error(
        &h.admin(Method::GET, "/admin/api/silences?state=soon", None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("state"),
    );
}

/// The alert browser by status: the matches of the pages read, a cursor when there is more to
/// look through, and a clear 400 for a status that is none.
#[tokio::test]
async fn alerts_are_listed_by_status() {
    let h = Harness::new().await;
    let rule = RuleId::parse("r").expect("a rule id");
    let settled = [
        (
            "a0",
            Delivery::Sent {
                message_id: "m0".into(),
            },
        ),
        (
            "a1",
            Delivery::Suppressed {
                reason: "cap".into(),
            },
        ),
        (
            "a2",
            Delivery::Sent {
                message_id: "m2".into(),
            },
        ),
        (
            "a3",
            Delivery::Expired {
                reason: "late".into(),
            },
        ),
        (
            "a4",
            Delivery::Undeliverable {
                reason: "no phone".into(),
            },
        ),
    ];
    for (trigger, delivery) in &settled {
        let alert = Alert {
            trace: None,
            id: AlertId::for_trigger(&rule, UserId(7), &EventId::parse(trigger).expect("an id")),
            rule_id: rule.clone(),
            user: UserId(7),
            event_ids: Vec::new(),
            action: Action::SMS_USER,
            text: "t".into(),
            translations: Default::default(),
            fired_at: h.clock.now(),
        };
        let lease = Lease::new(h.clock.now().plus_seconds(60));
        h.ports
            .ledger
            .claim(&alert, h.clock.now(), &lease)
            .await
            .expect("claimed");
        h.ports
            .ledger
            .settle(&alert.id, delivery, h.clock.now())
            .await
            .expect("settled");
        h.clock.advance_seconds(1);
    }
    let statuses = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["status"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (status, page) = h
        .admin(
            Method::GET,
            "/admin/api/alerts?user=7&status=sent,expired",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(statuses(&page), ["expired", "sent", "sent"]);
    assert!(page["next"].is_null());
    // One alert a page: the pages read are the filter's bound, and `next` goes on from there.
    let (_, first) = h
        .admin(
            Method::GET,
            "/admin/api/alerts?user=7&status=sent&limit=1",
            None,
        )
        .await;
    assert_eq!(statuses(&first), ["sent"]);
    let next = first["next"].as_str().expect("more to look through");
    let (_, second) = h
        .admin(
            Method::GET,
            &format!("/admin/api/alerts?user=7&status=sent&limit=1&cursor={next}"),
            None,
        )
        .await;
    assert_eq!(statuses(&second), ["sent"]);
    // The cursor belongs to its status filter.
    let (status, _) = h
        .admin(
            Method::GET,
            &format!("/admin/api/alerts?user=7&status=expired&limit=1&cursor={next}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(
        &h.admin(
            Method::GET,
            "/admin/api/alerts?user=7&status=sent,lost",
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("status"),
    );
}

/// Every way in stores an event with the trace its request arrived in (`X-Amzn-Trace-Id`); a
/// header that names no trace is no reason to refuse the event, which is stored without one.
#[tokio::test]
async fn events_are_stored_with_the_trace_of_their_request() {
    let h = Harness::new().await;
    let token = h.user_token(1);
    let root = "1-5759e988-bd862e3fe1be46a994272793";
    let header_of = |n: u8| format!("Root={root};Parent=53995c3f42cd8ad{n};Sampled=1");
    let requests = [
        (
            "/api/v1/event/",
            json!({"id": "t-1", "noun": "bill", "verb": "paid", "properties": {"amount": 5, "type": "gas"}}),
            Some(header_of(1)),
        ),
        (
            "/api/v1/feedback/",
            json!({"id": "t-2", "rating": 4}),
            Some(header_of(2)),
        ),
        (
            "/api/v1/batch/",
            json!({"events": [{"id": "t-3", "noun": "app", "verb": "opened"}]}),
            Some(header_of(3)),
        ),
        (
            "/api/v1/event/",
            json!({"id": "t-4", "noun": "app", "verb": "opened"}),
            Some("Root=not-a-trace".to_owned()),
        ),
        (
            "/api/v1/event/",
            json!({"id": "t-5", "noun": "app", "verb": "opened"}),
            None,
        ),
    ];
    for (path, body, trace) in requests {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(trace) = trace {
            request = request.header("x-amzn-trace-id", trace);
        }
        let response = h
            .ingest
            .clone()
            .oneshot(
                request
                    .body(Body::from(body.to_string()))
                    .expect("a request"),
            )
            .await
            .expect("an answer");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
    let trace_of = |id: &str| {
        h.ports
            .events
            .all()
            .into_iter()
            .find(|r| r.event.id.as_str() == id)
            .expect("stored")
            .trace
            .map(|t| t.to_string())
    };
    for n in 1..=3u8 {
        assert_eq!(trace_of(&format!("t-{n}")), Some(header_of(n)), "t-{n}");
    }
    assert_eq!(trace_of("t-4"), None, "a malformed header is ignored");
    assert_eq!(trace_of("t-5"), None);
}
