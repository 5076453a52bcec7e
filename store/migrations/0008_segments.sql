-- Segments (SPEC §6): a definition per row, the contacts that are members now, and when a
-- member's or non-member's standing must be looked at again because an event leaves a window.

CREATE TABLE segments (
    id              TEXT PRIMARY KEY,
    store_id        TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    body            TEXT NOT NULL,
    -- Contacts whose stored key sorts after this have not been evaluated against the current
    -- definition yet (every write resets it to ''); NULL once all have been.
    backfill_after  TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX segments_by_store ON segments (store_id, id);

CREATE TABLE segment_members (
    segment_id   TEXT NOT NULL,
    store_id     TEXT NOT NULL,
    contact_key  TEXT NOT NULL,
    entered_at   TEXT NOT NULL,
    PRIMARY KEY (segment_id, contact_key)
);
CREATE INDEX segment_members_by_contact ON segment_members (store_id, contact_key, segment_id);

-- The earliest moment an event counted by a windowed condition leaves its window, per segment
-- and contact: the sweeper evaluates the pair again then.
CREATE TABLE segment_rechecks (
    segment_id   TEXT NOT NULL,
    store_id     TEXT NOT NULL,
    contact_key  TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    PRIMARY KEY (segment_id, contact_key)
);
CREATE INDEX segment_rechecks_due ON segment_rechecks (due_at);

-- Workflows may also start when a contact enters a segment: trigger_event_type_id then holds
-- the segment's id (ids are UUIDs, so the two kinds never collide).
