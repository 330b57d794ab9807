-- Migration 0002: a row version on the resources the API serves one by one, for
-- ETag / If-Match (API.md): every UPDATE of queries.sql sets version = version + 1,
-- and the conditional writes check it (WHERE … AND version = :version), so that two
-- clients editing the same row cannot both win. Both engines, one transaction.
-- An UPDATE written outside queries.sql must bump the version too.
-- depends: 0001.baseline

ALTER TABLE Stuff ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE Owner ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE Thing ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE Utilisateur ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE Owned ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
