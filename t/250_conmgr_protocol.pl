
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# What network peers send cannot crash conmgr: stock PostgreSQL clients get
# a readable error, malformed packets and frames close only that
# connection, a misbehaving watchdog only costs its heartbeat connection.

use strict;
use warnings FATAL => 'all';

use IO::Select;
use IO::Socket::INET;
use IO::Socket::IP;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmConmgr;
use CmWire;

my $wd = CmConmgr::FakeWatchdog->new(attrs => 0);
my $cm = CmConmgr->new(
	heartbeat_interval => 200,
	heartbeat_timeout => 1000,
	app_handshake_timeout => 500,
	instances =>
	  [ { hostaddr => '127.0.0.1', port => 5432, watchdog_port => $wd->port } ]
)->start;
my $port = $cm->port;
ok($cm->wait_up(0), 'instance up');

my $not_pg = qr/this is Connection Manager conmgr on port $port, not a PostgreSQL server: connect through the Connection Manager client library \(libpqcm\), see docs\/client\.md/;

sub raw_client { return CmConmgr::App->connect($port, no_greeting => 1); }

sub read_pg_error
{
	my ($c) = @_;
	my $h = $c->read_raw(5) // return '';
	my ($t, $len) = CmWire::header($h);
	return '' unless $t eq 'E';
	return $c->read_raw($len - 4) // '';
}

my $startup = do { my $p = "user\0alice\0database\0db\0\0"; pack('N N', 8 + length($p), 196608) . $p };

# SSLRequest then StartupMessage: 'N', then an explanation
my $c = raw_client();
$c->send_raw(pack('N N', 8, CmWire::SSL_CODE));
is($c->read_raw(1), 'N', 'SSLRequest answered with N');
$c->send_raw($startup);
my $e = read_pg_error($c);
like($e, qr/SFATAL\0/, 'FATAL error for a stock client');
like($e, qr/C08P01\0/, 'SQLSTATE 08P01');
like($e, $not_pg, 'error explains that this is conmgr');
ok($c->is_closed(5), 'connection closed after the error');

# StartupMessage directly
$c = raw_client();
$c->send_raw($startup);
like(read_pg_error($c), $not_pg, 'StartupMessage without SSL gets the same error');

# psql reaching conmgr by mistake
my ($out, $err) = ('', '');
IPC::Run::run(
	[ 'psql', '-X', '-h', '127.0.0.1', '-p', $port, '-d', 'postgres', '-c', 'select 1' ],
	'<', \undef, '>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
like($err, $not_pg, 'psql shows the explanation');

# CancelRequest: closed silently
$c = raw_client();
$c->send_raw(pack('N N N N', 16, 80877102, 1234, 5678));
ok($c->is_closed(5), 'CancelRequest: connection closed');
is($c->{buf}, '', 'CancelRequest: nothing sent back');

# garbage first packets
foreach my $case (
	[ 'length below 8', pack('N N', 4, 0) ],
	[ 'length above the limit', pack('N N', 100000, 196608) ],
	[ 'unknown request code', pack('N N', 8, 12345678) ],
	[ 'GSSENCRequest with a wrong length', pack('N N N', 12, CmWire::GSS_CODE, 0) ])
{
	$c = raw_client();
	$c->send_raw($case->[1]);
	ok($c->is_closed(5), "$case->[0]: connection closed");
}

# malformed frames after the greeting: refused with the reason
foreach my $case (
	[ 'unknown message type', CmWire::frame('Z', 'xx'), qr/unknown or unexpected message type/ ],
	[ 'frame too long', 'R' . pack('N', 1_000_000), qr/message length exceeds the protocol maximum/ ],
	[ 'length below 4', 'R' . pack('N', 2), qr/message length smaller than its own length field/ ],
	[ 'bad tsa', CmWire::frame('R', pack('n C N n/a*', 0x0100, 9, 1, 'x')), qr/unknown target_session_attrs value/ ],
	[ 'bad version', CmWire::frame('R', pack('n C N n/a*', 0x0900, 0, 1, 'x')), qr/protocol version/ ],
	[ 'trailing bytes', CmWire::frame('R', pack('n C N n/a* a3', 0x0100, 0, 1, 'x', 'zzz')), qr/trailing bytes/ ],
	[ 'string longer than the frame', CmWire::frame('R', pack('n C N n', 0x0100, 0, 1, 200) . 'abc'), qr/message too short/ ],
	[ 'registration before route', CmWire::register_frame('J', 1, '127.0.0.1', 5), qr/unexpected register message in state awaiting route request/ ])
{
	$c = CmConmgr::App->connect($port);
	$c->send_raw($case->[1]);
	my $m = $c->read_msg;
	is($m->{type}, 'X', "$case->[0]: refused");
	is($m->{reason}, $CmWire::REASON{protocol}, "$case->[0]: reason protocol violation");
	like($m->{message}, $case->[2], "$case->[0]: reason given");
	ok($c->is_closed(5), "$case->[0]: closed");
}

# a second route request
$c = CmConmgr::App->connect($port);
is($c->route('any')->{type}, 'I', 'routed');
$c->send_raw(CmWire::route_frame('any', 1, 'x'));
my $m = $c->read_msg;
like($m->{message}, qr/unexpected route request message in state awaiting registration/,
	'a second route request is a protocol violation');

# a half-sent frame followed by a disconnect, and silence
$c = CmConmgr::App->connect($port);
$c->send_raw(substr(CmWire::route_frame('any', 1, 'x'), 0, 7));
$c->close;
$c = raw_client();
ok($c->is_closed(5), 'a silent client is closed after app_handshake_timeout');
like(slurp_file($cm->logfile), qr/no route request within app_handshake_timeout \(500 ms\); closing/,
	'handshake time-out logged');

my $pv = () = slurp_file($cm->logfile) =~ /LOG:  application connection from \S+: protocol violation/g;
is($pv, 1, 'protocol violations of applications are logged once a minute at most');

# IPv6 loopback
SKIP:
{
	my $v6 = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $port, Proto => 'tcp');
	skip 'no IPv6 loopback', 1 unless $v6;
	syswrite($v6, CmWire::gss_request());
	my $sel = IO::Select->new($v6);
	my $got = '';
	sysread($v6, $got, 1) if $sel->can_read(5);
	is($got, 'E', 'conmgr answers on ::1');
}

