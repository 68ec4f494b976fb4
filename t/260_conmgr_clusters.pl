
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# conmgr and cm_ctl against real clusters (one primary, two streaming
# standbys, shared_preload_libraries = 'watchdog'): start waits, status,
# routing of every target_session_attrs value, balancing, fan-out of the
# failure notice on a real heartbeat loss, shutdown notice, promotion.

use strict;
use warnings FATAL => 'all';

use IO::Select;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmConmgr;
use CmNode;
use CmWire;

my $check_attr_interval = 200;
my $hb_timeout = 1500;

my $primary = CmNode->create('primary',
	init => { allows_streaming => 1 },
	check_attr_interval => $check_attr_interval,
	log_min_messages => undef);
$primary->start;
$primary->backup('b1');
my @standbys;
foreach my $name ('standby1', 'standby2')
{
	my $s = CmNode->from_backup($primary, 'b1', $name,
		check_attr_interval => $check_attr_interval,
		log_min_messages => undef);
	push @standbys, $s;
}
my @nodes = ($primary, @standbys);
$primary->stop;

my $cm = CmConmgr->new(
	heartbeat_interval => 300,
	heartbeat_timeout => $hb_timeout,
	max_app_connections => 1200,
	max_app_connections_per_user => 1200,    # every test connection is one user's
	instances => [
		map {
			{
				hostaddr => '127.0.0.1',
				port => $_->port,
				watchdog_port => $_->watchdog_port
			}
		} @nodes
	]);
my $port = $cm->port;

sub track
{
	my $pid = $cm->pid;
	push @CmConmgr::started, $pid if $pid;
	return $pid;
}

# --- start waits for the primary; --complete for every instance; -t bounds
$standbys[1]->start;    # standby2 only: no primary yet (it waits for WAL)
my ($rc, $out, $err, $secs) = $cm->ctl('start', '-t', '3');
track();
is($rc, 1, 'start without a primary times out with exit code 1');
like($err, qr/did not connect to a primary within 3 seconds/, 'time-out message names the primary');
cmp_ok($secs, '<', 8, 'the wait is bounded by -t');
ok($cm->pid, 'conmgr keeps running after the time-out');
($rc) = $cm->ctl('stop', '-m', 'fast');
is($rc, 0, 'stopped');

$primary->start;
$standbys[0]->start;
$primary->wait_for_catchup($_, 'replay') foreach @standbys;

($rc, $out, $err) = $cm->ctl('start', '--complete');
track();
is($rc, 0, 'start --complete succeeds with all three instances') or diag($err);
my @inst = $cm->instances;
is(join(',', map { "$_->{state}/$_->{attribute}" } @inst),
	'up/primary,up/standby,up/standby',
	'status JSON: liveness and attribute of each instance');
($rc, $out) = $cm->ctl('status');
like($out, qr/^\s+0\s+127\.0\.0\.1:${\ $primary->port }\s+\d+\s+up\s+primary\s+[\d.]+ s ago\s+[\d.]+ ms/m,
	'status text: primary with last heartbeat and round trip');
like($out, qr/^\s+2\s+127\.0\.0\.1:${\ $standbys[1]->port }\s+\d+\s+up\s+standby/m,
	'status text: second standby');

# the watchdogs see this conmgr with its heartbeat settings
$primary->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS watchdog');
like(
	$primary->safe_psql('postgres',
		"SELECT heartbeat_interval, heartbeat_timeout FROM pgx_stat_watchdog WHERE state = 'active'"),
	qr/^300\|$hb_timeout$/m,
	'pgx_stat_watchdog shows the heartbeat settings');

# --- routing
sub route
{
	my ($tsa) = @_;
	my $app = CmConmgr::App->connect($port) or return (undef, undef);
	return ($app->route($tsa), $app);
}
my %kind = CmConmgr::App::expected_routes([0], [ 1, 2 ]);
foreach my $tsa (sort keys %kind)
{
	my ($r) = route($tsa);
	ok($r && $r->{type} eq 'I' && (grep { $_ == $r->{instance} } @{ $kind{$tsa} }),
		"$tsa lands on the right kind of instance");
	is($r->{port}, $nodes[ $r->{instance} ]->port, "$tsa: the instance's PostgreSQL port");
}
my (@held, %count);
for (1 .. 10)
{
	my ($r, $app) = route('read-only');
	$count{ $r->{instance} }++;
	push @held, $app;
}
ok($count{1} >= 4 && $count{2} >= 4,
	"read-only spread over both standbys ($count{1} / $count{2})");
