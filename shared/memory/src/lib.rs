//! In-memory implementations of every port of Cuba's core, with the same semantics as the
//! DynamoDB adapters for conditional writes, leases and versions: the fast way to run the core
//! (in unit tests, or embedded), and the reference the adapters are held to by one contract
//! suite ([`contract`], behind the `contract` feature) that both must pass.
//!
//! Every port of one [`MemoryPorts`] counts its calls in one [`Faults`], which can make any call
//! fail before or after it takes effect.

mod alert_ledger;
#[cfg(feature = "contract")]
pub mod contract;
mod documents;
mod events;
mod faults;
mod group_windows;
mod listings;
mod outbox;
mod rule_state;
mod silences;

use std::sync::Arc;
use std::time::Duration;

use cuba_core::absence::scheduling::{AbsenceChecker, AbsenceRelay};
use cuba_core::delivery::alerting::{
    AlertDispatcher, CallLimits, DEFAULT_SMS_RECEIPT_TIMEOUT, DeliveryLeases,
};
use cuba_core::delivery::limits::{
    DEFAULT_OPERATOR_ALERTS_PER_RULE_PER_HOUR, OperatorLimit, SmsPolicy,
};
use cuba_core::delivery::quiet_hours::SmsManners;
use cuba_core::delivery::silences::SilenceSource;
use cuba_core::evaluation::source::{CachedDocuments, RuleSource, SchemaSource};
use cuba_core::model::clock::Clock;
use cuba_core::pipeline::{EventPipeline, StreamPorts};
use cuba_core::rules::RuleSet;
use cuba_core::schemas::SchemaSet;

pub use alert_ledger::MemoryAlertLedger;
pub use documents::MemoryDocuments;
pub use events::{MemoryEvents, MemoryProfiles};
pub use faults::{Call, Fault, Faults};
pub use group_windows::MemoryGroupWindows;
pub use listings::{MemoryActivityTally, MemoryBrowse, MemoryErrorLog, MemoryListingPages};
pub use outbox::{
    MemoryAbsenceQueue, MemoryDueChecks, MemoryNotifier, MemoryOperatorQuotas, MemoryRateCounter,
    MemorySmsQuotas, QueuedCheck, SentSms,
};
pub use rule_state::{MemoryRuleState, MemoryWindows};
pub use silences::MemorySilences;

/// One of every port, sharing one [`Faults`].
pub struct MemoryPorts {
    pub faults: Arc<Faults>,
    pub events: Arc<MemoryEvents>,
    pub profiles: Arc<MemoryProfiles>,
    pub rule_state: Arc<MemoryRuleState>,
    pub windows: Arc<MemoryWindows>,
    pub group_windows: Arc<MemoryGroupWindows>,
    pub ledger: Arc<MemoryAlertLedger>,
    pub notifier: Arc<MemoryNotifier>,
    pub quotas: Arc<MemorySmsQuotas>,
    pub rates: Arc<MemoryRateCounter>,
    pub operators: Arc<MemoryOperatorQuotas>,
    pub queue: Arc<MemoryAbsenceQueue>,
    pub due: Arc<MemoryDueChecks>,
    pub rules: Arc<MemoryDocuments>,
    pub schemas: Arc<MemoryDocuments>,
    pub errors: Arc<MemoryErrorLog>,
    pub browse: Arc<MemoryBrowse>,
    pub pages: Arc<MemoryListingPages>,
    pub tally: Arc<MemoryActivityTally>,
    pub silences: Arc<MemorySilences>,
}

