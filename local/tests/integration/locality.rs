//! Where users live, on the local stack: a user names their zone, an SMS their rule fires in
//! their night waits in the ledger as `deferred` (visible to the admin API with its due time),
//! and the scheduled sweeper sends it once the night ends on their clock; and each SMS goes in
//! the user's language where the rule writes it.

use std::sync::Arc;

use cuba_core::model::clock::{Clock, ManualClock};
use cuba_core::model::locality::TimeZoneName;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Options, TestStack, bill, n, s};

const FIRST: &str = "Thanks for your first bill payment";

/// The wall-clock time in `zone`, `minutes` from now on `clock`, as `HH:MM`.
pub(crate) fn wall_clock(clock: &ManualClock, zone: &TimeZoneName, minutes: i64) -> String {
    let now = jiff::Timestamp::from_millisecond(i64::try_from(clock.now().0).expect("ms"))
        .expect("an instant");
    let then = now
        .checked_add(jiff::SignedDuration::from_mins(minutes))
        .expect("in range")
        .to_zoned_datetime(zone.zone().clone());
    format!("{:02}:{:02}", then.hour(), then.minute())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sms_due_in_the_users_night_waits_in_the_ledger_and_leaves_in_their_morning() {
    let clock = ManualClock::starting_now();
    let zone = TimeZoneName::parse("America/Sao_Paulo").expect("a zone");
    // A night around now on the user's clock (not on UTC's, the deployment's default zone),
    // ending two hours on.
    let window = format!(
        "{}-{}",
        wall_clock(&clock, &zone, -60),
        wall_clock(&clock, &zone, 120)
    );
    let t = TestStack::start_with(Options {
        clock: Arc::new(clock.clone()),
        env: vec![("CUBA_QUIET_HOURS", window.clone())],
        ..Options::default()
    })
    .await;
    let phone = t.register_phone(4).await;
    let (status, profile) = t
        .send(
            reqwest::Method::PUT,
            "/api/v1/user/",
            4,
            &json!({"phone": phone, "time_zone": "America/Sao_Paulo", "locale": "pt-BR"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(
        (&profile["time_zone"], &profile["locale"]),
        (&json!("America/Sao_Paulo"), &json!("pt-BR"))
    );
    let (_, view) = t
        .admin(reqwest::Method::GET, "/admin/api/users/4", None)
        .await;
    assert_eq!(
        view["time_zone"], "America/Sao_Paulo",
        "the admin sees the zone: {view}"
    );

    t.accept("/api/v1/event/", 4, &bill(3000)).await;
    t.wait_for_stream(1).await;
    let entries = t.ledger_for("first-bill-payment").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(s(&entries[0], "status"), "deferred", "{entries:?}");
    let due = n(&entries[0], "deliver_at").expect("a due time");
    let wait_ms = due.saturating_sub(clock.now().0);
    assert!(
        (115 * 60_000..=120 * 60_000).contains(&wait_ms),
        "due when the {window} window ends on the user's clock, two hours on (to the minute): \
         {wait_ms} ms"
    );
    assert!(
        s(&entries[0], "reason").contains(&format!("{window} in America/Sao_Paulo")),
        "{entries:?}"
    );
    let (_, alerts) = t
        .admin(
            reqwest::Method::GET,
            "/admin/api/alerts?user=4&rule=first-bill-payment",
            None,
        )
        .await;
    assert_eq!(alerts["items"][0]["status"], "deferred", "{alerts}");
    assert_eq!(alerts["items"][0]["deliver_at"], due, "{alerts}");

    // The sweeper runs every 2 s here: an hour on, still night, nothing goes.
    clock.advance_seconds(3600);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert!(
        t.sms_to(&phone).await.iter().all(|m| !m.starts_with(FIRST)),
        "held through the night"
    );

    clock.set(cuba_core::model::domain::Millis(due + 1000));
    t.wait_until("the sweeper sends the held SMS", || async {
        t.sms_to(&phone).await.iter().any(|m| m.starts_with(FIRST))
    })
    .await;
    let entries = t.ledger_for("first-bill-payment").await;
    assert_eq!(s(&entries[0], "status"), "sent", "{entries:?}");
    assert!(!entries[0].contains_key("deliver_at"), "{entries:?}");
    // Later sweeps leave it alone: one SMS.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let sent: Vec<String> = t
        .sms_to(&phone)
        .await
        .into_iter()
        .filter(|m| m.starts_with(FIRST))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_user_gets_the_sms_in_their_language_else_the_default() {
    let t = TestStack::start().await;
    let rule = json!({
        "id": "thanks-in-language",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "first"},
        "action": {"type": "sms_user"},
        "message": {
            "default": "Thanks: {{properties.amount}}",
            "pt": "Obrigado: {{properties.amount}}",
            "pt-BR": "Valeu: {{properties.amount}}"
        }
    });
    let (status, created) = t
        .admin(
            reqwest::Method::PUT,
            "/admin/api/rules/thanks-in-language",
            Some(&rule),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, refused) = t
        .admin(
            reqwest::Method::PUT,
            "/admin/api/rules/no-default",
            Some(&json!({"id": "no-default", "when": {"kind": "activity"}, "condition": {"type": "first"},
                         "action": {"type": "sms_user"}, "message": {"pt": "Obrigado"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused.to_string().contains("$.message.default"),
        "{refused}"
    );
    // The local stack re-reads rules every second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let mut phones = Vec::new();
    for (user, locale) in [
        (21, Some("pt-BR")),
        (22, Some("pt-PT")),
        (23, Some("de")),
        (24, None),
    ] {
        let phone = t.register_phone(user).await;
        if let Some(locale) = locale {
            let (status, body) = t
                .send(
                    reqwest::Method::PUT,
                    "/api/v1/user/",
                    user,
                    &json!({"phone": phone, "locale": locale}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        t.accept("/api/v1/event/", user, &bill(700)).await;
        phones.push(phone);
    }
    t.wait_for_stream(4).await;
    let mut texts = Vec::new();
    for phone in &phones {
        let sms = t.sms_to(phone).await;
        texts.push(
            sms.into_iter()
                .filter(|m| m.ends_with(": 700"))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        texts,
        [
            vec!["Valeu: 700"],
            vec!["Obrigado: 700"],
            vec!["Thanks: 700"],
            vec!["Thanks: 700"]
        ],
        "pt-BR, pt-PT falling back to pt, a language the rule lacks, none named"
    );
    let entry = t
        .ledger_for("thanks-in-language")
        .await
        .into_iter()
        .next()
        .expect("an alert");
    assert_eq!(
        s(&entry, "text"),
        "Thanks: 700",
        "the default is the ledger's text"
    );
    let translations = entry
        .get("translations")
        .and_then(|v| v.as_m().ok())
        .expect("the other languages are kept");
    assert_eq!(translations.len(), 2, "{translations:?}");
}
