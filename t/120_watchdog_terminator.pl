
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The terminator: a peer that stops answering has its host's TCP sessions
# ended within the documented bound (not before the lease allows), an open
# transaction's locks are released, Unix-socket sessions and walsenders
# survive.  Precise mode ends only registered sessions, and registrations
# for another address's backends are rejected.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmNode;
use CmWatchdog;

my $margin = 3.0;    # s, scheduling slack on a loaded test machine

my $node = CmNode->create('term',
	init => { allows_streaming => 1 },
	conf => "watchdog.timeout_margin = 500\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres',
	'CREATE EXTENSION watchdog; CREATE TABLE locked_table (i int)');

my @sessions;

# A psql session over TCP from 127.0.0.1 (or over the Unix socket).
sub session
{
	my (%o) = @_;
	my $connstr =
	  $o{unix}
	  ? $node->connstr('postgres')
	  : "host=127.0.0.1 port=" . $node->port . " dbname=postgres";
	$connstr .= " replication=$o{replication}" if $o{replication};
	my $s = CmWatchdog::Session->start($connstr);
	push @sessions, $s;
	return $s;
}

sub alive
{
	my ($pid) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid");
}

END
{
	for my $s (@sessions)
	{
		eval { $s->quit; };
	}
}

# --- address mode (the default) ---

my $s_lock = session();
my $pid_lock = $s_lock->query('SELECT pg_backend_pid()');
$s_lock->query(
	'BEGIN; LOCK TABLE locked_table IN ACCESS EXCLUSIVE MODE');
my $s_idle = session();
my $pid_idle = $s_idle->query('SELECT pg_backend_pid()');
my $s_unix = session(unix => 1);
my $pid_unix = $s_unix->query('SELECT pg_backend_pid()');
my $s_repl = session(replication => 'database');
my $pid_repl = $s_repl->query('IDENTIFY_SYSTEM');
$pid_repl = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender'");
ok($pid_repl, 'a walsender is connected over TCP');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_locks WHERE relation = 'locked_table'::regclass"),
	'1',
	'the open transaction holds its lock');

my ($interval, $timeout) = (200, 600);
my $server_timeout = ($interval + $timeout + 500) / 1000;    # s

my $peer = CmWatchdog::Peer->connect($wdport);
my $w = $peer->hello(interval => $interval, timeout => $timeout, name => 'frozen');
is($w->{server_timeout}, $interval + $timeout + 500,
	'welcome: server timeout = interval + timeout + timeout_margin');
my $last;
for my $seq (1 .. 3)
{
	my $r = $peer->heartbeat($seq);
	ok($r && $r->{type} eq 'b', "heartbeat $seq answered");
	$last = time();
}

# the peer now stops answering, as a frozen conmgr would
my $offset = -s $node->logfile;
$node->wait_for_log(qr/watchdog terminated \d+ session\(s\) from 127\.0\.0\.1/,
	$offset);
my $elapsed = time() - $last;
cmp_ok($elapsed, '>=', ($interval + $timeout) / 1000,
	'sessions not terminated before conmgr itself gave up (lease rule)');
cmp_ok($elapsed, '>=', $server_timeout - 0.1,
	'sessions not terminated before the announced server timeout');
cmp_ok($elapsed, '<=', $server_timeout + $margin,
	'sessions terminated within server timeout + margin');
ok( $node->log_contains(
		qr/conmgr "frozen" at 127\.0\.0\.1:\d+ lost: no heartbeat received for 1300 ms/, $offset),
	'the loss is logged with its cause');
ok( $node->log_contains(
		qr/terminated 2 session\(s\) from 127\.0\.0\.1: conmgr "frozen" was lost \(heartbeat timeout\)\n.*DETAIL:  Terminated backend PIDs: ($pid_lock, $pid_idle|$pid_idle, $pid_lock); mode address, replication connections kept/, $offset
	),
	'the termination is logged with address, PIDs and reason');

ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid IN ($pid_lock, $pid_idle)"
	),
	'both TCP sessions are gone');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_locks WHERE relation = 'locked_table'::regclass"),
	'0',
	'the open transaction\'s lock is released');
