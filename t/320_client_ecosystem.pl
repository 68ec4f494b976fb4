
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library with unmodified programs of the libpq ecosystem, the
# library preloaded: psycopg2 (synchronous and asynchronous connections),
# psycopg 3 when its C binding loads libpq, an ECPG program, psqlODBC
# through unixODBC.  Each part is skipped when its Debian package is not
# installed (python3-psycopg2, python3-psycopg, libecpg-dev, unixodbc-dev
# + odbc-postgresql).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CmClient;
use CmProg;

my $node   = CmClient::plain_node('primary');
my $pgport = $node->port;

my $fake = CmClient::fake_for($node);
my $cm   = $fake->{port};
my $ci   = "host=localhost port=$cm dbname=postgres target_session_attrs=read-write";
my $testdir = CmProg::client_test();
my $python  = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';

sub run_preloaded
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	local $ENV{LD_PRELOAD} = 'libpqcm.so.1';
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($? >> 8, $out, $err);
}

# psycopg2
SKIP:
{
	skip 'python3-psycopg2 is not installed', 4
	  if system($python, '-c', 'import psycopg2') != 0;
	my $script = <<'EOF';
import sys, select, psycopg2, psycopg2.extensions as ext
dsn = sys.argv[1]
c = psycopg2.connect(dsn)
cur = c.cursor()
cur.execute('SELECT inet_server_port()')
print('sync_port=%s' % cur.fetchone()[0])
print('sync_host=%s' % c.info.host)
c.close()
a = psycopg2.connect(dsn, async_=1)
def wait(conn):
    while True:
        st = conn.poll()
        if st == ext.POLL_OK:
            return
        if st == ext.POLL_READ:
            select.select([conn.fileno()], [], [], 30)
        elif st == ext.POLL_WRITE:
            select.select([], [conn.fileno()], [], 30)
wait(a)
cur = a.cursor()
cur.execute('SELECT inet_server_port()')
wait(a)
print('async_port=%s' % cur.fetchone()[0])
a.close()
EOF
	my ($rc, $out, $err) = run_preloaded($python, '-c', $script, $ci);
	is($rc, 0, 'psycopg2 with the library preloaded') or diag($err);
	like($out, qr/^sync_port=$pgport$/m, 'psycopg2: synchronous connection on the instance');
	like($out, qr/^sync_host=127\.0\.0\.1$/m, 'psycopg2: connection.info.host is the instance');
	like($out, qr/^async_port=$pgport$/m, 'psycopg2: asynchronous connection on the instance');
}

# psycopg 3: only its C binding links libpq; the pure-Python binding
# resolves functions inside libpq.so.5 itself (ctypes), where no preloaded
# library can take part.
SKIP:
{
	my $impl = `$python -c 'import psycopg; print(psycopg.pq.__impl__)' 2>/dev/null`;
	chomp $impl;
	skip "psycopg 3 is not installed", 2 if $impl eq '';
	skip "psycopg 3 uses its \"$impl\" binding (ctypes), which preloading cannot reach", 2
	  if $impl eq 'python';
	my ($rc, $out, $err) = run_preloaded($python, '-c',
		'import sys, psycopg; c = psycopg.connect(sys.argv[1]); '
		  . 'print("port=%s" % c.execute("SELECT inet_server_port()").fetchone()[0])', $ci);
	is($rc, 0, 'psycopg 3 with the library preloaded') or diag($err);
	like($out, qr/^port=$pgport$/m, 'psycopg 3: on the instance');
}

# ECPG
SKIP:
{
	skip 'ecpg (libecpg-dev) is not installed', 2 if system('sh', '-c', 'command -v ecpg >/dev/null') != 0;
	system('make', '-s', '-C', $testdir, 'ecpg_test') == 0 or die 'could not build ecpg_test';
	my ($rc, $out, $err) = run_preloaded("$testdir/ecpg_test",
		"tcp:postgresql://localhost:$cm/postgres?target_session_attrs=read-write");
	is($rc, 0, 'ECPG program with the library preloaded') or diag($err);
	like($out, qr/^port=$pgport$/m, 'ECPG: the session runs on the instance');
}

