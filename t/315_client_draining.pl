
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Draining on a smart shutdown.  While "pg_ctl stop -m smart" waits for the
# primary's last session, the watchdog tells the conmgr peers that speak
# protocol 1.1 that the instance is stopping: conmgr routes no new
# connection there (an "any" connection goes to the standby, a read-write
# one gets "instance 0 is stopping"), the session already there keeps
# working and gets no notice, cm_ctl status and pgx_stat_watchdog show the
# draining state, and the session's end lets the server stop.  A peer that
# speaks 1.0 is not told (its attributes stay as they were) and one that
# speaks 1.1 is, by a push.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmClient;
use CmConmgr;
use CmNode;
use CmWatchdog;
use CmWire;

my ($primary, $standby) = CmNode->create_pair('primary', 'standby',
	check_attr_interval => 200,
	log_min_messages => undef);
my ($pport, $sport) = ($primary->port, $standby->port);
$primary->safe_psql('postgres', 'CREATE EXTENSION watchdog');

my $cm = CmConmgr->new(
	name => 'drain',
	nodes => [ $primary, $standby ],
	heartbeat_interval => 200, heartbeat_timeout => 1000)->start;
my $port = $cm->{port};
my $rw = "host=localhost port=$port dbname=postgres target_session_attrs=read-write";
my $any = "host=localhost port=$port dbname=postgres target_session_attrs=any";

CmClient::wait_connect($rw, 'SELECT inet_server_port()', qr/^value=$pport$/m,
	'read-write lands on the primary');
CmClient::wait_connect("host=localhost port=$port dbname=postgres target_session_attrs=read-only",
	'SELECT inet_server_port()', qr/^value=$sport$/m, 'read-only lands on the standby');

# two hand-made peers of the primary's watchdog: one speaks 1.0, one 1.1
my %hb = (interval => 1000, timeout => 20000);
my $old = CmWatchdog::Peer->connect($primary->watchdog_port);
my $w = $old->hello(%hb, name => 'old-peer');
is($w && $w->{version}, 0x0100, 'a 1.0 peer is welcomed with 1.0');
my $new = CmWatchdog::Peer->connect($primary->watchdog_port);
$w = $new->hello(%hb, max_version => 0x0101, name => 'new-peer');
is($w && $w->{version}, 0x0101, 'a 1.1 peer is welcomed with 1.1');
is($w && $w->{attrs}, 0, 'and the primary is a primary, not stopping');

# a session held on the primary through conmgr, by psql with the library
my ($in, $out, $err) = ('', '', '');
my $held;
{
	local $ENV{LD_PRELOAD} = 'libpqcm.so.1';
	$held = IPC::Run::start([ 'psql', '-X', '-At', $rw ],
		'<', \$in, '>', \$out, '2>', \$err);
}
my $mark = 0;

# Run SQL in the held session; returns its output (undef on timeout).
sub held_query
{
	my ($sql) = @_;
	$mark++;
	my $pos = length $out;
	$in .= "$sql;\nSELECT 'done-$mark';\n";
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		eval { $held->pump_nb; };
		my $got = substr($out, $pos);
		return $1 if $got =~ /^(.*?)done-$mark\n/s;
		last unless $held->pumpable;
		usleep(20_000);
	}
	diag("held session: stdout $out\nstderr $err");
	return undef;
}

is(held_query('SELECT inet_server_port()'), "$pport\n", 'the held session is on the primary');
my $held_pid = held_query('SELECT pg_backend_pid()');
chomp $held_pid if defined $held_pid;

# the smart shutdown: pg_ctl returns at once (-W), the server waits
my $t_stop = time;
system('pg_ctl', '-D', $primary->data_dir, '-m', 'smart', '-W', 'stop') == 0
  or BAIL_OUT('pg_ctl stop -m smart failed');

