-- 2025 MCP sessions (Mcp-Session-Id) as records, so a broker restart does not end them and several
-- replicas serve the same session. The id is stored only as its SHA-256 hash: it is as good as a
-- bearer for its grant. A session goes with its grant (revocation), its access token (revocation
-- of that token alone), a DELETE, the per-user cap and idle expiry.
CREATE TABLE mcp_session (
  id_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL REFERENCES oauth_grant (grant_id) ON DELETE CASCADE,
  user_id INTEGER NOT NULL,
  login TEXT NOT NULL,
  token_hash TEXT,                  -- the access token it was last used with (SHA-256 hash)
  protocol_version TEXT NOT NULL,
  client_info TEXT NOT NULL,        -- JSON, bounded by the gateway
  client_capabilities TEXT NOT NULL, -- JSON, bounded by the gateway
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL     -- written at most about once a minute per session
) STRICT;
CREATE INDEX mcp_session_user ON mcp_session (user_id, last_seen_at);
CREATE INDEX mcp_session_seen ON mcp_session (last_seen_at);
CREATE INDEX mcp_session_grant ON mcp_session (grant_id);
CREATE INDEX mcp_session_token ON mcp_session (token_hash);

-- The change log learns a fourth kind: a session ended on purpose (DELETE, the per-user cap), so
-- other processes drop their cached copy. SQLite cannot change a CHECK in place: the table is
-- made again. token_hash holds the hash the row names: an access token's, or a session id's.
CREATE TABLE change_log_new (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  origin TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('grant', 'user', 'access_token', 'session')),
  grant_id TEXT,
  user_id INTEGER NOT NULL,
  token_hash TEXT,                  -- access_token and session rows: a SHA-256 hash, never the secret
  at INTEGER NOT NULL
) STRICT;
INSERT INTO change_log_new (seq, origin, kind, grant_id, user_id, token_hash, at)
  SELECT seq, origin, kind, grant_id, user_id, token_hash, at FROM change_log;
DROP TABLE change_log;
ALTER TABLE change_log_new RENAME TO change_log;
CREATE INDEX change_log_at ON change_log (at);
