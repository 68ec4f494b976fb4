# Scenario 5: the watchdog worker of the primary is killed (SIGKILL, as a
# crash would).  The worker uses shared memory, so PostgreSQL treats its
# death as a crash of the instance: the postmaster ends every session and
# reinitializes, then starts the watchdog again.  The outcome, and nothing
# else:
#   - applications on the primary are told (the heartbeat connection broke)
#     within heartbeat_timeout + 1 s, and their calls fail;
#   - the application on the standby is told nothing and keeps its session;
#   - the restarted watchdog takes heartbeats again and conmgr routes
#     read-write requests to the primary again, within the reconnection
#     backoff of conmgr (at most 5 s) plus crash recovery (bounded here by
#     10 s in all).
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 1000);

my $rw = $lab->start_cm_app('read-write', 'idle', 600, 'rw_idle');
my $ro = $lab->start_cm_app('read-only', 'idle', 600, 'ro_idle');
my $rr = $lab->wait_event($rw, 'ready');
my $or = $lab->wait_event($ro, 'ready');
is($rr->{host} // '', $lab->addr('db1'), 'an application works on the primary');
is($or->{host} // '', $lab->addr('db2'), 'an application works on the standby');

my $wd_pid = $lab->worker_pid('db1', 'watchdog') // '';
like($wd_pid, qr/^\d+$/, 'the watchdog worker runs on the primary');
my $pm_pid = $lab->postmaster_pid('db1');

my $t_before = time;
kill 'KILL', $wd_pid;
my $t_kill = time;

my $f = $lab->wait_event($rw, 'failed', $cm->{heartbeat_timeout} / 1000 + 5);
ok($f, 'the application on the primary was told and its call failed')
  or diag($lab->output($rw));
if ($f)
{
	cmp_ok($f->{at}, '>=', $t_before, 'not before the kill');
	cmp_ok($f->{at} - $t_kill, '<=', $cm->{heartbeat_timeout} / 1000 + 1,
		'within heartbeat_timeout + 1 s');
	note("failure: $f->{error}");
}

# the instance went through crash recovery, with the same postmaster
ok($lab->wait_until('the primary accepts queries again', sub {
	my ($ok, $out) = $lab->sql_try('db1', 'SELECT 1');
	$ok && $out eq '1';
}, 30), 'the primary is back after reinitializing');
is($lab->postmaster_pid('db1'), $pm_pid, 'the postmaster itself survived');
ok(slurp_file($lab->pglog('db1')) =~ /\(PID $wd_pid\) was terminated by signal 9/,
	'the server logged the death of the watchdog worker');

# routing comes back
my $routed;
$lab->wait_until('read-write routed to db1 again', sub {
	my $x = $lab->route('read-write');
	$routed = $x if $x && $x->{host} eq $lab->addr('db1');
	return $routed;
}, 20);
ok($routed, 'conmgr routes read-write requests to the primary again')
  or diag($lab->{last_route_output});
if ($routed)
{
	cmp_ok($routed->{at} - $t_kill, '<=', 10, 'within 10 s of the kill');
	note(sprintf("read-write routed to db1 again %.3f s after the kill", $routed->{at} - $t_kill));
}
my $new_wd = $lab->worker_pid('db1', 'watchdog') // '';
like($new_wd, qr/^\d+$/, 'a new watchdog worker runs');
isnt($new_wd, $wd_pid, 'it is a new process');

# and nothing else
ok(!$lab->event($ro, 'notified') && !$lab->event($ro, 'failed'),
	'the application on the standby was told nothing');
ok($lab->backend_alive('db2', $or->{pid}), 'its session on the standby is intact');
is($lab->sql('db1', "SELECT count(*) FROM pgx_stat_watchdog WHERE conmgr_addr = '"
		  . $lab->addr('client') . "'"), '1',
	'the primary lists our conmgr once again');

done_testing();
