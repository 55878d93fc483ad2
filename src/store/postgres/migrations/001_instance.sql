-- One row describing this broker's database: when it was made and a fingerprint of the key that
-- encrypts its secrets, so a changed BROKER_SECRET_KEY is caught at startup, not at first decrypt.
-- (The same meaning as SQLite's migrations; times are ms epochs in BIGINT columns.)
CREATE TABLE instance (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  created_at BIGINT NOT NULL,
  key_check TEXT NOT NULL
);
