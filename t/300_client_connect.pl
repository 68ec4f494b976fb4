
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library: connecting through conmgr with every way libpq users
# give options (conninfo, URI, keyword/value arrays, PQsetdbLogin, service
# file, environment), registration, plain servers left alone, PGCONMGR,
# and stock psql with the library preloaded.  conmgr's application
# channel is played by client/test/fake_conmgr.pl.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CmClient;

my $node   = CmClient::plain_node('primary', 'log_connections = on');
my $pgport = $node->port;
my $fake   = CmClient::fake_for($node);
my $cmport = $fake->{port};

my $ci = "host=localhost port=$cmport dbname=postgres target_session_attrs=read-write";

# conninfo string through PQconnectdb
my ($rc, $out, $err) = CmClient::run_tool('connect', $ci, 'SELECT inet_server_port()');
is($rc, 0, 'PQconnectdb through conmgr succeeds') or diag($out . $err);
like($out, qr/^port=$pgport$/m,  'PQport() is the instance port after connecting');
like($out, qr/^host=127\.0\.0\.1$/m, 'PQhost() is the instance host after connecting');
like($out, qr/^value=$pgport$/m, 'the session runs on the instance conmgr named');
like($out, qr/^cmsocket=yes$/m,  'PQcmSocket() is a descriptor');
like($out, qr/^cm_closed=1$/m,   'PQfinish() closes the conmgr socket');
my ($pid) = $out =~ /^backend_pid=(\d+)$/m;
my ($tsa) = CmClient::wait_output($fake, qr/route tsa=(\d+) pid=\d+ app=/, 'route request received');
is($tsa, 1, 'target_session_attrs=read-write is sent as read-write');
CmClient::wait_output($fake, qr/register pid=$pid addr=127\.0\.0\.1 port=\d+/,
	'the backend PID and local address are registered with conmgr');

# the registered local port is the one the server sees
($rc, $out, $err) = CmClient::run_tool('connect', $ci,
	'SELECT client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()');
my ($cport) = $out =~ /^value=(\d+)$/m;
($pid) = $out =~ /^backend_pid=(\d+)$/m;
CmClient::wait_output($fake, qr/register pid=$pid addr=127\.0\.0\.1 port=$cport\b/,
	'the registered local port is the session\'s client_port');

# URI through PQconnectdb
($rc, $out, $err) = CmClient::run_tool('connect',
	"postgresql://localhost:$cmport/postgres?target_session_attrs=primary&application_name=uri_app");
is($rc, 0, 'a URI naming conmgr connects') or diag($out . $err);
like($out, qr/^port=$pgport$/m, 'URI: instance port');
CmClient::wait_output($fake, qr/route tsa=3 pid=\d+ app=uri_app/,
	'URI: target_session_attrs=primary and application_name reach conmgr');

# keyword/value arrays, with a dbname that is itself a connection string
($rc, $out, $err) = CmClient::run_tool('params', "dbname=host=localhost port=$cmport dbname=postgres",
	'application_name=params_app');
is($rc, 0, 'PQconnectdbParams with an expanded dbname connects') or diag($out . $err);
like($out, qr/^cmsocket=yes$/m, 'PQconnectdbParams: through conmgr');
CmClient::wait_output($fake, qr/app=params_app/, 'PQconnectdbParams: application_name from the array');

# PQsetdbLogin
($rc, $out, $err) = CmClient::run_tool('login', 'localhost', $cmport, 'postgres', '');
is($rc, 0, 'PQsetdbLogin through conmgr') or diag($out . $err);
like($out, qr/^port=$pgport$/m, 'PQsetdbLogin: instance port');

# service file and environment variables
my $svcfile = $node->basedir . '/pg_service.conf';
open my $fh, '>', $svcfile or die $!;
print $fh "# test services\n[viacm]\nhost=localhost\nport=$cmport\ntarget_session_attrs=primary\n"
  . "[plain]\nhost=127.0.0.1\nport=$pgport\n";
