-- Kiva queries, for AnoDB/aiosql: one file that serves SQLite and PostgreSQL.
--
-- Conventions: a query name is verb_table_key(parameters) and its suffix says
-- what comes back: none → rows, ^ → one row or None, $ → one value or None,
-- ! → number of affected rows. Column aliases are lower case so that both engines
-- give the same JSON keys. List queries take :after and :lim for keyset paging:
-- the cost of a page does not grow with the table.

--
-- SERVICE
--

-- name: now()$
-- Current time from the database. The "[timestamp]" suffix lets Python's sqlite3
-- (PARSE_COLNAMES) turn SQLite's text into a datetime; PostgreSQL ignores it.
SELECT CURRENT_TIMESTAMP AS "now [timestamp]";

-- name: sqlite_setup#
-- SQLite only, once per connection: enforce foreign keys (off by default) and
-- make LIKE case-sensitive, as it is on PostgreSQL.
PRAGMA foreign_keys = ON;
PRAGMA case_sensitive_like = ON;

-- name: get_schema_version()$
-- The schema version: the number of the last migration applied (production/migrate.py), whose
-- ids are "NNNN.name" in yoyo-migrations' table.
SELECT CAST(SUBSTR(MAX(migration_id), 1, 4) AS INTEGER) FROM _yoyo_migration;

--
-- STUFF
--
-- Single resources come with their row version (the ETag, etag.py); every UPDATE
-- increments it, and the writes take the :version their client expects (If-Match),
-- None for any: a write that finds another version changes nothing, atomically.

-- name: get_stuff_page(filter, after, lim)
-- A page of the stuff matching a LIKE pattern ("%": all of them).
SELECT sid, stuff
  FROM Stuff
  WHERE stuff LIKE :filter ESCAPE '\' AND sid > :after
  ORDER BY sid
  LIMIT :lim;

-- name: get_stuff_sid(sid)^
SELECT sid, stuff, version FROM Stuff WHERE sid = :sid;

-- name: add_stuff(stuff)$
-- None when that stuff exists already: the caller answers 409 without racing.
INSERT INTO Stuff(stuff) VALUES (:stuff)
  ON CONFLICT DO NOTHING
  RETURNING sid;

-- name: upd_stuff_sid(sid, stuff, version)!
UPDATE Stuff SET stuff = :stuff, version = version + 1
  WHERE sid = :sid AND version = COALESCE(CAST(:version AS INTEGER), version);

-- name: del_stuff_sid(sid, version)!
DELETE FROM Stuff WHERE sid = :sid AND version = COALESCE(CAST(:version AS INTEGER), version);

--
-- USERS AND AUTHENTICATION
--

