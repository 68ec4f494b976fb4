# Scenario 6: the primary is shut down cleanly (pg_ctl stop -m fast).  The
# watchdog pushes the shutdown to conmgr before its sockets close, so
# conmgr declares the instance down and applications are told in under
# 1 s, with an error naming the shutdown -- with a heartbeat_timeout of
# 5 s, conmgr cannot have learnt it from a missing heartbeat.  (An idle
# application may hear of it first from its own backend, which -m fast
# terminates; either way its call fails in under 1 s.)  A new
# read-write request right after the stop is refused at once instead of
# being routed to the stopped instance.  The standby's application is told
# nothing.  Several applications of each kind (polling PQsocket(),
# PQcmSocket() or both, blocked in PQexec) must each read an error that
# names the shutdown, never a bare "server closed the connection
# unexpectedly": whichever of conmgr's notice and the backend's FATAL they
# read first.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 1000, heartbeat_timeout => 5000);

# Several applications of each kind on the primary: idle and polling both
# sockets, PQsocket() only or PQcmSocket() only, and blocked in PQexec.
my @rw;
foreach my $i (1 .. 2)
{
	push @rw, $lab->start_cm_app('read-write', $_, 600, "rw_${_}_$i")
	  foreach qw(idle idle-sql idle-cm sleep);
}
my $ro = $lab->start_cm_app('read-only', 'idle', 600, 'ro_idle');
foreach my $p (@rw, $ro)
{
	ok($lab->wait_event($p, 'ready'), "application $p->{name} connected")
	  or diag($lab->output($p));
}

my $t_before = time;
my ($stopped) = $lab->pg_stop('db1', 'fast');
my $t_stopped = time;
ok($stopped, 'the primary stopped');
note(sprintf("pg_ctl stop -m fast took %.3f s", $t_stopped - $t_before));

# conmgr learnt it from the watchdog's push, not from a missing heartbeat
my $down;
$lab->wait_until('conmgr declares the instance down', sub {
	$down = CmLab::log_time($lab->{conmgr}{out}, qr/instance 0 .*down.*shutting down/);
}, 5);
ok($down, 'conmgr declared the primary down because it is shutting down')
  or diag($lab->output($lab->{conmgr}));
if ($down)
{
	# conmgr's log has millisecond timestamps
	cmp_ok($down, '>=', $t_before - 0.001, 'conmgr declared it after the stop began');
	cmp_ok($down - $t_before, '<', 1.0, 'conmgr declared it in under 1 s');
	note(sprintf("conmgr declared the primary down %.3f s after the stop began",
		$down - $t_before));
}
foreach my $p (@rw)
{
	my $f = $lab->wait_event($p, 'failed', 5);
	ok($f, "application $p->{name}: its call failed") or diag($lab->output($p));
	next unless $f;
	# conmgr's notice, or the FATAL of its own backend that -m fast ended
	like($f->{error}, qr/shutting down|terminating connection due to administrator command/,
		"application $p->{name}: the error says the instance is shutting down");
	unlike($f->{error}, qr/^server closed the connection unexpectedly/,
		"application $p->{name}: not a bare 'server closed the connection'");
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