close $fh;
{
	local $ENV{PGSERVICEFILE} = $svcfile;
	($rc, $out, $err) = CmClient::run_tool('connect', 'service=viacm dbname=postgres');
	is($rc, 0, 'service file naming conmgr connects') or diag($out . $err);
	like($out, qr/^cmsocket=yes$/m, 'service file: through conmgr');
	CmClient::wait_output($fake, qr/route tsa=3 /, 'service file: target_session_attrs from the service');

	local $ENV{PGSERVICE} = 'plain';
	($rc, $out, $err) = CmClient::run_tool('connect', 'dbname=postgres');
	is($rc, 0, 'PGSERVICE naming a plain server connects') or diag($out . $err);
	like($out, qr/^cmsocket=no$/m, 'PGSERVICE plain: no Connection Manager');
}
{
	local $ENV{PGHOST} = 'localhost';
	local $ENV{PGPORT} = $cmport;
	local $ENV{PGTARGETSESSIONATTRS} = 'any';
	($rc, $out, $err) = CmClient::run_tool('connect', 'dbname=postgres');
	is($rc, 0, 'PGHOST/PGPORT naming conmgr connect') or diag($out . $err);
	like($out, qr/^cmsocket=yes$/m, 'environment: through conmgr');
	CmClient::wait_output($fake, qr/route tsa=0 /, 'environment: PGTARGETSESSIONATTRS reaches conmgr');
}

# libpq still checks the instance: a primary named for "standby" is refused
($rc, $out, $err) = CmClient::run_tool('connect',
	"host=localhost port=$cmport dbname=postgres target_session_attrs=standby");
is($rc, 1, 'an instance that does not match target_session_attrs is refused');
like($out, qr/server is not in hot standby mode/, 'the refusal is libpq\'s own check');
CmClient::wait_output($fake, qr/route tsa=4 /, 'target_session_attrs=standby reached conmgr');

# passwords: .pgpass entries name the instance, as for a direct connection
$node->safe_psql('postgres', "CREATE ROLE pwuser LOGIN PASSWORD 'secret'");
my $hba = slurp_file($node->data_dir . '/pg_hba.conf');
open my $hfh, '>', $node->data_dir . '/pg_hba.conf' or die $!;
print $hfh "host all pwuser 127.0.0.1/32 scram-sha-256\n" . $hba;
close $hfh;
$node->reload;
my $pgpass = $node->basedir . '/pgpass';
{
	local $ENV{PGPASSFILE} = $pgpass;
	open my $pfh, '>', $pgpass or die $!;
	print $pfh "localhost:$cmport:*:pwuser:wrong\n";
	close $pfh;
	chmod 0600, $pgpass;
	($rc, $out, $err) = CmClient::run_tool('connect', "$ci user=pwuser");
	is($rc, 1, 'a .pgpass entry for the conmgr is not used for the instance');
	like($out, qr/password authentication failed|no password supplied/, 'password refused or missing');

	for my $mode ('connect', 'async')
	{
		($rc, $out, $err) = CmClient::run_tool($mode, "$ci user=pwuser");
		like($out, qr/^needs_password=1$/m,
			"$mode: PQconnectionNeedsPassword() after the instance asked for one");
	}

	open $pfh, '>', $pgpass or die $!;
	print $pfh "127.0.0.1:$pgport:*:pwuser:secret\n";
	close $pfh;
	for my $mode ('connect', 'async')
	{
		($rc, $out, $err) = CmClient::run_tool($mode, "$ci user=pwuser", 'SELECT current_user');
		is($rc, 0, "$mode: the .pgpass entry of the instance is used") or diag($out . $err);
		like($out, qr/^value=pwuser$/m, "$mode: authenticated as pwuser");
	}
}

# a plain server on loopback: recognised as such, nothing logged
my $logpos = -s $node->logfile;
($rc, $out, $err) = CmClient::run_tool('connect', "host=localhost port=$pgport dbname=postgres");
is($rc, 0, 'a plain server on localhost connects') or diag($out . $err);
like($out, qr/^cmsocket=no$/m, 'plain server: PQcmSocket() is -1');
like($out, qr/^host=localhost$/m, 'plain server: PQhost() unchanged');
# a query on the same server makes sure the log is flushed past our probe
$node->safe_psql('postgres', 'SELECT 1');
my $log = slurp_file($node->logfile, $logpos);
unlike($log, qr/incomplete startup packet|could not|FATAL|ERROR|LOG:  .*GSS/,
	'the plain server logs nothing because of recognition');

