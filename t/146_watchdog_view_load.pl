
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# pgx_stat_watchdog under load: while several sessions of a pg_monitor
# member read the view in a loop, the watchdog keeps answering heartbeats
# promptly.  The view's function holds the watchdog's lock only to copy the
# shared state.  It used to look up the backend of every registered session
# under that lock (registrations x backends steps), and the readers'
# overlapping shared locks then kept the watchdog from the exclusive lock
# it takes for every heartbeat: with the sizes below, the p99 round trip
# was 64-91 ms on a 2-core machine, against 3-4 ms with the copy.  A role
# without pg_monitor may not read the view at all.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time usleep);

use CmNode;
use CmWatchdog;

my $npeers = 16;          # heartbeat peers in the view
my $nsessions = 1400;     # idle application sessions, each registered
my $readers = 8;          # concurrent sessions reading the view
my $load_seconds = 10;
my $bound_ms = 50;        # p99 of the heartbeat round trip under load

my $node = CmNode->create('viewload',
	conf => qq{
max_connections = @{[ $nsessions + 100 ]}
watchdog.termination_mode = precise
watchdog.max_heartbeat_connections_per_address = $npeers
log_statement = none
log_min_messages = info
});
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres',
	'CREATE EXTENSION watchdog; '
	  . 'CREATE ROLE wd_monitor LOGIN IN ROLE pg_monitor; '
	  . 'CREATE ROLE wd_plain LOGIN');

# --- privileges ---

my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', 'SELECT count(*) FROM pgx_stat_watchdog',
	extra_params => [ '-U', 'wd_plain' ]);
isnt($ret, 0, 'a role without pg_monitor cannot read the view');
like(
	$stderr,
	qr/permission denied for view pgx_stat_watchdog/,
	'and is told it lacks the privilege');
($ret, $stdout, $stderr) = $node->psql(
	'postgres', 'SELECT count(*) FROM pgx_stat_watchdog()',
	extra_params => [ '-U', 'wd_plain' ]);
like(
	$stderr,
	qr/permission denied for function pgx_stat_watchdog/,
	'nor call its function');

# --- application sessions, peers and registrations ---

# The application sessions of the peers' host: idle TCP sessions held
# open by pgbench processes (at most 500 each, well below the usual limit
# of 1024 open files).
my $idle_script = $node->basedir . '/idle.sql';
my $view_script = $node->basedir . '/read_view.sql';
PostgreSQL::Test::Utils::append_to_file($idle_script, "\\sleep 1 s\n");
PostgreSQL::Test::Utils::append_to_file($view_script,
	"SELECT * FROM pgx_stat_watchdog;\n");
my @apps;
END
{
	$_->kill_kill for @apps;
}
for (my $left = $nsessions; $left > 0; $left -= 500)
{
	local $ENV{PGAPPNAME} = 'wd_app';
	push @apps,
	  IPC::Run::start(
		[
			'pgbench', '-n', '-f', $idle_script,
			'-c', ($left < 500 ? $left : 500),
			'-j', 2, '-T', 3 * $PostgreSQL::Test::Utils::timeout_default,
			'-h', '127.0.0.1', '-p', $node->port, 'postgres'
		],
		'>', \my $out, '2>', \my $err);
}
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = $nsessions FROM pg_stat_activity WHERE application_name = 'wd_app'"
	),
	"$nsessions application sessions connected");

# The peers connect once the sessions are there (connecting them can take
# a while on a slow machine); heartbeats are sent at will below.
my @peers;
for my $i (0 .. $npeers - 1)
{
	my $p = CmWatchdog::Peer->connect($wdport);
	# as conmgr does: a registration and the heartbeat after it must not
	# wait for each other's acknowledgement
	setsockopt($p->sock, IPPROTO_TCP, TCP_NODELAY, 1)
	  or die "could not set TCP_NODELAY: $!";
	# the first peer measures round trips, a heartbeat every 5 ms: it
	# announces an interval that allows that rate
	my $w = $p->hello(interval => $i == 0 ? 4 : 30000, timeout => 90000, name => "peer$i");
	die "peer $i was not welcomed" unless $w && $w->{type} eq 'W';
	push @peers, $p;
}

# Each peer registers its share of the sessions; the watchdog handles
# messages in order, so the answer to a heartbeat sent after the
# registrations says that they have been handled.
my @sessions = map { [ split /\|/ ] } split /\n/,
  $node->safe_psql('postgres',
	"SELECT pid, client_port FROM pg_stat_activity WHERE application_name = 'wd_app'");
my $seq = 0;
for my $i (0 .. $#sessions)
{
	$peers[ $i % $npeers ]
	  ->register_session('J', $sessions[$i][0], '127.0.0.1', $sessions[$i][1]);
}
for my $p (@peers)
{
	my $r = $p->heartbeat(++$seq);
	die 'no heartbeat reply after the registrations' unless $r && $r->{type} eq 'b';
}
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), sum(sessions_registered) FROM pgx_stat_watchdog WHERE state = 'active'",
		extra_params => [ '-U', 'wd_monitor' ]),
	"$npeers|$nsessions",
	'a pg_monitor member sees every peer and every registered session');

# --- heartbeat round trips, without and with readers of the view ---

# Round trips of heartbeats from the first peer, one every 5 ms, until
# there are $o{count} of them or $o{done} returns true; in ms.
sub round_trips
{
	my (%o) = @_;
	my @rtt;
	while (1)
	{
		last if $o{count} && @rtt >= $o{count};
		last if $o{done} && $o{done}->();
		my $t0 = time();
		my $r = $peers[0]->heartbeat(++$seq);
		die 'heartbeat not answered' unless $r && $r->{type} eq 'b';
		push @rtt, (time() - $t0) * 1000;
		usleep(5000);
	}
	return @rtt;
}

sub percentile
{
	my ($p, @v) = @_;
	@v = sort { $a <=> $b } @v;
	return $v[ int($p / 100 * $#v + 0.5) ];
}

sub summary
{
	my (@v) = @_;
	return sprintf('%d heartbeats, median %.2f ms, p99 %.2f ms, max %.2f ms',
		scalar(@v), percentile(50, @v), percentile(99, @v), percentile(100, @v));
}

my @idle = round_trips(count => 500);
note 'without readers: ' . summary(@idle);

my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::start(
	[
		'pgbench', '-n', '-f', $view_script, '-c', $readers, '-j', $readers,
		'-T', $load_seconds, '-h', $node->host, '-p', $node->port,
		'-U', 'wd_monitor', 'postgres'
	],
	'>', \$bench_out, '2>', \$bench_err,
	IPC::Run::timeout($load_seconds + $PostgreSQL::Test::Utils::timeout_default));

# let the readers connect, then measure until they stop
$node->poll_query_until('postgres',
	"SELECT count(*) = $readers FROM pg_stat_activity WHERE usename = 'wd_monitor'");
my @loaded = round_trips(
	done => sub {
		$bench->pump_nb if $bench->pumpable;
		return !$bench->pumpable;
	});
ok($bench->finish, 'the pg_monitor member read the view throughout')
  or diag($bench_err);
my ($tps) = $bench_out =~ /tps = ([\d.]+)/;
note sprintf('with %d readers (%s reads of the view per second): %s',
	$readers, $tps // '?', summary(@loaded));

cmp_ok(scalar(@loaded), '>=', 100, 'round trips measured during the load');
cmp_ok(percentile(99, @loaded), '<', $bound_ms,
	"p99 of the heartbeat round trip stays under $bound_ms ms while the view is read");

$_->goodbye for @peers;
$_->kill_kill for @apps;
@apps = ();
$node->stop;
done_testing();
