-- Kiva schema, SQLite (embedded default) flavour: the same tables as create.sql.
--
-- AUTOINCREMENT so that a deleted id is never given again; BOOLEAN and TIMESTAMP
-- are declared types that database.py converts back to Python bool and datetime
-- (sqlite3 PARSE_DECLTYPES), so both engines answer the same JSON.
--
-- The latest schema, for reading: the database is made by migrations/ (production/migrate.py),
-- and tests/test_migrations.py checks that this file gives the same tables.

CREATE TABLE IF NOT EXISTS Stuff(
  sid INTEGER PRIMARY KEY AUTOINCREMENT,
  stuff TEXT UNIQUE NOT NULL CHECK (LENGTH(stuff) BETWEEN 1 AND 200),
  version INTEGER NOT NULL DEFAULT 1  -- row version: the ETag (migration 0002)
);

CREATE TABLE IF NOT EXISTS Utilisateur(
  uid INTEGER PRIMARY KEY AUTOINCREMENT,
  login TEXT UNIQUE NOT NULL CHECK (LENGTH(login) BETWEEN 1 AND 200),
  pword TEXT NOT NULL,
  isAdmin BOOLEAN NOT NULL DEFAULT FALSE,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,  -- UTC, "YYYY-MM-DD HH:MM:SS"
  version INTEGER NOT NULL DEFAULT 1,  -- row version: the ETag (migration 0002)
  pwchanged REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)  -- epoch seconds (migration 0003)
);

-- failed password checks by login (known or not) and by client address: throttle.py
-- (migration 0003)
CREATE TABLE IF NOT EXISTS AuthFailure(
  kind TEXT NOT NULL CHECK (kind IN ('login', 'address', 'untrusted', 'device')),
  name TEXT NOT NULL CHECK (LENGTH(name) BETWEEN 1 AND 200),
  failures INTEGER NOT NULL,
  since REAL NOT NULL,  -- first failure of the window, seconds since the epoch
  PRIMARY KEY (kind, name)
);
CREATE INDEX IF NOT EXISTS authfailure_since ON AuthFailure(since);

CREATE TABLE IF NOT EXISTS Owned(
  oid INTEGER PRIMARY KEY AUTOINCREMENT,
  object TEXT NOT NULL CHECK (LENGTH(object) BETWEEN 1 AND 200),
  owner INTEGER NOT NULL REFERENCES Utilisateur,
  version INTEGER NOT NULL DEFAULT 1,  -- row version: the ETag (migration 0002)
  UNIQUE(object, owner)
);
CREATE INDEX IF NOT EXISTS owned_owner ON Owned(owner);

CREATE TABLE IF NOT EXISTS Owner(
  oid INTEGER PRIMARY KEY AUTOINCREMENT,
  oname TEXT UNIQUE NOT NULL CHECK (LENGTH(oname) BETWEEN 1 AND 200),
  omail TEXT NOT NULL CHECK (LENGTH(omail) <= 200 AND omail LIKE '_%@_%'),
  version INTEGER NOT NULL DEFAULT 1  -- row version: the ETag (migration 0002)
);

CREATE TABLE IF NOT EXISTS Thing(
  tid INTEGER PRIMARY KEY AUTOINCREMENT,
  tname TEXT NOT NULL CHECK (LENGTH(tname) BETWEEN 1 AND 200),
  oid INTEGER NOT NULL REFERENCES Owner,
  tprice REAL NOT NULL CHECK (tprice >= 0),
  version INTEGER NOT NULL DEFAULT 1,  -- row version: the ETag (migration 0002)
  UNIQUE(tname, oid)
);
-- an owner's things, in id order (keyset paging); also serves the foreign key
CREATE INDEX IF NOT EXISTS thing_oid ON Thing(oid, tid);
