-- Migration 0003 (security review): a user's last password change (tokens issued
-- before it are refused), and failed password checks counted by client address as
-- well as by login. PostgreSQL alters the tables in place, in one transaction.
-- depends: 0002.row-version

-- existing users: changed "now", so tokens issued before the upgrade must be renewed
ALTER TABLE Utilisateur
  ADD COLUMN pwchanged DOUBLE PRECISION NOT NULL DEFAULT EXTRACT(EPOCH FROM CURRENT_TIMESTAMP);

-- AuthFailure(login, …) becomes AuthFailure(kind, name, …): the current windows are
-- kept as kind 'login' (throttling windows of logins beyond 200 characters are dropped)
DELETE FROM AuthFailure WHERE LENGTH(login) NOT BETWEEN 1 AND 200;
ALTER TABLE AuthFailure RENAME COLUMN login TO name;
ALTER TABLE AuthFailure ADD COLUMN kind TEXT NOT NULL DEFAULT 'login' CHECK (kind IN ('login', 'address'));
ALTER TABLE AuthFailure ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE AuthFailure ADD CHECK (LENGTH(name) BETWEEN 1 AND 200);
ALTER TABLE AuthFailure DROP CONSTRAINT authfailure_pkey;
ALTER TABLE AuthFailure ADD PRIMARY KEY (kind, name);