$_->close foreach @held;
@held = ();

# --- fan-out: 1000 connections on the primary, its heartbeat is lost
CmConmgr::raise_fd_limit(4096);
my $N = 1000;
my @apps;
for my $i (1 .. $N)
{
	my $app = CmConmgr::App->connect($port) or last;
	my $r = $app->route('primary', "fan$i");
	last unless $r && $r->{type} eq 'I';
	$app->register(1_000_000 + $i);
	push @apps, $app;
}
is(scalar(@apps), $N, "$N connections routed to the primary");
my $wd_pid = $primary->worker_pid('watchdog') // '';
like($wd_pid, qr/^\d+$/, 'watchdog worker found');

my $t0 = time();
kill 'STOP', $wd_pid;    # the watchdog stops answering: a real heartbeat loss
END { kill 'CONT', $wd_pid if $wd_pid; }
my $sel = IO::Select->new(map { $_->sock } @apps);
my %by_fd = map { fileno($_->sock) => $_ } @apps;
my ($n, $last) = (0, 0);
my $deadline = $t0 + $hb_timeout / 1000 + 10;
while ($n < $N && time() < $deadline)
{
	foreach my $fh ($sel->can_read(0.5))
	{
		my $m = $by_fd{ fileno($fh) }->read_msg;
		$sel->remove($fh);
		next unless $m && $m->{type} eq 'F' && $m->{reason} == $CmWire::REASON{timeout};
		$n++;
		$last = time();
	}
}
kill 'CONT', $wd_pid;
is($n, $N, "all $N connections notified of the heartbeat loss");
cmp_ok($last - $t0, '<=', $hb_timeout / 1000 + 1, 'within heartbeat_timeout + 1 s');
diag(sprintf('last notice %.3f s after the watchdog stopped', $last - $t0));
$_->close foreach @apps;
@apps = ();
ok($cm->wait_up(0), 'heartbeat connection to the primary back');

# --- clean shutdown of the primary, then promotion of standby1
my ($r, $app) = route('read-write');
is($r->{instance}, 0, 'read-write on the primary');
$primary->stop('fast');
my $m = $app->read_msg;
is($m->{type}, 'F', 'application notified when the primary shuts down');
is($m->{reason}, $CmWire::REASON{shutdown}, 'reason: shutdown announced by the watchdog');
($r) = route('read-write');
is($r->{type}, 'N', 'no read-write instance while there is no primary');

$standbys[0]->promote;
$t0 = time();
my $routed = CmConmgr::wait_for(
	sub {
		my ($x) = route('read-write');
		return $x && $x->{type} eq 'I' && $x->{instance} == 1;
	},
	'read-write on the promoted standby');
my $elapsed = time() - $t0;
ok($routed, 'read-write requests go to the promoted standby');
cmp_ok($elapsed, '<=', $check_attr_interval / 1000 + 1,
	'within check_attr_interval + 1 s');
($r) = route('standby');
is($r->{instance}, 2, 'standby requests go to the remaining standby');

# --- a watchdog_port that is in fact a PostgreSQL port is named as such
my $conf = $cm->conf;
$cm->conf(
	    $conf
	  . "backend_hostaddr3 = 127.0.0.1\nbackend_port3 = 1\nwatchdog_port3 = "
	  . $standbys[1]->port . "\n");
($rc) = $cm->ctl('reload');
is($rc, 0, 'reload adds an instance with a wrong watchdog port');
ok( CmConmgr::wait_for(
		sub {
			my @i = $cm->instances;
			return @i == 4 && ($i[3]{error} // '') =~ /watchdog_port3/;
		},
		'wrong port reported'),
	'status suggests checking watchdog_port3');
my ($err3) = map { $_->{error} } grep { $_->{number} == 3 } $cm->instances;
note("instance 3: $err3");

# --- fast stop: goodbye, the watchdog forgets this conmgr
($r, $app) = route('any');
($rc) = $cm->ctl('stop', '-m', 'fast');
is($rc, 0, 'stop -m fast');
$m = $app->read_msg;
is($m->{reason}, $CmWire::REASON{shutdown}, 'application told conmgr is shutting down');
ok( $standbys[0]->poll_query_until('postgres',
		'SELECT count(*) = 0 FROM pgx_stat_watchdog'),
	'the watchdog no longer lists this conmgr');

done_testing();
