-- RFC 7592 client configuration: each dynamically registered client gets a registration access
-- token, stored (like every broker secret) only as its SHA-256 hex hash. Clients registered before
-- this migration have none and cannot manage their registration (they keep working otherwise).
ALTER TABLE oauth_client ADD COLUMN registration_token_hash TEXT;
-- Deleting a client (RFC 7592 DELETE) finds its grants by client.
CREATE INDEX oauth_grant_client ON oauth_grant (client_id);
