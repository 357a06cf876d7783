//! What happens to a stored event: validated against its schema first; an invalid one goes to
//! the error log and is flagged so no rule ever counts it; a valid one has its absence checks
//! scheduled and its rules evaluated. The stream consumer runs this for every new event; a
//! replay runs it for an error-log entry once the operator has fixed the schema.

pub mod smoke;

use std::sync::Arc;
use std::time::Duration;

use crate::absence::plan_absence_checks;
use crate::absence::ports::AbsenceScheduler;
use crate::absence::scheduling::{AbsenceChecker, schedule_all};
use crate::delivery::alerting::AlertDispatcher;
use crate::evaluation::decision::Viewed;
use crate::evaluation::group_desk::GroupWindowDesk;
use crate::evaluation::group_window::GroupContribution;
use crate::evaluation::heartbeat::HeartbeatSightings;
use crate::evaluation::overflows::KnownOverflows;
use crate::evaluation::ports::{GroupWindows, RuleState, WindowStore};
use crate::evaluation::source::{RuleSource, SchemaSource};
use crate::evaluation::{RuleEvaluator, RuleOutcome};
use crate::model::clock::Clock;
use crate::model::domain::{EventId, Millis, ReceivedEvent, StoredEvent, UserId};
use crate::model::ports::{EventStore, PortError};
use crate::model::trace::TraceContext;
use crate::rules::{Action, Condition, GroupBy, Rule, RuleId};
use crate::schemas::error_log::{ErrorEntry, ErrorStatus};
use crate::schemas::ports::ErrorLog;
use crate::schemas::{SchemaRef, Verdict, Violation, violation_kinds};

/// How long a replay may hold an error-log entry before another replay may take it over.
pub const REPLAY_LEASE_SECONDS: u64 = 60;

#[derive(Clone)]
pub struct EventPipeline {
    pub schemas: Arc<SchemaSource>,
    pub errors: Arc<dyn ErrorLog>,
    pub events: Arc<dyn EventStore>,
    pub scheduler: Arc<dyn AbsenceScheduler>,
    pub evaluator: RuleEvaluator,
    /// When each heartbeat rule last saw a matching event.
    pub sightings: Arc<HeartbeatSightings>,
    /// Windows across users: what a batch's events add to them is counted at the batch's end
    /// ([`GroupWindowDesk::flush`]), by the stream consumer; a replay flushes its own.
    pub groups: GroupWindowDesk,
    pub clock: Arc<dyn Clock>,
}

/// The ports the stream consumer's parts share, one of each: what the [`EventPipeline`] and the
/// [`AbsenceChecker`] are assembled from, by the Lambda wiring and the memory twin alike, so the
/// two cannot wire the graph differently.
#[derive(Clone)]
pub struct StreamPorts {
    pub events: Arc<dyn EventStore>,
    pub errors: Arc<dyn ErrorLog>,
    pub scheduler: Arc<dyn AbsenceScheduler>,
    /// Window and expectation buckets (`None`: every window and check is read from the user's
    /// events, the exact scan the buckets are tested against).
    pub windows: Option<Arc<dyn WindowStore>>,
    pub state: Arc<dyn RuleState>,
    pub group_windows: Arc<dyn GroupWindows>,
    pub dispatcher: AlertDispatcher,
}

impl StreamPorts {
    /// The buckets, remembering which overflowed ([`KnownOverflows`]).
    fn remembering_overflows(&self) -> Option<Arc<dyn WindowStore>> {
        self.windows.clone().map(|windows| {
            let remembering: Arc<dyn WindowStore> = Arc::new(KnownOverflows::new(windows));
            remembering
        })
    }

    /// What the stream consumer (and a replay) runs for each new event.
    pub fn pipeline(
        &self,
        rules: Arc<RuleSource>,
        schemas: Arc<SchemaSource>,
        clock: Arc<dyn Clock>,
    ) -> EventPipeline {
        EventPipeline {
            schemas,
            errors: self.errors.clone(),
            events: self.events.clone(),
            scheduler: self.scheduler.clone(),
            evaluator: RuleEvaluator {
                rules: rules.clone(),
                events: self.events.clone(),
                windows: self.remembering_overflows(),
                state: self.state.clone(),
                dispatcher: self.dispatcher.clone(),
            },
            sightings: Arc::new(HeartbeatSightings::new(self.state.clone())),
            groups: self.group_window_desk(rules, clock.clone()),
            clock,
        }
    }

