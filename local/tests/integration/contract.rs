//! The port contract on the DynamoDB adapters, against moto: the same suite the memory ports
//! pass in `shared/memory/tests/ports/contract.rs`. Each test provisions its own tables from
//! `template.yaml` (not a running stack, so nothing is seeded behind the suite's back).

use std::collections::BTreeMap;

use cuba_aws::partition_keys::ListingShards;
use cuba_aws::{
    AwsClients, DynamoActivityTally, DynamoAlertLedger, DynamoBrowse, DynamoDocumentStore,
    DynamoErrorLog, DynamoEvents, DynamoGroupWindows, DynamoListingPages, DynamoOperatorQuotas,
    DynamoProfiles, DynamoRateCounter, DynamoRuleState, DynamoSilences, DynamoSmsQuotas,
    DynamoWindows,
};
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::Millis;
use cuba_local::provision::{Provisioned, provision};
use cuba_local::template::Template;
use cuba_memory::contract;

use crate::harness::{moto_endpoint, repo_path, unique};

struct Tables {
    clients: AwsClients,
    provisioned: Provisioned,
    /// Now, on a whole second, so day buckets and time-ordered keys behave as in production.
    base: Millis,
}

impl Tables {
    async fn new() -> Tables {
        let sdk = cuba_local::moto_sdk_config(&moto_endpoint()).await;
        let text = std::fs::read_to_string(repo_path("template.yaml")).expect("the template");
        let template = Template::parse(&text).expect("a valid template");
        let name = format!("c{}-{}", std::process::id(), unique());
        let provisioned = provision(&sdk, &template, &name, &BTreeMap::new(), &BTreeMap::new())
            .await
            .expect("tables in moto");
        Tables {
            clients: AwsClients::new(&sdk),
            provisioned,
            base: Millis(SystemClock.now().0 / 1000 * 1000),
        }
    }

    fn table(&self, logical_id: &str) -> String {
        self.provisioned
            .table(logical_id)
            .expect("a table of the template")
            .to_owned()
    }

    fn events(&self) -> DynamoEvents {
        DynamoEvents::new(self.clients.dynamodb.clone(), self.table("EventsTable"))
    }

    fn ledger(&self) -> DynamoAlertLedger {
        DynamoAlertLedger::new(self.clients.dynamodb.clone(), self.table("AlertsTable"))
    }

    fn browse(&self) -> DynamoBrowse {
        DynamoBrowse::new(
            self.clients.dynamodb.clone(),
            self.table("EventsTable"),
            self.table("EventPagesTable"),
            self.table("AlertsTable"),
        )
    }

    fn pages(&self) -> DynamoListingPages {
        DynamoListingPages::new(self.clients.dynamodb.clone(), self.table("EventPagesTable"))
    }
}

#[tokio::test]
async fn event_store() {
    let t = Tables::new().await;
    contract::event_store(&t.events(), t.base).await;
}

#[tokio::test]
async fn profile_store() {
    let t = Tables::new().await;
    let profiles = DynamoProfiles::new(t.clients.dynamodb.clone(), t.table("ProfilesTable"));
    contract::profile_store(&profiles, t.base).await;
}

#[tokio::test]
async fn code_attempts() {
    let t = Tables::new().await;
    let profiles = DynamoProfiles::new(t.clients.dynamodb.clone(), t.table("ProfilesTable"));
    contract::code_attempts(&profiles, t.base).await;
}

#[tokio::test]
async fn rule_state() {
    let t = Tables::new().await;
    let state = DynamoRuleState::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::rule_state(&state, t.base).await;
}

#[tokio::test]
async fn heartbeat_state() {
    let t = Tables::new().await;
    let state = DynamoRuleState::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::heartbeat_state(&state, t.base).await;
}

#[tokio::test]
async fn operator_quotas() {
    let t = Tables::new().await;
    let quotas = DynamoOperatorQuotas::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::operator_quotas(&quotas, t.base).await;
}

/// (The limit of 500 silences is checked on the memory store: on moto, filling one item with 500
/// silences through 500 read-and-update round trips takes longer than it tells.)
#[tokio::test]
async fn silence_store() {
    let t = Tables::new().await;
    let silences = DynamoSilences::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::silence_store(&silences, t.base).await;
}

#[tokio::test]
async fn rate_counter() {
    let t = Tables::new().await;
    let counter = DynamoRateCounter::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::rate_counter(&counter, t.base).await;
}

#[tokio::test]
async fn sms_quotas() {
    let t = Tables::new().await;
    let quotas = DynamoSmsQuotas::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::sms_quotas(&quotas, t.base).await;
}

#[tokio::test]
async fn alert_deferral() {
    let t = Tables::new().await;
    contract::alert_deferral(&t.ledger(), t.base).await;
}

#[tokio::test]
async fn alert_groups() {
    let t = Tables::new().await;
    contract::alert_groups(&t.ledger(), t.base).await;
}

#[tokio::test]
async fn alert_receipts() {
    let t = Tables::new().await;
    contract::alert_receipts(&t.ledger(), &t.browse(), t.base).await;
}

#[tokio::test]
async fn alert_ledger() {
    let t = Tables::new().await;
    contract::alert_ledger(&t.ledger(), t.base).await;
}

#[tokio::test]
async fn alert_listing() {
    let t = Tables::new().await;
    contract::alert_listing(&t.ledger(), &t.browse(), t.base).await;
}

#[tokio::test]
async fn event_listing() {
    let t = Tables::new().await;
    contract::event_listing(&t.events(), &t.pages(), &t.browse(), t.base).await;
}

/// With few shards, so that shards hold several items (ties included) and a day's merge is
/// exercised page by page; with the default count, as deployed.
#[tokio::test]
async fn long_event_listing() {
    let t = Tables::new().await;
    let few = ListingShards::new(3).expect("3 shards");
    contract::long_event_listing(
        &t.events(),
        &t.pages().sharded(few),
        &t.browse().sharded(few),
        t.base,
    )
    .await;
    let t = Tables::new().await;
    contract::long_event_listing(&t.events(), &t.pages(), &t.browse(), t.base).await;
}

#[tokio::test]
async fn window_store() {
    let t = Tables::new().await;
    let windows = DynamoWindows::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::window_store(&windows, t.base).await;
}

#[tokio::test]
async fn group_windows() {
    let t = Tables::new().await;
    let windows = DynamoGroupWindows::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::group_windows(&windows, t.base).await;
}

#[tokio::test]
async fn activity_tally() {
    let t = Tables::new().await;
    let tally = DynamoActivityTally::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::activity_tally(&tally, t.base).await;
}

#[tokio::test]
async fn rule_days() {
    let t = Tables::new().await;
    let tally = DynamoActivityTally::new(t.clients.dynamodb.clone(), t.table("RuleStateTable"));
    contract::rule_days(&tally, t.base).await;
}

#[tokio::test]
async fn document_store() {
    let t = Tables::new().await;
    for table in ["RulesTable", "SchemasTable"] {
        let store = DynamoDocumentStore::new(t.clients.dynamodb.clone(), t.table(table));
        contract::document_store(&store, t.base).await;
    }
}

#[tokio::test]
async fn error_log() {
    let t = Tables::new().await;
    let log = DynamoErrorLog::new(t.clients.dynamodb.clone(), t.table("ErrorsTable"));
    contract::error_log(&log, t.base).await;
}
