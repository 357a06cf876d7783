//! The core's layering, read from the sources (outside comments), so a new `use crate::...`
//! that breaks it fails here: the concern folders stack in one order (a folder names only
//! folders below it), the modules form no import cycle, and the ports stay traits over data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The concern folders, lowest first: each may import only the folders before it.
const FOLDERS: [&str; 9] = [
    "model",
    "intake",
    "schemas",
    "rules",
    "delivery",
    "evaluation",
    "absence",
    "pipeline",
    "console",
];

/// Test-only builders any module's tests may use.
const TEST_SUPPORT: &str = "fixtures";

fn source_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// A file's module path: `evaluation/decision.rs` is `evaluation::decision`, a folder's
/// `mod.rs` the folder itself.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Module path → the crate paths its code names (`crate::a::b::Item` as `a::b::Item`).
fn references() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut graph = BTreeMap::new();
    for path in files {
        let module = module_of(path.strip_prefix(&src).expect("under src"));
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        let named = graph.entry(module).or_insert_with(BTreeSet::new);
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for part in code.split("crate::").skip(1) {
                let target: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let target = target.trim_end_matches(':');
                if !target.is_empty() {
                    named.insert(target.to_owned());
                }
            }
        }
    }
    graph
}

/// Module path → the modules it imports: each named path resolved to the longest module it
/// starts with.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let named = references();
    let modules: BTreeSet<String> = named.keys().cloned().collect();
    named
        .iter()
        .map(|(module, paths)| {
            let targets = paths
                .iter()
                .filter_map(|path| {
                    let segments: Vec<&str> = path.split("::").collect();
                    (1..=segments.len())
                        .rev()
                        .map(|n| segments[..n].join("::"))
                        .find(|prefix| modules.contains(prefix))
                })
                .filter(|target| target != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

fn folder(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
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
fn every_module_sits_in_a_concern_folder() {
    for module in imports().keys() {
        let folder = folder(module);
        assert!(
            FOLDERS.contains(&folder) || folder == TEST_SUPPORT,
            "{module} is outside the concern folders {FOLDERS:?}"
        );
    }
}

#[test]
fn folders_import_only_the_folders_below_them() {
    let graph = imports();
    assert!(
        graph["evaluation"].contains("evaluation::decision"),
        "edges were read: {graph:?}"
    );
    let rank = |module: &str| FOLDERS.iter().position(|f| *f == folder(module));
    let mut broken = Vec::new();
    for (module, targets) in &graph {
        for target in targets {
            let (Some(from), Some(to)) = (rank(module), rank(target)) else {
                continue;
            };
            if to > from {
                broken.push(format!("{module} -> {target}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports of a folder above (order {FOLDERS:?}): {broken:?}"
    );
}

#[test]
fn the_core_has_no_import_cycle() {
    let graph = imports();
    assert!(graph.len() > 25, "the core's modules were read: {graph:?}");
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
    // Zones and language tags, and trace contexts, are domain values too, kept in their own
    // files; like the rest of the domain they import nothing.
    for values in ["model::locality", "model::trace"] {
        assert!(
            graph[values].is_empty(),
            "the domain imports nothing: {:?}",
            graph[values]
        );
    }
    assert!(
        graph["model::domain"]
            .iter()
            .all(|m| ["model::locality", "model::trace"].contains(&m.as_str())),
        "the domain imports nothing: {:?}",
        graph["model::domain"]
    );
    let ports: Vec<&String> = graph.keys().filter(|m| m.ends_with("::ports")).collect();
    assert_eq!(
        ports.len(),
        7,
        "a ports file per concern that has any: {ports:?}"
    );
    for data in [
        "delivery::alert",
        "absence",
        "model::document",
        "schemas::error_log",
        "model::listing",
        "intake::rate_limit",
    ] {
        assert!(
            graph[data].iter().all(|target| !target.ends_with("ports")),
            "{data} is data the ports carry, so it cannot need them: {:?}",
            graph[data]
        );
    }
    let orchestration = [
        "delivery::alerting",
        "delivery::verification",
        "evaluation",
        "evaluation::source",
        "absence::scheduling",
        "pipeline",
        "console::tryout",
        "console::backtest",
    ];
    for port in ports {
        for module in orchestration {
            assert!(
                !graph[port].contains(module),
                "the ports (traits only) do not depend on {module}: {port} does"
            );
        }
    }
}
