-- the extension installs and uninstalls cleanly
CREATE EXTENSION watchdog;
SELECT extname, extversion, extrelocatable
  FROM pg_extension WHERE extname = 'watchdog';
-- objects that belong to the extension
SELECT pg_describe_object(classid, objid, objsubid) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'watchdog')
   AND deptype = 'e'
 ORDER BY 1;
-- no conmgr is connected in this test instance
SELECT count(*) FROM pgx_stat_watchdog;
DROP EXTENSION watchdog;
SELECT count(*) FROM pg_extension WHERE extname = 'watchdog';
SELECT count(*) FROM pg_class WHERE relname = 'pgx_stat_watchdog';
-- a schema can be chosen at creation
CREATE SCHEMA wd;
CREATE EXTENSION watchdog SCHEMA wd;
SELECT count(*) FROM wd.pgx_stat_watchdog;
DROP EXTENSION watchdog;
DROP SCHEMA wd;
-- the version that does not exist is refused
CREATE EXTENSION watchdog VERSION '0.9';
-- the versions shipped, and how an existing installation is brought up to date
SELECT version, superuser, relocatable
  FROM pg_available_extension_versions WHERE name = 'watchdog' ORDER BY 1;
SELECT source, target, path FROM pg_extension_update_paths('watchdog')
 WHERE path IS NOT NULL ORDER BY 1, 2;
SELECT default_version FROM pg_available_extensions WHERE name = 'watchdog';
