//! The OpenAPI document (`shared/web/openapi.json`, served at `/api/v1/openapi.json`) and the
//! routers cannot drift apart: every `/api` and `/admin/api` route registered in the source is
//! documented with its methods, and every documented operation is a registered route. What each
//! operation answers is checked against the document by schemathesis in `make test`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// (path, method) for every `.route("...", get(..).put(..))` under `src/`.
fn registered() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        for chunk in text.split(".route(").skip(1) {
            let Some(rest) = chunk.trim_start().strip_prefix('"') else {
                continue;
            };
            let Some((path, call)) = rest.split_once('"') else {
                continue;
            };
            if !(path.starts_with("/api/") || path.starts_with("/admin/api")) {
                continue;
            }
            // The handlers of this route: up to the next builder call on the router.
            let call = call
                .split(".route(")
                .next()
                .unwrap_or_default()
                .split(".with_state")
                .next()
                .unwrap_or_default();
            for method in ["get", "post", "put", "delete"] {
                let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !call.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && call.as_bytes()[i - 1] != b'_'
                });
                if called {
                    routes.insert((path.to_owned(), method.to_owned()));
                }
            }
        }
    }
    routes
}

fn documented() -> (Value, BTreeSet<(String, String)>) {
    let doc: Value =
        serde_json::from_str(cuba_web::ingest::OPENAPI_JSON).expect("the document is JSON");
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            operations.insert((path.clone(), method.clone()));
        }
    }
    (doc, operations)
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_a_route() {
    let routes = registered();
    let (_, operations) = documented();
    assert!(
        routes.len() > 30,
        "the source scan found the routes: {routes:?}"
    );
    let undocumented: Vec<_> = routes.difference(&operations).collect();
    let unrouted: Vec<_> = operations.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_unique_operation_ids_and_resolvable_references() {
    let (doc, _) = documented();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} repeats");
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty())
            );
        }
    }
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap_or_default();
        let pointer = target.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
}
