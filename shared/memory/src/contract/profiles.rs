//! The [`ProfileStore`](cuba_core::delivery::ports::ProfileStore) contract.

use cuba_core::delivery::ports::ProfileStore;
use cuba_core::model::domain::{Millis, PendingCode, PhoneNumber, UserId, UserProfile};

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
        ..stored
    };
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
