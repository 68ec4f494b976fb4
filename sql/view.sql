-- columns and types of pgx_stat_watchdog
CREATE EXTENSION watchdog;
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a
 WHERE a.attrelid = 'pgx_stat_watchdog'::regclass
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum;
-- the function behind it
SELECT proname, proretset, provolatile, proparallel,
       pg_get_function_result(oid) AS result
  FROM pg_proc WHERE proname = 'pgx_stat_watchdog';
SELECT * FROM pgx_stat_watchdog;
DROP EXTENSION watchdog;
-- an installation of 1.1 reads the 15 columns of 1.1 with the new library,
-- and has heartbeat_path once updated
CREATE EXTENSION watchdog VERSION '1.1';
SELECT count(*) AS columns FROM pg_attribute
 WHERE attrelid = 'pgx_stat_watchdog'::regclass AND attnum > 0;
SELECT count(*) FROM pgx_stat_watchdog;
ALTER EXTENSION watchdog UPDATE;
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a
 WHERE a.attrelid = 'pgx_stat_watchdog'::regclass AND a.attnum > 15
 ORDER BY a.attnum;
SELECT count(*) FROM pgx_stat_watchdog;
DROP EXTENSION watchdog;
