
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# A conmgr that leaves cleanly is not lost, even when its connection is
# reset right after its goodbye: conmgr stops, its last heartbeat and its
# goodbye are in the watchdog's input together, and the reply to that
# heartbeat meets the reset (a socket closed with unread data answers with
# RST).  The goodbye still counts: the slot is released, nothing is
# terminated, no "lost" line.  A connection reset without a goodbye is
# still a lost conmgr.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::More;
use Time::HiRes qw(usleep);

use CmNode;
use CmWatchdog;
use CmWire;

my $node = CmNode->create('goodbye_reset',
	conf => "watchdog.timeout_margin = 500\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');

# A TCP session from 127.0.0.1: what a lost conmgr of that host would end.
my $bystander = CmWatchdog::Session->start(
	'host=127.0.0.1 port=' . $node->port . ' dbname=postgres');
my $bystander_pid = $bystander->query('SELECT pg_backend_pid()');

sub alive
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $bystander_pid");
}

# Wait up to 10 s for the server log after offset to match.
sub log_matches
{
	my ($re, $offset) = @_;
	for (1 .. 100)
	{
		return 1 if slurp_file($node->logfile, $offset) =~ $re;
		usleep(100_000);
	}
	return 0;
}

# Write frames in one go, then close with a reset (SO_LINGER 0).
sub frames_then_reset
{
	my ($peer, @frames) = @_;
	my $sock = $peer->sock;
	$peer->send_raw(join('', @frames)) or die "could not send: $!";
	setsockopt($sock, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0))
	  or die "SO_LINGER: $!";
	close($sock);
	return;
}

for my $round (1 .. 5)
{
	my $offset = -s $node->logfile;
	my $peer = CmWatchdog::Peer->connect($wdport);
	is($peer->hello(interval => 200, timeout => 1000, name => "leaver$round")->{type},
		'W', "round $round: welcomed");
	ok($peer->heartbeat(1), "round $round: a heartbeat answered");
	frames_then_reset($peer,
		CmWire::heartbeat_frame(2, 0),
		CmWire::goodbye_frame('bye'));
	ok(log_matches(qr/conmgr "leaver$round" at \S+ disconnected \(goodbye, shutdown\)/,
			$offset),
		"round $round: the goodbye counts although the connection was reset");
	ok($node->wait_for_view_count("conmgr_name = 'leaver$round' AND state = 'active'", 0),
		"round $round: its slot is not active any more");
	unlike(slurp_file($node->logfile, $offset), qr/"leaver$round" at \S+ lost/,
		"round $round: not declared lost");
}
is(alive(), '1', 'the sessions of that host were not ended');

# Reset without a goodbye: lost, as before.
{
	my $offset = -s $node->logfile;
	my $peer = CmWatchdog::Peer->connect($wdport);
	is($peer->hello(interval => 200, timeout => 1000, name => 'vanished')->{type},
		'W', 'no goodbye: welcomed');
	ok($peer->heartbeat(1), 'no goodbye: a heartbeat answered');
	frames_then_reset($peer, CmWire::heartbeat_frame(2, 0));
	ok(log_matches(qr/conmgr "vanished" at \S+ lost/, $offset),
		'a reset without a goodbye: the conmgr is lost');
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $bystander_pid"),
		'and the sessions of its host are ended');
}

eval { $bystander->quit; };
$node->stop;
done_testing();
