-- Load users.csv (made by scripts/pass2csv.py from users.in) into Utilisateur.
-- psql's \copy reads the file on the client side: run it from the folder holding users.csv.
\copy Utilisateur(login, pword, isAdmin) FROM 'users.csv' WITH (FORMAT csv)
