//! Reads the properties of one JSON object while collecting every violation, so a management
//! body that breaks five rules gets five answers at once instead of one per round trip.

use simd_json::prelude::*;
use simd_json::value::borrowed::Object;

use crate::{pointer, Value, Violation};

/// Reads one object's properties; each accessor records a violation instead of stopping, and
/// [`finish`](Self::finish) refuses whatever was not read.
///
/// `null` for a property counts as absent. Optional strings may be empty; required ones may not.
#[derive(Debug)]
pub struct ObjectReader<'v, 'a> {
    object: &'v Object<'a>,
    path: String,
    violations: &'v mut Vec<Violation>,
    known: Vec<String>,
}

impl<'v, 'a> ObjectReader<'v, 'a> {
    /// None (and a violation "must be an object" at `path`) when `value` isn't an object.
    pub fn new(
        value: &'v Value<'a>,
        path: &str,
        violations: &'v mut Vec<Violation>,
    ) -> Option<Self> {
        match value {
            // A number decode kept as text is an object only in form.
            Value::Object(object) if crate::decode::number_text(value).is_none() => Some(Self {
                object,
                path: path.to_owned(),
                violations,
                known: Vec::new(),
            }),
            _ => {
                violations.push(Violation::new(path, "must be an object"));
                None
            }
        }
    }

    /// A string of at most `max_len` characters. Required strings must also not be empty.
    pub fn string(&mut self, key: &str, required: bool, max_len: usize) -> Option<String> {
        self.text(key, required, usize::from(required), max_len)
    }

    /// A string whose length in characters is within `min_len..=max_len`.
    pub fn text(
        &mut self,
        key: &str,
        required: bool,
        min_len: usize,
        max_len: usize,
    ) -> Option<String> {
        let value = self.present(key, required)?;
        let Some(s) = value.as_str() else {
            self.violate(key, "must be a string");
            return None;
        };
        let len = s.chars().count();
        if len < min_len {
            let message = match min_len {
                1 => "must not be empty".to_owned(),
                n => format!("must be at least {n} characters"),
            };
            self.violate(key, message);
            return None;
        }
        if len > max_len {
            self.violate(key, format!("must be at most {max_len} characters"));
            return None;
        }
        Some(s.to_owned())
    }

    /// A JSON boolean.
    pub fn bool(&mut self, key: &str, required: bool) -> Option<bool> {
        let value = self.present(key, required)?.as_bool();
        if value.is_none() {
            self.violate(key, "must be a boolean");
        }
        value
    }

