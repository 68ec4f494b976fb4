
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# A worker stopped on its own (SIGTERM to its PID, not a server shutdown)
# is restarted by the postmaster without a crash restart: the watchdog
# comes back with a clean view and serves again; the terminator comes back
# and handles the next lost peer.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use CmTest;
use CmWatchdog;

my ($node, $wdport) = CmWatchdog::new_node('restart');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my $start_time = CmWatchdog::postmaster_start_time($node);

# wait until a worker runs with a PID other than $old
sub wait_new_pid
{
	my ($type, $old) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $pid = CmTest::worker_pid($node, $type);
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

kill 'TERM', $wd;
my $m = $peer->read_msg;
ok($m && $m->{type} eq 'S', 'the peer is told before the watchdog goes');
ok($peer->wait_closed, 'then its connection closes');
my $wd2 = wait_new_pid('watchdog', $wd);
ok($wd2, 'the postmaster restarted the watchdog');

# the new watchdog serves; the old peer's slot is gone
my $p2;
my $w;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	$p2 = eval { CmWatchdog::Peer->connect($wdport) };
	last if $p2 && ($w = $p2->hello(interval => 10000, timeout => 30000, name => 'after'));
	usleep(100_000);
}
ok($w && $w->{type} eq 'W', 'the restarted watchdog welcomes peers');
is( $node->safe_psql('postgres', 'SELECT string_agg(conmgr_name, \',\') FROM pgx_stat_watchdog'),
	'after', 'the view holds only the new peer');

# the terminator
my $term = wait_new_pid('watchdog terminator');
ok($term, 'the terminator runs');
kill 'TERM', $term;
my $term2 = wait_new_pid('watchdog terminator', $term);
ok($term2, 'the postmaster restarted the terminator');
my $offset = -s $node->logfile;
$p2->close;
ok( $node->wait_for_log(
		qr/watchdog found no session to terminate from 127\.0\.0\.1 after conmgr "after" was lost/,
		$offset),
	'the restarted terminator handles a lost peer');

is(CmWatchdog::postmaster_start_time($node), $start_time,
	'the postmaster did not restart the instance');
ok(!CmWatchdog::log_contains($node, 0, qr/terminating any other active server processes/),
	'no crash recovery');

$node->stop;
done_testing();
