-- The registry: tenants, their API keys, integrations and event types.
-- Written in the SQL both SQLite and PostgreSQL accept, so one migration set serves both stores.
-- Timestamps are RFC 3339 UTC text with fixed precision, so they sort as text.

CREATE TABLE stores (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    store_id     TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX api_keys_by_store ON api_keys (store_id);

CREATE TABLE integrations (
    id          TEXT PRIMARY KEY,
    store_id    TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX integrations_by_store ON integrations (store_id, id);

CREATE TABLE event_types (
    id              TEXT PRIMARY KEY,
    store_id        TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    integration_id  TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    alias           TEXT,
    category        TEXT NOT NULL,
    body            TEXT NOT NULL,
    version         BIGINT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
-- NULL aliases (send types) are distinct in both engines, so only receive aliases collide.
CREATE UNIQUE INDEX event_types_alias ON event_types (store_id, alias);
CREATE INDEX event_types_by_integration ON event_types (integration_id, id);
