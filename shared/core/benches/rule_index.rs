//! Matching cost against the number of rules: Cuba's indexed `RuleSet::triggered_by`, the
//! linear scan it replaced, and the `quamina` crate on the same patterns and events in the same
//! run. Rules: activity events of one noun (of 50) and verb (unique per rule), with an amount
//! threshold (`gte`) and a field that must exist, as issue 10 describes; 1% of events match.
//! quamina 0.7 panics when more than 255 patterns share one exact value of a field (here `kind`),
//! so its patterns are spread over instances of 250 and an event is matched against each.
//! A second workload has every rule on one type (`bill`/`paid`), told apart by a property's
//! value (`properties.merchant`, one per rule) and an amount threshold: how rule sets grow per
//! merchant, city or band, where the type alone narrows nothing. Single thread; run with
//! `make bench` (or `cargo bench -p cuba-core --bench rule_index`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cuba_core::rules::RuleSet;
use serde_json::{Value, json};

/// Distinct events, few enough to stay in cache as an event just built does in the pipeline;
/// each timed pass goes over them [`PASSES`] times.
const EVENTS: usize = 2_000;
const PASSES: usize = 10;
const QUAMINA_PER_INSTANCE: usize = 250;

/// A small deterministic generator (xorshift), so every run measures the same events.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn threshold(i: usize) -> u64 {
    (i as u64 % 10) * 1000 + 500
}

fn rules(n: usize) -> (RuleSet, Vec<String>) {
    let mut cuba = Vec::new();
    let mut quamina = Vec::new();
    for i in 0..n {
        let (noun, verb) = (format!("noun{}", i % 50), format!("verb{i}"));
        cuba.push(json!({"id": format!("r{i}"),
            "when": {"kind": "activity", "noun": noun, "verb": verb,
                     "properties.amount": {"gte": threshold(i)},
                     "properties.note": {"exists": true}},
            "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"}));
        quamina.push(
            json!({"kind": ["activity"], "noun": [noun], "verb": [verb],
                   "properties": {"amount": [{"numeric": [">=", threshold(i)]}],
                                  "note": [{"exists": true}]}})
            .to_string(),
        );
    }
    let set = RuleSet::from_json(&json!({ "rules": cuba })).expect("generated rules are valid");
    (set, quamina)
}

/// Events as rules see them: 1% match a rule; the rest name a rule's type but miss its amount
/// or its note, or name a verb no rule has.
fn events(n: usize) -> Vec<Value> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..EVENTS)
        .map(|e| {
            let i = rng.below(n);
            let (noun, verb) = (format!("noun{}", i % 50), format!("verb{i}"));
            let view = |verb: String, amount: u64, note: bool| {
                let mut properties = json!({"amount": amount, "type": "electricity"});
                if note {
                    properties["note"] = json!("n");
                }
                json!({"user": e, "id": format!("e{e}"), "received_at": 1_700_000_000_000u64 + e as u64,
                       "kind": "activity", "noun": noun, "verb": verb, "properties": properties})
            };
            match rng.below(100) {
                0 => view(verb, threshold(i), true),
                1..=40 => view(verb, threshold(i).saturating_sub(1), true),
                41..=70 => view(verb, threshold(i) + 10, false),
                _ => view(format!("other{i}"), 100_000, true),
            }
        })
        .collect()
}

fn per_event(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e9 / (EVENTS * PASSES) as f64
}

fn time<F: FnMut() -> usize>(mut run: F) -> (f64, usize) {
    // One warm-up pass, then the best of three.
    let matched = run();
    let best = (0..3)
        .map(|_| {
            let at = Instant::now();
            for _ in 0..PASSES {
                black_box(run());
            }
            at.elapsed()
        })
        .min()
        .unwrap_or_default();
    (per_event(best), matched)
}

/// One rule per merchant on the same type, each with its own amount threshold.
fn merchant_rules(n: usize) -> RuleSet {
    let rules: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("m{i}"),
                "when": {"kind": "activity", "noun": "bill", "verb": "paid",
                         "properties.merchant": format!("merchant{i}"),
                         "properties.amount": {"gte": threshold(i)}},
                "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"})
        })
        .collect();
    RuleSet::from_json(&json!({ "rules": rules })).expect("generated rules are valid")
}

/// Bill payments at a random merchant of the rules' (or one no rule names), 1% over its
/// threshold.
fn merchant_events(n: usize) -> Vec<Value> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    (0..EVENTS)
        .map(|e| {
            let i = rng.below(n);
            let merchant = if rng.below(10) == 0 {
                "elsewhere".to_owned()
            } else {
                format!("merchant{i}")
            };
            let amount = if rng.below(100) == 0 {
                threshold(i)
            } else {
                threshold(i).saturating_sub(1)
            };
            json!({"user": e, "id": format!("e{e}"), "received_at": 1_700_000_000_000u64 + e as u64,
                   "kind": "activity", "noun": "bill", "verb": "paid",
                   "properties": {"amount": amount, "merchant": merchant}})
        })
        .collect()
}

