-- When a key was last used (SPEC §2 `lastUsedAt`): gateways note uses in memory and write them
-- here every ten seconds at most, so authenticating never costs a write.
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
