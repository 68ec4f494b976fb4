# Scenario 1: the primary's host is cut from the network (no FIN, no RST)
# while applications use it through Connection Manager:
#   (a) idle, watching PQsocket() and PQcmSocket();
#   (b) blocked in PQexec(SELECT pg_sleep(...)), never looking at
#       PQcmSocket();
#   (c) sending COPY FROM STDIN data that is no longer acknowledged.
# Each is told and its call fails within heartbeat_timeout + 1 s of the
# cut, and not before heartbeat_timeout - heartbeat_interval (the oldest
# unanswered heartbeat may have left up to one interval before the cut).  An application on the standby, whose link is
# intact, is told nothing.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;

CmLab::require_root();

my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 1000);
my $bound = $cm->{heartbeat_timeout} / 1000 + 1;
my $early = ($cm->{heartbeat_timeout} - $cm->{heartbeat_interval}) / 1000 - 0.05;

my %app;
$app{idle} = $lab->start_cm_app('read-write', 'idle');
$app{sleep} = $lab->start_cm_app('read-write', 'sleep');
$app{copy} = $lab->start_cm_app('read-write', 'copy');
my $bystander = $lab->start_cm_app('read-only', 'idle', 600, 'standby_idle');
foreach my $m (sort keys %app)
{
	my $r = $lab->wait_event($app{$m}, 'ready');
	ok($r, "($m) application connected through conmgr") or diag($lab->output($app{$m}));
	is($r->{host}, $lab->addr('db1'), "($m) application is on the primary") if $r;
}
my $r = $lab->wait_event($bystander, 'ready');
is($r->{host} // '', $lab->addr('db2'), 'a read-only application is on the standby');
ok($lab->wait_until('COPY data arrives', sub {
	$lab->sql('db1', 'SELECT count(*) FROM pg_stat_progress_copy WHERE tuples_processed > 50') >= 1;
}), '(c) COPY data is flowing before the cut');
ok(!(grep { $lab->event($app{$_}, 'failed') } keys %app), 'no application failed before the cut');

my $t_before = time;
my $t_cut = $lab->cut('db1');

# wait past the bound, so that a late failure is measured, not just missed
$lab->wait_until('every application failed',
	sub { !(grep { !$lab->event($app{$_}, 'failed') } keys %app) }, $bound + 5);

foreach my $m (sort keys %app)
{
	my $f = $lab->event($app{$m}, 'failed');
	ok($f, "($m) the application's call failed") or diag($lab->output($app{$m}));
	next unless $f;
	note(sprintf("(%s) %s failed %.3f s after the cut: %s", $m, $f->{call},
		$f->{at} - $t_cut, $f->{error}));
	cmp_ok($f->{at}, '>=', $t_before, "($m) the failure came after the cut");
	# heartbeats sent up to one interval before the cut may go unanswered
	cmp_ok($f->{at} - $t_before, '>=', $early,
		"($m) not before heartbeat_timeout - heartbeat_interval (no early alarm)");
	cmp_ok($f->{at} - $t_cut, '<=', $bound,
		"($m) the call failed within heartbeat_timeout + 1 s of the cut");
	is($f->{status}, 'bad', "($m) the connection is reported bad");
}
# the request that was running fails as the client documentation says
my $sf = $lab->event($app{sleep}, 'failed');
if ($sf)
{
	is($sf->{result}, 'PGRES_FATAL_ERROR', '(b) the running query reports PGRES_FATAL_ERROR');
	like($sf->{sqlstate}, qr/^(57P01|-)$/, '(b) with SQLSTATE 57P01 or none');
}
my $n = $lab->event($app{idle}, 'notified');
ok($n, '(a) the idle application saw its conmgr socket become readable');
cmp_ok($n->{at} - $t_cut, '<=', $bound, '(a) notified within heartbeat_timeout + 1 s')
  if $n;

ok(!$lab->event($bystander, 'notified') && !$lab->event($bystander, 'failed'),
	'the application on the standby was told nothing');
ok($lab->backend_alive('db2', $r->{pid} // 0), 'its session on the standby is intact')
  if $r;

done_testing();
