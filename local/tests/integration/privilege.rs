//! Least privilege, checked: every function's AWS requests over two runs that exercise each of
//! them (one on the system clock, one whose clock the test holds for the sweeper's timed work)
//! are recorded as IAM actions on resources ([`cuba_local::access`]) and compared with the
//! policies `template.yaml` grants. moto checks no IAM, so a grant the code needs and lacks
//! would otherwise first show as `AccessDenied` in AWS, and a grant nothing uses would stay.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cuba_core::model::clock::{Clock, ManualClock};
use cuba_core::model::locality::TimeZoneName;
use cuba_local::access::{Access, AccessLog, Grant, granted};
use cuba_local::template::Template;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Options, TestStack, bill, repo_path, s};

const SESSION: &str = "d66ac88b-f801-4984-953f-5c6b266494a0";

/// Grants no request of the runs uses, each with why it stays. Anything else unused fails the
/// test: drop the grant, or say here why the code needs it.
const NOT_REQUESTS: &[(&str, &str, &str, &str)] = &[
    (
        "SweeperFunction",
        "iam:PassRole",
        "SmsDeliveryStatusRole",
        "IAM checks it when SetSMSAttributes names the delivery-status role; no request of its own",
    ),
    (
        "SweeperFunction",
        "sns:SetSMSAttributes",
        "*",
        "turns the account's SMS delivery logging on at a cold start only where no role is set; \
         moto keeps the account's attributes, so a stack after the first finds it set",
    ),
    (
        "RulesFunction",
        "dynamodb:Query",
        "-events-v2",
        "reads a user's events where window or absence buckets cannot answer (a bucket \
         overflowed, a rule saved moments before): timing decides whether a run reaches it; the \
         window and absence tests do",
    ),
    (
        "RulesFunction",
        "dynamodb:GetItem",
        "-events",
        "reads one event the batch's per-user reads did not hold: a late window member's later \
         events, an absence check's trigger older than the span read (window tests cover them)",
    ),
    (
        "PreTrafficHookFunction",
        "lambda:InvokeFunction",
        ":function:",
        "invokes the new ingest and rules versions through Lambda, which the local stack has \
         not (its test runs the binaries under a Runtime API: pre_traffic.rs)",
    ),
    (
        "PreTrafficHookFunction",
        "codedeploy:PutLifecycleEventHookExecutionStatus",
        "deploymentgroup",
        "reports to CodeDeploy, which only a deployment in AWS has",
    ),
    (
        "ReceiptsFunction",
        "sqs:SendMessage",
        "receipt-failures",
        "Lambda sends a failed invocation's records to the on-failure destination with the \
         function's role",
    ),
];

/// Each statement's (action, resource) pairs by position that no access in `used` needed.
fn unused(grants: &[Grant], used: &BTreeSet<Access>) -> BTreeSet<(usize, usize, usize)> {
    let mut out = BTreeSet::new();
    for (g, grant) in grants.iter().enumerate() {
        for (a, action) in grant.actions.iter().enumerate() {
            for (r, resource) in grant.resources.iter().enumerate() {
                let one = Grant {
                    actions: vec![action.clone()],
                    resources: vec![resource.clone()],
                    ..grant.clone()
                };
                if !used.iter().any(|access| one.allows(access)) {
                    out.insert((g, a, r));
                }
            }
        }
    }
    out
}

/// The template's grants as `t`'s stack resolves them; fails on any request in `used` that
/// none allows.
fn grants_covering(t: &TestStack, used: &BTreeSet<Access>) -> Vec<Grant> {
    let template = Template::parse(
        &std::fs::read_to_string(repo_path("template.yaml")).expect("the template"),
    )
    .expect("the template parses");
    let grants = granted(&template, &t.stack.provisioned.known).expect("policies resolve");
    for access in used {
        println!("{} {} {}", access.function, access.action, access.resource);
    }
    let refused: Vec<&Access> = used
        .iter()
        .filter(|a| !grants.iter().any(|g| g.allows(a)))
        .collect();
    assert!(
        refused.is_empty(),
        "requests the template does not grant (AccessDenied in AWS):\n{refused:#?}"
    );
    grants
}