# psqlODBC through unixODBC.  SQLGetInfo(SQL_SERVER_NAME) names the chosen
# instance once connected through conmgr (docs/client.md, "ODBC programs"),
# in every form an ODBC program can ask it; a connection without Connection
# Manager keeps the driver's answer.
SKIP:
{
	skip 'unixODBC headers or psqlODBC are not installed', 24
	  unless -e '/usr/include/sql.h' && `odbcinst -q -d 2>/dev/null` =~ /PostgreSQL Unicode/;
	system('make', '-s', '-C', $testdir, 'odbc_test', 'odbc_plugin.so', 'odbc_dlopen') == 0
	  or die 'could not build the ODBC test programs';
	ok(system('make', '-s', '-C', $testdir, 'odbc_abi') == 0,
		"libpqcm's ODBC declarations agree with unixODBC's headers");
	my $user = getpwuid($<);
	my $via_cm = "Driver={PostgreSQL Unicode};Server=localhost;Port=$cm;Database=postgres;"
	  . "UID=$user;pqopt={target_session_attrs=read-write}";

	my $instance = sub {
		my ($what, $out) = @_;
		like($out, qr/^server_name=127\.0\.0\.1 rc=0 len=9$/m,
			"$what: SQLGetInfo(SQL_SERVER_NAME) names the instance");
		like($out, qr/^server_name_w=127\.0\.0\.1 rc=0 len=18$/m,
			"$what: SQLGetInfoW too (UTF-16, length in bytes)");
		like($out, qr/^server_name_len rc=0 len=9$/m,
			"$what: without a buffer, the instance's length");
		like($out, qr/^server_name_short=127\. rc=1 len=9$/m,
			"$what: a short buffer gets whole characters and SQL_SUCCESS_WITH_INFO");
		like($out, qr/^server_name_w_short=127\. rc=1 len=18$/m,
			"$what: a short wide buffer likewise");
		like($out, qr/^port=$pgport$/m, "$what: the session runs on the instance");
	};

	my ($rc, $out, $err) = run_preloaded("$testdir/odbc_test", $via_cm);
	is($rc, 0, 'psqlODBC (SQLDriverConnect) with the library preloaded') or diag($err);
	$instance->('SQLDriverConnect', $out);

	# a data source of an odbc.ini, connected with SQLConnect
	my $ini = PostgreSQL::Test::Utils::tempdir() . '/odbc.ini';
	PostgreSQL::Test::Utils::append_to_file($ini,
		"[cmtest]\nDriver = PostgreSQL Unicode\nServername = localhost\nPort = $cm\n"
		  . "Database = postgres\nPqopt = target_session_attrs=read-write\n");
	{
		local $ENV{ODBCINI} = $ini;
		($rc, $out, $err) = run_preloaded("$testdir/odbc_test", '--dsn', 'cmtest', $user);
	}
	is($rc, 0, 'psqlODBC (SQLConnect to a DSN) with the library preloaded') or diag($err);
	$instance->('SQLConnect', $out);

	# loaded privately (RTLD_LOCAL), as Python loads pyodbc
	($rc, $out, $err) = run_preloaded("$testdir/odbc_dlopen", "$testdir/odbc_plugin.so", $via_cm);
	is($rc, 0, 'psqlODBC loaded with RTLD_LOCAL, the library preloaded') or diag($err);
	$instance->('RTLD_LOCAL', $out);

	# no Connection Manager: the driver's own answer
	($rc, $out, $err) = run_preloaded("$testdir/odbc_test",
		"Driver={PostgreSQL Unicode};Server=localhost;Port=$pgport;Database=postgres;UID=$user");
	is($rc, 0, 'psqlODBC straight to the server, the library preloaded') or diag($err);
	like($out, qr/^server_name=localhost rc=0 len=9$/m,
		'without Connection Manager, SQL_SERVER_NAME is the Server setting');
	like($out, qr/^port=$pgport$/m, 'without Connection Manager: on the server');
}

# The library exports its API, the libpq functions it interposes and the
# ODBC functions it wraps, and nothing else.
{
	my $libdir = `pg_config --libdir`;
	chomp $libdir;
	my @listed = slurp_file(CmProg::top() . '/client/exports.list') =~ /^\s+(\w+);$/mg;
	my @defined = grep { $_ ne '' }
	  map { /^\S+ [TDBRW] (\w+)/ ? $1 : '' } split /\n/, `nm -D --defined-only $libdir/libpqcm.so.1`;
	is_deeply([ sort @defined ], [ sort @listed ],
		'libpqcm.so.1 exports exactly the symbols of exports.list');
}

done_testing();