    /// A JSON array, as a slice of its items (which the caller checks, under
    /// [`child_path`](Self::child_path)`(key) + "/" + index`).
    pub fn array(&mut self, key: &str, required: bool) -> Option<&'v [Value<'a>]> {
        match self.present(key, required)? {
            Value::Array(items) => Some(items.as_slice()),
            _ => {
                self.violate(key, "must be an array");
                None
            }
        }
    }

    /// The property exactly as sent, `null` included, marked as known.
    pub fn value(&mut self, key: &str) -> Option<&'v Value<'a>> {
        self.mark(key);
        self.object.get(key)
    }

    /// True when the property is present and not `null`. A `null` is marked as known, since it
    /// means absent; a value is not: a caller refusing a property it does not allow does so
    /// with [`violate`](Self::violate).
    pub fn has(&mut self, key: &str) -> bool {
        match self.object.get(key) {
            Some(value) if value.is_null() => {
                self.mark(key);
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// `path/key`, with the key escaped as a pointer token.
    pub fn child_path(&self, key: &str) -> String {
        format!("{}/{}", self.path, pointer::escape(key))
    }

    /// The pointer to the object being read.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Records a violation at `key`, and marks the key as known so it is not also reported as
    /// an unknown property.
    pub fn violate(&mut self, key: &str, message: impl Into<String>) {
        self.mark(key);
        let path = self.child_path(key);
        self.violations.push(Violation::new(path, message));
    }

    /// The shared violation list, for reading nested objects with their own reader.
    pub fn violations(&mut self) -> &mut Vec<Violation> {
        self.violations
    }

    /// Reports every property that was not read as "unknown property", in key order so the
    /// answer does not depend on hash order.
    pub fn finish(self) {
        let mut unknown: Vec<&str> = self
            .object
            .keys()
            .map(|k| k.as_ref())
            .filter(|k| !self.known.iter().any(|known| known == k))
            .collect();
        unknown.sort_unstable();
        for key in unknown {
            let path = format!("{}/{}", self.path, pointer::escape(key));
            self.violations
                .push(Violation::new(path, "unknown property"));
        }
    }

    /// The value when present and not null; "is required" when absent and required.
    fn present(&mut self, key: &str, required: bool) -> Option<&'v Value<'a>> {
        self.mark(key);
        match self.object.get(key) {
            Some(value) if !value.is_null() => Some(value),
            _ => {
                if required {
                    self.violate(key, "is required");
                }
                None
            }
        }
    }

    fn mark(&mut self, key: &str) {
        if !self.known.iter().any(|k| k == key) {
            self.known.push(key.to_owned());
        }
    }
}

/// The text of a JSON string, for callers that read items of an [`ObjectReader::array`] or a
/// [`ObjectReader::value`] without naming the parser's types.
pub fn as_str<'v>(value: &'v Value<'_>) -> Option<&'v str> {
    value.as_str()
}

/// Whether the value is JSON `null`.
pub fn is_null(value: &Value<'_>) -> bool {
    value.is_null()
}

/// The property `key` of an object, as sent; None for a missing key or a value that is not an
/// object.
pub fn member<'v, 'a>(value: &'v Value<'a>, key: &str) -> Option<&'v Value<'a>> {
    value.get(key)
}

/// The members of an object in the order the parser holds them; None for anything else (a
/// number kept as exact text is an object only in form, so it is not one here either).
pub fn members<'v, 'a>(value: &'v Value<'a>) -> Option<Vec<(&'v str, &'v Value<'a>)>> {
    match value {
        Value::Object(object) if crate::decode::number_text(value).is_none() => {
            Some(object.iter().map(|(k, v)| (k.as_ref(), v)).collect())
        }
        _ => None,
    }
}

/// A JSON scalar as `serde_json` holds it: an integer that fits 64 bits as one, any other
/// number as the nearest double (parsed from the exact text the decoder kept); None for arrays
/// and objects.
pub fn scalar(value: &Value<'_>) -> Option<serde_json::Value> {
    if let Some(text) = crate::decode::number_text(value) {
        if let Ok(n) = text.parse::<i64>() {
            return Some(n.into());
        }
        if let Ok(n) = text.parse::<u64>() {
            return Some(n.into());
        }
        return text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(serde_json::Value::Number);
    }
    if value.is_null() {
        return Some(serde_json::Value::Null);
    }
    if let Some(flag) = value.as_bool() {
        return Some(serde_json::Value::Bool(flag));
    }
    if let Some(text) = value.as_str() {
        return Some(serde_json::Value::String(text.to_owned()));
    }
    if let Some(n) = value.as_i64() {
        return Some(n.into());
    }
    if let Some(n) = value.as_u64() {
        return Some(n.into());
    }
    value
        .as_f64()
        .and_then(serde_json::Number::from_f64)
        .map(serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode;

    fn read(json: &str, check: impl FnOnce(&mut ObjectReader<'_, '_>)) -> Vec<Violation> {
        let mut buf = json.as_bytes().to_vec();
        let value = decode(&mut buf).expect("json");
        let mut violations = Vec::new();
        if let Some(mut r) = ObjectReader::new(&value, "/x", &mut violations) {
            check(&mut r);
            r.finish();
        }
        violations
    }

    fn at(path: &str, message: &str) -> Violation {
        Violation::new(path, message)
    }

    #[test]
    fn strings() {
        let v = read(
            r#"{"a": "", "b": 1, "c": "abcd", "d": "", "e": null}"#,
            |r| {
                assert_eq!(r.string("a", true, 9), None);
                assert_eq!(r.string("b", false, 9), None);
                assert_eq!(r.string("c", false, 3), None);
                assert_eq!(r.string("d", false, 3).as_deref(), Some(""));
                assert_eq!(r.string("e", false, 3), None);
                assert_eq!(r.string("missing", true, 3), None);
            },
        );
        assert_eq!(
            v,
            [
                at("/x/a", "must not be empty"),
                at("/x/b", "must be a string"),
                at("/x/c", "must be at most 3 characters"),
                at("/x/missing", "is required"),
            ]
        );
    }

    #[test]
    fn bools_arrays_and_raw_values() {
        let v = read(
            r#"{"a": true, "b": "true", "c": [1, 2], "d": {}, "e": null}"#,
            |r| {
                assert_eq!(r.bool("a", true), Some(true));
                assert_eq!(r.bool("b", true), None);
                assert_eq!(r.array("c", true).map(<[_]>::len), Some(2));
                assert_eq!(r.array("d", false), None);
                assert!(r.value("e").is_some_and(|v| v.is_null()));
                assert!(!r.has("e"));
            },
        );
        assert_eq!(
            v,
            [
                at("/x/b", "must be a boolean"),
                at("/x/d", "must be an array")
            ]
        );
    }

    #[test]
    fn unknown_properties_are_escaped_and_sorted() {
        let v = read(r#"{"z": 1, "a/b": 2, "k": 3}"#, |r| {
            r.value("k");
        });
        assert_eq!(
            v,
            [
                at("/x/a~1b", "unknown property"),
                at("/x/z", "unknown property")
            ]
        );
    }

    #[test]
    fn violate_marks_the_key_known() {
        let v = read(r#"{"a": 1}"#, |r| r.violate("a", "no"));
        assert_eq!(v, [at("/x/a", "no")]);
    }

    #[test]
    fn non_objects_are_refused() {
        let mut buf = b"[1]".to_vec();
        let value = decode(&mut buf).expect("json");
        let mut violations = Vec::new();
        assert!(ObjectReader::new(&value, "", &mut violations).is_none());
        assert_eq!(violations, [at("", "must be an object")]);
    }

    #[test]
    fn plain_accessors_hide_the_parser() {
        let mut buf = br#"{"a": "x", "b": null, "c": {"k": 1}}"#.to_vec();
        let value = decode(&mut buf).expect("json");
        assert_eq!(member(&value, "a").and_then(as_str), Some("x"));
        assert!(member(&value, "b").is_some_and(is_null));
        assert_eq!(member(&value, "missing"), None);
        let inner = member(&value, "c").and_then(members).expect("object");
        assert_eq!(inner.len(), 1);
        assert_eq!(inner[0].0, "k");
        assert!(member(&value, "a").and_then(members).is_none());
    }
}

#[cfg(test)]
mod scalar_tests {
    use super::*;

    #[test]
    fn scalars_keep_their_value_and_containers_are_refused() {
        for (json, want) in [
            (
                "-1.7976931348623157e+308",
                Some(serde_json::json!(-1.797_693_134_862_315_7e308)),
            ),
            (
                "-5.12725406415284e+16",
                Some(serde_json::json!(-51_272_540_641_528_400_i64)),
            ),
            ("12", Some(serde_json::json!(12))),
            (
                "12345678901234567890",
                Some(serde_json::json!(12_345_678_901_234_567_890_u64)),
            ),
            ("1e2", Some(serde_json::json!(100))),
            ("0.25", Some(serde_json::json!(0.25))),
            ("\"x\"", Some(serde_json::json!("x"))),
            ("true", Some(serde_json::json!(true))),
            ("null", Some(serde_json::Value::Null)),
            ("[1]", None),
            ("{\"a\": 1}", None),
        ] {
            let mut buf = format!("{{\"v\": {json}}}").into_bytes();
            let value = crate::decode(&mut buf).expect("json");
            let v = member(&value, "v").expect("v");
            assert_eq!(scalar(v), want, "{json}");
        }
    }
}
