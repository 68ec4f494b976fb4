
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Installing and uninstalling: without shared_preload_libraries the
# extension can be created but its view says what is missing; the
# documented uninstall (DROP EXTENSION, remove the library, restart) sends
# the shutdown notice and leaves no watchdog behind.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmNode;
use CmWatchdog;

# --- not preloaded ---
my $plain = PostgreSQL::Test::Cluster->new('not_preloaded');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my ($ret, $stdout, $stderr) =
  $plain->psql('postgres', 'SELECT * FROM pgx_stat_watchdog');
isnt($ret, 0, 'the view fails without the preloaded library');
like(
	$stderr,
	qr/ERROR:  watchdog must be loaded via shared_preload_libraries/,
	'and says what is missing');
ok(!$plain->log_contains(qr/watchdog started/, 0),
	'no watchdog worker runs');
$plain->safe_psql('postgres', 'DROP EXTENSION watchdog');
$plain->stop;

# --- uninstall ---
my $node = CmNode->create('uninstall');
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my $peer = CmWatchdog::Peer->connect($wdport);
is($peer->hello(interval => 10000, timeout => 30000)->{type}, 'W',
	'a peer is connected');

$node->safe_psql('postgres', 'DROP EXTENSION watchdog');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_proc WHERE proname = 'pgx_stat_watchdog'"),
	'0',
	'DROP EXTENSION removes the function');
# the worker keeps serving until the restart
my $r = $peer->heartbeat(1);
ok($r && $r->{type} eq 'b', 'heartbeats are answered until the restart');

$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->adjust_conf('postgresql.conf', "watchdog\\.$_", undef)
  for qw(port listen_addresses);
my $offset = -s $node->logfile;
$node->restart;
my $msg = $peer->read_msg;
ok($msg && $msg->{type} eq 'S', 'the restart sends the shutdown notice');
ok($peer->wait_closed, 'and closes the connection');
ok(!$node->log_contains(qr/watchdog started/, $offset),
	'after the restart no watchdog runs');
my $sock = IO::Socket::INET->new(
	PeerAddr => '127.0.0.1',
	PeerPort => $wdport,
	Proto => 'tcp');
ok(!$sock, 'nothing listens on watchdog.port any more');
($ret, $stdout, $stderr) = $node->psql('postgres', 'SHOW watchdog.port');
like($stderr, qr/unrecognized configuration parameter "watchdog\.port"/,
	'the parameters are gone');

$node->stop;
done_testing();