-- name: get_user_login(login, address)^
-- The one query behind authentication, groups, "does this user still exist", token
-- revocation and login throttling: always one row, whose uid is NULL for an unknown
-- login, with the failed password checks of this login, of this client address, and of
-- this login from clients without a device cookie (the login's daily budget).
SELECT u.uid, u.login, u.pword, u.isAdmin AS isadmin, u.pwchanged,
    fl.failures AS login_failures, fl.since AS login_since,
    fa.failures AS address_failures, fa.since AS address_since,
    fu.failures AS untrusted_failures, fu.since AS untrusted_since
  FROM (SELECT CAST(:login AS TEXT) AS who, CAST(:address AS TEXT) AS addr) AS q
  LEFT JOIN Utilisateur AS u ON u.login = q.who
  LEFT JOIN AuthFailure AS fl ON fl.kind = 'login' AND fl.name = q.who
  LEFT JOIN AuthFailure AS fa ON fa.kind = 'address' AND fa.name = q.addr
  LEFT JOIN AuthFailure AS fu ON fu.kind = 'untrusted' AND fu.name = q.who;

-- name: get_user(login)^
-- A user's row, without the throttling counts of get_user_login: what a token
-- request needs (does the user still exist, its group, when its password changed).
SELECT uid, login, pword, isAdmin AS isadmin, pwchanged FROM Utilisateur WHERE login = :login;

-- name: rehash_user(login, old, pword)!
-- The same password under a costlier hash (auth.rehash): no new version nor password
-- change (tokens stay valid); nothing if the password changed meanwhile.
UPDATE Utilisateur SET pword = :pword WHERE login = :login AND pword = :old;

-- name: add_auth_failure(kind, name, now, start)!
-- One more failed password check; a window that started before :start starts again.
INSERT INTO AuthFailure(kind, name, failures, since) VALUES (:kind, :name, 1, :now)
  ON CONFLICT (kind, name) DO UPDATE SET
    failures = CASE WHEN AuthFailure.since < :start THEN 1 ELSE AuthFailure.failures + 1 END,
    since = CASE WHEN AuthFailure.since < :start THEN :now ELSE AuthFailure.since END;

-- name: get_auth_failures(kind, name)^
-- The failures of one device cookie (the other kinds come with get_user_login).
SELECT failures, since FROM AuthFailure WHERE kind = :kind AND name = :name;

-- name: del_auth_failures(kind, name)!
DELETE FROM AuthFailure WHERE kind = :kind AND name = :name;

-- name: purge_auth_failures(start, day_start)!
-- Forget windows that are over, so that random logins do not pile up: the day-long
-- windows of the per-login budget and of device cookies last longer.
DELETE FROM AuthFailure
  WHERE since < :day_start OR (kind IN ('login', 'address') AND since < :start);

-- name: can_access_owned(login, oid)^
-- Object permission: only its owner may access an owned object; no row → 404.
SELECT u.login = :login AS allowed
  FROM Owned AS o JOIN Utilisateur AS u ON (o.owner = u.uid)
  WHERE o.oid = :oid;

-- name: can_access_user(login, uid)^
-- Object permission: a user may access their own data, an admin anybody's.
SELECT u.login = :login OR me.isAdmin AS allowed
  FROM Utilisateur AS u, Utilisateur AS me
  WHERE u.uid = :uid AND me.login = :login;

-- name: add_user(login, pword, isadmin, now)$
-- None when the login is taken: 409 without racing.
INSERT INTO Utilisateur(login, pword, isAdmin, pwchanged) VALUES (:login, :pword, :isadmin, :now)
  ON CONFLICT DO NOTHING
  RETURNING uid;

-- name: get_user_page(filter, after, lim)
-- Users as the API shows them: never the password hash.
SELECT uid, login, isAdmin AS isadmin, created
  FROM Utilisateur
  WHERE login LIKE :filter ESCAPE '\' AND uid > :after
  ORDER BY uid
  LIMIT :lim;

-- name: get_user_uid(uid)^
SELECT uid, login, isAdmin AS isadmin, created, version FROM Utilisateur WHERE uid = :uid;

-- name: upd_user_uid(uid, login, pword, isadmin, now, version)!
-- Full update (PUT): a taken login is a unique violation, hence a 409. The password
-- is replaced: the user's tokens die (pwchanged).
UPDATE Utilisateur
  SET login = :login, pword = :pword, isAdmin = :isadmin, pwchanged = :now, version = version + 1
  WHERE uid = :uid AND version = COALESCE(CAST(:version AS INTEGER), version);

-- name: patch_user_uid(uid, pword, isadmin, now, version)!
-- Partial update (PATCH): a None parameter keeps the current value; a new password
-- kills the user's tokens (pwchanged).
UPDATE Utilisateur
  SET pword = COALESCE(CAST(:pword AS TEXT), pword),
      isAdmin = COALESCE(CAST(:isadmin AS BOOLEAN), isAdmin),
      pwchanged = CASE WHEN CAST(:pword AS TEXT) IS NULL THEN pwchanged ELSE :now END,
      version = version + 1
  WHERE uid = :uid AND version = COALESCE(CAST(:version AS INTEGER), version);

-- name: del_user_uid(uid, version)!
-- A user who still owns objects is referenced: the foreign key refuses, a 409.
DELETE FROM Utilisateur WHERE uid = :uid AND version = COALESCE(CAST(:version AS INTEGER), version);

--
-- OWNED OBJECTS
--

-- name: get_owned_page(after, lim)
SELECT oid, object, owner FROM Owned WHERE oid > :after ORDER BY oid LIMIT :lim;

-- name: get_owned_uid_page(uid, after, lim)
SELECT oid, object, owner FROM Owned WHERE owner = :uid AND oid > :after ORDER BY oid LIMIT :lim;

-- name: get_object_oid(oid)^
SELECT oid, object, owner, version FROM Owned WHERE oid = :oid;

-- name: add_object(object, login)$
-- A new object owned by this user; None when they own one by that name already.
INSERT INTO Owned(object, owner)
  SELECT :object, uid FROM Utilisateur WHERE login = :login
  ON CONFLICT DO NOTHING
  RETURNING oid;

-- name: upd_object_oid(oid, object, version)!
UPDATE Owned SET object = :object, version = version + 1
  WHERE oid = :oid AND version = COALESCE(CAST(:version AS INTEGER), version);

-- name: del_object_oid(oid, version)!
DELETE FROM Owned WHERE oid = :oid AND version = COALESCE(CAST(:version AS INTEGER), version);
--
-- OWNERS AND THINGS
--
-- Prices are NUMERIC(12, 2) on PostgreSQL (Decimal, a JSON number through
-- database.py) and REAL on SQLite: the CASE on tprice below gives the same
-- JSON on both, 40 for a whole price (not 40.0 on SQLite) and 12.5 otherwise.
-- Optional filters and partial updates pass None, which COALESCE turns into
-- "any" or "unchanged"; the explicit CASTs give PostgreSQL the parameter type
-- that a None does not carry.

-- name: get_owner_page(filter, after, lim)
-- A page of the owners whose name matches a LIKE pattern ("%": all of them).
SELECT oid, oname, omail
  FROM Owner
  WHERE oname LIKE :filter ESCAPE '\' AND oid > :after
  ORDER BY oid
  LIMIT :lim;

-- name: get_owner_oid(oid)^
SELECT oid, oname, omail, version FROM Owner WHERE oid = :oid;

-- name: add_owner(oname, omail)$
-- None when that name is taken: the caller answers 409 without racing.
INSERT INTO Owner(oname, omail) VALUES (:oname, :omail)
  ON CONFLICT DO NOTHING
  RETURNING oid;

-- name: upd_owner_oid(oid, oname, omail, version)!
-- Full (PUT) or partial (PATCH) update: a None keeps the current value.
UPDATE Owner
  SET oname = COALESCE(CAST(:oname AS TEXT), oname),
      omail = COALESCE(CAST(:omail AS TEXT), omail),
      version = version + 1
  WHERE oid = :oid AND version = COALESCE(CAST(:version AS INTEGER), version);

-- name: del_owner_oid(oid, version)!
-- The foreign key of Thing refuses it (409) while the owner still has things.
DELETE FROM Owner WHERE oid = :oid AND version = COALESCE(CAST(:version AS INTEGER), version);

-- name: get_thing_page(filter, pmin, pmax, after, lim)
-- A page of the things matching a LIKE pattern, priced within [pmin, pmax] (None:
-- no bound): an index scan on tid that stops after :lim rows.
SELECT tid, tname, oid,
    CASE WHEN tprice = CAST(tprice AS BIGINT) THEN CAST(tprice AS BIGINT) ELSE tprice END AS tprice
  FROM Thing
  WHERE tname LIKE :filter ESCAPE '\'
    AND tprice >= COALESCE(CAST(:pmin AS NUMERIC), tprice)
    AND tprice <= COALESCE(CAST(:pmax AS NUMERIC), tprice)
    AND tid > :after
  ORDER BY tid
  LIMIT :lim;

-- name: get_thing_oid_page(oid, filter, pmin, pmax, after, lim)
-- The same for one owner: a query of its own, so that the plan uses the (oid, tid)
-- index whatever the parameters (an optional oid would make a generic plan scan
-- every thing).
SELECT tid, tname, oid,
    CASE WHEN tprice = CAST(tprice AS BIGINT) THEN CAST(tprice AS BIGINT) ELSE tprice END AS tprice
  FROM Thing
  WHERE oid = :oid
    AND tname LIKE :filter ESCAPE '\'
    AND tprice >= COALESCE(CAST(:pmin AS NUMERIC), tprice)
    AND tprice <= COALESCE(CAST(:pmax AS NUMERIC), tprice)
    AND tid > :after
  ORDER BY tid
  LIMIT :lim;

-- name: get_thing_tid(tid)^
SELECT tid, tname, oid,
    CASE WHEN tprice = CAST(tprice AS BIGINT) THEN CAST(tprice AS BIGINT) ELSE tprice END AS tprice,
    version
  FROM Thing
  WHERE tid = :tid;

-- name: add_thing(tname, oid, tprice)$
-- None when the owner does not exist or already has a thing of that name:
-- the caller looks the owner up to answer 404 or 409.
INSERT INTO Thing(tname, oid, tprice)
  SELECT CAST(:tname AS TEXT), oid, CAST(:tprice AS NUMERIC) FROM Owner WHERE oid = :oid
  ON CONFLICT DO NOTHING
  RETURNING tid;

-- name: upd_thing_tid(tid, tname, oid, tprice, version)!
-- Full (PUT) or partial (PATCH) update, a None keeps the current value. The new
-- owner comes from the join: no row is updated when the thing or its new owner
-- does not exist, and the caller tells which.
UPDATE Thing
  SET tname = COALESCE(CAST(:tname AS TEXT), tname),
      oid = o.oid,
      tprice = COALESCE(CAST(:tprice AS NUMERIC), tprice),
      version = Thing.version + 1
  FROM Owner AS o
  WHERE tid = :tid AND o.oid = COALESCE(CAST(:oid AS BIGINT), Thing.oid)
    AND Thing.version = COALESCE(CAST(:version AS INTEGER), Thing.version);

-- name: del_thing_tid(tid, version)!
DELETE FROM Thing WHERE tid = :tid AND version = COALESCE(CAST(:version AS INTEGER), version);
