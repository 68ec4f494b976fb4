
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# cm_ctl start / stop / status / reload against fake watchdogs: what start
# waits for, the shutdown modes, exit codes, the PID-file lock.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmConmgr;
use CmProg;
use CmWire;

my $wd0 = CmConmgr::FakeWatchdog->new(attrs => 0);
my $wd1_port = PostgreSQL::Test::Cluster::get_free_port();    # not yet up
my $cm = CmConmgr->new(
	heartbeat_interval => 200,
	heartbeat_timeout => 1000,
	instances => [
		{ hostaddr => '127.0.0.1', port => 5432, watchdog_port => $wd0->port },
		{ hostaddr => '127.0.0.1', port => 5433, watchdog_port => $wd1_port },
	]);
my ($dir, $port) = ($cm->dir, $cm->port);

sub track
{
	my $pid = $cm->pid;
	push @CmConmgr::started, $pid if $pid;
	return $pid;
}

sub wait_stopped
{
	return CmConmgr::wait_for(sub { !defined $cm->pid },
		'conmgr to exit');
}

# status before start: exit 3; a missing directory: exit 4
my ($rc, $out, $err) = $cm->ctl('status');
is($rc, 3, 'status exits with 3 when conmgr is not running');
like($out, qr/no conmgr running/, 'status says no conmgr is running');
($rc, $out, $err) = CmConmgr::cm_ctl('status', '-D', "$dir/nonexistent");
is($rc, 4, 'status exits with 4 when the directory is not accessible');
like($err, qr/cm_ctl: error: directory ".*nonexistent" is not accessible/,
	'status names the inaccessible directory');
($rc, $out, $err) = $cm->ctl('stop');
is($rc, 1, 'stop fails when conmgr is not running');
like($err, qr/no conmgr is running/, 'stop says no conmgr is running');

# start waits for the primary only
($rc, $out, $err) = $cm->ctl('start');
track();
is($rc, 0, 'start succeeds with the primary up and a standby down')
  or diag($err);
like($out, qr/conmgr started/, 'start reports success');
my @inst = $cm->instances;
is($inst[0]{state}, 'up', 'primary up when start returns');
isnt($inst[1]{state}, 'up', 'standby is down');

# a second conmgr on the same directory is refused
($rc, $out, $err) = $cm->ctl('start');
is($rc, 1, 'second start fails');
like($err, qr/another conmgr \(PID \d+\) is already running/,
	'second start names the running conmgr');
command_fails_like([ CmProg::bin('conmgr'), '-D', $dir ],
	qr/another conmgr \(PID \d+\) is already running in directory/,
	'a second conmgr process refuses the locked directory');

# status text and JSON
($rc, $out, $err) = $cm->ctl('status', '-i', 'instance');
is($rc, 0, 'status exits 0 while running');
like($out, qr/^\s+0\s+127\.0\.0\.1:5432\s+\d+\s+up\s+primary/m,
	'status lists the live primary');
like($out, qr/^\s+1\s+127\.0\.0\.1:5433\s+\d+\s+down\s+unknown.*Connection refused/m,
	'status lists the dead standby with the cause');
unlike($out, qr/Applications:/, '-i instance omits applications');

# stop fast: applications are notified, watchdogs get a goodbye
my $app = CmConmgr::App->connect($port);
my $r = $app->route('primary');
is($r->{type}, 'I', 'application routed');
($rc, $out, $err) = $cm->ctl('status', '-i', 'application');
like($out, qr/Applications:.*\n.*\n\s+\d+\s+127\.0\.0\.1:\d+\s+\d+\s+tap\s+primary\s+0\s+-\s+routed/,
	'status -i application shows the application and its instance');
unlike($out, qr/Instances:/, '-i application omits instances');

($rc, $out, $err) = $cm->ctl('stop', '-m', 'fast');
is($rc, 0, 'stop -m fast succeeds');
like($out, qr/conmgr stopped/, 'stop reports conmgr stopped');
my $f = $app->read_msg;
is($f->{type}, 'F', 'fast stop sends a failure notice');
is($f->{reason}, $CmWire::REASON{shutdown}, 'reason is shutdown');
ok(CmConmgr::wait_for(sub { $wd0->events =~ /goodbye/ }, 'goodbye'),
	'watchdog received a goodbye');
ok(!-e "$dir/conmgr.pid", 'PID file removed');

# --complete with the standby down: the wait is bounded by -t
($rc, $out, $err, my $secs) =
  $cm->ctl('start', '--complete', '-t', '2');
track();
is($rc, 1, 'start --complete times out with exit code 1');
like($err, qr/did not connect to every instance within 2 seconds/,
	'time-out message');
like($err, qr/keeps running/, 'time-out message says conmgr keeps running');
cmp_ok($secs, '<', 6, '-t bounds the wait');
ok($cm->pid, 'conmgr keeps running after the time-out');

