//! Hot-path costs of the pure core, per operation. Run with
//! `cargo bench -p cuba-local --bench engine`; figures go into docs/src/benchmarks.md by hand.
//! (A plain timing loop rather than criterion keeps `make test` from compiling criterion.)

use std::hint::black_box;
use std::time::{Duration, Instant};

use cuba_core::absence::plan_absence_checks;
use cuba_core::evaluation::decision::{RuleMemory, Viewed, decide};
use cuba_core::intake;
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::{EventBody, EventId, Millis, StoredEvent, UserId};
use cuba_core::rules::{Condition, RuleSet};
use cuba_core::schemas::SchemaSet;
use cuba_core::schemas::{DEFAULT_SCHEMAS, documents_of_file};
use cuba_web::auth::{TokenSecret, TokenVerifier};

const SEED_EVENT: &[u8] = br#"{"user": 1, "ts": "1234567890", "latlong": "76.865, 98.975",
    "noun": "bill", "verb": "paid", "time": 5, "properties": {"amount": 3000, "type": "electricity"}}"#;

fn measure(name: &str, mut op: impl FnMut()) {
    for _ in 0..1_000 {
        op();
    }
    let budget = Duration::from_millis(700);
    let start = Instant::now();
    let mut iterations = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            op();
        }
        iterations += 100;
    }
    let per_op = start.elapsed().as_nanos() as f64 / iterations as f64;
    println!(
        "{name:<58} {per_op:>10.0} ns/op {:>12.0} ops/s",
        1e9 / per_op
    );
}

fn stored(i: u64, amount: u64) -> StoredEvent {
    let submission = intake::parse_activity(SEED_EVENT).expect("seed event parses");
    let mut activity = submission.activity;
    activity.properties.insert("amount".into(), amount.into());
    StoredEvent {
        user: UserId(1),
        id: EventId::parse(&format!("e{i}")).expect("id"),
        received_at: Millis(1_700_000_000_000 + i * 1000),
        body: EventBody::Activity(activity),
    }
}

