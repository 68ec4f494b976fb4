
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library, as root: another OS user listening on conmgr's port.
# An impostor run as "nobody" on 127.0.0.1 and on ::1 answers like conmgr
# and names a server that asks for a cleartext password and records what
# it gets (client/test/fake_server.pl); root runs psql with the library
# preloaded and PGPASSWORD set.  The connection must fail with the reason,
# and neither the route request nor anything else may leave root's psql.
# A genuine conmgr run by the unprivileged test user is accepted once
# PGCONMGRUSER or CMDATA names that user.  t/306 covers the rest as an
# unprivileged user; this file needs root, so scripts/test-partitions.sh
# runs it.  Last, a conmgr in another network namespace, reached with
# PGCONMGR=on: its user cannot be verified.

use strict;
use warnings FATAL => 'all';
use File::Temp ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::IP;
use CmClient;
use CmProg;

plan skip_all => 'needs root to run an impostor as another user; '
  . 'scripts/test-partitions.sh runs it as root'
  if $> != 0;
my $cmuser = $ENV{CM_USER} // 'cmtest';
my $cmuid  = getpwnam($cmuser);
plan skip_all => "user \"$cmuser\" does not exist (set CM_USER)" unless defined $cmuid;
my $nobody = getpwnam('nobody');
plan skip_all => 'user "nobody" does not exist' unless defined $nobody;

delete $ENV{$_} for qw(PGCONMGRUSER PGCONMGR_INSECURE_UNVERIFIED_PEER CMDATA PGCONMGR);
my $password = 'rootpw-' . int(rand(1e9));
local $ENV{PGPASSWORD} = $password;

my $srvport = PostgreSQL::Test::Cluster::get_free_port();
my $srv     = CmClient::start_server($srvport);

# the impostors, as nobody
my %impostor;
$impostor{v4} = CmClient::start_fake(PostgreSQL::Test::Cluster::get_free_port(),
	'instance', "127.0.0.1:$srvport", user => 'nobody');
my $have_v6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0, Listen => 1);
if ($have_v6)
{
	close $have_v6;
	$impostor{v6} = CmClient::start_fake(PostgreSQL::Test::Cluster::get_free_port(),
		'instance', "127.0.0.1:$srvport", user => 'nobody', addr => '::1');
}
else
{
	diag('no IPv6 loopback here: the ::1 case is skipped');
}

