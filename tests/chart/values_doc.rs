//! `docs/chart-values.md`: every value of the chart with its default and what it does, generated
//! from the comments of `values.yaml`, so that the page cannot drift from the chart.
//! `BELLWETHER_UPDATE_DOCS=1 cargo test --test chart values_doc` writes it again.

use super::{chart, read};
use std::path::Path;

/// A key of values.yaml: its dotted path, its own text after the colon, and the comment right above.
#[derive(Debug, PartialEq)]
struct Key {
    path: String,
    inline: String,
    comment: Vec<String>,
}

/// The keys of values.yaml in order. A comment belongs to the key right below it; a blank line, or
/// a commented-out example (`#  - ...`), ends it.
fn keys(text: &str) -> Vec<Key> {
    let mut keys = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut comment: Vec<String> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() {
            comment.clear();
        } else if let Some(text) = trimmed.strip_prefix('#') {
            if text.starts_with("  ") {
                comment.clear();
            } else {
                comment.push(text.trim().to_string());
            }
        } else if let Some((name, inline)) = trimmed.split_once(':').filter(|_| !trimmed.starts_with('-')) {
            stack.retain(|(depth, _)| *depth < indent);
            stack.push((indent, name.to_string()));
            let path = stack.iter().map(|(_, name)| name.as_str()).collect::<Vec<_>>().join(".");
            keys.push(Key { path, inline: inline.trim().to_string(), comment: std::mem::take(&mut comment) });
        }
    }
    keys
}

/// The page: a row per documented key, with the defaults of the keys below it that have none.
fn page(keys: &[Key]) -> String {
    let mut out = String::from(
        "# The chart's values\n\nEvery value of the Helm chart in [`charts/bellwether`](../charts/bellwether/), with its\n\
         default, generated from the comments of its `values.yaml` by\n\
         `BELLWETHER_UPDATE_DOCS=1 cargo test --test chart values_doc`; a test fails when they differ.\n\
         `values.schema.json` refuses a value of the wrong type or form when the chart renders.\n\
         [Install in a cluster](install.md) puts them to use.\n\n\
         | value | default | what it does |\n|---|---|---|\n",
    );
    for (i, key) in keys.iter().enumerate().filter(|(_, key)| !key.comment.is_empty()) {
        let below = |other: &&Key| other.path.starts_with(&format!("{}.", key.path));
        let undocumented: Vec<String> = keys[i + 1..]
            .iter()
            .take_while(below)
            .filter(|child| !child.inline.is_empty())
            .filter(|child| {
                // Covered here unless a documented key between them covers it.
                !keys[i + 1..].iter().take_while(below).any(|between| {
                    !between.comment.is_empty() && child.path.starts_with(&format!("{}.", between.path))
                }) && child.comment.is_empty()
            })
            .map(|child| format!("`{}: {}`", &child.path[key.path.len() + 1..], child.inline))
            .collect();
        let default = match (key.inline.is_empty(), undocumented.is_empty()) {
            (false, _) => format!("`{}`", key.inline),
            (true, false) => undocumented.join(", "),
            (true, true) => "see the keys below".to_string(),
        };
        // Markdown would take `<fullname>` for an HTML tag and drop it.
        let meaning = key.comment.join(" ").replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;");
        out.push_str(&format!("| `{}` | {} | {} |\n", key.path, default.replace('|', "\\|"), meaning));
    }
    out
}

#[test]
fn every_value_is_documented_on_the_values_page() {
    let keys = keys(&read(&chart().join("values.yaml")));
    // A value with nothing to say what it does: neither it nor a key above it has a comment.
    let undocumented: Vec<&str> = keys
        .iter()
        .filter(|key| !key.inline.is_empty())
        .filter(|key| {
            !keys.iter().any(|other| {
                !other.comment.is_empty()
                    && (other.path == key.path || key.path.starts_with(&format!("{}.", other.path)))
            })
        })
        .map(|key| key.path.as_str())
        .collect();
    assert!(undocumented.is_empty(), "values without a comment in values.yaml: {undocumented:?}");

    let generated = page(&keys);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/chart-values.md");
    if std::env::var_os("BELLWETHER_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("writing docs/chart-values.md");
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == generated,
        "docs/chart-values.md differs from values.yaml: run BELLWETHER_UPDATE_DOCS=1 cargo test --test chart values_doc"
    );
}

#[test]
fn comments_belong_to_the_key_below_them() {
    let text = "# The image.\nimage:\n  # Where from.\n  repository: \"\"\n  tag: v1\n\n# Cut off.\n\nlist: []\n#  - example\n# After.\nafter: 1\n";
    let keys = keys(text);
    let summary: Vec<(&str, &str, usize)> =
        keys.iter().map(|k| (k.path.as_str(), k.inline.as_str(), k.comment.len())).collect();
    assert_eq!(
        summary,
        [
            ("image", "", 1),
            ("image.repository", "\"\"", 1),
            ("image.tag", "v1", 0),
            ("list", "[]", 0),
            ("after", "1", 1)
        ]
    );
    let page = page(&keys);
    assert!(page.contains("| `image` | `tag: v1` | The image. |"), "{page}");
    assert!(!page.contains("`list`"), "{page}");
}
