/* watchdog--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION watchdog UPDATE TO '1.2'" to load this file. \quit

-- 1.2: heartbeat_path, the way the last heartbeat of each conmgr came
-- ('tcp', or 'datagram' with protocol 1.2); the privileges stay as in 1.1
DROP VIEW pgx_stat_watchdog;
DROP FUNCTION pgx_stat_watchdog();

CREATE FUNCTION pgx_stat_watchdog(
    OUT conmgr_addr inet,
    OUT conmgr_port integer,
    OUT heartbeat_interval integer,
    OUT heartbeat_timeout integer,
    OUT server_timeout integer,
    OUT conmgr_name text,
    OUT protocol_version text,
    OUT authenticated boolean,
    OUT state text,
    OUT connected_since timestamp with time zone,
    OUT last_heartbeat timestamp with time zone,
    OUT heartbeats bigint,
    OUT round_trip double precision,
    OUT sessions_registered integer,
    OUT sessions_terminated bigint,
    OUT heartbeat_path text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pgx_stat_watchdog_1_2'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW pgx_stat_watchdog AS
    SELECT * FROM pgx_stat_watchdog();

COMMENT ON VIEW pgx_stat_watchdog IS
    'conmgr processes connected to the watchdog of this instance';

REVOKE ALL ON pgx_stat_watchdog FROM PUBLIC;
REVOKE ALL ON FUNCTION pgx_stat_watchdog() FROM PUBLIC;

GRANT SELECT ON pgx_stat_watchdog TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgx_stat_watchdog() TO pg_monitor;
