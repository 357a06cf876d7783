//! Quiet hours end to end on the memory ports: an SMS due in the user's night is held in the
//! ledger as `deferred`, the sweeper sends it once the night ends on the user's clock (daylight
//! saving changes included), a redelivered trigger does not send it early or twice, a rule
//! that ignores quiet hours sends at once, and one that would wait past its expiry is settled
//! `expired`. And each SMS goes in its user's language, or the deployment's.

use std::sync::Arc;

use cuba_core::delivery::alert::{Alert, AlertId, AlertStatus, Delivery};
use cuba_core::delivery::alerting::{AlertDispatcher, AlertSweeper, Dispatched, SweepReport};
use cuba_core::delivery::ports::ProfileStore;
use cuba_core::delivery::quiet_hours::{QuietHours, SmsManners};
use cuba_core::model::clock::Clock;
use cuba_core::model::domain::{EventId, Millis, UserId};
use cuba_core::model::locality::{Locale, TimeZoneName};
use cuba_core::rules::{Action, QuietHoursPolicy, RuleId};

use crate::common::World;

/// Milliseconds of an RFC 3339 instant.
fn at(instant: &str) -> Millis {
    let ts: jiff::Timestamp = instant.parse().expect("an instant");
    Millis(u64::try_from(ts.as_millisecond()).expect("after 1970"))
}

fn zone(name: &str) -> TimeZoneName {
    TimeZoneName::parse(name).expect("a zone")
}

/// The world's dispatcher, with 21:00-08:00 quiet hours and `default_zone` for users who
/// named none.
fn dispatcher(w: &World, default_zone: &str) -> AlertDispatcher {
    AlertDispatcher {
        manners: SmsManners {
            quiet: QuietHours::parse("21:00-08:00").ok(),
            default_zone: zone(default_zone),
            default_locale: None,
        },
        ..w.ports.dispatcher(Arc::new(w.clock.clone()))
    }
}

async fn sweep(dispatcher: &AlertDispatcher) -> SweepReport {
    AlertSweeper {
        dispatcher: dispatcher.clone(),
        batch: 100,
    }
    .sweep()
    .await
    .expect("swept")
}

/// Gives user 9 a verified phone and, when `zone_name` is given, a time zone.
async fn user_in(w: &World, zone_name: Option<&str>) {
    w.phone(9).await;
    let mut profile = w
        .ports
        .profiles
        .profile(UserId(9))
        .await
        .expect("read")
        .expect("a profile");
    let version = profile.version;
    profile.time_zone = zone_name.map(zone);
    assert_eq!(w.ports.profiles.save(&profile, version).await, Ok(true));
}

fn sms(w: &World, trigger: &str, action: Action) -> Alert {
    let rule = RuleId::parse("night-owl").expect("a rule id");
    Alert {
        trace: None,
        id: AlertId::for_trigger(&rule, UserId(9), &EventId::parse(trigger).expect("an id")),
        rule_id: rule,
        user: UserId(9),
        event_ids: vec![EventId::parse(trigger).expect("an id")],
        action,
        text: "Your bill is paid".into(),
        translations: Default::default(),
        fired_at: w.clock.now(),
    }
}

#[tokio::test]
async fn an_sms_due_at_night_waits_for_the_users_morning_and_goes_once() {
    let w = World::new();
    user_in(&w, Some("America/Sao_Paulo")).await;
    let dispatcher = dispatcher(&w, "UTC");
    // 23:00 in São Paulo (UTC-3).
    w.clock.set(at("2026-06-11T02:00:00Z"));
    let alert = sms(&w, "p1", Action::SMS_USER);
    let morning = at("2026-06-11T11:00:00Z");
    assert_eq!(
        dispatcher.dispatch(&alert).await,
        Ok(Dispatched::Deferred { until: morning })
    );
    let entry = &w.ledger()[0];
    assert_eq!(entry.status, AlertStatus::Deferred);
    assert_eq!(entry.deliver_at, Some(morning));
    assert!(
        entry
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("21:00-08:00 in America/Sao_Paulo")),
        "{entry:?}"
    );
    assert!(w.ports.notifier.sms().is_empty(), "nothing sent at night");

    // The stream redelivers the trigger: the deferred alert is neither sent nor held again.
    assert_eq!(dispatcher.dispatch(&alert).await, Ok(Dispatched::InFlight));
    w.clock.set(at("2026-06-11T10:59:59Z"));
    assert_eq!(sweep(&dispatcher).await, SweepReport::default());
    assert!(w.ports.notifier.sms().is_empty(), "not before 08:00 there");

    w.clock.set(at("2026-06-11T11:00:30Z"));
    let report = sweep(&dispatcher).await;
    assert_eq!(
        report,
        SweepReport {
            released: 1,
            ..SweepReport::default()
        },
        "released on time, not counted stuck"
    );
    assert_eq!(w.ports.notifier.sms().len(), 1);
    assert_eq!(w.ledger()[0].status, AlertStatus::Sent);
    assert_eq!(w.ledger()[0].deliver_at, None);
    assert_eq!(sweep(&dispatcher).await, SweepReport::default());
    assert_eq!(
        dispatcher.dispatch(&alert).await,
        Ok(Dispatched::AlreadySettled)
    );
    assert_eq!(w.ports.notifier.sms().len(), 1, "sent once");
}

