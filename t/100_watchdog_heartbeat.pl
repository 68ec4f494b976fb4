
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The watchdog answers hello and heartbeats; peers appear in and leave
# pgx_stat_watchdog; the view is refused to roles outside pg_monitor and
# hides addresses from those granted it without pg_read_all_stats; a
# goodbye is a clean departure, a dropped connection is a lost peer.  The
# start message names the release and the newest protocol version.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmNode;
use CmProg;
use CmWatchdog;
use CmWire;

my $node = CmNode->create('hb');
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');

# the worker logs where it listens
ok( $node->wait_for_log(
		qr/watchdog listening on IPv4 address "127\.0\.0\.1", port $wdport/),
	'watchdog listens on its port');

# the start message names the release and the newest protocol version
my $release = CmProg::release_version();
my $newest = CmWire::newest_version();
ok( $node->wait_for_log(
		qr/LOG:  watchdog started: [^\n]*\n[^\n]*DETAIL:  Connection Manager \Q$release\E, heartbeat protocol up to \Q$newest\E\.\n/
	),
	"the start message names release $release and protocol $newest");

# hello -> welcome
my $peer = CmWatchdog::Peer->connect($wdport);
my $welcome = $peer->hello(interval => 200, timeout => 700, name => 'peer-one');
ok($welcome, 'an answer to the hello');
is($welcome->{type}, 'W', 'the answer is a welcome');
is($welcome->{version}, 0x0100, 'protocol 1.0 chosen');
is($welcome->{check_attr_interval}, 1000,
	'welcome carries watchdog.check_attr_interval');
is($welcome->{server_timeout}, 200 + 700 + 1000,
	'server timeout = interval + timeout + watchdog.timeout_margin');
is($welcome->{attrs}, 0, 'a primary is announced read-write');

# heartbeats are answered with the same seq and echo
for my $seq (1 .. 3)
{
	my $echo = 1_000_000_000_000 + $seq;
	my $reply = $peer->heartbeat($seq, $echo);
	ok($reply && $reply->{type} eq 'b', "heartbeat $seq answered");
	is($reply->{seq}, $seq, "reply $seq carries the same seq");
	is($reply->{echo}, $echo, "reply $seq carries the same echo");
	is($reply->{attrs}, 0, "reply $seq carries the attributes");
}

# the view shows the peer
my $row = $node->safe_psql('postgres',
	"SELECT conmgr_addr, conmgr_port, heartbeat_interval, heartbeat_timeout, "
	  . "server_timeout, conmgr_name, protocol_version, state, heartbeats >= 3, "
	  . "last_heartbeat >= connected_since, sessions_registered, sessions_terminated "
	  . "FROM pgx_stat_watchdog");
is( $row,
	join('|',
		'127.0.0.1', $peer->local_port, 200, 700, 1900, 'peer-one', '1.0',
		'active', 't', 't', 0, 0),
	'pgx_stat_watchdog shows the peer');

# the view is for pg_monitor; a role granted it otherwise sees no address
# unless it may see the addresses in pg_stat_activity
$node->safe_psql('postgres',
	'CREATE ROLE plain LOGIN; CREATE ROLE granted LOGIN; '
	  . 'CREATE ROLE monitor LOGIN IN ROLE pg_monitor; '
	  . 'GRANT SELECT ON pgx_stat_watchdog TO granted; '
	  . 'GRANT EXECUTE ON FUNCTION pgx_stat_watchdog() TO granted');
my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', 'SELECT count(*) FROM pgx_stat_watchdog',
	extra_params => [ '-U', 'plain' ]);
like(
	$stderr,
	qr/permission denied for view pgx_stat_watchdog/,
	'a plain role may not read the view');
is( $node->safe_psql(
		'postgres',
		'SELECT conmgr_addr IS NULL, conmgr_port IS NULL, conmgr_name IS NULL, '
		  . 'heartbeat_interval FROM pgx_stat_watchdog',
		extra_params => [ '-U', 'granted' ]),
	't|t|t|200',
	'a role granted the view without pg_read_all_stats sees no address, port or name');
is( $node->safe_psql(
		'postgres', 'SELECT host(conmgr_addr) FROM pgx_stat_watchdog',
		extra_params => [ '-U', 'monitor' ]),
	'127.0.0.1',
	'a pg_monitor member sees the address');

# a second peer
my $peer2 = CmWatchdog::Peer->connect($wdport);
is($peer2->hello(interval => 300, timeout => 900, name => 'peer-two')->{type},
	'W', 'second peer welcomed');
ok($node->wait_for_view_count('true', 2), 'two peers in the view');

# goodbye: clean departure, nothing terminated
my $offset = -s $node->logfile;
ok($peer->goodbye('stopping'), 'goodbye sent');
ok($peer->wait_closed, 'the watchdog closes after a goodbye');
ok($node->wait_for_view_count("conmgr_name = 'peer-one'", 0),
	'the peer left the view after its goodbye');
ok( $node->wait_for_log(
		qr/conmgr "peer-one" at 127\.0\.0\.1:\d+ disconnected \(goodbye/,
		$offset),
	'the goodbye is logged');

# connection dropped without goodbye: the peer is lost
$offset = -s $node->logfile;
ok($peer2->heartbeat(1), 'the second peer is in use');
$peer2->close;
ok( $node->wait_for_lost('peer-two', qr/connection closed without a goodbye/, $offset),
	'a dropped connection is a lost peer');
ok( $node->wait_for_log(
		qr/watchdog found no session to terminate from 127\.0\.0\.1 after conmgr "peer-two" was lost/,
		$offset),
	'the terminator handled the lost peer');
ok($node->wait_for_view_count("state <> 'terminated'", 0),
	'no conmgr is connected any more');
ok( $node->wait_for_view_count(
		"conmgr_name = 'peer-two' AND state = 'terminated' AND sessions_terminated = 0", 1),
	'the lost peer stays in the view as terminated, with nothing terminated');
ok(!$node->log_contains(qr/terminated \d+ session/, 0),
	'nothing was terminated: this test opened no TCP session');

$node->stop;
done_testing();
