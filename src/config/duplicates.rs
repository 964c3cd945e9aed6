//! Duplicate keys in the instance file. `serde_json` keeps the last of two equal keys of an
//! object without a word, so a second `"hub-a"` endpoint or `"delivery"` object would silently
//! replace the first. Before the file is validated, every object is read once more as borrowed
//! raw JSON with a visitor that keeps every member: each member's value is a slice of the file,
//! so the line of both occurrences of a key is known.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Problem, join};

/// Every key found twice in one object of `text`, at its JSON path, naming the lines of both.
/// `text` is valid JSON (checked before); anything that does not parse here is left alone.
pub(super) fn duplicate_keys(text: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Ok(root) = serde_json::from_str::<&RawValue>(text) {
        walk(root, "", text, &mut problems);
    }
    problems
}

/// A JSON object's members in file order, duplicates kept.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    members.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

fn walk(value: &RawValue, path: &str, text: &str, problems: &mut Vec<Problem>) {
    let json = value.get();
    match json.as_bytes().first() {
        Some(b'{') => {
            let Ok(Members(members)) = serde_json::from_str::<Members>(json) else {
                return;
            };
            let mut first: HashMap<&str, &RawValue> = HashMap::new();
            for (key, member) in &members {
                let at = join(path, key);
                match first.get(key.as_str()) {
                    Some(earlier) => problems.push(Problem::new(
                        &at,
                        format!(
                            "duplicate key at line {} (first {at} at line {}): one would silently replace the other",
                            line(text, member),
                            line(text, earlier)
                        ),
                    )),
                    None => {
                        first.insert(key, member);
                    }
                }
                walk(member, &at, text, problems);
            }
        }
        Some(b'[') => {
            let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(json) else {
                return;
            };
            for (index, item) in items.iter().enumerate() {
                walk(item, &join(path, &format!("[{index}]")), text, problems);
            }
        }
        _ => {}
    }
}

/// The 1-based line of `text` on which `value` (a slice of it) starts.
fn line(text: &str, value: &RawValue) -> usize {
    let offset = (value.get().as_ptr() as usize)
        .saturating_sub(text.as_ptr() as usize)
        .min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_at_every_depth_with_both_lines() {
        let text = r#"{
  "endpoints": {
    "hub-a": { "properties": { "endpointType": "EventHub" },
               "delivery": { "concurrency": 1 },
               "delivery": { "concurrency": 2 } },
    "hub-a": { "properties": {} }
  },
  "rate": { "steps": [ { "eventsPerSecond": 1, "eventsPerSecond": 2 } ] },
  "version": 1
}"#;
        let found: Vec<String> = duplicate_keys(text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0].starts_with(
                "endpoints.hub-a.delivery: duplicate key at line 5 (first endpoints.hub-a.delivery at line 4)"
            ),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with(
                "endpoints.hub-a: duplicate key at line 6 (first endpoints.hub-a at line 3)"
            ),
            "{found:#?}"
        );
        assert!(
            found[2].starts_with(
                "rate.steps[0].eventsPerSecond: duplicate key at line 8 (first rate.steps[0].eventsPerSecond at line 8)"
            ),
            "{found:#?}"
        );
    }

    #[test]
    fn keys_are_compared_as_decoded_and_equal_values_elsewhere_are_fine() {
        // "hub\u002da" is "hub-a": the same key, written differently.
        let text = r#"{"a": {"x": 1}, "b": {"x": 1}, "e": {"hub-a": 1, "hub\u002da": 2}}"#;
        let found = duplicate_keys(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "e.hub-a");
        assert!(duplicate_keys(r#"[{"a": 1}, {"a": 1}]"#).is_empty());
    }
}
