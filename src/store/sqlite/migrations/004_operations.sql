-- What other processes on the same database must learn: the admin command (and later other
-- replicas) revoke here, and the running broker replays each row it did not write itself within
-- its poll interval (closing sessions, stopping children). Rows are purged after an hour.
CREATE TABLE change_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  origin TEXT NOT NULL,             -- the writing connection's random id
  kind TEXT NOT NULL CHECK (kind IN ('grant', 'user', 'access_token')),
  grant_id TEXT,
  user_id INTEGER NOT NULL,
  token_hash TEXT,                  -- access_token rows: the SHA-256 hash, never the token
  at INTEGER NOT NULL
) STRICT;
CREATE INDEX change_log_at ON change_log (at);

-- The children a broker process runs, for `admin children`: written when one starts and when it
-- exits; rows of a broker process that is gone are ignored (and cleared when it starts again).
CREATE TABLE live_child (
  pid INTEGER PRIMARY KEY,
  broker_pid INTEGER NOT NULL,
  login TEXT NOT NULL,
  started_at INTEGER NOT NULL
) STRICT;

-- When a grant's access token last passed the bearer check (kept in memory, written every
-- half minute: a tool call does not wait for a write).
ALTER TABLE oauth_grant ADD COLUMN last_used_at INTEGER;
