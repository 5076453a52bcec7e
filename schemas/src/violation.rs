//! One reason a request body was refused, located by a JSON pointer so a client can show it
//! beside the offending input (SPEC §3: the `errors` list of a 422).

/// A single rule a body broke.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// RFC 6901 pointer into the request body; `""` is the whole body, e.g. `/fields/1/type`.
    pub path: String,
    /// What is wrong, in a short sentence a person can act on.
    pub message: String,
}

impl Violation {
    /// A violation at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}
