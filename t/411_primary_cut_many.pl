# Scenario 1 at scale: one heartbeat connection per client host serves
# every application of that host.  Sixty applications are connected to the
# primary through conmgr, the primary's watchdog sees a single conmgr
# peer, and when the primary's host is cut every one of them is told and
# its call fails within heartbeat_timeout + 1 s.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $napps = 60;
my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 1000,
	conf => "max_connections = 100\n");
my $bound = $cm->{heartbeat_timeout} / 1000 + 1;

my @apps;
push @apps, $lab->start_cm_app('read-write', $_ % 2 ? 'idle' : 'sleep', 600, "app$_")
  foreach 1 .. $napps;
my $ready = 0;
foreach my $a (@apps)
{
	my $r = $lab->wait_event($a, 'ready');
	$ready++ if $r && $r->{host} eq $lab->addr('db1');
}
is($ready, $napps, "$napps applications are connected to the primary through conmgr");
is($lab->sql('db1', "SELECT count(*) FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
		  . $lab->addr('client') . "'"), '1',
	'the primary sees one heartbeat connection for the whole client host');
cmp_ok($lab->sql('db1', "SELECT count(*) FROM pg_stat_activity WHERE client_addr = '"
		  . $lab->addr('client') . "'"), '>=', $napps, 'and all their sessions');

my $t_before = time;
my $t_cut = $lab->cut('db1');
$lab->wait_until('every application failed',
	sub { !(grep { !$lab->event($_, 'failed') } @apps) }, $bound + 5);

my ($failed, $late, $early, $worst) = (0, 0, 0, 0);
foreach my $a (@apps)
{
	my $f = $lab->event($a, 'failed') or next;
	$failed++;
	my $d = $f->{at} - $t_cut;
	$early++ if $f->{at} < $t_before;
	$late++ if $d > $bound;
	$worst = $d if $d > $worst;
}
is($failed, $napps, 'every application was told and its call failed');
is($early, 0, 'none before the cut');
is($late, 0, 'none later than heartbeat_timeout + 1 s');
note(sprintf("the last of %d applications failed %.3f s after the cut", $failed, $worst));

done_testing();