fn main() {
    let rules = RuleSet::default_rules().expect("default rules");
    let event = stored(0, 3000);
    let view = event.view();
    let burst = &rules.all()[1];
    let Condition::Window(window) = &burst.condition else {
        panic!("seed rule 2 is a window rule");
    };
    let window_100: Vec<_> = (0..100).map(|i| stored(i, 250).view()).collect();
    let verifier = TokenVerifier::new(&TokenSecret::new(vec![7u8; 32]).expect("secret"));
    let token = verifier.issue(UserId(1), SystemClock.now(), 3600);
    let header = format!("Bearer {token}");

    println!("{:<58} {:>16} {:>18}", "operation", "time", "throughput");
    measure(
        "validate the seed event body (intake::parse_activity)",
        || {
            black_box(intake::parse_activity(black_box(SEED_EVENT)).ok());
        },
    );
    measure("verify an HS256 bearer token", || {
        black_box(verifier.verify_header(Some(black_box(&header))).ok());
    });
    provider_tokens();
    measure("event view (the JSON rules address)", || {
        black_box(black_box(&event).view());
    });
    measure("match the 3 seed rules against one event", || {
        black_box(rules.triggered_by(black_box(&view)).count());
    });
    // One rule per pattern operator, plus a `$or`, none matching the seed event: the worst case
    // for a linear matcher, every test evaluated.
    let whens = serde_json::json!([
        {"properties.type": {"prefix": "utility-"}},
        {"properties.type": {"suffix": "-bill"}},
        {"properties.type": {"wildcard": "*tric*-*x*"}},
        {"properties.type": {"anything_but": ["electricity", "gas"]}},
        {"properties.type": {"anything_but": {"prefix": "elec"}}},
        {"properties.type": {"equals_ignore_case": "ELECTRICITY-X"}},
        {"properties.amount": {"numeric": [">=", 5000, "<", 9000]}},
        {"properties.coupon": {"exists": true}},
        {"$or": [{"noun": "topup"}, {"noun": "bill", "verb": "viewed"}]},
        {"properties.type": {"in": ["gas", "water", "rent"]}},
    ]);
    let operator_rules: Vec<serde_json::Value> = whens
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, when)| {
            serde_json::json!({"id": format!("op-{i}"), "when": when, "condition": {"type": "first"},
                "action": {"type": "sms_user"}, "message": "m"})
        })
        .collect();
    let every_operator = RuleSet::from_json(&serde_json::json!({ "rules": operator_rules }))
        .expect("operator rules");
    measure("match 10 rules, one per operator, none matching", || {
        black_box(every_operator.triggered_by(black_box(&view)).count());
    });
    measure("plan absence checks for one event", || {
        let view = black_box(&event).view();
        let triggered: Vec<&cuba_core::rules::Rule> = rules.triggered_by(&view).collect();
        black_box(plan_absence_checks(&triggered, &event, None));
    });
    measure("window totals over 100 events", || {
        black_box(window.totals(&burst.when, black_box(&window_100).iter()));
    });
    let first = &rules.all()[0];
    let trigger = Viewed::of(&event);
    measure(
        "decide the first-payment rule (live: no state read)",
        || {
            black_box(decide(
                first,
                black_box(&trigger),
                &[],
                &RuleMemory::default(),
            ));
        },
    );
    let recent: Vec<_> = (0..5).map(|i| stored(i, 5_000)).collect();
    measure(
        "decide the burst rule over its 5-event window (views built)",
        || {
            let viewed = Viewed::all(black_box(&recent));
            black_box(decide(burst, &viewed[4], &viewed, &RuleMemory::default()));
        },
    );
    // One payment a second for 200 s: the 300 s window grows to hold all 200.
    let history: Vec<_> = (0..200).map(|i| stored(i, 250)).collect();
    measure(
        "backtest the burst rule over 200 events, one a second",
        || {
            black_box(cuba_core::console::backtest::replay(
                burst,
                black_box(&history),
                Millis(0),
                Millis(u64::MAX / 2),
                Millis(u64::MAX / 2),
            ));
        },
    );
    measure("render an alert message", || {
        black_box(burst.render_message(black_box(&event), None));
    });
    measure("event -> DynamoDB item (serde_dynamo)", || {
        black_box(serde_dynamo::to_item::<_, serde_dynamo::Item>(black_box(&event)).ok());
    });
    let item: serde_dynamo::Item = serde_dynamo::to_item(&event).expect("item");
    measure("DynamoDB stream image -> event (serde_dynamo)", || {
        black_box(serde_dynamo::from_item::<_, StoredEvent>(black_box(item.clone())).ok());
    });
    measure("parse the default rule set", || {
        black_box(RuleSet::default_rules().ok());
    });

    let documents = documents_of_file(DEFAULT_SCHEMAS).expect("default schemas");
    let (schemas, _) = SchemaSet::from_documents(documents.iter().map(|d| (1, d)));
    measure("compile the default schema registry (5 schemas)", || {
        black_box(SchemaSet::from_documents(
            black_box(&documents).iter().map(|d| (1, d)),
        ));
    });
    measure("validate a bill payment against its schema", || {
        black_box(schemas.validate(black_box(&event)));
    });
    let click = StoredEvent {
        user: UserId(1),
        id: EventId::parse("w1").expect("id"),
        received_at: Millis(1_700_000_000_000),
        body: match intake::parse_event(WEB_CLICK).expect("web event parses") {
            intake::EventSubmission::Web(w) => EventBody::Web(w.event),
            intake::EventSubmission::Mobile(_) => panic!("the click is a web event"),
        },
    };
    measure(
        "parse the web seed's click envelope (intake::parse_event)",
        || {
            black_box(intake::parse_event(black_box(WEB_CLICK)).ok());
        },
    );
    measure(
        "validate the click against `* click` (pattern lookup)",
        || {
            black_box(schemas.validate(black_box(&click)));
        },
    );
    let mut bad = click.clone();
    if let EventBody::Web(w) = &mut bad.body {
        w.data["invalid_field"] = 1.into();
    }
    measure("validate an invalid click (violations collected)", || {
        black_box(schemas.validate(black_box(&bad)));
    });
}

const WEB_CLICK: &[u8] = br#"{"session_id": "d66ac88b-f801-4984-953f-5c6b266494a0",
    "category": "page interaction", "name": "link click",
    "data": {"host": "www.cwtech.dev", "path": "/", "element": "register"},
    "timestamp": "2022-04-01 09:15:27.243860"}"#;

/// The `oidc` mode's check of a provider's RS256 and ES256 tokens, keys in hand (fetched once
/// from the local stand-in before timing).
fn provider_tokens() {
    use cuba_local::oidc::{LocalIssuer, SigningAlgorithm, TokenRequest};
    use cuba_web::auth::{HttpsFetch, KeyRefresh, OidcIssuer, OidcVerifier};
    use std::sync::Arc;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    for (algorithm, name) in [
        (
            SigningAlgorithm::RS256,
            "verify an identity provider's RS256 token (2048-bit)",
        ),
        (
            SigningAlgorithm::ES256,
            "verify an identity provider's ES256 token (P-256)",
        ),
    ] {
        let (issuer, verifier, header) = runtime.block_on(async {
            let issuer =
                LocalIssuer::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), algorithm)
                    .await
                    .expect("the stand-in issuer");
            let verifier = OidcVerifier::new(
                OidcIssuer {
                    issuer: issuer.url().to_owned(),
                    audience: "bench".into(),
                    jwks_url: None,
                },
                None,
                KeyRefresh::default(),
                Arc::new(HttpsFetch::new().expect("roots")),
            );
            let token = issuer
                .mint(&TokenRequest::new("1", "bench"))
                .expect("a token");
            let header = format!("Bearer {token}");
            verifier
                .verify_user(Some(&header))
                .await
                .expect("the token verifies");
            (issuer, verifier, header)
        });
        measure(name, || {
            black_box(
                runtime
                    .block_on(verifier.verify_user(Some(black_box(&header))))
                    .ok(),
            );
        });
        drop(issuer);
    }
}
