
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# A worker stopped on its own (SIGTERM to its PID, not a server shutdown)
# is restarted by the postmaster without a crash restart.  The watchdog
# tells its peers it restarts (not a shutdown notice); the new watchdog
# process keeps their slots as "reconnecting": a peer that comes back is
# welcomed and its old slot released, one that does not is declared lost
# after its server timeout.  The terminator comes back too and handles the
# next lost peer.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use CmNode;
use CmWatchdog;

# two slots: the peers that come back must find one while every slot is
# still held for them
my $node = CmNode->create('restart',
	conf => "watchdog.max_heartbeat_connections = 2\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my $start_time = $node->postmaster_start_time();

# wait until a worker runs with a PID other than $old
sub wait_new_pid
{
	my ($type, $old) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $pid = $node->worker_pid($type);
		return $pid if $pid && (!$old || $pid != $old);
		usleep(100_000);
	}
	return undef;
}

my $wd = wait_new_pid('watchdog');
ok($wd, 'the watchdog worker runs');
my $peer = CmWatchdog::Peer->connect($wdport);
is($peer->hello(interval => 10000, timeout => 30000, name => 'before')->{type},
	'W', 'a peer is connected');
# server timeout 200 + 600 + 1000 (watchdog.timeout_margin) ms
my $gone = CmWatchdog::Peer->connect($wdport);
is($gone->hello(interval => 200, timeout => 600, name => 'gone')->{type},
	'W', 'a second peer is connected');

my $offset = -s $node->logfile;
kill 'TERM', $wd;
my $m = $peer->read_msg;
ok($m && $m->{type} eq 'G', 'the peer is told before the watchdog goes: a goodbye');
is($m->{reason}, 12, 'reason: watchdog restarting (not a server shutdown)');
like($m->{message}, qr/restarting; the server keeps running/, 'the message says so');
ok($peer->wait_closed, 'then its connection closes');
ok( $node->wait_for_log(
		qr/watchdog process stopping while the server keeps running: told 2 conmgr peers to reconnect/,
		$offset),
	'logged as a restart of the watchdog alone');
my $wd2 = wait_new_pid('watchdog', $wd);
ok($wd2, 'the postmaster restarted the watchdog');
ok( $node->poll_query_until('postgres', $node->view_states_query,
		'before:reconnecting,gone:reconnecting'),
	'the new watchdog keeps both peers, waiting for them to reconnect');

# "before" comes back: the new watchdog welcomes it and releases the old slot
my $p2;
my $w;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	$p2 = eval { CmWatchdog::Peer->connect($wdport) };
	last if $p2 && ($w = $p2->hello(interval => 10000, timeout => 30000, name => 'before'));
	usleep(100_000);
}
ok($w && $w->{type} eq 'W', 'the restarted watchdog welcomes peers');
ok($node->wait_for_log(qr/conmgr "before" at 127\.0\.0\.1:\d+ reconnected within its server timeout/, $offset),
	'the peer that came back is recognised');

# "gone" does not: lost after its server timeout, its sessions terminated
ok( $node->wait_for_log(
		qr/conmgr "gone" at 127\.0\.0\.1 lost: it did not reconnect within 1800 ms/,
		$offset),
	'the peer that did not come back is declared lost after its server timeout');
ok( $node->wait_for_log(
		qr/watchdog found no session to terminate from 127\.0\.0\.1 after conmgr "gone" was lost/,
		$offset),
	'and the terminator handles it');
ok(!$node->log_contains(qr/conmgr "before" [^\n]*lost/, $offset),
	'the peer that came back is not lost');
is($node->view_states("state <> 'terminated'"),
	'before:active', 'the view holds the reconnected peer, active');

# the terminator
my $term = wait_new_pid('watchdog terminator');
ok($term, 'the terminator runs');
kill 'TERM', $term;
my $term2 = wait_new_pid('watchdog terminator', $term);
ok($term2, 'the postmaster restarted the terminator');
$offset = -s $node->logfile;
$p2->heartbeat(1);    # in use, as conmgr's first heartbeat makes it
$p2->close;
ok( $node->wait_for_log(
		qr/watchdog found no session to terminate from 127\.0\.0\.1 after conmgr "before" was lost/,
		$offset),
	'the restarted terminator handles a lost peer');

is($node->postmaster_start_time(), $start_time,
	'the postmaster did not restart the instance');
ok(!$node->log_contains(qr/terminating any other active server processes/, 0),
	'no crash recovery');

$node->stop;
done_testing();
