//! Collects, in the local stack's process, what the handlers log under a request's trace: the
//! lines logged inside a span that carries `trace_id` (a stream record, a queued absence check)
//! or that carry it themselves (an alert's outcome). A test names the trace roots it follows
//! and reads back, in order, which span each line was logged in and what it said, so one
//! request can be followed through the stream, the delay queue and the ledger.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use cuba_lambda::xray::RecordedFields;

/// One line logged under a followed trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedLine {
    /// The innermost span carrying a trace it was logged in (`stream_record`,
    /// `absence_check`); none for a line that names the trace itself outside them (an alert
    /// the sweeper settled).
    pub span: Option<&'static str>,
    pub message: String,
    /// Its fields (and its span's), by name, as logged.
    pub fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Followed {
    roots: HashSet<String>,
    lines: BTreeMap<String, Vec<TracedLine>>,
}

/// The process's collector: installed once as the global subscriber, at `INFO`.
#[derive(Clone, Default)]
pub struct TraceCapture {
    followed: Arc<Mutex<Followed>>,
}

impl TraceCapture {
    /// The collector, installed as the process's subscriber on first use. `None` when the
    /// process already had another one (whose lines this cannot see).
    pub fn global() -> Option<&'static TraceCapture> {
        static CAPTURE: OnceLock<Option<TraceCapture>> = OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let capture = TraceCapture::default();
                let subscriber = tracing_subscriber::registry()
                    .with(capture.clone().with_filter(LevelFilter::INFO));
                tracing::subscriber::set_global_default(subscriber)
                    .ok()
                    .map(|()| capture)
            })
            .as_ref()
    }

    /// Keeps the lines logged under `root` from now on.
    pub fn follow(&self, root: &str) {
        self.lock().roots.insert(root.to_owned());
    }

    /// What was logged under `root`, oldest first.
    pub fn lines(&self, root: &str) -> Vec<TracedLine> {
        self.lock().lines.get(root).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Followed> {
        self.followed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A span's recorded fields, kept in its extensions.
struct SpanFields(BTreeMap<String, String>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TraceCapture {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut fields = RecordedFields::default();
        attributes.record(&mut fields);
        if fields.0.contains_key("trace_id")
            && let Some(span) = context.span(id)
        {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let mut fields = RecordedFields::default();
        event.record(&mut fields);
        let mut span = None;
        if let Some(scope) = context.event_scope(event) {
            for inner in scope {
                if let Some(SpanFields(span_fields)) = inner.extensions().get::<SpanFields>() {
                    for (name, value) in span_fields {
                        fields
                            .0
                            .entry(name.clone())
                            .or_insert_with(|| value.clone());
                    }
                    span = Some(inner.name());
                    break;
                }
            }
        }
        let Some(root) = fields.0.get("trace_id").cloned() else {
            return;
        };
        let mut followed = self.lock();
        if !followed.roots.contains(&root) {
            return;
        }
        let message = fields.0.remove("message").unwrap_or_default();
        followed.lines.entry(root).or_default().push(TracedLine {
            span,
            message,
            fields: fields.0,
        });
    }
}
