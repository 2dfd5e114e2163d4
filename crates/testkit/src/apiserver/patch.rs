//! The patch formats: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).
//!
//! Strategic merge patch and server-side apply are served as merge patches (see `store`): the types
//! here have no patch-merge keys that matter to the controller, and lists are replaced whole.

use serde_json::Value;

/// Applies a JSON merge patch: objects merge key by key, `null` removes a key, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let fields = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_fields {
        if value.is_null() {
            fields.remove(key);
        } else {
            merge(fields.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Applies a JSON patch. Either every operation applies or the document is unchanged.
pub fn json_patch(document: &mut Value, operations: &Value) -> Result<(), String> {
    let operations = operations.as_array().ok_or("a JSON patch must be an array of operations")?;
    let mut patched = document.clone();
    for operation in operations {
        apply_operation(&mut patched, operation)?;
    }
    *document = patched;
    Ok(())
}

fn apply_operation(document: &mut Value, operation: &Value) -> Result<(), String> {
    let field = |name: &str| {
        operation
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("operation {operation} has no {name}"))
    };
    let value =
        || operation.get("value").cloned().ok_or_else(|| format!("operation {operation} has no value"));
    let path = field("path")?;
    match field("op")? {
        "add" => add(document, path, value()?),
        "remove" => remove(document, path).map(drop),
        "replace" => {
            *pointer_mut(document, path)? = value()?;
            Ok(())
        }
        "move" => {
            let moved = remove(document, field("from")?)?;
            add(document, path, moved)
        }
        "copy" => {
            let copied = pointer_mut(document, field("from")?)?.clone();
            add(document, path, copied)
        }
        "test" => {
            let expected = value()?;
            match document.pointer(path) {
                Some(actual) if *actual == expected => Ok(()),
                Some(actual) => Err(format!("testing value {path} failed: {actual} is not {expected}")),
                // As the API server's JSON patch library does: a missing field tests equal to null,
                // which is how clients guard adding a field that must not exist yet.
                None if expected.is_null() => Ok(()),
                None => Err(format!("testing value {path} failed: no such field")),
            }
        }
        other => Err(format!("unknown JSON patch operation {other:?}")),
    }
}

/// Splits a JSON pointer into its parent pointer and its unescaped last token.
fn split(path: &str) -> Result<(&str, String), String> {
    let at = path.rfind('/').ok_or_else(|| format!("{path:?} is not a JSON pointer"))?;
    Ok((&path[..at], path[at + 1..].replace("~1", "/").replace("~0", "~")))
}

fn pointer_mut<'a>(document: &'a mut Value, path: &str) -> Result<&'a mut Value, String> {
    document.pointer_mut(path).ok_or_else(|| format!("path {path} does not exist"))
}

fn array_index(token: &str, len: usize, path: &str) -> Result<usize, String> {
    match token.parse::<usize>() {
        Ok(index) if index <= len && (token == "0" || !token.starts_with('0')) => Ok(index),
        _ => Err(format!("index {token:?} is out of bounds in {path}")),
    }
}

fn add(document: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *document = value;
        return Ok(());
    }
    let (parent, token) = split(path)?;
    match pointer_mut(document, parent)? {
        Value::Object(fields) => {
            fields.insert(token, value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if token == "-" { items.len() } else { array_index(&token, items.len(), path)? };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("{parent} is neither an object nor an array")),
    }
}

fn remove(document: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, token) = split(path)?;
    match pointer_mut(document, parent)? {
        Value::Object(fields) => fields.remove(&token).ok_or_else(|| format!("path {path} does not exist")),
        Value::Array(items) if !items.is_empty() => {
            let index = array_index(&token, items.len() - 1, path)?;
            Ok(items.remove(index))
        }
        _ => Err(format!("path {path} does not exist")),
    }
}
