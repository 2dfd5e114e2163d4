//! The documentation's links: every relative link in the README, `docs/`, the chart's README and the
//! examples' READMEs names a file that exists, and every `#anchor` a heading of the page it points
//! into, as GitHub renders them.

use regex::Regex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown page of the documentation.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md"), root().join("charts/bellwether/README.md")];
    for dir in ["docs", "examples"] {
        let mut stack = vec![root().join(dir)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "md") {
                    pages.push(path);
                }
            }
        }
    }
    pages.sort();
    pages
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The anchors GitHub gives the headings of a page: lower case, punctuation dropped, spaces as
/// hyphens, and `-1`, `-2`, ... after a repeated one.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(text) {
        let Some(title) = line.strip_prefix('#').map(|t| t.trim_start_matches('#')) else { continue };
        if !title.starts_with(' ') {
            continue;
        }
        let base: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// Every link target in the prose of `text`, with its line number.
fn links(text: &str) -> Vec<(usize, String)> {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut fenced = false;
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code can show link syntax without being a link.
        let outside_code: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        found.extend(link.captures_iter(&outside_code).map(|c| (number + 1, c[1].to_string())));
    }
    found
}

/// What is wrong with the link `target` on `page`, if anything.
fn broken(page: &Path, target: &str) -> Option<String> {
    if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = target.split_once('#').map_or((target, None), |(p, a)| (p, Some(a)));
    let file = if path.is_empty() { page.to_path_buf() } else { page.parent().unwrap().join(path) };
    let shown = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
    if !file.exists() {
        return Some(format!("{shown} does not exist"));
    }
    let anchor = anchor?;
    if file.extension().is_none_or(|e| e != "md") {
        return Some(format!("an anchor into {shown}, which is not a Markdown page"));
    }
    let text = std::fs::read_to_string(&file).expect("a readable page");
    (!anchors(&text).contains(anchor)).then(|| format!("{shown} has no heading #{anchor}"))
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("a readable page");
        for (line, target) in links(&text) {
            checked += 1;
            if let Some(problem) = broken(&page, &target) {
                let page = page.strip_prefix(root()).unwrap().display();
                problems.push(format!("{page}:{line}: ({target}): {problem}"));
            }
        }
    }
    assert!(checked > 50, "only {checked} links found: is the pattern right?");
    assert!(problems.is_empty(), "broken links:\n{}", problems.join("\n"));
}

#[test]
fn anchors_follow_githubs_rules() {
    let page = "# Simulate a rollout: `bellwether simulate`\n## Steer: `promote`, `abort`\n## Steer: `promote`, `abort`\n```sh\n# not a heading\n```\n#notaheading\n";
    let expected = ["simulate-a-rollout-bellwether-simulate", "steer-promote-abort", "steer-promote-abort-1"];
    assert_eq!(anchors(page), expected.iter().map(|a| a.to_string()).collect());
}

#[test]
fn a_missing_file_or_heading_is_reported() {
    let page = root().join("docs/rollout.md");
    assert!(broken(&page, "nowhere.md").is_some());
    assert!(broken(&page, "concepts.md#no-such-heading").is_some());
    assert!(broken(&page, "#conditions").is_none());
    assert!(broken(&page, "../README.md").is_none());
    assert_eq!(links("see [a](b.md) and `[c](d.md)`\n```\n[e](f.md)\n```\n"), vec![(1, "b.md".to_string())]);
}
