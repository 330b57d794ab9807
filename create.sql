-- Kiva schema, PostgreSQL (production) flavour.
--
-- create-sqlite.sql holds the same tables for SQLite: the two engines disagree on
-- auto-increment keys (SERIAL vs INTEGER PRIMARY KEY AUTOINCREMENT), on booleans
-- and time stamps, and only PostgreSQL has text_pattern_ops indexes.
-- Names are non-empty and at most 200 characters: the database says no, the API
-- maps the refusal to a 400 or a 409.
--
-- The latest schema, for reading: the database is made by migrations/ (production/migrate.py),
-- and tests/test_migrations.py checks that this file gives the same tables.

-- the CRUDS demo
CREATE TABLE IF NOT EXISTS Stuff(
  sid SERIAL PRIMARY KEY,
  stuff TEXT UNIQUE NOT NULL CHECK (LENGTH(stuff) BETWEEN 1 AND 200),
  version INTEGER NOT NULL DEFAULT 1  -- row version: the ETag (migration 0002)
);
-- prefix LIKE filters ("C%") use this index whatever the collation
CREATE INDEX IF NOT EXISTS stuff_stuff_pattern ON Stuff(stuff text_pattern_ops);

-- users: AAA
CREATE TABLE IF NOT EXISTS Utilisateur(
  uid SERIAL PRIMARY KEY,
  login TEXT UNIQUE NOT NULL CHECK (LENGTH(login) BETWEEN 1 AND 200),  -- authentication
  pword TEXT NOT NULL,                                  -- salted bcrypt hash, never clear text
  isAdmin BOOLEAN NOT NULL DEFAULT FALSE,               -- authorization
  created TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,  -- audit
  version INTEGER NOT NULL DEFAULT 1,  -- row version: the ETag (migration 0002)
  -- last password change, seconds since the epoch: tokens issued before it are refused
  pwchanged DOUBLE PRECISION NOT NULL DEFAULT EXTRACT(EPOCH FROM CURRENT_TIMESTAMP)  -- (migration 0003)
);
CREATE INDEX IF NOT EXISTS utilisateur_login_pattern ON Utilisateur(login text_pattern_ops);

-- failed password checks by login (known or not) and by client address: throttle.py
-- (migration 0003)
CREATE TABLE IF NOT EXISTS AuthFailure(
  kind TEXT NOT NULL CHECK (kind IN ('login', 'address', 'untrusted', 'device')),
  name TEXT NOT NULL CHECK (LENGTH(name) BETWEEN 1 AND 200),
  failures INTEGER NOT NULL,
  since DOUBLE PRECISION NOT NULL,  -- first failure of the window, seconds since the epoch
  PRIMARY KEY (kind, name)
);
CREATE INDEX IF NOT EXISTS authfailure_since ON AuthFailure(since);

-- objects with an owner: object permissions
CREATE TABLE IF NOT EXISTS Owned(
  oid SERIAL PRIMARY KEY,
  object TEXT NOT NULL CHECK (LENGTH(object) BETWEEN 1 AND 200),
  owner INTEGER NOT NULL REFERENCES Utilisateur,
  version INTEGER NOT NULL DEFAULT 1,  -- row version: the ETag (migration 0002)
  UNIQUE(object, owner)
);
CREATE INDEX IF NOT EXISTS owned_owner ON Owned(owner);

-- the CRUDS exercise: owners and their things
CREATE TABLE IF NOT EXISTS Owner(
  oid SERIAL PRIMARY KEY,
  oname TEXT UNIQUE NOT NULL CHECK (LENGTH(oname) BETWEEN 1 AND 200),
  omail TEXT NOT NULL CHECK (LENGTH(omail) <= 200 AND omail LIKE '_%@_%'),
  version INTEGER NOT NULL DEFAULT 1  -- row version: the ETag (migration 0002)
);
CREATE INDEX IF NOT EXISTS owner_oname_pattern ON Owner(oname text_pattern_ops);

CREATE TABLE IF NOT EXISTS Thing(
  tid SERIAL PRIMARY KEY,
  tname TEXT NOT NULL CHECK (LENGTH(tname) BETWEEN 1 AND 200),
  oid INTEGER NOT NULL REFERENCES Owner,
  -- NUMERIC keeps decimal prices exact: 12.5 stays 12.5
  tprice NUMERIC(12, 2) NOT NULL CHECK (tprice >= 0),
  version INTEGER NOT NULL DEFAULT 1,  -- row version: the ETag (migration 0002)
  UNIQUE(tname, oid)
);
-- an owner's things, in id order (keyset paging); also serves the foreign key
CREATE INDEX IF NOT EXISTS thing_oid ON Thing(oid, tid);
CREATE INDEX IF NOT EXISTS thing_tname_pattern ON Thing(tname text_pattern_ops);
