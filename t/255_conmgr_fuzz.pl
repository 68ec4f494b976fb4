
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Random input on both channels: conmgr must survive every byte string an
# application or a watchdog sends, and keep serving.  The seed is printed
# so that a failure can be replayed (CM_FUZZ_SEED).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmConmgr;
use CmWire;

my $seed = $ENV{CM_FUZZ_SEED} // time();
srand($seed);
note("CM_FUZZ_SEED=$seed");

my $wd = CmConmgr::FakeWatchdog->new(attrs => 0);
my $cm = CmConmgr->new(
	heartbeat_interval => 100,
	heartbeat_timeout => 500,
	app_handshake_timeout => 200,
	instances =>
	  [ { hostaddr => '127.0.0.1', port => 5432, watchdog_port => $wd->port } ]
)->start;
my $port = $cm->port;
ok($cm->wait_up(0), 'instance up');

sub random_bytes
{
	my ($n) = @_;
	return join('', map { chr(int(rand(256))) } 1 .. $n);
}

# A plausible frame: a known type, a length that is right, short or long.
sub random_frame
{
	my @types = split //, 'RJIFNXHBbAWSGCKPZ';
	my $type = $types[ int(rand(@types)) ];
	my $payload = random_bytes(int(rand(40)));
	my $len = 4 + length($payload);
	my $r = rand();
	$len = int(rand(5)) if $r < 0.1;
	$len = 2048 + int(rand(100000)) if $r > 0.9;
	return $type . pack('N', $len) . $payload;
}

# applications: random first packets, then random frames after a greeting
for my $i (1 .. 150)
{
	my $c = CmConmgr::App->connect($port, no_greeting => 1) or next;
	my $r = rand();
	if ($r < 0.3)
	{
		$c->send_raw(random_bytes(1 + int(rand(64))));
	}
	elsif ($r < 0.6)
	{
		my @codes = (80877102, 80877103, 80877104, 196608, 131072, int(rand(2**32)));
		$c->send_raw(pack('N N', 8 + int(rand(3)) * 4, $codes[ int(rand(@codes)) ]) . random_bytes(int(rand(16))));
	}
	else
	{
		$c->send_raw(CmWire::gss_request());
		$c->send_raw(random_frame()) for 1 .. 1 + int(rand(3));
	}
	$c->close if rand() < 0.5;    # the others are left to the handshake time-out
}
# frames after a valid route request
for my $i (1 .. 50)
{
	my $c = CmConmgr::App->connect($port) or next;
	$c->route('any');
	$c->send_raw(random_frame());
}

# watchdog: random frames on an established heartbeat connection
for my $i (1 .. 30)
{
	$cm->wait_up(0);
	$wd->command('raw ' . unpack('H*', random_frame()));
}

ok($cm->wait_up(0), 'conmgr reconnects after the random watchdog messages');
my ($rc) = $cm->ctl('status');
is($rc, 0, 'conmgr survived the random input');
my $app = CmConmgr::App->connect($port);
ok($app, 'conmgr still greets applications');
is($app->route('read-write')->{type}, 'I', 'conmgr still routes');
unlike(slurp_file($cm->logfile), qr/FATAL|AddressSanitizer|runtime error/,
	'no fatal error in the log');

done_testing();
