-- What other replicas and the admin command must learn: revocations, replayed by every broker
-- that did not write them (a NOTIFY on commit wakes them; a periodic read catches a missed one).
-- Writers take one advisory lock before inserting, so seq order is commit order and a reader
-- that has seen seq n never misses a smaller one committed later. Rows are purged after an hour.
CREATE TABLE change_log (
  seq BIGSERIAL PRIMARY KEY,
  origin TEXT NOT NULL,             -- the writing store's random id
  kind TEXT NOT NULL CHECK (kind IN ('grant', 'user', 'access_token')),
  grant_id TEXT,
  user_id BIGINT NOT NULL,
  token_hash TEXT,                  -- access_token rows: the SHA-256 hash, never the token
  at BIGINT NOT NULL
);
CREATE INDEX change_log_at ON change_log (at);

-- The children each broker runs, for `admin children`; several replicas share the table, so a
-- row names its broker's host as well as its process id.
CREATE TABLE live_child (
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  broker_pid INTEGER NOT NULL,
  login TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  PRIMARY KEY (host, pid)
);
