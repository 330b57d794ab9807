-- Kiva seed data, for both engines: the fixtures the course transcripts rely on.
-- No explicit ids: on a fresh schema they come out as 1, 2, 3… and the sequences
-- stay right for the next insert.

INSERT INTO Stuff(stuff) VALUES ('Chair'), ('Desk');

-- bcrypt hashes (cost 4) of the passwords hobbes, susie, derkins
INSERT INTO Utilisateur(login, pword, isAdmin) VALUES
  ('calvin', '$2b$04$q72gw1oszTmtwVV96UjjKuwEAshIxqE3mJZZ8iRF.Kmgstna9RJq2', TRUE),
  ('hobbes', '$2b$04$fdSmnIcE8JHJ3AtU6DkhxuNPS6r0JH7q/P/aYxJG0lVjLgmd6QIla', FALSE),
  ('susie', '$2b$04$Y/u/SIxB5yDcKs5NS29JqOBBACEvSOrwfdKfHvEqNvK1Lws0NNsVi', FALSE);

INSERT INTO Owned(object, owner) VALUES
  ('Box', 1), ('Box', 2), ('Doll', 3), ('Tiger', 1), ('Snow', 1);

INSERT INTO Owner(oname, omail) VALUES
  ('Calvin', 'calvin@comics.net'), ('Susie', 'susie@comics.net');

INSERT INTO Thing(tname, oid, tprice) VALUES
  ('Sled', 1, 25.5), ('Wagon', 1, 40), ('Doll house', 2, 12.5);
