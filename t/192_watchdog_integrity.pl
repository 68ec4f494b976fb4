
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Integrity of the heartbeat channel after the handshake, against a real
# server.  A relay on the path lets the authenticated handshake through,
# then injects frames (a goodbye, which would keep the terminator from ever
# running; garbage, which used to get the host's sessions ended), replays,
# drops or alters one.  The watchdog must detect each one, act on none of
# them, and end no session for it: the connection is closed and the slot
# waits for conmgr to reconnect until its server timeout would have expired
# anyway.  A conmgr that comes back keeps its host's sessions; one that
# does not is declared lost at that deadline, not before, like any lost
# host.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CmNode;
use CmWatchdog;
use CmWire;
use IO::Socket::INET;

my $secret = 'the shared secret of the integrity test';
my $node = CmNode->create('integrity',
	secret => $secret,
	conf => "watchdog.timeout_margin = 500\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');

# interval 200 + timeout 1000 + margin 500
my %hb = (interval => 200, timeout => 1000);
my $server_timeout = 1.7;

# The victim: a TCP session from 127.0.0.1, the peers' address.
my $victim = CmWatchdog::Session->start(
	'host=127.0.0.1 port=' . $node->port . ' dbname=postgres');
my $victim_pid = $victim->query('SELECT pg_backend_pid()');

sub victim_alive
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $victim_pid") eq '1';
}

sub state_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(state, ',' ORDER BY state) FROM pgx_stat_watchdog WHERE conmgr_name = '$name'");
}

my $seq = 0;

sub peer_up
{
	my ($name, $incarnation) = @_;
	my $p = CmWatchdog::Peer->connect($wdport);
	my ($w) = $p->authenticate(secret => $secret, %hb, name => $name,
		incarnation => $incarnation // 1234);
	ok($w && $w->{type} eq 'W', "$name: welcomed");
	my $r = $p->heartbeat(++$seq);
	ok($r && $r->{type} eq 'b' && $r->{seq} == $seq, "$name: a sealed heartbeat is answered");
	return $p;
}

# Inject raw bytes into an authenticated connection and check the outcome.
sub inject
{
	my ($name, $how, $bytes, $log_re) = @_;
	my $offset = -s $node->logfile;
	my $p = peer_up($name);
	$p->send_raw(ref $bytes eq 'CODE' ? $bytes->($p) : $bytes);
	ok( $node->wait_for_log(
			qr/heartbeat connection of conmgr "$name" at 127\.0\.0\.1:\d+ failed its integrity check: $log_re/,
			$offset),
		"$name: $how is detected");
	ok($p->wait_closed, "$name: the connection is closed");
	$p->close;
	is(state_of($name), 'reconnecting', "$name: the slot waits for conmgr to reconnect");

	# another conmgr process of the same host and name (another
	# incarnation) does not release it
	my $other = peer_up($name, 5678);
	is(state_of($name), 'active,reconnecting',
		"$name: another conmgr process of that host leaves the slot waiting");
	$other->goodbye;
	$other->wait_closed;
	$other->close;

	# conmgr comes back: its slot is released, nothing is ended
	my $back = peer_up($name);
	ok( $node->wait_for_log(
			qr/conmgr "$name" at 127\.0\.0\.1:\d+ reconnected within its server timeout/,
			$offset),
		"$name: the reconnected conmgr releases its old slot");
	is(state_of($name), 'active', "$name: one active row");
	$back->goodbye;
	$back->wait_closed;
	$back->close;
	$node->wait_for_view_count("conmgr_name = '$name'", 0);
	my $log = slurp_file($node->logfile, $offset);
	unlike($log, qr/lost:|terminated \d+ session/, "$name: no loss, nothing terminated");
	ok(victim_alive(), "$name: the session from the same address is alive");
	return;
}

# an injected goodbye: would otherwise free the slot, so that the host's
# sessions are never ended when it really vanishes
inject('inj-goodbye', 'an injected goodbye',
	CmWire::goodbye_frame('bye'),
	qr/a frame whose authentication tag is wrong/);

# garbage: used to be a protocol violation, the peer lost, its host's
# sessions ended
inject('inj-garbage', 'injected garbage', 'B' . pack('N', 60) . ('x' x 56),
	qr/a frame whose authentication tag is wrong/);

# a forged unregistration
inject('inj-unregister', 'an injected unregistration',
	CmWire::register_frame('K', $victim_pid, '127.0.0.1', 5432),
	qr/a frame whose authentication tag is wrong/);

# a sealed heartbeat with one bit changed
inject('altered', 'an altered frame',
	sub {
		my ($p) = @_;
		my $f = $p->seal(CmWire::heartbeat_frame(99, 0));
		substr($f, 8, 1) = chr(ord(substr($f, 8, 1)) ^ 1);
		return $f;
	},
	qr/a frame whose authentication tag is wrong/);

# a frame dropped on the way: the next one is out of sequence
inject('dropped', 'a dropped frame',
	sub {
		my ($p) = @_;
		$p->seal(CmWire::heartbeat_frame(98, 0));    # never sent
		return $p->seal(CmWire::heartbeat_frame(99, 0));
	},
	qr/a frame with sequence number \d+ where \d+ was due/);

# --- handshakes left hanging from another address fill the pending
# connections; a real conmgr is still welcomed at once ---
SKIP:
{
	my @squat;
	my $probe = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $wdport,
		LocalAddr => '127.0.0.2', Proto => 'tcp');
	skip 'cannot bind 127.0.0.2', 3 unless $probe;
	close $probe;
	my $offset = -s $node->logfile;
	for my $i (1 .. 150)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $wdport,
			LocalAddr => '127.0.0.2', Proto => 'tcp') or last;
		my $q = bless { sock => $s, buf => '', port => $wdport }, 'CmWatchdog::Peer';
		$q->send_raw(CmWire::hello_frame(%hb, name => "squat$i",
			auth => CmWire::AUTH_HMAC_SHA256, nonce => CmWatchdog::random_nonce()));
		push @squat, $q;
	}
	ok( $node->wait_for_log(
			qr/too many heartbeat connections waiting for their handshake \(\d+\); closing the oldest of the address with the most, 127\.0\.0\.2:\d+/,
			$offset),
		'squatting: the oldest hanging handshakes of the flooding address are closed');
	my $t0 = time;
	my $real = peer_up('real');
	my $took = time - $t0;
	cmp_ok($took, '<', 1.0, sprintf('squatting: a real conmgr is welcomed at once (%.3f s)', $took));
	$real->goodbye;
	$real->wait_closed;
	$_->close foreach @squat;
}

