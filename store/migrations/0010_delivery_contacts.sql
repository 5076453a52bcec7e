-- Which contact a delivery is about (its stored key), so erasing a contact erases the
-- deliveries that carry its data. NULL for deliveries about no contact (webhook.disabled,
-- tests) and for those written before this column existed. Erasure also finds a contact's
-- segment rechecks by its key.
ALTER TABLE deliveries ADD COLUMN contact_key TEXT;
CREATE INDEX deliveries_by_contact ON deliveries (store_id, contact_key);
CREATE INDEX segment_rechecks_by_contact ON segment_rechecks (store_id, contact_key);
