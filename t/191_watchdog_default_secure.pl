
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Secure by default: a server with no watchdog.secret_file (the default)
# refuses every conmgr, so a local program that reaches watchdog.port can
# neither end sessions (a fake "lost" conmgr: connect, hello, close) nor
# hold a slot.  The refusals a connection loop causes are rate-limited in
# the log.  Unauthenticated heartbeats need an explicit opt-in,
# watchdog.insecure_no_authentication, which the server announces at start
# and at the reload that turns it on: a WARNING when the watchdog listens
# beyond loopback.  conmgr refuses a conmgr.conf without secret_file unless
# its own insecure_no_authentication is on.
#
# The attacker here is a program of another process speaking TCP to the
# watchdog port: the server cannot tell one local user from another on a
# TCP connection, so the test user stands for any local user.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CmConmgr;
use CmNode;
use CmWatchdog;
use CmWire;

# CmNode opts in to unauthenticated heartbeats for the tests
# that need them; this node goes back to the default.
my $node = CmNode->create('secure',
	conf => "watchdog.insecure_no_authentication = off\n"
	  . "log_min_messages = warning\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
like($node->safe_psql('postgres', 'SHOW watchdog.insecure_no_authentication'),
	qr/^off$/, 'the opt-in is off');
ok( $node->wait_for_log(qr/watchdog: every conmgr is refused: watchdog\.secret_file is empty/),
	'the server says at start that every conmgr is refused');

# A superuser's TCP session from 127.0.0.1: the target of the attack.
my $victim = CmWatchdog::Session->start(
	'host=127.0.0.1 port=' . $node->port . ' dbname=postgres');
my $victim_pid = $victim->query('SELECT pg_backend_pid()');
like($victim_pid, qr/^\d+$/, 'a TCP session from 127.0.0.1 is open');

my %hb = (interval => 1000, timeout => 3000);

# --- a fake conmgr: hello, then close without goodbye ("lost") ---
my $offset = -s $node->logfile;
my $p = CmWatchdog::Peer->connect($wdport);
my $m = $p->hello(%hb, name => 'mallory');
ok($m && $m->{type} eq 'X', 'an unauthenticated hello is refused');
is($m->{reason}, CmWire::REASON_AUTH, 'reason: authentication');
like($m->{message}, qr/this server requires authentication: set watchdog\.secret_file/,
	'the refusal names the setting');
ok($p->wait_closed, 'the watchdog closes the connection');
$p->close;

# the same without waiting for the answer
for my $i (1 .. 5)
{
	my $q = CmWatchdog::Peer->connect($wdport);
	$q->send_raw(CmWire::hello_frame(%hb, name => "mallory$i"));
	$q->close;
}

# --- a hello churn and slot squatting: nothing is ever held ---
my $t0 = time;
my $n = 0;
while (time - $t0 < 3)
{
	my $q = CmWatchdog::Peer->connect($wdport);
	$q->send_raw(CmWire::hello_frame(%hb, interval => 86_000_000,
		timeout => 86_400_000, name => "squat$n"));
	$q->close;
	$n++;
}
note("$n unauthenticated hellos in 3 s");
cmp_ok($n, '>', 50, 'the churn ran');

is($node->safe_psql('postgres', 'SELECT count(*) FROM pgx_stat_watchdog'),
	'0', 'no refused peer appears in pgx_stat_watchdog');
is($victim->query('SELECT 1'), '1', 'the victim session is still alive');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $victim_pid"),
	'1', 'the victim backend was not terminated');
my $log = slurp_file($node->logfile, $offset);
unlike($log, qr/Its sessions will be terminated|terminated \d+ session/,
	'the terminator was never started for a refused peer');
my $lines = () = $log =~ /refused heartbeat connection/g;
cmp_ok($lines, '<=', 20, "the refusals are rate-limited in the log ($lines lines)");
cmp_ok(length($log), '<', 16384,
	'the log grew by less than 16 kB (' . length($log) . ' bytes)');

# --- the opt-in: announced, then unauthenticated peers are welcomed ---
$offset = -s $node->logfile;
$node->safe_psql('postgres',
	'ALTER SYSTEM SET watchdog.insecure_no_authentication = on; SELECT pg_reload_conf()');
ok( $node->wait_for_log(
		qr/watchdog\.insecure_no_authentication is on: heartbeat connections are not authenticated\n.*DETAIL:  Any local user can make the terminator end the sessions/,
		$offset),
	'turning the opt-in on is logged, naming what it gives away');
my $w;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	my $q = CmWatchdog::Peer->connect($wdport);
	$w = $q->hello(%hb, name => 'lab');
	if ($w && $w->{type} eq 'W')
	{
		$q->goodbye;
		$q->close;
		last;
	}
	$q->close;
	usleep(50_000);
}
ok($w && $w->{type} eq 'W', 'with the opt-in an unauthenticated conmgr is welcomed');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET watchdog.insecure_no_authentication; SELECT pg_reload_conf()');
$node->poll_query_until('postgres',
	"SELECT current_setting('watchdog.insecure_no_authentication') = 'off'");

# --- listening beyond loopback with the opt-in: a WARNING at start ---
my $wide = CmNode->create('wide',
	conf => "watchdog.listen_addresses = '*'\n");
my $wideport = $wide->watchdog_port;
$wide->start;
ok( $wide->wait_for_log(
		qr/WARNING:  watchdog\.insecure_no_authentication is on: heartbeat connections are not authenticated\n.*DETAIL:  Any host that reaches watchdog\.port \(\d+\) on a non-loopback address/
	),
	'listening beyond loopback with the opt-in is a WARNING at start');
$wide->stop;

# --- conmgr: no secret_file and no opt-in is a configuration error ---
my ($rc, $out, $err) = CmConmgr->new(
	text => "backend_host0 = 127.0.0.1\nbackend_port0 = 5432\nwatchdog_port0 = $wdport\n"
	  . "insecure_no_authentication = off\n")->run;
is($rc, 1, 'conmgr refuses to start without secret_file');
like($err, qr/conmgr\.conf: secret_file is not set: every watchdog must prove it holds the shared secret/,
	'conmgr names the missing secret_file');

$victim->quit;
done_testing();
