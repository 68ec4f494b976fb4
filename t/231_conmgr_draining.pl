
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# conmgr and the stopping attribute (protocol 1.1), against fake watchdogs:
# a 1.1 watchdog that says its server is stopping gets no new application
# connection, its routed applications keep their connections and get no
# notice, the refusal names the stopping instance, cm_ctl status shows the
# draining state; a 1.0 watchdog is spoken to in 1.0.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmConmgr;
use CmWire;

my $STANDBY = CmWire::ATTR_STANDBY;
my $STOPPING = CmWire::ATTR_STOPPING;
my @wd = (
	CmConmgr::FakeWatchdog->new(attrs => 0, version => 0x0101),
	CmConmgr::FakeWatchdog->new(attrs => $STANDBY));    # speaks 1.0
my $cm = CmConmgr->new(
	heartbeat_interval => 200,
	heartbeat_timeout => 1000,
	instances => [
		map { { hostaddr => '127.0.0.1', port => 6000 + $_, watchdog_port => $wd[$_]->port } } 0 .. 1
	])->start;
my $port = $cm->port;
ok($cm->wait_up(0, 1), 'two instances up');

my @inst = $cm->instances;
is($inst[0]{protocol_version}, '1.1', 'the 1.1 watchdog is spoken to in 1.1');
is($inst[1]{protocol_version}, '1.0', 'the 1.0 watchdog is spoken to in 1.0');
is($inst[0]{draining}, 'false', 'instance 0 is not draining');

sub route
{
	my ($tsa, $name) = @_;
	my $app = CmConmgr::App->connect($port) or return (undef, undef);
	return ($app->route($tsa, $name), $app);
}

# an application on the primary before the stop
my ($r, $held) = route('read-write', 'held');
is($r->{type}, 'I', 'read-write routed');
is($r->{instance}, 0, 'to the primary');

$wd[0]->command("attrs $STOPPING");
ok(CmConmgr::wait_for(sub {
	($cm->instances)[0]{state} eq 'draining' }, 'draining'),
	'cm_ctl status shows instance 0 draining');
@inst = $cm->instances;
is($inst[0]{draining}, 'true', 'cm_ctl status: "draining": true');
is($inst[0]{attribute}, 'primary', 'and still a primary');
is($inst[0]{read_only}, 'false', 'the stopping bit is not read-only');

my $any_standby = 0;
for (1 .. 10)
{
	my ($m) = route('any', 'new');
	$any_standby++ if $m && $m->{type} eq 'I' && $m->{instance} == 1;
}
is($any_standby, 10, 'every new "any" connection goes to the other instance');
($r) = route('read-write', 'rw');
is($r->{type}, 'N', 'read-write: no instance');
like($r->{message}, qr/instance 0 is stopping/, 'the refusal says that instance 0 is stopping');
ok(!$held->is_closed(0.5), 'the application already there keeps its connection, with no notice');

my $log = slurp_file($cm->logfile);
like($log, qr/instance 0 [^\n]*: the server is shutting down: no new application connections are routed to it; the 1 it has keep their sessions/,
	'conmgr logs the draining');
unlike($log, qr/attributes changed from primary to primary/, 'and no attribute change');

# the stop is not taken back in a real server, but conmgr follows what it is told
$wd[0]->command('attrs 0');
ok(CmConmgr::wait_for(sub {
	($cm->instances)[0]{state} eq 'up' }, 'up'),
	'instance 0 up again when the watchdog says so');
($r) = route('read-write', 'rw2');
is($r->{type}, 'I', 'read-write routed again');
is($r->{instance}, 0, 'to the primary');
is($r->{attrs}, 0, 'with plain attributes');

$held->close;
done_testing();
