//! The event-driven handlers at the level Lambda sees them: a DynamoDB stream batch in, a
//! partial batch response out; an SQS batch in, a partial batch response out; a scheduled
//! sweep of stuck alerts; a CloudWatch Logs batch of SMS delivery status records.

pub use aws_lambda_events::cloudwatch_logs::LogsEvent;
pub use aws_lambda_events::dynamodb::Event as DynamoDbEvent;
pub use aws_lambda_events::sqs::SqsEvent;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, SqsBatchItemFailure};
pub use aws_lambda_events::streams::{DynamoDbEventResponse, SqsEventResponse};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use cuba_core::absence::AbsenceCheck;
use cuba_core::absence::scheduling::AbsenceOutcome;
use cuba_core::console::activity::MinuteCounts;
use cuba_core::delivery::alerting::Dispatched;
use cuba_core::evaluation::batch_reads::UserBatchReads;
use cuba_core::model::trace;
use cuba_core::pipeline::Processed;
use cuba_core::rules::Action;

use crate::embedded_metrics::names;
use cuba_aws::StreamItem;
use cuba_core::absence::scheduling::{AbsenceChecker, AbsenceRelay, RelayOutcome};
use cuba_core::console::listing_pages::paginate;
use cuba_core::console::ports::{ActivityTally, ListingPages};
use cuba_core::console::rule_health::RuleDays;
use cuba_core::delivery::alerting::{AlertSweeper, SweepReport};
use cuba_core::delivery::receipt_desk::{ReceiptDesk, ReceiptTaken};
use cuba_core::delivery::receipts::{ReceiptOutcome, SmsReceipt};
use cuba_core::evaluation::group_desk::GroupWindowDesk;
use cuba_core::evaluation::heartbeat::HeartbeatWatch;
use cuba_core::model::domain::{Millis, StoredEvent, UserId};
use cuba_core::model::ports::{ErrorChain, PortError};
use cuba_core::pipeline::EventPipeline;

/// Consumes the events table's stream: new events, and the absence checks that
/// [`AbsenceRelay`] posts behind a user's events once they are ripe.
#[derive(Clone)]
pub struct StreamHandler {
    pub pipeline: EventPipeline,
    pub checker: AbsenceChecker,
    /// Counts the batch's events and new alerts per minute, for the dashboard.
    pub tally: Arc<dyn ActivityTally>,
    /// The listings across everyone and by web session, a page per batch and second.
    pub pages: Arc<dyn ListingPages>,
    /// Events one user's records may read in one batch before the rest of them wait for the
    /// retry ([`UserBatchReads`]).
    pub user_reads_per_batch: usize,
}

/// Users whose records one invocation processes at once.
const CONCURRENT_USERS: usize = 16;

/// How long before an invocation's deadline the stream handler stops starting records: one AWS
/// call at its timeout, so the records in flight (an alert between `sending` and its publish,
/// say) finish before Lambda stops the invocation, and the rest are retried.
pub const STOP_BEFORE_DEADLINE: Duration = cuba_aws::AWS_OPERATION_TIMEOUT;

/// What became of one record.
enum Done {
    Event(StoredEvent, Processed),
    Check(AbsenceCheck, AbsenceOutcome),
}

