-- Idempotency keys (SPEC §5): which event a sender's key produced, and a hash of the body it
-- came with, so a repeat within 24 h gets the first event's id and a different body is refused.
-- `scope` is a hash of the store, receive path, alias, caller and key: no sender can claim
-- another's key. Rows older than a day are swept.

CREATE TABLE idempotency_keys (
    scope       TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL,
    body_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
