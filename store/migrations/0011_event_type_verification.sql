-- How a webhook receive type's events are verified (SPEC §5), as JSON with its secrets: kept
-- out of the definition's body, which is answered, so the secrets are write-only.
ALTER TABLE event_types ADD COLUMN verification TEXT;
