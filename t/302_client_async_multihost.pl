
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library: asynchronous connection (the socket changes, status
# CONNECTION_AWAITING_CMRESPONSE), multi-host lists mixing conmgrs and
# plain servers in written order, connect_timeout over stage 1, PQreset
# and PQresetStart/PQresetPoll through conmgr again, fork().

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CmClient;

my $node      = CmClient::plain_node('primary');
my $pgport    = $node->port;
my $other     = CmClient::plain_node('other');
my $otherport = $other->port;

my $fake = CmClient::fake_for($node);
my $cm   = $fake->{port};
my $none_port = PostgreSQL::Test::Cluster::get_free_port();
my $none      = CmClient::start_fake($none_port, 'none');
my $silent_port = PostgreSQL::Test::Cluster::get_free_port();
my $silent      = CmClient::start_fake($silent_port, 'silent');
my $garbage_port = PostgreSQL::Test::Cluster::get_free_port();
my $garbage      = CmClient::start_fake($garbage_port, 'garbage');
my $badhost_port = PostgreSQL::Test::Cluster::get_free_port();
my $badhost      = CmClient::start_fake($badhost_port, 'instance', "/tmp,evil:$otherport");
my $down = PostgreSQL::Test::Cluster::get_free_port();    # nothing listens

# asynchronous connect
my ($rc, $out, $err) = CmClient::run_tool('async', "host=localhost port=$cm dbname=postgres",
	'SELECT inet_server_port()');
is($rc, 0, 'async connect through conmgr') or diag($out . $err);
like($out, qr/^start_host=localhost$/m, 'async: PQhost() is the conmgr during stage 1');
like($out, qr/^start_port=$cm$/m,       'async: PQport() is the conmgr during stage 1');
like($out, qr/^socket=\d+ status=AWAITING_CMRESPONSE$/m,
	'async: first socket is conmgr\'s, status CONNECTION_AWAITING_CMRESPONSE');
like($out, qr/^awaiting_seen=1$/m,   'async: CONNECTION_AWAITING_CMRESPONSE seen');
like($out, qr/^socket_changes=1$/m,  'async: PQsocket() changed once (conmgr, then instance)');
like($out, qr/^port=$pgport$/m,      'async: PQport() is the instance afterwards');
like($out, qr/^value=$pgport$/m,     'async: the session is on the instance');
like($out, qr/^cmsocket=yes$/m,      'async: PQcmSocket() after connecting');

# asynchronous connect to a plain server on localhost
($rc, $out, $err) = CmClient::run_tool('async', "host=localhost port=$otherport dbname=postgres");
is($rc, 0, 'async connect to a plain server') or diag($out . $err);
like($out, qr/^cmsocket=no$/m, 'async plain: no Connection Manager');

# multi-host lists, written order
for my $case (
	[ 'first conmgr down',                 "localhost,localhost",   "$down,$cm",           $pgport, 'yes' ],
	[ 'first conmgr without instance',     "localhost,localhost",   "$none_port,$cm",      $pgport, 'yes' ],
	[ 'plain server first',                "localhost,localhost",   "$otherport,$cm",      $otherport, 'no' ],
	[ 'conmgr first, plain server second', "localhost,127.0.0.1",   "$cm,$otherport",      $pgport, 'yes' ],
	[ 'silent conmgr times out, next',     "localhost,localhost",   "$silent_port,$cm",    $pgport, 'yes' ],
	[ 'invalid conmgr answer, next',       "localhost,localhost",   "$garbage_port,$otherport", $otherport, 'no' ])
{
	my ($name, $hosts, $ports, $expect, $viacm) = @$case;
	# as with libpq, an asynchronous caller enforces connect_timeout itself
	my @modes = $name =~ /silent/ ? ('connect') : ('connect', 'async');
	for my $mode (@modes)
	{
		my $t0 = time();
		($rc, $out, $err) = CmClient::run_tool($mode,
			"host=$hosts port=$ports dbname=postgres connect_timeout=2",
			'SELECT inet_server_port()');
		is($rc, 0, "$mode, $name: connects") or diag($out . $err);
		like($out, qr/^value=$expect$/m, "$mode, $name: lands on port $expect");
		like($out, qr/^cmsocket=$viacm$/m, "$mode, $name: PQcmSocket() " . ($viacm eq 'yes' ? 'set' : '-1'));
	}
}

# every entry fails: one error per entry, in order
($rc, $out, $err) = CmClient::run_tool('connect',
	"host=localhost,localhost port=$none_port,$down dbname=postgres");
is($rc, 1, 'all entries failing fails the connection');
like($out, qr/has no instance for target_session_attrs=any: no live instance matches.*\n.*port $down failed/s,
	'the error lists the conmgr without instance, then the refused entry');
($rc, $out, $err) = CmClient::run_tool('async', "host=localhost port=$none_port dbname=postgres");
is($rc, 1, 'async: no instance fails the connection');
like($out, qr/error=conmgr at "localhost", port $none_port has no instance/,
	'async: the error names the conmgr');
($rc, $out, $err) = CmClient::run_tool('connect', "host=localhost port=$garbage_port dbname=postgres");
like($out, qr/invalid answer from conmgr at "localhost", port $garbage_port/,
	'a malformed conmgr answer gives a clear error');

($rc, $out, $err) = CmClient::run_tool('connect',
	"host=localhost,localhost port=$badhost_port,$cm dbname=postgres", 'SELECT inet_server_port()');
is($rc, 0, 'an invalid instance from conmgr: the next entry is tried') or diag($out . $err);
like($out, qr/^value=$pgport$/m, 'an invalid instance is never connected to');
($rc, $out, $err) = CmClient::run_tool('connect', "host=localhost port=$badhost_port dbname=postgres");
like($out, qr{conmgr at "localhost", port $badhost_port named an invalid instance \(host "/tmp,evil"},
	'an invalid instance gives a clear error');

# PQping walks the list like a connection
($rc, $out, $err) = CmClient::run_tool('ping', "host=localhost,localhost port=$none_port,$cm dbname=postgres");
like($out, qr/^ping=OK$/m, 'PQping: the next conmgr names a live instance');
($rc, $out, $err) = CmClient::run_tool('ping', "host=localhost port=$none_port dbname=postgres");
like($out, qr/^ping=NO_RESPONSE$/m, 'PQping: a conmgr without instance is no response');
($rc, $out, $err) = CmClient::run_tool('ping', "host=localhost port=$otherport dbname=postgres");
like($out, qr/^ping=OK$/m, 'PQping: a plain server answers as usual');

# connect_timeout covers stage 1
my $t0 = time();
($rc, $out, $err) = CmClient::run_tool('connect',
	"host=localhost port=$silent_port dbname=postgres connect_timeout=2");
my $elapsed = time() - $t0;
is($rc, 1, 'a silent conmgr fails the connection');
like($out, qr/timeout expired while waiting for conmgr/, 'the error says the timeout expired');
cmp_ok($elapsed, '>=', 1.9, 'not before connect_timeout');
cmp_ok($elapsed, '<', 5, 'and soon after it');

# a conmgr that is down gives the same error as a server that is down
($rc, $out, $err) = CmClient::run_tool('connect', "host=localhost port=$down dbname=postgres");
like($out, qr/connection to server at "localhost" \(127\.0\.0\.1\), port $down failed: Connection refused/,
	'conmgr down: libpq\'s own "connection refused" error');

# PQreset and PQresetStart/PQresetPoll go through conmgr again
for my $how ('sync', 'async')
{
	($rc, $out, $err) = CmClient::run_tool('reset', "host=localhost port=$cm dbname=postgres",
		$how eq 'async' ? 'async' : ());
	is($rc, 0, "reset ($how) succeeds") or diag($out . $err);
	my @pids = $out =~ /^backend_pid=(\d+)$/mg;
	is(scalar @pids, 2, "reset ($how): two sessions");
	isnt($pids[0], $pids[1], "reset ($how): a new backend");
	like($out, qr/after_reset=1\nstatus=OK\n(?:.*\n)*cmsocket=yes/, "reset ($how): PQcmSocket() set again");
	like($out, qr/^event_instance=yes$/m, "reset ($how): the event procedure's instance data is there");
	like($out, qr/^events_balanced=1$/m, "reset ($how): every PGEVT_REGISTER had its PGEVT_CONNDESTROY");
	CmClient::wait_output($fake, qr/register pid=$pids[1] /,
		"reset ($how): the new backend is registered with conmgr");
}

# fork: the child's connections do not disturb the parent's
($rc, $out, $err) = CmClient::run_tool('fork', "host=localhost port=$cm dbname=postgres");
is($rc, 0, 'parent connection works after fork') or diag($out . $err);
like($out, qr/^child_ok=1$/m, 'the child connected through conmgr on its own');
like($out, qr/^parent_cmsocket=1$/m, 'the parent still has its conmgr socket');

done_testing();