    /// What counts and decides the windows across users (the sweeper's look too).
    pub fn group_window_desk(
        &self,
        rules: Arc<RuleSource>,
        clock: Arc<dyn Clock>,
    ) -> GroupWindowDesk {
        GroupWindowDesk {
            rules,
            store: self.group_windows.clone(),
            windows: self.windows.clone(),
            dispatcher: self.dispatcher.clone(),
            clock,
            noted: Default::default(),
        }
    }

    /// What decides the absence checks posted into the stream once ripe; `rules_settle` is how
    /// long a saved rule takes to reach every function (see [`AbsenceChecker::rules_settle`]).
    pub fn absence_checker(
        &self,
        rules: Arc<RuleSource>,
        rules_settle: Duration,
        clock: Arc<dyn Clock>,
    ) -> AbsenceChecker {
        AbsenceChecker {
            rules,
            events: self.events.clone(),
            windows: self.remembering_overflows(),
            rules_settle,
            state: self.state.clone(),
            scheduler: self.scheduler.clone(),
            dispatcher: self.dispatcher.clone(),
            clock,
        }
    }
}

/// What a valid event's rules did.
struct Ran {
    matched: Vec<RuleId>,
    outcomes: Vec<RuleOutcome>,
    grouped: Vec<GroupContribution>,
}

/// What became of a newly stored event.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    Valid {
        /// The enabled rules whose `when` it matched (fired or not).
        matched: Vec<RuleId>,
        outcomes: Vec<RuleOutcome>,
        /// What it adds to windows across users: counted when the batch is flushed.
        grouped: Vec<GroupContribution>,
    },
    Invalid(Vec<Violation>),
}

/// What a replay did with one error-log entry; serialised as the admin API reports it
/// (`{"outcome": "replayed", "alerts_fired": 1}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReplayOutcome {
    /// Valid now, processed as a normal event; `fired` alerts were sent.
    Replayed {
        #[serde(rename = "alerts_fired")]
        fired: usize,
        /// What its rules did, counted like a stream record's (the event's own receive time).
        #[serde(skip)]
        received_at: Millis,
        #[serde(skip)]
        matched: Vec<RuleId>,
        #[serde(skip)]
        outcomes: Vec<RuleOutcome>,
    },
    /// Still breaks the (current) schema; the entry stays open with these violations.
    StillInvalid {
        schema: Option<SchemaRef>,
        violations: Vec<Violation>,
    },
    AlreadyReplayed,
    /// Another replay holds it right now.
    InProgress,
    NotFound,
}

impl EventPipeline {
    /// The stream consumer's step for one new event. Safe to repeat for the same event.
    pub async fn process(&self, received: &ReceivedEvent) -> Result<Processed, PortError> {
        let schemas = self.schemas.current().await?;
        match schemas.validate(&received.event) {
            Verdict::Valid { .. } => {
                let Ran {
                    matched,
                    outcomes,
                    grouped,
                } = self
                    .run_rules(&received.event, received.trace.as_ref())
                    .await?;
                Ok(Processed::Valid {
                    matched,
                    outcomes,
                    grouped,
                })
            }
            Verdict::Invalid { schema, violations } => {
                self.log_invalid(received, schema, &violations).await?;
                Ok(Processed::Invalid(violations))
            }
        }
    }

    /// Log first, flag second: a crash in between leaves an entry and an unflagged event, and
    /// the stream's retry completes both.
    async fn log_invalid(
        &self,
        received: &ReceivedEvent,
        schema: Option<SchemaRef>,
        violations: &[Violation],
    ) -> Result<(), PortError> {
        let event = &received.event;
        // Ingest keeps the raw text of the events that fail their schema there; one that passed
        // then and fails now (a schema changed in between) is shown as it was stored.
        let raw = if received.raw.is_empty() {
            serde_json::to_string(event).unwrap_or_default()
        } else {
            received.raw.clone()
        };
        let entry = ErrorEntry {
            user: event.user,
            id: event.id.clone(),
            received_at: event.received_at,
            event_type: event.body.event_type().to_string(),
            raw,
            violations: violations.to_vec(),
            violation_kinds: violation_kinds(violations),
            schema,
            status: ErrorStatus::Open,
            logged_at: self.clock.now(),
            claimed_at: None,
            replayed_at: None,
            replayed_by: None,
        };
        self.errors.record(&entry).await?;
        self.events
            .set_invalid(event.user, &event.id, event.received_at, true)
            .await?;
        tracing::info!(user = %event.user, event_id = %event.id, event_type = %entry.event_type, violations = violations.len(), "event failed its schema; logged");
        Ok(())
    }

