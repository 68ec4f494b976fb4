
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Where the watchdog listens: by default where PostgreSQL listens (IPv4 and
# IPv6); watchdog.listen_addresses restricts it; a port in use is retried
# until it is free, without harm to the server.  Over IPv6, a lost peer's
# sessions from its IPv6 address are ended, those of other addresses kept.

use strict;
use warnings FATAL => 'all';

use IO::Socket::IP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmNode;
use CmWatchdog;

my $have_ipv6 = IO::Socket::IP->new(
	LocalHost => '::1',
	LocalPort => 0,
	Listen => 1,
	Proto => 'tcp') ? 1 : 0;

# --- default: follow listen_addresses ---
my $listen = $have_ipv6 ? '127.0.0.1,::1' : '127.0.0.1';
my $node = CmNode->create('listen_default',
	watchdog_listen => undef,
	log_min_messages => undef,
	conf => "listen_addresses = '$listen'\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
ok( $node->wait_for_log(
		qr/watchdog listening on IPv4 address "127\.0\.0\.1", port $wdport/),
	'default: listens on the IPv4 address of listen_addresses');

SKIP:
{
	skip 'no IPv6 loopback', 8 unless $have_ipv6;

	ok( $node->wait_for_log(
			qr/watchdog listening on IPv6 address "::1", port $wdport/),
		'default: listens on the IPv6 address of listen_addresses');

	my $sock = IO::Socket::IP->new(
		PeerHost => '::1',
		PeerPort => $wdport,
		Proto => 'tcp')
	  or die "could not connect to [::1]:$wdport: $!";
	my $peer = bless { sock => $sock, buf => '' }, 'CmWatchdog::Peer';
	is($peer->hello(interval => 10000, timeout => 30000, name => 'v6')->{type},
		'W', 'a peer over IPv6 is welcomed');
	is( $node->safe_psql(
			'postgres', "SELECT host(conmgr_addr), family(conmgr_addr) FROM pgx_stat_watchdog"),
		'::1|6',
		'the view shows its IPv6 address');

	my $s6 = CmWatchdog::Session->start(
		"host=::1 port=" . $node->port . " dbname=postgres");
	my $pid6 = $s6->query('SELECT pg_backend_pid()');
	my $s4 = CmWatchdog::Session->start(
		"host=127.0.0.1 port=" . $node->port . " dbname=postgres");
	my $pid4 = $s4->query('SELECT pg_backend_pid()');

	my $offset = -s $node->logfile;
	$peer->heartbeat(1);    # in use, as conmgr's first heartbeat makes it
	$peer->close;
	ok( $node->wait_for_log(
			qr/watchdog terminated 1 session\(s\) from ::1: conmgr "v6" was lost \(connection lost\)\n.*DETAIL:  Terminated backend PIDs: $pid6;/,
			$offset),
		'the IPv6 session of the lost peer is ended');
	ok( $node->poll_query_until(
			'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid6"),
		'the IPv6 session is gone');
	is( $node->safe_psql(
			'postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid4"),
		'1',
		'the IPv4 session of the same host survives (another address)');
	is($s4->query('SELECT 2'), '2', 'and still works');
	$s4->quit;
	$s6->quit;
}

# --- watchdog.listen_addresses restricts ---
my $node2 = CmNode->create('listen_restricted',
	watchdog_listen => 'localhost, 127.0.0.1',
	log_min_messages => undef,
	conf => "listen_addresses = ''\n");
my $wdport2 = $node2->watchdog_port;
$node2->start;
ok( $node2->wait_for_log(
		qr/watchdog listening on IPv4 address "127\.0\.0\.1", port $wdport2/),
	'watchdog.listen_addresses: listens although listen_addresses is empty');
my $p2 = CmWatchdog::Peer->connect($wdport2);
is($p2->hello(interval => 10000, timeout => 30000)->{type}, 'W',
	'and serves peers');
$p2->close;
ok(!$node2->log_contains(qr/could not bind IPv4 address "127\.0\.0\.1"/, 0),
	'an address listed twice is bound once');

# --- the port is in use: retried until free, the server unharmed ---
my $node3 = CmNode->create('listen_busy',
	watchdog_port => $wdport2,
	watchdog_listen => undef,
	log_min_messages => undef);
$node3->start;
ok( $node3->wait_for_log(
		qr/watchdog could not bind IPv4 address "127\.0\.0\.1", port $wdport2: Address already in use/),
	'a port in use is logged with the address');
ok( $node3->wait_for_log(
		qr/WARNING:  watchdog could not listen on any address of "127\.0\.0\.1", port $wdport2/),
	'with a warning that nothing is bound');
is($node3->safe_psql('postgres', 'SELECT 1'), '1', 'the server runs anyway');
my $offset3 = -s $node3->logfile;
$node2->stop;
ok( $node3->wait_for_log(qr/watchdog now listening on port $wdport2/, $offset3),
	'once the port is free, the watchdog binds it');
my $p3 = CmWatchdog::Peer->connect($wdport2);
is($p3->hello(interval => 10000, timeout => 30000)->{type}, 'W',
	'and serves peers');
$p3->close;
my $retries = () = slurp_file($node3->logfile) =~ /could not bind/g;
is($retries, 1, 'the retries did not flood the log');

$node3->stop;
$node->stop;
done_testing();
