-- Generated rows for the upgrade test (drills/upgrade.py), at the baseline schema:
-- the columns named here are those of migrations/*/0001.baseline.sql.

-- name: fill_stuff(stuff)*!
INSERT INTO Stuff(stuff) VALUES (:stuff);

-- name: fill_user(login, pword, isadmin)*!
INSERT INTO Utilisateur(login, pword, isAdmin) VALUES (:login, :pword, :isadmin);

-- name: fill_owned(object, login)*!
INSERT INTO Owned(object, owner) SELECT :object, uid FROM Utilisateur WHERE login = :login;

-- name: fill_owner(oname, omail)*!
INSERT INTO Owner(oname, omail) VALUES (:oname, :omail);

-- name: fill_thing(tname, oname, tprice)*!
INSERT INTO Thing(tname, oid, tprice) SELECT :tname, oid, :tprice FROM Owner WHERE oname = :oname;

-- name: fill_auth_failure(login, failures, since)*!
INSERT INTO AuthFailure(login, failures, since) VALUES (:login, :failures, :since);
