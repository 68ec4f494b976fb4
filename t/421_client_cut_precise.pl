# Scenario 2 with watchdog.termination_mode = precise: the client's host
# is cut; the terminator ends only the sessions that were registered
# through the lost conmgr -- within the same bound as in address mode --
# and leaves the client host's other sessions (plain libpq, never through
# Connection Manager) alone.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $margin = 1.0;    # s
my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 1000,
	timeout_margin => 500, conf => "watchdog.termination_mode = precise\n");
is($lab->sql('db1', 'SHOW watchdog.termination_mode'), 'precise', 'the primary runs in precise mode');

my $server_timeout = $lab->sql('db1',
	"SELECT server_timeout FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
	  . $lab->addr('client') . "'");
like($server_timeout, qr/^\d+$/, 'the primary shows its server bound for our conmgr')
  or BAIL_OUT('no pgx_stat_watchdog row for the client host');
my $lease = $cm->{heartbeat_timeout} / 1000;
my $bound = $server_timeout / 1000 + $margin;

my $holder = $lab->start_cm_app('read-write', 'lock', 600, 'cm_lock');
my $plain = $lab->start_app('lab_app', $lab->conninfo('db1'), 'idle', 600, 'plain_idle');
ok($lab->wait_event($holder, 'locked'), 'an application through conmgr holds a lock')
  or diag($lab->output($holder));
my $hp = $lab->event($holder, 'ready')->{pid} // 0;
my $pr = $lab->wait_event($plain, 'ready');
ok($pr, 'a plain libpq session from the same host is open') or diag($lab->output($plain));
my $pp = $pr ? $pr->{pid} : 0;
ok($lab->wait_until('the session is registered', sub {
	$lab->sql('db1', "SELECT sessions_registered FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
		  . $lab->addr('client') . "'") >= 1;
}, 10), 'conmgr registered the application session with the watchdog');

my $t_before = time;
my $t_cut = $lab->cut('client');

my $end;
$lab->wait_until('registered session ended',
	sub { $end = $lab->backend_end_time('db1', $hp) }, $bound + 5);
ok($end, 'the registered session was ended');
if ($end)
{
	cmp_ok($end - $t_cut, '>=', $lease, 'not before the lease');
	cmp_ok($end - $t_cut, '<=', $bound, 'within server_timeout + 1 s of the cut');
	note(sprintf("registered session ended %.3f s after the cut", $end - $t_cut));
}
ok($lab->backend_alive('db1', $pp), 'the plain session from the same host survived');
my @detail = grep { /DETAIL:.*\b$hp\b.*mode precise/ } split /\n/, slurp_file($lab->pglog('db1'));
ok(@detail, 'the log names the terminated PID and the precise mode')
  or diag(join("\n", grep { /watchdog/ } split /\n/, slurp_file($lab->pglog('db1'))));

$lab->heal('client');
done_testing();
