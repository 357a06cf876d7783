use super::*;
use crate::model::domain::{
    Activity, EventBody, EventId, Feedback, Millis, Rating, SessionId, StoredEvent, UserId,
    WebEvent,
};
use crate::rules::{Action, QuietHoursPolicy, Rule, WindowTotals};
use serde_json::{Value, json};

fn rule(when: Value, condition: Value, action: Value) -> Result<Rule, Vec<String>> {
    Rule::from_json(
        &json!({"id": "r", "when": when, "condition": condition, "action": action,
                "message": "m"}),
        "$",
    )
    .map_err(|e| {
        e.0.iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    })
}

#[test]
fn every_operator_described_is_accepted_with_its_example() {
    for op in OPERATORS {
        let operand: Value = serde_json::from_str(op.example).expect(op.name);
        let when = json!({"properties.x": {op.name: operand}});
        rule(when, json!({"type": "first"}), json!({"type": "sms_user"}))
            .unwrap_or_else(|e| panic!("{}: {e:?}", op.name));
    }
    let unknown = rule(
        json!({"x": {"regex": "a"}}),
        json!({"type": "first"}),
        json!({"type": "sms_user"}),
    )
    .unwrap_err();
    assert!(unknown[0].contains(&operator_names()), "{unknown:?}");
}

#[test]
fn every_condition_field_described_is_accepted_and_nothing_else() {
    for spec in CONDITIONS {
        let mut condition = serde_json::Map::new();
        condition.insert("type".into(), json!(spec.kind));
        for field in spec.fields {
            let value = match field.input {
                FieldInput::Seconds => json!(field.max.expect("seconds have a maximum")),
                FieldInput::Count => json!(3),
                FieldInput::Sum => json!({"field": "properties.amount", "at_least": 1}),
                FieldInput::Distinct => json!({"field": "properties.merchant", "at_least": 2}),
                FieldInput::Pattern => json!({"kind": "feedback"}),
                FieldInput::Choice => json!(field.choices[0]),
                // Across users: every other window field (`count_at_most` too) holds there.
                FieldInput::GroupBy => json!("all"),
            };
            condition.insert(field.name.into(), value);
        }
        // Every condition notifies the operator (a heartbeat cannot text anyone).
        let when = json!({"kind": "activity"});
        rule(
            when.clone(),
            Value::Object(condition.clone()),
            json!({"type": "notify_operator"}),
        )
        .unwrap_or_else(|e| panic!("{}: {e:?}", spec.kind));
        // Past the described maximum is refused.
        for field in spec.fields.iter().filter(|f| f.max.is_some()) {
            let mut over = condition.clone();
            over.insert(
                field.name.into(),
                json!(field.max.map(|m| u64::from(m) + 1)),
            );
            assert!(
                rule(
                    when.clone(),
                    Value::Object(over),
                    json!({"type": "notify_operator"})
                )
                .is_err(),
                "{} {}",
                spec.kind,
                field.name
            );
        }
        condition.insert("undescribed".into(), json!(1));
        assert!(
            rule(
                when,
                Value::Object(condition),
                json!({"type": "notify_operator"})
            )
            .is_err(),
            "{}",
            spec.kind
        );
    }
}

