//! The [`AlertLedger`](cuba_core::delivery::ports::AlertLedger) contract: claims, leases, the `sending`
//! mark, settling.

use cuba_core::console::ports::Browse;
use cuba_core::delivery::alert::{
    Alert, AlertFilter, AlertId, AlertStatus, Claim, Delivery, Lease, NoticeClaim,
};
use cuba_core::delivery::grouping::{GROUP_SAMPLE, GroupNotice};
use cuba_core::delivery::ports::AlertLedger;
use cuba_core::delivery::receipts::{ReceiptOutcome, SmsReceipt};
use cuba_core::model::domain::Millis;
use cuba_core::model::domain::UserId;
use cuba_core::model::locality::Locale;
use cuba_core::rules::{Action, Grouping, QuietHoursPolicy, Severity};

use super::{alert, at, trace};

/// Claims, leases, the `sending` mark, settling and releasing: an alert is handed to the
/// provider by one worker, once.
pub async fn alert_ledger(ledger: &dyn AlertLedger, base: Millis) {
    // Not the defaults, so the entry's read-back shows they are kept.
    let sms = Action::SmsUser {
        quiet_hours: QuietHoursPolicy::Ignore,
        expires_after_seconds: 3600,
    };
    let a = alert("ledger-rule", 1, base, sms).in_trace(Some(&trace()));
    let first = Lease::new(at(base, 10_000));
    let lease = first.until;
    let claimed = |lease_until| Ok(Claim::Claimed { lease_until });
    assert_eq!(ledger.claim(&a, base, &first).await, claimed(lease));
    let entry = ledger.entry(&a.id).await.expect("read").expect("kept");
    assert_eq!(entry.trace, Some(trace()), "the trace it fired in is kept");
    assert_eq!(
        entry.alert(),
        a,
        "and given back to whoever delivers it again"
    );
    assert_eq!(
        ledger.claim(&a, base, &first).await,
        claimed(lease),
        "a repeat of the same claim (its answer was lost) is the caller's own"
    );
    let twin = Lease::new(lease);
    assert_eq!(
        ledger.claim(&a, base, &twin).await,
        Ok(Claim::InFlight { lease_until: lease }),
        "another worker claiming in the same millisecond, for the same lease end, does not hold it"
    );
    assert_eq!(
        ledger
            .mark_sending(&a.id, &twin.holder, at(base, 9_000))
            .await,
        Ok(false),
        "so it cannot start sending"
    );
    assert_eq!(
        ledger
            .claim(&a, at(base, 5_000), &Lease::new(at(base, 15_000)))
            .await,
        Ok(Claim::InFlight { lease_until: lease }),
        "held by the first worker"
    );
    assert_eq!(
        ledger.claim(&a, lease, &Lease::new(at(base, 20_000))).await,
        Ok(Claim::InFlight { lease_until: lease }),
        "the lease still holds at its last millisecond"
    );
    let taken = at(base, 30_000);
    assert_eq!(
        ledger.claim(&a, at(base, 10_001), &Lease::new(taken)).await,
        claimed(taken),
        "a lapsed lease is taken over"
    );
    assert_eq!(
        ledger
            .mark_sending(&a.id, &first.holder, at(base, 40_000))
            .await,
        Ok(false),
        "the overtaken worker cannot start sending"
    );
    ledger
        .release(&a.id, "SNS said no")
        .await
        .expect("released");
    let again = Lease::new(at(base, 40_000));
    assert_eq!(
        ledger.claim(&a, at(base, 10_002), &again).await,
        claimed(again.until),
        "a released alert is claimed again at once"
    );
    let sending = at(base, 50_000);
    assert_eq!(
        ledger.mark_sending(&a.id, &again.holder, sending).await,
        Ok(true)
    );
    assert_eq!(
        ledger.mark_sending(&a.id, &again.holder, sending).await,
        Ok(true),
        "a repeat of the mark"
    );
    assert_eq!(
        ledger
            .claim(&a, at(base, 45_000), &Lease::new(at(base, 60_000)))
            .await,
        Ok(Claim::InFlight {
            lease_until: sending
        }),
        "being sent"
    );
    assert_eq!(
        ledger.stuck(at(base, 45_000), 10).await.map(|e| e.len()),
        Ok(0),
        "not stuck while its lease holds"
    );
    let stuck = ledger
        .stuck(at(base, 50_001), 10)
        .await
        .expect("stuck alerts");
    assert_eq!(
        stuck
            .iter()
            .map(|e| (&e.alert_id, e.status))
            .collect::<Vec<_>>(),
        vec![(&a.id, AlertStatus::Sending)]
    );
    assert_eq!(
        ledger
            .claim(&a, at(base, 50_001), &Lease::new(at(base, 60_000)))
            .await,
        Ok(Claim::Abandoned),
        "a lapsed `sending` is never handed out again"
    );
    ledger
        .settle(
            &a.id,
            &Delivery::Sent {
                message_id: "m-1".into(),
            },
            at(base, 10_003),
        )
        .await
        .expect("settled");
    assert_eq!(
        ledger
            .claim(&a, at(base, 99_000), &Lease::new(at(base, 109_000)))
            .await,
        Ok(Claim::AlreadySettled)
    );
    assert_eq!(
        ledger.stuck(at(base, 999_000), 10).await.map(|e| e.len()),
        Ok(0),
        "settled alerts are not stuck"
    );
    ledger
        .release(&a.id, "late")
        .await
        .expect("releasing a settled alert is a no-op");
    assert_eq!(
        ledger
            .claim(&a, at(base, 99_000), &Lease::new(at(base, 109_000)))
            .await,
        Ok(Claim::AlreadySettled),
        "a settled alert stays settled"
    );

    let b = alert(
        "ledger-op",
        2,
        base,
        Action::NotifyOperator {
            severity: Severity::Critical,
            grouping: None,
        },
    );
    assert_eq!(
        ledger.claim(&b, base, &Lease::new(lease)).await,
        claimed(lease)
    );
    let stuck = ledger
        .stuck(at(base, 10_001), 10)
        .await
        .expect("stuck alerts");
    assert_eq!(
        stuck
            .iter()
            .map(|e| (&e.alert_id, e.status))
            .collect::<Vec<_>>(),
        vec![(&b.id, AlertStatus::Pending)],
        "a pending alert past its lease is stuck"
    );
    assert_eq!(stuck[0].action, b.action);
    assert_eq!(stuck[0].text, b.text);
    for (delivery, status) in [
        (
            Delivery::Suppressed {
                reason: "cap".into(),
            },
            AlertStatus::Suppressed,
        ),
        (
            Delivery::Unconfirmed {
                reason: "no answer".into(),
            },
            AlertStatus::Unconfirmed,
        ),
        (
            Delivery::Undeliverable {
                reason: "no phone".into(),
            },
            AlertStatus::Undeliverable,
        ),
    ] {
        ledger
            .settle(&b.id, &delivery, base)
            .await
            .expect("settled");
        assert_eq!(delivery.status(), status);
    }
    assert_eq!(
        ledger
            .claim(&b, at(base, 99_000), &Lease::new(at(base, 109_000)))
            .await,
        Ok(Claim::AlreadySettled)
    );
}

