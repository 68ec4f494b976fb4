
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Integrity of the heartbeat channel after the handshake, seen from conmgr.
# A relay on the path that lets the authenticated handshake through can
# then inject frames (a forged shutdown, forged attributes), replay one, or
# alter one.  conmgr must believe none of it: the connection fails its
# integrity check, the instance's applications are told "connection lost"
# (never the forged reason), and conmgr reconnects.  The fake watchdog's
# "raw" command sends bytes as they are, unsealed, as such a relay would.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmConmgr;
use CmWire;

my $tmp = PostgreSQL::Test::Utils::tempdir('secrets');
my $secret = 'the shared secret of the integrity test';
my $file = "$tmp/secret";
open my $fh, '>', $file or die "$file: $!";
print $fh "$secret\n";
close $fh;
chmod 0600, $file;

my $wd = CmConmgr::FakeWatchdog->new(attrs => 0, secret => $secret);
my $mport = PostgreSQL::Test::Cluster::get_free_port();
my $cm = CmConmgr->new(
	metrics_port => $mport,
	secret_file => "'$file'",
	heartbeat_interval => 100,
	heartbeat_timeout => 2000,
	instances => [ { host => '127.0.0.1', port => 5432, watchdog_port => $wd->port } ])->start;
my $port = $cm->port;
my $log = $cm->logfile;

sub hellos { my @h = $wd->events =~ /^hello /mg; return scalar @h; }

ok($cm->wait_up(0), 'the authenticated instance is up');
like($wd->events, qr/^proof ok$/m, "conmgr's proof verified");

# An application routed to the instance, registered.
sub app
{
	my ($name) = @_;
	my $a = CmConmgr::App->connect($port);
	my $r = $a && $a->route('read-write', $name);
	ok($r && $r->{type} eq 'I', "$name: routed to the instance");
	$a->register(4242);
	CmConmgr::wait_for(sub { $wd->events =~ /^register pid=4242 /m }, 'registered');
	return $a;
}

# Inject something, then check what conmgr made of it.
sub attack
{
	my ($what, $cmd, $log_re) = @_;
	my $before = hellos();
	my $offset = -s $log;
	my $a = app($what);
	$wd->command($cmd);
	my $m = $a->read_msg;
	ok($m && $m->{type} eq 'F', "$what: the application is notified");
	is($m && $m->{reason}, $CmWire::REASON{conn_lost},
		"$what: with reason 'connection lost', not the forged one");
	ok( $cm->wait_log($log_re),
		"$what: conmgr logs the failed integrity check");
	my $text = slurp_file($log, $offset);
	unlike($text, qr/forged/, "$what: nothing of the forged frame is believed or logged");
	ok(CmConmgr::wait_for(sub { hellos() > $before }, 'reconnect'),
		"$what: conmgr reconnects");
	ok($cm->wait_up(0), "$what: the instance is up again");
	is($cm->instance(0)->{standby}, 'false', "$what: its attributes are the watchdog's own");
	$a->close;
	return $text;
}

my $shutdown = CmWire::frame('S', CmWire::notice_payload(5, 'forged shutdown'));
my $text = attack('a forged shutdown', 'raw ' . unpack('H*', $shutdown),
	qr/heartbeat connection failed its integrity check: a frame whose authentication tag is wrong/);
unlike($text, qr/shutting down/, 'the forged shutdown is not taken for one');

attack('forged attributes', 'raw ' . unpack('H*', CmWire::frame('A', pack('C', 3))),
	qr/integrity check/);
my @routed = CmConmgr::App->connect($port);
is($routed[0]->route('read-write', 'after')->{type}, 'I',
	'after forged standby attributes the instance still takes read-write');

# a sealed frame sent a second time
attack('a replayed frame', 'replay',
	qr/heartbeat connection failed its integrity check: a frame out of sequence/);

# a sealed frame with one byte changed: the raw command can only send
# unsealed bytes, so append a plausible trailer of the right length
my $fake_sealed = CmWire::frame('A', pack('C', 0) . ("\0" x 24));
attack('an altered frame', 'raw ' . unpack('H*', $fake_sealed), qr/integrity check/);

# the four failures are counted as integrity failures, nothing else
my $metrics = CmConmgr::scrape_metrics($mport) // '';
like($metrics, qr/^conmgr_instance_failures_total\{cm_instance="0",host="127\.0\.0\.1",port="5432",reason="integrity"\} 4$/m,
	'metrics: four failures with reason integrity');
like($metrics, qr/^conmgr_instance_failures_total\{cm_instance="0",[^}]*reason="connection_lost"\} 0$/m,
	'metrics: none counted as a lost connection');
# one per attack, and one more to the connection routed "after", which the
# replay closes
like($metrics, qr/^conmgr_notices_sent_total\{reason="connection_lost"\} 5$/m,
	'metrics: five notices sent with reason connection lost');

done_testing();
