-- Kiva: the application's PostgreSQL role and database, run once by the database
-- administrator (a superuser), idempotent: running it again updates the password,
-- the owner and the connection limit, and never touches the data.
--
--   sudo -u postgres psql -X -v ON_ERROR_STOP=1 -f deploy/db-setup.sql
--
-- It prompts for the role's password, or takes it as a psql variable (-v password=…),
-- never written in this file. Other variables: role (kiva), db (kiva), conn_limit (20:
-- above the Apache processes × threads, plus one for maintenance).
--
-- pg_hba.conf: allow the role from the web server only, with a password, e.g. for a
-- web server at 10.101.1.100 (or `local kiva kiva scram-sha-256` on the same host):
--
--   hostssl  kiva  kiva  10.101.1.100/32  scram-sha-256
--
-- then `SELECT pg_reload_conf();`. The app account keeps the password in ~/.pgpass
-- (chmod 600): `db.example.org:5432:kiva:kiva:<password>`.

\if :{?role}
\else
  \set role kiva
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
  \prompt 'password for the PostgreSQL role ' password
\endif

-- the role: login with a password, stored as a SCRAM hash
SET password_encryption = 'scram-sha-256';
SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') AS role_exists \gset
\if :role_exists
  ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';
\else
  CREATE ROLE :"role" WITH LOGIN PASSWORD :'password';
\endif

-- the database, owned by the role, with a connection limit
SELECT EXISTS (SELECT FROM pg_database WHERE datname = :'db') AS db_exists \gset
\if :db_exists
  ALTER DATABASE :"db" OWNER TO :"role";
  ALTER DATABASE :"db" WITH CONNECTION LIMIT :conn_limit;
\else
  CREATE DATABASE :"db" WITH OWNER :"role" CONNECTION LIMIT :conn_limit ENCODING 'UTF8';
\endif
-- only its owner (and superusers) may connect
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;

\c :"db"
-- the owner creates the tables (`make deploy DB_INIT=1`); before PostgreSQL 15 the
-- public schema is not the owner's by default
GRANT ALL ON SCHEMA public TO :"role";
-- the slides' default privileges: whoever creates objects here, the database
-- owner may use them
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL PRIVILEGES ON TABLES TO pg_database_owner;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL PRIVILEGES ON ROUTINES TO pg_database_owner;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL PRIVILEGES ON SEQUENCES TO pg_database_owner;