/// Deferral: a claimed SMS held for the user's quiet hours is `deferred` until its due time,
/// nobody can claim it before, and at its due time the sweeper finds it and a claim takes it.
pub async fn alert_deferral(ledger: &dyn AlertLedger, base: Millis) {
    let a = Alert {
        trace: None,
        // Kept with the alert, so the release sends the user's language.
        translations: [(Locale::parse("pt-BR").expect("a tag"), "olá".to_owned())].into(),
        ..alert("ledger-deferred", 3, base, Action::SMS_USER)
    };
    let first = Lease::new(at(base, 10_000));
    assert_eq!(
        ledger.claim(&a, base, &first).await,
        Ok(Claim::Claimed {
            lease_until: first.until
        })
    );
    let due = at(base, 3_600_000);
    let reason = "held for the user's quiet hours (21:00-08:00 in UTC)";
    assert_eq!(
        ledger
            .defer(&a.id, &Lease::new(due).holder, due, reason)
            .await,
        Ok(false),
        "only the claim's holder defers"
    );
    assert_eq!(
        ledger.defer(&a.id, &first.holder, due, reason).await,
        Ok(true)
    );
    assert_eq!(
        ledger.defer(&a.id, &first.holder, due, reason).await,
        Ok(true),
        "a repeat of the deferral (its answer was lost) is the caller's own"
    );
    assert_eq!(
        ledger
            .mark_sending(&a.id, &first.holder, at(base, 20_000))
            .await,
        Ok(false),
        "a deferred alert is not sent by the worker that held it"
    );
    assert_eq!(
        ledger
            .claim(&a, at(base, 60_000), &Lease::new(at(base, 70_000)))
            .await,
        Ok(Claim::InFlight { lease_until: due }),
        "nobody takes it before it is due"
    );
    assert_eq!(
        ledger.stuck(due, 10).await.map(|e| e.len()),
        Ok(0),
        "not due at its last held millisecond"
    );
    let found = ledger.stuck(due.plus_one(), 10).await.expect("due alerts");
    assert_eq!(found.len(), 1, "due: {found:?}");
    assert_eq!(found[0].status, AlertStatus::Deferred);
    assert_eq!(found[0].deliver_at, Some(due));
    assert_eq!(found[0].reason.as_deref(), Some(reason));
    assert_eq!(found[0].action, a.action);
    assert_eq!(found[0].translations, a.translations);
    let release = Lease::new(at(base, 3_700_000));
    assert_eq!(
        ledger.claim(&a, due.plus_one(), &release).await,
        Ok(Claim::Claimed {
            lease_until: release.until
        }),
        "due, it is claimed like a pending one"
    );
    assert_eq!(
        ledger
            .mark_sending(&a.id, &release.holder, at(base, 3_710_000))
            .await,
        Ok(true)
    );
    let sent = Delivery::Sent {
        message_id: "m-deferred".into(),
    };
    ledger
        .settle(&a.id, &sent, at(base, 3_700_500))
        .await
        .expect("settled");
    assert_eq!(
        ledger.stuck(at(base, 9_000_000), 10).await.map(|e| e.len()),
        Ok(0),
        "settled, it is no longer unsettled"
    );
    assert_eq!(
        ledger
            .claim(&a, at(base, 9_000_000), &Lease::new(at(base, 9_100_000)))
            .await,
        Ok(Claim::AlreadySettled)
    );
}

