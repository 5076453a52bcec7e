//! `POST /v1/api-keys` and the stored form of keys.

use crate::http_body::RequestBody;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use simd_json::prelude::*;
use sqlx::{Any, AnyPool, Transaction};

use crate::auth::{mint_key, Caller, NewKey, Scope, Scopes};
use crate::error::{violation, ApiError};
use crate::http_body;
use crate::routes::HttpResponse;

/// A key as the store holds it.
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub id: String,
    pub store_id: String,
    pub secret_hash: String,
    pub scopes: Scopes,
}

#[derive(Serialize)]
struct CreatedKey<'a> {
    id: &'a str,
    name: &'a str,
    scopes: Vec<&'static str>,
    key: &'a str,
}

/// `POST /v1/api-keys {name, scopes[]}` → 201 with the key shown once. A key can only grant
/// scopes its creator holds, so `apiKeys:write` never escalates.
pub(crate) async fn create(
    db: &AnyPool,
    caller: &Caller,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ApiKeysWrite)?;
    let mut buf = http_body::read_json(headers, incoming).await?;
    let value = http_body::decode(&mut buf)?;
    let mut violations = Vec::new();
    let (name, scopes) = {
        let Some(mut reader) = schemas::ObjectReader::new(&value, "", &mut violations) else {
            return Err(ApiError::Unprocessable(violations));
        };
        let name = reader.string("name", true, 255);
        let scopes = reader.array("scopes", true).map(|items| {
            let mut scopes = Vec::new();
            for (i, item) in items.iter().enumerate() {
                scopes.push(item.as_str().and_then(Scope::parse).ok_or(i));
            }
            scopes
        });
        reader.finish();
        (name, scopes)
    };
    let mut granted = Scopes::default();
    if let Some(scopes) = scopes {
        if scopes.is_empty() {
            violations.push(schemas::Violation {
                path: "/scopes".into(),
                message: "must name at least one scope".into(),
            });
        }
        for scope in scopes {
            match scope {
                Ok(scope) => granted = granted.with(scope),
                Err(i) => violations.push(schemas::Violation {
                    path: format!("/scopes/{i}"),
                    message: format!("must be one of: {}", Scopes::all().names().join(", ")),
                }),
            }
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::Unprocessable(violations));
    }
    let Some(name) = name else {
        return Err(violation("/name", "is required"));
    };
    // A key can grant only what it holds; the refusal names the first scope it lacks.
    if let Some(lacking) = Scope::ALL
        .into_iter()
        .find(|scope| granted.contains(*scope) && !caller.scopes.contains(*scope))
    {
        return Err(ApiError::Forbidden(lacking.as_str()));
    }
    let key = mint_key();
    let mut tx = db.begin().await?;
    insert(
        &mut tx,
        &caller.store_id,
        &name,
        &key,
        granted,
        &store::clock::now(),
    )
    .await?;
    tx.commit().await?;
    Ok(http_body::json(
        StatusCode::CREATED,
        &CreatedKey {
            id: &key.id,
            name: &name,
            scopes: granted.names(),
            key: &key.presented,
        },
    ))
}

/// Stores a minted key's hash, never its secret.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    name: &str,
    key: &NewKey,
    scopes: Scopes,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, store_id, name, secret_hash, scopes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(store_id)
    .bind(name)
    .bind(&key.secret_hash)
    .bind(scopes.to_stored())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The key with this id, if any.
pub(crate) async fn find(db: &AnyPool, id: &str) -> Result<Option<StoredKey>, sqlx::Error> {
    let row: Option<(String, String, String, String)> =
        sqlx::query_as("SELECT id, store_id, secret_hash, scopes FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(id, store_id, secret_hash, scopes)| StoredKey {
        id,
        store_id,
        secret_hash,
        scopes: Scopes::from_stored(&scopes),
    }))
}
