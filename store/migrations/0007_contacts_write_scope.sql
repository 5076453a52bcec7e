-- The contacts:write scope (PATCH /v1/contacts/{email}) is new: keys that held every scope
-- before it existed (a store's admin key, and any made like it) get it too, so an upgrade
-- takes nothing away from what such a key could do.
UPDATE api_keys SET scopes = scopes || ' contacts:write'
WHERE (' ' || scopes || ' ') LIKE '% customEvents:write %'
  AND (' ' || scopes || ' ') LIKE '% customEventTypes:read %'
  AND (' ' || scopes || ' ') LIKE '% customEventTypes:write %'
  AND (' ' || scopes || ' ') LIKE '% customIntegrations:read %'
  AND (' ' || scopes || ' ') LIKE '% customIntegrations:write %'
  AND (' ' || scopes || ' ') LIKE '% contacts:read %'
  AND (' ' || scopes || ' ') LIKE '% webhooks:read %'
  AND (' ' || scopes || ' ') LIKE '% webhooks:write %'
  AND (' ' || scopes || ' ') LIKE '% workflows:read %'
  AND (' ' || scopes || ' ') LIKE '% workflows:write %'
  AND (' ' || scopes || ' ') LIKE '% apiKeys:write %'
  AND (' ' || scopes || ' ') NOT LIKE '% contacts:write %';
