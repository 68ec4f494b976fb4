
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# A watchdog process that restarts while its server keeps running (SIGTERM
# to the worker alone) must not cost the applications their sessions:
# conmgr reconnects and keeps them, registers their sessions again with
# the new watchdog process, and notifies them only if the watchdog is not
# back by the time heartbeat_timeout would have expired.

use strict;
use warnings FATAL => 'all';

use IO::Select;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CmConmgr;
use CmNode;
use CmTest;

# Wait up to $secs for a message from conmgr on an application socket;
# returns it, or undef when none came.
sub app_message_within
{
	my ($app, $secs) = @_;
	return undef unless IO::Select->new($app->sock)->can_read($secs);
	return $app->read_msg;
}

# --- a real server --------------------------------------------------------

my ($interval, $timeout) = (200, 2500);
my $node = CmNode->create('wdrestart',
	check_attr_interval => 200,
	log_min_messages => undef);
$node->append_conf('postgresql.conf', "watchdog.termination_mode = precise\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my $cm = CmConmgr->new(
	name => 'wdrestart',
	nodes => [$node],
	heartbeat_interval => $interval, heartbeat_timeout => $timeout)->start;
$cm->accepting_ok;
ok($cm->wait_up(0), 'the instance is up');

my $ci = "host=localhost port=$cm->{port} dbname=postgres target_session_attrs=read-write";
my ($h, $out) = CmTest::start_app($ci, 8);
ok(CmTest::wait_app_line($h, $out, 'connected'), 'an application is connected through conmgr');
my ($bpid) = $$out =~ /backend_pid=(\d+)/;
ok( $node->poll_query_until('postgres',
		"SELECT sessions_registered = 1 FROM pgx_stat_watchdog WHERE state = 'active'"),
	'its session is registered with the watchdog');

my $wd = $node->worker_pid('watchdog');
my $offset = -s $cm->{log};
kill 'TERM', $wd;
ok( $cm->wait_log(qr/the watchdog is back after its restart; 1 application connection kept, 1 session registered again/),
	'conmgr reconnected, kept the application and registered its session again');
like(slurp_file($cm->{log}, $offset),
	qr/the watchdog is restarting \(the watchdog process is restarting; the server keeps running\); reconnecting, keeping 1 application connection/,
	'conmgr logged the restart');
unlike(slurp_file($cm->{log}, $offset), qr/instance is down/, 'the instance was never declared down');
is(($cm->instances)[0]{state}, 'up',
	'the instance is up again');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 AND bool_and(sessions_registered = 1 AND state = 'active') "
		  . "FROM pgx_stat_watchdog WHERE state <> 'terminated'"),
	'the new watchdog process knows the conmgr and its session; no slot left behind');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $bpid"),
	'1', "the application's session is still there");
ok(CmTest::wait_app_line($h, $out, 'no-notice'),
	'the application was not notified (it waited 8 s)')
  or diag($$out);
$h->finish;
ok(!$node->log_contains(qr/watchdog terminated \d+ session/, 0),
	'the terminator ended nothing');

# --- a watchdog that does not come back -----------------------------------

my $wdf = CmConmgr::FakeWatchdog->new(attrs => 0);
my $cmf = CmConmgr->new(
	heartbeat_interval => 200, heartbeat_timeout => 1500,
	instances => [ { host => '127.0.0.1', port => 5432, watchdog_port => $wdf->port } ])->start;
ok($cmf->wait_up(0), 'fake watchdog: up');
my $port = $cmf->port;
my $app = CmConmgr::App->connect($port);
is($app->route('read-write')->{type}, 'I', 'an application is routed');
$app->register(4242);
ok(CmConmgr::wait_for(sub { $wdf->events =~ /register pid=4242/ }, 'registration'),
	'its session is registered');

# the watchdog restarts and is back at once: nothing for the application
$wdf->command('restart');
my $heard = app_message_within($app, 3);
is($heard, undef, 'back at once: the application hears nothing')
  or diag("heard: $heard->{type} $heard->{message}\n" . slurp_file($cmf->logfile));
my @regs = $wdf->events =~ /register pid=4242/g;
is(scalar(@regs), 2, 'the session was registered again with the new process');
is($cmf->instance(0)->{state}, 'up', 'up again');

# the watchdog says it restarts and never comes back (it refuses every new
# connection): notified at the heartbeat timeout, counted from the last reply
$wdf->command('refuse');
my $t0 = time;
$wdf->command('restart');
ok( CmConmgr::wait_for(sub {
			$cmf->instance(0)->{state} eq 'restarting' }, 'restarting'),
	'cm_ctl status shows the instance as restarting');
my $m = app_message_within($app, 10);
my $after = time - $t0;
ok($m && $m->{type} eq 'F', 'not back: the application is notified');
like($m->{message} // '', qr/did not come back within heartbeat_timeout \(1500 ms\) after it restarted/,
	'the notice says why');
cmp_ok($after, '<=', 1.5 + 1.0, 'within heartbeat_timeout (+1 s margin) of the goodbye');
cmp_ok($after, '>=', 1.5 - 0.2 - 0.3, 'not before heartbeat_timeout after the last reply (- interval - 0.3 s)');

done_testing();
