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
