
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The JDBC driver (client/jdbc, docs/jdbc.md): Java programs reach their
# instances through conmgr with pgjdbc unchanged.  Against the fake conmgr
# (client/test/fake_conmgr.pl): the route request and registration,
# targetServerType mapping, errors (no instance, silence past
# connectTimeout, garbage, preferPrimary, a socketFactory of the
# application's), fallback to the next entry, who may answer as conmgr,
# failure notices and conmgr going away.  Against real servers and a real
# conmgr: routing, registration, getURL(), a statement blocked when the
# primary's watchdog freezes, and a HikariCP pool evicting the connection.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use File::Path qw(make_path);
use CmClient;
use CmConmgr;
use CmNode;
use CmProg;

my $javadir = '/usr/share/java';
my $pgjdbc  = "$javadir/postgresql.jar";
my ($hikari) = grep { -f $_ } ("$javadir/HikariCP.jar", glob("$javadir/HikariCP-*.jar"));
my $slf4j = "$javadir/slf4j-api.jar";
my $slf4j_nop = "$javadir/slf4j-nop.jar";

plan skip_all => 'javac not found (default-jdk-headless)'
  unless system('sh', '-c', 'command -v javac >/dev/null 2>&1') == 0;
plan skip_all => "pgjdbc not found: $pgjdbc (libpostgresql-jdbc-java)" unless -f $pgjdbc;
plan skip_all => "HikariCP or slf4j-api not found in $javadir (libhikaricp-java)"
  unless $hikari && -f $slf4j;

my $top = CmProg::top();

# the driver's jar, as the Makefile builds it, and the test programs
system('make', '-s', '-C', "$top/client/jdbc") == 0 or BAIL_OUT('could not build the JDBC driver');
my $jar = "$top/client/jdbc/pgconmgr-jdbc.jar";
my $classes = PostgreSQL::Test::Utils::tempdir('jdbc_classes');
my $cp = join(':', $jar, $pgjdbc, $hikari, $slf4j, -f $slf4j_nop ? $slf4j_nop : ());
system('javac', '--release', '11', '-cp', $cp, '-d', $classes,
	glob("$top/client/jdbc/test/*.java")) == 0
  or BAIL_OUT('could not compile the JDBC test programs');
my $examples = PostgreSQL::Test::Utils::tempdir('jdbc_example');
is(system('javac', '--release', '11', '-cp', $jar, '-d', $examples, "$top/examples/jdbc/Example.java"),
	0, 'examples/jdbc/Example.java compiles');
$cp = "$classes:$cp";

# Run JdbcTool to completion: (exit code, { key => value }, all output).
sub jdbc
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'java', '-cp', $cp, 'JdbcTool', @args ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	my %r = $out =~ /^(\w+)=(.*)$/mg;
	return ($? >> 8, \%r, $out . $err);
}

sub jdbc_bg
{
	return CmClient::start_bg('java', '-cp', $cp, 'JdbcTool', @_);
}

# ---- against the fake conmgr ----

my $node   = CmClient::plain_node('jdbc_plain');
my $pgport = $node->port;
my $fake   = CmClient::fake_for($node);
my $cmport = $fake->{port};
my $url    = "jdbc:conmgr:postgresql://localhost:$cmport/postgres";

my ($logs, $rc, $r, $all) = CmClient::between(
	sub { jdbc('connect', "$url?targetServerType=primary&ApplicationName=jdbc_app", 'SELECT 42') },
	$fake);
is($rc, 0, 'connects through the fake conmgr') or diag($all);
is($r->{class}, 'org.postgresql.jdbc.PgConnection', 'the connection is pgjdbc\'s own object');
is($r->{server_port}, $pgport, 'the session runs on the instance conmgr named');
is($r->{value}, 42, 'statements run');
like($r->{url} // '', qr{^jdbc:postgresql://127\.0\.0\.1:$pgport/postgres$},
	'getMetaData().getURL() names the instance');
like($logs->[0], qr/^route tsa=1 pid=\d+ app=jdbc_app$/m,
	'targetServerType=primary is sent as read-write, with ApplicationName');
like($logs->[0], qr/^register pid=$r->{backend_pid} addr=127\.0\.0\.1 port=$r->{client_port}$/m,
	'backend PID and the SQL socket\'s local address are registered');

