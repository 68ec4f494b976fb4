
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Fan-out: 1000 application connections on one instance all receive the
# failure notice within heartbeat_timeout + 1 s of the heartbeat loss.
# Limit: connections over max_app_connections are refused clearly.

use strict;
use warnings FATAL => 'all';

use IO::Select;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmConmgr;
use CmWire;

my $N = 1000;
my $timeout_ms = 2000;
CmConmgr::raise_fd_limit(4096);

my $wd = CmConmgr::FakeWatchdog->new(attrs => 0);
my $cm = CmConmgr->new(
	heartbeat_interval => 500,
	heartbeat_timeout => $timeout_ms,
	max_app_connections => $N + 10,
	max_app_connections_per_user => $N + 10,    # every test connection is one user's
	instances =>
	  [ { hostaddr => '127.0.0.1', port => 5432, watchdog_port => $wd->port } ]
)->start;
my $port = $cm->port;
ok($cm->wait_up(0), 'instance up');

my @apps;
my $routed = 0;
for my $i (1 .. $N)
{
	my $app = CmConmgr::App->connect($port);
	last unless $app;
	my $r = $app->route('read-write', "fan$i");
	last unless $r && $r->{type} eq 'I';
	$app->register(100000 + $i);
	push @apps, $app;
	$routed++;
}
is($routed, $N, "$N application connections routed")
  or diag($CmConmgr::App::error);
ok( CmConmgr::wait_for(
		sub { $cm->status =~ /"application_connections": $N,/ },
		'status count'),
	"status counts $N application connections");
ok( CmConmgr::wait_for(
		sub { (() = $wd->events =~ /^register /mg) == $N },
		'registrations'),
	"$N registrations forwarded to the watchdog");

# the heartbeat is lost
my $t0 = time();
$wd->command('mute');
my $sel = IO::Select->new(map { $_->sock } @apps);
my %by_fd = map { fileno($_->sock) => $_ } @apps;
my %notified;
my ($first, $last);
my $deadline = $t0 + $timeout_ms / 1000 + 10;
while (keys %notified < $N && time() < $deadline)
{
	foreach my $fh ($sel->can_read(0.5))
	{
		my $app = $by_fd{ fileno($fh) };
		my $m = $app->read_msg;
		my $now = time();
		$sel->remove($fh);
		next unless $m && $m->{type} eq 'F' && $m->{reason} == $CmWire::REASON{timeout};
		$notified{ fileno($fh) } = 1;
		$first //= $now;
		$last = $now;
	}
}
is(scalar(keys %notified), $N, "all $N connections received the heartbeat-timeout notice");
my $bound = $timeout_ms / 1000 + 1;
cmp_ok($last - $t0, '<=', $bound,
	"last notice within heartbeat_timeout + 1 s ($bound s)");
# the last reply came at most one heartbeat_interval before the loss
cmp_ok($first - $t0, '>=', ($timeout_ms - 500) / 1000,
	'first notice not before heartbeat_timeout - heartbeat_interval');
diag(sprintf('notices between %.3f s and %.3f s after the heartbeat stopped',
		$first - $t0, $last - $t0));
$_->close foreach @apps;
@apps = ();

my $log = slurp_file($cm->logfile);
like($log, qr/instance 0 \(127\.0\.0\.1:\d+\): instance is down: heartbeat not answered within $timeout_ms ms; notifying $N application connections/,
	'the loss is logged once with the number of notified connections');

# max_app_connections: refusal with a clear message, logged once
$wd->command('unmute');
ok($cm->wait_up(0), 'instance up again');
$cm->conf($cm->conf =~ s/max_app_connections = \d+/max_app_connections = 3/r);
my ($rc, $out, $err) = $cm->ctl('reload');
is($rc, 0, 'reload with max_app_connections = 3');
ok( CmConmgr::wait_for(
		sub { $cm->status =~ /"application_connections": 0,/ },
		'connections closed'),
	'previous connections gone');
my @three = map { CmConmgr::App->connect($port) } 1 .. 3;
is($three[$_]->route('any')->{type}, 'I', "connection $_ accepted") for 0 .. 2;
for my $k (1 .. 2)
{
	my $over = CmConmgr::App->connect($port);
	ok($over, "over the limit: greeting still sent ($k)");
	my $m = $over->read_msg;
	is($m->{type}, 'X', "over the limit: refused ($k)");
	is($m->{reason}, $CmWire::REASON{too_many}, "reason too many ($k)");
	like($m->{message}, qr/too many application connections to conmgr on port $port \(max_app_connections = 3\)/,
		"refusal names the limit ($k)");
	ok($over->is_closed(5), "refused connection closed ($k)");
}
# refused at once, before the client sends anything: the greeting, an
# ErrorResponse that a stock PostgreSQL client shows (SQLSTATE 53300), then
# the refusal, and the connection is closed
{
	my $t0 = time();
	my $s = CmConmgr::App->connect($port, no_greeting => 1);
	my ($t, $len) = CmWire::header($s->read_raw(5) // '');
	my $body = $s->read_raw($len - 4) // '';
	is($t, 'E', 'over the limit: an ErrorResponse at once');
	like($body, qr/C53300\0/, 'SQLSTATE 53300');
	like($body, qr/Mtoo many application connections to conmgr on port $port/,
		'its message names the cause');
	like($body, qr/cconmgr \d+ \d+\0/, 'it is a conmgr greeting');
	is($s->read_msg->{type}, 'X', 'then the refusal');
	ok($s->is_closed(5), 'then the connection is closed');
	cmp_ok(time() - $t0, '<', 2, 'without waiting for the client');
}
$three[0]->close;
ok(CmConmgr::wait_for(sub { my $a = CmConmgr::App->connect($port); $a && $a->route('any')->{type} eq 'I' }, 'accepting again'),
	'accepted again once below the limit');
$log = slurp_file($cm->logfile);
my $warn = () = $log =~ /refused: max_app_connections \(3\) reached/g;
is($warn, 1, 'refusals logged once');
like($log, qr/accepting application connections again; 3 refused while max_app_connections \(3\) was reached/,
	'end of refusals logged with a count');

done_testing();
