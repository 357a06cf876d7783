//! A whole Cuba on the memory ports: the stream consumer's pipeline, the absence checker and a
//! clock the test moves, with helpers that store events as ingest does and deliver them as the
//! stream and the delay queue would.

use std::sync::Arc;

use cuba_core::absence::AbsenceCheck;
use cuba_core::absence::scheduling::{AbsenceChecker, AbsenceOutcome};
use cuba_core::delivery::alert::AlertEntry;
use cuba_core::delivery::alerting::{AlertSweeper, SweepReport};
use cuba_core::delivery::ports::ProfileStore;
use cuba_core::model::clock::{Clock, ManualClock};
use cuba_core::model::domain::{
    Activity, EventBody, EventId, Feedback, IdOrigin, Millis, PhoneNumber, Rating, ReceivedEvent,
    StoredEvent, UserId, UserProfile,
};
use cuba_core::model::ports::{EventStore, PortError};
use cuba_core::model::trace::TraceContext;
use cuba_core::pipeline::{EventPipeline, Processed};
use cuba_core::rules::RuleSet;
use cuba_core::schemas::{DEFAULT_SCHEMAS, SchemaSet, documents_of_file};
use cuba_memory::MemoryPorts;
use serde_json::json;

/// Mid-2025, on a whole minute.
pub const START: Millis = Millis(1_750_000_020_000);

pub struct World {
    pub ports: MemoryPorts,
    pub clock: ManualClock,
    pub pipeline: EventPipeline,
    pub checker: AbsenceChecker,
}

pub fn default_schemas() -> SchemaSet {
    let documents = documents_of_file(DEFAULT_SCHEMAS).expect("the shipped schemas");
    SchemaSet::from_documents(documents.iter().map(|d| (1, d))).0
}

impl World {
    /// The seed rules, their operator alerts published one by one (so a test reads each
    /// alert's own message; grouping is tested in `grouping.rs`), and the shipped schemas,
    /// neither store seeded.
    pub fn new() -> World {
        let mut document: serde_json::Value =
            serde_json::from_str(cuba_core::rules::DEFAULT_RULES_JSON).expect("the seed rules");
        for rule in document["rules"].as_array_mut().into_iter().flatten() {
            if let Some(action) = rule["action"].as_object_mut() {
                action.remove("group_wait_seconds");
                action.remove("group_interval_seconds");
            }
        }
        Self::with_rules(RuleSet::from_json(&document).expect("the seed rules"))
    }

    pub fn with_rules(rules: RuleSet) -> World {
        let ports = MemoryPorts::new();
        let clock = ManualClock::at(START);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let rule_source = ports.rule_source(rules);
        let pipeline = ports.pipeline(
            rule_source.clone(),
            ports.schema_source(default_schemas()),
            shared.clone(),
        );
        let checker = ports.absence_checker(rule_source, shared);
        World {
            ports,
            clock,
            pipeline,
            checker,
        }
    }

    pub fn at_seconds(&self, seconds: u64) {
        self.clock.set(START.plus_seconds(seconds));
    }

    pub async fn phone(&self, user: u64) -> PhoneNumber {
        let phone = PhoneNumber::parse(&format!("+1555000{user:04}")).expect("a phone number");
        self.profile(user, &phone, true).await;
        phone
    }

    /// Stores a profile for `user` (replacing any), verified or not.
    pub async fn profile(&self, user: u64, phone: &PhoneNumber, verified: bool) {
        let current = self
            .ports
            .profiles
            .profile(UserId(user))
            .await
            .expect("read");
        let profile = UserProfile {
            user: UserId(user),
            phone: phone.clone(),
            updated_at: self.clock.now(),
            phone_verified: verified,
            pending_code: None,
            codes_sent: Vec::new(),
            time_zone: None,
            locale: None,
            version: 0,
        };
        let saved = self
            .ports
            .profiles
            .save(&profile, current.map_or(0, |p| p.version))
            .await;
        assert_eq!(saved, Ok(true), "a profile");
    }

