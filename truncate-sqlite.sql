-- Kiva: remove all data, SQLite flavour (no TRUNCATE there), and restart the ids.
DELETE FROM Thing;
DELETE FROM Owner;
DELETE FROM Owned;
DELETE FROM AuthFailure;
DELETE FROM Utilisateur;
DELETE FROM Stuff;
DELETE FROM sqlite_sequence;