is( $node->safe_psql('postgres', 'BEGIN; LOCK TABLE locked_table NOWAIT; SELECT 1; COMMIT'),
	'1', 'the table can be locked again');
is(alive($pid_unix), '1', 'the Unix-socket session survives');
is(alive($pid_repl), '1', 'the walsender survives');
ok( $node->wait_for_view_count(
		"conmgr_name = 'frozen' AND state = 'terminated' AND sessions_terminated = 2", 1),
	'the lost peer stays in the view as terminated, with its 2 terminated sessions');
ok($node->wait_for_view_count("state <> 'terminated'", 0),
	'the lost peer no longer counts as connected');

# --- replication connections are included on request ---

$node->safe_psql('postgres',
	'ALTER SYSTEM SET watchdog.terminate_replication = on; SELECT pg_reload_conf()');
# pg_reload_conf() only signals the postmaster: once a new session sees the
# value, the postmaster has reloaded and signalled the terminator, which
# reloads before it handles a lost peer
$node->poll_query_until('postgres',
	"SELECT current_setting('watchdog.terminate_replication') = 'on'");
$peer = CmWatchdog::Peer->connect($wdport);
$peer->hello(interval => $interval, timeout => $timeout, name => 'repl');
$peer->heartbeat(1);    # in use: conmgr sends its first heartbeat at once
$offset = -s $node->logfile;
$peer->close;    # lost: closed without goodbye
$node->wait_for_log(qr/terminated 1 session\(s\) from 127\.0\.0\.1: conmgr "repl" was lost \(connection lost\)/,
	$offset);
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid_repl"),
	'with terminate_replication the walsender is ended');
is(alive($pid_unix), '1', 'the Unix-socket session still survives');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET watchdog.terminate_replication; SELECT pg_reload_conf()');
$node->poll_query_until('postgres',
	"SELECT current_setting('watchdog.terminate_replication') = 'off'");

# --- precise mode ---

$node->safe_psql('postgres',
	"ALTER SYSTEM SET watchdog.termination_mode = 'precise'; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT current_setting('watchdog.termination_mode') = 'precise'");

my $s_reg = session();
my ($pid_reg, $port_reg) =
  split /\|/, $s_reg->query('SELECT pg_backend_pid(), inet_client_port()');
my $s_unreg = session();
my ($pid_unreg, $port_unreg) =
  split /\|/, $s_unreg->query('SELECT pg_backend_pid(), inet_client_port()');

# a peer from another address (127.0.0.2) cannot register 127.0.0.1's sessions
my $other = IO::Socket::INET->new(
	PeerAddr => '127.0.0.1',
	PeerPort => $wdport,
	LocalAddr => '127.0.0.2',
	Proto => 'tcp');
SKIP:
{
	skip 'cannot bind 127.0.0.2', 4 unless $other;
	my $op = bless { sock => $other, buf => '' }, 'CmWatchdog::Peer';
	is($op->hello(interval => 10000, timeout => 30000, name => 'other')->{type},
		'W', 'peer from 127.0.0.2 welcomed');
	$offset = -s $node->logfile;
	$op->register_session('J', $pid_reg, '127.0.0.1', $port_reg);
	$node->wait_for_log(
		qr/rejected a session registration from conmgr at 127\.0\.0\.2:\d+\n.*DETAIL:  the session's client address 127\.0\.0\.1 is not the conmgr's address 127\.0\.0\.2/,
		$offset);
	pass('registration of another address is rejected');
	$op->register_session('J', $pid_reg, '127.0.0.2', $port_reg);
	$node->wait_for_log(
		qr/DETAIL:  backend $pid_reg is connected from 127\.0\.0\.1, not from the conmgr's address 127\.0\.0\.2/,
		$offset);
	pass('registration of a backend of another address is rejected');
	is( $node->safe_psql(
			'postgres',
			"SELECT sessions_registered FROM pgx_stat_watchdog WHERE conmgr_name = 'other'"
		),
		'0',
		'nothing registered for the peer of another address');
}

