# Baselines: what plain libpq and a plain PostgreSQL server do when the
# network is cut, in the same lab and with the same kind of partition as
# the Connection Manager scenarios.  Measured and recorded, not asserted
# (docs/failure-detection.md): the assertions here only check that each
# measurement is sound (every session was established before the cut,
# nothing failed before it, every result is a time after the cut or an
# honest "more than N s").
#
# Part 1, the primary's host is cut; the application's view (scenario 1):
#   applications idle / waiting on pg_sleep / sending COPY data, each with
#   libpq's defaults, with keepalives tuned to a 2 s budget, and with
#   keepalives and tcp_user_timeout tuned to that budget.
# Part 2, the client's host is cut; the server's view (scenario 2):
#   sessions idle in a transaction holding a lock, and sessions running
#   pg_sleep, with the server's defaults, with tcp_keepalives_* tuned, and
#   with tcp_keepalives_* plus client_connection_check_interval; when the
#   backend ends and when a waiter on the server gets the lock.
#
# Each part waits at most CM_LAB_BASELINE_CAP seconds (default 60) after
# the cut.  Results: notes in the test log and
# tmp_check/log/failure_baselines.txt.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;
use CmProg;

CmLab::require_root();

my $cap = $ENV{CM_LAB_BASELINE_CAP} // 60;
my $budget_ms = 2000;    # the detection budget given to the tuned settings
my $budget_s = $budget_ms / 1000;

my $lab = CmLab->new;
$lab->init_primary('db1');

# the kernel's TCP settings in the lab (per network namespace)
my $sysctl = join(' ', map {
	my $v = `ip netns exec @{[ $lab->ns('client') ]} cat /proc/sys/net/ipv4/$_`;
	chomp $v;
	"$_=$v";
} qw(tcp_retries2 tcp_keepalive_time tcp_keepalive_intvl tcp_keepalive_probes tcp_syn_retries));
note("lab TCP settings: $sysctl");

my %server_conf = (
	default => '',
	keepalives => "-c tcp_keepalives_idle=1 -c tcp_keepalives_interval=1 "
	  . "-c tcp_keepalives_count=" . ($budget_s - 1),
	'keepalives+check' => "-c tcp_keepalives_idle=1 -c tcp_keepalives_interval=1 "
	  . "-c tcp_keepalives_count=" . ($budget_s - 1)
	  . " -c client_connection_check_interval=1000");
my %schema;
my $i = 0;
my $setup = '';
foreach my $cfg ('client', sort keys %server_conf)
{
	my $s = "s" . $i++;
	$schema{$cfg} = $s;
	$setup .= "CREATE SCHEMA $s; CREATE TABLE $s.lab_copy (t text); "
	  . "CREATE TABLE $s.lab_lock (i int); ";
}
$lab->sql('db1', $setup);

my @results;    # [ part, setting, situation, result ]
my $report = '';

sub result_line
{
	my ($part, $setting, $what, $secs) = @_;
	my $r = defined $secs ? sprintf("%.1f s", $secs) : "more than $cap s";
	push @results, [ $part, $setting, $what, $r ];
	my $line = sprintf("%-28s %-34s %-44s %s", $part, $setting, $what, $r);
	note($line);
	$report .= "$line\n";
	return;
}

# ---------------------------------------------------------------------------
# Part 1: the primary's host is cut while applications use it.

my %client_settings = (
	'libpq defaults' => '',
	"keepalives ${budget_s}s" => "keepalives=1 keepalives_idle=1 "
	  . "keepalives_interval=1 keepalives_count=" . ($budget_s - 1),
	"keepalives+tcp_user_timeout ${budget_s}s" => "keepalives=1 keepalives_idle=1 "
	  . "keepalives_interval=1 keepalives_count=" . ($budget_s - 1)
	  . " tcp_user_timeout=$budget_ms");

my @apps;
foreach my $setting (sort keys %client_settings)
{
	foreach my $mode (qw(idle sleep copy))
	{
		my $ci = $lab->conninfo('db1',
			"options='-c search_path=$schema{client}' $client_settings{$setting}");
		my $app = $lab->start_app('lab_app', $ci, $mode, 600);
		push @apps, { app => $app, setting => $setting, mode => $mode };
	}
}
foreach my $a (@apps)
{
	ok($lab->wait_event($a->{app}, 'ready'), "part 1: $a->{setting} $a->{mode}: connected")
	  or diag($lab->output($a->{app}));
}
# COPY data is flowing before the cut
$lab->wait_until('COPY data arrives', sub {
	$lab->sql('db1', "SELECT count(*) FROM pg_stat_progress_copy WHERE tuples_processed > 50")
	  >= scalar(keys %client_settings);
});

my $t_before = time;
my $t_cut = $lab->cut('db1');
my $deadline = $t_cut + $cap;
while (time < $deadline)
{
	last unless grep { !$lab->event($_->{app}, 'failed') } @apps;
	usleep(100_000);
}
my %what = (
	idle => 'idle (poll on PQsocket)',
	sleep => 'waiting on SELECT pg_sleep',
	copy => 'sending COPY FROM STDIN data');
