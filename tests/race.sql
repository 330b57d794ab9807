-- Queries of the race tests (tests/race.py) only; the writes they race with are the
-- app's own, from queries.sql.

-- name: blocked_by(pid)$
-- How many backends wait for a lock that backend `pid` holds (PostgreSQL).
SELECT count(*) FROM pg_stat_activity WHERE CAST(:pid AS INTEGER) = ANY(pg_blocking_pids(pid));

-- name: backend_pid()$
SELECT pg_backend_pid();
