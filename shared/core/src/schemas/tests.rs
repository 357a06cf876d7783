use super::type_match::glob_matches;
use super::*;
use crate::model::domain::{Activity, EventId, Millis, SessionId, UserId, WebEvent};

fn defaults() -> SchemaSet {
    let text = include_str!("../../../../schemas/default.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    let (set, broken) =
        SchemaSet::from_documents(doc["schemas"].as_array().unwrap().iter().map(|d| (1, d)));
    assert!(broken.is_empty(), "{broken:?}");
    set
}

fn web(category: Option<&str>, name: &str, data: Value, timestamp: u64) -> StoredEvent {
    StoredEvent {
        user: UserId(1),
        id: EventId::parse("e1").unwrap(),
        received_at: Millis(1_700_000_000_000),
        body: EventBody::Web(WebEvent {
            session_id: SessionId::parse("d66ac88b-f801-4984-953f-5c6b266494a0").unwrap(),
            category: category.map(str::to_owned),
            name: name.to_owned(),
            data,
            timestamp: Millis(timestamp),
        }),
    }
}

const T: u64 = 1_699_999_990_000;

fn violations(verdict: Verdict) -> Vec<(String, String)> {
    match verdict {
        Verdict::Valid { .. } => vec![],
        Verdict::Invalid { violations, .. } => {
            violations.into_iter().map(|v| (v.path, v.kind)).collect()
        }
    }
}

#[test]
fn the_seed_web_events_are_valid() {
    let set = defaults();
    let page = json!({"host": "www.cwtech.dev", "path": "/"});
    let click = json!({"host": "www.cwtech.dev", "path": "/", "element": "register"});
    let form = json!({"host": "h", "path": "/", "form": {"first_name": "A", "last_name": "B"}});
    for (category, name, data, schema) in [
        ("page interaction", "pageview", page, "web-pageview"),
        ("page interaction", "link click", click.clone(), "web-click"),
        ("page interaction", "button click", click, "web-click"),
        ("form interaction", "submit", form, "web-form-submit"),
    ] {
        let verdict = set.validate(&web(Some(category), name, data, T));
        assert_eq!(
            verdict,
            Verdict::Valid {
                schema: Some(SchemaRef {
                    id: schema.into(),
                    version: 1
                })
            },
            "{name}"
        );
    }
}

#[test]
fn the_seed_failures_carry_the_right_violations() {
    let set = defaults();
    let cases = [
        (
            web(Some("page interaction"), "pageview", json!({}), T),
            vec![("$.data", "required"), ("$.data", "required")],
        ),
        (
            web(
                Some("page interaction"),
                "pageview",
                json!({"host": "h", "path": "/", "invalid_field": 1}),
                T,
            ),
            vec![("$.data", "unknown_field")],
        ),
        (
            web(Some("page interaction"), "scroll", json!({}), T),
            vec![("$", "no_schema")],
        ),
        (
            web(None, "pageview", json!({"host": "h", "path": "/"}), T),
            vec![("$.category", "missing_category")],
        ),
        (
            web(
                Some("page interaction"),
                "pageview",
                json!({"host": "h", "path": "/"}),
                1_800_000_000_000,
            ),
            vec![("$.timestamp", "future_timestamp")],
        ),
        (
            web(
                Some("form interaction"),
                "submit",
                json!({"host": "h", "path": "/", "form": {"first_name": "A"}}),
                T,
            ),
            vec![("$.data.form", "required")],
        ),
    ];
    for (event, want) in cases {
        let got = violations(set.validate(&event));
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(p, k)| (p.to_owned(), k.to_owned()))
            .collect();
        assert_eq!(got, want, "{:?}", event.body);
    }
    let Verdict::Invalid { violations, .. } = set.validate(&web(
        Some("page interaction"),
        "pageview",
        json!({"host": "h", "path": "/", "invalid_field": 1}),
        T,
    )) else {
        panic!("valid")
    };
    assert_eq!(violations[0].message, "Unknown field(s): invalid_field");
}

#[test]
fn bill_payments_need_a_non_negative_amount_and_a_type() {
    let set = defaults();
    let bill = |properties: Value| StoredEvent {
        user: UserId(1),
        id: EventId::parse("b").unwrap(),
        received_at: Millis(T),
        body: EventBody::Activity(Activity::new(
            "bill",
            "paid",
            properties.as_object().cloned().unwrap_or_default(),
        )),
    };
    assert!(
        set.validate(&bill(json!({"amount": 10, "type": "x"})))
            .is_valid()
    );
    assert_eq!(
        violations(set.validate(&bill(json!({"amount": -1, "type": "x"})))),
        [("$.properties.amount".to_owned(), "minimum".to_owned())]
    );
    assert_eq!(
        violations(set.validate(&bill(json!({"amount": "5"})))),
        [
            ("$.properties".to_owned(), "required".to_owned()),
            ("$.properties.amount".to_owned(), "type".to_owned())
        ]
    );
}

#[test]
fn exact_names_beat_patterns_and_patterns_match_anywhere() {
    let doc = |id: &str, name: &str| {
        json!({"id": id, "match": {"kind": "web", "category": "c", "name": name},
               "accept_without_schema": true})
    };
    let docs = [
        doc("any", "*"),
        doc("clicks", "* click"),
        doc("link", "link click"),
    ];
    let (set, broken) = SchemaSet::from_documents(docs.iter().map(|d| (1, d)));
    assert!(broken.is_empty());
    let id = |name: &str| {
        set.schema_for(&EventType::Web {
            category: Some("c".into()),
            name: name.into(),
        })
        .map(|s| s.id.clone())
    };
    assert_eq!(id("link click").as_deref(), Some("link"));
    assert_eq!(id("button click").as_deref(), Some("clicks"));
    assert_eq!(id("scroll").as_deref(), Some("any"));
    assert!(glob_matches(b"a*b*c", b"aXXbYc"));
    assert!(!glob_matches(b"a*b", b"ac"));
    assert!(glob_matches(b"*", b""));
}

#[test]
fn extra_fields_are_named_with_or_without_declared_properties() {
    let doc = json!({"id": "bare", "match": {"kind": "web", "category": "c", "name": "n"},
                     "schema": {"type": "object", "additionalProperties": false,
                                "$defs": {"inner": {"additionalProperties": false}}}});
    let set = SchemaSet::new(vec![Schema::from_json(&doc, 3).unwrap()]);
    let Verdict::Invalid { schema, violations } =
        set.validate(&web(Some("c"), "n", json!({"extra": 1}), T))
    else {
        panic!("valid")
    };
    assert_eq!(
        schema,
        Some(SchemaRef {
            id: "bare".into(),
            version: 3
        })
    );
    assert_eq!(
        violations,
        [Violation::new(
            "$.data",
            "unknown_field",
            "Unknown field(s): extra"
        )]
    );
}

#[test]
fn a_bad_schema_document_reports_every_problem() {
    let doc = json!({"id": "bad id", "match": {"kind": "web", "name": "x", "extra": 1},
                     "schema": {"type": "nonsense"}, "colour": "red"});
    let problems: Vec<String> = Schema::from_json(&doc, 1)
        .unwrap_err()
        .0
        .into_iter()
        .map(|p| p.path)
        .collect();
    for path in [
        "$.id",
        "$.match.category",
        "$.match.extra",
        "$.schema",
        "$.colour",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(path)),
            "{path} in {problems:?}"
        );
    }
    let both = json!({"id": "x", "match": {"kind": "feedback"}, "schema": {},
                      "accept_without_schema": true});
    assert!(Schema::from_json(&both, 1).is_err());
}
