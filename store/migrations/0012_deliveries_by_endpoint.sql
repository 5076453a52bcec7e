-- The dispatcher reads the outbox one endpoint (subscription or send type) at a time: it
-- skips from one endpoint with pending deliveries to the next, a seek each, and claims each
-- endpoint's due deliveries oldest first. Ordered by due time alone, the index made every read
-- walk past the due deliveries of endpoints with no free slot, thousands for one slow endpoint.
-- Statements by status alone (the retention sweep) use this index as they used the old one.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_pending ON deliveries (status, (COALESCE(webhook_id, event_type_id)), next_attempt_at);
