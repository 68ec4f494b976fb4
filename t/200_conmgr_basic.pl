
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# conmgr against fake watchdogs: heartbeats, routing, registration,
# failure notice on heartbeat loss, status.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmConmgr;
use CmProg;
use CmWire;

my $wd0 = CmConmgr::FakeWatchdog->new(attrs => 0);    # primary
my $wd1 = CmConmgr::FakeWatchdog->new(attrs => CmWire::ATTR_STANDBY);
my $cm = CmConmgr->new(
	heartbeat_interval => 200,
	heartbeat_timeout => 1000,
	instances => [
		{ host => '127.0.0.1', port => 5432, watchdog_port => $wd0->port },
		{ host => 'localhost', port => 5433, watchdog_port => $wd1->port },
	])->start;
my $port = $cm->port;
ok($cm->wait_up(0, 1), 'both instances up');

like($wd0->events, qr/hello interval=200 timeout=1000 name=/,
	'hello carries heartbeat interval and timeout');

# routing
my $app = CmConmgr::App->connect($port);
ok($app, 'application greeted') or diag($CmConmgr::App::error);
my $r = $app->route('read-write', 'app_rw');
is($r->{type}, 'I', 'read-write answered with an instance');
is($r->{instance}, 0, 'read-write goes to the primary');
is($r->{port}, 5432, 'instance port is backend_port0');
is($r->{host}, '127.0.0.1', 'instance host is backend_host0');
my $rport = $app->register(4242);
CmConmgr::wait_for(sub { $wd0->events =~ /register pid=4242 addr=127.0.0.1:$rport/ },
	'registration forwarded');
like($wd0->events, qr/register pid=4242 addr=127.0.0.1:$rport/,
	'registration forwarded to the watchdog');

my $app2 = CmConmgr::App->connect($port);
my $r2 = $app2->route('read-only', 'app_ro');
is($r2->{instance}, 1, 'read-only goes to the standby');
is($r2->{host}, 'localhost', 'standby host');

# status
my $json = $cm->status;
my @inst = CmConmgr::instances_from_json($json);
is(scalar(@inst), 2, 'status lists two instances');
is($inst[0]{attribute}, 'primary', 'instance 0 is primary');
is($inst[1]{attribute}, 'standby', 'instance 1 is standby');
is($inst[0]{server_timeout_ms}, 10000, 'server timeout from the welcome');
is($inst[0]{check_attr_interval_ms}, 1000, 'check_attr_interval from the welcome');
my @apps = CmConmgr::applications_from_json($json);
my ($a1) = grep { $_->{application_name} eq 'app_rw' } @apps;
is($a1->{instance}, 0, 'status shows the application on instance 0');
is($a1->{backend_pid}, 4242, 'status shows the backend PID');

command_like([ CmProg::bin('cm_ctl'), 'status', '-D', $cm->dir ],
	qr/Instances:.*\n.*127\.0\.0\.1:5432\s+\d+\s+up\s+primary/s,
	'status text shows the primary');

# a registered connection that closes is unregistered at its watchdog
my $app3 = CmConmgr::App->connect($port);
is($app3->route('standby', 'app_short')->{instance}, 1, 'standby request on instance 1');
my $rport3 = $app3->register(5151);
ok(CmConmgr::wait_for(sub { $wd1->events =~ /register pid=5151 / }, 'registration'),
	'the short connection is registered');
$app3->close;
ok( CmConmgr::wait_for(
		sub { $wd1->events =~ /register pid=5151 addr=127\.0\.0\.1:$rport3\nunregister pid=5151 addr=127\.0\.0\.1:$rport3/ },
		'unregistration'),
	'closing the application connection unregisters the session');

# heartbeat loss: the application on instance 0 is notified
my $t0 = time();
$wd0->command('mute');
my $f = $app->read_msg;
my $elapsed = time() - $t0;
is($f->{type}, 'F', 'failure notice received');
is($f->{reason}, $CmWire::REASON{timeout}, 'reason is heartbeat timeout');
like($f->{message}, qr/instance 0 .*heartbeat not answered within 1000 ms/,
	'notice names the instance and the cause');
cmp_ok($elapsed, '<', 1.0 + 1.0, 'notified within heartbeat_timeout + 1 s');
cmp_ok($elapsed, '>', 0.5, 'not notified before the timeout could pass');
ok($app->is_closed(5), 'conmgr closed the notified connection');
ok(!$app2->is_closed(0.2), 'the standby application is not notified');

done_testing();
