//! The port contract on the memory implementations (the DynamoDB adapters run the same suite
//! against moto in `local/tests/integration/contract.rs`).

use cuba_core::model::domain::Millis;
use cuba_memory::{MemoryPorts, contract};

const BASE: Millis = Millis(1_750_000_000_000);

#[tokio::test]
async fn event_store() {
    contract::event_store(MemoryPorts::new().events.as_ref(), BASE).await;
}

#[tokio::test]
async fn profile_store() {
    contract::profile_store(MemoryPorts::new().profiles.as_ref(), BASE).await;
}

#[tokio::test]
async fn code_attempts() {
    contract::code_attempts(MemoryPorts::new().profiles.as_ref(), BASE).await;
}

#[tokio::test]
async fn rule_state() {
    contract::rule_state(MemoryPorts::new().rule_state.as_ref(), BASE).await;
}

#[tokio::test]
async fn heartbeat_state() {
    contract::heartbeat_state(MemoryPorts::new().rule_state.as_ref(), BASE).await;
}

#[tokio::test]
async fn alert_deferral() {
    contract::alert_deferral(MemoryPorts::new().ledger.as_ref(), BASE).await;
}

#[tokio::test]
async fn rule_days() {
    contract::rule_days(MemoryPorts::new().tally.as_ref(), BASE).await;
}

#[tokio::test]
async fn alert_groups() {
    contract::alert_groups(MemoryPorts::new().ledger.as_ref(), BASE).await;
}

#[tokio::test]
async fn alert_receipts() {
    let ports = MemoryPorts::new();
    contract::alert_receipts(ports.ledger.as_ref(), ports.browse.as_ref(), BASE).await;
}

#[tokio::test]
async fn alert_ledger() {
    contract::alert_ledger(MemoryPorts::new().ledger.as_ref(), BASE).await;
}

#[tokio::test]
async fn alert_listing() {
    let ports = MemoryPorts::new();
    contract::alert_listing(ports.ledger.as_ref(), ports.browse.as_ref(), BASE).await;
}

#[tokio::test]
async fn event_listing() {
    let ports = MemoryPorts::new();
    contract::event_listing(
        ports.events.as_ref(),
        ports.pages.as_ref(),
        ports.browse.as_ref(),
        BASE,
    )
    .await;
}

#[tokio::test]
async fn long_event_listing() {
    let ports = MemoryPorts::new();
    contract::long_event_listing(
        ports.events.as_ref(),
        ports.pages.as_ref(),
        ports.browse.as_ref(),
        BASE,
    )
    .await;
}

#[tokio::test]
async fn window_store() {
    contract::window_store(MemoryPorts::new().windows.as_ref(), BASE).await;
}

#[tokio::test]
async fn group_windows() {
    contract::group_windows(MemoryPorts::new().group_windows.as_ref(), BASE).await;
}

#[tokio::test]
async fn activity_tally() {
    let tally = cuba_memory::MemoryActivityTally::default();
    contract::activity_tally(&tally, BASE).await;
}

#[tokio::test]
async fn document_store() {
    contract::document_store(MemoryPorts::new().rules.as_ref(), BASE).await;
}

#[tokio::test]
async fn error_log() {
    contract::error_log(MemoryPorts::new().errors.as_ref(), BASE).await;
}

#[tokio::test]
async fn sms_quotas() {
    contract::sms_quotas(MemoryPorts::new().quotas.as_ref(), BASE).await;
}

#[tokio::test]
async fn rate_counter() {
    contract::rate_counter(MemoryPorts::new().rates.as_ref(), BASE).await;
}

#[tokio::test]
async fn operator_quotas() {
    contract::operator_quotas(MemoryPorts::new().operators.as_ref(), BASE).await;
}

#[tokio::test]
async fn silence_store() {
    contract::silence_store(MemoryPorts::new().silences.as_ref(), BASE).await;
    contract::silence_store_limit(MemoryPorts::new().silences.as_ref(), BASE).await;
}
