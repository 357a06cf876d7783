//! The [`ErrorLog`](cuba_core::schemas::ports::ErrorLog) contract.

use cuba_core::model::domain::{Millis, UserId};
use cuba_core::schemas::error_log::{ErrorEntry, ErrorFilter, ErrorStatus};
use cuba_core::schemas::ports::ErrorLog;
use cuba_core::schemas::{SchemaRef, Violation};

use super::{all_pages, at, id};

fn error_entry(user: u64, event: &str, received_at: Millis, kind: &str) -> ErrorEntry {
    let violations = vec![Violation {
        path: "$.properties.amount".into(),
        kind: kind.into(),
        message: "broken".into(),
    }];
    ErrorEntry {
        user: UserId(user),
        id: id(event),
        received_at,
        event_type: "activity bill/paid".into(),
        raw: "{}".into(),
        violation_kinds: vec![kind.into()],
        violations,
        schema: Some(SchemaRef {
            id: "bill-paid".into(),
            version: 1,
        }),
        status: ErrorStatus::Open,
        logged_at: received_at,
        claimed_at: None,
        replayed_at: None,
        replayed_by: None,
    }
}

/// The error log: entries refreshed while open, replays claimed once, stale claims taken over.
pub async fn error_log(log: &dyn ErrorLog, base: Millis) {
    let entry = error_entry(1, "x1", at(base, 1), "invalid_type");
    log.record(&entry).await.expect("recorded");
    assert_eq!(log.get(UserId(1), &id("x1")).await, Ok(Some(entry.clone())));
    let refreshed = ErrorEntry {
        logged_at: at(base, 9),
        ..entry.clone()
    };
    log.record(&refreshed).await.expect("refreshed");
    assert_eq!(
        log.get(UserId(1), &id("x1")).await,
        Ok(Some(refreshed.clone())),
        "an open entry is refreshed"
    );

    let now = at(base, 100_000);
    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), now, at(base, 40_000))
            .await,
        Ok(true)
    );
    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), now, at(base, 40_000))
            .await,
        Ok(false),
        "claimed by a live replayer"
    );
    log.record(&entry).await.expect("a late stream retry");
    let replaying = log
        .get(UserId(1), &id("x1"))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (replaying.status, replaying.claimed_at),
        (ErrorStatus::Replaying, Some(now)),
        "recording leaves a claimed entry alone"
    );
    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), at(base, 200_000), at(base, 100_001))
            .await,
        Ok(true),
        "a stale claim is taken over"
    );
    let still = vec![Violation {
        path: "$.properties.type".into(),
        kind: "missing_field".into(),
        message: "required".into(),
    }];
    log.reopen(UserId(1), &id("x1"), &still, None)
        .await
        .expect("reopened");
    let reopened = log
        .get(UserId(1), &id("x1"))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(reopened.status, ErrorStatus::Open);
    assert_eq!(reopened.violations, still);
    assert_eq!(reopened.violation_kinds, vec!["missing_field".to_owned()]);
    assert_eq!((reopened.schema, reopened.claimed_at), (None, None));
    log.reopen(UserId(1), &id("x1"), &[], None)
        .await
        .expect("reopening an open entry is a no-op");
    assert_eq!(
        log.get(UserId(1), &id("x1"))
            .await
            .expect("read")
            .map(|e| e.violations),
        Some(still)
    );

    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), at(base, 300_000), base)
            .await,
        Ok(true)
    );
    log.mark_replayed(UserId(1), &id("x1"), "ann", at(base, 300_001))
        .await
        .expect("marked");
    let done = log
        .get(UserId(1), &id("x1"))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (
            done.status,
            done.replayed_by.as_deref(),
            done.replayed_at,
            done.claimed_at
        ),
        (
            ErrorStatus::Replayed,
            Some("ann"),
            Some(at(base, 300_001)),
            None
        )
    );
    log.record(&entry).await.expect("a late stream retry");
    assert_eq!(
        log.get(UserId(1), &id("x1"))
            .await
            .expect("read")
            .map(|e| e.status),
        Some(ErrorStatus::Replayed),
        "a replayed entry is never reopened by a retry"
    );
    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), at(base, 900_000), at(base, 900_000))
            .await,
        Ok(false)
    );
    assert_eq!(
        log.claim_replay(UserId(7), &id("none"), now, now).await,
        Ok(false)
    );

    for (i, kind) in ["unknown_field", "invalid_type", "unknown_field"]
        .iter()
        .enumerate()
    {
        let n = u64::try_from(i).unwrap_or(0);
        log.record(&error_entry(2, &format!("y{i}"), at(base, 10 + n), kind))
            .await
            .expect("recorded");
    }
    let filter = |violation: Option<&str>, status| ErrorFilter {
        user: None,
        event_type: None,
        violation: violation.map(str::to_owned),
        status,
        from: base,
        to: at(base, 100),
    };
    let list = |f: ErrorFilter| async move {
        all_pages(2, |cursor| {
            let f = f.clone();
            async move { log.list(&f, 2, cursor.as_deref()).await }
        })
        .await
    };
    let keys = |entries: Vec<ErrorEntry>| -> Vec<String> {
        entries.iter().map(|e| e.id.as_str().to_owned()).collect()
    };
    assert_eq!(
        keys(list(filter(None, None)).await),
        ["y2", "y1", "y0", "x1"],
        "newest first, across pages"
    );
    assert_eq!(
        keys(list(filter(Some("unknown_field"), None)).await),
        ["y2", "y0"]
    );
    assert_eq!(
        keys(list(filter(None, Some(ErrorStatus::Replayed))).await),
        ["x1"]
    );
    let of_type = ErrorFilter {
        event_type: Some("web page interaction/pageview".into()),
        ..filter(None, None)
    };
    assert_eq!(keys(list(of_type).await), Vec::<String>::new());

    // One user's entries come newest first by receipt, not in the order of their ids (a client
    // names its own).
    for (event, second) in [("zb", 20), ("za", 21), ("zc", 22)] {
        log.record(&error_entry(3, event, at(base, second), "invalid_type"))
            .await
            .expect("recorded");
    }
    let of_user = |user| ErrorFilter {
        user: Some(UserId(user)),
        ..filter(None, None)
    };
    assert_eq!(
        keys(list(of_user(3)).await),
        ["zc", "za", "zb"],
        "newest first, across pages"
    );
    assert_eq!(keys(list(of_user(2)).await), ["y2", "y1", "y0"]);
    let open_of_user_1 = ErrorFilter {
        user: Some(UserId(1)),
        ..filter(None, Some(ErrorStatus::Open))
    };
    assert_eq!(keys(list(open_of_user_1).await), Vec::<String>::new());
}
