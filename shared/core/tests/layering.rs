//! The core's modules form no import cycle: each module names (outside comments) only modules
//! that never name it back, directly or through others. Read from the sources, so a new
//! `use crate::...` that closes a cycle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name → the crate modules its code refers to.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).expect("src") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).expect("a module folder") {
                files.push(inner.expect("an entry").path());
            }
        } else {
            files.push(path);
        }
    }
    for path in files {
        let relative = path.strip_prefix(&src).expect("under src");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_owned())
            .expect("a module name");
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        let targets = graph.entry(module.clone()).or_insert_with(BTreeSet::new);
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for part in code.split("crate::").skip(1) {
                let target: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !target.is_empty() && target != module {
                    targets.insert(target);
                }
            }
        }
    }
    graph
}

fn cycle_through(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(start) = path.iter().position(|n| n == node) {
        let mut cycle = path[start..].to_vec();
        cycle.push(node.to_owned());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_owned());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(cycle) = cycle_through(graph, next, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node.to_owned());
    None
}

#[test]
fn the_core_has_no_import_cycle() {
    let graph = imports();
    assert!(graph.len() > 15, "the core's modules were read: {graph:?}");
    assert!(
        graph["evaluation"].contains("decision"),
        "edges were read: {graph:?}"
    );
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = cycle_through(&graph, module, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_domain_and_the_ports_sit_where_they_belong() {
    let graph = imports();
    assert!(
        graph["domain"].is_empty(),
        "the domain imports nothing: {:?}",
        graph["domain"]
    );
    for data in ["alert", "absence", "document", "error_log", "listing"] {
        assert!(
            !graph[data].contains("ports"),
            "{data} is data the ports carry, so it cannot need them"
        );
    }
    for orchestration in [
        "alerting",
        "evaluation",
        "scheduling",
        "processing",
        "source",
        "tryout",
    ] {
        assert!(
            !graph["ports"].contains(orchestration),
            "the ports (traits only) do not depend on {orchestration}"
        );
    }
}