/// The sweeper's clock-driven work, on a stack whose clock the test holds: an SMS held by
/// quiet hours and released when they end, a heartbeat rule falling silent, a fleet window
/// resolved.
async fn sweeper_run() -> (TestStack, BTreeSet<Access>) {
    let log = AccessLog::new();
    let clock = ManualClock::starting_now();
    let utc = TimeZoneName::parse("UTC").expect("a zone");
    let quiet = format!(
        "{}-{}",
        crate::locality::wall_clock(&clock, &utc, -60),
        crate::locality::wall_clock(&clock, &utc, 120)
    );
    let shipped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("rules/default.json")).expect("the default rules"),
    )
    .expect("JSON");
    let first = shipped["rules"][0].clone();
    assert_eq!(first["id"], "first-bill-payment");
    let rules = json!({"rules": [first, {
        "id": "privilege-heartbeat",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "heartbeat", "seconds": 60},
        "action": {"type": "notify_operator"},
        "message": "no payments since {{heartbeat.last_seen}}"
    }, {
        "id": "privilege-fleet",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 60, "count_at_least": 1, "group_by": "all"},
        "action": {"type": "notify_operator"},
        "message": "{{window.count}} payments from all users"
    }]});
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rules-privilege-{}.json", std::process::id()));
    std::fs::write(&path, rules.to_string()).expect("write the rules");
    let t = TestStack::start_with(Options {
        clock: Arc::new(clock.clone()),
        rules_file: Some(path),
        env: vec![("CUBA_QUIET_HOURS", quiet)],
        access: Some(log.clone()),
        ..Options::default()
    })
    .await;
    let phone = t.register_phone(9_201).await;
    t.accept("/api/v1/event/", 9_201, &bill(100)).await;
    t.wait_until("the first payment's SMS is held", || async {
        t.ledger_for("first-bill-payment")
            .await
            .iter()
            .any(|item| s(item, "status") == "deferred")
    })
    .await;
    // The fleet window fires on the payment (the rules function), and is resolved by the
    // sweeper once the payment left it, as the heartbeat falls silent.
    t.expect_operator_alerts(1).await;
    clock.advance_seconds(61);
    t.expect_operator_alerts(2).await;
    clock.advance_seconds(3 * 3600);
    t.wait_until("the sweeper sends the held SMS", || async {
        !t.sms_to(&phone).await.is_empty()
    })
    .await;
    (t, log.accesses())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_function_is_granted_exactly_what_its_code_requests() {
    let log = AccessLog::new();
    let t = TestStack::start_with(Options {
        access: Some(log.clone()),
        sms_receipts: true,
        ..Options::default()
    })
    .await;

    // The ingest API: a phone verified by its texted code, events one by one and in a batch,
    // feedback, and an event its schema refuses.
    let user = 9_101;
    t.register_phone(user).await;
    let paid = t.accept("/api/v1/event/", user, &bill(25_000)).await;
    // A client id sent twice: the second is answered from the stored copy.
    let repeated = json!({"id": "privilege-repeat", "noun": "page", "verb": "viewed"});
    for _ in 0..2 {
        let (status, answer) = t.post("/api/v1/event/", user, &repeated).await;
        assert!(status.is_success(), "{answer}");
    }
    // A web event of a type with no schema yet: the error log keeps it for the replay below.
    let scroll = t
        .accept(
            "/api/v1/event/",
            user,
            &json!({"session_id": SESSION, "category": "page interaction", "name": "scroll",
                    "data": {"host": "h"}, "timestamp": "2022-04-01 09:15:27"}),
        )
        .await;
    let (status, _) = t
        .post(
            "/api/v1/batch/",
            user,
            &json!({"events": [{"noun": "page", "verb": "viewed", "properties": {"n": 1}}]}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    t.accept("/api/v1/event/", user, &bill(30_000)).await;
    let invalid = t
        .accept(
            "/api/v1/event/",
            user,
            &json!({"noun": "bill", "verb": "paid", "properties": {"amount": "5000"}}),
        )
        .await;
    // A check due after SQS's longest delay (an absence rule of hours): the absence-check
    // function hands it back to the queue until it is due.
    let now = cuba_core::model::clock::SystemClock.now();
    aws_sdk_sqs::Client::new(&t.sdk)
        .send_message()
        .queue_url(
            t.stack
                .provisioned
                .queue_url("AbsenceQueue")
                .expect("the delay queue"),
        )
        .message_body(
            json!({"rule_id": "bill-paid-no-feedback", "user": user, "event_id": paid,
                   "received_at": now.0, "due_at": now.0 + 7_200_000})
            .to_string(),
        )
        .send()
        .await
        .expect("queued");
    // The rules function: the first payment's SMS, absence checks through the delay queue and
    // the absence-check function, the no-feedback alert on the operator topic; the sweeper and
    // the receipts function meanwhile.
    t.expect_operator_alerts(1).await;
    t.accept("/api/v1/feedback/", user, &json!({"rating": 5}))
        .await;
    t.wait_until("the first payment's SMS is delivered", || async {
        t.ledger_for("first-bill-payment")
            .await
            .iter()
            .any(|item| s(item, "status") == "delivered")
    })
    .await;

    // Rules made in the console: one per action on scroll events (fired by their replay, from
    // the admin function), and a grouped one (its group message goes out from the sweeper).
    let first_on = |id: &str, when: serde_json::Value, action: serde_json::Value| {
        json!({"id": id, "version": 0, "when": when, "condition": {"type": "first"},
               "action": action, "message": "user {{user}}"})
    };
    let scroll_type = json!({"kind": "web", "category": "page interaction", "name": "scroll"});
    let payment = json!({"kind": "activity", "noun": "bill", "verb": "paid"});
    for rule in [
        first_on(
            "privilege-scroll-ops",
            scroll_type.clone(),
            json!({"type": "notify_operator"}),
        ),
        first_on(
            "privilege-scroll-sms",
            scroll_type,
            json!({"type": "sms_user"}),
        ),
        first_on(
            "privilege-grouped",
            payment,
            json!({"type": "notify_operator", "group_wait_seconds": 0}),
        ),
    ] {
        let path = format!(
            "/admin/api/rules/{}",
            rule["id"].as_str().unwrap_or_default()
        );
        let (status, answer) = t.admin(Method::PUT, &path, Some(&rule)).await;
        assert!(status.is_success(), "{path}: {answer}");
    }
    // Every function has loaded them (the local rules cache lives a second).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    t.accept("/api/v1/event/", 9_102, &bill(100)).await;
    t.wait_until("the sweeper sends the group message", || async {
        t.ledger_for("privilege-grouped")
            .await
            .iter()
            .any(|item| s(item, "alert_id").contains("#group@") && s(item, "status") == "sent")
    })
    .await;

    // The admin API: every listing and page, rule and schema changes, a replay, silences,
    // backtests, a redrive.
    for path in [
        "/admin/api/rules",
        "/admin/api/rules/first-bill-payment",
        "/admin/api/rules/first-bill-payment/versions",
        "/admin/api/rule-language",
        "/admin/api/rule-health",
        "/admin/api/event-types",
        "/admin/api/schemas",
        "/admin/api/schemas/mobile-bill-paid",
        "/admin/api/schemas/mobile-bill-paid/versions",
        "/admin/api/errors",
        &format!("/admin/api/errors?user={user}"),
        &format!("/admin/api/errors/{user}/{invalid}"),
        "/admin/api/events",
        &format!("/admin/api/events?user={user}"),
        "/admin/api/events?session=d66ac88b-f801-4984-953f-5c6b266494a0",
        "/admin/api/feedback",
        "/admin/api/alerts",
        &format!("/admin/api/alerts?user={user}"),
        "/admin/api/alerts?rule=first-bill-payment",
        &format!("/admin/api/users/{user}"),
        "/admin/api/activity",
        "/admin/api/silences",
        "/admin/api/stream-failures",
    ] {
        let (status, body) = t.admin(Method::GET, path, None).await;
        assert!(status.is_success(), "{path}: {status} {body}");
    }
    let draft = json!({
        "id": "privilege-big-payment",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "first"}, "action": {"type": "notify_operator"},
        "message": "{{user}} paid",
    });
    let mut rule = draft.clone();
    rule["version"] = json!(0);
    let writes = [
        (Method::PUT, "/admin/api/rules/privilege-big-payment", rule),
        (
            Method::PUT,
            "/admin/api/rules/privilege-big-payment/enabled",
            json!({"enabled": false, "version": 1}),
        ),
        (
            Method::POST,
            "/admin/api/rules/test",
            json!({"rule": draft, "user": user, "event": {"noun": "bill", "verb": "paid"}}),
        ),
        (
            Method::POST,
            "/admin/api/rules/backtest",
            json!({"rule": draft}),
        ),
        (
            Method::POST,
            "/admin/api/rules/first-bill-payment/backtest",
            json!({}),
        ),
        (
            Method::POST,
            "/admin/api/schemas/test",
            json!({"schema": {"id": "x", "match": {"kind": "activity", "noun": "bill", "verb": "paid"},
                              "schema": {"type": "object"}},
                   "event": {"noun": "bill", "verb": "paid", "properties": {}}}),
        ),
        (
            Method::PUT,
            "/admin/api/schemas/privilege-scroll",
            json!({"id": "privilege-scroll", "version": 0,
                   "match": {"kind": "web", "category": "page interaction", "name": "scroll"},
                   "schema": {"type": "object"}}),
        ),
        (
            Method::POST,
            &format!("/admin/api/errors/{user}/{invalid}/replay"),
            json!({}),
        ),
        (Method::POST, "/admin/api/errors/replay", json!({})),
        (
            Method::POST,
            &format!("/admin/api/errors/{user}/{scroll}/replay"),
            json!({}),
        ),
        (
            Method::POST,
            "/admin/api/silences",
            json!({"rule_id": "bill-paid-no-feedback", "minutes": 15, "reason": "privilege test"}),
        ),
    ];
    for (method, path, body) in writes {
        let (status, answer) = t.admin(method.clone(), path, Some(&body)).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
    }
    // The replay fired both scroll rules, from the admin function.
    for rule in ["privilege-scroll-sms", "privilege-scroll-ops"] {
        t.wait_until(&format!("the replay's {rule} alert goes out"), || async {
            t.ledger_for(rule)
                .await
                .iter()
                .any(|item| ["sent", "delivered"].contains(&s(item, "status").as_str()))
        })
        .await;
    }
    let (_, silences) = t.admin(Method::GET, "/admin/api/silences", None).await;
    let silence = silences["items"][0]["id"].as_str().expect("the silence");
    let (status, _) = t
        .admin(
            Method::DELETE,
            &format!("/admin/api/silences/{silence}"),
            None,
        )
        .await;
    assert!(status.is_success());
    let (status, _) = t
        .admin(
            Method::DELETE,
            "/admin/api/rules/privilege-big-payment?version=2",
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");

    // A record whose retries ran out, redriven by the console and by the rules function.
    for redrive in 0..2 {
        let failure = crate::redrive::failure_record(&t, &paid).await;
        crate::redrive::queue_failure(&t, &failure.to_string()).await;
        if redrive == 0 {
            let (status, answer) = t
                .admin(
                    Method::POST,
                    "/admin/api/stream-failures/redrive",
                    Some(&json!({})),
                )
                .await;
            assert!(status.is_success(), "{answer}");
        } else {
            let failures = t.stack.rules_redrive.as_ref().expect("a failure queue");
            let report = failures.redrive(&t.stack.stream_handler, 10, None).await;
            assert_eq!(report.messages, 1, "{report:?}");
        }
    }
    // The rules function's smoke test (a deployment's pre-traffic check).
    let report = t.stack.smoke_test.run("privilege").await;
    assert!(report.passed, "{report:?}");
    let used = log.accesses();
    let grants = grants_covering(&t, &used);
    let (clocked, clocked_used) = sweeper_run().await;
    let clocked_grants = grants_covering(&clocked, &clocked_used);
    assert_eq!(grants.len(), clocked_grants.len(), "one template");

    // Unused by both runs.
    let mut idle = Vec::new();
    for (g, a, r) in unused(&grants, &used).intersection(&unused(&clocked_grants, &clocked_used)) {
        let grant = &grants[*g];
        let (action, resource) = (&grant.actions[*a], &grant.resources[*r]);
        let explained = NOT_REQUESTS.iter().any(|(function, x, pattern, _)| {
            *function == grant.function && x == action && resource.contains(pattern)
        });
        if !explained {
            idle.push(format!("{} {action} {resource}", grant.function));
        }
    }
    assert!(
        idle.is_empty(),
        "grants no request of the run used (drop them, or say why in NOT_REQUESTS):\n{}",
        idle.join("\n")
    );
}
