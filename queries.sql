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

--
-- STUFF
--

-- name: get_stuff_page(filter, after, lim)
-- A page of the stuff matching a LIKE pattern ("%": all of them).
SELECT sid, stuff
  FROM Stuff
  WHERE stuff LIKE :filter AND sid > :after
  ORDER BY sid
  LIMIT :lim;

-- name: get_stuff_sid(sid)^
SELECT sid, stuff FROM Stuff WHERE sid = :sid;

-- name: add_stuff(stuff)$
-- None when that stuff exists already: the caller answers 409 without racing.
INSERT INTO Stuff(stuff) VALUES (:stuff)
  ON CONFLICT DO NOTHING
  RETURNING sid;

-- name: upd_stuff_sid(sid, stuff)!
UPDATE Stuff SET stuff = :stuff WHERE sid = :sid;

-- name: del_stuff_sid(sid)!
DELETE FROM Stuff WHERE sid = :sid;

--
-- USERS AND AUTHENTICATION
--

-- name: get_user_login(login)^
-- The one query behind authentication, groups and "does this user still exist".
SELECT uid, login, pword, isAdmin AS isadmin FROM Utilisateur WHERE login = :login;

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
  WHERE oname LIKE :filter AND oid > :after
  ORDER BY oid
  LIMIT :lim;

-- name: get_owner_oid(oid)^
SELECT oid, oname, omail FROM Owner WHERE oid = :oid;

-- name: add_owner(oname, omail)$
-- None when that name is taken: the caller answers 409 without racing.
INSERT INTO Owner(oname, omail) VALUES (:oname, :omail)
  ON CONFLICT DO NOTHING
  RETURNING oid;

-- name: upd_owner_oid(oid, oname, omail)!
-- Full (PUT) or partial (PATCH) update: a None keeps the current value.
UPDATE Owner
  SET oname = COALESCE(CAST(:oname AS TEXT), oname),
      omail = COALESCE(CAST(:omail AS TEXT), omail)
  WHERE oid = :oid;

-- name: del_owner_oid(oid)!
-- The foreign key of Thing refuses it (409) while the owner still has things.
DELETE FROM Owner WHERE oid = :oid;

-- name: get_thing_page(filter, oid, pmin, pmax, after, lim)
-- A page of the things matching a LIKE pattern, of one owner or any (None),
-- priced within [pmin, pmax] (None: no bound).
SELECT tid, tname, oid,
    CASE WHEN tprice = CAST(tprice AS BIGINT) THEN CAST(tprice AS BIGINT) ELSE tprice END AS tprice
  FROM Thing
  WHERE tname LIKE :filter
    AND oid = COALESCE(CAST(:oid AS BIGINT), oid)
    AND tprice >= COALESCE(CAST(:pmin AS NUMERIC), tprice)
    AND tprice <= COALESCE(CAST(:pmax AS NUMERIC), tprice)
    AND tid > :after
  ORDER BY tid
  LIMIT :lim;

-- name: get_thing_tid(tid)^
SELECT tid, tname, oid,
    CASE WHEN tprice = CAST(tprice AS BIGINT) THEN CAST(tprice AS BIGINT) ELSE tprice END AS tprice
  FROM Thing
  WHERE tid = :tid;

-- name: add_thing(tname, oid, tprice)$
-- None when the owner does not exist or already has a thing of that name:
-- the caller looks the owner up to answer 404 or 409.
INSERT INTO Thing(tname, oid, tprice)
  SELECT CAST(:tname AS TEXT), oid, CAST(:tprice AS NUMERIC) FROM Owner WHERE oid = :oid
  ON CONFLICT DO NOTHING
  RETURNING tid;

-- name: upd_thing_tid(tid, tname, oid, tprice)!
-- Full (PUT) or partial (PATCH) update, a None keeps the current value. The new
-- owner comes from the join: no row is updated when the thing or its new owner
-- does not exist, and the caller tells which.
UPDATE Thing
  SET tname = COALESCE(CAST(:tname AS TEXT), tname),
      oid = o.oid,
      tprice = COALESCE(CAST(:tprice AS NUMERIC), tprice)
  FROM Owner AS o
  WHERE tid = :tid AND o.oid = COALESCE(CAST(:oid AS BIGINT), Thing.oid);

-- name: del_thing_tid(tid)!
DELETE FROM Thing WHERE tid = :tid;
