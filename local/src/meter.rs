//! Metering for the cost model (`local/benches/cost.rs`): an SDK interceptor on the handlers'
//! clients that counts every AWS request by service and operation and, for DynamoDB, the request
//! units it consumes under DynamoDB's published rules: a write of up to 1 KB is one write unit
//! (a failed conditional write too), and again for every index whose entry it writes or deletes
//! (the entry's projected size); a read is one unit per 4 KB strongly consistent, half that
//! eventually consistent (a query's items summed, at least one). moto answers capacity with
//! constants, so the units are computed here from the items each request writes and returns,
//! with the tables' own index definitions. Only the local runner compiles this.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ProjectionType, ReturnValue};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::lock;

/// What the handlers asked of AWS since the meter was last read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metered {
    /// Requests by (service, operation).
    pub requests: BTreeMap<(String, String), u64>,
    /// DynamoDB write request units, by table (and `table/index`).
    pub write_units: BTreeMap<String, f64>,
    /// DynamoDB read request units, by table (and `table/index`).
    pub read_units: BTreeMap<String, f64>,
}

impl Metered {
    pub fn requests_of(&self, service: &str) -> u64 {
        self.requests
            .iter()
            .filter(|((s, _), _)| s == service)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// One index of a table, as far as its write cost goes.
#[derive(Debug, Clone)]
struct IndexShape {
    name: String,
    keys: Vec<String>,
    projection: Projected,
}

#[derive(Debug, Clone)]
enum Projected {
    All,
    /// The table's and the index's keys, plus these attributes.
    Some(BTreeSet<String>),
}

#[derive(Debug, Default)]
struct Table {
    keys: Vec<String>,
    indexes: Vec<IndexShape>,
}

#[derive(Debug, Default)]
pub struct Meter {
    tables: Mutex<HashMap<String, Arc<Table>>>,
    metered: Mutex<Metered>,
}

/// What the interceptor noted of a request before it was sent.
#[derive(Debug, Clone)]
enum Noted {
    Put {
        table: String,
        item: Item,
    },
    Update {
        table: String,
        names: BTreeSet<String>,
        removes: BTreeSet<String>,
    },
    Get {
        table: String,
        consistent: bool,
    },
    Query {
        table: String,
        index: Option<String>,
        consistent: bool,
    },
    BatchGet {
        consistent: HashMap<String, bool>,
    },
    /// A batch's puts, each charged as a put of its item (with its index entries).
    BatchWrite {
        puts: Vec<(String, Item)>,
    },
    /// A transaction's writes: each charged twice its size. A put's size is its item; an
    /// update's is not known from the request (moto answers a transaction without consumed
    /// capacity), so it is charged on what the update writes (its key and values): the least it
    /// can cost, short of an item that grew past that (a window's counter item: up to 2 KB).
    Transact {
        writes: Vec<(String, usize)>,
    },
    Other,
}

impl Storable for Noted {
    type Storer = StoreReplace<Self>;
}

type Item = HashMap<String, AttributeValue>;

impl Meter {
    pub fn new() -> Arc<Meter> {
        Arc::new(Meter::default())
    }

    /// Reads the tables' keys and indexes, so that writes can be costed.
    pub async fn learn(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> anyhow::Result<()> {
        let described = client.describe_table().table_name(table).send().await?;
        let Some(description) = described.table else {
            anyhow::bail!("{table} is not described");
        };
        let names = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
            schema
                .iter()
                .map(|k| k.attribute_name().to_owned())
                .collect::<Vec<_>>()
        };
        let projected = |p: Option<&aws_sdk_dynamodb::types::Projection>| match p
            .and_then(|p| p.projection_type())
        {
            Some(ProjectionType::All) | None => Projected::All,
            Some(_) => Projected::Some(
                p.map(|p| p.non_key_attributes().iter().cloned().collect())
                    .unwrap_or_default(),
            ),
        };
        let mut indexes = Vec::new();
        for gsi in description.global_secondary_indexes() {
            indexes.push(IndexShape {
                name: gsi.index_name().unwrap_or_default().to_owned(),
                keys: names(gsi.key_schema()),
                projection: projected(gsi.projection()),
            });
        }
        for lsi in description.local_secondary_indexes() {
            indexes.push(IndexShape {
                name: lsi.index_name().unwrap_or_default().to_owned(),
                keys: names(lsi.key_schema()),
                projection: projected(lsi.projection()),
            });
        }
        let shape = Table {
            keys: names(description.key_schema()),
            indexes,
        };
        lock(&self.tables).insert(table.to_owned(), Arc::new(shape));
        Ok(())
    }

    /// What was metered since the last call, and a fresh start.
    pub fn take(&self) -> Metered {
        std::mem::take(&mut *lock(&self.metered))
    }

    /// How many requests were metered so far (without resetting).
    pub fn requests(&self) -> u64 {
        lock(&self.metered).total_requests()
    }

    /// The interceptor to install on a handler's SDK client.
    pub fn interceptor(self: &Arc<Self>) -> MeteringInterceptor {
        MeteringInterceptor(self.clone())
    }

    fn table(&self, name: &str) -> Arc<Table> {
        lock(&self.tables).get(name).cloned().unwrap_or_default()
    }

    fn count(&self, service: &str, operation: &str) {
        *lock(&self.metered)
            .requests
            .entry((service.to_owned(), operation.to_owned()))
            .or_default() += 1;
    }

    fn write(&self, what: String, units: f64) {
        *lock(&self.metered).write_units.entry(what).or_default() += units;
    }

    fn read(&self, what: String, units: f64) {
        *lock(&self.metered).read_units.entry(what).or_default() += units;
    }

    /// A written item: the table's units, and each index entry it makes.
    fn written(
        &self,
        table: &str,
        item: &Item,
        changed: Option<(&BTreeSet<String>, &BTreeSet<String>)>,
    ) {
        let size = item_size(item);
        self.write(table.to_owned(), write_units(size));
        let shape = self.table(table);
        for index in &shape.indexes {
            let mut projected: BTreeSet<&String> = shape.keys.iter().chain(&index.keys).collect();
            let in_index = index.keys.iter().all(|k| item.contains_key(k));
            // An update that removes an index key deletes the item's entry (one unit).
            if let Some((_, removes)) = changed
                && index.keys.iter().any(|k| removes.contains(k))
            {
                self.write(format!("{table}/{}", index.name), 1.0);
                continue;
            }
            if !in_index {
                continue;
            }
            let entry = match &index.projection {
                Projected::All => size,
                Projected::Some(attributes) => {
                    projected.extend(attributes);
                    item.iter()
                        .filter(|(name, _)| projected.contains(name))
                        .map(|(name, value)| name.len() + value_size(value))
                        .sum()
                }
            };
            // An update rewrites an index entry only when it names an attribute the index holds.
            if let Some((names, _)) = changed {
                let touched = match &index.projection {
                    Projected::All => true,
                    Projected::Some(_) => projected.iter().any(|a| names.contains(*a)),
                };
                if !touched {
                    continue;
                }
            }
            self.write(format!("{table}/{}", index.name), write_units(entry));
        }
    }
}

fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// DynamoDB's item size: attribute names plus values (numbers about a byte per two digits).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        _ => 1,
    }
}