# psql preloaded, as root; returns the recorder's and the fake's lines
# meanwhile, psql's exit code and its stderr.
sub psql_between
{
	my ($fake, $conninfo) = @_;
	my ($stdout, $stderr) = ('', '');
	my ($logs, $rc) = CmClient::between(
		sub {
			local $ENV{LD_PRELOAD} = 'libpqcm.so.1';
			IPC::Run::run([ 'psql', '-X', '-Atc', 'SELECT 1', $conninfo ],
				'>', \$stdout, '2>', \$stderr,
				IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
			return $? >> 8;
		},
		$srv, $fake);
	return (@$logs, $rc, $stderr);
}

for my $case ([ 'v4', 'localhost', '127\.0\.0\.1' ], [ 'v6', '::1', '::1' ])
{
	my ($key, $host, $addr_re) = @$case;
	my $fake = $impostor{$key} or next;
	my $port = $fake->{port};
	my $ci   = "host=$host port=$port dbname=app user=appuser";

	my ($srvlog, $cmlog, $rc, $err) = psql_between($fake, $ci);
	isnt($rc, 0, "$key: root's psql through an impostor run by nobody fails");
	like($err,
		qr/conmgr at "\Q$host\E", port $port is not trusted: the socket that answered on $addr_re port $port belongs to UID $nobody \(nobody\), and without PGCONMGRUSER only UID 0 \(root\) may run conmgr/,
		"$key: the error names the port, the UID and the user found");
	like($err, qr/set PGCONMGRUSER to the user conmgr runs as/, "$key: and the setting");
	is($cmlog, "closed stage=route\n", "$key: the impostor got no route request");
	is($srvlog, '', "$key: the server it names received nothing, no password");

	# the same through the asynchronous path of the test driver
	my ($logs, $trc, $out, $terr) = CmClient::between(sub { CmClient::run_tool('async', $ci) },
		$srv, $fake);
	like($out, qr/belongs to UID $nobody \(nobody\)/, "$key: asynchronous connection refused too");
	is($logs->[1], "closed stage=route\n", "$key, asynchronous: no route request");
	is($logs->[0], '', "$key, asynchronous: the server received nothing");

	# naming conmgr's real user does not make nobody acceptable
	local $ENV{PGCONMGRUSER} = $cmuser;
	($srvlog, $cmlog, $rc, $err) = psql_between($fake, $ci);
	like($err, qr/PGCONMGRUSER="\Q$cmuser\E" allows only UID 0 \(root\), UID $cmuid \(\Q$cmuser\E\)/,
		"$key: PGCONMGRUSER=$cmuser still refuses nobody");
	is($srvlog, '', "$key, PGCONMGRUSER=$cmuser: the server received nothing");
}

# A genuine conmgr run by another user than root: refused by default, and
# accepted when PGCONMGRUSER or CMDATA names its user.
my $genuine = CmClient::start_fake(PostgreSQL::Test::Cluster::get_free_port(),
	'instance', "127.0.0.1:$srvport", user => $cmuser);
my $gci = "host=localhost port=$genuine->{port} dbname=app user=appuser";
my ($srvlog, $cmlog, $rc, $err) = psql_between($genuine, $gci);
like($err, qr/belongs to UID $cmuid \(\Q$cmuser\E\), and without PGCONMGRUSER/,
	"default: root refuses a conmgr run by $cmuser");
is($srvlog, '', 'default: nothing sent');
{
	local $ENV{PGCONMGRUSER} = $cmuser;
	($srvlog, $cmlog, $rc, $err) = psql_between($genuine, $gci);
	like($cmlog, qr/^route tsa=0 /m, "PGCONMGRUSER=$cmuser: root's psql asks $cmuser\'s conmgr");
	like($srvlog, qr/^password=\Q$password\E$/m, "PGCONMGRUSER=$cmuser: and connects where it says");
}
{
	my $dir = File::Temp::tempdir(CLEANUP => 1);
	chown $cmuid, -1, $dir or die "chown $dir: $!";
	local $ENV{CMDATA} = $dir;
	($srvlog, $cmlog, $rc, $err) = psql_between($genuine, $gci);
	like($cmlog, qr/^route tsa=0 /m, "CMDATA naming a directory of $cmuser: its conmgr is used");
	if ($impostor{v4})
	{
		($srvlog, $cmlog, $rc, $err) = psql_between($impostor{v4},
			"host=localhost port=$impostor{v4}{port} dbname=app user=appuser");
		like($err, qr/belongs to UID $nobody \(nobody\)/, 'CMDATA does not make nobody acceptable');
		is($srvlog, '', 'CMDATA: nothing sent to the impostor\'s server');
	}
}

# A conmgr in another network namespace (as in a container), reached with
# PGCONMGR=on over a veth link: no socket of this namespace answers, so its
# user cannot be verified, even though it runs as root there.
my $ns = ($ENV{CM_LAB_TAG} // 'cm') . "imp$$";
my ($va, $vb) = ("cmia$$", "cmib$$");
# TEST-NET-3, unless this host uses it
my $net_free = `ip -o addr 2>/dev/null` !~ /\binet 203\.0\.113\./;
my $netns_ok = $net_free && system("ip netns add $ns 2>/dev/null") == 0;
SKIP:
{
	skip 'network namespaces cannot be created here, or 203.0.113.0/24 is in use', 5
	  unless $netns_ok;
	for my $cmd ("ip link add $va type veth peer name $vb", "ip link set $vb netns $ns",
		"ip addr add 203.0.113.1/30 dev $va", "ip link set $va up",
		"ip netns exec $ns ip addr add 203.0.113.2/30 dev $vb",
		"ip netns exec $ns ip link set $vb up", "ip netns exec $ns ip link set lo up")
	{
		system($cmd) == 0 or die "$cmd failed";
	}
	my $far = CmClient::start_fake(PostgreSQL::Test::Cluster::get_free_port(),
		'instance', "127.0.0.1:$srvport", addr => '203.0.113.2', netns => $ns);
	my $fci = "host=203.0.113.2 port=$far->{port} dbname=app user=appuser";
	local $ENV{PGCONMGR} = 'on';
	my ($logs, $trc, $out, $terr) = CmClient::between(sub { CmClient::run_tool('connect', $fci) },
		$srv, $far);
	like($out,
		qr/conmgr at "203\.0\.113\.2", port $far->{port} is not trusted: the user it runs as cannot be verified: no socket of this host answers on 203\.0\.113\.2 port $far->{port} \(a conmgr on another host or in another network namespace\) \(PGCONMGR_INSECURE_UNVERIFIED_PEER is not set\)/,
		'another network namespace: refused, the user cannot be verified');
	is($logs->[1], "closed stage=route\n", 'another network namespace: no route request');
	is($logs->[0], '', 'another network namespace: the server received nothing');

	local $ENV{PGCONMGR_INSECURE_UNVERIFIED_PEER} = 'on';
	($logs, $trc, $out, $terr) = CmClient::between(sub { CmClient::run_tool('connect', $fci) },
		$srv, $far);
	like($logs->[1], qr/^route tsa=0 /m,
		'PGCONMGR_INSECURE_UNVERIFIED_PEER=on: the unverifiable conmgr is asked');
	like($logs->[0], qr/^password=\Q$password\E$/m, '... and the password goes where it says');
	CmClient::signal_bg($far, 'TERM');
	CmClient::finish_bg($far);
}

END
{
	system("ip netns del $ns 2>/dev/null") if $netns_ok;
}

# the unit test of the lookup, as root: listeners of another user
my $unit = CmProg::top() . '/test/unit/test_peer';
SKIP:
{
	skip 'test/unit/test_peer is not built (make test-programs)', 2 unless -x $unit;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([$unit], '>', \$stdout, '2>', \$stderr);
	is($?, 0, 'test_peer as root passes') or diag($stdout . $stderr);
	like($stdout, qr/^ok \d+ - listener of nobody: the accepted socket is owned by nobody$/m,
		'test_peer ran its cross-user checks');
	diag($1) if $stdout =~ /^# (this kernel reports .*)$/m;
}

done_testing();
