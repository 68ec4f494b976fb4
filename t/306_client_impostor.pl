
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library: who may answer as conmgr.  Before the route request the
# library asks the kernel which user holds the socket that answered, and
# believes only root, the program's own user (or CMDATA's owner), or the
# users of PGCONMGRUSER.
#
# The suite runs as one unprivileged user, so the fake conmgr and the
# program run as the same user here; the program is made to expect
# another one (PGCONMGRUSER=root), which makes our own conmgr an impostor
# for it.  The server the fake conmgr names records every byte it gets
# (client/test/fake_server.pl), which shows that nothing, the password
# least of all, reaches it from a refused program.  t/480 has the same
# with an impostor run by another OS user (root only).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CmClient;
use CmProg;

# root is always believed, so as root our own conmgr cannot be an impostor
plan skip_all => 'runs as an unprivileged user (t/480 runs as root)' if $> == 0;

my $me    = getpwuid($>);
my $other = 'root';

# the server conmgr names, which records what it receives
my $srvport = PostgreSQL::Test::Cluster::get_free_port();
my $srv     = CmClient::start_server($srvport);
my $cmport  = PostgreSQL::Test::Cluster::get_free_port();
my $fake    = CmClient::start_fake($cmport, 'instance', "127.0.0.1:$srvport");

my $password = 'pw-' . int(rand(1e9));
local $ENV{PGPASSWORD} = $password;
delete $ENV{$_} for qw(PGCONMGRUSER PGCONMGR_INSECURE_UNVERIFIED_PEER CMDATA PGCONMGR);
my $ci = "host=localhost port=$cmport dbname=app user=appuser";

# Run code; returns what the recording server and the fake conmgr
# printed meanwhile, then what code returned.
sub between
{
	my ($code) = @_;
	my ($logs, @r) = CmClient::between($code, $srv, $fake);
	return (@$logs, @r);
}

# The test driver: (server's lines, conmgr's lines, exit code, output).
sub tool_between
{
	my @args = @_;
	my ($srvlog, $cmlog, $rc, $out, $err) = between(sub { CmClient::run_tool(@args) });
	return ($srvlog, $cmlog, $rc, $out . $err);
}

