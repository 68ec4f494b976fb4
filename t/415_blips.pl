# Scenario 8b: blips of the primary's link with datagram heartbeats
# (protocol 1.2, authenticated heartbeats).  A heartbeat sent as a
# datagram during a short outage is lost, and one sent just after it gets
# through at once, where a TCP heartbeat would wait for the next
# retransmission.  Repeated outages of 0.7 x heartbeat_timeout at
# heartbeat_interval/heartbeat_timeout 200/1000 ms and of 0.5 x
# heartbeat_timeout at 100/300 ms, within the documented tolerance, cause
# no failure notice to the applications using the primary through conmgr,
# and the watchdog (default timeout_margin) ends none of their sessions;
# heartbeats go as datagrams throughout.  A real cut is still detected
# within heartbeat_timeout + 1 s and not before heartbeat_timeout -
# heartbeat_interval, as in scenario 1.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use File::Copy ();
use CmConmgr;
use CmLab;

CmLab::require_root();

my $blips = 5;    # per blip length
my $margin = 1000;    # watchdog.timeout_margin, its default

my $lab = CmLab->new;
my $secret = $lab->secret_file;
my $cm = $lab->cm_setup(
	heartbeat_interval => 200,
	heartbeat_timeout => 1000,
	timeout_margin => $margin,
	conf => "watchdog.secret_file = '$secret'\n",
	conmgr => { secret_file => "'$secret'" });

# Instance 0 (db1) as cm_ctl status --json shows it.
sub db1_status
{
	return $lab->conmgr->instance(0);
}

# The heartbeat path of our conmgr in db1's view.
sub view_path
{
	return $lab->sql('db1', "SELECT heartbeat_path FROM pgx_stat_watchdog WHERE state = 'active' "
		  . "AND conmgr_addr = '" . $lab->addr('client') . "'");
}

