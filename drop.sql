-- Kiva: remove all tables, for both engines, children first.
DROP TABLE IF EXISTS Thing;
DROP TABLE IF EXISTS Owner;
DROP TABLE IF EXISTS Owned;
DROP TABLE IF EXISTS AuthFailure;
DROP TABLE IF EXISTS Utilisateur;
DROP TABLE IF EXISTS Stuff;
-- the migration tool's own tables (yoyo-migrations): a dropped database is at version 0
DROP TABLE IF EXISTS _yoyo_migration;
DROP TABLE IF EXISTS _yoyo_log;
DROP TABLE IF EXISTS _yoyo_version;
DROP TABLE IF EXISTS yoyo_lock;
