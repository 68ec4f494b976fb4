-- who sees what in pgx_stat_watchdog
CREATE EXTENSION watchdog;
CREATE ROLE regress_wd_plain;
CREATE ROLE regress_wd_monitor IN ROLE pg_monitor;
SELECT has_table_privilege('regress_wd_plain', 'pgx_stat_watchdog', 'SELECT') AS plain_select,
       has_function_privilege('regress_wd_plain', 'pgx_stat_watchdog()', 'EXECUTE') AS plain_execute;
-- every role may read the view; addresses are hidden by the function
SET ROLE regress_wd_plain;
SELECT count(*) FROM pgx_stat_watchdog;
RESET ROLE;
SET ROLE regress_wd_monitor;
SELECT count(*) FROM pgx_stat_watchdog;
RESET ROLE;
-- plain roles cannot change the parameters
SET ROLE regress_wd_plain;
ALTER SYSTEM SET watchdog.check_attr_interval = 100;
-- nor see where the heartbeat secret is kept
SHOW watchdog.secret_file;
SELECT count(*) FROM pg_settings WHERE name = 'watchdog.secret_file';
RESET ROLE;
DROP EXTENSION watchdog;
DROP ROLE regress_wd_plain;
DROP ROLE regress_wd_monitor;
