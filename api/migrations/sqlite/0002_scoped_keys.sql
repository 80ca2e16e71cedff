-- Keys scoped to sites, and agents' broker credentials (issue 10).
-- sites: NULL = every site; otherwise a comma-separated list of site ids.
ALTER TABLE api_keys ADD COLUMN sites TEXT;
-- An agent key is also the agent's MQTT credential: the broker user name and the secret's
-- hash in Mosquitto's own password-file format ($7$, PBKDF2-SHA512), from which ioc-api
-- writes the broker's password and ACL files.
ALTER TABLE api_keys ADD COLUMN mqtt_username TEXT;
ALTER TABLE api_keys ADD COLUMN mqtt_hash TEXT;
CREATE UNIQUE INDEX api_keys_by_mqtt_username ON api_keys (mqtt_username) WHERE revoked_ms IS NULL;
