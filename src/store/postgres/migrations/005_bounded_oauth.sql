-- Registrations and pending sign-ins are what strangers can make the broker store: each row is
-- stored once, small, and counted against a bound (SQLite's 006_bounded_oauth).

-- The client's id, name and redirect URIs have columns of their own: the metadata JSON stops
-- repeating them (they were stored twice).
UPDATE oauth_client SET metadata = ((metadata::jsonb) - 'client_id' - 'client_name' - 'redirect_uris')::text;
-- The registration budget counts, and collects oldest first, registrations never used for a sign-in.
CREATE INDEX oauth_client_unused ON oauth_client (created_at) WHERE used_at IS NULL;

-- A pending sign-in is charged to its source (an IPv4 address or an IPv6 /64) and to its client,
-- each with a bound of its own.
ALTER TABLE auth_request ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX auth_request_source ON auth_request (source, expires_at);
CREATE INDEX auth_request_client ON auth_request (client_id, expires_at);
