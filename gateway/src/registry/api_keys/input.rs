//! The body of `POST /v1/api-keys`: `{name, scopes[]}`.

use crate::auth::{Scope, Scopes};
use crate::error::{violation, ApiError};

/// A key to mint, as asked for.
#[derive(Debug)]
pub(crate) struct NewApiKey {
    pub name: String,
    pub scopes: Scopes,
}

/// Reads `{name, scopes[]}`: a name, and at least one scope, each one the gateway knows.
pub(crate) fn new_api_key(value: &schemas::Value<'_>) -> Result<NewApiKey, ApiError> {
    let mut violations = Vec::new();
    let (name, scopes) = {
        let Some(mut reader) = schemas::ObjectReader::new(value, "", &mut violations) else {
            return Err(ApiError::Unprocessable(violations));
        };
        let name = reader.string("name", true, 255);
        let scopes = reader.array("scopes", true).map(|items| {
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    schemas::reader::as_str(item)
                        .and_then(Scope::parse)
                        .ok_or(i)
                })
                .collect::<Vec<_>>()
        });
        reader.finish();
        (name, scopes)
    };
    // Scope problems come after the reader's, so the answer lists them in body order.
    let mut granted = Scopes::default();
    if let Some(scopes) = scopes {
        if scopes.is_empty() {
            violations.push(schemas::Violation::new(
                "/scopes",
                "must name at least one scope",
            ));
        }
        for scope in scopes {
            match scope {
                Ok(scope) => granted = granted.with(scope),
                Err(i) => violations.push(schemas::Violation::new(
                    format!("/scopes/{i}"),
                    format!("must be one of: {}", Scopes::all().names().join(", ")),
                )),
            }
        }
    }
    super::super::refuse_any(violations)?;
    let Some(name) = name else {
        return Err(violation("/name", "is required"));
    };
    Ok(NewApiKey {
        name,
        scopes: granted,
    })
}