my %tsa = (any => 0, master => 1, secondary => 2, slave => 2, preferSecondary => 5, preferSlave => 5);
for my $t (sort keys %tsa)
{
	($logs, $rc, $r, $all) = CmClient::between(
		sub { jdbc('connect', "$url?targetServerType=$t", '') }, $fake);
	like($logs->[0], qr/^route tsa=$tsa{$t} /m, "targetServerType=$t is sent as target_session_attrs $tsa{$t}");
	if ($t =~ /^(secondary|slave)$/)
	{
		# conmgr (here a fake) named a primary: pgjdbc's own check refuses it
		isnt($rc, 0, "targetServerType=$t: pgjdbc's own check refuses a primary");
		like($r->{error} // '', qr/named by conmgr at "localhost", port $cmport failed: .*targetServerType/,
			"targetServerType=$t: the error names the instance, the conmgr and pgjdbc's reason");
	}
	else
	{
		is($rc, 0, "targetServerType=$t connects") or diag($all);
	}
}

($logs, $rc, $r, $all) = CmClient::between(
	sub { jdbc('connect', "$url?targetServerType=preferPrimary", '') }, $fake);
isnt($rc, 0, 'targetServerType=preferPrimary is refused');
like($r->{error} // '', qr/targetServerType=preferPrimary is not supported through Connection Manager \(conmgr at "localhost", port $cmport\)/,
	'preferPrimary: clear error naming the conmgr entry');
unlike($logs->[0], qr/route/, 'preferPrimary: nothing sent to conmgr');

($rc, $r, $all) = jdbc('connect', "$url?socketFactory=javax.net.DefaultSocketFactory", '');
isnt($rc, 0, 'an application\'s socketFactory is refused');
like($r->{error} // '', qr/socketFactory=javax\.net\.DefaultSocketFactory is not supported through Connection Manager \(conmgr at "localhost", port $cmport\)/,
	'socketFactory: clear error naming the conmgr entry');

# DataSource
($rc, $r, $all) = jdbc('datasource', 'localhost', $cmport, 'postgres', 'primary');
is($rc, 0, 'ConmgrDataSource connects') or diag($all);
is($r->{server_port}, $pgport, 'ConmgrDataSource: on the instance');
($rc, $r, $all) = jdbc('hikari_ds', 'localhost', $cmport, 'postgres', 'primary');
is($rc, 0, 'HikariCP with dataSourceClassName ConmgrDataSource connects') or diag($all);
is($r->{pool_server_port}, $pgport, 'HikariCP with dataSourceClassName: on the instance');

# the example program
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'java', '-cp', "$jar:$pgjdbc:$examples", 'Example', "$url?targetServerType=primary" ],
		'>', \$out, '2>', \$err, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	is($?, 0, 'the example runs') or diag($err);
	like($out, qr{^connected to jdbc:postgresql://127\.0\.0\.1:$pgport/postgres\nserver port $pgport, standby false$}m,
		'the example prints the instance it reached');
}

# errors: no instance, silence past connectTimeout, garbage
my %fakes;
for my $mode (qw(none silent garbage))
{
	my $p = PostgreSQL::Test::Cluster::get_free_port();
	$fakes{$mode} = CmClient::start_fake($p, $mode);
}
my ($none, $silent, $garbage) = map { $fakes{$_}{port} } qw(none silent garbage);

($rc, $r, $all) = jdbc('connect', "jdbc:conmgr:postgresql://localhost:$none/postgres?targetServerType=secondary", '');
isnt($rc, 0, 'no instance: the connection fails');
is($r->{sqlstate}, '08001', 'no instance: SQLSTATE 08001');
like($r->{error} // '', qr/^conmgr at "localhost", port $none has no instance for target_session_attrs=read-only: no live instance matches$/,
	'no instance: conmgr\'s text, naming the entry');

my $t0 = time();
($rc, $r, $all) = jdbc('connect', "jdbc:conmgr:postgresql://localhost:$silent/postgres?connectTimeout=2", '');
isnt($rc, 0, 'silent conmgr: the connection fails');
like($r->{error} // '', qr/^conmgr at "localhost", port $silent did not answer the route request within the connection timeout \(connectTimeout\)$/,
	'silent conmgr: the error names the entry and connectTimeout');
