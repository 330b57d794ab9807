-- Kiva: remove all data, PostgreSQL flavour (truncate-sqlite.sql for SQLite),
-- and restart the ids so that data.sql gives 1, 2, 3… again.
TRUNCATE Thing, Owner, Owned, AuthFailure, Utilisateur, Stuff RESTART IDENTITY;
