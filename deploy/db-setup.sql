-- Kiva: the application's PostgreSQL roles and database, run once by the database
-- administrator (a superuser), idempotent: running it again updates the passwords,
-- the owner, the rights and the connection limit, and never touches the data.
--
--   sudo -u postgres psql -X -v ON_ERROR_STOP=1 -f deploy/db-setup.sql
--
-- Two roles, least privilege:
-- - the owner (owner, default kiva_owner) owns the database and every table: schema
--   changes (`make deploy DB_INIT=…`, migrations) run as it, never the app;
-- - the runtime role (role, default kiva) is what the app connects as: it may read and
--   write rows (SELECT, INSERT, UPDATE, DELETE, sequences), nothing else: no DROP, no
--   ALTER, no TRUNCATE, no CREATE. Tables the owner creates later get the same rights
--   (ALTER DEFAULT PRIVILEGES).
--
-- It prompts for the passwords, or takes them as psql variables (-v password=…
-- -v owner_password=…), never written in this file. Other variables: role (kiva),
-- owner (kiva_owner), db (kiva), conn_limit (20: above the Apache processes × threads,
-- plus one for maintenance).
--
-- pg_hba.conf: allow the runtime role from the web server only, with a password, e.g.
-- for a web server at 10.101.1.100 (or `local kiva kiva scram-sha-256` on the same host):
--
--   hostssl  kiva  kiva        10.101.1.100/32  scram-sha-256
--   local    kiva  kiva_owner                   scram-sha-256
--
-- then `SELECT pg_reload_conf();`. The app account keeps the runtime password in
-- ~/.pgpass (chmod 600): `db.example.org:5432:kiva:kiva:<password>`; the owner's
-- password stays with whoever deploys (kiva-owner.env, see deploy.sh), never with the app.

\if :{?role}
\else
  \set role kiva
\endif
\if :{?owner}
\else
  \set owner kiva_owner
\endif
\if :{?db}
\else
  \set db kiva
\endif
\if :{?conn_limit}
\else
  \set conn_limit 20
\endif
\if :{?password}
\else
  \prompt 'password for the runtime PostgreSQL role ' password
\endif
\if :{?owner_password}
\else
  \prompt 'password for the owner PostgreSQL role ' owner_password
\endif

-- the roles: login with a password, stored as a SCRAM hash
SET password_encryption = 'scram-sha-256';
SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') AS owner_exists \gset
\if :owner_exists
  ALTER ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
\else
  CREATE ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
\endif
SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') AS role_exists \gset
\if :role_exists
  ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
\else
  CREATE ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
\endif

-- the database, owned by the owner, with a connection limit
SELECT EXISTS (SELECT FROM pg_database WHERE datname = :'db') AS db_exists \gset
\if :db_exists
  ALTER DATABASE :"db" OWNER TO :"owner";
  ALTER DATABASE :"db" WITH CONNECTION LIMIT :conn_limit;
\else
  CREATE DATABASE :"db" WITH OWNER :"owner" CONNECTION LIMIT :conn_limit ENCODING 'UTF8';
\endif
-- only these two roles (and superusers) may connect
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"role";

\c :"db"
-- the public schema is the owner's: only it creates objects there
ALTER SCHEMA public OWNER TO :"owner";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM :"role";  -- a database from before the split granted it all
GRANT USAGE ON SCHEMA public TO :"role";
-- tables already there (a database from before the split) become the owner's
SELECT format('ALTER TABLE %I OWNER TO %I', tablename, :'owner') FROM pg_tables WHERE schemaname = 'public' \gexec
SELECT format('ALTER SEQUENCE %I OWNER TO %I', sequencename, :'owner') FROM pg_sequences WHERE schemaname = 'public' \gexec
-- the runtime role: rows only, on what exists and on what the owner creates later
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"role";
