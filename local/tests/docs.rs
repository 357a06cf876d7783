//! The README and the book under `docs/src/` hold together: every relative link and image points
//! at a file that exists and, where it names a heading, at a heading that exists (slugs as GitHub
//! and mdBook make them); every chapter is in the book's summary; the README stays a front door.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The README is the front door; the guides live in the book.
const README_MAX_LINES: usize = 250;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository")
}

fn book() -> PathBuf {
    repo().join("docs").join("src")
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    let mut folders = vec![book()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a docs folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The lines of `text` outside fenced code blocks, with inline code spans blanked out.
fn prose_lines(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut prose = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                prose.push_str(part);
            }
        }
        lines.push(prose);
    }
    lines
}

/// A heading's anchor as GitHub and mdBook spell it: lower case, letters, digits, `-` and `_`
/// kept, spaces made `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

/// Every anchor a file's headings make (a repeated heading gets `-1`, `-2`, ...).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        if fenced {
            continue;
        }
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(heading);
        let count = seen.entry(base.clone()).or_default();
        anchors.insert(if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// The targets of a text's inline links and images: `[label](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            let target = rest[..end].split_whitespace().next().unwrap_or_default();
            targets.push(target.to_owned());
            rest = &rest[end..];
        }
    }
    targets
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let files = markdown_files();
    assert!(
        files.len() > 10,
        "the README and the book's chapters were read: {files:?}"
    );
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a markdown file");
        let own = anchors(&text);
        for target in link_targets(&text) {
            if is_external(&target) || target.is_empty() {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let shown = format!("{}: {target}", file.display());
            if path.is_empty() {
                if !anchor.is_some_and(|a| own.contains(a)) {
                    broken.push(format!("{shown} (no such heading here)"));
                }
                continue;
            }
            let resolved = file.parent().expect("a folder").join(path);
            if !resolved.exists() {
                broken.push(format!("{shown} (no such file)"));
                continue;
            }
            if let Some(anchor) = anchor {
                let target_text = std::fs::read_to_string(&resolved).unwrap_or_default();
                if !anchors(&target_text).contains(anchor) {
                    broken.push(format!("{shown} (no such heading there)"));
                }
            }
        }
    }
    assert!(checked > 50, "links were found: {checked}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_chapter_is_in_the_summary() {
    let summary = std::fs::read_to_string(book().join("SUMMARY.md")).expect("the summary");
    let listed: BTreeSet<PathBuf> = link_targets(&summary)
        .into_iter()
        .map(|target| book().join(target))
        .collect();
    for file in markdown_files() {
        if file.starts_with(book()) && !file.ends_with("SUMMARY.md") {
            assert!(
                listed.contains(&file),
                "{} is not in docs/src/SUMMARY.md",
                file.display()
            );
        }
    }
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("the README");
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "the README has {lines} lines; guides belong in the book (docs/src/)"
    );
    for command in ["make dev", "make test"] {
        assert!(readme.contains(command), "the README shows `{command}`");
    }
}

#[test]
fn slugs_and_anchors_are_made_as_github_makes_them() {
    assert_eq!(slug("`PUT /api/v1/user/`"), "put-apiv1user");
    assert_eq!(
        slug("Schemas and the error log"),
        "schemas-and-the-error-log"
    );
    assert_eq!(
        anchors("# Rules\n```\n# not a heading\n```\n## Rules\n#nota"),
        BTreeSet::from(["rules".to_owned(), "rules-1".to_owned()])
    );
    assert_eq!(
        link_targets("see [a](x.md#b) and `[c](not-a-link)` ![i](img.png)"),
        ["x.md#b", "img.png"]
    );
}
