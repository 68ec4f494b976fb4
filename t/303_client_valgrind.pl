
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library under valgrind (memcheck): no invalid access, no definite
# or indirect leak, in every path the other tests exercise: synchronous and
# asynchronous connections, multi-host fallbacks, failed connections, a
# conmgr of an unexpected user (PGCONMGRUSER), resets, notices with the
# watcher thread, several threads at once, and connections that do not use
# Connection Manager.  Skipped without valgrind (Debian package valgrind).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CmClient;
use CmProg;

plan skip_all => 'valgrind is not installed'
  if system('sh', '-c', 'command -v valgrind >/dev/null') != 0;

my $node   = CmClient::plain_node('primary');
my $pgport = $node->port;

my $fake = CmClient::fake_for($node);
my $cm   = $fake->{port};
my $none_port = PostgreSQL::Test::Cluster::get_free_port();
my $none = CmClient::start_fake($none_port, 'none');
my $down = PostgreSQL::Test::Cluster::get_free_port();
my $tool = CmProg::tool();
my $ci   = "host=localhost port=$cm dbname=postgres";

my @valgrind = ('valgrind', '-q', '--error-exitcode=99', '--leak-check=full',
	'--show-leak-kinds=definite,indirect', '--errors-for-leak-kinds=definite,indirect',
	'--track-fds=no');

sub vg_run
{
	my ($name, $expect_rc, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ @valgrind, $tool, @args ], '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default * 2));
	my $rc = $? >> 8;
	is($rc, $expect_rc, "valgrind clean: $name") or diag($out . $err);
	return $out;
}

vg_run('PQconnectdb through conmgr', 0, 'connect', $ci, 'SELECT 1');
vg_run('PQconnectdbParams through conmgr', 0, 'params', "host=localhost", "port=$cm",
	'dbname=postgres');
vg_run('PQsetdbLogin through conmgr', 0, 'login', 'localhost', $cm, 'postgres', '');
vg_run('asynchronous connect', 0, 'async', $ci, 'SELECT 1');
vg_run('multi-host fallback (down, no instance, conmgr)', 0, 'connect',
	"host=localhost,localhost,localhost port=$down,$none_port,$cm dbname=postgres");
vg_run('asynchronous multi-host fallback', 0, 'async',
	"host=localhost,localhost,localhost port=$down,$none_port,$cm dbname=postgres");
vg_run('failed connection', 1, 'connect', "host=localhost port=$none_port dbname=postgres");
vg_run('failed asynchronous connection', 1, 'async', "host=localhost port=$none_port dbname=postgres");
vg_run('PQreset', 0, 'reset', $ci);
vg_run('PQresetStart/PQresetPoll', 0, 'reset', $ci, 'async');
vg_run('plain server on localhost', 0, 'connect', "host=localhost port=$pgport dbname=postgres");
vg_run('plain server, asynchronous', 0, 'async', "host=localhost port=$pgport dbname=postgres");
vg_run('fork', 0, 'fork', $ci);
vg_run('PQping through conmgr', 0, 'ping', $ci);
vg_run('PQping, conmgr without instance', 1, 'ping', "host=localhost port=$none_port dbname=postgres");
vg_run('eight threads', 0, 'threads', '8', $ci);
{
	local $ENV{PGCONMGR} = 'bogus';
	vg_run('invalid PGCONMGR', 1, 'connect', $ci);
}
{
	# who may answer as conmgr (t/306): a name, and a refusal
	local $ENV{PGCONMGRUSER} = scalar getpwuid($>);
	vg_run('PGCONMGRUSER naming our own user', 0, 'connect', $ci, 'SELECT 1');
	$ENV{PGCONMGRUSER} = $> == 0 ? 'nobody' : 'root';
	vg_run('conmgr of an unexpected user refused', 1, 'connect', $ci);
	vg_run('conmgr of an unexpected user refused, asynchronous', 1, 'async', $ci);
}

# notice with the watcher thread
my $h = CmClient::start_bg(@valgrind, $tool, 'sync', $ci, 'SELECT pg_sleep(60)');
CmClient::wait_output($h, qr/^ready=1$/m, 'valgrind: query running');
my ($pid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
CmClient::wait_output($fake, qr/register pid=$pid /, 'valgrind: registered');
CmClient::signal_bg($fake, 'USR1');
CmClient::wait_output($h, qr/^after_status=BAD$/m, 'valgrind: notice reported');
my $rc = CmClient::finish_bg($h);
is($rc, 0, 'valgrind clean: notice through the watcher') or diag($h->{err});

done_testing();