# Start the applications on db1 through conmgr; returns them and their
# backend PIDs.
sub start_apps
{
	my ($tag) = @_;
	(my $name = $tag) =~ s/\W+/_/g;    # a file name
	my $idle = $lab->start_cm_app('read-write', 'idle', 600, "${name}_idle");
	my $holder = $lab->start_cm_app('read-write', 'lock', 600, "${name}_lock");
	my %pid;
	foreach my $p ($idle, $holder)
	{
		my $r = $lab->wait_event($p, 'ready');
		ok($r, "$tag: application $p->{name} connected") or diag($lab->output($p));
		is($r->{host} // '', $lab->addr('db1'), "$tag: $p->{name} is on the primary") if $r;
		$pid{ $p->{name} } = $r ? $r->{pid} : 0;
	}
	ok($lab->wait_event($holder, 'locked'), "$tag: an application holds a lock");
	return ($idle, $holder, \%pid);
}

# Hold db1's link down for $len s; returns how long it was down at most
# (from just before the cut to just after the heal).
sub blip
{
	my ($len) = @_;
	$lab->cut('db1');
	my $t_before = $lab->{last_change_before};
	# hold the partition for the set time: this is the scenario, not a wait
	my $left = $len - (time - $t_before);
	usleep($left * 1_000_000) if $left > 0;
	return $lab->heal('db1') - $t_before;
}

# Repeated blips of $len s of db1's link; no notice, no termination.
sub blips
{
	my ($tag, $len) = @_;
	my $T = $cm->{heartbeat_timeout} / 1000;
	ok($lab->wait_until('datagram path', sub { (db1_status()->{heartbeat_path} // '') eq 'datagram' }, 10),
		"$tag: heartbeats go as datagrams before the blips");
	ok($lab->wait_until('view path', sub { view_path() eq 'datagram' }, 10),
		"$tag: the primary's view shows the datagram path");
	my ($idle, $holder, $pid) = start_apps($tag);
	# the applications are idle: nothing of theirs in flight (delayed
	# acknowledgements) when the first blip begins
	usleep(500_000);
	my $pglog_offset = -s $lab->pglog('db1');
	my $cmlog_offset = -s $lab->{conmgr}{out};
	my @down;
	foreach my $i (1 .. $blips)
	{
		my $down = blip($len);
		push @down, $down;
		note("neighbours after blip $i: "
			  . join(' | ', map { my $h = $_; "$h: " . join('; ', split /\n/, CmLab::sys('ip', '-n', $lab->ns($h), 'neigh', 'show')) } qw(client db1)));
		cmp_ok($down, '<', $T, "$tag: blip $i shorter than heartbeat_timeout");
		# a notice would come within heartbeat_timeout of the blip
		my $n = $lab->wait_event($idle, 'notified', $T + 1);
		ok(!$n, sprintf('%s: no notice after blip %d (link down %.3f s at most)', $tag, $i, $down))
		  or diag($lab->output($idle));
		last if $n;
	}
	note(sprintf('%s: link down for %s s', $tag, join(', ', map { sprintf('%.3f', $_) } @down)));
	ok(!$lab->event($idle, 'failed') && !$lab->event($holder, 'failed'), "$tag: no application call failed");
	foreach my $name (sort keys %$pid)
	{
		ok($lab->backend_alive('db1', $pid->{$name}), "$tag: the session of $name survived on the primary");
	}
	my @terminated = grep { /watchdog terminated \d+ session/ } split /\n/,
	  slurp_file($lab->pglog('db1'), $pglog_offset);
	is(scalar(@terminated), 0, "$tag: the terminator ended nothing") or diag(join("\n", @terminated));
	is(db1_status()->{state}, 'up', "$tag: the instance is up");
	is(db1_status()->{heartbeat_path}, 'datagram', "$tag: heartbeats still go as datagrams");
	ok($lab->wait_until('view path', sub { view_path() eq 'datagram' }, 5),
		"$tag: the primary's view still shows the datagram path");
	unlike(slurp_file($lab->{conmgr}{out}, $cmlog_offset), qr/heartbeats go over TCP/,
		"$tag: conmgr never fell back to TCP");
	$lab->stop_bg($_) foreach ($idle, $holder);
	return;
}

# The documented tolerance (docs/protocol.md, "Which path"): an outage
# shorter than heartbeat_timeout - 1.125 x heartbeat_interval - the round
# trip goes unnoticed (775 ms at 200/1000, 187 ms at 100/300).  The blips
# are 0.7 x and 0.5 x heartbeat_timeout.

# --- 200/1000
blips('200/1000', 0.7);

# --- 100/300: conmgr restarted with the new timing
$lab->stop_bg($lab->{conmgr});
# the next conmgr writes to the same file: keep this one's log for the report
File::Copy::copy($lab->{conmgr}{out}, $lab->dir . '/conmgr_200_1000.out');
$cm->{heartbeat_interval} = 100;
$cm->{heartbeat_timeout} = 300;
$lab->start_conmgr(heartbeat_interval => 100, heartbeat_timeout => 300, secret_file => "'$secret'");
ok($lab->wait_until('conmgr routes to db1', sub { ($lab->route('read-write') // {})->{host} }, 30),
	'conmgr restarted with 100/300 routes read-write requests');
blips('100/300', 0.15);
my ($idle) = start_apps('real cut');

# --- a real cut is still detected in time (as scenario 1)
{
	my $T = $cm->{heartbeat_timeout} / 1000;
	my $bound = $T + 1;
	my $early = ($cm->{heartbeat_timeout} - $cm->{heartbeat_interval}) / 1000 - 0.05;
	my $t_cut = $lab->cut('db1');
	my $t_before = $lab->{last_change_before};
	my $n = $lab->wait_event($idle, 'notified', $bound + 5);
	ok($n, 'a real cut: the application is notified');
	if ($n)
	{
		note(sprintf('notified %.3f s after the cut', $n->{at} - $t_cut));
		cmp_ok($n->{at} - $t_before, '>=', $early,
			'a real cut: not before heartbeat_timeout - heartbeat_interval');
		cmp_ok($n->{at} - $t_cut, '<=', $bound, 'a real cut: notified within heartbeat_timeout + 1 s');
	}
}

done_testing();