/// The attribute names an update expression touches, and those it removes.
fn update_names(input: &UpdateItemInput) -> (BTreeSet<String>, BTreeSet<String>) {
    let expression = input.update_expression().unwrap_or_default();
    let aliases = input
        .expression_attribute_names()
        .cloned()
        .unwrap_or_default();
    let resolve = |word: &str| {
        aliases
            .get(word)
            .cloned()
            .unwrap_or_else(|| word.to_owned())
    };
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '#'))
            .filter(|w| !w.is_empty())
            .map(resolve)
            .collect()
    };
    let names = words(expression).into_iter().collect();
    let removes = expression
        .split_once("REMOVE")
        .map(|(_, rest)| {
            let clause = ["SET", "ADD", "DELETE"]
                .iter()
                .filter_map(|k| rest.find(k))
                .min()
                .map_or(rest, |end| &rest[..end]);
            words(clause).into_iter().collect()
        })
        .unwrap_or_default();
    (names, removes)
}

#[derive(Debug)]
pub struct MeteringInterceptor(Arc<Meter>);

impl Intercept for MeteringInterceptor {
    fn name(&self) -> &'static str {
        "CostMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        let noted = if let Some(put) = input.downcast_ref::<PutItemInput>() {
            Noted::Put {
                table: put.table_name().unwrap_or_default().to_owned(),
                item: put.item().cloned().unwrap_or_default(),
            }
        } else if let Some(update) = input.downcast_mut::<UpdateItemInput>() {
            // The item after the update is what the write is charged on: ask for it back
            // (the adapters never read an update's answer).
            if update.return_values.is_none() {
                update.return_values = Some(ReturnValue::AllNew);
            }
            let (names, removes) = update_names(update);
            Noted::Update {
                table: update.table_name().unwrap_or_default().to_owned(),
                names,
                removes,
            }
        } else if let Some(get) = input.downcast_ref::<GetItemInput>() {
            Noted::Get {
                table: get.table_name().unwrap_or_default().to_owned(),
                consistent: get.consistent_read() == Some(true),
            }
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            Noted::Query {
                table: query.table_name().unwrap_or_default().to_owned(),
                index: query.index_name().map(str::to_owned),
                consistent: query.consistent_read() == Some(true),
            }
        } else if let Some(scan) = input.downcast_ref::<ScanInput>() {
            Noted::Query {
                table: scan.table_name().unwrap_or_default().to_owned(),
                index: scan.index_name().map(str::to_owned),
                consistent: scan.consistent_read() == Some(true),
            }
        } else if let Some(batch) = input.downcast_ref::<BatchGetItemInput>() {
            Noted::BatchGet {
                consistent: batch
                    .request_items()
                    .map(|tables| {
                        tables
                            .iter()
                            .map(|(t, k)| (t.clone(), k.consistent_read() == Some(true)))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            Noted::BatchWrite {
                puts: batch
                    .request_items()
                    .into_iter()
                    .flatten()
                    .flat_map(|(table, requests)| {
                        requests.iter().filter_map(|r| {
                            r.put_request()
                                .map(|put| (table.clone(), put.item().clone()))
                        })
                    })
                    .collect(),
            }
        } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            Noted::Transact {
                writes: transaction
                    .transact_items()
                    .iter()
                    .filter_map(|item| {
                        if let Some(put) = item.put() {
                            Some((put.table_name().to_owned(), item_size(put.item())))
                        } else if let Some(update) = item.update() {
                            let values: usize = update
                                .expression_attribute_values()
                                .map_or(0, |v| v.values().map(value_size).sum());
                            Some((
                                update.table_name().to_owned(),
                                item_size(update.key()) + values,
                            ))
                        } else if let Some(delete) = item.delete() {
                            Some((delete.table_name().to_owned(), item_size(delete.key())))
                        } else {
                            item.condition_check()
                                .map(|c| (c.table_name().to_owned(), item_size(c.key())))
                        }
                    })
                    .collect(),
            }
        } else {
            Noted::Other
        };
        cfg.interceptor_state().store_put(noted);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let meter = &self.0;
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_owned(), m.name().to_owned()))
            .unwrap_or_default();
        meter.count(&service, &operation);
        let Some(noted) = cfg.load::<Noted>().cloned() else {
            return Ok(());
        };
        // Only answers count: an error answer is a refused conditional write, or nothing read.
        let output = context.output_or_error().and_then(Result::ok);
        match noted {
            Noted::Put { table, item } => match output {
                Some(_) => meter.written(&table, &item, None),
                // A refused conditional write is charged for the item it would have written.
                None => meter.write(table, write_units(item_size(&item))),
            },
            // What DynamoDB left unprocessed is charged when a later request writes it.
            Noted::BatchWrite { puts } => {
                let left: Vec<&Item> = output
                    .and_then(|o| o.downcast_ref::<BatchWriteItemOutput>())
                    .and_then(|o| o.unprocessed_items())
                    .into_iter()
                    .flat_map(|tables| tables.values().flatten())
                    .filter_map(|r| r.put_request().map(|p| p.item()))
                    .collect();
                if output.is_some() {
                    for (table, item) in puts.iter().filter(|(_, item)| !left.contains(&item)) {
                        meter.written(table, item, None);
                    }
                }
            }
            Noted::Update {
                table,
                names,
                removes,
            } => match output.and_then(|o| o.downcast_ref::<UpdateItemOutput>()) {
                Some(out) => {
                    let after = out.attributes().cloned().unwrap_or_default();
                    meter.written(&table, &after, Some((&names, &removes)));
                }
                None => meter.write(table, 1.0),
            },
            Noted::Get { table, consistent } => {
                let size = output
                    .and_then(|o| o.downcast_ref::<GetItemOutput>())
                    .and_then(|o| o.item())
                    .map_or(0, item_size);
                meter.read(table, read_units(size, consistent));
            }
            Noted::Query {
                table,
                index,
                consistent,
            } => {
                let items = output
                    .and_then(|o| o.downcast_ref::<QueryOutput>())
                    .map(|o| o.items().to_vec())
                    .or_else(|| {
                        output
                            .and_then(|o| o.downcast_ref::<ScanOutput>())
                            .map(|o| o.items().to_vec())
                    })
                    .unwrap_or_default();
                let size = items.iter().map(item_size).sum();
                let what = index.map_or(table.clone(), |i| format!("{table}/{i}"));
                meter.read(what, read_units(size, consistent));
            }
            Noted::BatchGet { consistent } => {
                if let Some(out) = output.and_then(|o| o.downcast_ref::<BatchGetItemOutput>()) {
                    for (table, items) in out.responses().into_iter().flatten() {
                        let strong = consistent.get(table).copied().unwrap_or(false);
                        for item in items {
                            meter.read(table.clone(), read_units(item_size(item), strong));
                        }
                    }
                }
            }
            Noted::Transact { writes } => {
                // A cancelled transaction is charged too (its conditions were read): as its
                // writes, a bound from above.
                for (table, size) in writes {
                    meter.write(table, 2.0 * write_units(size));
                }
            }
            Noted::Other => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }

    #[test]
    fn item_sizes_follow_dynamodb_rules() {
        let item = Item::from([
            ("user".to_owned(), AttributeValue::N("12345".into())),
            ("id".to_owned(), s("abc")),
            ("ok".to_owned(), AttributeValue::Bool(true)),
            (
                "l".to_owned(),
                AttributeValue::L(vec![s("xy"), AttributeValue::N("7".into())]),
            ),
        ]);
        // user: 4 + (3 + 1); id: 2 + 3; ok: 2 + 1; l: 1 + 3 + (1 + 2) + (1 + 2).
        assert_eq!(item_size(&item), 8 + 5 + 3 + 10);
        assert_eq!(write_units(0), 1.0, "a write costs at least one unit");
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(read_units(10, false), 0.5);
    }

    #[test]
    fn an_update_names_its_attributes_and_removals() {
        let update = UpdateItemInput::builder()
            .update_expression(
                "SET #status = :s, settled_at = :now REMOVE lease_until, unsettled ADD n :one",
            )
            .expression_attribute_names("#status", "status")
            .build()
            .expect("an input");
        let (names, removes) = update_names(&update);
        for name in ["status", "settled_at", "lease_until", "unsettled", "n"] {
            assert!(names.contains(name), "{name} in {names:?}");
        }
        assert_eq!(
            removes.into_iter().collect::<Vec<_>>(),
            ["lease_until", "unsettled"]
        );
    }

    #[test]
    fn writes_are_charged_for_the_item_and_each_index_entry_they_touch() {
        let meter = Meter::default();
        lock(&meter.tables).insert(
            "alerts".into(),
            Arc::new(Table {
                keys: vec!["alert_id".into()],
                indexes: vec![
                    IndexShape {
                        name: "by_user".into(),
                        keys: vec!["user".into(), "fired_at".into()],
                        projection: Projected::All,
                    },
                    IndexShape {
                        name: "by_lease".into(),
                        keys: vec!["unsettled".into(), "lease_until".into()],
                        projection: Projected::Some(BTreeSet::new()),
                    },
                ],
            }),
        );
        let alert = Item::from([
            ("alert_id".to_owned(), s("a")),
            ("user".to_owned(), AttributeValue::N("1".into())),
            ("fired_at".to_owned(), AttributeValue::N("5".into())),
            ("status".to_owned(), s("sent")),
        ]);
        // A settle: the item, its by_user entry (everything projected), and the by_lease
        // entry it deletes by removing the index's keys.
        let names = BTreeSet::from(["status".to_owned(), "unsettled".to_owned()]);
        let removes = BTreeSet::from(["unsettled".to_owned()]);
        meter.written("alerts", &alert, Some((&names, &removes)));
        let metered = meter.take();
        assert_eq!(
            metered.write_units,
            BTreeMap::from([
                ("alerts".to_owned(), 1.0),
                ("alerts/by_lease".to_owned(), 1.0),
                ("alerts/by_user".to_owned(), 1.0),
            ])
        );
        // An update naming nothing a keys-only index holds leaves it alone.
        let mut leased = alert.clone();
        leased.insert("unsettled".into(), s("u#1"));
        leased.insert("lease_until".into(), AttributeValue::N("9".into()));
        let names = BTreeSet::from(["status".to_owned()]);
        meter.written("alerts", &leased, Some((&names, &BTreeSet::new())));
        assert_eq!(
            meter.take().write_units.get("alerts/by_lease"),
            None,
            "the lease index holds no status"
        );
        assert_eq!(meter.take(), Metered::default(), "take starts afresh");
    }
}