/// Why a stream record failed (and the batch is retried from it).
#[derive(Debug, thiserror::Error)]
enum RecordFailure {
    #[error("stream image is neither an event nor a due check")]
    Unreadable(#[source] PortError),
    #[error("processing the record failed")]
    Processing(#[source] PortError),
    /// The task of an earlier user's records ended without saying where it stopped.
    #[error("a user's records were not all processed")]
    LaneAborted(#[source] tokio::task::JoinError),
    /// Not started: the invocation was near its deadline (the retry takes it).
    #[error("not started before the invocation's deadline")]
    OutOfTime,
    /// Not started: the user's records read their budget for the batch (the retry takes it).
    #[error("not started: the user's reads for the batch are spent")]
    ReadsSpent,
}

/// One record's result: its position in the batch, its sequence number, and what became of it
/// or why it failed.
type RecordResult = (usize, Option<String>, Result<Done, RecordFailure>);

/// One user's records of a batch, in order, with their positions and sequence numbers.
type Lane = Vec<(usize, Option<String>, StreamItem)>;

/// The stream handler as one lane runs it, and the reads its records made.
struct LaneHandler {
    stream: StreamHandler,
    reads: Option<Arc<UserBatchReads>>,
}

impl StreamHandler {
    /// A shard's records arrive in order, and one user's records must be processed in that
    /// order (a window or a first-occurrence rule decides on what came before, an absence check
    /// on what arrived before it). Lambda keeps order only per item, not per partition key,
    /// once more than one batch of a shard runs at once, so the template's parallelization
    /// factor stays 1 and the parallelism is here: the batch's users are processed
    /// concurrently, each user's records one after another. A user's first failure stops that
    /// user; the earliest failure in the batch is reported, and Lambda retries from it. Records
    /// after it that did succeed are then processed again, which every step tolerates. Only
    /// inserts are new; the updates a validation or a replay makes to an event are not.
    pub async fn handle(&self, batch: DynamoDbEvent) -> DynamoDbEventResponse {
        self.handle_until(batch, None).await
    }

    /// [`StreamHandler::handle`] within an invocation that ends at `deadline`: no record is
    /// started later than [`STOP_BEFORE_DEADLINE`] before it. Those left are reported from the
    /// earliest, as a failure would be, so the retry takes them instead of the invocation
    /// being cut off part-way (and the whole batch, every user behind a slow one, run again).
    pub async fn handle_until(
        &self,
        batch: DynamoDbEvent,
        deadline: Option<Instant>,
    ) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        let mut counts = MinuteCounts::default();
        let mut rules = RuleDays::default();
        metrics::histogram!(names::STREAM_RECORDS).record(batch.records.len() as f64);
        let now = self.pipeline.clock.now();
        let mut results: Vec<RecordResult> = Vec::new();
        let mut lanes: Vec<Lane> = Vec::new();
        let mut lane_of: HashMap<UserId, usize> = HashMap::new();
        // The batch's first new item: what names its listing pages, and where the batch is
        // retried from when they cannot be written.
        let mut first: Option<(String, Option<String>)> = None;
        for (position, record) in batch.records.into_iter().enumerate() {
            if record.event_name != "INSERT" {
                continue;
            }
            if first.is_none() {
                // A record's id is unique across the stream's shards; a sequence number only
                // within its shard.
                let name = match &record.change.sequence_number {
                    Some(sequence_number) if record.event_id.is_empty() => sequence_number.clone(),
                    _ => record.event_id.clone(),
                };
                first = Some((name, record.change.sequence_number.clone()));
            }
            let age = millis_since(&record.change.approximate_creation_date_time, now);
            metrics::histogram!(names::STREAM_AGE).record(age);
            let sequence_number = record.change.sequence_number;
            match StreamItem::from_image(record.change.new_image) {
                Ok(None) => {}
                Ok(Some(item)) => {
                    let lane = *lane_of.entry(item.user()).or_insert_with(|| {
                        lanes.push(Vec::new());
                        lanes.len() - 1
                    });
                    lanes[lane].push((position, sequence_number, item));
                }
                Err(e) => {
                    results.push((position, sequence_number, Err(RecordFailure::Unreadable(e))))
                }
            }
        }
        if let Some((name, sequence_number)) = &first
            && let Err(e) = self.list(name, &lanes).await
        {
            // Before any record is processed: a listing never misses an event the rules saw.
            metrics::counter!(names::STREAM_FAILURES).increment(1);
            tracing::error!(error = %ErrorChain(&e), "the batch's listing pages were not written; the batch is retried");
            retry_from(&mut response, sequence_number.clone());
            return response;
        }
        results.extend(self.process_lanes(lanes, deadline).await);
        results.sort_by_key(|(position, _, _)| *position);
        // What the batch's events add to windows across users, and the earliest record that
        // added any (a failed flush retries the batch from there).
        let mut grouped = Vec::new();
        let mut first_grouped: Option<(usize, Option<String>)> = None;
        let mut failed_at: Option<usize> = None;
        for (position, sequence_number, outcome) in results {
            if outcome.is_err() && failed_at.is_none() {
                failed_at = Some(position);
            }
            match outcome {
                Ok(Done::Event(event, processed)) => {
                    if let Processed::Valid { grouped: adds, .. } = &processed
                        && !adds.is_empty()
                    {
                        grouped.extend(adds.iter().cloned());
                        first_grouped.get_or_insert((position, sequence_number.clone()));
                    }
                    count_processed(&processed, event.received_at, &mut counts, &mut rules);
                    tracing::debug!(user = %event.user, event_id = %event.id, ?processed, "event processed");
                }
                Ok(Done::Check(check, outcome)) => {
                    let decided_at = self.pipeline.clock.now();
                    count_absence_check(&check, &outcome, decided_at);
                    if let AbsenceOutcome::Fired(dispatched, _) = &outcome
                        && dispatched.is_first()
                    {
                        counts.alert(decided_at);
                        rules.fired(&check.rule_id, decided_at, dispatched.counted_as());
                    }
                    tracing::info!(rule_id = %check.rule_id, user = %check.user, event_id = %check.event_id, ?outcome, "absence check decided");
                }
                Err(RecordFailure::OutOfTime) => {
                    if response.batch_item_failures.is_empty() {
                        tracing::warn!(sequence_number = ?sequence_number, "the invocation's time ran out; the rest of the batch is retried from here");
                        retry_from(&mut response, sequence_number);
                    }
                }
                Err(RecordFailure::ReadsSpent) => {
                    metrics::counter!(names::STREAM_RECORDS_DEFERRED).increment(1);
                    if response.batch_item_failures.is_empty() {
                        tracing::warn!(sequence_number = ?sequence_number, "a user's reads for the batch are spent; the rest of the batch is retried from here");
                        retry_from(&mut response, sequence_number);
                    }
                }
                Err(failure) => {
                    let error = ErrorChain(&failure);
                    metrics::counter!(names::STREAM_FAILURES).increment(1);
                    if response.batch_item_failures.is_empty() {
                        tracing::error!(sequence_number = ?sequence_number, %error, "stream record failed; reporting batch item failure");
                        retry_from(&mut response, sequence_number);
                    } else {
                        tracing::error!(sequence_number = ?sequence_number, %error, "stream record failed; retried with the batch from the earlier failure");
                    }
                }
            }
        }
        match self.pipeline.groups.flush(&grouped).await {
            Ok(outcomes) => {
                let at = self.pipeline.clock.now();
                for outcome in &outcomes {
                    if outcome.dispatched.is_first() {
                        metrics::counter!(names::RULES_FIRED, "Rule" => outcome.rule_id.as_str().to_owned())
                            .increment(1);
                        counts.alert(at);
                        rules.fired(&outcome.rule_id, at, outcome.dispatched.counted_as());
                    }
                    alert_metric(&outcome.dispatched, outcome.action);
                }
            }
            Err(error) => {
                // Counted once per event whatever the repeats: retrying every record that
                // added to a window is safe, and the only way not to lose their counts.
                let error = ErrorChain(&error);
                metrics::counter!(names::STREAM_FAILURES).increment(1);
                if let Some((position, sequence_number)) = first_grouped
                    && failed_at.is_none_or(|failed| position < failed)
                {
                    tracing::error!(sequence_number = ?sequence_number, %error, "counting the batch's windows across users failed; retried from its first record that adds to one");
                    response.batch_item_failures.clear();
                    retry_from(&mut response, sequence_number);
                } else {
                    tracing::error!(%error, "counting the batch's windows across users failed; retried with the batch from the earlier failure");
                }
            }
        }
        add_to_tally(self.tally.as_ref(), &counts).await;
        add_rule_days(self.tally.as_ref(), &rules).await;
        response
    }

    /// Writes the batch's events into the listings across everyone and by session, named
    /// `batch` (so a redelivery of the same batch rewrites the same pages).
    async fn list(&self, batch: &str, lanes: &[Lane]) -> Result<(), PortError> {
        let events = lanes
            .iter()
            .flatten()
            .filter_map(|(_, _, item)| match item {
                StreamItem::Event(received) => Some(&received.event),
                StreamItem::DueCheck(_) => None,
            });
        let pages = paginate(events);
        if pages.is_empty() {
            return Ok(());
        }
        self.pages.record(batch, &pages).await
    }

    /// Processes each lane (one user's records, in order) as its own task, a bounded number
    /// at once; a lane stops at its first failure. The lanes with the fewest records start
    /// first, so a heavy user's records queue behind the other users' rather than in front of
    /// them; each lane reads the user's events through its own [`UserBatchReads`], and stops
    /// starting records once those have read the user's budget for the batch (its first record
    /// always runs, so every user's records get on).
    async fn process_lanes(
        &self,
        mut lanes: Vec<Lane>,
        deadline: Option<Instant>,
    ) -> Vec<RecordResult> {
        let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_USERS));
        let mut tasks = tokio::task::JoinSet::new();
        // The batch's earliest record, to retry from if a lane ends without results.
        let earliest = lanes
            .first()
            .and_then(|lane| lane.first())
            .map(|(position, sequence_number, _)| (*position, sequence_number.clone()));
        lanes.sort_by_key(Vec::len);
        for lane in lanes {
            let (handler, permits) = (self.for_lane(&lane), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let mut done = Vec::new();
                for (position, sequence_number, item) in lane {
                    if deadline.is_some_and(|d| Instant::now() + STOP_BEFORE_DEADLINE >= d) {
                        done.push((position, sequence_number, Err(RecordFailure::OutOfTime)));
                        break;
                    }
                    if !done.is_empty() && handler.reads.as_ref().is_some_and(|r| r.spent()) {
                        done.push((position, sequence_number, Err(RecordFailure::ReadsSpent)));
                        break;
                    }
                    let outcome =
                        trace::in_span(record_span(&item), handler.stream.process(item)).await;
                    let failed = outcome.is_err();
                    done.push((position, sequence_number, outcome));
                    if failed {
                        break;
                    }
                }
                done
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(done) => results.extend(done),
                // A lane that did not finish has no results to say where it stopped: retry
                // the batch from its earliest record.
                Err(e) => {
                    if let Some((position, sequence_number)) = &earliest {
                        results.push((
                            *position,
                            sequence_number.clone(),
                            Err(RecordFailure::LaneAborted(e)),
                        ));
                    }
                }
            }
        }
        results
    }