$peer = CmWatchdog::Peer->connect($wdport);
$peer->hello(interval => $interval, timeout => $timeout, name => 'precise');
$offset = -s $node->logfile;
$peer->register_session('J', $pid_reg, '127.0.0.1', $port_reg);
# wrong port for the other session: rejected
$peer->register_session('J', $pid_unreg, '127.0.0.1', $port_unreg == 65535 ? 1 : $port_unreg + 1);
# a Unix-socket session cannot be registered
$peer->register_session('J', $pid_unix, '127.0.0.1', 5432);
$node->wait_for_log(qr/DETAIL:  backend $pid_unix is not a TCP session/, $offset);
ok( $node->log_contains(
		qr/DETAIL:  backend $pid_unreg is connected from port $port_unreg, not from port \d+/, $offset),
	'a registration with the wrong port is rejected');
ok( $node->poll_query_until(
		'postgres',
		"SELECT sessions_registered = 1 FROM pgx_stat_watchdog WHERE conmgr_name = 'precise'"
	),
	'one session registered');

# another conmgr of the same address cannot take the registration over
# (it would take the session out of the first conmgr's termination)
my $thief = CmWatchdog::Peer->connect($wdport);
$thief->hello(interval => $interval, timeout => $timeout, name => 'thief');
$offset = -s $node->logfile;
$thief->register_session('J', $pid_reg, '127.0.0.1', $port_reg);
$node->wait_for_log(
	qr/rejected a session registration from conmgr at 127\.0\.0\.1:\d+\n.*DETAIL:  backend $pid_reg is registered by another conmgr connection/,
	$offset);
pass('another conmgr of the same address cannot register a registered session');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(conmgr_name || '=' || sessions_registered, ',' ORDER BY conmgr_name) FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_name IN ('precise', 'thief')"
	),
	'precise=1,thief=0',
	'the session stays registered by the first conmgr');
$thief->goodbye;
$thief->wait_closed;

$offset = -s $node->logfile;
$peer->close;
$node->wait_for_log(
	qr/terminated 1 session\(s\) from 127\.0\.0\.1: conmgr "precise" was lost \(connection lost\)\n.*DETAIL:  Terminated backend PIDs: $pid_reg; mode precise/,
	$offset);
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid_reg"),
	'precise mode: the registered session is ended');
is(alive($pid_unreg), '1', 'precise mode: the unregistered session survives');
is(alive($pid_unix), '1', 'precise mode: the Unix-socket session survives');

# an unregistered session is not terminated either
$peer = CmWatchdog::Peer->connect($wdport);
$peer->hello(interval => $interval, timeout => $timeout, name => 'precise2');
$peer->register_session('J', $pid_unreg, '127.0.0.1', $port_unreg);
$node->poll_query_until('postgres',
	"SELECT sessions_registered = 1 FROM pgx_stat_watchdog WHERE conmgr_name = 'precise2'");
# an unregistration must name the session's port as well as its PID
$peer->register_session('K', $pid_unreg, '127.0.0.1', $port_unreg == 65535 ? 1 : $port_unreg + 1);
$peer->heartbeat(1);    # processed in order: the K before it is done
is( $node->safe_psql('postgres',
		"SELECT sessions_registered FROM pgx_stat_watchdog WHERE conmgr_name = 'precise2'"),
	'1', 'an unregistration with another port removes nothing');
$peer->register_session('K', $pid_unreg, '127.0.0.1', $port_unreg);
ok( $node->poll_query_until(
		'postgres',
		"SELECT sessions_registered = 0 FROM pgx_stat_watchdog WHERE conmgr_name = 'precise2'"
	),
	'unregister removes the registration');
$offset = -s $node->logfile;
$peer->close;
$node->wait_for_log(
	qr/found no session to terminate from 127\.0\.0\.1 after conmgr "precise2" was lost/,
	$offset);
is(alive($pid_unreg), '1', 'an unregistered session survives its peer\'s loss');

# the postmaster never restarted
ok(!$node->log_contains(qr/terminating any other active server processes/, 0),
	'no crash restart');

$node->stop;
done_testing();