# the standby comes up: conmgr connects by itself
my $wd1 = CmConmgr::FakeWatchdog->new(
	attrs => CmWire::ATTR_STANDBY,
	port => $wd1_port);
ok($cm->wait_up(0, 1),
	'conmgr connects to the standby once it is up');
($rc, $out, $err) = $cm->ctl('stop');
is($rc, 0, 'smart stop without applications succeeds');

($rc, $out, $err) = $cm->ctl('start', '--complete');
track();
is($rc, 0, 'start --complete succeeds with every instance up');
@inst = $cm->instances;
ok($inst[0]{state} eq 'up' && $inst[1]{state} eq 'up',
	'both instances up when start --complete returns');

# stop smart waits for applications
$app = CmConmgr::App->connect($port);
$r = $app->route('standby');
is($r->{instance}, 1, 'standby request routed to instance 1');
($rc, $out, $err) = $cm->ctl('stop', '-t', '1');
is($rc, 1, 'smart stop with an application times out');
like($err, qr/did not shut down within 1 seconds/, 'smart stop time-out message');
like($err, qr/-m fast/, 'hint suggests fast mode');
ok($cm->pid, 'conmgr still running while the application is connected');
ok(!$app->is_closed(0.2), 'the application was not disconnected');
{
	# the port stays conmgr's: new connections are told it is stopping
	my $late = CmConmgr::App->connect($port);
	ok($late, 'during a smart shutdown conmgr still answers on its port');
	my $m = $late ? $late->read_msg : undef;
	is($m && $m->{type}, 'N', 'a new connection gets "no instance"');
	is($m && $m->{reason}, $CmWire::REASON{shutdown}, 'with reason shutdown');
	like($m && $m->{message}, qr/conmgr is stopping/, 'saying that conmgr is stopping');
}
$app->close;
ok(wait_stopped(), 'conmgr exits once the last application closed');

# -W returns at once even without a primary
$wd0->stop;
my $t0 = time();
($rc, $out, $err) = $cm->ctl('start', '-W');
is($rc, 0, 'start -W succeeds');
like($out, qr/conmgr starting/, 'start -W reports starting');
cmp_ok(time() - $t0, '<', 2, 'start -W returns at once');
ok(CmConmgr::wait_for(sub { $cm->pid }, 'PID file'),
	'conmgr runs after start -W');
track();

# reload: reloadable and restart-only parameters
$cm->wait_up(1);
my $conf = $cm->conf;
my $newport = PostgreSQL::Test::Cluster::get_free_port();
$cm->conf(
	$conf =~ s/^port = \d+/port = $newport/mr . "log_level = debug\nmax_app_connections = 7\n");
($rc, $out, $err) = $cm->ctl('reload');
is($rc, 0, 'reload succeeds');
like($out, qr/parameter "port" cannot be changed without restarting conmgr; the new value "$newport" was ignored/,
	'reload says what it ignored');
like($out, qr/parameter "max_app_connections" changed from "1000" to "7"/,
	'reload applies max_app_connections');
like($cm->status, qr/"max_app_connections": 7/,
	'new max_app_connections in effect');

$cm->conf( $conf . "log_level = loud\n");
($rc, $out, $err) = $cm->ctl('reload');
is($rc, 1, 'reload of an invalid file fails');
like($err, qr/conmgr\.conf:\d+: invalid value for parameter "log_level": "loud"/,
	'reload reports file, line and parameter');
like($cm->status, qr/"max_app_connections": 7/,
	'the previous configuration stays in effect');

# stop immediate: no goodbye, at once
my $events_before = () = $wd1->events =~ /goodbye/g;
$t0 = time();
($rc, $out, $err) = $cm->ctl('stop', '-m', 'immediate');
is($rc, 0, 'stop -m immediate succeeds');
cmp_ok(time() - $t0, '<', 2, 'immediate stop is immediate');
ok(CmConmgr::wait_for(sub { $wd1->events =~ /closed/ }, 'connection closed'),
	'the watchdog sees the heartbeat connection close');
my $events_after = () = $wd1->events =~ /goodbye/g;
is($events_after, $events_before, 'no goodbye on immediate stop');

# bad options
($rc, $out, $err) = $cm->ctl('stop', '-m', 'sometime');
is($rc, 1, 'unknown shutdown mode fails');
like($err, qr/unrecognized shutdown mode "sometime"/, 'unknown mode named');
($rc, $out, $err) = $cm->ctl('launch');
like($err, qr/unrecognized operation mode "launch"/, 'unknown operation named');
($rc, $out, $err) = $cm->ctl('start', '-t', 'soon');
like($err, qr/invalid value "soon" for option -t/, 'bad -t named');
($rc, $out, $err) = $cm->ctl('start', '-t', '99999999999');
is($rc, 1, 'a -t beyond the range fails');
like($err, qr/invalid value "99999999999" for option -t: a number of seconds from 0 to \d+/,
	'the -t range is named');

done_testing();
