
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library against the real conmgr and watchdog: routing by
# target_session_attrs, two conmgrs in one host list, stock psql with and
# without the library, and failure notices when the primary's watchdog
# freezes (SIGSTOP) or the primary is stopped with -m immediate.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmClient;
use CmConmgr;
use CmNode;
use CmProg;

my $hb_timeout = 1000;
my $margin_ms  = 1000;    # documented in docs/client.md

my ($primary, $standby) = CmNode->create_pair('primary', 'standby',
	check_attr_interval => 200,
	log_min_messages => undef);
my ($pport, $sport) = ($primary->port, $standby->port);

my $cm_all = CmConmgr->new(
	name => 'all',
	nodes => [ $primary, $standby ],
	heartbeat_interval => 200, heartbeat_timeout => $hb_timeout)->start;
my $cm_sb = CmConmgr->new(
	name => 'standby_only',
	nodes => [$standby],
	heartbeat_interval => 200, heartbeat_timeout => $hb_timeout)->start;
my ($a, $b) = ($cm_all->{port}, $cm_sb->{port});

CmClient::wait_connect("host=localhost port=$a dbname=postgres target_session_attrs=read-write",
	'SELECT inet_server_port()', qr/^value=$pport$/m, 'read-write lands on the primary');
CmClient::wait_connect("host=localhost port=$a dbname=postgres target_session_attrs=read-only",
	'SELECT inet_server_port()', qr/^value=$sport$/m, 'read-only lands on the standby');
CmClient::wait_connect("host=localhost port=$b dbname=postgres target_session_attrs=standby",
	'SELECT pg_is_in_recovery()', qr/^value=t$/m, 'second conmgr routes to its standby');

# two conmgrs: the first has no suitable instance, the next one is asked
my ($rc, $out, $err) = CmClient::run_tool('connect',
	"host=localhost,localhost port=$b,$a dbname=postgres target_session_attrs=read-write",
	'SELECT inet_server_port()');
is($rc, 0, 'conmgr without a suitable instance: the next conmgr is asked') or diag($out . $err);
like($out, qr/^value=$pport$/m, 'and the connection lands on the primary');
($rc, $out, $err) = CmClient::run_tool('async',
	"host=localhost,localhost port=$b,$a dbname=postgres target_session_attrs=primary",
	'SELECT inet_server_port()');
is($rc, 0, 'async: the next conmgr is asked') or diag($out . $err);
like($out, qr/^value=$pport$/m, 'async: lands on the primary');
($rc, $out, $err) = CmClient::run_tool('connect',
	"host=localhost port=$b dbname=postgres target_session_attrs=read-write");
is($rc, 1, 'only a conmgr without a suitable instance: the connection fails');
like($out, qr/conmgr at "localhost", port $b has no instance for target_session_attrs=read-write/,
	'the error names the conmgr and target_session_attrs');

# stock psql (no library) reaching conmgr, and with the library preloaded
my ($stdout, $stderr) = ('', '');
IPC::Run::run([ 'psql', '-X', '-Atc', 'SELECT 1', "host=localhost port=$a dbname=postgres" ],
	'>', \$stdout, '2>', \$stderr);
isnt($?, 0, 'stock psql cannot use conmgr as a server');
like($stderr, qr/Connection Manager/, 'stock psql gets conmgr\'s clear error') or diag($stderr);
{
	local $ENV{LD_PRELOAD} = 'libpqcm.so.1';
	IPC::Run::run([ 'psql', '-X', '-Atc', 'SELECT inet_server_port()',
			"host=localhost port=$a dbname=postgres target_session_attrs=read-write" ],
		'>', \$stdout, '2>', \$stderr);
	is($?, 0, 'preloaded psql connects through conmgr') or diag($stderr);
	is($stdout, "$pport\n", 'preloaded psql lands on the primary');
}

my $rw = "host=localhost port=$a dbname=postgres target_session_attrs=read-write";

# notices when the primary's watchdog freezes
my $wd_pid = $primary->worker_pid('watchdog') // '';
like($wd_pid, qr/^\d+$/, 'the primary runs a watchdog process');


sub frozen_case
{
	my ($sub) = @_;
	my $h = CmClient::start_bg(CmProg::tool(), $sub, $rw, 'SELECT pg_sleep(60)');
	CmClient::wait_output($h, qr/^ready=1$/m, "$sub: query running on the primary");
	like($h->{out}, qr/^port=$pport$/m, "$sub: on the primary");
	my ($bpid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
	my $json = $cm_all->wait_status(qr/"backend_pid": $bpid\b/);
	like($json, qr/"backend_pid": $bpid\b/, "$sub: conmgr knows the registered backend PID");
	my $t0 = time();
	kill 'STOP', $wd_pid;
	CmClient::wait_output($h, qr/^final_status=/m, "$sub: call returned");
	my $ms = int((time() - $t0) * 1000);
	kill 'CONT', $wd_pid;
	CmClient::finish_bg($h);
	like($h->{out}, qr/^result=PGRES_FATAL_ERROR$/m, "$sub: PGRES_FATAL_ERROR");
	like($h->{out}, qr/^final_status=BAD$/m, "$sub: CONNECTION_BAD afterwards");
	cmp_ok($ms, '>=', $hb_timeout - 200, "$sub: not before the heartbeat timeout (${ms} ms)");
	cmp_ok($ms, '<', $hb_timeout + $margin_ms + 500,
		"$sub: within heartbeat_timeout + margin (${ms} ms)");
	return $h->{out};
}

$out = frozen_case('notice');
like($out, qr/^cm_readable=1$/m, 'frozen watchdog: PQcmSocket() became readable');
$out = frozen_case('sync');
like($out, qr/conmgr reported a failure of the instance/, 'frozen watchdog, sync: the error says why');

# conmgr reconnects to the thawed watchdog; then stop the primary hard
CmClient::wait_connect($rw, 'SELECT inet_server_port()', qr/^value=$pport$/m,
	'the primary is routed to again after the watchdog resumes');
my $h = CmClient::start_bg(CmProg::tool(), 'notice', $rw, 'SELECT pg_sleep(60)');
CmClient::wait_output($h, qr/^ready=1$/m, 'immediate: query running on the primary');
my $t0 = time();
$primary->stop('immediate');
CmClient::wait_output($h, qr/^final_status=/m, 'immediate: call returned');
my $ms = int((time() - $t0) * 1000);
CmClient::finish_bg($h);
like($h->{out}, qr/^result=PGRES_FATAL_ERROR$/m, 'immediate: PGRES_FATAL_ERROR');
like($h->{out}, qr/^cm_readable(?:_after)?=1$/m, 'immediate: PQcmSocket() became readable');
like($h->{out}, qr/^final_status=BAD$/m, 'immediate: CONNECTION_BAD');
cmp_ok($ms, '<', $hb_timeout + $margin_ms + 500, "immediate: reported within the bound (${ms} ms)");

done_testing();
