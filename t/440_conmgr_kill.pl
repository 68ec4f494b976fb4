# Scenario 4: conmgr is killed with SIGKILL.  Every application's conmgr
# socket closes, which counts as a failure notice: applications are told
# at once (within 1 s), whatever they are doing.  The watchdogs see the
# heartbeat connection close without a goodbye and their terminators end
# the client host's sessions within the server bound (server_timeout + 1 s
# at most) -- including a session that never used Connection Manager and
# so is not closed by any notice.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $margin = 1.0;    # s
my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 2000);
my $server_timeout = $lab->sql('db1',
	"SELECT server_timeout FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
	  . $lab->addr('client') . "'");
like($server_timeout, qr/^\d+$/, 'the primary shows its server bound for our conmgr')
  or BAIL_OUT('no pgx_stat_watchdog row for the client host');

my %app = (
	'idle on the primary' => $lab->start_cm_app('read-write', 'idle', 600, 'rw_idle'),
	'pg_sleep on the primary' => $lab->start_cm_app('read-write', 'sleep', 600, 'rw_sleep'),
	'idle on the standby' => $lab->start_cm_app('read-only', 'idle', 600, 'ro_idle'));
my $plain = $lab->start_app('lab_app', $lab->conninfo('db1'), 'lock', 600, 'plain_lock');
my %pid;
foreach my $k (sort keys %app)
{
	my $r = $lab->wait_event($app{$k}, 'ready');
	ok($r, "application $k connected") or diag($lab->output($app{$k}));
	$pid{$k} = $r ? $r->{pid} : 0;
}
ok($lab->wait_event($plain, 'locked'), 'a plain libpq session from the client host holds a lock');
my $plain_pid = $lab->event($plain, 'ready')->{pid} // 0;
my $waiter = $lab->start_local_app('db1', 'lock', 600, 'local_waiter');
ok($lab->wait_until('the waiter is blocked', sub {
	$lab->sql('db1', "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") == 1;
}), 'a local session waits for that lock');

my $t_before = time;
$lab->{conmgr}{h}->signal('KILL');
my $t_kill = time;
$lab->kill9($lab->{conmgr});    # reap it
note(sprintf("conmgr killed at %.3f", $t_kill));

foreach my $k (sort keys %app)
{
	my $f = $lab->wait_event($app{$k}, 'failed', 5);
	ok($f, "application $k: its call failed") or diag($lab->output($app{$k}));
	next unless $f;
	note(sprintf("%s: failed %.3f s after the kill: %s", $k, $f->{at} - $t_kill, $f->{error}));
	cmp_ok($f->{at}, '>=', $t_before, "application $k: not before the kill");
	cmp_ok($f->{at} - $t_kill, '<=', 1.0, "application $k: told at once (within 1 s)");
}

# the servers: sessions of the client host end within the bound
my $end = undef;
$lab->wait_until('plain session ended',
	sub { $end = $lab->backend_end_time('db1', $plain_pid) }, $server_timeout / 1000 + $margin + 5);
ok($end, 'the primary ended the session that never used Connection Manager');
if ($end)
{
	cmp_ok($end, '>=', $t_before, 'not before the kill');
	cmp_ok($end - $t_kill, '<=', $server_timeout / 1000 + $margin,
		'within server_timeout + 1 s of the kill');
	note(sprintf("plain session ended %.3f s after the kill", $end - $t_kill));
}
my $locked = $lab->wait_event($waiter, 'locked', 5);
ok($locked, 'its lock was released to the waiting session');
foreach my $k (sort keys %app)
{
	my $host = $k =~ /standby/ ? 'db2' : 'db1';
	my $e;
	$lab->wait_until("$k session ended",
		sub { $e = $lab->backend_end_time($host, $pid{$k}) }, $server_timeout / 1000 + $margin + 5);
	ok($e, "the session of the application $k ended on the server");
	cmp_ok($e - $t_kill, '<=', $server_timeout / 1000 + $margin,
		"the session of the application $k ended within server_timeout + 1 s") if $e;
}
is($lab->sql('db1', "SELECT count(*) FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
		  . $lab->addr('client') . "'"), '0',
	'the primary no longer lists the killed conmgr');

done_testing();
