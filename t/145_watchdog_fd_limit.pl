
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The watchdog out of file descriptors: accepting fails with EMFILE; the
# failure is logged (rate-limited, with a hint about ulimit -n), the worker
# does not spin, a connected peer keeps its heartbeat, and new peers are
# accepted again once descriptors are free.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CmNode;
use CmWatchdog;
use CmWire;

plan skip_all => 'prlimit (util-linux) is not installed'
  unless grep { -x "$_/prlimit" } split /:/, $ENV{PATH};

my $node = CmNode->create('fdlimit',
	conf => "watchdog.hello_timeout = 60000\nwatchdog.max_heartbeat_connections = 100\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my $start_time = $node->postmaster_start_time();

my $legit = CmWatchdog::Peer->connect($wdport);
is($legit->hello(interval => 200, timeout => 600, name => 'legit')->{type},
	'W', 'legitimate peer welcomed');

my $wpid = $node->worker_pid('watchdog');
ok($wpid, 'found the watchdog worker');

# count the worker's descriptors, then leave room for 10 more
opendir(my $dh, "/proc/$wpid/fd") or die "cannot read /proc/$wpid/fd: $!";
my $used = grep { /^\d+$/ } readdir($dh);
closedir($dh);
my $limit = $used + 10;
system('prlimit', "--pid=$wpid", "--nofile=$limit:$limit") == 0
  or die "prlimit failed";
note("watchdog uses $used descriptors; limit set to $limit");

my $offset = -s $node->logfile;
my $cpu0 = (split ' ', slurp_file("/proc/$wpid/stat"))[13];
my @idle;
for my $i (1 .. 40)
{
	my $s = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $wdport,
		Proto => 'tcp');
	push @idle, $s if $s;
	$legit->beat if $i % 10 == 0;
}
ok( $node->wait_for_log(
		qr/watchdog could not accept new heartbeat connection: Too many open files\n.*HINT:  Raise the open-files limit \(ulimit -n\)/,
		$offset),
	'running out of descriptors is logged with a hint');

# two seconds with the backlog full: the worker must sleep, not spin
my $t_end = time() + 2;
while (time() < $t_end)
{
	$legit->beat;
	usleep(100_000);
}
my $cpu1 = (split ' ', slurp_file("/proc/$wpid/stat"))[13];
my $ticks = $cpu1 - $cpu0;
note("watchdog user CPU over the episode: $ticks ticks");
cmp_ok($ticks, '<', 100, 'the worker does not spin while it cannot accept');
my $log = slurp_file($node->logfile, $offset);
my $lines = () = $log =~ /could not accept new heartbeat connection/g;
cmp_ok($lines, '<=', 2, 'the failure is not logged over and over');

close($_) for @idle;
@idle = ();
$legit->beat;

# descriptors free again: a new peer is accepted (the pending queue may
# still hold connections the kernel accepted, so poll)
my $ok = 0;
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
while (time() < $deadline)
{
	my $p = CmWatchdog::Peer->connect($wdport);
	$p->send_raw(CmWire::hello_frame(
		interval => 10000, timeout => 30000, name => 'after'));
	my $w;
	for (1 .. 10)
	{
		$w = $p->read_msg(0.2);
		$legit->beat;
		last if $w || $p->{eof};
	}
	$p->close;
	if ($w && $w->{type} eq 'W')
	{
		$ok = 1;
		last;
	}
}
ok($ok, 'new peers are accepted once descriptors are free');
$legit->beat;
is($legit->missed, 0, "all ${\ $legit->beats } heartbeats of the connected peer were answered");
is($node->postmaster_start_time(), $start_time,
	'the postmaster never restarted');

$legit->close;

# At start the watchdog says how many heartbeat connections the open-files
# limit leaves room for, beyond what PostgreSQL may open itself.
my ($limit_seen, $room) = slurp_file($node->logfile) =~
  /LOG:  watchdog started: .*; the open-files limit of (\d+) leaves room for (\d+) heartbeat connections/;
ok(defined $room && $room > 0 && $room < $limit_seen,
	'the start message gives the room the open-files limit leaves ('
	  . ($room // 'none') . ' of ' . ($limit_seen // 'none') . ')');
unlike(slurp_file($node->logfile), qr/WARNING:  watchdog: the open-files limit/,
	'no warning when the limit is high enough');
$node->stop;

# Started with a limit too low for max_heartbeat_connections (100 here):
# a warning that says so, and what to raise.  80 descriptors are enough for
# PostgreSQL itself to start.
$offset = -s $node->logfile;
system('prlimit', '--nofile=80:80', '--', 'pg_ctl', '-D', $node->data_dir,
	'-l', $node->logfile, '-w', 'start') == 0
  or die 'pg_ctl start under prlimit failed';
ok($node->wait_for_log(
		qr/WARNING:  watchdog: the open-files limit of 80 leaves room for (\d+) heartbeat connections, fewer than watchdog\.max_heartbeat_connections = 100/,
		$offset),
	'a limit too low is a warning at start, with the numbers');
like(substr(slurp_file($node->logfile), $offset),
	qr/HINT:  Raise the open-files limit of the server \(ulimit -n, or LimitNOFILE of its service\) to at least 1200/,
	'the warning says what to raise');
$node->stop;
done_testing();
