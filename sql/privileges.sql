-- who may read pgx_stat_watchdog: superusers and pg_monitor members only
CREATE EXTENSION watchdog;
CREATE ROLE regress_wd_plain;
CREATE ROLE regress_wd_monitor IN ROLE pg_monitor;
-- the privileges granted on the view and its function, the owner's aside:
-- in force (acl) and recorded as the extension's own for pg_dump (init)
CREATE FUNCTION regress_wd_grants(OUT source text, OUT object text,
                                  OUT grantee text, OUT privilege text)
RETURNS SETOF record LANGUAGE sql AS $$
  WITH objects(object, classid, objid, owner, acl) AS (
    SELECT 'view', 'pg_class'::regclass, c.oid, c.relowner,
           coalesce(c.relacl, acldefault('r', c.relowner))
      FROM pg_class c WHERE c.relname = 'pgx_stat_watchdog'
    UNION ALL
    SELECT 'function', 'pg_proc'::regclass, p.oid, p.proowner,
           coalesce(p.proacl, acldefault('f', p.proowner))
      FROM pg_proc p WHERE p.proname = 'pgx_stat_watchdog'
  ), acls(source, object, owner, acl) AS (
    SELECT 'acl', object, owner, acl FROM objects
    UNION ALL
    SELECT 'init', o.object, o.owner, i.initprivs
      FROM objects o JOIN pg_init_privs i
        ON i.classoid = o.classid AND i.objoid = o.objid AND i.objsubid = 0
  )
  SELECT s.source, s.object, coalesce(r.rolname, 'PUBLIC'), a.privilege_type
    FROM acls s CROSS JOIN LATERAL aclexplode(s.acl) a
    LEFT JOIN pg_roles r ON r.oid = a.grantee
   WHERE a.grantee <> s.owner
   ORDER BY 1, 2, 3, 4
$$;
SELECT extversion FROM pg_extension WHERE extname = 'watchdog';
SELECT * FROM regress_wd_grants();
SELECT has_table_privilege('regress_wd_plain', 'pgx_stat_watchdog', 'SELECT') AS plain_select,
       has_function_privilege('regress_wd_plain', 'pgx_stat_watchdog()', 'EXECUTE') AS plain_execute,
       has_table_privilege('regress_wd_monitor', 'pgx_stat_watchdog', 'SELECT') AS monitor_select,
       has_function_privilege('regress_wd_monitor', 'pgx_stat_watchdog()', 'EXECUTE') AS monitor_execute;
-- a plain role is refused, through the view and directly
SET ROLE regress_wd_plain;
SELECT count(*) FROM pgx_stat_watchdog;
SELECT count(*) FROM pgx_stat_watchdog();
RESET ROLE;
-- a pg_monitor member may read it
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
-- version 1.0 granted the view to PUBLIC; updating to 1.2 gives an
-- existing installation the same privileges as a new one
CREATE EXTENSION watchdog VERSION '1.0';
SELECT * FROM regress_wd_grants();
SET ROLE regress_wd_plain;
SELECT count(*) FROM pgx_stat_watchdog;
RESET ROLE;
ALTER EXTENSION watchdog UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'watchdog';
SELECT * FROM regress_wd_grants();
SET ROLE regress_wd_plain;
SELECT count(*) FROM pgx_stat_watchdog;
RESET ROLE;
SET ROLE regress_wd_monitor;
SELECT count(*) FROM pgx_stat_watchdog;
RESET ROLE;
DROP EXTENSION watchdog;
DROP FUNCTION regress_wd_grants();
DROP ROLE regress_wd_plain;
DROP ROLE regress_wd_monitor;