/// Time per event of the index and of the linear scan over `views`, and how many rules matched
/// (the same both ways, or the run stops).
fn indexed_and_scanned(set: &RuleSet, views: &[Value]) -> (f64, f64, usize) {
    let (indexed, matched) = time(|| views.iter().map(|v| set.triggered_by(v).count()).sum());
    let (linear, linear_matched) = time(|| {
        views
            .iter()
            .map(|v| {
                set.all()
                    .iter()
                    .filter(|r| r.enabled && r.when.matches(v))
                    .count()
            })
            .sum()
    });
    assert_eq!(matched, linear_matched, "the index and the scan agree");
    (indexed, linear, matched)
}

/// A table of the index against the scan for rule sets of every size that `workload` builds
/// (the rules, and the events to match).
fn one_type_table(heading: &str, workload: impl Fn(usize) -> (RuleSet, Vec<Value>)) {
    println!();
    println!("| {heading} | Cuba indexed | Cuba linear scan | matches (per {EVENTS} events) |");
    println!("|---:|---:|---:|---:|");
    for n in [3, 100, 1_000, 10_000] {
        let (set, views) = workload(n);
        let (indexed, linear, matched) = indexed_and_scanned(&set, &views);
        println!(
            "| {n} | {} ({:.1} M/s) | {} | {matched} |",
            ns(indexed),
            1000.0 / indexed,
            ns(linear)
        );
    }
}

/// One rule per amount threshold on the same type (`gte` 100, 200, ...), and payments whose
/// amounts are spread evenly up to the highest threshold: the index tries only the rules whose
/// threshold the amount reaches, half of them on average here.
fn threshold_workload(n: usize) -> (RuleSet, Vec<Value>) {
    let rules: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("t{i}"),
                "when": {"kind": "activity", "noun": "bill", "verb": "paid",
                         "properties.amount": {"gte": (i as u64 + 1) * 100}},
                "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"})
        })
        .collect();
    let set = RuleSet::from_json(&json!({ "rules": rules })).expect("generated rules are valid");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let views = (0..EVENTS)
        .map(|e| {
            json!({"user": e, "kind": "activity", "noun": "bill", "verb": "paid",
                   "properties": {"amount": rng.below(n * 100)}})
        })
        .collect();
    (set, views)
}

fn ns(x: f64) -> String {
    if x < 1000.0 {
        format!("{x:.0} ns")
    } else {
        format!("{:.1} µs", x / 1000.0)
    }
}

fn main() {
    println!(
        "| rules | Cuba indexed (view built) | Cuba linear scan | Cuba indexed incl. JSON parse | quamina (bytes) | quamina instances | matches (per {EVENTS} events) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [3, 100, 1_000, 10_000] {
        let (set, patterns) = rules(n);
        let views = events(n);
        let bytes: Vec<Vec<u8>> = views.iter().map(|v| v.to_string().into_bytes()).collect();
        let mut instances = Vec::new();
        for chunk in patterns.chunks(QUAMINA_PER_INSTANCE) {
            let mut q = quamina::Quamina::<usize>::new();
            for (i, p) in chunk.iter().enumerate() {
                q.add_pattern(i, p).expect("quamina takes the pattern");
            }
            instances.push(q);
        }
        let (indexed, linear, matched) = indexed_and_scanned(&set, &views);
        let (parsed, _) = time(|| {
            bytes
                .iter()
                .map(|b| {
                    let view: Value = serde_json::from_slice(b).unwrap_or(Value::Null);
                    set.triggered_by(&view).count()
                })
                .sum()
        });
        let (theirs, their_matched) = time(|| {
            bytes
                .iter()
                .map(|b| {
                    instances
                        .iter()
                        .map(|q| q.matches_for_event(b).map(|m| m.len()).unwrap_or(0))
                        .sum::<usize>()
                })
                .sum()
        });
        assert_eq!(matched, their_matched, "Cuba and quamina agree");
        println!(
            "| {n} | {} ({:.1} M/s) | {} | {} | {} | {} | {matched} |",
            ns(indexed),
            1000.0 / indexed,
            ns(linear),
            ns(parsed),
            ns(theirs),
            instances.len()
        );
    }
    one_type_table("rules on one type, by merchant", |n| {
        (merchant_rules(n), merchant_events(n))
    });
    one_type_table("rules on one type, by threshold", threshold_workload);
}