# What a refused program leaves: conmgr saw the recognition request only,
# and the server it names saw nothing.
sub refused_ok
{
	my ($srvlog, $cmlog, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($cmlog, "closed stage=route\n", "$name: conmgr got no route request");
	is($srvlog, '', "$name: the server conmgr names received nothing");
	return;
}

# Default: a conmgr of the program's own user is believed; the server it
# names gets the startup packet and, when it asks, the password.
my ($srvlog, $cmlog, $rc, $out) = tool_between('connect', $ci);
like($out, qr/password recorded by the fake server/, 'default: a conmgr of our own user is used');
like($cmlog, qr/^route tsa=0 /m, 'default: conmgr got the route request');
like($srvlog, qr/^password=\Q$password\E$/m,
	'default: the server it names gets the password (what a believed impostor would get)');

# PGCONMGRUSER naming another user: the same conmgr is an impostor now
{
	local $ENV{PGCONMGRUSER} = $other;
	for my $mode ('connect', 'async')
	{
		($srvlog, $cmlog, $rc, $out) = tool_between($mode, $ci);
		is($rc, 1, "$mode, PGCONMGRUSER=$other: the connection fails");
		like($out,
			qr/^error=conmgr at "localhost", port $cmport is not trusted: the socket that answered on 127\.0\.0\.1 port $cmport belongs to UID $> \(\Q$me\E\), and PGCONMGRUSER="$other" allows only UID 0 \(root\)$/m,
			"$mode: the error names the port, the UID and user found, and PGCONMGRUSER");
		unlike($out, qr/password recorded|connection to server/,
			"$mode: the entry is not tried as a server");
		refused_ok($srvlog, $cmlog, $mode);
	}

	($srvlog, $cmlog, $rc, $out) = tool_between('ping', $ci);
	like($out, qr/^ping=NO_RESPONSE$/m, 'PQping through a refused conmgr: no response');
	refused_ok($srvlog, $cmlog, 'PQping');

	# the next entry of the list is tried, and only it gets the password
	($srvlog, $cmlog, $rc, $out) = tool_between('connect',
		"host=localhost,127.0.0.1 port=$cmport,$srvport dbname=app user=appuser");
	like($out,
		qr/^error=conmgr at "localhost", port $cmport is not trusted: .*\nconnection to server at "127\.0\.0\.1", port $srvport failed: FATAL:  password recorded/m,
		'multi-host: the refused conmgr has its line, then the next entry is tried');
	is($cmlog, "closed stage=route\n", 'multi-host: conmgr got no route request');
	like($srvlog, qr/^negotiate code=80877104$/m, 'multi-host: the next entry is probed as usual');
	like($srvlog, qr/^password=/m, 'multi-host: and connected to');

	# stock psql preloaded, PGPASSWORD set: the attack on a root shell
	my ($stdout, $stderr) = ('', '');
	($srvlog, $cmlog) = between(
		sub {
			local $ENV{LD_PRELOAD} = 'libpqcm.so.1';
			IPC::Run::run([ 'psql', '-X', '-Atc', 'SELECT 1', $ci ],
				'>', \$stdout, '2>', \$stderr,
				IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
			$rc = $? >> 8;
		});
	isnt($rc, 0, 'psql with PGPASSWORD through a refused conmgr fails');
	like($stderr, qr/conmgr at "localhost", port $cmport is not trusted: .*PGCONMGRUSER="$other"/,
		'psql prints the reason');
	refused_ok($srvlog, $cmlog, 'psql');
}

# Accepted spellings of our own user
for my $users ($me, "$>", " $other , $me ", "$other,$>", '')
{
	local $ENV{PGCONMGRUSER} = $users;
	($srvlog, $cmlog, $rc, $out) = tool_between('connect', $ci);
	like($out, qr/password recorded by the fake server/, "PGCONMGRUSER=\"$users\": our conmgr is used");
}

# Invalid values fail the entry, naming the variable
for my $case ([ 'nosuchuser_cm', qr/no user named "nosuchuser_cm"/ ],
	[ '*', qr/no user named "\*" \(wildcards are not supported\)/ ],
	[ '4294967295', qr/UID 4294967295 is out of range/ ])
{
	my ($value, $re) = @$case;
	local $ENV{PGCONMGRUSER} = $value;
	($srvlog, $cmlog, $rc, $out) = tool_between('connect', $ci);
	like($out,
		qr/conmgr at "localhost", port $cmport is not trusted: invalid value "\Q$value\E" for environment variable PGCONMGRUSER: $re/,
		"PGCONMGRUSER=\"$value\": refused with the reason");
	refused_ok($srvlog, $cmlog, "PGCONMGRUSER=\"$value\"");
}

# The check cannot be made: netlink refused, as in a sandbox
my $shim = CmProg::client_test('no_netlink.so');
system('make', '-s', '-C', CmProg::client_test(), 'no_netlink.so') if !-f $shim;
ok(-f $shim, 'client/test/no_netlink.so is built');
{
	local $ENV{LD_PRELOAD} = $shim;
	($srvlog, $cmlog, $rc, $out) = tool_between('connect', $ci);
	is($rc, 1, 'no socket diagnostics: the connection fails');
	like($out,
		qr/conmgr at "localhost", port $cmport is not trusted: the user it runs as cannot be verified: could not create a NETLINK_SOCK_DIAG socket: Permission denied \(PGCONMGR_INSECURE_UNVERIFIED_PEER is not set\)/,
		'no socket diagnostics: the error names the reason and the opt-in');
	refused_ok($srvlog, $cmlog, 'no socket diagnostics');

	local $ENV{PGCONMGR_INSECURE_UNVERIFIED_PEER} = 'on';
	($srvlog, $cmlog, $rc, $out) = tool_between('connect', $ci);
	like($srvlog, qr/^password=/m,
		'PGCONMGR_INSECURE_UNVERIFIED_PEER=on: an unverifiable conmgr is believed, and gets what it asks');
	local $ENV{PGCONMGR_INSECURE_UNVERIFIED_PEER} = 'yes';
	($srvlog, $cmlog, $rc, $out) = tool_between('connect', $ci);
	like($out, qr/cannot be verified/, 'PGCONMGR_INSECURE_UNVERIFIED_PEER=yes is not "on"');
}
{
	local $ENV{PGCONMGR_INSECURE_UNVERIFIED_PEER} = 'on';
	local $ENV{PGCONMGRUSER} = $other;
	($srvlog, $cmlog, $rc, $out) = tool_between('connect', $ci);
	like($out, qr/belongs to UID $>/,
		'PGCONMGR_INSECURE_UNVERIFIED_PEER=on still refuses a verified unexpected user');
	refused_ok($srvlog, $cmlog, 'insecure opt-in with a verified user');
}

# PGCONMGR=on: a conmgr on a non-loopback address of this host is
# verified like one on loopback
my ($hostaddr) = `ip -o -4 addr show scope global 2>/dev/null` =~ /\binet (\d+\.\d+\.\d+\.\d+)\//;
SKIP:
{
	skip 'this host has no non-loopback IPv4 address', 4 unless $hostaddr;
	my $far = CmClient::start_fake(PostgreSQL::Test::Cluster::get_free_port(),
		'instance', "127.0.0.1:$srvport", addr => $hostaddr);
	my $fci = "host=$hostaddr port=$far->{port} dbname=app user=appuser";
	local $ENV{PGCONMGR} = 'on';
	my ($logs, $trc, $tout, $terr) =
	  CmClient::between(sub { CmClient::run_tool('connect', $fci) }, $srv, $far);
	like($logs->[1], qr/^route tsa=0 /m, "PGCONMGR=on, $hostaddr: a conmgr of our own user is used");
	local $ENV{PGCONMGRUSER} = $other;
	($logs, $trc, $tout, $terr) =
	  CmClient::between(sub { CmClient::run_tool('connect', $fci) }, $srv, $far);
	like($tout, qr/the socket that answered on \Q$hostaddr\E port $far->{port} belongs to UID $>/,
		"PGCONMGR=on, $hostaddr, PGCONMGRUSER=$other: its user is verified and refused");
	is($logs->[1], "closed stage=route\n", "PGCONMGR=on, $hostaddr: no route request");
	is($logs->[0], '', "PGCONMGR=on, $hostaddr: the server received nothing");
}

# A plain server on a loopback port is not affected by PGCONMGRUSER
{
	local $ENV{PGCONMGRUSER} = $other;
	($srvlog, $cmlog, $rc, $out) = tool_between('connect', "host=localhost port=$srvport dbname=app user=appuser");
	like($out, qr/password recorded by the fake server/,
		'a plain server is left to libpq whatever PGCONMGRUSER says');
}

done_testing();
