/* watchdog--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION watchdog UPDATE TO '1.1'" to load this file. \quit

-- The view is for monitoring roles only: superusers and members of
-- pg_monitor (version 1.0 granted it to PUBLIC).  As in pg_stat_statements,
-- both the view and its function are restricted: a function called in a
-- view is checked against the caller, not the view's owner.
REVOKE ALL ON pgx_stat_watchdog FROM PUBLIC;
REVOKE ALL ON FUNCTION pgx_stat_watchdog() FROM PUBLIC;

GRANT SELECT ON pgx_stat_watchdog TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgx_stat_watchdog() TO pg_monitor;
