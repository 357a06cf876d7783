use super::*;
use crate::model::domain::{Activity, EventBody, EventId, Millis, UserId};

fn bill(id: &str, amount: u64) -> StoredEvent {
    StoredEvent {
        user: UserId(1),
        id: EventId::parse(id).unwrap(),
        received_at: Millis(1),
        body: EventBody::Activity(Activity::new(
            "bill",
            "paid",
            json!({"amount": amount, "type": "electricity"})
                .as_object()
                .cloned()
                .unwrap(),
        )),
    }
}

#[test]
fn the_budget_rule_id_is_reserved_and_placeholder_length_is_checked() {
    let rule = |extra: Value| {
        let mut r = json!({"id": "r", "when": {}, "condition": {"type": "first"},
            "action": {"type": "sms_user"}, "message": "{{properties.type}}"});
        if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
            r.extend(extra.clone());
        }
        Rule::from_json(&r, "$")
    };
    for id in RESERVED_RULE_IDS {
        let reserved = rule(json!({ "id": id })).unwrap_err();
        assert_eq!(reserved.0[0].path, "$.id");
    }
    for bad in [json!(0), json!(501), json!("64"), json!(1.5)] {
        let error = rule(json!({"placeholder_chars": bad})).unwrap_err();
        assert_eq!(error.0[0].path, "$.placeholder_chars", "{bad}");
    }
    let narrow = rule(json!({"placeholder_chars": 3})).expect("valid");
    assert_eq!(narrow.message.placeholder_chars(), 3);
    assert_eq!(
        rule(json!({})).expect("valid").message.placeholder_chars(),
        DEFAULT_PLACEHOLDER_CHARS
    );
}

#[test]
fn the_default_rules_are_the_three_seed_rules() {
    let rules = RuleSet::default_rules().unwrap();
    let conditions: Vec<_> = rules.all().iter().map(|r| &r.condition).collect();
    assert!(matches!(conditions[0], Condition::First));
    match conditions[1] {
        Condition::Window(w) => {
            assert_eq!(w.seconds.get(), 300);
            assert!(
                w.threshold.count() == Some(5)
                    && w.threshold.sum().is_some_and(|s| s.at_least == 20000.0)
                    && w.threshold.distinct().is_none()
            );
        }
        other => panic!("expected a window, got {other:?}"),
    }
    match conditions[2] {
        Condition::Absence(a) => assert_eq!(a.seconds.get(), 900),
        other => panic!("expected an absence, got {other:?}"),
    }
    assert!(rules.all().iter().all(|r| r.enabled));
}

#[test]
fn the_demo_rules_differ_only_in_the_absence_window() {
    let demo = RuleSet::from_json_str(include_str!("../../../../rules/demo.json")).unwrap();
    let default = RuleSet::default_rules().unwrap();
    assert_eq!(demo.all().len(), default.all().len());
    for (d, r) in demo.all().iter().zip(default.all()) {
        assert_eq!(
            (&d.id, &d.when, &d.action, &d.message),
            (&r.id, &r.when, &r.action, &r.message)
        );
    }
    assert!(matches!(&demo.all()[2].condition, Condition::Absence(a) if a.seconds.get() == 30));
}

#[test]
fn window_needs_count_and_sum_when_both_are_set() {
    let rules = RuleSet::default_rules().unwrap();
    let burst = &rules.all()[1];
    let Condition::Window(w) = &burst.condition else {
        panic!("seed rule 2 is a window");
    };
    let views = |amounts: &[u64]| -> Vec<Value> {
        amounts
            .iter()
            .enumerate()
            .map(|(i, a)| bill(&format!("e{i}"), *a).view())
            .collect()
    };
    let four_big = views(&[9000, 9000, 9000, 9000]);
    let five_small = views(&[100, 100, 100, 100, 100]);
    let five_big = views(&[4000, 4000, 4000, 4000, 4000]);
    for (events, met) in [(&four_big, false), (&five_small, false), (&five_big, true)] {
        let totals = w.totals(&burst.when, events.iter());
        assert_eq!(w.is_met(&totals), met, "{totals:?}");
    }
    let mut mixed = five_big.clone();
    mixed.push(json!({"kind": "feedback", "rating": 5}));
    assert_eq!(
        w.totals(&burst.when, mixed.iter()),
        WindowTotals {
            count: 5,
            sum: 20000.0,
            distinct: 0,
        }
    );
}

#[test]
fn messages_render_event_fields_and_window_totals() {
    let rule = Rule::from_json(
        &json!({"id": "r", "when": {}, "condition": {"type": "first"}, "action": {"type": "sms_user"},
                "message": "{{rule_id}}: user {{user}} paid {{properties.amount}} ({{window.count}}, {{window.sum}})"}),
        "$",
    )
    .unwrap();
    let text = rule.render_message(
        &bill("e1", 3000),
        Some(&WindowTotals {
            count: 5,
            sum: 23000.0,
            distinct: 0,
        }),
    );
    assert_eq!(text, "r: user 1 paid 3000 (5, 23000)");
    assert!(
        rule.render_translations(&bill("e1", 3000), None).is_empty(),
        "one language: nothing else rendered"
    );
}