/// Carrier receipts: linked to their alert by message id in either order, applied once each
/// side is known, repeatable; a sent SMS without one is reported overdue once.
pub async fn alert_receipts(ledger: &dyn AlertLedger, browse: &dyn Browse, base: Millis) {
    let sent = |key: &str| alert(key, 4, base, Action::SMS_USER);
    let receipt = |message_id: &str, outcome| SmsReceipt {
        message_id: message_id.into(),
        outcome,
        provider_response: "Message has been accepted by phone carrier".into(),
        price_usd: Some(0.00645),
        dwell_ms: Some(599),
        carrier: Some("My Phone Carrier".into()),
        published_at: base,
    };
    let settle_sent = |a: Alert, message_id: &'static str| async move {
        let lease = Lease::new(at(base, 10_000));
        assert!(matches!(
            ledger.claim(&a, base, &lease).await,
            Ok(Claim::Claimed { .. })
        ));
        assert_eq!(
            ledger
                .mark_sending(&a.id, &lease.holder, at(base, 20_000))
                .await,
            Ok(true)
        );
        let delivery = Delivery::Sent {
            message_id: message_id.into(),
        };
        ledger
            .settle(&a.id, &delivery, at(base, 1_000))
            .await
            .expect("settled");
        a
    };
    // User 4's alerts as the alert browser lists them.
    let entry_of = |id: AlertId| async move {
        let filter = AlertFilter {
            user: Some(UserId(4)),
            rule: None,
            from: base,
            to: at(base, 10),
        };
        let page = browse.alerts(&filter, 50, None).await.expect("listed");
        page.items
            .into_iter()
            .find(|e| e.alert_id == id)
            .expect("the alert is listed")
    };
    let due = at(base, 3_600_000);

    // The link first, then the receipt.
    let first = settle_sent(sent("receipt-after"), "m-after").await;
    assert_eq!(
        ledger.await_receipt(&first.id, "m-after", due).await,
        Ok(None)
    );
    let delivered = receipt("m-after", ReceiptOutcome::Delivered);
    assert_eq!(
        ledger.receive_receipt(&delivered, at(base, 5_000)).await,
        Ok(Some(first.id.clone()))
    );
    ledger
        .apply_receipt(&first.id, &delivered, at(base, 5_000))
        .await
        .expect("applied");
    ledger
        .apply_receipt(&first.id, &delivered, at(base, 5_001))
        .await
        .expect("a duplicate receipt changes nothing");
    let shown = entry_of(first.id.clone()).await;
    assert_eq!(shown.status, AlertStatus::Delivered);
    assert_eq!(
        shown.receipt.as_ref(),
        Some(&delivered),
        "kept whole, price and dwell included"
    );
    assert_eq!(shown.message_id.as_deref(), Some("m-after"));

    // The receipt first (before Cuba recorded the message id): kept, handed to the link.
    let early = receipt("m-before", ReceiptOutcome::Failed);
    assert_eq!(
        ledger.receive_receipt(&early, at(base, 500)).await,
        Ok(None),
        "no alert is linked yet"
    );
    let second = settle_sent(sent("receipt-before"), "m-before").await;
    assert_eq!(
        ledger.await_receipt(&second.id, "m-before", due).await,
        Ok(Some(early.clone())),
        "the link finds the receipt that came first"
    );
    ledger
        .apply_receipt(&second.id, &early, at(base, 1_500))
        .await
        .expect("applied");
    assert_eq!(
        entry_of(second.id.clone()).await.status,
        AlertStatus::Failed
    );

    // No receipt at all: overdue once, after its due time.
    let third = settle_sent(sent("receipt-never"), "m-never").await;
    assert_eq!(
        ledger.await_receipt(&third.id, "m-never", due).await,
        Ok(None)
    );
    assert_eq!(
        ledger.overdue_receipts(due, 10).await.map(|e| e.len()),
        Ok(0)
    );
    let overdue = ledger
        .overdue_receipts(due.plus_one(), 10)
        .await
        .expect("overdue");
    assert_eq!(
        overdue.iter().map(|e| &e.alert_id).collect::<Vec<_>>(),
        [&third.id],
        "only the SMS still without a receipt"
    );
    assert_eq!(overdue[0].status, AlertStatus::Sent);
    assert_eq!(
        ledger
            .overdue_receipts(due.plus_one(), 10)
            .await
            .map(|e| e.len()),
        Ok(0),
        "reported once"
    );
    // A receipt that comes after all still settles it.
    let late = receipt("m-never", ReceiptOutcome::Delivered);
    assert_eq!(
        ledger.receive_receipt(&late, due.plus_one()).await,
        Ok(Some(third.id.clone()))
    );
    ledger
        .apply_receipt(&third.id, &late, due.plus_one())
        .await
        .expect("applied");
    assert_eq!(
        entry_of(third.id.clone()).await.status,
        AlertStatus::Delivered
    );

    // A receipt for an alert that is not a sent SMS settles nothing.
    let unconfirmed = sent("receipt-unconfirmed");
    let lease = Lease::new(at(base, 10_000));
    assert!(matches!(
        ledger.claim(&unconfirmed, base, &lease).await,
        Ok(Claim::Claimed { .. })
    ));
    let reason = Delivery::Unconfirmed {
        reason: "no answer".into(),
    };
    ledger
        .settle(&unconfirmed.id, &reason, base)
        .await
        .expect("settled");
    ledger
        .apply_receipt(&unconfirmed.id, &delivered, base)
        .await
        .expect("no error");
    assert_eq!(
        entry_of(unconfirmed.id.clone()).await.status,
        AlertStatus::Unconfirmed
    );
}

