-- defaults, units, contexts and ranges of the watchdog parameters
SELECT name,
       CASE WHEN name = 'watchdog.max_heartbeat_connections'
            THEN '(max_connections)' ELSE setting END AS setting,
       unit, context, vartype, min_val, max_val, enumvals
  FROM pg_settings WHERE name LIKE 'watchdog.%' ORDER BY name;
SHOW watchdog.check_attr_interval;
SHOW watchdog.hello_timeout;
SHOW watchdog.timeout_margin;
SHOW watchdog.termination_mode;
SHOW watchdog.terminate_replication;
SHOW watchdog.listen_addresses;
-- watchdog.port comes from sql/regress.conf; its default is 27545
SELECT boot_val FROM pg_settings WHERE name = 'watchdog.port';
SHOW watchdog.port;
-- max_heartbeat_connections defaults to max_connections
SELECT current_setting('watchdog.max_heartbeat_connections') =
       current_setting('max_connections') AS follows_max_connections;
-- restart-only and reloadable parameters cannot be changed in a session
SET watchdog.port = 5000;
SET watchdog.check_attr_interval = 500;
SET watchdog.max_heartbeat_connections = 10;
-- range and value errors
ALTER SYSTEM SET watchdog.port = 0;
ALTER SYSTEM SET watchdog.port = 65536;
ALTER SYSTEM SET watchdog.check_attr_interval = 0;
ALTER SYSTEM SET watchdog.check_attr_interval = '-1s';
ALTER SYSTEM SET watchdog.max_heartbeat_connections = 0;
ALTER SYSTEM SET watchdog.hello_timeout = 10;
ALTER SYSTEM SET watchdog.timeout_margin = -1;
ALTER SYSTEM SET watchdog.termination_mode = 'everything';
ALTER SYSTEM SET watchdog.terminate_replication = 'perhaps';
ALTER SYSTEM SET watchdog.secret_file = 'a.secret, b.secret, c.secret, d.secret, e.secret';
ALTER SYSTEM SET watchdog.secret_file = '"unterminated.secret';
-- units are accepted
ALTER SYSTEM SET watchdog.check_attr_interval = '2s';
ALTER SYSTEM RESET watchdog.check_attr_interval;
-- the prefix is reserved: unknown watchdog.* names are errors
SET watchdog.no_such_parameter = 1;