foreach my $a (@apps)
{
	my $f = $lab->event($a->{app}, 'failed');
	if ($f)
	{
		cmp_ok($f->{at}, '>=', $t_before,
			"part 1: $a->{setting} $a->{mode}: the failure came after the cut");
		$a->{secs} = $f->{at} - $t_cut;
		note("part 1: $a->{setting} $a->{mode}: $f->{call}: $f->{error}");
	}
	result_line('primary host cut (client)', $a->{setting}, $what{ $a->{mode} },
		$a->{secs});
	$lab->kill9($a->{app});
}
$lab->heal('db1');
ok($lab->wait_until('db1 reachable', sub { $lab->reachable('client', 'db1') }),
	'part 1: the link healed');

# ---------------------------------------------------------------------------
# Part 2: the client's host is cut while it has sessions on the primary.

# sessions left by part 1 must not hold anything part 2 measures
$lab->sql('db1', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	  . "WHERE client_addr = '" . $lab->addr('client') . "'");

my @sessions;
foreach my $cfg (sort keys %server_conf)
{
	foreach my $mode (qw(lock sleep))
	{
		my $opts = "-c search_path=$schema{$cfg} $server_conf{$cfg}";
		my $app = $lab->start_app('lab_app', $lab->conninfo('db1', "options='$opts'"),
			$mode, 600);
		push @sessions, { app => $app, cfg => $cfg, mode => $mode };
	}
}
my %waiter;
foreach my $s (@sessions)
{
	my $ev = $lab->wait_event($s->{app}, $s->{mode} eq 'lock' ? 'locked' : 'ready');
	ok($ev, "part 2: $s->{cfg} $s->{mode}: session established")
	  or diag($lab->output($s->{app}));
	$s->{pid} = $lab->event($s->{app}, 'ready')->{pid} if $ev;
}
# a local session on the server waits for each lock
foreach my $cfg (sort keys %server_conf)
{
	my $w = $lab->start_bg('db1', "waiter_$schema{$cfg}", CmProg::lab_program('lab_app'),
		$lab->local_conninfo('db1', "options='-c search_path=$schema{$cfg}'"),
		'lock', 600);
	$waiter{$cfg} = $w;
	ok($lab->wait_event($w, 'ready'), "part 2: $cfg: local waiter connected");
}
ok($lab->wait_until('waiters blocked', sub {
	$lab->sql('db1', "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
	  == scalar(keys %server_conf);
}), 'part 2: every waiter is blocked on its lock');
ok(!(grep { $lab->event($_, 'locked') } values %waiter), 'part 2: no waiter has its lock yet');
my @pids = map { $_->{pid} } grep { $_->{pid} } @sessions;

$t_before = time;
$t_cut = $lab->cut('client');
$deadline = $t_cut + $cap;
my %gone;
while (time < $deadline)
{
	my $alive = $lab->sql('db1', "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity "
		  . "WHERE pid IN (" . join(',', @pids) . ")");
	my %alive = map { $_ => 1 } split /\s+/, $alive;
	my $t = time;
	foreach my $pid (@pids)
	{
		$gone{$pid} //= $t unless $alive{$pid};
	}
	last if keys %gone == @pids && !(grep { !$lab->event($_, 'locked') } values %waiter);
	usleep(100_000);
}
foreach my $s (@sessions)
{
	# the exact time from the server log; the poll above only bounds it
	my $t = $gone{ $s->{pid} // 0 };
	$t = $lab->backend_end_time('db1', $s->{pid}) // $t if defined $t;
	cmp_ok($t, '>', $t_before, "part 2: $s->{cfg} $s->{mode}: session ended after the cut")
	  if defined $t;
	my $what = $s->{mode} eq 'lock'
	  ? 'idle in transaction: backend ends'
	  : 'running pg_sleep: backend ends';
	result_line('client host cut (server)', "server $s->{cfg}", $what,
		defined $t ? $t - $t_cut : undef);
	if ($s->{mode} eq 'lock')
	{
		my $l = $lab->event($waiter{ $s->{cfg} }, 'locked');
		cmp_ok($l->{at}, '>', $t_before, "part 2: $s->{cfg}: lock granted after the cut")
		  if $l;
		result_line('client host cut (server)', "server $s->{cfg}",
			'lock held by the client released', $l ? $l->{at} - $t_cut : undef);
	}
}
my $log = slurp_file($lab->pglog('db1'));
note("server log lines about lost clients:\n"
	  . join("\n", grep { /could not receive|connection to client lost|Connection timed out/ }
		  split /\n/, $log));
$lab->heal('client');

my $file = "$PostgreSQL::Test::Utils::log_path/failure_baselines.txt";
open my $fh, '>', $file or die "$file: $!";
print $fh "# measured by t/490_baselines.pl, cap $cap s, "
  . scalar(gmtime) . " UTC, kernel " . `uname -r`;
print $fh "# $sysctl\n";
print $fh $report;
close $fh;
ok(@results == @apps + @sessions + keys %server_conf, 'every measurement has a result');

done_testing();