# a process connecting again and again probes a plain server once
$logpos = -s $node->logfile;
($rc, $out, $err) = CmClient::run_tool('threads', '1', "host=localhost port=$pgport dbname=postgres");
is($rc, 0, 'five connections to a plain server on localhost') or diag($out . $err);
like($out, qr/^via_conmgr=0$/m, 'none through conmgr');
$node->safe_psql('postgres', 'SELECT 1');
$log = slurp_file($node->logfile, $logpos);
my $received = () = $log =~ /connection received: host=127\.0\.0\.1/g;
is($received, 6, 'one recognition probe, then five connections (recognition is cached)');

# Unix-domain socket: never probed
($rc, $out, $err) = CmClient::run_tool('connect',
	'host=' . $node->host . " port=$pgport dbname=postgres");
is($rc, 0, 'Unix-socket connection works') or diag($out . $err);
like($out, qr/^cmsocket=no$/m, 'Unix socket: no Connection Manager');

# PGCONMGR=off: the conmgr port is handed to libpq, which cannot use it
{
	local $ENV{PGCONMGR} = 'off';
	($rc, $out, $err) = CmClient::run_tool('connect', $ci);
	is($rc, 1, 'PGCONMGR=off: conmgr is not used');
	unlike($out, qr/cmsocket=yes/, 'PGCONMGR=off: no conmgr socket');
}
{
	local $ENV{PGCONMGR} = 'sometimes';
	($rc, $out, $err) = CmClient::run_tool('connect', $ci);
	is($rc, 1, 'invalid PGCONMGR fails the connection');
	like($out, qr/invalid value "sometimes" for environment variable PGCONMGR/,
		'invalid PGCONMGR: the error names the variable and the value');
}
{
	# on: a non-loopback spelling of the conmgr host is probed too
	local $ENV{PGCONMGR} = 'on';
	($rc, $out, $err) = CmClient::run_tool('connect', "hostaddr=127.0.0.1 port=$cmport dbname=postgres");
	is($rc, 0, 'PGCONMGR=on: conmgr recognised') or diag($out . $err);
	like($out, qr/^cmsocket=yes$/m, 'PGCONMGR=on: through conmgr');
}

# stock psql with the library preloaded
my $cm_ping_port = $cmport;
my $none_port = PostgreSQL::Test::Cluster::get_free_port();
my $none = CmClient::start_fake($none_port, 'none');
{
	local $ENV{LD_PRELOAD} = 'libpqcm.so.1';
	my ($stdout, $stderr);
	IPC::Run::run([ 'psql', '-X', '-Atc', 'SELECT inet_server_port()', $ci ],
		'>', \$stdout, '2>', \$stderr);
	is($?, 0, 'psql with LD_PRELOAD=libpqcm.so.1 connects through conmgr') or diag($stderr);
	is($stdout, "$pgport\n", 'psql runs on the instance conmgr named');

	IPC::Run::run([ 'pg_isready', '-h', 'localhost', '-p', $cm_ping_port ], '>', \$stdout, '2>', \$stderr);
	is($?, 0, 'pg_isready (PQpingParams) through conmgr: accepting') or diag($stdout . $stderr);
	IPC::Run::run([ 'pg_isready', '-h', 'localhost', '-p', $none_port ], '>', \$stdout, '2>', \$stderr);
	is($? >> 8, 2, 'pg_isready through a conmgr without instance: no response');
	IPC::Run::run([ 'pg_isready', '-h', 'localhost', '-p', $pgport ], '>', \$stdout, '2>', \$stderr);
	is($?, 0, 'pg_isready on a plain server: accepting');

	IPC::Run::run([ 'pgbench', '-i', '-q', $ci ], '>', \$stdout, '2>', \$stderr);
	is($?, 0, 'pgbench -i with LD_PRELOAD=libpqcm.so.1 runs through conmgr') or diag($stderr);
	IPC::Run::run([ 'pgbench', '-n', '-t', '5', '-c', '2', '-S', $ci ],
		'>', \$stdout, '2>', \$stderr);
	is($?, 0, 'pgbench with LD_PRELOAD=libpqcm.so.1 runs through conmgr') or diag($stderr);
	like($stdout, qr/number of transactions actually processed: 10/, 'pgbench completed its transactions');
}

done_testing();
