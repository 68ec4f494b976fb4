# Scenario 8: a link that is down for less than the timeout causes no
# notice and no termination -- neither when the primary's host is cut nor
# when the client's host is.
# Scenario 7: a cut longer than every timeout heals; conmgr reconnects and
# the instance returns to routing within conmgr's reconnection bound
# (backoff of at most 5 s plus connect_timeout, 3 s by default, + 1 s).
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 2000,
	timeout_margin => 500);
my $timeout = $cm->{heartbeat_timeout} / 1000;
my $short = 0.8;          # s, well under heartbeat_timeout
my $reconnect_bound = 5 + 3 + 1;

my $idle = $lab->start_cm_app('read-write', 'idle', 600, 'rw_idle');
my $holder = $lab->start_cm_app('read-write', 'lock', 600, 'rw_lock');
my $plain = $lab->start_app('lab_app', $lab->conninfo('db1'), 'idle', 600, 'plain_idle');
my %pid;
foreach my $p ($idle, $holder, $plain)
{
	my $r = $lab->wait_event($p, 'ready');
	ok($r, "application $p->{name} connected") or diag($lab->output($p));
	$pid{ $p->{name} } = $r ? $r->{pid} : 0;
}
ok($lab->wait_event($holder, 'locked'), 'an application holds a lock');

# --- scenario 8: short cuts
foreach my $host (qw(db1 client))
{
	my $t_cut = $lab->cut($host);
	ok(!$lab->reachable('client', 'db1', 0.3), "while $host is cut, db1 is unreachable");
	# hold the partition for a set time: this is the scenario, not a wait
	my $left = $short - (time - $t_cut);
	usleep($left * 1_000_000) if $left > 0;
	my $t_heal = $lab->heal($host);
	cmp_ok($t_heal - $t_cut, '<', $timeout, "the $host link was down for less than the timeout");
	note(sprintf("%s link down for %.3f s", $host, $t_heal - $t_cut));
	# A notice would come within heartbeat_timeout of the cut.  Wait past
	# it before the next cut: TCP delivers what was sent during a cut only
	# at its next retransmission, so two cuts close together add up.
	my $n = $lab->wait_event($idle, 'notified', $timeout + 1);
	ok(!$n, "no notice after the short cut of the $host link") or diag($lab->output($idle));
}
ok(!$lab->event($idle, 'failed') && !$lab->event($holder, 'failed'),
	'no application call failed');
foreach my $name (sort keys %pid)
{
	ok($lab->backend_alive('db1', $pid{$name}), "the session of $name survived on the primary");
}
my @terminated = grep { /watchdog terminated \d+ session/ } split /\n/,
  slurp_file($lab->pglog('db1'));
is(scalar(@terminated), 0, 'the terminator ended nothing') or diag(join("\n", @terminated));
is($lab->sql('db1', "SELECT count(*) FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
		  . $lab->addr('client') . "'"), '1', 'the primary still lists our conmgr');
is($lab->route('read-write')->{host} // '', $lab->addr('db1'), 'read-write still routes to db1');

# --- scenario 7: a long cut heals
my $t_cut = $lab->cut('db1');
my $f = $lab->wait_event($idle, 'failed', $timeout + 5);
ok($f, 'a long cut is reported to the application');
cmp_ok($f->{at} - $t_cut, '<=', $timeout + 1, 'within heartbeat_timeout + 1 s') if $f;
ok($lab->wait_until('read-write refused', sub { !$lab->route('read-write') }, 5),
	'while db1 is cut, read-write requests are refused');
# stay cut past the server's bound too, so both sides drop the peer
my $server_timeout = ($cm->{heartbeat_interval} + $cm->{heartbeat_timeout}
	  + $cm->{timeout_margin}) / 1000;
ok($lab->wait_until('the primary drops our conmgr', sub {
	$lab->sql('db1', "SELECT count(*) FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
		  . $lab->addr('client') . "'") == 0;
}, $server_timeout + 5), 'the primary dropped the lost conmgr');

my $t_heal = $lab->heal('db1');
my $routed;
$lab->wait_until('read-write routed to db1 again', sub {
	my $x = $lab->route('read-write');
	$routed = $x if $x && $x->{host} eq $lab->addr('db1');
	return $routed;
}, $reconnect_bound + 10);
ok($routed, 'after healing, read-write requests reach db1 again')
  or diag($lab->{last_route_output} . $lab->output($lab->{conmgr}));
if ($routed)
{
	cmp_ok($routed->{at}, '>', $t_heal, 'not before the link healed');
	cmp_ok($routed->{at} - $t_heal, '<=', $reconnect_bound,
		"within $reconnect_bound s of healing (backoff + connect_timeout + 1 s)");
	note(sprintf("routed again %.3f s after the heal", $routed->{at} - $t_heal));
}
is($lab->sql('db1', "SELECT count(*) FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
		  . $lab->addr('client') . "'"), '1', 'the primary lists our conmgr again');

done_testing();
