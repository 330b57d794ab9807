-- The statements of the point-in-time recovery drill (drills/pitr_drill.py), aiosql.

-- name: thing_ids()
SELECT tid FROM Thing ORDER BY tid;

-- name: now_text()$
SELECT CAST(clock_timestamp() AS TEXT);

-- name: delete_things()!
-- The accident.
DELETE FROM Thing;

-- name: in_recovery()$
SELECT pg_is_in_recovery();

-- name: last_replayed(target)^
-- The last transaction replayed, and how long before the target it committed.
SELECT CAST(pg_last_xact_replay_timestamp() AS TEXT) AS replayed,
    EXTRACT(EPOCH FROM CAST(:target AS TIMESTAMPTZ) - pg_last_xact_replay_timestamp()) AS gap;

-- name: stuff_like(pattern)
SELECT stuff FROM Stuff WHERE stuff LIKE :pattern;

-- name: things_named(tname)
SELECT tid FROM Thing WHERE tname = :tname;

-- name: row_total()$
SELECT (SELECT COUNT(*) FROM Stuff) + (SELECT COUNT(*) FROM Thing) + (SELECT COUNT(*) FROM Owner)
     + (SELECT COUNT(*) FROM Owned) + (SELECT COUNT(*) FROM Utilisateur);

-- name: database_size()$
SELECT pg_size_pretty(pg_database_size(current_database()));
