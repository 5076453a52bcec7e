-- Static headers a subscription sends with every delivery (SPEC §7: up to 5, as Collect's
-- secret token or Moltin's X-MOLTIN-SECRET-KEY), as a JSON array of {name, value}; NULL when
-- none. Kept in clear like the signing secret: sending needs them.
ALTER TABLE webhooks ADD COLUMN headers TEXT;