#[test]
fn a_message_per_language_renders_each_from_the_same_context() {
    let rule = Rule::from_json(
        &json!({"id": "r", "when": {}, "condition": {"type": "first"}, "action": {"type": "sms_user"},
                "placeholder_chars": 3,
                "message": {"default": "Paid {{properties.amount}} ({{window.count}})",
                            "pt-br": "Pagou {{properties.amount}} ({{window.count}})"}}),
        "$",
    )
    .unwrap();
    let totals = WindowTotals {
        count: 5,
        sum: 1.0,
        distinct: 0,
    };
    assert_eq!(
        rule.render_message(&bill("e1", 3000), Some(&totals)),
        "Paid 30… (5)"
    );
    let translations = rule.render_translations(&bill("e1", 3000), Some(&totals));
    assert_eq!(
        translations.into_iter().collect::<Vec<_>>(),
        [(
            crate::model::locality::Locale::parse("pt-BR").unwrap(),
            "Pagou 30… (5)".to_owned()
        )],
        "canonical tags, and the rule's placeholder length in every language"
    );
}

#[test]
fn every_problem_in_a_rule_set_is_reported() {
    let err = RuleSet::from_json(&json!({"rules": [
        {"id": "Bad Id", "when": {"x": {"gte": "a"}}, "condition": {"type": "window", "seconds": 0},
         "action": {"type": "email"}, "message": "{{oops", "extra": 1},
        {"id": "ok", "when": {}, "condition": {"type": "absence", "seconds": 10},
         "action": {"type": "notify_operator", "severity": "loud"}, "message": "m"},
        {"id": "ok", "when": {}, "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"},
        {"id": "ok", "when": {}, "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"}
    ]}))
    .unwrap_err();
    let paths: Vec<&str> = err.0.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "$.rules[0].extra",
            "$.rules[0].id",
            "$.rules[0].when[\"x\"].gte",
            "$.rules[0].condition.seconds",
            "$.rules[0].condition",
            "$.rules[0].action.type",
            "$.rules[0].message",
            "$.rules[1].condition.expect",
            "$.rules[1].action.severity",
            "$.rules[3].id",
        ]
    );
}

#[test]
fn limits_on_durations() {
    let window = |seconds: u64| {
        Rule::from_json(
            &json!({"id": "w", "when": {}, "action": {"type": "sms_user"}, "message": "m",
                    "condition": {"type": "window", "seconds": seconds, "count_at_least": 2}}),
            "$",
        )
    };
    assert!(window(86_400).is_ok());
    assert!(window(86_401).is_err());
    let Ok(Rule {
        condition: Condition::Window(w),
        ..
    }) = window(60)
    else {
        panic!("valid window");
    };
    assert_eq!(
        w.cooldown_seconds, 60,
        "cooldown defaults to the window length"
    );
}

#[test]
fn disabled_rules_never_trigger() {
    let rules = RuleSet::from_json(&json!({"rules": [
        {"id": "on", "when": {"noun": "bill"}, "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"},
        {"id": "off", "enabled": false, "when": {"noun": "bill"}, "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"}
    ]}))
    .unwrap();
    let view = bill("e", 1).view();
    let ids: Vec<&str> = rules.triggered_by(&view).map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["on"]);
}

#[test]
fn an_operator_rule_groups_its_alerts_when_it_names_a_wait_or_an_interval() {
    let action = |action: Value| {
        Rule::from_json(
            &json!({"id": "g", "when": {}, "condition": {"type": "first"}, "message": "m",
                    "action": action}),
            "$",
        )
        .map(|rule| rule.action)
    };
    assert_eq!(
        action(json!({"type": "notify_operator"})),
        Ok(Action::NotifyOperator {
            severity: Severity::Warning,
            grouping: None
        }),
        "one message per alert unless asked"
    );
    assert_eq!(
        action(json!({"type": "notify_operator", "group_wait_seconds": 0})),
        Ok(Action::NotifyOperator {
            severity: Severity::Warning,
            grouping: Some(Grouping {
                wait_seconds: 0,
                interval_seconds: DEFAULT_GROUP_INTERVAL_SECONDS
            })
        })
    );
    assert_eq!(
        action(
            json!({"type": "notify_operator", "severity": "info", "group_interval_seconds": 600})
        ),
        Ok(Action::NotifyOperator {
            severity: Severity::Info,
            grouping: Some(Grouping {
                wait_seconds: DEFAULT_GROUP_WAIT_SECONDS,
                interval_seconds: 600
            })
        })
    );
    let problems = |a: Value| -> Vec<String> {
        action(a)
            .unwrap_err()
            .0
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    };
    assert_eq!(
        problems(
            json!({"type": "notify_operator", "group_interval_seconds": 30, "severity": "loud"})
        ),
        [
            "$.action.severity: must be info, warning or critical",
            "$.action.group_interval_seconds: must be whole seconds from 60 to 86400",
        ]
    );
    assert_eq!(
        problems(json!({"type": "sms_user", "group_wait_seconds": 30})),
        ["$.action.group_wait_seconds: not a field of `sms_user`"]
    );
}

