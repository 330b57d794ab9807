-- Kiva benchmark data: rows :lo+1 to :hi of each table, generated in SQL (psql -v lo=… -v hi=…
-- -v hash=…), so that growing N from 10^3 to 10^6 only adds the missing rows.
--
-- Stuff "A-17", "B-18"…: four prefixes, so that GET /stuff?filter=C% always has more
-- than a page of matches; users user<i> (all with the same bcrypt hash :hash);
-- owners owner<i>; things thing<i> of owner (i mod hi)+1; owned objects obj<i> of user (i mod hi)+1.
INSERT INTO Stuff(stuff)
  SELECT chr(65 + i % 4) || '-' || i FROM generate_series(:lo + 1, :hi) AS i;
INSERT INTO Utilisateur(login, pword, isAdmin)
  SELECT 'user' || i, :'hash', FALSE FROM generate_series(:lo + 1, :hi) AS i;
INSERT INTO Owner(oname, omail)
  SELECT 'owner' || i, 'owner' || i || '@example.org' FROM generate_series(:lo + 1, :hi) AS i;
INSERT INTO Thing(tname, oid, tprice)
  SELECT 'thing' || i, o.oid, (i % 100000) / 100.0
  FROM generate_series(:lo + 1, :hi) AS i JOIN Owner AS o ON o.oname = 'owner' || (1 + (i::BIGINT * 7919) % :hi);
INSERT INTO Owned(object, owner)
  SELECT 'obj' || i, u.uid
  FROM generate_series(:lo + 1, :hi) AS i JOIN Utilisateur AS u ON u.login = 'user' || (1 + (i::BIGINT * 7919) % :hi);
VACUUM ANALYZE Stuff;
VACUUM ANALYZE Utilisateur;
VACUUM ANALYZE Owner;
VACUUM ANALYZE Thing;
VACUUM ANALYZE Owned;
