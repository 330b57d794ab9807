-- Kiva: remove all tables, for both engines, children first.
DROP TABLE IF EXISTS Thing;
DROP TABLE IF EXISTS Owner;
DROP TABLE IF EXISTS Owned;
DROP TABLE IF EXISTS AuthFailure;
DROP TABLE IF EXISTS Utilisateur;
DROP TABLE IF EXISTS Stuff;
