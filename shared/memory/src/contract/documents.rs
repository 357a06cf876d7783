//! The [`DocumentStore`](cuba_core::model::ports::DocumentStore) contract: versioned rules and schemas.

use cuba_core::model::document::{DocumentAction, DocumentId};
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::{DocumentStore, DocumentWriteError};
use serde_json::json;

use super::at;

/// Versioned documents: seeding once, optimistic writes, deletion, history.
pub async fn document_store(store: &dyn DocumentStore, base: Millis) {
    let doc = |raw: &str| DocumentId::parse(raw).expect("a document id");
    assert_eq!(store.current().await, Ok(None), "an unseeded store");
    let seed = [
        (doc("zeta"), json!({"id": "zeta", "n": 1})),
        (doc("alpha"), json!({"id": "alpha", "n": 1})),
    ];
    assert_eq!(store.seed(&seed, "seeder", base).await, Ok(true));
    assert_eq!(
        store.seed(&seed, "seeder", base).await,
        Ok(false),
        "seeded once"
    );
    let current = store.current().await.expect("read").expect("seeded");
    let listed: Vec<(&str, u64)> = current.iter().map(|r| (r.id.as_str(), r.version)).collect();
    assert_eq!(listed, [("alpha", 1), ("zeta", 1)], "sorted by id");
    assert_eq!(current[0].updated_by, "seeder");

    let v2 = json!({"id": "alpha", "n": 2});
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                1,
                Some(&v2),
                DocumentAction::Updated,
                "ann",
                at(base, 1)
            )
            .await,
        Ok(2)
    );
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                1,
                Some(&v2),
                DocumentAction::Updated,
                "bob",
                at(base, 2)
            )
            .await,
        Err(DocumentWriteError::Conflict { current: Some(2) }),
        "a writer that saw version 1"
    );
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                0,
                Some(&v2),
                DocumentAction::Created,
                "bob",
                at(base, 2)
            )
            .await,
        Err(DocumentWriteError::Conflict { current: Some(2) }),
        "creating what exists"
    );
    let record = store
        .get(&doc("alpha"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (record.version, &record.document, record.updated_by.as_str()),
        (2, &v2, "ann")
    );
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                2,
                None,
                DocumentAction::Deleted,
                "ann",
                at(base, 3)
            )
            .await,
        Ok(3)
    );
    assert_eq!(store.get(&doc("alpha")).await, Ok(None));
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                3,
                Some(&v2),
                DocumentAction::Updated,
                "ann",
                at(base, 4)
            )
            .await,
        Err(DocumentWriteError::Conflict { current: None }),
        "updating a deleted document"
    );
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                0,
                Some(&v2),
                DocumentAction::Created,
                "cy",
                at(base, 5)
            )
            .await,
        Ok(4),
        "re-created, its history continuing"
    );
    assert_eq!(
        store
            .write(
                &doc("new-one"),
                5,
                Some(&v2),
                DocumentAction::Updated,
                "cy",
                at(base, 5)
            )
            .await,
        Err(DocumentWriteError::Conflict { current: None })
    );
    let history = store.history(&doc("alpha")).await.expect("history");
    let actions: Vec<(u64, DocumentAction, bool)> = history
        .iter()
        .map(|r| (r.version, r.action, r.document.is_some()))
        .collect();
    assert_eq!(
        actions,
        [
            (4, DocumentAction::Created, true),
            (3, DocumentAction::Deleted, false),
            (2, DocumentAction::Updated, true),
            (1, DocumentAction::Seeded, true),
        ],
        "newest first"
    );
    assert_eq!(store.history(&doc("never")).await, Ok(vec![]));
    let current = store.current().await.expect("read").expect("seeded");
    assert_eq!(current.len(), 2);
}
