-- 2025 MCP sessions (Mcp-Session-Id) as records, so any replica serves any session and a restart
-- does not end them (SQLite's 007_mcp_sessions). The id is stored only as its SHA-256 hash: it is
-- as good as a bearer for its grant. A session goes with its grant (revocation), its access token
-- (revocation of that token alone), a DELETE, the per-user cap and idle expiry.
CREATE TABLE mcp_session (
  id_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL REFERENCES oauth_grant (grant_id) ON DELETE CASCADE,
  user_id BIGINT NOT NULL,
  login TEXT NOT NULL,
  token_hash TEXT,                  -- the access token it was last used with (SHA-256 hash)
  protocol_version TEXT NOT NULL,
  client_info TEXT NOT NULL,        -- JSON, bounded by the gateway
  client_capabilities TEXT NOT NULL, -- JSON, bounded by the gateway
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL      -- written at most about once a minute per session
);
CREATE INDEX mcp_session_user ON mcp_session (user_id, last_seen_at);
CREATE INDEX mcp_session_seen ON mcp_session (last_seen_at);
CREATE INDEX mcp_session_grant ON mcp_session (grant_id);
CREATE INDEX mcp_session_token ON mcp_session (token_hash);

-- A fourth kind in the change log: a session ended on purpose (DELETE, the per-user cap), so the
-- other replicas drop their cached copy; token_hash then holds the session id's hash.
ALTER TABLE change_log DROP CONSTRAINT change_log_kind_check;
ALTER TABLE change_log ADD CONSTRAINT change_log_kind_check
  CHECK (kind IN ('grant', 'user', 'access_token', 'session'));