/// Group messages: alerts gather into an open message (created on the first, counted, the
/// first few kept by id); claiming it when due closes it (no alert joins after) and answers
/// its final tally; a grouped alert names the message that carries it.
pub async fn alert_groups(ledger: &dyn AlertLedger, base: Millis) {
    let grouping = Grouping {
        wait_seconds: 30,
        interval_seconds: 300,
    };
    let action = Action::NotifyOperator {
        severity: Severity::Warning,
        grouping: Some(grouping),
    };
    let rule = super::rule("ledger-grouped");
    let due = at(base, 30_000);
    let notice = GroupNotice {
        id: AlertId::group_notice(&rule, 7, 0),
        rule_id: rule.clone(),
        severity: Severity::Warning,
        grouping,
        opened_at: base,
        due,
    };
    let members: Vec<Alert> = (1..=7)
        .map(|n| alert("ledger-grouped", n, at(base, n * 1_000), action))
        .collect();
    for (n, member) in members.iter().enumerate() {
        let lease = Lease::new(at(base, 60_000));
        assert_eq!(
            ledger.claim(member, member.fired_at, &lease).await,
            Ok(Claim::Claimed {
                lease_until: lease.until
            })
        );
        // A later member would open it later and due later: the first one's times stay.
        let later = GroupNotice {
            opened_at: member.fired_at,
            due: due.plus_seconds(n as u64),
            ..notice.clone()
        };
        assert_eq!(
            ledger.gather(&later, member, GROUP_SAMPLE).await,
            Ok(true),
            "member {n} joins the open message"
        );
        ledger
            .settle(
                &member.id,
                &Delivery::Grouped {
                    notice: notice.id.clone(),
                },
                member.fired_at,
            )
            .await
            .expect("settled grouped");
    }
    let open = ledger
        .entry(&notice.id)
        .await
        .expect("read")
        .expect("the message exists");
    assert!(open.is_group_notice());
    assert_eq!(open.status, AlertStatus::Deferred);
    assert_eq!(open.deliver_at, Some(due));
    assert_eq!(open.rule_id, rule);
    assert_eq!(open.action, action);
    assert_eq!(open.fired_at, members[0].fired_at, "opened by the first");
    assert_eq!(open.group.members, Some(7));
    assert_eq!(open.group.first_member_at, Some(members[0].fired_at));
    assert_eq!(open.group.last_member_at, Some(members[6].fired_at));
    let first_ids: Vec<AlertId> = members[..GROUP_SAMPLE]
        .iter()
        .map(|m| m.id.clone())
        .collect();
    assert_eq!(
        open.group.sample, first_ids,
        "the first members are kept by id"
    );
    let grouped = ledger
        .entry(&members[6].id)
        .await
        .expect("read")
        .expect("the member's entry");
    assert_eq!(grouped.status, AlertStatus::Grouped);
    assert_eq!(grouped.group.grouped_in, Some(notice.id.clone()));

    assert_eq!(
        ledger.stuck(due, 10).await.map(|e| e.len()),
        Ok(0),
        "not due at its last held millisecond"
    );
    let found = ledger.stuck(due.plus_one(), 10).await.expect("due");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].is_group_notice());
    let early = Lease::new(at(base, 40_000));
    assert_eq!(
        ledger.claim_notice(&notice.id, due, &early).await,
        Ok(NoticeClaim::Refused(Claim::InFlight { lease_until: due })),
        "nobody takes it before it is due"
    );
    let publisher = Lease::new(at(base, 45_000));
    let claimed = ledger
        .claim_notice(&notice.id, due.plus_one(), &publisher)
        .await
        .expect("claimed");
    let NoticeClaim::Claimed(closed) = claimed else {
        panic!("due, it is claimed: {claimed:?}");
    };
    assert_eq!(closed.group.members, Some(7));
    assert_eq!(closed.group.sample, first_ids);
    assert_eq!(closed.status, AlertStatus::Pending);
    assert!(
        matches!(
            ledger
                .claim_notice(&notice.id, due.plus_one(), &publisher)
                .await,
            Ok(NoticeClaim::Claimed(_))
        ),
        "a repeat of the same claim (its answer was lost) is the caller's own"
    );
    assert_eq!(
        ledger
            .claim_notice(&notice.id, at(base, 40_000), &Lease::new(at(base, 50_000)))
            .await,
        Ok(NoticeClaim::Refused(Claim::InFlight {
            lease_until: publisher.until
        })),
        "another publisher waits for the claim's lease"
    );
    let late = alert("ledger-grouped", 8, at(base, 31_000), action);
    assert_eq!(
        ledger.gather(&notice, &late, GROUP_SAMPLE).await,
        Ok(false),
        "closed: no alert joins a message being published"
    );
    assert_eq!(
        ledger
            .entry(&notice.id)
            .await
            .map(|e| e.and_then(|e| e.group.members)),
        Ok(Some(7))
    );
    // The publisher died before sending: its lapsed claim is taken over.
    let next = Lease::new(at(base, 60_000));
    assert!(matches!(
        ledger
            .claim_notice(&notice.id, at(base, 45_001), &next)
            .await,
        Ok(NoticeClaim::Claimed(_))
    ));
    assert_eq!(
        ledger
            .mark_sending(&notice.id, &next.holder, at(base, 70_000))
            .await,
        Ok(true)
    );
    let sent = Delivery::Sent {
        message_id: "m-group".into(),
    };
    ledger
        .settle(&notice.id, &sent, at(base, 50_000))
        .await
        .expect("settled");
    assert_eq!(
        ledger
            .claim_notice(&notice.id, at(base, 90_000), &Lease::new(at(base, 99_000)))
            .await,
        Ok(NoticeClaim::Refused(Claim::AlreadySettled))
    );
    assert_eq!(ledger.gather(&notice, &late, GROUP_SAMPLE).await, Ok(false));
    let settled = ledger.entry(&notice.id).await.expect("read").expect("kept");
    assert_eq!(settled.status, AlertStatus::Sent);
    assert_eq!(settled.group.members, Some(7), "the tally stays with it");
    assert_eq!(
        ledger.stuck(at(base, 9_000_000), 10).await.map(|e| e.len()),
        Ok(0)
    );
}