# a watchdog sending garbage costs only its heartbeat connection
my $app = CmConmgr::App->connect($port);
is($app->route('primary')->{type}, 'I', 'application routed before the bad watchdog message');
$wd->command('raw ' . unpack('H*', 'Zjunkjunk'));
$m = $app->read_msg;
is($m->{type}, 'F', 'application notified when the heartbeat connection is dropped');
is($m->{reason}, $CmWire::REASON{conn_lost}, 'reason connection lost');
like($m->{message}, qr/invalid message from the watchdog: unknown or unexpected message type/,
	'notice gives the cause');
ok($cm->wait_up(0), 'conmgr reconnects to the watchdog');

$wd->command('raw ' . unpack('H*', 'b' . pack('N', 4 + 13) . pack('N N N C', 999999, 0, 0, 0)));
ok( $cm->wait_log(
		qr/instance is down: protocol violation: reply to heartbeat 999999, which is not outstanding/),
	'a reply to a heartbeat never sent is a protocol violation');
ok($cm->wait_up(0), 'and conmgr reconnects again');

# a port that accepts but never answers the hello: bounded by connect_timeout
my $silent = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => PostgreSQL::Test::Cluster::get_free_port(),
	Listen => 5,
	ReuseAddr => 1) or die "listen: $!";
my $conf = $cm->conf;
$cm->conf(
	    $conf
	  . "connect_timeout = 300\n"
	  . "backend_hostaddr1 = 127.0.0.1\nbackend_port1 = 5433\nwatchdog_port1 = "
	  . $silent->sockport . "\n");
my ($rc) = $cm->ctl('reload');
is($rc, 0, 'reload adds an instance whose port never answers');
ok( CmConmgr::wait_for(
		sub {
			my @i = $cm->instances;
			return @i == 2 && ($i[1]{error} // '') =~ /no welcome from the watchdog within connect_timeout \(300 ms\)/;
		},
		'hello time-out'),
	'a silent watchdog port is given up after connect_timeout');

# conmgr is still alive and serving
($rc) = $cm->ctl('status');
is($rc, 0, 'conmgr still running');
$c = CmConmgr::App->connect($port);
is($c->route('read-write')->{type}, 'I', 'conmgr still routes');

done_testing();
