
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# A peer holding the secret streams session registrations (most of them
# rejected: no such backend) as fast as the watchdog takes them, in
# precise mode.  The watchdog must keep answering another conmgr's
# heartbeats promptly, and the log must not grow with the flood: each
# rejection used to write a LOG line (hundreds of thousands in seconds)
# and rebuild a backend-status snapshot.  In address mode registrations
# are not looked at at all.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IO::Select;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use POSIX ();

use CmNode;
use CmWatchdog;
use CmWire;

my $secret = 'the shared secret of the flood test';
my $node = CmNode->create('flood',
	secret => $secret,
	conf => "watchdog.termination_mode = 'precise'\n"
	  . "log_min_messages = warning\n");
my $wdport = $node->watchdog_port;
$node->start;

sub peer
{
	my ($name, $interval) = @_;
	my $p = CmWatchdog::Peer->connect($wdport);
	setsockopt($p->sock, IPPROTO_TCP, TCP_NODELAY, 1);
	my ($w) = $p->authenticate(secret => $secret, interval => $interval,
		timeout => 60000, name => $name);
	die "$name was not welcomed" unless $w && $w->{type} eq 'W';
	return $p;
}

# the measuring conmgr: a heartbeat every 5 ms
my $real = peer('real', 4);
my $seq = 0;

sub round_trips
{
	my ($seconds) = @_;
	my @rtt;
	my $end = time + $seconds;
	while (time < $end)
	{
		my $t0 = time;
		my $r = $real->heartbeat(++$seq);
		die 'heartbeat not answered' unless $r && $r->{type} eq 'b';
		push @rtt, (time - $t0) * 1000;
		usleep(5000);
	}
	return sort { $a <=> $b } @rtt;
}

sub p99 { my @v = @_; return $v[ int(0.99 * $#v) ]; }

my @quiet = round_trips(2);
note(sprintf('without the flood: %d round trips, median %.2f ms, p99 %.2f ms',
	scalar @quiet, $quiet[ $#quiet / 2 ], p99(@quiet)));

# the flood, from a child process
my $offset = -s $node->logfile;
my $flooder = peer('flooder', 30000);
my $countfile = PostgreSQL::Test::Utils::tempdir() . '/sent';
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0)
{
	my $s = $flooder->sock;
	$s->blocking(1);
	my $end = time + 5;
	my $n = 0;
	local $SIG{PIPE} = 'IGNORE';
	while (time < $end)
	{
		# 100 registrations of backends that do not exist, sealed
		my $batch = join '',
		  map { $flooder->seal(CmWire::register_frame('J',
				4_000_000 + ($n++ % 100000), '127.0.0.1', 40000)) }
		  1 .. 100;
		while (length $batch)
		{
			my $w = syswrite($s, $batch);
			POSIX::_exit(1) unless defined $w;
			substr($batch, 0, $w) = '';
		}
	}
	open my $fh, '>', $countfile or POSIX::_exit(1);
	print $fh $flooder->{seq_out};
	close $fh;
	POSIX::_exit(0);
}
my @busy = round_trips(5);
waitpid($pid, 0);
is($? >> 8, 0, 'the flooder wrote everything');
$flooder->{seq_out} = slurp_file($countfile);    # the child sealed them
note("the flooder sent $flooder->{seq_out} sealed frames");
note(sprintf('during the flood: %d round trips, median %.2f ms, p99 %.2f ms',
	scalar @busy, $busy[ $#busy / 2 ], p99(@busy)));
cmp_ok(p99(@busy), '<', 10, 'heartbeat round trips stay under 10 ms at p99 during the flood');

my $log = slurp_file($node->logfile, $offset);
my $lines = () = $log =~ /rejected a session registration/g;
note("log: " . length($log) . " bytes, $lines rejection lines");
cmp_ok(length($log), '<', 8192, 'the log grew by less than 8 kB');
cmp_ok($lines, '<=', 10, 'at most 10 rejection lines in 10 seconds');
like($log, qr/there is no backend with PID \d+/, 'a rejection is still logged, with its reason');

# the flooder is still welcome: nothing it did was a violation
my $r = $flooder->heartbeat(1);
ok($r && $r->{type} eq 'b', 'the flooding peer is still answered');

done_testing();
