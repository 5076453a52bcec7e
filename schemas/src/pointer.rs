//! RFC 6901 JSON pointers: checking the ones users configure as `jsonPointerPath`, resolving
//! them against a decoded body, and escaping keys when building violation paths.

use std::borrow::Cow;

use crate::Value;

/// Escapes one reference token (`~` → `~0`, `/` → `~1`) so it can be appended to a pointer.
pub fn escape(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

/// Splits a pointer into unescaped reference tokens. `""` (the whole document) has none.
/// Refuses text that is not a pointer: it must be empty or start with `/`, and every `~` must be
/// followed by `0` or `1`.
pub fn parse(pointer: &str) -> Result<Vec<String>, &'static str> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err("must be a JSON pointer: empty or starting with \"/\"");
    };
    rest.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return Err("must be a JSON pointer: \"~\" must be followed by 0 or 1"),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Follows `tokens` from `root`. Array indices must be plain decimal numbers without leading
/// zeros, as RFC 6901 says; anything else finds nothing.
pub fn resolve<'v, 'a>(root: &'v Value<'a>, tokens: &[String]) -> Option<&'v Value<'a>> {
    let mut current = root;
    for token in tokens {
        current = match current {
            Value::Object(map) => map.get(token.as_str())?,
            Value::Array(items) => items.get(array_index(token)?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn array_index(token: &str) -> Option<usize> {
    let canonical = token == "0" || (!token.starts_with('0') && !token.is_empty());
    if canonical && token.bytes().all(|b| b.is_ascii_digit()) {
        token.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode;

    #[test]
    fn parses_and_unescapes() {
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(parse("/"), Ok(vec![String::new()]));
        assert_eq!(
            parse("/a~1b/c~0d/0"),
            Ok(vec!["a/b".into(), "c~d".into(), "0".into()])
        );
    }

    #[test]
    fn refuses_bad_pointers() {
        assert!(parse("a/b").is_err());
        assert!(parse("/a~2").is_err());
        assert!(parse("/a~").is_err());
    }

    #[test]
    fn escape_round_trips() {
        assert_eq!(escape("a/b~c"), "a~1b~0c");
        assert_eq!(
            parse(&format!("/{}", escape("a/b~c"))),
            Ok(vec!["a/b~c".into()])
        );
    }

    #[test]
    fn resolves_objects_and_arrays() {
        let mut buf = br#"{"a": {"b": [10, {"c": "x"}]}, "": 1}"#.to_vec();
        let v = decode(&mut buf).expect("valid");
        let found = |p: &str| resolve(&v, &parse(p).expect("pointer")).map(|v| v.to_string());
        assert_eq!(found("/a/b/1/c").as_deref(), Some("x"));
        assert_eq!(found("/a/b/0").as_deref(), Some("10"));
        assert_eq!(found("/").as_deref(), Some("1"));
        assert_eq!(found("/a/b/01"), None);
        assert_eq!(found("/a/b/-"), None);
        assert_eq!(found("/a/b/1/c/d"), None);
    }
}
