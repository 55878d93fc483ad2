-- Per-connection control (issue 16; SQLite's 005_connected_apps): the mode chosen on the consent
-- page, what the connected-apps page shows of each grant, and the page's own Forgejo sign-in and
-- short sessions. Request handles, states, session ids and CSRF tokens are SHA-256 hashes; the
-- verifier is sealed.

ALTER TABLE oauth_grant ADD COLUMN mode TEXT NOT NULL DEFAULT 'write' CHECK (mode IN ('read', 'write'));
ALTER TABLE oauth_grant ADD COLUMN client_name TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_grant ADD COLUMN redirect_uri TEXT NOT NULL DEFAULT '';

ALTER TABLE auth_request ADD COLUMN mode TEXT CHECK (mode IN ('read', 'write'));

CREATE TABLE account_login (
  state_hash TEXT PRIMARY KEY,
  browser_hash TEXT NOT NULL,
  verifier TEXT NOT NULL,           -- sealed, context = state hash
  expires_at BIGINT NOT NULL
);

CREATE TABLE account_session (
  id_hash TEXT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  login TEXT NOT NULL,
  csrf_hash TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX account_session_expiry ON account_session (expires_at);
