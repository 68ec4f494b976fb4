/* watchdog--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION watchdog" to load this file. \quit

-- One row per conmgr process known to the watchdog.  Addresses, ports and
-- names are NULL unless the caller may see client addresses in
-- pg_stat_activity (pg_read_all_stats, pg_monitor, superuser).
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
    OUT sessions_terminated bigint
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pgx_stat_watchdog_1_0'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW pgx_stat_watchdog AS
    SELECT * FROM pgx_stat_watchdog();

COMMENT ON VIEW pgx_stat_watchdog IS
    'conmgr processes connected to the watchdog of this instance';

GRANT SELECT ON pgx_stat_watchdog TO PUBLIC;