cmp_ok($r->{elapsed_ms} // 0, '>=', 1900, "silent conmgr: not before connectTimeout ($r->{elapsed_ms} ms)");
cmp_ok($r->{elapsed_ms} // 1e9, '<', 4000, "silent conmgr: soon after connectTimeout ($r->{elapsed_ms} ms)");

($rc, $r, $all) = jdbc('connect', "jdbc:conmgr:postgresql://localhost:$silent,localhost:$cmport/postgres?connectTimeout=0&loginTimeout=2", '');
isnt($rc, 0, 'silent conmgr, loginTimeout: the connection fails');
like($r->{error} // '', qr/^conmgr at "localhost", port $silent did not answer the route request within the connection timeout \(loginTimeout\) \| conmgr at "localhost", port $cmport was not tried: loginTimeout expired$/,
	'silent conmgr, loginTimeout: bounds the whole attempt, the next entry is not tried');
cmp_ok($r->{elapsed_ms} // 1e9, '<', 4000, "silent conmgr, loginTimeout: soon after it ($r->{elapsed_ms} ms)");

($rc, $r, $all) = jdbc('connect', "jdbc:conmgr:postgresql://localhost:$garbage/postgres", '');
isnt($rc, 0, 'garbage from conmgr: the connection fails');
like($r->{error} // '', qr/^invalid answer from conmgr at "localhost", port $garbage: unknown or unexpected message type$/,
	'garbage: the error names the entry');

# fallback: entries in order, each failure on a line of its own
my $closed = PostgreSQL::Test::Cluster::get_free_port();
($rc, $r, $all) = jdbc('connect',
	"jdbc:conmgr:postgresql://localhost:$none,localhost:$garbage,localhost:$closed,localhost:$cmport/postgres", 'SELECT 7');
is($rc, 0, 'fallback: the next entries are tried until one connects') or diag($all);
is($r->{server_port}, $pgport, 'fallback: on the instance of the last entry');
($rc, $r, $all) = jdbc('connect',
	"jdbc:conmgr:postgresql://localhost:$none,localhost:$garbage,localhost:$closed/postgres?connectTimeout=2", '');
isnt($rc, 0, 'every entry fails: the connection fails');
like($r->{error} // '',
	qr/^conmgr at "localhost", port $none has no instance[^|]* \| invalid answer from conmgr at "localhost", port $garbage[^|]* \| Connection to localhost:$closed refused/,
	'every entry fails: one line per entry, in order; pgjdbc\'s own error for a conmgr that is down');
($rc, $r, $all) = jdbc('connect',
	"jdbc:conmgr:postgresql://localhost:$none,localhost:$cmport/postgres?loadBalanceHosts=true", '');
is($rc, 0, 'loadBalanceHosts=true: connects whichever entry comes first') or diag($all);

# a plain server on an entry is connected to directly
($rc, $r, $all) = jdbc('connect', "jdbc:conmgr:postgresql://localhost:$pgport/postgres", 'SELECT 1');
is($rc, 0, 'a plain PostgreSQL server on an entry: connected directly') or diag($all);
like($r->{url} // '', qr{^jdbc:postgresql://localhost:$pgport/postgres$}, 'plain server: pgjdbc\'s URL');

# who may answer as conmgr: the fake is the test user's own
{
	my $me = getpwuid($>);
	local $ENV{PGCONMGRUSER} = 'root';
	($logs, $rc, $r, $all) = CmClient::between(sub { jdbc('connect', $url, '') }, $fake);
	isnt($rc, 0, 'PGCONMGRUSER naming another user: the conmgr of the test user is refused');
	like($r->{error} // '',
		qr/^conmgr at "localhost", port $cmport is not trusted: the socket that answered on 127\.0\.0\.1 port $cmport belongs to UID $> \(\Q$me\E\), and PGCONMGRUSER="root" allows only UID 0 \(root\)$/,
		'impostor: the error names the port, the UID found and the setting');
	unlike($logs->[0], qr/^route/m, 'impostor: no route request reached it');
	like($logs->[0], qr/^closed stage=route$/m, 'impostor: the connection was closed after the greeting');

	$ENV{PGCONMGRUSER} = "nosuchuser_cm, $>";
	($rc, $r, $all) = jdbc('connect', $url, '');
	like($r->{error} // '', qr/invalid value "nosuchuser_cm, $>" for environment variable PGCONMGRUSER: no user named "nosuchuser_cm"/,
		'an unknown user in PGCONMGRUSER fails the entry');

	$ENV{PGCONMGRUSER} = "root, $>";
	($rc, $r, $all) = jdbc('connect', $url, '');
	is($rc, 0, 'PGCONMGRUSER listing the UID accepts the conmgr') or diag($all);
	$ENV{PGCONMGRUSER} = "$me";
	($rc, $r, $all) = jdbc('connect', $url, '');
	is($rc, 0, 'PGCONMGRUSER listing the user name accepts the conmgr') or diag($all);
	delete $ENV{PGCONMGRUSER};
	local $ENV{CMDATA} = '/';
	($rc, $r, $all) = jdbc('connect', $url, '');
	is($rc, 0, 'without PGCONMGRUSER the program\'s own user is accepted') or diag($all);
}

# a conmgr on ::1: the check reads /proc/net/tcp6
{
	my $p6 = PostgreSQL::Test::Cluster::get_free_port();
	my $fake6 = CmClient::start_fake($p6, 'instance', "127.0.0.1:$pgport", addr => '::1');
	($rc, $r, $all) = jdbc('connect', "jdbc:conmgr:postgresql://[::1]:$p6/postgres", 'SELECT 1');
	is($rc, 0, 'a conmgr on ::1 of the test user is accepted') or diag($all);
	local $ENV{PGCONMGRUSER} = 'root';
	($logs, $rc, $r, $all) = CmClient::between(
		sub { jdbc('connect', "jdbc:conmgr:postgresql://[::1]:$p6/postgres", '') }, $fake6);
	like($r->{error} // '',
		qr/^conmgr at "::1", port $p6 is not trusted: the socket that answered on ::1 port $p6 belongs to UID $> /,
		'::1: a conmgr of another user than PGCONMGRUSER names is refused');
	unlike($logs->[0], qr/^route/m, '::1: no route request reached it');
}

# failure notice and conmgr going away, on a statement blocked in the server
sub blocked_on_fake
{
	my ($f, $sig, $re, $name, $min_ms, $max_ms, $params) = @_;
	my $h = jdbc_bg('block', "jdbc:conmgr:postgresql://localhost:$f->{port}/postgres" . ($params // ''),
		'SELECT pg_sleep(30)');
	CmClient::wait_output($h, qr/^ready=1$/m, "$name: statement started");
	my ($bpid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
	CmClient::wait_output($f, qr/^register pid=$bpid /m, "$name: registered");
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $bpid AND query LIKE '%pg_sleep%'")
	  or diag('the statement is not running');
	my $t = time();
	CmClient::signal_bg($f, $sig);
	CmClient::wait_output($h, qr/^later_sqlstate=/m, "$name: the blocked statement returned");
	my $ms = int((time() - $t) * 1000);
	CmClient::finish_bg($h);
	my %o = $h->{out} =~ /^(\w+)=(.*)$/mg;
	is($o{sqlstate}, '08006', "$name: SQLSTATE 08006");
	like($o{cause} // '', $re, "$name: the cause carries conmgr's reason");
	cmp_ok($ms, '>=', $min_ms, "$name: not too early (${ms} ms)") if $min_ms;
	cmp_ok($ms, '<', $max_ms, "$name: in time (${ms} ms)");
	is($o{later_sqlstate}, '08003', "$name: a later call fails (connection closed)");
	return;
}
blocked_on_fake($fake, 'USR1',
	qr/^conmgr reported a failure of the instance \(heartbeat timeout\): heartbeat not answered within 3000 ms/,
	'failure notice', 0, 1000);
blocked_on_fake($fake, 'USR2', qr/^conmgr closed its connection \(conmgr stopped or failed\)/,
	'conmgr gone', 0, 1000);
# part of a notice that stays on the socket: the session fails after 2 s
my $partial = CmClient::start_fake(PostgreSQL::Test::Cluster::get_free_port(), 'partial', "127.0.0.1:$pgport");
blocked_on_fake($partial, 'USR1', qr/^incomplete message from conmgr/, 'incomplete notice', 1800, 3500);

# TLS to the instance: pgjdbc layers its TLS socket over the driver's
SKIP:
{
	skip 'openssl not found', 10
	  unless system('sh', '-c', 'command -v openssl >/dev/null 2>&1') == 0;
	my $dd = $node->data_dir;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'openssl', 'req', '-new', '-x509', '-days', '2', '-nodes', '-subj', '/CN=127.0.0.1',
			'-addext', 'subjectAltName=IP:127.0.0.1',
			'-keyout', "$dd/server.key", '-out', "$dd/server.crt" ], '>', \$o, '2>', \$e)
	  or die "openssl: $e";
	# another self-signed certificate, as a root that did not sign the server's
	my $other = PostgreSQL::Test::Utils::tempdir('othercert');
	IPC::Run::run([ 'openssl', 'req', '-new', '-x509', '-days', '2', '-nodes', '-subj', '/CN=127.0.0.1',
			'-addext', 'subjectAltName=IP:127.0.0.1',
			'-keyout', "$other/other.key", '-out', "$other/other.crt" ], '>', \$o, '2>', \$e)
	  or die "openssl: $e";
	chmod 0600, "$dd/server.key";
	$node->append_conf('postgresql.conf', 'ssl = on');
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('ssl') = 'on'");
	($logs, $rc, $r, $all) = CmClient::between(
		sub { jdbc('connect', "$url?sslmode=require", 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()') },
		$fake);
	is($rc, 0, 'TLS: connects through the fake conmgr') or diag($all);
	is($r->{value}, 't', 'TLS: the session is encrypted');
	like($logs->[0], qr/^register pid=$r->{backend_pid} addr=127\.0\.0\.1 port=$r->{client_port}$/m,
		'TLS: the registration names the session');
	blocked_on_fake($fake, 'USR1', qr/conmgr reported a failure of the instance \(heartbeat timeout\)/,
		'TLS, failure notice', 0, 1000, '?sslmode=require');

	# verify-full: pgjdbc checks the certificate against the instance's
	# name (the host conmgr gave), as with a direct connection
	($logs, $rc, $r, $all) = CmClient::between(
		sub { jdbc('connect', "$url?sslmode=verify-full&sslrootcert=$dd/server.crt",
				'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()') },
		$fake);
	is($rc, 0, 'TLS verify-full: connects, the certificate matches the instance conmgr named') or diag($all);
	is($r->{value}, 't', 'TLS verify-full: the session is encrypted');
	($logs, $rc, $r, $all) = CmClient::between(
		sub { jdbc('connect', "$url?sslmode=verify-full&sslrootcert=$other/other.crt", 'SELECT 1') },
		$fake);
	is($rc, 1, 'TLS verify-full: a certificate the root did not sign is refused');
	like($all, qr/certif|PKIX|SSL/i, 'TLS verify-full: the error names the certificate') or diag($all);
}

# Statement.cancel() while a statement runs: pgjdbc sends the cancel
# request straight to the instance (through the driver's socket factory,
# which gives it a plain socket), not to conmgr; the session stays usable
($logs, $rc, $r, $all) = CmClient::between(
	sub { jdbc('cancel', $url, 'SELECT pg_sleep(30)') },
	$fake);
is($r->{sqlstate}, '57014', 'cancel: the statement is cancelled (57014)') or diag($all);
cmp_ok($r->{elapsed_ms} // 99999, '<', 5000, 'cancel: within 5 s');
is($r->{later}, '1', 'cancel: the connection is still usable') or diag($all);
is(scalar(() = $logs->[0] =~ /^route /mg), 1, 'cancel: conmgr got one route request, none for the cancel')
  or diag($logs->[0]);

# setQueryTimeout: pgjdbc's own timer cancels the statement at the instance
($logs, $rc, $r, $all) = CmClient::between(
	sub { jdbc('timeout', $url, 'SELECT pg_sleep(30)') },
	$fake);
is($r->{sqlstate}, '57014', 'setQueryTimeout: the statement is cancelled (57014)') or diag($all);
cmp_ok($r->{elapsed_ms} // 99999, '<', 6000, 'setQueryTimeout(1): within 6 s');
is($r->{later}, '1', 'setQueryTimeout: the connection is still usable') or diag($all);
is(scalar(() = $logs->[0] =~ /^route /mg), 1, 'setQueryTimeout: conmgr got one route request, none for the cancel')
  or diag($logs->[0]);

# eight threads, eight connections, one watcher: one failure notice each
{
	my $h = jdbc_bg('threads', $url, 'SELECT pg_sleep(30)');
	CmClient::wait_output($h, qr/^ready=8$/m, 'threads: eight connections blocked');
	my %o = $h->{out} =~ /^(\w+)=(.*)$/mg;
	is($o{watcher_threads}, 1, 'threads: one watcher thread serves the eight connections');
	my @pids = map { $o{"t${_}_backend_pid"} // 0 } 0 .. 7;
	foreach my $p (@pids)
	{
		CmClient::wait_output($fake, qr/^register pid=$p /m, "threads: backend $p registered");
	}
	$node->poll_query_until('postgres',
		"SELECT count(*) = 8 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND pid IN ("
		  . join(',', @pids) . ')')
	  or diag('the statements are not all running');
	my $t = time();
	CmClient::signal_bg($fake, 'USR1');
	CmClient::wait_output($h, qr/^done=1$/m, 'threads: all eight returned');
	my $ms = int((time() - $t) * 1000);
	CmClient::finish_bg($h);
	%o = $h->{out} =~ /^(\w+)=(.*)$/mg;
	is(scalar(grep { ($o{"t${_}_sqlstate"} // '') eq '08006' } 0 .. 7), 8, 'threads: each failed with 08006');
	cmp_ok($ms, '<', 1000, "threads: all within 1 s of the notice (${ms} ms)");
}

# .pgpass: pgjdbc looks the password up for the instance conmgr named (its
# host and port), as with a direct connection, not for conmgr's entry
{
	my $user = $node->safe_psql('postgres', 'SELECT current_user');
	$node->safe_psql('postgres', "SET password_encryption = 'scram-sha-256'; "
		  . "ALTER ROLE CURRENT_USER PASSWORD 'pgpass-secret'");
	my $hba = $node->data_dir . '/pg_hba.conf';
	my $hba_text = slurp_file($hba);
	open my $fh, '>', $hba or die "$hba: $!";
	print $fh "host all all 127.0.0.1/32 scram-sha-256\n$hba_text";
	close $fh;
	$node->reload;
	my $pgpass_dir = PostgreSQL::Test::Utils::tempdir('pgpass');
	my $write_pgpass = sub {
		my ($line) = @_;
		open my $pf, '>', "$pgpass_dir/pgpass" or die $!;
		print $pf "$line\n";
		close $pf;
		chmod 0600, "$pgpass_dir/pgpass";
	};
	local $ENV{PGPASSFILE} = "$pgpass_dir/pgpass";
	$write_pgpass->("127.0.0.1:$pgport:postgres:$user:pgpass-secret");
	my $ok;
	for (1 .. 50)    # until the reload is in effect
	{
		($rc, $r, $all) = jdbc('connect', $url, 'SELECT 1');
		$ok = $rc == 0;
		last if $ok;
		usleep(100_000);
	}
	ok($ok, '.pgpass: the password of the instance\'s entry is used') or diag($all);
	$write_pgpass->("localhost:$cmport:postgres:$user:pgpass-secret");
	($rc, $r, $all) = jdbc('connect', $url, 'SELECT 1');
	is($rc, 1, '.pgpass: an entry for conmgr\'s host and port is not used for the instance');
	like($all, qr/password|SCRAM|28P01/i, '.pgpass: the server asked for the password') or diag($all);
	open $fh, '>', $hba or die "$hba: $!";
	print $fh $hba_text;
	close $fh;
	$node->reload;
}

# ---- real servers, real conmgr ----

my $hb_timeout = 1000;
my ($primary, $standby) = CmNode->create_pair('jdbc_primary', 'jdbc_standby',
	check_attr_interval => 200,
	log_min_messages => undef);
my ($pport, $sport) = ($primary->port, $standby->port);
$primary->safe_psql('postgres', 'CREATE EXTENSION watchdog');
# registrations are checked and counted in precise mode only
$primary->append_conf('postgresql.conf', "watchdog.termination_mode = 'precise'");
$primary->reload;
my $cm = CmConmgr->new(
	name => 'jdbc',
	nodes => [ $primary, $standby ],
	heartbeat_interval => 200, heartbeat_timeout => $hb_timeout)->start;
my $curl = "jdbc:conmgr:postgresql://localhost:$cm->{port}/postgres";

# Connect until conmgr has learnt its instances' attributes.
sub wait_jdbc
{
	my ($u, $re, $name) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	my ($rc, $r, $all);
	while (time() < $deadline)
	{
		($rc, $r, $all) = jdbc('connect', $u, 'SELECT 1');
		last if $rc == 0 && $all =~ $re;
		usleep(200_000);
	}
	like($all, $re, $name);
	return $r;
}
$r = wait_jdbc("$curl?targetServerType=primary", qr/^server_port=$pport$/m,
	'targetServerType=primary lands on the primary');
like($r->{url} // '', qr{^jdbc:postgresql://127\.0\.0\.1:$pport/postgres$}, 'getURL() names the primary');
is($r->{in_recovery}, 'f', 'targetServerType=primary: pg_is_in_recovery() is false');
$r = wait_jdbc("$curl?targetServerType=secondary", qr/^server_port=$sport$/m,
	'targetServerType=secondary lands on the standby');
like($r->{url} // '', qr{^jdbc:postgresql://127\.0\.0\.1:$sport/postgres$}, 'getURL() names the standby');
is($r->{in_recovery}, 't', 'targetServerType=secondary: pg_is_in_recovery() is true');

my $wd_pid = $primary->worker_pid('watchdog') // '';
like($wd_pid, qr/^\d+$/, 'the primary runs a watchdog process');

# Wait until conmgr and the watchdog know the session of backend PID.
sub wait_registered
{
	my ($bpid, $name) = @_;
	my $json = $cm->wait_status(qr/"backend_pid": $bpid\b/);
	like($json, qr/"backend_pid": $bpid\b/, "$name: conmgr knows the registered backend PID");
	ok($primary->poll_query_until('postgres',
			'SELECT coalesce(sum(sessions_registered), 0) > 0 FROM pgx_stat_watchdog'),
		"$name: the primary's watchdog accepted the registration");
}

my $h = jdbc_bg('block', "$curl?targetServerType=primary", 'SELECT pg_sleep(30)');
CmClient::wait_output($h, qr/^ready=1$/m, 'frozen watchdog: statement started');
like($h->{out}, qr/^server_port=$pport$/m, 'frozen watchdog: on the primary');
my ($bpid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
wait_registered($bpid, 'frozen watchdog');
$primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $bpid AND query LIKE '%pg_sleep%'");
$t0 = time();
kill 'STOP', $wd_pid;
CmClient::wait_output($h, qr/^later_sqlstate=/m, 'frozen watchdog: the blocked statement returned');
my $ms = int((time() - $t0) * 1000);
kill 'CONT', $wd_pid;
CmClient::finish_bg($h);
my %o = $h->{out} =~ /^(\w+)=(.*)$/mg;
is($o{sqlstate}, '08006', 'frozen watchdog: SQLSTATE 08006');
like($o{cause} // '', qr/^conmgr reported a failure of the instance \(heartbeat timeout\)/,
	'frozen watchdog: the cause carries conmgr\'s reason');
cmp_ok($ms, '>=', $hb_timeout - 200, "frozen watchdog: not before the heartbeat timeout (${ms} ms)");
cmp_ok($ms, '<', $hb_timeout + 1000, "frozen watchdog: within heartbeat_timeout + 1 s (${ms} ms)");
is($o{later_sqlstate}, '08003', 'frozen watchdog: a later call fails');

# a HikariCP pool evicts the connection and gets a new one
wait_jdbc("$curl?targetServerType=primary", qr/^server_port=$pport$/m,
	'the primary is routed to again after the watchdog resumes');
$h = CmClient::start_bg('java', '-cp', $cp, 'JdbcTool', 'hikari', "$curl?targetServerType=primary",
	'SELECT pg_sleep(30)');
CmClient::wait_output($h, qr/^ready=1$/m, 'pool: statement started');
like($h->{out}, qr/^pool_server_port=$pport$/m, 'pool: on the primary');
($bpid) = $h->{out} =~ /^pool_backend_pid=(\d+)$/m;
wait_registered($bpid, 'pool');
$primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $bpid AND query LIKE '%pg_sleep%'");
kill 'STOP', $wd_pid;
CmClient::wait_output($h, qr/^sqlstate=/m, 'pool: the blocked statement returned');
kill 'CONT', $wd_pid;
CmClient::wait_output($h, qr/^pool_second_value=/m, 'pool: getConnection() again after the watchdog resumes');
CmClient::finish_bg($h);
%o = $h->{out} =~ /^(\w+)=(.*)$/mg;
is($o{sqlstate}, '08006', 'pool: SQLSTATE 08006 through the pool\'s proxy');
like($o{cause} // '', qr/conmgr reported a failure of the instance/, 'pool: conmgr\'s reason');
is($o{pool_evicted}, 'true', 'pool: the broken connection was evicted (a new backend)');
is($o{pool_second_value}, '1', 'pool: the new connection works');

done_testing();
