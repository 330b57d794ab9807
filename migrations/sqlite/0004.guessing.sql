-- Migration 0004 (issue 20, guessing bounded per login): two more kinds of failure
-- counts, over a day-long window (throttle.py): 'untrusted', the failed checks of a login
-- from clients without a device cookie of it, whatever their addresses (the per-login
-- budget), and 'device', the failed checks sent with one device cookie. SQLite cannot
-- change a CHECK constraint: the table is rebuilt, its rows kept, in one transaction.
-- depends: 0003.security

CREATE TABLE AuthFailure_new(
  kind TEXT NOT NULL CHECK (kind IN ('login', 'address', 'untrusted', 'device')),
  name TEXT NOT NULL CHECK (LENGTH(name) BETWEEN 1 AND 200),
  failures INTEGER NOT NULL,
  since REAL NOT NULL,
  PRIMARY KEY (kind, name)
);
INSERT INTO AuthFailure_new(kind, name, failures, since) SELECT kind, name, failures, since FROM AuthFailure;
DROP TABLE AuthFailure;
ALTER TABLE AuthFailure_new RENAME TO AuthFailure;
CREATE INDEX authfailure_since ON AuthFailure(since);
