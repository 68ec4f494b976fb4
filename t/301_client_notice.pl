
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library: failure notices.  An asynchronous program sees
# PQcmSocket() become readable and PQconsumeInput()/PQgetResult() report
# the failure; a synchronous PQexec that never looks at PQcmSocket() gets
# its error promptly thanks to the watcher; without the watcher it stays
# blocked; conmgr closing its socket counts as a notice.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CmClient;
use CmProg;

my $node   = CmClient::plain_node('primary');
my $pgport = $node->port;
my $fake   = CmClient::fake_for($node);
my $cmport = $fake->{port};
my $ci     = "host=localhost port=$cmport dbname=postgres";
my $tool   = CmProg::tool();

# Documented bound after the notice (docs/client.md): 1 s.
my $margin_ms = 1000;

# Run a tool subcommand in the background until it is ready, deliver a
# notice with SIG (USR1: 'F' notice, USR2: conmgr closes), wait for the
# end; returns (stdout, ms from notice to the end of the call).
sub notice_case
{
	my ($sub, $sig, $sql, %env) = @_;
	my @extra = $sub eq 'sync-reset' ? ('reset') : ();
	$sub = 'sync' if $sub eq 'sync-reset';
	local @ENV{ keys %env } = values %env;
	my $h = CmClient::start_bg($tool, $sub, $ci, $sql, @extra);
	CmClient::wait_output($h, qr/^ready=1$/m, "$sub: query running");
	my ($pid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
	CmClient::wait_output($fake, qr/register pid=$pid /, "$sub: registered before the notice");
	# the query must still be running: nothing reported yet
	unlike($h->{out}, qr/result=/, "$sub: no result before the notice");
	my $t0 = time();
	CmClient::signal_bg($fake, $sig);
	CmClient::wait_output($h, qr/^final_status=/m, "$sub: call returned");
	my $ms = int((time() - $t0) * 1000);
	CmClient::finish_bg($h);
	return ($h->{out}, $ms);
}

# asynchronous query, program polls PQcmSocket()
my ($out, $ms) = notice_case('notice', 'USR1', 'SELECT pg_sleep(60)');
like($out, qr/^cm_readable=1$/m, 'async: PQcmSocket() became readable');
like($out, qr/^result=PGRES_FATAL_ERROR$/m, 'async: PQgetResult() returns PGRES_FATAL_ERROR');
like($out, qr/^sqlstate=(57P01|none)$/m, 'async: SQLSTATE 57P01 or none');
like($out, qr/heartbeat not answered within 3000 ms/, 'async: the error carries conmgr\'s reason');
like($out, qr/^final_status=BAD$/m, 'async: PQstatus() is CONNECTION_BAD afterwards');
cmp_ok($ms, '<', $margin_ms + 1000, "async: reported ${ms} ms after the notice");

# synchronous PQexec, never looks at PQcmSocket(): the watcher
($out, $ms) = notice_case('sync', 'USR1', 'SELECT pg_sleep(60)');
like($out, qr/^result=PGRES_FATAL_ERROR$/m, 'sync: PQexec returns PGRES_FATAL_ERROR');
like($out, qr/conmgr reported a failure of the instance/, 'sync: PQerrorMessage() names the notice');
like($out, qr/^final_status=BAD$/m, 'sync: CONNECTION_BAD after the failure');
like($out, qr/^after_result=PGRES_FATAL_ERROR$/m, 'sync: a request after the failure fails');
like($out, qr/^after_status=BAD$/m, 'sync: and the status stays CONNECTION_BAD');
cmp_ok($ms, '<', $margin_ms, "sync: pg_sleep(60) ended ${ms} ms after the notice");

# a COPY blocked in PQgetCopyData()
($out, $ms) = notice_case('copy', 'USR1', '');
like($out, qr/^copy_start=PGRES_COPY_OUT$/m, 'copy: COPY started');
like($out, qr/^copy_data=-2$/m, 'copy: PQgetCopyData() reports an error');
like($out, qr/^final_status=BAD$/m, 'copy: CONNECTION_BAD afterwards');
cmp_ok($ms, '<', $margin_ms, "copy: ended ${ms} ms after the notice");

# after the failure, PQreset goes through conmgr again
($out, $ms) = notice_case('sync-reset', 'USR1', 'SELECT pg_sleep(60)');
like($out, qr/^reset_status=OK$/m, 'reset after a notice: connected again');
like($out, qr/^reset_cmsocket=yes$/m, 'reset after a notice: a new conmgr socket');
like($out, qr/^value=42$/m, 'reset after a notice: queries work');
my ($newpid) = $out =~ /^reset_backend_pid=(\d+)$/m;
CmClient::wait_output($fake, qr/register pid=$newpid /, 'reset after a notice: the new backend is registered');

# conmgr closing the socket (conmgr died) counts as a notice
($out, $ms) = notice_case('sync', 'USR2', 'SELECT pg_sleep(60)');
like($out, qr/^result=PGRES_FATAL_ERROR$/m, 'conmgr gone: PQexec fails');
like($out, qr/conmgr closed its connection/, 'conmgr gone: the error says so');
cmp_ok($ms, '<', $margin_ms, "conmgr gone: reported ${ms} ms later");

# without the watcher a synchronous call is not interrupted: it ends
# when the query does (this shows what the watcher buys)
($out, $ms) = notice_case('sync', 'USR1', 'SELECT pg_sleep(3)', PGCONMGR_WATCHER => 'off');
cmp_ok($ms, '>=', 2000, "watcher off: PQexec ran to the end of the query (${ms} ms)");
like($out, qr/^final_status=BAD$/m, 'watcher off: the next status check reports the failure');

# watcher off, asynchronous program: PQcmSocket() still does the job
($out, $ms) = notice_case('notice', 'USR1', 'SELECT pg_sleep(60)', PGCONMGR_WATCHER => 'off');
like($out, qr/^cm_readable=1$/m, 'watcher off, async: PQcmSocket() readable');
like($out, qr/^result=PGRES_FATAL_ERROR$/m, 'watcher off, async: failure reported');
cmp_ok($ms, '<', $margin_ms + 1000, "watcher off, async: ${ms} ms after the notice");

# a notice cut short: the watcher neither spins nor waits forever
my $pport = PostgreSQL::Test::Cluster::get_free_port();
my $partial = CmClient::start_fake($pport, 'partial', "127.0.0.1:$pgport");
{
	my $h = CmClient::start_bg($tool, 'sync', "host=localhost port=$pport dbname=postgres",
		'SELECT pg_sleep(60)');
	CmClient::wait_output($h, qr/^ready=1$/m, 'partial: query running');
	my ($pid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
	CmClient::wait_output($partial, qr/register pid=$pid /, 'partial: registered');
	my $t0 = time();
	CmClient::signal_bg($partial, 'USR1');
	CmClient::wait_output($h, qr/^final_status=/m, 'partial: call returned');
	my $ms = int((time() - $t0) * 1000);
	CmClient::finish_bg($h);
	like($h->{out}, qr/incomplete message from conmgr/, 'partial: reported as an incomplete message');
	cmp_ok($ms, '>=', 1500, "partial: after the fragment had time to complete (${ms} ms)");
	cmp_ok($ms, '<', 4000, "partial: but not much later (${ms} ms)");
}

done_testing();