    /// A valid event's processing: the heartbeats it keeps alive, its absence checks, then its
    /// immediate rules; what it adds to windows across users is returned, to be counted with
    /// its batch.
    async fn run_rules(
        &self,
        event: &StoredEvent,
        trace: Option<&TraceContext>,
    ) -> Result<Ran, PortError> {
        let rules = self.evaluator.rules.current().await?;
        // Matched once: the absence rules it triggers are scheduled, the rest evaluated.
        let trigger = Viewed::of(event);
        let triggered: Vec<&Rule> = rules.triggered_by(&trigger.view).collect();
        let mut grouped = Vec::new();
        for rule in &triggered {
            if let Condition::Heartbeat(heartbeat) = &rule.condition {
                self.sightings
                    .saw(&rule.id, heartbeat, event.received_at)
                    .await?;
            }
            grouped.extend(GroupContribution::of(
                rule,
                &event.id,
                event.received_at,
                &trigger.view,
            ));
        }
        let checks = plan_absence_checks(&triggered, event, trace);
        schedule_all(self.scheduler.as_ref(), &checks, self.clock.now()).await?;
        let outcomes = self
            .evaluator
            .evaluate_triggered(&rules, &trigger, &triggered, trace)
            .await?;
        // A user's window that alerted ops is followed until the sweeper finds it over.
        for outcome in &outcomes {
            let Some(rule) = rules.get(outcome.rule_id.as_str()) else {
                continue;
            };
            if let (Condition::Window(window), Action::NotifyOperator { .. }) =
                (&rule.condition, rule.action)
                && window.group_by == GroupBy::User
            {
                // A redelivered record follows it again from the same instant: the resolve
                // message's id is the same, so it goes once.
                self.groups
                    .follow_user_window(rule, window, event.user, event.received_at)
                    .await?;
            }
        }
        Ok(Ran {
            matched: triggered.iter().map(|r| r.id.clone()).collect(),
            outcomes,
            grouped,
        })
    }

    /// Replays one error-log entry against the schemas as stored now. An event processed by a
    /// replay is never processed again by another: the entry is claimed first and marked
    /// replayed after, and the processing itself is idempotent for a replayer that died half-way.
    pub async fn replay(
        &self,
        user: UserId,
        id: &EventId,
        by: &str,
    ) -> Result<ReplayOutcome, PortError> {
        let Some(entry) = self.errors.get(user, id).await? else {
            return Ok(ReplayOutcome::NotFound);
        };
        if entry.status == ErrorStatus::Replayed {
            return Ok(ReplayOutcome::AlreadyReplayed);
        }
        let Some(received) = self.events.get(user, id).await? else {
            return Ok(ReplayOutcome::NotFound);
        };
        let now = self.clock.now();
        if !self
            .errors
            .claim_replay(user, id, now, now.minus_seconds(REPLAY_LEASE_SECONDS))
            .await?
        {
            return Ok(match self.errors.get(user, id).await?.map(|e| e.status) {
                Some(ErrorStatus::Replayed) => ReplayOutcome::AlreadyReplayed,
                _ => ReplayOutcome::InProgress,
            });
        }
        let schemas = self.schemas.fresh().await?;
        match schemas.validate(&received.event) {
            Verdict::Invalid { schema, violations } => {
                self.errors
                    .reopen(user, id, &violations, schema.as_ref())
                    .await?;
                Ok(ReplayOutcome::StillInvalid { schema, violations })
            }
            Verdict::Valid { .. } => {
                // Unflag first so the event counts in windows like any valid event, then
                // process it at its original receive time.
                self.events
                    .set_invalid(user, id, received.event.received_at, false)
                    .await?;
                let Ran {
                    matched,
                    mut outcomes,
                    grouped,
                } = self
                    .run_rules(&received.event, received.trace.as_ref())
                    .await?;
                outcomes.extend(self.groups.flush(&grouped).await?);
                self.errors
                    .mark_replayed(user, id, by, self.clock.now())
                    .await?;
                tracing::info!(%user, event_id = %id, fired = outcomes.len(), replayed_by = by, "error-log entry replayed");
                Ok(ReplayOutcome::Replayed {
                    fired: outcomes.iter().filter(|o| o.dispatched.is_first()).count(),
                    received_at: received.event.received_at,
                    matched,
                    outcomes,
                })
            }
        }
    }
}