#[test]
fn actions_and_severities_described_are_the_ones_parsed() {
    for action in ACTIONS {
        let mut doc = json!({"type": action.kind});
        if action.severity {
            for severity in SEVERITIES {
                doc["severity"] = json!(severity);
                let parsed = rule(json!({}), json!({"type": "first"}), doc.clone()).unwrap();
                assert_eq!(
                    parsed.action,
                    Action::NotifyOperator {
                        severity,
                        grouping: None
                    }
                );
            }
            doc.as_object_mut().map(|o| o.remove("severity"));
            let parsed = rule(json!({}), json!({"type": "first"}), doc).unwrap();
            assert_eq!(
                parsed.action,
                Action::NotifyOperator {
                    severity: DEFAULT_SEVERITY,
                    grouping: None
                }
            );
        } else {
            rule(json!({}), json!({"type": "first"}), doc).unwrap();
        }
        // Every described field takes each of its values (choices) or its bounds (seconds),
        // and refuses what is past them.
        for field in action.fields {
            let mut takes: Vec<Value> = field.choices.iter().map(|c| json!(c)).collect();
            takes.extend(field.min.map(|m| json!(m)));
            takes.extend(field.max.map(|m| json!(m)));
            for value in takes {
                let mut with = json!({"type": action.kind});
                with[field.name] = value.clone();
                rule(json!({}), json!({"type": "first"}), with)
                    .unwrap_or_else(|e| panic!("{} {value}: {e:?}", field.name));
            }
            let mut refused = vec![json!("neither")];
            refused.extend(field.max.map(|m| json!(u64::from(m) + 1)));
            refused.extend(field.min.filter(|m| *m > 0).map(|m| json!(m - 1)));
            for value in refused {
                let mut with = json!({"type": action.kind});
                with[field.name] = value.clone();
                assert!(
                    rule(json!({}), json!({"type": "first"}), with).is_err(),
                    "{} {value}",
                    field.name
                );
            }
        }
    }
    let ignore = rule(
        json!({}),
        json!({"type": "first"}),
        json!({"type": "sms_user", "quiet_hours": "ignore", "expires_after_seconds": 600}),
    )
    .unwrap();
    assert_eq!(
        ignore.action,
        Action::SmsUser {
            quiet_hours: QuietHoursPolicy::Ignore,
            expires_after_seconds: 600
        }
    );
    let defaults = rule(
        json!({}),
        json!({"type": "first"}),
        json!({"type": "sms_user"}),
    )
    .unwrap();
    assert_eq!(defaults.action, Action::SMS_USER);
}

#[test]
fn event_kinds_described_are_the_views_fields() {
    let body = |kind: &str| match kind {
        "activity" => EventBody::Activity(Activity {
            noun: "bill".into(),
            verb: "paid".into(),
            ts: Some(Millis(1)),
            latlong: Some("1,2".into()),
            time: Some(1.0),
            properties: serde_json::Map::new(),
        }),
        "web" => EventBody::Web(WebEvent {
            session_id: SessionId::parse("d66ac88b-f801-4984-953f-5c6b266494a0").unwrap(),
            category: Some("c".into()),
            name: "n".into(),
            data: json!({}),
            timestamp: Millis(1),
        }),
        _ => EventBody::Feedback(Feedback {
            rating: Rating::try_from(3).unwrap(),
            comment: Some("ok".into()),
        }),
    };
    for spec in EVENT_KINDS {
        let event = StoredEvent {
            user: UserId(1),
            id: EventId::parse("e").unwrap(),
            received_at: Millis(2),
            body: body(spec.kind),
        };
        let view = event.view();
        assert_eq!(view["kind"], json!(spec.kind));
        for field in spec.fields.iter().chain(spec.type_fields) {
            assert!(
                view.get(*field).is_some(),
                "{}: {field} in {view}",
                spec.kind
            );
        }
        if !spec.payload.is_empty() {
            assert!(view.get(spec.payload).is_some(), "{}", spec.kind);
        }
        let mut described: Vec<&str> = spec.fields.to_vec();
        if !spec.payload.is_empty() {
            described.push(spec.payload);
        }
        let keys: Vec<&str> = view
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in keys {
            assert!(described.contains(&key), "{}: undescribed {key}", spec.kind);
        }
    }
}

#[test]
fn described_placeholders_are_filled() {
    let r = Rule::from_json(
        &json!({"id": "r", "when": {}, "condition": {"type": "first"},
                "action": {"type": "sms_user"},
                "message": "{{rule_id}} {{window.count}} {{window.sum}} {{window.distinct}}"}),
        "$",
    )
    .unwrap();
    let event = StoredEvent {
        user: UserId(1),
        id: EventId::parse("e").unwrap(),
        received_at: Millis(2),
        body: EventBody::Feedback(Feedback {
            rating: Rating::try_from(3).unwrap(),
            comment: None,
        }),
    };
    let text = r.render_message(
        &event,
        Some(&WindowTotals {
            count: 4,
            sum: 5.0,
            distinct: 2,
        }),
    );
    assert_eq!(text, "r 4 5 2");
    assert_eq!(WINDOW_PLACEHOLDERS.len(), 3);
}
