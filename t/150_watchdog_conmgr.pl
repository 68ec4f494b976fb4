
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The watchdog with a real conmgr: the conmgr appears in the view with its
# heartbeat settings; frozen with SIGSTOP, it is declared lost after the
# server timeout and its host's sessions are ended (locks released); once
# it resumes it reconnects; stopped cleanly, it leaves without a
# termination.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmConmgr;
use CmNode;
use CmWatchdog;

my ($interval, $timeout) = (200, 1000);
my $margin = 1000;    # watchdog.timeout_margin default
my $slack = 3.0;      # s

my $node = CmNode->create('cmwd',
	check_attr_interval => 200,
	log_min_messages => undef);
$node->start;
$node->safe_psql('postgres',
	'CREATE EXTENSION watchdog; CREATE TABLE t (i int)');

my $cm = CmConmgr->new(
	name => 'cmwd',
	nodes => [$node],
	heartbeat_interval => $interval,
	heartbeat_timeout => $timeout)->start;
$cm->accepting_ok;
my $cmpid = $cm->{handle}{KIDS}[0]{PID};
ok($cmpid, 'conmgr is running');

ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pgx_stat_watchdog WHERE state = 'active' "
		  . "AND heartbeat_interval = $interval AND heartbeat_timeout = $timeout "
		  . "AND server_timeout = $interval + $timeout + $margin "
		  . "AND host(conmgr_addr) = '127.0.0.1' AND heartbeats > 0"),
	'conmgr appears in pgx_stat_watchdog with its heartbeat settings');

my @sessions;
END
{
	kill 'CONT', $cmpid if $cmpid;
	eval { $_->quit } for @sessions;
}

my $s = CmWatchdog::Session->start(
	"host=127.0.0.1 port=" . $node->port . " dbname=postgres");
push @sessions, $s;
my $pid = $s->query('SELECT pg_backend_pid()');
$s->query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');

# freeze conmgr
my $offset = -s $node->logfile;
kill 'STOP', $cmpid;
my $t0 = time();
$node->wait_for_log(
	qr/watchdog terminated 1 session\(s\) from 127\.0\.0\.1: conmgr "[^"]*" was lost \(heartbeat timeout\)\n.*DETAIL:  Terminated backend PIDs: $pid;/,
	$offset);
my $elapsed = time() - $t0;
cmp_ok($elapsed, '>=', ($timeout + $margin) / 1000 - 0.1,
	'the frozen conmgr is not declared lost before its timeout + margin');
cmp_ok($elapsed, '<=', ($interval + $timeout + $margin) / 1000 + $slack,
	'its sessions are ended within interval + timeout + margin (+ slack)');
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'the session is gone');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM pg_locks WHERE relation = 't'::regclass"),
	'0',
	'its lock is released');

# resume: conmgr notices its broken heartbeat connection and reconnects
kill 'CONT', $cmpid;
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pgx_stat_watchdog WHERE state = 'active' AND heartbeats > 0"),
	'conmgr reconnects after it resumes');

# clean stop: a goodbye, nothing terminated
my $s2 = CmWatchdog::Session->start(
	"host=127.0.0.1 port=" . $node->port . " dbname=postgres");
push @sessions, $s2;
my $pid2 = $s2->query('SELECT pg_backend_pid()');
$offset = -s $node->logfile;
kill 'TERM', $cmpid;
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pgx_stat_watchdog WHERE state <> 'terminated'"),
	'conmgr left the view after its stop');
ok( $node->log_contains(
		qr/conmgr "[^"]*" at 127\.0\.0\.1:\d+ disconnected \(goodbye/, $offset),
	'a stopping conmgr says goodbye');
ok(!$node->log_contains(qr/terminated \d+ session/, $offset),
	'nothing is terminated after a goodbye');
is($s2->query('SELECT 1'), '1', 'the session survives a clean conmgr stop');

$node->stop;
done_testing();
