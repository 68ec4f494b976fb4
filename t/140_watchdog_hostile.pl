
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Hostile input: garbage, truncated and oversized frames, a slow-loris
# peer, wrong protocol versions, 1000 idle connections.  The worker stays
# up, the postmaster never restarts, and a legitimate peer keeps its
# heartbeat answered throughout.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmNode;
use CmWatchdog;
use CmWire;

my $hello_timeout = 1000;    # ms
my $margin = 3.0;            # s

my $node = CmNode->create('hostile',
	conf => "watchdog.hello_timeout = $hello_timeout\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my $start_time = $node->postmaster_start_time();

# The legitimate peer: it must be answered at every step.  Its server
# timeout is 200 + 600 + 1000 ms; every step below beats at least that often.
my $legit = CmWatchdog::Peer->connect($wdport);
is($legit->hello(interval => 200, timeout => 600, name => 'legit')->{type},
	'W', 'legitimate peer welcomed');

# Send bytes on a new connection; return the peer, the first message
# received (if any) and whether the watchdog closed the connection.
sub attack
{
	my ($bytes, %o) = @_;
	my $p = CmWatchdog::Peer->connect($wdport);
	$p->send_raw($bytes) if length $bytes;
	$legit->beat;
	my $first = $p->read_msg(1.0);
	my $closed = $p->{eof} || $p->wait_closed($o{wait} // 5);
	$legit->beat;
	$p->close;
	return ($first, $closed);
}

my $hello = CmWire::hello_frame(name => 'x');

# HTTP request
my ($m, $closed) = attack("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
ok($closed, 'HTTP request: connection closed');
is($m && $m->{reason}, CmWire::REASON_PROTOCOL,
	'HTTP request: refused as a protocol violation');

# random garbage
srand(20260);
my $garbage = join '', map { chr(int(rand(256))) } 1 .. 4096;
($m, $closed) = attack($garbage);
ok($closed, 'random garbage: connection closed');

# oversized frame: length far above the maximum
($m, $closed) = attack(pack('A1 N', 'H', 0x7fffffff) . ('x' x 100));
ok($closed, 'oversized frame: connection closed');
is($m && $m->{reason}, CmWire::REASON_PROTOCOL,
	'oversized frame: refused as a protocol violation');

# oversized by one byte
($m, $closed) = attack(pack('A1 N', 'H', 2048));
ok($closed, 'frame one byte too long: connection closed');

# length below the header
($m, $closed) = attack(pack('A1 N', 'H', 3));
ok($closed, 'length below 4: connection closed');

# messages that the watchdog never accepts from a peer
($m, $closed) = attack(pack('A1 N n N N C C', 'W', 16, 0x0100, 1000, 5000, 0, 0));
ok($closed, 'a welcome sent to the watchdog: connection closed');
($m, $closed) = attack(pack('A1 N N Q>', 'B', 16, 1, 1));
ok($closed, 'heartbeat before hello: connection closed');
is($m && $m->{reason}, CmWire::REASON_PROTOCOL,
	'heartbeat before hello: refused as a protocol violation');

# malformed hellos
($m, $closed) = attack(CmWire::hello_frame(magic => 0x12345678));
ok($closed && $m && $m->{reason} == CmWire::REASON_PROTOCOL,
	'wrong magic: refused');
my $nul = $hello;
$nul =~ s/x$/\0/;
($m, $closed) = attack($nul);
ok($closed && $m && $m->{reason} == CmWire::REASON_PROTOCOL,
	'NUL byte in the name: refused');
($m, $closed) = attack($hello . 'trailing');
ok($closed, 'bytes after the hello that form no frame: connection closed');
($m, $closed) = attack(
	CmWire::hello_frame(interval => 3000, timeout => 1000));
ok($closed && $m && $m->{reason} == CmWire::REASON_PROTOCOL,
	'timeout below interval: refused');
($m, $closed) = attack(
	CmWire::hello_frame(min_version => 0x0900, max_version => 0x0900));
ok($closed && $m && $m->{reason} == CmWire::REASON_VERSION,
	'wrong protocol version: refused with reason version');
($m, $closed) = attack(CmWire::hello_frame(
	min_version => 0x0100, max_version => 0x0000));
ok($closed && $m && $m->{reason} == CmWire::REASON_PROTOCOL,
	'inverted version range: refused');

# truncated hello, then the peer leaves
my $offset = -s $node->logfile;
my $trunc = CmWatchdog::Peer->connect($wdport);
$trunc->send_raw(substr($hello, 0, 9));
$legit->beat;
$trunc->close;
ok( $node->wait_for_log(qr/incomplete heartbeat hello from 127\.0\.0\.1:\d+/,
		$offset),
	'truncated hello is logged');
$legit->beat;

# slow loris: a valid hello, one byte every 300 ms
my $loris = CmWatchdog::Peer->connect($wdport);
my $t0 = time();
my $loris_closed;
for my $i (0 .. length($hello) - 1)
{
	last unless $loris->send_raw(substr($hello, $i, 1));
	$legit->beat;
	if ($loris->read_msg(0.3) || $loris->{eof})
	{
		$loris_closed = time() - $t0 if $loris->{eof} || $loris->wait_closed(1);
		last;
	}
}
ok(defined $loris_closed, 'slow loris: connection closed before its hello completed');
cmp_ok($loris_closed // 999, '>=', $hello_timeout / 1000 - 0.05,
	'slow loris: not closed before watchdog.hello_timeout');
cmp_ok($loris_closed // 999, '<=', $hello_timeout / 1000 + $margin,
	'slow loris: closed within watchdog.hello_timeout + margin');
$loris->close;

# a welcomed peer that turns hostile is dropped (and lost), nobody else
my $turncoat = CmWatchdog::Peer->connect($wdport);
is($turncoat->hello(interval => 200, timeout => 600, name => 'turncoat')->{type},
	'W', 'second peer welcomed');
$offset = -s $node->logfile;
$turncoat->send_raw(pack('A1 N', 'B', 100000));
ok($turncoat->wait_closed, 'peer sending an oversized frame is closed');
ok( $node->wait_for_lost('turncoat', qr/protocol violation/, $offset),
	'and declared lost');
$legit->beat;

# text from a peer cannot forge server log lines
my $liar = CmWatchdog::Peer->connect($wdport);
is($liar->hello(interval => 200, timeout => 600, name => "li\nar")->{type},
	'W', 'peer with a newline in its name welcomed');
$offset = -s $node->logfile;
$liar->goodbye("bye\nLOG:  forged line");
ok( $node->wait_for_log(
		qr/conmgr "li\?ar" at 127\.0\.0\.1:\d+ disconnected \(goodbye, shutdown\)\n.*DETAIL:  conmgr said: bye\?LOG:  forged line\n/,
		$offset),
	'control characters from a peer are not written to the log');
$liar->close;
$legit->beat;

# a welcomed peer that floods heartbeats and never reads the replies: its
# output backlog is bounded, it is dropped, nobody else waits for it
my $flood = CmWatchdog::Peer->connect($wdport);
is($flood->hello(interval => 200, timeout => 600, name => 'flood')->{type},
	'W', 'flooding peer welcomed');
$offset = -s $node->logfile;
{
	my $fsock = $flood->sock;
	$fsock->blocking(0);
	my $chunk = join '',
	  map { CmWire::heartbeat_frame($_, $_) } 1 .. 1000;
	my $sent = 0;
	my $pending = '';
	my $fdeadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	local $SIG{PIPE} = 'IGNORE';
	while (time() < $fdeadline && $sent < 200_000_000)
	{
		$pending = $chunk if $pending eq '';
		my $n = syswrite($fsock, $pending);
		if (defined $n)
		{
			$sent += $n;
			substr($pending, 0, $n) = '';
			next;
		}
		last unless $!{EAGAIN} || $!{EWOULDBLOCK};
		$legit->beat;
		IO::Select->new($fsock)->can_write(0.05);
		last if $node->log_contains(qr/conmgr "flood" at 127\.0\.0\.1:\d+ lost/, $offset);
	}
}
# whichever comes first: heartbeats above the announced rate, or the
# backlog of replies it does not read
ok( $node->wait_for_lost(
		'flood',
		qr/conmgr does not read the heartbeat replies|protocol violation: heartbeats faster than the announced interval/,
		$offset),
	'a peer that floods heartbeats and does not read is dropped');
$flood->close;
$legit->beat;

# 1000 idle connections
my @idle;
my $opened = 0;
for my $i (1 .. 1000)
{
	my $s = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $wdport,
		Proto => 'tcp');
	last unless $s;
	push @idle, $s;
	$opened++;
	$legit->beat if $i % 50 == 0;
}
is($opened, 1000, '1000 idle connections opened');
my $late = CmWatchdog::Peer->connect($wdport);
my $lw = $late->hello(interval => 200, timeout => 600, name => 'late');
ok($lw && $lw->{type} eq 'W', 'a peer connecting during the flood is welcomed');
$legit->beat;
my $r = $late->heartbeat(1);
ok($r && $r->{type} eq 'b', 'and its heartbeat is answered');
# the idle connections are closed: the oldest at once, the rest at their
# hello timeout
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
my $sel = IO::Select->new(@idle);
my %eof;
while (time() < $deadline && keys(%eof) < @idle)
{
	for my $s ($sel->can_read(0.2))
	{
		my $n = sysread($s, my $buf, 4096);
		if (!$n)
		{
			$eof{ fileno($s) } = 1;
			$sel->remove($s);
		}
	}
	$legit->beat;
	$late->heartbeat(1);
}
is(scalar(keys %eof), 1000, 'the watchdog closed all 1000 idle connections');
close($_) for @idle;
$legit->beat;

ok( $node->poll_query_until(
		'postgres',
		"SELECT heartbeats >= ${\ $legit->beats } FROM pgx_stat_watchdog WHERE conmgr_name = 'legit' AND state = 'active'"
	),
	'the legitimate peer is still active in the view');
$legit->beat;
is($legit->missed, 0, "every one of ${\ $legit->beats } heartbeats of the legitimate peer was answered");

is($node->postmaster_start_time(), $start_time,
	'the postmaster never restarted');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminating any other active server processes/,
	'no crash recovery');
unlike($log, qr/(was terminated by signal|exited with exit code)/,
	'no worker died');
my $starts = () = $log =~ /watchdog started:/g;
is($starts, 1, 'the watchdog worker started once and kept running');

$late->close;
$legit->close;
$node->stop;
done_testing();
