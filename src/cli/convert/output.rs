//! The converted objects, written as multi-document YAML. Each document starts with comments that
//! say what it was converted from and how the source's meaning carried over.

use serde_yaml::{Mapping, Value};

/// How wide comment lines are wrapped.
const WIDTH: usize = 100;

/// One object to write, and the comments above it.
pub struct Object {
    pub comments: Vec<String>,
    pub value: Value,
}

/// A mapping built in the order its keys should be written.
#[derive(Clone, Default)]
pub struct Map(Mapping);

impl Map {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    pub fn set_some(mut self, key: &str, value: Option<impl Into<Value>>) -> Self {
        if let Some(value) = value {
            self.insert(key, value);
        }
        self
    }

    pub fn insert(&mut self, key: &str, value: impl Into<Value>) {
        self.0.insert(Value::from(key), value.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Value {
        Value::Mapping(map.0)
    }
}

/// A number as people write it: `500` rather than `500.0` when it is whole.
pub fn number(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() < EXACT { Value::from(n as i64) } else { Value::from(n) }
}

/// The objects as one multi-document YAML text.
pub fn render(objects: &[Object]) -> String {
    let mut text = String::new();
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        for comment in &object.comments {
            for line in wrap(comment) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text.push_str(&serde_yaml::to_string(&object.value).expect("a YAML value serializes"));
    }
    text
}

/// `# `-prefixed lines of `text`, wrapped at word boundaries; continuation lines are indented.
fn wrap(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > WIDTH && line.trim_start_matches('#').trim() != "" {
            lines.push(std::mem::replace(&mut line, String::from("#  ")));
        }
        line.push(' ');
        line.push_str(word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_wrap_and_keys_keep_their_order() {
        let object = Object {
            comments: vec![format!("{} end", "word ".repeat(30))],
            value: Map::new().set("zeta", 1).set("alpha", Map::new().set("b", "x").set("a", true)).into(),
        };
        let text = render(&[object]);
        assert_eq!(
            (number(500.0), number(0.5), number(-3.0)),
            (Value::from(500), Value::from(0.5), Value::from(-3))
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("# word") && lines[0].len() <= WIDTH, "{text}");
        assert!(lines[1].starts_with("#   word"), "{text}");
        assert!(text.ends_with("zeta: 1\nalpha:\n  b: x\n  a: true\n"), "{text}");
    }
}
