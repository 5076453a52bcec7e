-- Contacts and their activities, written by the consumer.
-- An activity's primary key is its event id: a redelivered event inserts nothing, so its effects
-- happen once however often the queue delivers it.

CREATE TABLE contacts (
    store_id     TEXT NOT NULL,
    contact_key  TEXT NOT NULL,
    email        TEXT,
    tracker_id   TEXT,
    fields       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (store_id, contact_key)
);

CREATE TABLE activities (
    event_id       TEXT PRIMARY KEY,
    store_id       TEXT NOT NULL,
    contact_key    TEXT NOT NULL,
    event_type_id  TEXT NOT NULL,
    alias          TEXT NOT NULL,
    fields         TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    recorded_at    TEXT NOT NULL
);
CREATE INDEX activities_by_contact ON activities (store_id, contact_key, received_at, event_id);