#[tokio::test]
async fn the_morning_after_the_clocks_go_forward_comes_an_hour_sooner() {
    let w = World::new();
    user_in(&w, Some("America/New_York")).await;
    let dispatcher = dispatcher(&w, "UTC");
    // 23:00 EST on 7 March 2026; that night New York skips 02:00-03:00, so 08:00 EDT is
    // 12:00 UTC, eight hours on, not nine.
    w.clock.set(at("2026-03-08T04:00:00Z"));
    let alert = sms(&w, "p1", Action::SMS_USER);
    assert_eq!(
        dispatcher.dispatch(&alert).await,
        Ok(Dispatched::Deferred {
            until: at("2026-03-08T12:00:00Z")
        })
    );
    w.clock.set(at("2026-03-08T11:59:00Z"));
    sweep(&dispatcher).await;
    assert!(w.ports.notifier.sms().is_empty());
    w.clock.set(at("2026-03-08T12:00:01Z"));
    assert_eq!(sweep(&dispatcher).await.released, 1);
    assert_eq!(w.ports.notifier.sms().len(), 1);
}

#[tokio::test]
async fn a_user_without_a_zone_is_read_on_the_deployments_clock() {
    let w = World::new();
    user_in(&w, None).await;
    // 22:00 UTC is 23:00 in Lisbon (summer time, UTC+1): quiet on both clocks, and the night
    // ends at 08:00 on each, which is 07:00 UTC for Lisbon.
    w.clock.set(at("2026-06-10T22:00:00Z"));
    let lisbon = dispatcher(&w, "Europe/Lisbon");
    assert_eq!(
        lisbon.dispatch(&sms(&w, "p1", Action::SMS_USER)).await,
        Ok(Dispatched::Deferred {
            until: at("2026-06-11T07:00:00Z")
        })
    );
    let utc = dispatcher(&w, "UTC");
    assert_eq!(
        utc.dispatch(&sms(&w, "p2", Action::SMS_USER)).await,
        Ok(Dispatched::Deferred {
            until: at("2026-06-11T08:00:00Z")
        })
    );
}

#[tokio::test]
async fn a_rule_that_ignores_quiet_hours_sends_at_once() {
    let w = World::new();
    user_in(&w, Some("America/Sao_Paulo")).await;
    let dispatcher = dispatcher(&w, "UTC");
    w.clock.set(at("2026-06-11T02:00:00Z"));
    let fraud = Action::SmsUser {
        quiet_hours: QuietHoursPolicy::Ignore,
        expires_after_seconds: 600,
    };
    assert!(matches!(
        dispatcher.dispatch(&sms(&w, "p1", fraud)).await,
        Ok(Dispatched::Delivered(Delivery::Sent { .. }))
    ));
    assert_eq!(w.ports.notifier.sms().len(), 1);
}

#[tokio::test]
async fn an_sms_that_would_outlive_its_worth_is_settled_expired_never_sent() {
    let w = World::new();
    user_in(&w, Some("America/Sao_Paulo")).await;
    let dispatcher = dispatcher(&w, "UTC");
    w.clock.set(at("2026-06-11T02:00:00Z"));
    let hour = Action::SmsUser {
        quiet_hours: QuietHoursPolicy::Defer,
        expires_after_seconds: 3600,
    };
    let outcome = dispatcher.dispatch(&sms(&w, "p1", hour)).await;
    assert!(
        matches!(&outcome, Ok(Dispatched::Delivered(Delivery::Expired { reason })) if reason.contains("quiet hours")),
        "{outcome:?}"
    );

    // Held, then the sweep comes late (the sweeper was down): past its expiry by then.
    let six_hours = Action::SmsUser {
        quiet_hours: QuietHoursPolicy::Defer,
        expires_after_seconds: 9 * 3600 + 60,
    };
    let held = sms(&w, "p2", six_hours);
    assert!(matches!(
        dispatcher.dispatch(&held).await,
        Ok(Dispatched::Deferred { .. })
    ));
    w.clock.set(at("2026-06-11T11:02:00Z"));
    assert_eq!(sweep(&dispatcher).await.released, 1);
    let entry = w
        .ledger()
        .into_iter()
        .find(|e| e.alert_id == held.id)
        .expect("the held alert");
    assert_eq!(entry.status, AlertStatus::Expired);
    assert!(
        w.ports.notifier.sms().is_empty(),
        "neither SMS went out: {:?}",
        w.ports.notifier.sms()
    );
}

