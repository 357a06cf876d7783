//! The [`ProfileStore`](cuba_core::delivery::ports::ProfileStore) contract.

use cuba_core::delivery::ports::ProfileStore;
use cuba_core::model::domain::{Millis, PendingCode, PhoneNumber, UserId, UserProfile};
use cuba_core::model::locality::{Locale, TimeZoneName};

use super::at;

/// Profiles: written with optimistic concurrency on their version.
pub async fn profile_store(store: &dyn ProfileStore, base: Millis) {
    assert_eq!(store.profile(UserId(5)).await, Ok(None));
    let phone = |raw: &str| PhoneNumber::parse(raw).expect("a phone number");
    let profile = UserProfile {
        user: UserId(5),
        phone: phone("+15555550100"),
        updated_at: base,
        phone_verified: false,
        pending_code: Some(PendingCode {
            hash: "h".into(),
            expires_at: at(base, 600_000),
            attempts_left: 5,
        }),
        codes_sent: vec![base],
        time_zone: None,
        locale: None,
        version: 0,
    };
    assert_eq!(store.save(&profile, 0).await, Ok(true));
    let stored = UserProfile {
        version: 1,
        ..profile.clone()
    };
    assert_eq!(store.profile(UserId(5)).await, Ok(Some(stored.clone())));
    assert_eq!(
        store.save(&profile, 0).await,
        Ok(true),
        "a repeat of the same write (its answer was lost) is the writer's own"
    );
    let rival = UserProfile {
        phone: phone("+15555550111"),
        ..profile.clone()
    };
    assert_eq!(
        store.save(&rival, 0).await,
        Ok(false),
        "a writer that read no profile loses to the one that created it"
    );
    let changed = UserProfile {
        phone: phone("+15555550199"),
        phone_verified: true,
        pending_code: None,
        updated_at: at(base, 1),
        // Kept as their names, and read back as the same zone and tag.
        time_zone: TimeZoneName::parse("America/Sao_Paulo").ok(),
        locale: Locale::parse("pt-BR").ok(),
        ..stored
    };
    assert!(changed.time_zone.is_some() && changed.locale.is_some());
    assert_eq!(store.save(&changed, 1).await, Ok(true));
    let stale = UserProfile {
        phone_verified: false,
        ..changed.clone()
    };
    assert_eq!(
        store.save(&stale, 1).await,
        Ok(false),
        "a stale version loses"
    );
    assert_eq!(
        store.profile(UserId(5)).await,
        Ok(Some(UserProfile {
            version: 2,
            ..changed
        }))
    );
}

/// Verification attempts: spent one at a time, atomically, only on the code still pending.
pub async fn code_attempts(store: &dyn ProfileStore, base: Millis) {
    assert_eq!(
        store.spend_attempt(UserId(6), "h").await,
        Ok(None),
        "no profile, nothing to spend"
    );
    let profile = UserProfile {
        user: UserId(6),
        phone: PhoneNumber::parse("+15555550106").expect("a phone number"),
        updated_at: base,
        phone_verified: false,
        pending_code: Some(PendingCode {
            hash: "h".into(),
            expires_at: at(base, 600_000),
            attempts_left: 2,
        }),
        codes_sent: vec![base],
        time_zone: None,
        locale: None,
        version: 0,
    };
    assert_eq!(store.save(&profile, 0).await, Ok(true));
    assert_eq!(
        store.spend_attempt(UserId(6), "another code").await,
        Ok(None),
        "a code that is no longer pending has nothing to spend"
    );
    assert_eq!(store.spend_attempt(UserId(6), "h").await, Ok(Some(1)));
    assert_eq!(store.spend_attempt(UserId(6), "h").await, Ok(Some(0)));
    assert_eq!(
        store.spend_attempt(UserId(6), "h").await,
        Ok(None),
        "none left"
    );
    let stored = store.profile(UserId(6)).await.expect("read").expect("kept");
    assert_eq!(stored.pending_code.map(|code| code.attempts_left), Some(0));
    assert_eq!(stored.version, 1, "spending leaves the version alone");
}