    /// Seconds after which every delivery lease this world's dispatcher takes has lapsed.
    pub fn lease_seconds(&self) -> u64 {
        let leases = self.ports.dispatcher(Arc::new(self.clock.clone())).leases;
        leases.claim.max(leases.sending).as_secs() + 1
    }

    /// One run of the alert sweeper, now.
    pub async fn sweep(&self) -> SweepReport {
        AlertSweeper {
            dispatcher: self.ports.dispatcher(Arc::new(self.clock.clone())),
            batch: 100,
        }
        .sweep()
        .await
        .expect("swept")
    }

    /// Stores the event as ingest would (now), and returns it for the stream.
    pub async fn ingest(&self, user: u64, id: &str, body: EventBody) -> ReceivedEvent {
        self.ingest_in_trace(user, id, body, None).await
    }

    /// [`World::ingest`] for a request received in `trace`.
    pub async fn ingest_in_trace(
        &self,
        user: u64,
        id: &str,
        body: EventBody,
        trace: Option<TraceContext>,
    ) -> ReceivedEvent {
        let received = ReceivedEvent {
            trace,
            raw: serde_json::to_string(&body).expect("a body"),
            origin: IdOrigin::Client,
            event: StoredEvent {
                user: UserId(user),
                id: EventId::parse(id).expect("an id"),
                received_at: self.clock.now(),
                body,
            },
        };
        self.ports.events.insert(&received).await.expect("stored");
        received
    }

    /// Stores the event and runs the stream consumer's step for it.
    pub async fn deliver(&self, user: u64, id: &str, body: EventBody) -> Processed {
        let received = self.ingest(user, id, body).await;
        self.pipeline.process(&received).await.expect("processed")
    }

    /// Runs every queued absence check, as the delay queue would deliver them now.
    pub async fn run_checks(&self) -> Vec<Result<AbsenceOutcome, PortError>> {
        let mut outcomes = Vec::new();
        for queued in self.ports.queue.take() {
            outcomes.push(self.checker.run(&queued.check).await);
        }
        outcomes
    }

    pub fn queued(&self) -> Vec<AbsenceCheck> {
        self.ports
            .queue
            .take()
            .into_iter()
            .map(|q| q.check)
            .collect()
    }

    pub fn sms_texts(&self) -> Vec<String> {
        self.ports
            .notifier
            .sms()
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    pub fn ledger(&self) -> Vec<AlertEntry> {
        self.ports.ledger.entries()
    }

    /// Alerts not settled yet (`pending` or `sending`).
    pub fn pending(&self) -> Vec<AlertEntry> {
        self.ledger()
            .into_iter()
            .filter(|e| !e.status.is_settled())
            .collect()
    }
}

pub fn paid(amount: u64) -> EventBody {
    EventBody::Activity(Activity::new(
        "bill",
        "paid",
        json!({"amount": amount, "type": "electricity"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    ))
}

/// A bill payment its schema refuses (no `type`).
pub fn paid_without_type(amount: u64) -> EventBody {
    EventBody::Activity(Activity::new(
        "bill",
        "paid",
        json!({"amount": amount})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    ))
}

pub fn feedback(rating: u8) -> EventBody {
    EventBody::Feedback(Feedback {
        rating: Rating::try_from(rating).expect("a rating"),
        comment: None,
    })
}

/// xorshift64*: the same sequence on every run, so a disagreement can be replayed.
pub struct Dice(pub u64);

impl Dice {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the ledger's alerts say, sorted, as two runs are compared: everything but delivery
/// details.
pub fn alert_summaries(ports: &MemoryPorts) -> Vec<(String, Vec<String>, String, Millis)> {
    let mut all: Vec<_> = ports
        .ledger
        .entries()
        .into_iter()
        .map(|a| {
            (
                a.alert_id.as_str().to_owned(),
                a.event_ids.iter().map(|e| e.as_str().to_owned()).collect(),
                a.text,
                a.fired_at,
            )
        })
        .collect();
    all.sort();
    all
}

/// Two runs' alerts agree one by one (the first difference named).
pub fn assert_same_alerts<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "as many alerts");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w);
    }
}
