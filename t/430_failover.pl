# Scenario 3: the primary's host dies (its link is cut and it is never
# seen again) and the standby is promoted.  read-write connections are
# routed to the new primary within watchdog.check_attr_interval + 1 s of
# the promotion, and not before it: until then conmgr has no read-write
# instance and says so.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 1000,
	check_attr_interval => 500);
my $bound = $cm->{check_attr_interval} / 1000 + 1;

my $app = $lab->start_cm_app('read-write', 'idle');
my $r = $lab->wait_event($app, 'ready');
is($r->{host} // '', $lab->addr('db1'), 'the application works on the primary');

my $t_cut = $lab->cut('db1');
my $f = $lab->wait_event($app, 'failed', $cm->{heartbeat_timeout} / 1000 + 5);
ok($f, 'the application on the lost primary was told') or diag($lab->output($app));
cmp_ok($f->{at} - $t_cut, '<=', $cm->{heartbeat_timeout} / 1000 + 1,
	'within heartbeat_timeout + 1 s') if $f;

# conmgr now knows no read-write instance: it says so at once
my $t0 = time;
my $before = $lab->route('read-write');
my $t1 = time;
ok(!$before, 'before the promotion, a read-write request is refused')
  or diag("routed to $before->{host}");
like($lab->{last_route_output}, qr/connect-failed/, 'the application gets a connection error');
note("refusal: $lab->{last_route_output}");
cmp_ok($t1 - $t0, '<', 5, 'the refusal does not wait for connect_timeout');
is($lab->route('read-only')->{host} // '', $lab->addr('db2'),
	'read-only requests still reach the standby');

my $t_promote = time;
$lab->pg_promote('db2');
my $t_promoted = time;
note(sprintf("pg_ctl promote took %.3f s", $t_promoted - $t_promote));
is($lab->sql('db2', 'SELECT pg_is_in_recovery()'), 'f', 'db2 is now a primary');

my $routed;
my $t_routed;
$lab->wait_until('read-write routed to db2', sub {
	my $x = $lab->route('read-write');
	if ($x && $x->{host} eq $lab->addr('db2'))
	{
		$routed = $x;
		$t_routed = $x->{at};
		return 1;
	}
	return 0;
}, $bound + 10);
ok($routed, 'read-write connections reach the new primary') or diag($lab->{last_route_output});
if ($routed)
{
	is($routed->{in_recovery}, 'f', 'the read-write connection is on a server not in recovery');
	cmp_ok($t_routed, '>=', $t_promote, 'not routed to db2 before the promotion');
	cmp_ok($t_routed - $t_promoted, '<=', $bound,
		'routed within check_attr_interval + 1 s of the promotion');
	note(sprintf("routed %.3f s after the promotion completed", $t_routed - $t_promoted));
}

done_testing();
