-- Outbound webhooks and workflows: subscriptions, workflow definitions, and the delivery outbox.
-- A delivery row is written in the same transaction as the activity that caused it, so an
-- effect that is stored always has its deliveries stored too, and a restart loses none.

CREATE TABLE webhooks (
    id                     TEXT PRIMARY KEY,
    store_id               TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    target_url             TEXT NOT NULL,
    -- Space-separated event types; empty means every type.
    types                  TEXT NOT NULL,
    filter_integration_id  TEXT,
    filter_alias           TEXT,
    is_active              BIGINT NOT NULL,
    -- enabled, or disabled after failing for too long.
    status                 TEXT NOT NULL,
    -- Kept in clear: signing needs it. Shown to the user only when created.
    secret                 TEXT NOT NULL,
    failing_since          TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE INDEX webhooks_by_store ON webhooks (store_id, id);

CREATE TABLE workflows (
    id                     TEXT PRIMARY KEY,
    store_id               TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    trigger_event_type_id  TEXT NOT NULL,
    status                 TEXT NOT NULL,
    body                   TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE INDEX workflows_by_store ON workflows (store_id, id);

-- Send types sign their calls with a secret of their own, shown when the type is created.
ALTER TABLE event_types ADD COLUMN signing_secret TEXT;

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    store_id         TEXT NOT NULL,
    -- The Standard Webhooks message id: the same for every retry of this delivery.
    message_id       TEXT NOT NULL,
    -- Exactly one of these names who receives it: a subscription or a send event type.
    webhook_id       TEXT REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type_id    TEXT,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    -- pending, delivered, or failed (dead-lettered after the last retry).
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    -- Set while an attempt is in flight: until then the delivery is reserved for it.
    leased_until     TEXT,
    last_status_code BIGINT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);
