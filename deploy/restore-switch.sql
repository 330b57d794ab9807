-- Make a restored database the app's (scripts/backup.py restore), run by a superuser:
--
--   psql -X -v ON_ERROR_STOP=1 -v db=kiva -v new=kiva_r… -v old=kiva_before_… -f deploy/restore-switch.sql
--
-- :new takes :db's owner, connection limit and grants (pg_restore brought the tables'
-- owners and grants, not the database's own); then :db is closed to new connections,
-- its sessions are ended (the app's included: it opens new ones at its next requests),
-- and the two are renamed. The app is unavailable from the end of its sessions to the
-- last rename: a few milliseconds, measured by drills/restore_drill.py.

SELECT pg_get_userbyid(datdba) AS owner, datconnlimit AS conn_limit, datacl IS NULL AS default_acl
  FROM pg_database WHERE datname = :'db' \gset
ALTER DATABASE :"new" OWNER TO :"owner";
ALTER DATABASE :"new" WITH CONNECTION LIMIT :conn_limit;
\if :default_acl
\else
  REVOKE ALL ON DATABASE :"new" FROM PUBLIC;
  SELECT format('GRANT %s ON DATABASE %I TO %s', a.privilege_type, :'new',
                CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
    FROM pg_database AS d, aclexplode(d.datacl) AS a
    WHERE d.datname = :'db' \gexec
\endif

-- the switch: nobody may connect to :db meanwhile, so that the renames cannot fail
ALTER DATABASE :"db" WITH ALLOW_CONNECTIONS false;
SELECT count(pg_terminate_backend(pid, 5000)) AS ended FROM pg_stat_activity WHERE datname = :'db' \gset
ALTER DATABASE :"db" RENAME TO :"old";
ALTER DATABASE :"new" RENAME TO :"db";
\echo restore-switch: :ended sessions ended, :db is the restored database, the previous one is :old
