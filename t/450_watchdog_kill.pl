# Scenario 5: the watchdog worker of the primary is killed.
#
# (A) SIGTERM to the worker alone, as documented in docs/watchdog.md: the
#     worker tells its peers it restarts (the server keeps running) and
#     exits with code 1; the postmaster restarts it after about one second,
#     without touching the rest of the instance.  conmgr reconnects and
#     keeps its applications: the application on the primary is told
#     nothing and its session survives (heartbeat_timeout, 3 s, leaves room
#     for the restart); nothing else happens -- no crash restart, no session
#     ended by the terminator, the standby's application is told nothing --
#     and routing to the primary returns once the new worker accepts conmgr
#     again (within 10 s).
# (B) SIGKILL, as a crash would: the worker uses shared memory, so
#     PostgreSQL treats its death as a crash of the instance: the postmaster
#     ends every session and reinitializes, then starts the watchdog again.
#     Applications on the primary are told within heartbeat_timeout + 1 s;
#     the standby's application is told nothing and keeps its session;
#     read-write routing to the primary returns within 10 s.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 3000);
my $pm_pid = $lab->postmaster_pid('db1');

my $ro = $lab->start_cm_app('read-only', 'idle', 600, 'ro_idle');
my $or = $lab->wait_event($ro, 'ready');
is($or->{host} // '', $lab->addr('db2'), 'an application works on the standby');

# Wait until conmgr routes read-write requests to db1 again; returns the
# time of the first successful connection, or undef.
sub routed_again
{
	my ($what) = @_;
	my $routed;
	$lab->wait_until("read-write routed to db1 again ($what)", sub {
		my $x = $lab->route('read-write');
		$routed = $x if $x && $x->{host} eq $lab->addr('db1');
		return $routed;
	}, 20);
	ok($routed, "$what: conmgr routes read-write requests to the primary again")
	  or diag($lab->{last_route_output});
	return $routed ? $routed->{at} : undef;
}

sub log_lines
{
	my ($host, $re) = @_;
	return grep { $_ =~ $re } split /\n/, slurp_file($lab->pglog($host));
}

# --- (A) SIGTERM
{
	my $rw = $lab->start_cm_app('read-write', 'idle', 600, 'rw_idle_term');
	my $plain = $lab->start_app('lab_app', $lab->conninfo('db1'), 'idle', 600, 'plain_idle');
	my $local = $lab->start_local_app('db1', 'idle', 600, 'local_idle');
	my $rr = $lab->wait_event($rw, 'ready');
	is($rr->{host} // '', $lab->addr('db1'), '(TERM) an application works on the primary');
	my $pr = $lab->wait_event($plain, 'ready');
	my $lr = $lab->wait_event($local, 'ready');
	ok($pr && $lr, '(TERM) a plain session from the client host and a local session are open');

	my $wd_pid = $lab->worker_pid('db1', 'watchdog') // '';
	like($wd_pid, qr/^\d+$/, '(TERM) the watchdog worker runs on the primary');
	my $t_kill = time;
	kill 'TERM', $wd_pid;

	ok($lab->wait_until('conmgr is back with the restarted watchdog', sub {
		$lab->output($lab->{conmgr}) =~ /the watchdog is back after its restart; \d+ application connections? kept/;
	}, 10), '(TERM) conmgr reconnected to the restarted watchdog and kept its applications')
	  or diag($lab->output($lab->{conmgr}));
	like(slurp_file($lab->pglog('db1')),
		qr/watchdog process stopping while the server keeps running: told 1 conmgr peers to reconnect/,
		'(TERM) the worker told conmgr it restarts, not that the server stops');
	ok(!$lab->event($rw, 'notified') && !$lab->event($rw, 'failed'),
		'(TERM) the application on the primary was told nothing')
	  or diag($lab->output($rw));
	ok($lab->backend_alive('db1', $rr->{pid}), '(TERM) and its session survived');
	my $back = routed_again('TERM');
	cmp_ok($back - $t_kill, '<=', 10, '(TERM) within 10 s of the signal') if $back;
	note(sprintf("(TERM) routed to db1 again %.3f s after the signal", $back - $t_kill))
	  if $back;
	my $new_wd = $lab->worker_pid('db1', 'watchdog') // '';
	ok($new_wd =~ /^\d+$/ && $new_wd ne $wd_pid, '(TERM) a new watchdog worker runs');
	ok((grep { /\(PID $wd_pid\) exited with exit code 1/ } split /\n/, slurp_file($lab->pglog('db1'))),
		'(TERM) the worker exited with code 1, as documented');

	# and nothing else
	is($lab->postmaster_pid('db1'), $pm_pid, '(TERM) the postmaster is the same');
	my @crash = log_lines('db1', qr/terminating any other active server processes|all server processes terminated/);
	is(scalar(@crash), 0, '(TERM) no crash restart') or diag(join("\n", @crash));
	my @term = log_lines('db1', qr/watchdog terminated \d+ session/);
	is(scalar(@term), 0, '(TERM) the terminator ended nothing') or diag(join("\n", @term));
	ok($pr && $lab->backend_alive('db1', $pr->{pid}),
		'(TERM) the plain session from the client host survived');
	ok($lr && $lab->backend_alive('db1', $lr->{pid}), '(TERM) the local session survived');
	ok(!$lab->event($ro, 'notified') && !$lab->event($ro, 'failed'),
		'(TERM) the application on the standby was told nothing');
	$lab->kill9($_) foreach ($rw, $plain, $local);
}

# --- (B) SIGKILL
{
	my $rw = $lab->start_cm_app('read-write', 'idle', 600, 'rw_idle_kill');
	my $rr = $lab->wait_event($rw, 'ready');
	is($rr->{host} // '', $lab->addr('db1'), '(KILL) an application works on the primary');

	my $wd_pid = $lab->worker_pid('db1', 'watchdog') // '';
	like($wd_pid, qr/^\d+$/, '(KILL) the watchdog worker runs on the primary');
	my $t_before = time;
	kill 'KILL', $wd_pid;
	my $t_kill = time;

	my $f = $lab->wait_event($rw, 'failed', $cm->{heartbeat_timeout} / 1000 + 5);
	ok($f, '(KILL) the application on the primary was told and its call failed')
	  or diag($lab->output($rw));
	if ($f)
	{
		cmp_ok($f->{at}, '>=', $t_before, '(KILL) not before the kill');
		cmp_ok($f->{at} - $t_kill, '<=', $cm->{heartbeat_timeout} / 1000 + 1,
			'(KILL) within heartbeat_timeout + 1 s');
		note("(KILL) failure: $f->{error}");
	}

	# the instance went through crash recovery, with the same postmaster
	ok($lab->wait_until('the primary accepts queries again', sub {
		my ($ok, $out) = $lab->sql_try('db1', 'SELECT 1');
		$ok && $out eq '1';
	}, 30), '(KILL) the primary is back after reinitializing');
	is($lab->postmaster_pid('db1'), $pm_pid, '(KILL) the postmaster itself survived');
	ok((grep { /\(PID $wd_pid\) was terminated by signal 9/ } split /\n/, slurp_file($lab->pglog('db1'))),
		'(KILL) the server logged the death of the watchdog worker');

	my $back = routed_again('KILL');
	cmp_ok($back - $t_kill, '<=', 10, '(KILL) within 10 s of the kill') if $back;
	note(sprintf("(KILL) routed to db1 again %.3f s after the kill", $back - $t_kill))
	  if $back;
	my $new_wd = $lab->worker_pid('db1', 'watchdog') // '';
	ok($new_wd =~ /^\d+$/ && $new_wd ne $wd_pid, '(KILL) a new watchdog worker runs');

	# and nothing else
	ok(!$lab->event($ro, 'notified') && !$lab->event($ro, 'failed'),
		'(KILL) the application on the standby was told nothing');
	ok($lab->backend_alive('db2', $or->{pid}), '(KILL) its session on the standby is intact');
	is($lab->sql('db1', "SELECT count(*) FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
			  . $lab->addr('client') . "'"), '1',
		'(KILL) the primary lists our conmgr once again');
}

done_testing();
