
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The terminator ends what a lost conmgr's host left behind, and nothing
# else, however late it gets to it:
#  - address mode: a session opened from the same address after the loss
#    survives, one opened before is ended (the terminator is frozen with
#    SIGSTOP between the loss and the termination);
#  - precise mode: the registrations of a lost conmgr are still honoured by
#    a terminator restarted after it took the slot and before it ended
#    anything (watchdog.terminator_delay holds it there);
#  - slot reuse: peers that never hold a slot or leave with a goodbye do
#    not push the 'terminated' rows of real losses out of
#    pgx_stat_watchdog while a free slot exists; without one, the oldest
#    row goes first.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use CmNode;
use CmWatchdog;

my ($interval, $timeout) = (200, 600);

my $node = CmNode->create('loss',
	conf => "watchdog.max_heartbeat_connections = 4\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');

my @sessions;
my $frozen;    # PID of the terminator while it is stopped

# A psql session over TCP from 127.0.0.1; returns it with its backend PID
# and client port.
sub session
{
	my $s = CmWatchdog::Session->start(
		"host=127.0.0.1 port=" . $node->port . " dbname=postgres");
	push @sessions, $s;
	my ($pid, $port) =
	  split /\|/, $s->query('SELECT pg_backend_pid(), inet_client_port()');
	return ($s, $pid, $port);
}

sub alive
{
	my ($pid) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid");
}

sub view
{
	my ($what, $name) = @_;
	return $node->safe_psql('postgres',
		"SELECT $what FROM pgx_stat_watchdog WHERE conmgr_name = '$name'");
}

# Wait until the terminator runs with a PID other than $old (any, if undef).
sub wait_for_terminator
{
	my ($old) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		my $pid = $node->worker_pid('watchdog terminator');
		return $pid if $pid && (!defined $old || $pid != $old);
		usleep(50_000);
	}
	return undef;
}

# The first "terminated"/"found no session" line for a peer after $offset.
sub wait_for_termination
{
	my ($name, $offset) = @_;
	$node->wait_for_log(
		qr/watchdog (?:terminated \d+ session\(s\)|found no session to terminate) from \S+:? .*conmgr "$name" was lost/,
		$offset);
	my $log = slurp_file($node->logfile, $offset);
	my ($lines) = $log =~
	  /(watchdog (?:terminated \d+ session\(s\)|found no session to terminate) from \S+:? .*conmgr "$name" was lost.*\n.*DETAIL:.*)/;
	return $lines // '';
}

END
{
	kill 'CONT', $frozen if $frozen;
	for my $s (@sessions)
	{
		eval { $s->quit; };
	}
}

# --- address mode: a session opened after the loss survives ---

my ($s_before, $pid_before) = session();

my $peer = CmWatchdog::Peer->connect($wdport);
is($peer->hello(interval => $interval, timeout => $timeout, name => 'cutoff')
	  ->{type},
	'W', 'peer welcomed');
ok($peer->heartbeat(1), 'heartbeat answered');

# the terminator has had nothing to do since it started: it sleeps on its
# latch and holds no lock, so it can be frozen safely
my $term_pid = wait_for_terminator();
ok($term_pid, 'the terminator runs');
ok(kill('STOP', $term_pid), 'terminator frozen');
$frozen = $term_pid;

my $offset = -s $node->logfile;
$peer->close;    # lost: closed without a goodbye
$node->wait_for_lost('cutoff', qr/connection closed without a goodbye/, $offset);
ok($node->wait_for_view_count("conmgr_name = 'cutoff' AND state = 'lost'", 1),
	'the lost slot waits for the frozen terminator');

# the same client address connects again after the loss
my ($s_after, $pid_after) = session();
is( $node->safe_psql(
		'postgres',
		"SELECT backend_start > (SELECT backend_start FROM pg_stat_activity WHERE pid = $pid_before) FROM pg_stat_activity WHERE pid = $pid_after"
	),
	't',
	'the new session started after the old one');

ok(kill('CONT', $term_pid), 'terminator resumed');
$frozen = undef;
my $term = wait_for_termination('cutoff', $offset);
like(
	$term,
	qr/terminated 1 session\(s\) from 127\.0\.0\.1: conmgr "cutoff" was lost \(connection lost\)\n.*DETAIL:  Terminated backend PIDs: $pid_before; mode address, 1 session\(s\) opened after the loss kept\./,
	'only the session opened before the loss is terminated; the one opened after is logged as kept'
);
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid_before"),
	'the session opened before the loss is gone');
is(alive($pid_after), '1', 'the session opened after the loss survives');
is(eval { $s_after->query('SELECT 42') }, '42', 'and still answers');
ok( $node->wait_for_view_count(
		"conmgr_name = 'cutoff' AND state = 'terminated' AND sessions_terminated = 1",
		1),
	'the view counts one terminated session');

# --- precise mode: a terminator restarted in the middle ---