    /// The handler for one lane's records: reading the user's events through the lane's own
    /// [`UserBatchReads`].
    fn for_lane(&self, lane: &Lane) -> LaneHandler {
        let received = || {
            lane.iter().filter_map(|(_, _, item)| match item {
                StreamItem::Event(received) => Some(received.event.received_at.0),
                StreamItem::DueCheck(_) => None,
            })
        };
        let Some(user) = lane.first().map(|(_, _, item)| item.user()) else {
            return LaneHandler {
                stream: self.clone(),
                reads: None,
            };
        };
        let ahead = match (received().min(), received().max()) {
            (Some(first), Some(last)) => last - first,
            _ => 0,
        };
        let reads = Arc::new(UserBatchReads::new(
            self.pipeline.evaluator.events.clone(),
            user,
            self.user_reads_per_batch,
            ahead,
        ));
        let mut stream = self.clone();
        // The pipeline's own store too: an event it marks invalid (a schema saved since
        // intake) must leave the span the lane's later records read.
        stream.pipeline.events = reads.clone();
        stream.pipeline.evaluator.events = reads.clone();
        stream.checker.events = reads.clone();
        LaneHandler {
            stream,
            reads: Some(reads),
        }
    }

    async fn process(&self, item: StreamItem) -> Result<Done, RecordFailure> {
        match item {
            StreamItem::Event(received) => self
                .pipeline
                .process(&received)
                .await
                .map(|processed| Done::Event(received.event, processed)),
            StreamItem::DueCheck(check) => self
                .checker
                .run(&check)
                .await
                .map(|outcome| Done::Check(check, outcome)),
        }
        .map_err(RecordFailure::Processing)
    }
}

