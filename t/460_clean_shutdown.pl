# Scenario 6: the primary is shut down cleanly (pg_ctl stop -m fast).  The
# watchdog pushes the shutdown to conmgr before its sockets close, so
# applications are told in under 1 s -- with a heartbeat_timeout of 5 s,
# they cannot have learnt it from a missing heartbeat -- and a new
# read-write request right after the stop is refused at once instead of
# being routed to the stopped instance.  The standby's application is told
# nothing.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 1000, heartbeat_timeout => 5000);

my $idle = $lab->start_cm_app('read-write', 'idle', 600, 'rw_idle');
my $sleep = $lab->start_cm_app('read-write', 'sleep', 600, 'rw_sleep');
my $ro = $lab->start_cm_app('read-only', 'idle', 600, 'ro_idle');
foreach my $p ($idle, $sleep, $ro)
{
	ok($lab->wait_event($p, 'ready'), "application $p->{name} connected")
	  or diag($lab->output($p));
}

my $t_before = time;
my ($stopped) = $lab->pg_stop('db1', 'fast');
my $t_stopped = time;
ok($stopped, 'the primary stopped');
note(sprintf("pg_ctl stop -m fast took %.3f s", $t_stopped - $t_before));

my $n = $lab->wait_event($idle, 'notified', 5);
ok($n, 'the idle application saw its conmgr socket become readable')
  or diag($lab->output($idle));
if ($n)
{
	cmp_ok($n->{at}, '>=', $t_before, 'the notice came after the stop began');
	cmp_ok($n->{at} - $t_before, '<', 1.0, 'the notice came in under 1 s');
	note(sprintf("notice %.3f s after the stop began", $n->{at} - $t_before));
}
foreach my $p ($idle, $sleep)
{
	my $f = $lab->wait_event($p, 'failed', 5);
	ok($f, "application $p->{name}: its call failed") or diag($lab->output($p));
	next unless $f;
	like($f->{error}, qr/shut/i,
		"application $p->{name}: the error says the instance is shutting down");
	cmp_ok($f->{at}, '>=', $t_before, "application $p->{name}: not before the stop");
	cmp_ok($f->{at} - $t_before, '<', 1.0, "application $p->{name}: in under 1 s");
}

my $t0 = time;
my $x = $lab->route('read-write');
ok(!$x, 'a read-write request right after the stop is refused')
  or diag("routed to $x->{host}");
cmp_ok(time - $t0, '<', 1.0, 'the refusal is immediate');
like($lab->{last_route_output}, qr/connect-failed/, 'the application gets a connection error');
note("refusal: $lab->{last_route_output}");

ok(!$lab->event($ro, 'notified') && !$lab->event($ro, 'failed'),
	'the application on the standby was told nothing');

done_testing();