$node->safe_psql('postgres',
	"ALTER SYSTEM SET watchdog.termination_mode = 'precise'; ALTER SYSTEM SET watchdog.terminator_delay = '1h'; SELECT pg_reload_conf()"
);
# once a new session sees the values, the postmaster has reloaded and
# signalled the terminator, which reloads before it takes a lost peer
$node->poll_query_until('postgres',
	"SELECT current_setting('watchdog.terminator_delay') = '1h' AND current_setting('watchdog.termination_mode') = 'precise'"
);

my ($s_reg, $pid_reg, $port_reg) = session();
my ($s_unreg, $pid_unreg) = session();

$peer = CmWatchdog::Peer->connect($wdport);
is( $peer->hello(interval => $interval, timeout => $timeout, name => 'restarted')
	  ->{type},
	'W', 'precise peer welcomed');
$peer->register_session('J', $pid_reg, '127.0.0.1', $port_reg);
ok( $node->poll_query_until(
		'postgres',
		"SELECT sessions_registered = 1 FROM pgx_stat_watchdog WHERE conmgr_name = 'restarted'"
	),
	'one session registered');

$offset = -s $node->logfile;
$peer->close;
ok( $node->wait_for_view_count(
		"conmgr_name = 'restarted' AND state = 'terminating'", 1),
	'the terminator took the lost slot and waits (watchdog.terminator_delay)');
is(view('sessions_registered', 'restarted'),
	'1', 'the registration is kept while the slot is being terminated');

# stop the terminator there: the postmaster starts another one
$term_pid = $node->worker_pid('watchdog terminator');
ok(kill('TERM', $term_pid), 'terminator stopped in the middle');
my $new_pid = wait_for_terminator($term_pid);
ok($new_pid, 'the postmaster started another terminator');
$node->wait_for_log(
	qr/background worker "watchdog terminator" \(PID $term_pid\) exited with exit code 1/,
	$offset);
ok(!$node->log_contains(qr/conmgr "restarted" was lost \(/, $offset),
	'nothing was terminated or logged as done before the restart');
ok( $node->wait_for_view_count(
		"conmgr_name = 'restarted' AND state = 'terminating'", 1),
	'the new terminator took the slot again');
is(view('sessions_registered', 'restarted'),
	'1', 'and found the registration');

$node->safe_psql('postgres',
	'ALTER SYSTEM RESET watchdog.terminator_delay; SELECT pg_reload_conf()');
$term = wait_for_termination('restarted', $offset);
like(
	$term,
	qr/terminated 1 session\(s\) from 127\.0\.0\.1: conmgr "restarted" was lost \(connection lost\)\n.*DETAIL:  Terminated backend PIDs: $pid_reg; mode precise\./,
	'the restarted terminator ends the registered session');
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid_reg"),
	'the registered session is gone');
is(alive($pid_unreg), '1', 'the unregistered session survives');
ok( $node->wait_for_view_count(
		"conmgr_name = 'restarted' AND state = 'terminated' AND sessions_terminated = 1 AND sessions_registered = 0",
		1),
	'terminated once, its registration dropped with it');

# --- slot reuse keeps the record of real losses ---

# two 'terminated' rows now ('cutoff', then 'restarted'), two free slots
is( $node->safe_psql(
		'postgres', "SELECT string_agg(conmgr_name, ',' ORDER BY conmgr_name) FROM pgx_stat_watchdog WHERE state = 'terminated'"
	),
	'cutoff,restarted',
	'two terminated rows');

my %hb = (interval => 10000, timeout => 30000);
for my $i (1 .. 6)
{
	# never welcomed: no hello at all
	my $p = CmWatchdog::Peer->connect($wdport);
	$p->close;

	# never welcomed: refused (no common version)
	$p = CmWatchdog::Peer->connect($wdport);
	my $m = $p->hello(%hb, name => "refused$i", min_version => 0x0200,
		max_version => 0x0200);
	$p->close;
	die "peer refused$i was not refused" unless $m && $m->{type} eq 'X';

	# welcomed, then a clean goodbye
	CmWatchdog::Peer->come_and_go($wdport, %hb, name => "polite$i");
}
is($node->view_states,
	'cutoff:terminated,restarted:terminated',
	'18 connections that never got a slot or left cleanly erased no terminated row');

# fill the free slots: the next peers must take a terminated slot, the oldest
my @held;
for my $name ('held1', 'held2')
{
	my $p = CmWatchdog::Peer->connect($wdport);
	is($p->hello(%hb, name => $name)->{type}, 'W', "$name welcomed");
	push @held, $p;
}
CmWatchdog::Peer->come_and_go($wdport, %hb, name => "late$_") for 1 .. 3;
is($node->view_states,
	'held1:active,held2:active,restarted:terminated',
	'with no free slot the oldest terminated row went, once: the slot freed by the goodbye was reused after');
$_->goodbye for @held;

ok(!$node->log_contains(qr/terminating any other active server processes/, 0),
	'no crash restart');

$node->stop;
done_testing();