#[test]
fn a_heartbeat_watches_everyone_so_it_can_only_notify_the_operator() {
    let rule = |action: Value, seconds: u64| {
        Rule::from_json(
            &json!({"id": "h", "when": {"kind": "activity"}, "message": "m", "action": action,
                    "condition": {"type": "heartbeat", "seconds": seconds}}),
            "$",
        )
    };
    let watched = rule(json!({"type": "notify_operator"}), 600).unwrap();
    let Condition::Heartbeat(heartbeat) = watched.condition else {
        panic!("a heartbeat");
    };
    assert!(!heartbeat.is_silent(Millis(0), Millis(600_000)));
    assert!(heartbeat.is_silent(Millis(0), Millis(600_001)));
    let paths = |r: Result<Rule, InvalidDocument>| -> Vec<String> {
        r.unwrap_err().0.into_iter().map(|p| p.path).collect()
    };
    assert_eq!(
        paths(rule(json!({"type": "sms_user"}), 600)),
        ["$.action.type"]
    );
    assert_eq!(
        paths(rule(json!({"type": "notify_operator"}), 59)),
        ["$.condition.seconds"]
    );
}

#[test]
fn a_distinct_window_counts_different_values_of_its_field() {
    let rule = Rule::from_json(
        &json!({"id": "card-testing", "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
                "condition": {"type": "window", "seconds": 600, "count_at_least": 3,
                              "distinct": {"field": "properties.merchant", "at_least": 3}},
                "action": {"type": "notify_operator"},
                "message": "{{user}} paid {{window.distinct}} merchants"}),
        "$",
    )
    .unwrap();
    let Condition::Window(w) = &rule.condition else {
        panic!("a window rule");
    };
    let paid = |merchant: Value| {
        json!({"kind": "activity", "noun": "bill", "verb": "paid",
                                        "properties": {"merchant": merchant}})
    };
    // Text as it is, numbers by value, no value for a missing or structured field.
    let events = [
        paid(json!("acme")),
        paid(json!("acme")),
        paid(json!(7)),
        paid(json!(7.0)),
        paid(json!(null)),
        paid(json!(["acme", "zeta"])),
    ];
    let totals = w.totals(&rule.when, events.iter());
    assert_eq!((totals.count, totals.distinct), (6, 2));
    assert!(!w.is_met(&totals), "two merchants of the three");
    let with_third = [paid(json!("zeta")), paid(json!("acme")), paid(json!(7))];
    let met = w.totals(&rule.when, with_third.iter());
    assert_eq!((met.count, met.distinct), (3, 3));
    assert!(w.is_met(&met));
    // Every threshold given must hold: three merchants in two payments cannot be.
    assert!(!w.is_met(&WindowTotals {
        count: 2,
        sum: 0.0,
        distinct: 3
    }));
    // A long value is told apart by its hash, so members stay small.
    let long = "x".repeat(100);
    assert_eq!(
        distinct_value(Some(&json!(long))),
        distinct_value(Some(&json!("x".repeat(100))))
    );
    assert_ne!(
        distinct_value(Some(&json!(long))),
        distinct_value(Some(&json!("x".repeat(99))))
    );
    assert!(distinct_value(Some(&json!(long))).is_some_and(|v| v.len() == 17));
}

#[test]
fn a_distinct_threshold_needs_a_field_and_at_least_two_values() {
    let problems = |distinct: Value| {
        Rule::from_json(
            &json!({"id": "r", "when": {"kind": "activity"},
                    "condition": {"type": "window", "seconds": 60, "distinct": distinct},
                    "action": {"type": "notify_operator"}, "message": "m"}),
            "$",
        )
        .unwrap_err()
        .0
        .into_iter()
        .map(|p| p.path)
        .collect::<Vec<_>>()
    };
    assert_eq!(
        problems(json!({"field": "properties.merchant", "at_least": 1})),
        ["$.condition.distinct.at_least"]
    );
    assert_eq!(
        problems(json!({"at_least": 3})),
        ["$.condition.distinct.field"]
    );
    assert_eq!(
        problems(json!({"field": "properties.merchant", "at_least": 3, "over": 1})),
        ["$.condition.distinct.over"]
    );
    // A rule without `distinct` keeps the window buckets it had: its definition is unchanged.
    let definition = |condition: Value| {
        let rule = Rule::from_json(
            &json!({"id": "r", "when": {"kind": "activity"}, "condition": condition,
                    "action": {"type": "notify_operator"}, "message": "m"}),
            "$",
        )
        .unwrap();
        match rule.condition {
            Condition::Window(w) => w.definition,
            _ => panic!("a window"),
        }
    };
    let plain = json!({"type": "window", "seconds": 60, "count_at_least": 2});
    let mut with_distinct = plain.clone();
    with_distinct["distinct"] = json!({"field": "properties.merchant", "at_least": 2});
    assert_ne!(definition(plain.clone()), definition(with_distinct));
    assert_eq!(
        definition(plain),
        crate::model::domain::stable_hash("{\"kind\":\"activity\"}\u{1f}60\u{1f}".as_bytes()),
        "the definition as it was before `distinct`"
    );
}
