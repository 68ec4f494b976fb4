# Scenario 2: the client's host is cut from the network.  The watchdog
# loses its conmgr and the terminator ends the client host's sessions on
# the primary within the server bound announced to conmgr (server_timeout
# = heartbeat_interval + heartbeat_timeout + watchdog.timeout_margin,
# counted from the last heartbeat, so at most server_timeout after the
# cut) and not before the lease allows (heartbeat_timeout after the cut:
# the client gives up first).  A lock held by the client's open
# transaction is released: a session on the server that waits for it gets
# it.  A session from the client host that never used Connection Manager
# is ended as well (termination by address, the default).  Unix-socket
# sessions on the server are untouched.  On the client side, the
# application is told within heartbeat_timeout + 1 s, before the server
# reaps its session.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $margin = 1.0;    # s: terminator reaction and log/poll granularity

my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 1000,
	timeout_margin => 500);

my $server_timeout = $lab->sql('db1',
	"SELECT server_timeout FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
	  . $lab->addr('client') . "'");
like($server_timeout, qr/^\d+$/, 'the primary shows its server bound for our conmgr')
  or BAIL_OUT('no pgx_stat_watchdog row for the client host');
note("server_timeout = $server_timeout ms");
my $server_bound = $server_timeout / 1000 + $margin;
my $lease = $cm->{heartbeat_timeout} / 1000;

# through conmgr: a transaction holding a lock, a query running
my $holder = $lab->start_cm_app('read-write', 'lock', 600, 'cm_lock');
my $sleeper = $lab->start_cm_app('read-write', 'sleep', 600, 'cm_sleep');
# the same client host, plain libpq: it never used Connection Manager
my $plain = $lab->start_app('lab_app', $lab->conninfo('db1'), 'idle', 600, 'plain_idle');
ok($lab->wait_event($holder, 'locked'), 'the application holds a lock in an open transaction')
  or diag($lab->output($holder));
my %pid;
foreach my $p ([ holder => $holder ], [ sleeper => $sleeper ], [ plain => $plain ])
{
	my $r = $lab->wait_event($p->[1], 'ready');
	ok($r, "$p->[0] session established") or diag($lab->output($p->[1]));
	$pid{ $p->[0] } = $r ? $r->{pid} : 0;
}
# on the server, over the Unix socket: a waiter for the lock, a bystander
my $waiter = $lab->start_local_app('db1', 'lock', 600, 'local_waiter');
my $local = $lab->start_local_app('db1', 'idle', 600, 'local_idle');
my $lr = $lab->wait_event($local, 'ready');
ok($lab->wait_until('the waiter is blocked', sub {
	$lab->sql('db1', "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") == 1;
}), 'a local session waits for the lock');

my $t_before = time;
my $t_cut = $lab->cut('client');

my $locked = $lab->wait_event($waiter, 'locked', $server_bound + 5);
ok($locked, 'the waiter got the lock') or diag($lab->output($waiter));
if ($locked)
{
	cmp_ok($locked->{at} - $t_cut, '>=', $lease,
		'the lock was not released before heartbeat_timeout (lease)');
	cmp_ok($locked->{at} - $t_cut, '<=', $server_bound,
		'the lock was released within server_timeout + 1 s of the cut');
	note(sprintf("lock granted %.3f s after the cut", $locked->{at} - $t_cut));
}
foreach my $who (sort keys %pid)
{
	my $end;
	$lab->wait_until("$who session ended",
		sub { $end = $lab->backend_end_time('db1', $pid{$who}) }, $server_bound + 5);
	ok($end, "the $who session on the primary was ended");
	next unless $end;
	note(sprintf("%s session ended %.3f s after the cut", $who, $end - $t_cut));
	cmp_ok($end - $t_cut, '>=', $lease, "the $who session was not ended before the lease");
	cmp_ok($end - $t_cut, '<=', $server_bound,
		"the $who session was ended within server_timeout + 1 s");
}
my $client_addr = $lab->addr('client');
my $logged = slurp_file($lab->pglog('db1')) =~
  /(terminated \d+ session\(s\) from \Q$client_addr\E.*\n.*DETAIL:.*\b$pid{holder}\b.*)/;
ok($logged, 'the termination is logged with the client address and the backend PID')
  or diag(join("\n", grep { /watchdog/ } split /\n/, slurp_file($lab->pglog('db1'))));
ok($lr && $lab->backend_alive('db1', $lr->{pid}), 'the Unix-socket session survived');

# the client side: told before the server reaps (lease rule)
my $f = $lab->event($holder, 'failed');
my $n = $lab->event($holder, 'notified');
ok($n && $f, 'the application holding the lock was told and its call failed')
  or diag($lab->output($holder));
if ($n)
{
	cmp_ok($n->{at}, '>=', $t_before, 'the notice came after the cut');
	cmp_ok($n->{at} - $t_cut, '<=', $lease + 1, 'the notice came within heartbeat_timeout + 1 s');
	cmp_ok($n->{at}, '<', $locked->{at}, 'the client was told before its lock was released')
	  if $locked;
}
my $s = $lab->event($sleeper, 'failed');
ok($s, 'the application blocked in pg_sleep failed') or diag($lab->output($sleeper));
cmp_ok($s->{at} - $t_cut, '<=', $lease + 1, 'its call failed within heartbeat_timeout + 1 s')
  if $s;

$lab->heal('client');
done_testing();