/// Reports the record `sequence_number` as the batch's failure: Lambda retries from it.
fn retry_from(response: &mut DynamoDbEventResponse, sequence_number: Option<String>) {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = sequence_number;
    response.batch_item_failures.push(failure);
}

/// Adds what a batch counted to the dashboard's tally. A failure is logged, not raised: the
/// records are processed, and retrying them for a chart would process them again.
async fn add_to_tally(tally: &dyn ActivityTally, counts: &MinuteCounts) {
    if counts.is_empty() {
        return;
    }
    if let Err(e) = tally.add(counts).await {
        metrics::counter!(names::TALLY_FAILURES).increment(1);
        tracing::warn!(error = %ErrorChain(&e), "the activity tally was not updated");
    }
}

/// Adds what a batch's rules did to their days, for the console's rule health; a failure is
/// logged, not raised, as for the tally.
async fn add_rule_days(tally: &dyn ActivityTally, rules: &RuleDays) {
    if rules.is_empty() {
        return;
    }
    if let Err(e) = tally.add_rule_days(rules).await {
        metrics::counter!(names::TALLY_FAILURES).increment(1);
        tracing::warn!(error = %ErrorChain(&e), "the rules' day counts were not updated");
    }
}

/// Why a delay-queue message failed (and the queue redelivers it).
#[derive(Debug, thiserror::Error)]
enum MessageFailure {
    #[error("message has no body")]
    NoBody,
    #[error("message body is not an absence check")]
    NotACheck(#[source] serde_json::Error),
    #[error("relaying the check failed")]
    Relay(#[source] PortError),
}

/// Consumes the absence-check delay queue: holds each check until it is ripe, then posts it
/// into the user's stream, where [`StreamHandler`] decides it.
#[derive(Clone)]
pub struct AbsenceQueueHandler {
    pub relay: AbsenceRelay,
}

impl AbsenceQueueHandler {
    /// Messages are independent: each failure is reported on its own and retried by the queue
    /// (and after the redrive limit kept in the dead-letter queue), the rest are deleted.
    pub async fn handle(&self, batch: SqsEvent) -> SqsEventResponse {
        let mut response = SqsEventResponse::default();
        for message in batch.records {
            let result = match message
                .body
                .as_deref()
                .map(serde_json::from_str::<AbsenceCheck>)
            {
                Some(Ok(check)) => trace::in_span(check_span(&check), self.relay_one(&check)).await,
                Some(Err(e)) => Err(MessageFailure::NotACheck(e)),
                None => Err(MessageFailure::NoBody),
            };
            if let Err(failure) = result {
                let error = ErrorChain(&failure);
                metrics::counter!(names::ABSENCE_CHECK_FAILURES).increment(1);
                tracing::error!(message_id = ?message.message_id, %error, "absence check failed; reporting batch item failure");
                let mut failure = SqsBatchItemFailure::default();
                failure.item_identifier = message.message_id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn relay_one(&self, check: &AbsenceCheck) -> Result<(), MessageFailure> {
        let outcome = self.relay.run(check).await.map_err(MessageFailure::Relay)?;
        let name = match outcome {
            RelayOutcome::Requeued { .. } => "requeued",
            RelayOutcome::Posted => "posted",
        };
        metrics::counter!(names::ABSENCE_CHECKS, "Outcome" => name).increment(1);
        tracing::info!(rule_id = %check.rule_id, user = %check.user, event_id = %check.event_id, ?outcome, "absence check relayed");
        Ok(())
    }
}

/// Milliseconds from `at` until `now` (0 for a time after it).
fn millis_since(at: &chrono::DateTime<chrono::Utc>, now: Millis) -> f64 {
    let then = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    now.0.saturating_sub(then) as f64
}

fn alert_metric(dispatched: &Dispatched, action: Action) {
    let status = dispatched.counted_as();
    let action = match action {
        Action::SmsUser { .. } => "sms_user",
        Action::NotifyOperator { .. } => "notify_operator",
    };
    metrics::counter!(names::ALERTS, "Action" => action, "Status" => status).increment(1);
}

/// Counts a processed event (received `at`) in the metrics, the batch's minute tally and what
/// its rules did that day.
fn count_processed(
    processed: &Processed,
    at: Millis,
    tally: &mut MinuteCounts,
    rules: &mut RuleDays,
) {
    tally.event(at);
    match processed {
        Processed::Valid {
            matched, outcomes, ..
        } => {
            metrics::counter!(names::EVENTS_VALID).increment(1);
            rules.processed(at, matched, outcomes);
            for outcome in outcomes {
                // A redelivered record finds its alert settled: the rule fired once, earlier.
                if outcome.dispatched.is_first() {
                    metrics::counter!(names::RULES_FIRED, "Rule" => outcome.rule_id.as_str().to_owned())
                        .increment(1);
                    tally.alert(at);
                }
                alert_metric(&outcome.dispatched, outcome.action);
            }
        }
        Processed::Invalid(violations) => {
            metrics::counter!(names::EVENTS_INVALID).increment(1);
            tally.invalid(at);
            for violation in violations {
                metrics::counter!(names::VIOLATIONS, "Kind" => violation.kind.clone()).increment(1);
            }
        }
    }
}

fn count_absence_check(check: &AbsenceCheck, outcome: &AbsenceOutcome, now: Millis) {
    let name = match outcome {
        AbsenceOutcome::Requeued { .. } => "requeued",
        AbsenceOutcome::Satisfied => "satisfied",
        AbsenceOutcome::Fired(dispatched, action) => {
            alert_metric(dispatched, *action);
            "fired"
        }
        AbsenceOutcome::CoolingDown => "cooling_down",
        AbsenceOutcome::RuleWithdrawn => "rule_withdrawn",
        AbsenceOutcome::TriggerMissing => "trigger_missing",
    };
    metrics::counter!(names::ABSENCE_CHECKS, "Outcome" => name).increment(1);
    if !matches!(outcome, AbsenceOutcome::Requeued { .. }) {
        let late = now.0.saturating_sub(check.due_at.0);
        metrics::histogram!(names::ABSENCE_CHECK_LATENESS).record(late as f64);
    }
}

/// Runs the alert sweeper, the heartbeat rules' look and the firing groups' look, on a
/// schedule.
#[derive(Clone)]
pub struct SweepHandler {
    pub sweeper: AlertSweeper,
    pub heartbeats: HeartbeatWatch,
    /// The firing groups of windows across users: resolved when no longer met.
    pub groups: GroupWindowDesk,
}

/// Alerts a sweep could not finish, or settled `unconfirmed`: the invocation fails so that the
/// function's error alarm tells the operators.
#[derive(Debug, thiserror::Error)]
#[error(
    "{remaining} alerts are still stuck and {unconfirmed} were settled unconfirmed (may not have reached their recipient)"
)]
pub struct StuckAlerts {
    pub remaining: usize,
    pub unconfirmed: usize,
}

impl SweepHandler {
    pub async fn handle(&self) -> Result<SweepReport, Box<dyn std::error::Error + Send + Sync>> {
        // First, so a silence's alert is among those the sweep below would finish. A rule set
        // that cannot be read leaves the heartbeats to the next minute, not the sweep undone.
        match self.heartbeats.look().await {
            Ok(beats) => {
                metrics::counter!(names::HEARTBEAT_SILENCES).increment(beats.fired as u64);
                if beats.watched > 0 {
                    tracing::info!(
                        watched = beats.watched,
                        fired = beats.fired,
                        reminded = beats.reminded,
                        resolved = beats.resolved,
                        "heartbeat rules decided"
                    );
                }
            }
            Err(error) => {
                tracing::warn!(error = %ErrorChain(&error), "could not read the heartbeat rules")
            }
        }
        match self.groups.look().await {
            Ok(groups) if groups.decided > 0 => {
                tracing::info!(
                    firing = groups.decided,
                    fired = groups.fired,
                    reminded = groups.reminded,
                    resolved = groups.resolved,
                    "firing groups of windows across users decided"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %ErrorChain(&error), "could not read the rules with windows across users")
            }
        }
        let report = self
            .sweeper
            .sweep()
            .await
            .map_err(|e| ErrorChain(&e).to_string())?;
        metrics::counter!(names::STUCK_ALERTS).increment(report.stuck as u64);
        metrics::counter!(names::DEFERRED_SMS_RELEASED).increment(report.released as u64);
        metrics::counter!(names::GROUP_MESSAGES_SENT).increment(report.groups_sent as u64);
        metrics::counter!(names::SMS_RECEIPTS_MISSING).increment(report.receipts_overdue as u64);
        tracing::info!(
            stuck = report.stuck,
            released = report.released,
            groups_sent = report.groups_sent,
            receipts_overdue = report.receipts_overdue,
            settled = report.settled,
            unconfirmed = report.unconfirmed,
            remaining = report.remaining,
            "alert sweep finished"
        );
        if report.remaining > 0 || report.unconfirmed > 0 {
            return Err(StuckAlerts {
                remaining: report.remaining,
                unconfirmed: report.unconfirmed,
            }
            .into());
        }
        Ok(report)
    }
}

/// Reads SNS's SMS delivery status log (a CloudWatch Logs subscription) and settles each sent
/// SMS `delivered` or `failed`.
#[derive(Clone)]
pub struct ReceiptsHandler {
    pub desk: ReceiptDesk,
    /// Counts delivered and failed SMS per minute, for the dashboard.
    pub tally: Arc<dyn ActivityTally>,
}

/// What one batch of delivery status records did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptsReport {
    /// Receipts whose alert is settled now.
    pub applied: usize,
    /// Receipts that came before Cuba linked their message id (a code SMS's never links):
    /// kept, applied when the link is written.
    pub kept: usize,
    /// Log lines that are not delivery status records: logged, never retried.
    pub unreadable: usize,
}

impl ReceiptsHandler {
    /// Fails (so Lambda retries the batch, applying is repeatable) only when the ledger could
    /// not be reached.
    pub async fn handle(
        &self,
        event: LogsEvent,
    ) -> Result<ReceiptsReport, Box<dyn std::error::Error + Send + Sync>> {
        let mut report = ReceiptsReport::default();
        let mut counts = MinuteCounts::default();
        let now = self.desk.clock.now();
        for line in &event.aws_logs.data.log_events {
            let receipt = match SmsReceipt::from_log_record(&line.message) {
                Ok(receipt) => receipt,
                Err(why) => {
                    tracing::warn!(log_event = line.id.as_str(), %why, "not an SMS delivery status record");
                    report.unreadable += 1;
                    continue;
                }
            };
            let outcome = match receipt.outcome {
                ReceiptOutcome::Delivered => "delivered",
                ReceiptOutcome::Failed => "failed",
            };
            let taken = self
                .desk
                .take(&receipt)
                .await
                .map_err(|e| ErrorChain(&e).to_string())?;
            match taken {
                // Counted only when it is one of this stack's alerts: the log is the account's,
                // with every stack's SMS and the verification codes.
                ReceiptTaken::Applied(alert) => {
                    tracing::info!(alert_id = alert.as_str(), outcome, "SMS receipt applied");
                    metrics::counter!(names::SMS_RECEIPTS, "Outcome" => outcome).increment(1);
                    counts.receipt(now, receipt.outcome == ReceiptOutcome::Delivered);
                    report.applied += 1;
                }
                ReceiptTaken::Kept => report.kept += 1,
            }
        }
        add_to_tally(self.tally.as_ref(), &counts).await;
        Ok(report)
    }
}

/// The span a stream record is processed in: every line logged while processing it carries
/// whose it is and the trace of the request that sent it (a posted check, its trigger's).
fn record_span(item: &StreamItem) -> tracing::Span {
    let (event_id, rule_id, trace) = match item {
        StreamItem::Event(received) => (&received.event.id, None, received.trace.as_ref()),
        StreamItem::DueCheck(check) => {
            (&check.event_id, Some(&check.rule_id), check.trace.as_ref())
        }
    };
    tracing::info_span!(
        "stream_record",
        user = %item.user(),
        event_id = %event_id,
        rule_id = rule_id.map(tracing::field::display),
        trace_id = trace.map(|t| tracing::field::display(t.root())),
        trace = trace.map(tracing::field::display),
        { trace::STATUS_FIELD } = tracing::field::Empty,
    )
}

/// The span a queued absence check is relayed in: its trigger's trace, as
/// [`record_span`]'s for the check once posted.
fn check_span(check: &AbsenceCheck) -> tracing::Span {
    tracing::info_span!(
        "absence_check",
        user = %check.user,
        event_id = %check.event_id,
        rule_id = %check.rule_id,
        trace_id = check.trace.as_ref().map(|t| tracing::field::display(t.root())),
        trace = check.trace.as_ref().map(tracing::field::display),
        { trace::STATUS_FIELD } = tracing::field::Empty,
    )
}
