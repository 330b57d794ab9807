-- Migration 0003 (security review): a user's last password change (tokens issued
-- before it are refused), and failed password checks counted by client address as
-- well as by login. SQLite cannot add a column with a non-constant default nor change
-- a primary key: both tables are rebuilt (create, copy, drop, rename), in one
-- transaction; the migration's connection does not enforce foreign keys, so Owned's
-- reference to Utilisateur holds across the rename.
-- depends: 0002.row-version

CREATE TABLE Utilisateur_new(
  uid INTEGER PRIMARY KEY AUTOINCREMENT,
  login TEXT UNIQUE NOT NULL CHECK (LENGTH(login) BETWEEN 1 AND 200),
  pword TEXT NOT NULL,
  isAdmin BOOLEAN NOT NULL DEFAULT FALSE,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  version INTEGER NOT NULL DEFAULT 1,
  pwchanged REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
-- existing users: changed "now", so tokens issued before the upgrade must be renewed
INSERT INTO Utilisateur_new(uid, login, pword, isAdmin, created, version)
  SELECT uid, login, pword, isAdmin, created, version FROM Utilisateur;
-- AUTOINCREMENT's counter: a deleted id is still never given again
DELETE FROM sqlite_sequence WHERE name = 'Utilisateur_new';
INSERT INTO sqlite_sequence(name, seq) SELECT 'Utilisateur_new', seq FROM sqlite_sequence WHERE name = 'Utilisateur';
DROP TABLE Utilisateur;
ALTER TABLE Utilisateur_new RENAME TO Utilisateur;

-- AuthFailure(login, …) becomes AuthFailure(kind, name, …): the current windows are
-- kept as kind 'login' (throttling windows of logins beyond 200 characters are dropped)
CREATE TABLE AuthFailure_new(
  kind TEXT NOT NULL CHECK (kind IN ('login', 'address')),
  name TEXT NOT NULL CHECK (LENGTH(name) BETWEEN 1 AND 200),
  failures INTEGER NOT NULL,
  since REAL NOT NULL,
  PRIMARY KEY (kind, name)
);
INSERT INTO AuthFailure_new(kind, name, failures, since)
  SELECT 'login', login, failures, since FROM AuthFailure WHERE LENGTH(login) BETWEEN 1 AND 200;
DROP TABLE AuthFailure;
ALTER TABLE AuthFailure_new RENAME TO AuthFailure;
CREATE INDEX authfailure_since ON AuthFailure(since);