impl Default for MemoryPorts {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPorts {
    pub fn new() -> Self {
        let faults = Arc::new(Faults::default());
        let events = Arc::new(MemoryEvents::new(faults.clone()));
        let ledger = Arc::new(MemoryAlertLedger::new(faults.clone()));
        let pages = Arc::new(MemoryListingPages::new(faults.clone()));
        MemoryPorts {
            profiles: Arc::new(MemoryProfiles::new(faults.clone())),
            rule_state: Arc::new(MemoryRuleState::new(faults.clone())),
            windows: Arc::new(MemoryWindows::new(faults.clone())),
            group_windows: Arc::new(MemoryGroupWindows::new(faults.clone())),
            notifier: Arc::new(MemoryNotifier::new(faults.clone())),
            quotas: Arc::new(MemorySmsQuotas::new(faults.clone())),
            rates: Arc::new(MemoryRateCounter::new(faults.clone())),
            operators: Arc::new(MemoryOperatorQuotas::new(faults.clone())),
            queue: Arc::new(MemoryAbsenceQueue::new(faults.clone())),
            due: Arc::new(MemoryDueChecks::new(faults.clone())),
            rules: Arc::new(MemoryDocuments::new(faults.clone())),
            schemas: Arc::new(MemoryDocuments::new(faults.clone())),
            errors: Arc::new(MemoryErrorLog::new(faults.clone())),
            tally: Arc::new(MemoryActivityTally::new(faults.clone())),
            silences: Arc::new(MemorySilences::new(faults.clone())),
            browse: Arc::new(MemoryBrowse::new(
                faults.clone(),
                events.clone(),
                pages.clone(),
                ledger.clone(),
            )),
            pages,
            events,
            ledger,
            faults,
        }
    }

    /// The rules in force: the rule store, read on every use (no cache), `unseeded` until seeded.
    pub fn rule_source(&self, unseeded: RuleSet) -> Arc<RuleSource> {
        Arc::new(CachedDocuments::new(
            self.rules.clone(),
            Arc::new(unseeded),
            Duration::ZERO,
        ))
    }

    /// The schemas in force: the schema store, read on every use, `unseeded` until seeded.
    pub fn schema_source(&self, unseeded: SchemaSet) -> Arc<SchemaSource> {
        Arc::new(CachedDocuments::new(
            self.schemas.clone(),
            Arc::new(unseeded),
            Duration::ZERO,
        ))
    }

    /// The dispatcher on these ports, with the default SMS policy and operator cap, and leases
    /// as if every call could take a second.
    pub fn dispatcher(&self, clock: Arc<dyn Clock>) -> AlertDispatcher {
        AlertDispatcher {
            ledger: self.ledger.clone(),
            profiles: self.profiles.clone(),
            notifier: self.notifier.clone(),
            quotas: self.quotas.clone(),
            clock,
            leases: DeliveryLeases::covering(CallLimits {
                store: Duration::from_secs(1),
                publish: Duration::from_secs(1),
            }),
            sms: SmsPolicy::default(),
            operators: OperatorLimit::new(
                DEFAULT_OPERATOR_ALERTS_PER_RULE_PER_HOUR,
                self.operators.clone(),
            ),
            // Read on every use (no cache), like the memory rule source.
            silences: Arc::new(SilenceSource::new(self.silences.clone(), Duration::ZERO)),
            // No quiet hours: tests that want them set them.
            manners: SmsManners::default(),
            receipt_timeout: DEFAULT_SMS_RECEIPT_TIMEOUT,
            opening_groups: Default::default(),
        }
    }

    /// The stream consumer's ports, on these memory ones (window buckets kept).
    pub fn stream_ports(&self, clock: Arc<dyn Clock>) -> StreamPorts {
        StreamPorts {
            events: self.events.clone(),
            errors: self.errors.clone(),
            scheduler: self.queue.clone(),
            windows: Some(self.windows.clone()),
            state: self.rule_state.clone(),
            group_windows: self.group_windows.clone(),
            dispatcher: self.dispatcher(clock),
        }
    }

    /// What the stream consumer (and a replay) runs, on these ports.
    pub fn pipeline(
        &self,
        rules: Arc<RuleSource>,
        schemas: Arc<SchemaSource>,
        clock: Arc<dyn Clock>,
    ) -> EventPipeline {
        self.stream_ports(clock.clone())
            .pipeline(rules, schemas, clock)
    }

    /// What the rules function decides due checks with, on these ports: from the expectation
    /// buckets (the rule source reads the store on every use, so nothing needs to settle).
    pub fn absence_checker(&self, rules: Arc<RuleSource>, clock: Arc<dyn Clock>) -> AbsenceChecker {
        self.stream_ports(clock.clone())
            .absence_checker(rules, Duration::ZERO, clock)
    }

    /// What the absence-check function runs, on these ports: ripe checks posted `settle` after
    /// they fall due.
    pub fn absence_relay(&self, clock: Arc<dyn Clock>, settle: Duration) -> AbsenceRelay {
        AbsenceRelay {
            scheduler: self.queue.clone(),
            due: self.due.clone(),
            clock,
            settle,
        }
    }
}
