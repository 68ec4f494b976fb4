
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Routing against fake watchdogs (one primary, two standbys): every
# target_session_attrs value, balancing, attribute changes and promotion.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmConmgr;
use CmWire;

my $STANDBY = CmWire::ATTR_STANDBY;
my @wd = (
	CmConmgr::FakeWatchdog->new(attrs => 0),
	CmConmgr::FakeWatchdog->new(attrs => $STANDBY),
	CmConmgr::FakeWatchdog->new(attrs => $STANDBY));
my $cm = CmConmgr->new(
	heartbeat_interval => 200,
	heartbeat_timeout => 1000,
	instances => [
		map {
			{
				hostaddr => '127.0.0.1',
				port => 6000 + $_,
				watchdog_port => $wd[$_]->port
			}
		} 0 .. 2
	])->start;
my $port = $cm->port;
ok($cm->wait_up(0, 1, 2), 'three instances up');

sub route
{
	my ($tsa) = @_;
	my $app = CmConmgr::App->connect($port) or return (undef, undef);
	my $r = $app->route($tsa);
	return ($r, $app);
}

my %expect = CmConmgr::App::expected_routes([0], [ 1, 2 ]);
foreach my $tsa (sort keys %expect)
{
	my ($r) = route($tsa);
	is($r->{type}, 'I', "$tsa: answered with an instance");
	ok((grep { $_ == $r->{instance} } @{ $expect{$tsa} }),
		"$tsa: routed to an instance of the right kind ($r->{instance})");
	is($r->{port}, 6000 + $r->{instance}, "$tsa: port of that instance");
}

# balancing: ten read-only connections held open are spread evenly
my @held;
my %count;
for my $i (1 .. 10)
{
	my ($r, $app) = route('read-only');
	push @held, $app;
	$count{ $r->{instance} }++;
}
is($count{1}, 5, 'read-only: five connections on standby 1');
is($count{2}, 5, 'read-only: five connections on standby 2');

# a read-write and an any connection on the primary
my ($rw, $rw_app) = route('read-write');
is($rw->{instance}, 0, 'read-write on the primary');
$rw_app->register(111);
my $any_app = CmConmgr::App->connect($port);
my $anyr;
# "any" goes to the least loaded instance: the primary (one connection)
$anyr = $any_app->route('any');
is($anyr->{instance}, 0, 'any: least loaded instance (the primary)');

# the primary turns read-only: read-write connections are notified,
# the "any" connection is not
$wd[0]->command('attrs ' . CmWire::ATTR_READ_ONLY);
my $f = $rw_app->read_msg;
is($f->{type}, 'F', 'read-write connection notified of the attribute change');
is($f->{reason}, $CmWire::REASON{attr_changed}, 'reason is attributes changed');
like($f->{message}, qr/instance 0 .* is now primary \(read-only\), which does not satisfy target_session_attrs=read-write/,
	'notice explains the mismatch');
ok(!$any_app->is_closed(0.3), 'the "any" connection stays');
my ($r) = route('read-write');
is($r->{type}, 'N', 'no read-write instance left');
is($r->{reason}, $CmWire::REASON{no_instance}, 'reason no instance');
like($r->{message}, qr/no live instance matching target_session_attrs=read-write: instance 0 primary \(read-only\); instance 1 standby; instance 2 standby/,
	'no-instance message lists the instances');
($r) = route('primary');
is($r->{instance}, 0, 'a read-only primary is still a primary');
$wd[0]->command('attrs 0');

# prefer-standby without standbys goes to the primary; standby finds none
$_->close foreach @held;
$wd[1]->stop;
$wd[2]->stop;
ok( CmConmgr::wait_for(
		sub {
			my @i = $cm->instances;
			return $i[1]{state} ne 'up' && $i[2]{state} ne 'up';
		},
		'standbys down'),
	'standbys seen down');
($r) = route('prefer-standby');
is($r->{instance}, 0, 'prefer-standby falls back to the primary');
($r) = route('standby');
is($r->{type}, 'N', 'standby: no instance');
like($r->{message}, qr/instance 1 (down|connecting); instance 2 (down|connecting)/,
	'message says the standbys are down');

# promotion: the primary is lost, a standby comes back and is promoted
my $wd1 = CmConmgr::FakeWatchdog->new(attrs => $STANDBY, port => $wd[1]->port);
ok($cm->wait_up(1), 'standby 1 back');
$wd[0]->stop;
ok( CmConmgr::wait_for(
		sub {
			my @i = $cm->instances;
			return $i[0]{state} ne 'up';
		},
		'primary down'),
	'primary seen down');
($r) = route('read-write');
is($r->{type}, 'N', 'no read-write instance before the promotion');
my $t0 = time();
$wd1->command('attrs 0');
my $routed = CmConmgr::wait_for(
	sub {
		my ($x) = route('read-write');
		return $x && $x->{type} eq 'I' && $x->{instance} == 1;
	},
	'read-write routed to the new primary');
ok($routed, 'read-write routed to the promoted instance');
cmp_ok(time() - $t0, '<', 1, 'promotion pushed: routed within a second');
like(slurp_file($cm->logfile),
	qr/instance 1 \(127\.0\.0\.1:\d+\): attributes changed from standby to primary/,
	'attribute change logged');

# each state change is logged once, not per heartbeat or retry
my $log = slurp_file($cm->logfile);
my $downs = () = $log =~ /instance 2 \(.*\): instance is down/g;
is($downs, 1, 'instance 2 down logged once');
my $refused = () = $log =~ /instance 2 \(.*\): could not establish the heartbeat connection: Connection refused/g;
is($refused, 1, 'repeated connection failures logged once');

# reload: an instance removed from conmgr.conf is disconnected and its
# applications notified; an added one is connected
my ($r1, $app1) = route('read-write');
is($r1->{instance}, 1, 'read-write on instance 1 before the reload');
my $wd3 = CmConmgr::FakeWatchdog->new(attrs => $STANDBY);
my $conf = $cm->conf;
$conf =~ s/^(backend_hostaddr1|backend_port1|watchdog_port1) = .*\n//mg;
$conf .= "backend_hostaddr3 = 127.0.0.1\nbackend_port3 = 6003\nwatchdog_port3 = " . $wd3->port . "\n";
$cm->conf($conf);
my ($rc, $out, $err) = $cm->ctl('reload');
is($rc, 0, 'reload with an instance removed and one added');
like($out, qr/instance 1 \(127\.0\.0\.1, port 6001, watchdog port \d+\) removed/, 'reload reports the removal');
like($out, qr/instance 3 added \(127\.0\.0\.1, port 6003, watchdog port \d+\)/, 'reload reports the addition');
my $n = $app1->read_msg;
is($n->{type}, 'F', 'application of the removed instance notified');
is($n->{reason}, $CmWire::REASON{config}, 'reason: configuration changed');
like($n->{message}, qr/instance 1 .* was removed from the configuration of conmgr/, 'notice says why');
ok(CmConmgr::wait_for(sub { $wd1->events =~ /goodbye/ }, 'goodbye'),
	'the removed instance\'s watchdog got a goodbye');
ok($cm->wait_up(3), 'the added instance is connected');
my @nums = map { $_->{number} } $cm->instances;
is("@nums", '0 2 3', 'status lists the instances of the new configuration');
($r) = route('standby');
is($r->{instance}, 3, 'the added standby is used for routing');

done_testing();
