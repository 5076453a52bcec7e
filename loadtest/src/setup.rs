//! `--setup`: makes a fresh gateway ready for a scenario with one command. With an admin key,
//! it creates (or finds and reuses) the `loadtest` integration, the event types the
//! scenarios send to, and an API key that can send events and read contacts: the key stored
//! by an earlier run when there is one that still works, else a new one, then stored.

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::keystore::KeyFile;
use crate::scenario::{Targets, API_ALIAS, SDK_ALIAS, WEBHOOK_ALIAS};

const INTEGRATION: &str = "loadtest";

/// The event types, keyed by alias.
fn definitions() -> [(&'static str, Value); 3] {
    let email = |pointer: Option<&str>| {
        let mut field = json!({"id": "email", "name": "Email", "type": "email", "required": true,
                               "isPrimaryKey": true});
        if let Some(pointer) = pointer {
            field["jsonPointerPath"] = json!(pointer);
        }
        field
    };
    [
        (
            WEBHOOK_ALIAS,
            json!({
                "name": "Load test webhook", "category": "receive", "alias": WEBHOOK_ALIAS,
                "receiveType": "webhook",
                "fields": [email(Some("/customer/email")),
                    {"id": "orderId", "name": "Order", "type": "text", "required": true, "jsonPointerPath": "/order/id"},
                    {"id": "total", "name": "Total", "type": "decimal", "required": true, "jsonPointerPath": "/order/total"}]
            }),
        ),
        (
            API_ALIAS,
            json!({
                "name": "Load test API", "category": "receive", "alias": API_ALIAS, "receiveType": "api",
                "fields": [email(None),
                    {"id": "orderId", "name": "Order", "type": "text", "required": true},
                    {"id": "total", "name": "Total", "type": "decimal", "required": true},
                    {"id": "note", "name": "Note", "type": "text", "required": false}]
            }),
        ),
        (
            SDK_ALIAS,
            json!({
                "name": "Load test SDK", "category": "receive", "alias": SDK_ALIAS,
                "receiveType": "web/mobile-app",
                "fields": [{"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true},
                    {"id": "url", "name": "URL", "type": "text", "required": true}]
            }),
        ),
    ]
}

/// A client for the management API.
pub(crate) struct Management {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Management {
    pub(crate) fn new(base: &url::Url, key: &str) -> anyhow::Result<Management> {
        Ok(Management {
            base: base.as_str().trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
        })
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("authorization", format!("apiKey {}", self.key));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, body))
    }
}

/// Creates or reuses what the scenarios need; returns where to send. With `keys`, the API key
/// is reused from it (or minted and stored there); without, a new key is minted.
pub(crate) async fn setup(
    base: &url::Url,
    admin_key: &str,
    keys: Option<&KeyFile>,
    webhook_secret: Option<&str>,
) -> anyhow::Result<Targets> {
    let api = Management::new(base, admin_key)?;
    let (status, listing) = api
        .call(
            reqwest::Method::GET,
            "/v1/custom-integrations/?limit=200",
            None,
        )
        .await?;
    if status != 200 {
        bail!("listing integrations answered {status}: {listing} (is --admin-key right?)");
    }
    let existing = listing["results"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["name"] == INTEGRATION))
        .and_then(|i| i["id"].as_str())
        .map(str::to_owned);
    let integration = match existing {
        Some(id) => id,
        None => {
            let (status, created) = api
                .call(
                    reqwest::Method::POST,
                    "/v1/custom-integrations/",
                    Some(&json!({"name": INTEGRATION})),
                )
                .await?;
            if status != 201 {
                bail!("creating the integration answered {status}: {created}");
            }
            created["id"].as_str().context("integration id")?.to_owned()
        }
    };
    let types_path = format!("/v1/custom-integrations/{integration}/custom-event-types/");
    let (_, types) = api
        .call(
            reqwest::Method::GET,
            &format!("{types_path}?limit=200"),
            None,
        )
        .await?;
    let mut store = None;
    for (alias, mut definition) in definitions() {
        let found = types["results"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["alias"] == alias))
            .cloned();
        if alias == WEBHOOK_ALIAS {
            // Verification as asked, set or removed whatever an earlier run left.
            definition["verification"] = webhook_secret.map_or(Value::Null, |secret| {
                json!({"type": "hmac-sha256", "header": "X-Hub-Signature-256", "secret": secret,
                       "encoding": "hex", "prefix": "sha256="})
            });
        }
        let event_type = match found {
            Some(found) if alias == WEBHOOK_ALIAS => {
                let path = format!(
                    "/v1/custom-event-types/{}",
                    found["id"].as_str().unwrap_or_default()
                );
                let (status, replaced) = api
                    .call(reqwest::Method::PUT, &path, Some(&definition))
                    .await?;
                if status != 200 {
                    bail!("setting the webhook type's verification answered {status}: {replaced}");
                }
                replaced
            }
            Some(found) => found,
            None => {
                let (status, created) = api
                    .call(reqwest::Method::POST, &types_path, Some(&definition))
                    .await?;
                match status {
                    201 => created,
                    409 => bail!("the alias {alias} belongs to another integration in this store; remove it or use another store"),
                    _ => bail!("creating event type {alias} answered {status}: {created}"),
                }
            }
        };
        // The webhook endpoint URL is /v1/{storeId}/custom-events/alias/{alias}.
        if alias == WEBHOOK_ALIAS {
            let url = event_type["endpointUrl"].as_str().context("endpointUrl")?;
            store = url
                .split("/v1/")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned);
        }
    }
    let store = store.context("the store id could not be read from the webhook endpoint")?;
    let key = match keys {
        Some(keys) => stored_or_new_key(base, &api, &store, keys).await?,
        None => new_key(&api).await?,
    };
    Ok(Targets {
        store,
        key: Some(key),
        webhook_secret: webhook_secret.map(str::to_owned),
    })
}

/// The key stored for this gateway and store if it still authenticates, else a new one,
/// stored for the next run.
async fn stored_or_new_key(
    base: &url::Url,
    admin: &Management,
    store: &str,
    keys: &KeyFile,
) -> anyhow::Result<String> {
    let entry = KeyFile::entry(base, store);
    if let Some(stored) = keys.get(&entry)? {
        // Reading a contact needs the key's contacts:read scope; 404 (no such contact) is
        // still an authenticated answer.
        let (status, body) = Management::new(base, &stored)?
            .call(
                reqwest::Method::GET,
                "/v1/contacts/key-check@loadtest.example",
                None,
            )
            .await?;
        match status {
            200 | 404 => return Ok(stored),
            401 => eprintln!(
                "loadtest: the API key stored in {} answers 401; minting a new one",
                keys.path().display()
            ),
            _ => bail!(
                "checking the API key stored in {} answered {status}: {body}",
                keys.path().display()
            ),
        }
    }
    let key = new_key(admin).await?;
    keys.put(&entry, &key)?;
    Ok(key)
}

/// Mints an API key that can send events and read contacts.
async fn new_key(admin: &Management) -> anyhow::Result<String> {
    let (status, key) = admin
        .call(
            reqwest::Method::POST,
            "/v1/api-keys",
            Some(&json!({"name": "loadtest", "scopes": ["customEvents:write", "contacts:read"]})),
        )
        .await?;
    if status != 201 {
        bail!("creating an API key answered {status}: {key}");
    }
    Ok(key["key"].as_str().context("key")?.to_owned())
}
