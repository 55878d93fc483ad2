-- The authorization server's state (SQLite's 002_oauth, 003_client_management and the last use of
-- 004_operations in one). Broker secrets (codes, tokens, client secrets, request handles, CSRF
-- tokens, browser bindings, upstream state, registration tokens) appear only as SHA-256 hex hashes
-- in TEXT columns; Forgejo tokens and the upstream PKCE verifier only sealed (AES-256-GCM).

CREATE TABLE oauth_client (
  client_id TEXT PRIMARY KEY,
  secret_hash TEXT,                 -- NULL for public clients (auth method none)
  auth_method TEXT NOT NULL CHECK (auth_method IN ('client_secret_post', 'client_secret_basic', 'none')),
  name TEXT NOT NULL,
  redirect_uris TEXT NOT NULL,      -- JSON array, kept as text: returned as registered
  metadata TEXT NOT NULL,           -- JSON: the registration response without the secret
  created_at BIGINT NOT NULL,
  used_at BIGINT,                   -- first grant; NULL rows older than the purge age are deleted
  registration_token_hash TEXT      -- RFC 7592; NULL for metadata-document clients
);

CREATE TABLE auth_request (
  id_hash TEXT PRIMARY KEY,
  browser_hash TEXT NOT NULL,
  csrf_hash TEXT NOT NULL,
  client_id TEXT NOT NULL,
  client_name TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  client_state TEXT,
  code_challenge TEXT NOT NULL,
  resource TEXT NOT NULL,
  scopes TEXT NOT NULL,
  upstream_state_hash TEXT UNIQUE,
  upstream_verifier TEXT,           -- sealed
  expires_at BIGINT NOT NULL
);
CREATE INDEX auth_request_expiry ON auth_request (expires_at);

-- One Forgejo credential per Forgejo user, shared by all of that user's grants on every replica.
CREATE TABLE forgejo_credential (
  user_id BIGINT PRIMARY KEY,
  login TEXT NOT NULL,
  access_token TEXT NOT NULL,       -- sealed, context = user id
  refresh_token TEXT NOT NULL,      -- sealed, context = user id
  expires_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE oauth_grant (
  grant_id TEXT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  login TEXT NOT NULL,
  client_id TEXT NOT NULL,
  scopes TEXT NOT NULL,
  resource TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT
);
CREATE INDEX oauth_grant_user ON oauth_grant (user_id);
CREATE INDEX oauth_grant_client ON oauth_grant (client_id);

CREATE TABLE auth_code (
  code_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL REFERENCES oauth_grant (grant_id) ON DELETE CASCADE,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  resource TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);
CREATE INDEX auth_code_grant ON auth_code (grant_id);

CREATE TABLE oauth_token (
  token_hash TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
  grant_id TEXT NOT NULL REFERENCES oauth_grant (grant_id) ON DELETE CASCADE,
  expires_at BIGINT NOT NULL,
  rotated_at BIGINT,                -- refresh tokens: when exchanged for a successor
  grace_used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth_token_grant ON oauth_token (grant_id);
CREATE INDEX oauth_token_expiry ON oauth_token (expires_at);