# --- a flood of heartbeats from a peer holding the secret ---
{
	my $offset = -s $node->logfile;
	my $fl = peer_up('flood');
	$fl->send_frame(CmWire::heartbeat_frame(1000 + $_, 0)) for 1 .. 40;
	ok( $node->wait_for_log(
			qr/invalid heartbeat message from 127\.0\.0\.1:\d+\n[^\n]*DETAIL:  heartbeats faster than the announced interval of 200 ms allows/,
			$offset),
		'flood: heartbeats faster than the announced interval are a protocol violation');
	my $log = slurp_file($node->logfile, $offset);
	my $answered = 0;
	while (my $r = $fl->read_msg(1)) { $answered++ if $r->{type} eq 'b'; }
	cmp_ok($answered, '<=', 12, "flood: at most the burst is answered ($answered)");
	$fl->close;
}
# that peer was lost (it held the secret and misbehaved), and its
# address's sessions ended: a new session for the replay case below
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $victim_pid"),
	'flood: as a lost peer, its address\'s sessions are ended');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pgx_stat_watchdog WHERE state <> 'terminated'"),
	'flood: the terminator is done');
$victim->quit;
$victim = CmWatchdog::Session->start(
	'host=127.0.0.1 port=' . $node->port . ' dbname=postgres');
$victim_pid = $victim->query('SELECT pg_backend_pid()');

# --- at most watchdog.max_heartbeat_connections_per_address per address ---
{
	$node->safe_psql('postgres',
		'ALTER SYSTEM SET watchdog.max_heartbeat_connections_per_address = 2; SELECT pg_reload_conf()');
	$node->poll_query_until('postgres',
		"SELECT current_setting('watchdog.max_heartbeat_connections_per_address') = '2'");
	my @held = (peer_up('cap1'), peer_up('cap2'));
	my ($third, $m);
	# the worker reloads when its latch is set: retry until it applies
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		$third = CmWatchdog::Peer->connect($wdport);
		($m) = $third->authenticate(secret => $secret, %hb, name => 'cap3');
		last if $m && $m->{type} eq 'X';
		$third->goodbye if $m && $m->{type} eq 'W';
		$third->close;
		usleep(100_000);
	}
	ok($m && $m->{type} eq 'X', 'a third conmgr from the same address is refused');
	like($m && $m->{message},
		qr/too many conmgr connections from this address: watchdog\.max_heartbeat_connections_per_address \(2\) reached/,
		'the refusal names the setting');
	$held[0]->goodbye;
	$held[0]->wait_closed;
	$node->wait_for_view_count("conmgr_name = 'cap1'", 0);
	my $fourth = peer_up('cap4');
	$_->goodbye, $_->wait_closed foreach ($held[1], $fourth);
	$node->safe_psql('postgres',
		'ALTER SYSTEM RESET watchdog.max_heartbeat_connections_per_address; SELECT pg_reload_conf()');
	$node->poll_query_until('postgres',
		"SELECT current_setting('watchdog.max_heartbeat_connections_per_address') = '16'");
}

# --- a replayed frame, and a conmgr that does not come back ---
my $offset = -s $node->logfile;
my $p = peer_up('replay');
my $f = $p->seal(CmWire::heartbeat_frame(77, 0));
$p->send_raw($f);
my $r = $p->read_msg;
ok($r && $r->{type} eq 'b' && $r->{seq} == 77, 'replay: the original frame is answered');
my $t_fail = time;
$p->send_raw($f);
ok( $node->wait_for_log(
		qr/heartbeat connection of conmgr "replay" at 127\.0\.0\.1:\d+ failed its integrity check: a frame with sequence number \d+ where \d+ was due/,
		$offset),
	'replay: the replayed frame is detected');
ok($p->wait_closed, 'replay: the connection is closed');
$p->close;
ok(victim_alive(), 'replay: right after, the session from that address is alive');
ok( $node->wait_for_log(qr/conmgr "replay" at 127\.0\.0\.1 lost: it did not reconnect within \d+ ms/,
		$offset),
	'replay: without a reconnect, the peer is lost at its deadline');
my $elapsed = time - $t_fail;
cmp_ok($elapsed, '>=', $server_timeout - 0.3,
	'replay: not before the server timeout would have expired anyway');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $victim_pid"),
	'replay: then, as for any lost host, its address\'s sessions are ended');

done_testing();