#[tokio::test]
async fn an_sms_goes_in_the_users_language_else_the_deployments_else_the_default() {
    let w = World::new();
    let dispatcher = AlertDispatcher {
        manners: SmsManners {
            default_locale: Locale::parse("es").ok(),
            ..SmsManners::default()
        },
        ..w.ports.dispatcher(Arc::new(w.clock.clone()))
    };
    let written = |trigger: &str| Alert {
        trace: None,
        translations: [
            (Locale::parse("pt").expect("a tag"), "Conta paga".to_owned()),
            (
                Locale::parse("es").expect("a tag"),
                "Factura pagada".to_owned(),
            ),
        ]
        .into(),
        ..sms(&w, trigger, Action::SMS_USER)
    };
    // pt-PT falls back to pt.
    user_in(&w, None).await;
    set_locale(&w, Some("pt-PT")).await;
    dispatcher.dispatch(&written("p1")).await.expect("sent");
    // None named: the deployment's language.
    set_locale(&w, None).await;
    dispatcher.dispatch(&written("p2")).await.expect("sent");
    // A language the rule does not write: the default text.
    set_locale(&w, Some("de")).await;
    dispatcher.dispatch(&written("p3")).await.expect("sent");
    let texts: Vec<String> = w.ports.notifier.sms().into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["Conta paga", "Factura pagada", "Your bill is paid"]);
    // The ledger keeps every language, and the default as its text.
    let entry = &w.ledger()[0];
    assert_eq!(entry.text, "Your bill is paid");
    assert_eq!(entry.translations.len(), 2);
}

async fn set_locale(w: &World, tag: Option<&str>) {
    let mut profile = w
        .ports
        .profiles
        .profile(UserId(9))
        .await
        .expect("read")
        .expect("a profile");
    let version = profile.version;
    profile.locale = tag.map(|t| Locale::parse(t).expect("a tag"));
    assert_eq!(w.ports.profiles.save(&profile, version).await, Ok(true));
}

#[tokio::test]
async fn a_users_cap_counts_by_their_own_day() {
    let w = World::new();
    user_in(&w, Some("Asia/Tokyo")).await;
    let base = w.ports.dispatcher(Arc::new(w.clock.clone()));
    // The number's rolling cap out of the way, to see the user's.
    let dispatcher = AlertDispatcher {
        sms: cuba_core::delivery::limits::SmsPolicy {
            per_phone: 1000,
            ..base.sms
        },
        ..base
    };
    let cap = dispatcher.sms.per_user;
    // 23:00 in Tokyo (UTC+9) is 14:00 UTC.
    w.clock.set(at("2026-06-11T14:00:00Z"));
    for n in 0..cap {
        let sent = dispatcher
            .dispatch(&sms(&w, &format!("d{n}"), Action::SMS_USER))
            .await;
        assert!(
            matches!(sent, Ok(Dispatched::Delivered(Delivery::Sent { .. }))),
            "{sent:?}"
        );
    }
    w.clock.set(at("2026-06-11T14:59:00Z"));
    let over = dispatcher
        .dispatch(&sms(&w, "over", Action::SMS_USER))
        .await;
    assert!(
        matches!(&over, Ok(Dispatched::Delivered(Delivery::Suppressed { reason })) if reason.contains("on 2026-06-11 (their day)")),
        "{over:?}"
    );
    // 00:01 in Tokyo, still 11 June in UTC: the user's new day has its own cap.
    w.clock.set(at("2026-06-11T15:01:00Z"));
    let next = dispatcher
        .dispatch(&sms(&w, "next-day", Action::SMS_USER))
        .await;
    assert!(
        matches!(next, Ok(Dispatched::Delivered(Delivery::Sent { .. }))),
        "{next:?}"
    );
    assert_eq!(w.ports.notifier.sms().len(), cap as usize + 1);
}
