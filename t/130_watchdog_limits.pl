
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Refusals and departures: the max_heartbeat_connections limit (refused
# with a reason, logged once), no common protocol version, authentication
# asked of a server without watchdog.secret_file; a reload applies to new
# peers; a clean server shutdown sends the shutdown notice to every peer.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmNode;
use CmWatchdog;
use CmWire;

my $node = CmNode->create('limits',
	conf => "watchdog.max_heartbeat_connections = 2\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');

# long enough that peers which never send a heartbeat outlive the test,
# even on a loaded machine
my %hb = (interval => 60000, timeout => 200000);

# --- the limit ---
my $p1 = CmWatchdog::Peer->connect($wdport);
is($p1->hello(%hb, name => 'one')->{type}, 'W', 'first peer welcomed');
my $p2 = CmWatchdog::Peer->connect($wdport);
is($p2->hello(%hb, name => 'two')->{type}, 'W', 'second peer welcomed');

my $offset = -s $node->logfile;
my @refused;
for my $i (3 .. 5)
{
	my $p = CmWatchdog::Peer->connect($wdport);
	my $m = $p->hello(%hb, name => "extra$i");
	ok($m && $m->{type} eq 'X', "peer $i refused");
	is($m->{reason}, CmWire::REASON_TOO_MANY, "peer $i: reason too many");
	like($m->{message}, qr/watchdog\.max_heartbeat_connections \(2\) reached/,
		"peer $i: the refusal names the limit");
	ok($p->wait_closed, "peer $i: connection closed after the refusal");
	push @refused, $p;
}
$node->wait_for_log(qr/refused heartbeat connection from conmgr "extra3"/,
	$offset);
my $log = slurp_file($node->logfile, $offset);
my $count = () = $log =~ /refused heartbeat connection from conmgr/g;
is($count, 1, 'the refusal is logged once, not for every attempt');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pgx_stat_watchdog'),
	'2', 'two peers in the view');

# a slot frees up: the next peer is welcomed and the refusals are summed up
$p1->goodbye;
ok($p1->wait_closed, 'first peer left');
ok($node->wait_for_view_count("conmgr_name = 'one'", 0),
	'its slot is free');
my $p3 = CmWatchdog::Peer->connect($wdport);
is($p3->hello(%hb, name => 'three')->{type}, 'W', 'a new peer is welcomed');
ok( $node->wait_for_log(
		qr/watchdog refused 2 further heartbeat connections while watchdog\.max_heartbeat_connections \(2\) was reached/,
		$offset),
	'the suppressed refusals are summarised');

# --- no common protocol version ---
my $pv = CmWatchdog::Peer->connect($wdport);
my $m = $pv->hello(%hb, min_version => 0x0200, max_version => 0x0300);
ok($m && $m->{type} eq 'X', 'a 2.0..3.0 peer is refused');
is($m->{reason}, CmWire::REASON_VERSION, 'reason: version');
like($m->{message}, qr/conmgr speaks 2\.0 to 3\.0, the watchdog 1\.0 to 1\.2/,
	'the refusal says which versions');
ok($pv->wait_closed, 'and the connection is closed');

# a peer that speaks 1.0 among others gets 1.0
$pv = CmWatchdog::Peer->connect($wdport);
$p2->goodbye;
$p2->wait_closed;
$node->wait_for_view_count("conmgr_name = 'two'", 0);
$m = $pv->hello(%hb, min_version => 0x0100, max_version => 0x0305, name => 'newer');
ok($m && $m->{type} eq 'W', 'a 1.0..3.5 peer is welcomed');
is($m->{version}, 0x0102, 'and speaks 1.2, the highest version both speak');
$pv->goodbye;
$pv->wait_closed;
$node->wait_for_view_count("conmgr_name = 'newer'", 0);

# --- a lost peer's row is kept for the view but its slot is reusable ---
my $pg = CmWatchdog::Peer->connect($wdport);
is($pg->hello(%hb, name => 'gone')->{type}, 'W', 'a peer takes the last slot');
ok($pg->heartbeat(1), 'it is in use');
$pg->close;
ok( $node->wait_for_view_count(
		"conmgr_name = 'gone' AND state = 'terminated'", 1),
	'the dropped peer is shown as terminated');
my $pn = CmWatchdog::Peer->connect($wdport);
is($pn->hello(%hb, name => 'reuser')->{type}, 'W',
	'with every slot taken, a terminated row gives its slot to a new peer');
ok($node->wait_for_view_count("conmgr_name = 'gone'", 0),
	'the terminated row made room');
$pn->goodbye;
$pn->wait_closed;
$node->wait_for_view_count("conmgr_name = 'reuser'", 0);

# --- a server without watchdog.secret_file cannot authenticate ---
my $pa = CmWatchdog::Peer->connect($wdport);
$m = $pa->hello(%hb, auth => CmWire::AUTH_HMAC_SHA256, nonce => "x" x 32);
ok($m && $m->{type} eq 'X', 'a peer asking for HMAC authentication is refused');
is($m->{reason}, CmWire::REASON_AUTH, 'reason: authentication');
like($m->{message}, qr/asks for authentication method 2, but this server has no watchdog\.secret_file/,
	'the refusal names the method and the missing setting');

# --- a heartbeat timeout above watchdog.max_heartbeat_timeout ---
my $pl = CmWatchdog::Peer->connect($wdport);
$m = $pl->hello(interval => 1000, timeout => 300_001, name => 'lease-hog');
ok($m && $m->{type} eq 'X', 'a peer announcing a longer heartbeat timeout is refused');
is($m->{reason}, CmWire::REASON_PROTOCOL, 'reason: protocol violation');
like($m->{message},
	qr/heartbeat timeout 300001 ms is longer than watchdog\.max_heartbeat_timeout \(300000 ms\)/,
	'the refusal names the setting and both values');
$pl = CmWatchdog::Peer->connect($wdport);
is($pl->hello(interval => 1000, timeout => 300_000, name => 'at-limit')->{type},
	'W', 'the limit itself is accepted');
$pl->goodbye;
$pl->wait_closed;

# --- a reload applies to peers that connect afterwards ---
$node->safe_psql('postgres',
	"ALTER SYSTEM SET watchdog.check_attr_interval = '250ms'; "
	  . "ALTER SYSTEM SET watchdog.timeout_margin = '2s'; SELECT pg_reload_conf()");
ok( $node->poll_query_until(
		'postgres', "SELECT current_setting('watchdog.check_attr_interval') = '250ms'"),
	'reloaded');
my $pr;
my $welcome;
# the worker reloads when its latch is set; poll with new connections
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	$pr = CmWatchdog::Peer->connect($wdport);
	$welcome = $pr->hello(interval => 100, timeout => 400, name => 'reload');
	last if $welcome->{check_attr_interval} == 250;
	$pr->goodbye;
	$pr->wait_closed;
	$node->wait_for_view_count("conmgr_name = 'reload'", 0);
}
is($welcome->{check_attr_interval}, 250, 'new check_attr_interval announced');
is($welcome->{server_timeout}, 100 + 400 + 2000, 'new timeout margin applied');

# --- clean shutdown: every peer gets the notice before the close ---
$offset = -s $node->logfile;
$node->stop('fast');
for my $p ([ $p3, 'three' ], [ $pr, 'reload' ])
{
	my $msg = $p->[0]->read_msg;
	ok($msg && $msg->{type} eq 'S', "peer $p->[1] receives the shutdown notice");
	is($msg->{reason}, CmWire::REASON_SHUTDOWN, "peer $p->[1]: reason shutdown");
	ok($p->[0]->wait_closed, "peer $p->[1]: then the connection closes");
}
ok( $node->log_contains(
		qr/watchdog shutting down: sent a shutdown notice to 2 conmgr peers/, $offset),
	'the shutdown is logged');
ok(!$node->log_contains(qr/terminated \d+ session/, $offset),
	'no session is terminated at shutdown');

done_testing();