my $draining;
my $deadline = time + 10;
while (time < $deadline)
{
	my $st = $cm->status;
	if ($st =~ /"number": 0, [^}]*"state": "draining"/)
	{
		$draining = time;
		last;
	}
	usleep(20_000);
}
ok($draining, 'cm_ctl status shows instance 0 draining');
# the watchdog looks every check_attr_interval (200 ms) and conmgr hears it
# with the next heartbeat reply or push
cmp_ok($draining - $t_stop, '<', 2.0, 'within 2 s of the smart stop') if $draining;
note(sprintf('draining seen %.3f s after pg_ctl stop -m smart', $draining - $t_stop)) if $draining;
like($cm->status, qr/"number": 0, [^}]*"draining": true/,
	'cm_ctl status: "draining": true');
like($cm->status, qr/"number": 1, [^}]*"draining": false/,
	'cm_ctl status: the standby is not draining');

# new connections: every "any" one lands on the standby, none fails
my ($ok, $on_standby) = (0, 0);
for my $i (1 .. 20)
{
	my ($rc, $o, $e) = CmClient::run_tool('connect', $any, 'SELECT inet_server_port()');
	$ok++ if $rc == 0;
	$on_standby++ if $o =~ /^value=$sport$/m;
	diag("connection $i: $o$e") if $rc != 0;
}
is($ok, 20, 'during the smart stop, 20 of 20 new "any" connections succeed');
is($on_standby, 20, 'and all of them land on the standby');

my ($rc, $o, $e) = CmClient::run_tool('connect', $rw, 'SELECT 1');
is($rc, 1, 'a read-write connection has nowhere to go');
like($o . $e, qr/instance 0 is stopping/, 'and the error says that instance 0 is stopping')
  or diag($o . $e);

# the session already there works and was told nothing
is(held_query('SELECT 41 + 1'), "42\n", 'the held session still works during the smart stop');
is(held_query("SELECT state FROM pgx_stat_watchdog WHERE conmgr_name = 'new-peer'"), "draining\n",
	'pgx_stat_watchdog shows the 1.1 peer as draining');
is(held_query("SELECT state FROM pgx_stat_watchdog WHERE conmgr_name = 'old-peer'"), "active\n",
	'pgx_stat_watchdog shows the 1.0 peer as active (it was not told)');
unlike($err, qr/conmgr|notice|terminat/i, 'the held session got no notice');

# the hand-made peers: the 1.1 one got the push, the 1.0 one nothing new
my $r_new = $new->heartbeat(1);
my $r_old = $old->heartbeat(1);
is($r_new && $r_new->{attrs}, CmWire::ATTR_STOPPING, 'the 1.1 peer\'s heartbeat reply says stopping');
ok((grep { $_->{attrs} == CmWire::ATTR_STOPPING } @{ $new->{pushed} // [] }),
	'the 1.1 peer was told by a push');
is($r_old && $r_old->{attrs}, 0, 'the 1.0 peer\'s heartbeat reply says primary, as before');
is(scalar @{ $old->{pushed} // [] }, 0, 'the 1.0 peer got no push');

my $log = slurp_file($cm->{log});
like($log, qr/the server is shutting down: no new application connections are routed to it; the 1 it has keep their sessions/,
	'conmgr logs the draining with the connection count');
like(slurp_file($primary->logfile),
	qr/the server is shutting down; telling 2 conmgr peers to route no new connections to this instance\n.*DETAIL:  .*peers that speak protocol 1\.0 are not told/,
	'the watchdog logs whom it told');

# the last session ends: the server stops, conmgr hears the shutdown
$in .= "\\q\n";
eval { $held->finish; };
$old->goodbye;
$new->goodbye;
my $gone = 0;
$deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	if (!-e $primary->data_dir . '/postmaster.pid')
	{
		$gone = 1;
		last;
	}
	usleep(50_000);
}
ok($gone, 'after its last session the primary stops');
$primary->{_pid} = undef;
ok(CmConmgr::wait_for(sub { $cm->status =~ /"number": 0, [^}]*"state": "(down|connecting)"/ },
		'instance 0 down'),
	'conmgr sees the primary go');
($rc, $o, $e) = CmClient::run_tool('connect', $any, 'SELECT inet_server_port()');
like($o, qr/^value=$sport$/m, 'new connections keep going to the standby');

done_testing();
