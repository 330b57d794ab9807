-- Catalog queries of production/snapshot.py and tests/test_migrations.py (aiosql): what tables a
-- database has, and its schema as comparable rows. "pg_" queries are PostgreSQL's,
-- "sqlite_" ones SQLite's.

-- name: pg_tables()
SELECT table_name AS name FROM information_schema.tables
  WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1;

-- name: sqlite_tables()
SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence' ORDER BY 1;

-- name: pg_schema()
-- Columns, constraints and indexes of the application's tables (not the migration tool's).
SELECT 'column' AS kind, table_name AS tab,
    CONCAT_WS(' ', column_name, data_type, is_nullable, column_default) AS def
  FROM information_schema.columns
  WHERE table_schema = 'public' AND STRPOS(table_name, 'yoyo') = 0
UNION ALL
SELECT 'constraint', CAST(CAST(conrelid AS regclass) AS TEXT), pg_get_constraintdef(oid)
  FROM pg_constraint
  WHERE connamespace = CAST('public' AS regnamespace) AND STRPOS(CAST(CAST(conrelid AS regclass) AS TEXT), 'yoyo') = 0
UNION ALL
SELECT 'index', tablename, indexdef FROM pg_indexes
  WHERE schemaname = 'public' AND STRPOS(tablename, 'yoyo') = 0
ORDER BY 1, 2, 3;

-- name: sqlite_schema()
SELECT 'column' AS kind, m.name AS tab,
    p.name || ' ' || p.type || ' ' || p."notnull" || ' ' || COALESCE(p.dflt_value, '') || ' ' || p.pk AS def
  FROM sqlite_master AS m, pragma_table_info(m.name) AS p
  WHERE m.type = 'table' AND INSTR(m.name, 'yoyo') = 0
UNION ALL
SELECT 'index', m.name, i.name || ' ' || i."unique" || ' ' || c.name
  FROM sqlite_master AS m, pragma_index_list(m.name) AS i, pragma_index_info(i.name) AS c
  WHERE m.type = 'table' AND INSTR(m.name, 'yoyo') = 0
ORDER BY 1, 2, 3;
