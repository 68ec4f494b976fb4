
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Datagram heartbeats (protocol 1.2, docs/protocol.md "Datagram
# heartbeats") between a real conmgr and a real watchdog, through a relay
# (t/lib/CmRelay.pm) that forwards TCP and UDP and can block, replay,
# forge and reorder datagrams:
#  - the path becomes "datagram" (log, cm_ctl status, metrics, the view),
#    and heartbeats then leave the TCP connection alone;
#  - forged, replayed and reordered datagrams, either way, are dropped
#    without an answer and counted, and cause no notice and no failure;
#  - with UDP blocked both ways conmgr falls back to TCP in time, says why,
#    and comes back to datagrams at the next probe once unblocked;
#  - heartbeat_datagrams = off keeps to TCP and sends no datagram; a
#    conmgr whose datagrams never get through keeps to TCP after 3 s;
#  - 1.0 and 1.1 peers are still welcomed and answered over TCP, their
#    datagrams are not; a 1.2 peer written from the protocol text (CmSeal)
#    is answered by datagram; random datagrams are never answered.

use strict;
use warnings FATAL => 'all';

use IO::Select;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CmConmgr;
use CmNode;
use CmRelay;
use CmSeal;
use CmWatchdog;
use CmWire;

my ($I, $T) = (200, 2000);    # ms
my $slack = 1.5;              # s: scheduling on a loaded machine

my $secret = 'the shared secret of the datagram test';
my $node = CmNode->create('dgram', secret => $secret);
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
is($node->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'watchdog'"),
	'1.2', 'CREATE EXTENSION installs version 1.2');

my $secret_file = PostgreSQL::Test::Utils::tempdir('dgsecret') . '/secret';
CmNode::write_secret_file($secret_file, "$secret\n");

sub random_bytes
{
	my ($n) = @_;
	return join '', map { chr(int(rand(256))) } 1 .. $n;
}

my @relays;

# A conmgr for the node through a new relay; returns (conmgr, relay, metrics port).
sub conmgr_via_relay
{
	my (%extra) = @_;
	my $relay = CmRelay->new(target => $wdport);
	my $modes = delete $extra{relay_modes} // [];
	$relay->command($_) foreach @$modes;
	my $mport = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = CmConmgr->new(
		metrics_port => $mport,
		secret_file => "'$secret_file'",
		heartbeat_interval => $I,
		heartbeat_timeout => $T,
		%extra,
		instances => [
			{
				host => '127.0.0.1',
				port => $node->port,
				watchdog_port => $relay->port
			}
		])->start;
	# a relay ends when its object goes: keep them all to the end
	push @relays, $relay;
	return ($cm, $relay, $mport);
}

# The value of a metric sample whose labels include %labels (undef if none).
sub metric
{
	my ($text, $name, %labels) = @_;
	foreach my $line (split /\n/, $text // '')
	{
		next unless $line =~ /^\Q$name\E\{([^}]*)\} (\S+)$/;
		my ($lab, $v) = ($1, $2);
		my %l;
		$l{$1} = $2 while $lab =~ /(\w+)="([^"]*)"/g;
		next if grep { ($l{$_} // '') ne $labels{$_} } keys %labels;
		return $v;
	}
	return undef;
}

sub dropped_metrics
{
	my ($mport) = @_;
	my $m = CmConmgr::scrape_metrics($mport);
	return {
		map {
			$_ => metric($m, 'conmgr_heartbeat_datagrams_dropped_total', reason => $_)
			  // -1
		} qw(malformed unknown tag replay)
	};
}

sub failures_total
{
	my ($mport) = @_;
	my $m = CmConmgr::scrape_metrics($mport) // '';
	my $sum = 0;
	$sum += $1 while $m =~ /^conmgr_instance_failures_total\{[^}]*\} (\d+)$/mg;
	return $sum;
}

# The view's row of the conmgr behind a relay (the watchdog sees the
# relay's connection): by the local port of the relay's last connection.
sub view_row
{
	my ($relay) = @_;
	my @ports = split /,/, $relay->counts->{tcp_upstream};
	return {} unless @ports;
	my $r = $node->safe_psql('postgres',
		"SELECT heartbeat_path, heartbeats, state FROM pgx_stat_watchdog "
		  . "WHERE conmgr_port = $ports[-1] AND state = 'active'");
	my %row;
	@row{qw(heartbeat_path heartbeats state)} = split /\|/, $r;
	return \%row;
}

sub wait_view_path
{
	my ($relay, $path) = @_;
	return CmConmgr::wait_for(
		sub { (view_row($relay)->{heartbeat_path} // '') eq $path },
		"view heartbeat_path $path");
}

# The watchdog's summaries of dropped datagrams after a log offset,
# added up: { total, malformed, no_session, tag, replay, lines }.
sub summaries
{
	my ($offset) = @_;
	my %s = map { $_ => 0 } qw(total malformed no_session tag replay rate lines);
	my $log = slurp_file($node->logfile, $offset);
	while ($log =~
		/watchdog dropped (\d+) heartbeat datagrams in the last [\d.]+ s: (\d+) malformed, (\d+) of no session, (\d+) with a bad tag, (\d+) replayed or reordered(?:, (\d+) over the heartbeat rate)?/g
	  )
	{
		$s{total} += $1;
		$s{malformed} += $2;
		$s{no_session} += $3;
		$s{tag} += $4;
		$s{replay} += $5;
		$s{rate} += $6 // 0;
		$s{lines}++;
	}
	return \%s;
}

# Wait until the summaries after $offset count $total datagrams (they come
# at most every 10 s), then check the counts by cause.
sub check_summaries
{
	my ($what, $offset, %want) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $s;
	my $deadline = time + 12 + $slack;
	while (time < $deadline)
	{
		$s = summaries($offset);
		last if $s->{total} - $s->{rate} >= $want{total};
		usleep(200_000);
	}
	note(sprintf('%s: summaries: %d lines, %d dropped: %d malformed, %d of no session, '
		  . '%d bad tag, %d replayed, %d over the rate',
		  $what, @$s{qw(lines total malformed no_session tag replay rate)}));
	# conmgr's extra datagrams while a reply is late (a loaded machine) may
	# go over the rate: counted, but not the test's doing
	is($s->{total} - $s->{rate}, $want{total},
		"$what: the watchdog's summary counts $want{total} dropped datagrams");
	is($s->{malformed} + $s->{no_session} + $s->{tag} + $s->{replay} + $s->{rate}, $s->{total},
		"$what: the causes add up to the total");
	foreach my $k (qw(malformed no_session tag replay))
	{
		next unless defined $want{$k};
		if (ref $want{$k})
		{
			cmp_ok($s->{$k}, '>=', ${ $want{$k} }, "$what: at least ${ $want{$k} } $k");
		}
		else
		{
			is($s->{$k}, $want{$k}, "$what: $want{$k} $k");
		}
	}
	return $s;
}

# ---------------------------------------------------------------------
# conmgr through the relay; an application registered with a real session

my ($cm, $relay, $mport) = conmgr_via_relay();
my $log = $cm->logfile;
my $cmport = $cm->port;
ok($cm->wait_up(0), 'the instance is up through the relay');
is($cm->instance(0)->{authenticated}, 'true', 'the heartbeat connection is authenticated');
is($cm->instance(0)->{protocol_version}, '1.2', 'protocol 1.2 is spoken');

my $session = CmWatchdog::Session->start(
	'host=127.0.0.1 port=' . $node->port . ' dbname=postgres');
my $backend_pid = $session->query('SELECT pg_backend_pid()');
my $client_port = $session->query('SELECT inet_client_port()');
my $app = CmConmgr::App->connect($cmport);
my $routed = $app && $app->route('read-write', 'dgram-app');
ok($routed && $routed->{type} eq 'I', 'an application is routed to the instance');
$app->register_port($backend_pid, $client_port);
ok( CmConmgr::wait_for(
		sub {
			grep { $_->{state} eq 'registered' && $_->{backend_pid} == $backend_pid }
			  $cm->applications;
		},
		'registration'),
	'its session is registered');

# Nothing came to the application: no notice, no close.
sub app_untold
{
	my ($what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $closed = $app->is_closed(0.05);
	ok(!$closed && $app->{buf} eq '', "$what: no notice to the application")
	  or diag('the application got: ' . unpack('H*', $app->{buf}));
	is($cm->instance(0)->{state}, 'up', "$what: the instance is up");
	is(failures_total($mport), 0, "$what: no instance failure counted");
	return;
}

# --- the path becomes datagram
ok($cm->wait_log(qr/instance 0\b[^\n]*: heartbeats go as datagrams/),
	'log: heartbeats go as datagrams');
is($cm->instance(0)->{heartbeat_path}, 'datagram', 'status --json: heartbeat_path datagram');
my (undef, $text) = $cm->ctl('status');
like($text, qr/^\s*0\s+127\.0\.0\.1:\d+ .*, heartbeats as datagrams$/m,
	'status: the instance line says heartbeats as datagrams');
my $metrics = CmConmgr::scrape_metrics($mport);
is(metric($metrics, 'conmgr_instance_heartbeat_path', cm_instance => 0, path => 'datagram'),
	1, 'metrics: heartbeat path datagram is 1');
is(metric($metrics, 'conmgr_instance_heartbeat_path', cm_instance => 0, path => 'tcp'),
	0, 'metrics: heartbeat path tcp is 0');
ok(wait_view_path($relay, 'datagram'), "the view's heartbeat_path is datagram");

# heartbeats go on, as datagrams only: measure a quiet window
{
	my $c0 = $relay->counts;
	my $h0 = view_row($relay)->{heartbeats};
	usleep(2_000_000);    # the measuring window: 10 heartbeat intervals
	my $c1 = $relay->counts;
	my $h1 = view_row($relay)->{heartbeats};
	note(sprintf('in 2 s: %d datagrams to the watchdog, %d back; TCP %d and %d bytes',
		$c1->{towd_fwd} - $c0->{towd_fwd}, $c1->{tocm_fwd} - $c0->{tocm_fwd},
		$c1->{tcp_towd} - $c0->{tcp_towd}, $c1->{tcp_tocm} - $c0->{tcp_tocm}));
	cmp_ok($c1->{towd_fwd} - $c0->{towd_fwd}, '>=', 5, 'heartbeat datagrams go to the watchdog');
	cmp_ok($c1->{tocm_fwd} - $c0->{tocm_fwd}, '>=', 5, 'and their replies come back');
	cmp_ok($h1 - $h0, '>=', 5, "the view's heartbeats count grows");
	is($c1->{tcp_towd}, $c0->{tcp_towd}, 'no byte on the TCP connection to the watchdog');
	is($c1->{tcp_tocm}, $c0->{tcp_tocm}, 'no byte on the TCP connection from the watchdog');
	is($c1->{udp_sources}, 1, 'all datagrams from one UDP socket of conmgr');
}
app_untold('datagram path');

# ---------------------------------------------------------------------
# forged, replayed and reordered datagrams towards the watchdog

{
	my $offset = -s $node->logfile;
	my $before = $relay->counts;
	my @held;
	foreach my $i (1 .. 3)
	{
		$relay->command('replay towd');
		usleep(150_000);
		$relay->command('forge towd -1');    # the tag
		usleep(150_000);
		$relay->command('reorder towd');
		CmConmgr::wait_for(sub { $relay->command('held towd') =~ /after=/ },
			'the held datagram is delivered');
		push @held, $relay->command('held towd') =~ /seq=(\d+)/;
		usleep(150_000);
	}
	$relay->command('forge towd 0') for 1 .. 2;    # the datagram id
	usleep(3 * $I * 1000);
	my @answers = $relay->seqs('tocm');
	my %n;
	$n{$_}++ foreach @answers;
	my @twice = grep { $n{$_} > 1 } sort { $a <=> $b } keys %n;
	is("@twice", '', 'towards the watchdog: no heartbeat answered twice (replays and forgeries unanswered)');
	my @late = grep { $n{$_} } @held;
	is("@late", '', "towards the watchdog: no answer to a datagram delivered after its successor (@held)");
	my $after = $relay->counts;
	is($after->{towd_injected} - $before->{towd_injected}, 8,
		'8 datagrams injected towards the watchdog (and 3 held back)');
	app_untold('attacks towards the watchdog');
	check_summaries('towards the watchdog', $offset,
		total => 11, malformed => 0, no_session => 2, tag => 3, replay => 6);
	my $wlog = slurp_file($node->logfile, $offset);
	unlike($wlog, qr/was lost|terminated \d+ session|integrity check/,
		'towards the watchdog: no loss, no termination, no integrity failure');
}

# ---------------------------------------------------------------------
# the same towards conmgr

{
	my $m0 = dropped_metrics($mport);
	my $offset = -s $log;
	my $fwd0 = $relay->counts->{tocm_fwd};
	foreach my $i (1 .. 3)
	{
		$relay->command('replay tocm');
		usleep(150_000);
		$relay->command('forge tocm -1');
		usleep(150_000);
	}
	foreach my $i (1 .. 2)
	{
		$relay->command('reorder tocm');
		CmConmgr::wait_for(sub { $relay->command('held tocm') =~ /after=/ },
			'the held reply is delivered');
		$relay->command('inject tocm ' . unpack('H*', "\0" x 5));
		# framed as a reply datagram, under an id that is no session's
		$relay->command('inject tocm ' . unpack('H*', random_bytes(8) . 'b' . pack('N', 41) . random_bytes(37)));
		usleep(150_000);
	}
	usleep(3 * $I * 1000);
	my $m1 = dropped_metrics($mport);
	note('dropped by conmgr: '
		  . join(', ', map { "$_ " . ($m1->{$_} - $m0->{$_}) } sort keys %$m1));
	is($m1->{malformed} - $m0->{malformed}, 2, 'towards conmgr: 2 malformed datagrams counted');
	is($m1->{unknown} - $m0->{unknown}, 2, 'towards conmgr: 2 of an unknown id counted');
	is($m1->{tag} - $m0->{tag}, 3, 'towards conmgr: 3 with a bad tag counted');
	is($m1->{replay} - $m0->{replay}, 5, 'towards conmgr: 3 replayed and 2 reordered counted');
	app_untold('attacks towards conmgr');
	unlike(slurp_file($log, $offset), qr/integrity|heartbeats go over TCP|not answered/,
		'towards conmgr: no integrity failure, no change of path');
	is($cm->instance(0)->{heartbeat_path}, 'datagram', 'towards conmgr: the path stays datagram');
}

# ---------------------------------------------------------------------
# UDP blocked both ways: back to TCP; unblocked: datagrams again

{
	my $offset = -s $log;
	my $t0 = time;
	$relay->command('mode towd drop');
	$relay->command('mode tocm drop');
	my $not_up = 0;
	my $seen = CmConmgr::wait_for(
		sub {
			$not_up++ if ($cm->instance(0)->{state} // '') ne 'up';
			return slurp_file($log, $offset) =~ /instance 0\b[^\n]*: heartbeats go over TCP: ([^\n]*)/
			  ? $1 : 0;
		},
		'fall back to TCP');
	my $took = time - $t0;
	ok($seen, 'blocked: conmgr says heartbeats go over TCP');
	like($seen // '', qr/datagrams stopped getting through while the TCP connection answers/,
		'blocked: with the reason');
	# T - 2I without a reply, then 5 intervals of TCP replies only
	my $bound = ($T - 2 * $I + 6 * $I) / 1000 + $slack;
	cmp_ok($took, '<=', $bound, sprintf('blocked: within %.1f s (%.3f s)', $bound, $took));
	cmp_ok($took, '>=', ($T - 2 * $I) / 1000 - 0.1,
		sprintf('blocked: not before heartbeat_timeout - 2 x heartbeat_interval (%.3f s)', $took));
	is($not_up, 0, 'blocked: the instance stayed up meanwhile');
	is($cm->instance(0)->{heartbeat_path}, 'tcp', 'blocked: status --json heartbeat_path tcp');
	my (undef, $text) = $cm->ctl('status');
	like($text, qr/^\s*0\s+127\.0\.0\.1:\d+ .*, heartbeats over TCP$/m,
		'blocked: the instance line says heartbeats over TCP');
	my $m = CmConmgr::scrape_metrics($mport);
	is(metric($m, 'conmgr_instance_heartbeat_path', cm_instance => 0, path => 'tcp'), 1,
		'blocked: metrics path tcp is 1');
	is(metric($m, 'conmgr_instance_heartbeat_path', cm_instance => 0, path => 'datagram'), 0,
		'blocked: metrics path datagram is 0');
	ok(wait_view_path($relay, 'tcp'), "blocked: the view's heartbeat_path is tcp");
	my $c0 = $relay->counts;
	usleep(1_000_000);    # a measuring window of 5 intervals
	my $c1 = $relay->counts;
	cmp_ok($c1->{tcp_towd} - $c0->{tcp_towd}, '>', 0, 'blocked: heartbeats go over the TCP connection');
	app_untold('UDP blocked');

	$offset = -s $log;
	$t0 = time;
	$relay->command('mode towd pass');
	$relay->command('mode tocm pass');
	$seen = CmConmgr::wait_for(
		sub { slurp_file($log, $offset) =~ /instance 0\b[^\n]*: heartbeats go as datagrams/ },
		'back to datagrams');
	$took = time - $t0;
	ok($seen, 'unblocked: heartbeats go as datagrams again');
	$bound = 22 * $I / 1000 + $slack;
	cmp_ok($took, '<=', $bound,
		sprintf('unblocked: at the next probe, within %.1f s (%.3f s)', $bound, $took));
	is($cm->instance(0)->{heartbeat_path}, 'datagram', 'unblocked: status --json heartbeat_path datagram');
	ok(wait_view_path($relay, 'datagram'), "unblocked: the view's heartbeat_path is datagram");
	app_untold('UDP unblocked');
}

ok($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $backend_pid") eq '1',
	'the registered session is alive');

# ---------------------------------------------------------------------
# heartbeat_datagrams = off; a conmgr whose datagrams never get through

{
	my ($cm2, $relay2) = conmgr_via_relay(heartbeat_datagrams => 'off');
	ok($cm2->wait_up(0), 'datagrams off: the instance is up');
	usleep(2_000_000);    # a window of 10 intervals in which no datagram may go
	is($cm2->instance(0)->{heartbeat_path}, 'tcp', 'datagrams off: status --json heartbeat_path tcp');
	my (undef, $text) = $cm2->ctl('status');
	like($text, qr/, heartbeats over TCP$/m, 'datagrams off: the instance line says heartbeats over TCP');
	ok(wait_view_path($relay2, 'tcp'), "datagrams off: the view's heartbeat_path is tcp");
	my $c = $relay2->counts;
	is($c->{towd_seen} + $c->{tocm_seen}, 0, 'datagrams off: no datagram at the relay');
	unlike(slurp_file($cm2->logfile), qr/heartbeats go as datagrams/,
		'datagrams off: never the datagram path');

	my ($cm3, $relay3) =
	  conmgr_via_relay(relay_modes => [ 'mode towd drop', 'mode tocm drop' ]);
	ok($cm3->wait_up(0), 'datagrams blocked from the start: the instance is up');
	my $t0 = time;
	my $why = CmConmgr::wait_for(
		sub {
			slurp_file($cm3->logfile) =~ /instance 0\b[^\n]*: heartbeats go over TCP: ([^\n]*)/
			  ? $1 : 0;
		},
		'probe gives up');
	my $took = time - $t0;
	like($why // '', qr/no datagram reply within 3000 ms/,
		'datagrams blocked from the start: TCP, no datagram reply within 3000 ms');
	cmp_ok($took, '<=', 3 + $slack, sprintf('datagrams blocked from the start: said within 3 s (%.3f s)', $took));
	is($cm3->instance(0)->{heartbeat_path}, 'tcp', 'datagrams blocked from the start: heartbeat_path tcp');
	is($cm3->instance(0)->{state}, 'up', 'datagrams blocked from the start: the instance stays up');
	cmp_ok($relay3->counts->{towd_seen}, '>', 0, 'datagrams blocked from the start: conmgr did probe');
	$relay3->command('mode towd pass');
	$relay3->command('mode tocm pass');
	ok($cm3->wait_log(qr/heartbeats go as datagrams/),
		'datagrams blocked from the start: once unblocked, datagrams at the next probe');
}

# ---------------------------------------------------------------------
# peers speaking 1.0, 1.1 and 1.2 directly; random datagrams

{
	my $offset = -s $node->logfile;
	my $seq = 0;
	foreach my $v ([ '1.0', 0x0100 ], [ '1.1', 0x0101 ])
	{
		my ($name, $max) = @$v;
		my $p = CmWatchdog::Peer->connect($wdport);
		my ($w) = $p->authenticate(secret => $secret, interval => $I, timeout => $T,
			max_version => $max, name => "peer-$name");
		ok($w && $w->{type} eq 'W' && $w->{version} == $max,
			"a $name peer is welcomed with version $name");
		my $r = $p->heartbeat(++$seq);
		ok($r && $r->{type} eq 'b' && $r->{seq} == $seq, "$name peer: its TCP heartbeat is answered");
		usleep($I * 1000);
		$p->send_datagram($p->datagram(++$seq));
		ok(!$p->read_datagram(1), "$name peer: a datagram of its session is not answered");
		$r = $p->heartbeat(++$seq);
		ok($r && $r->{type} eq 'b' && $r->{seq} == $seq, "$name peer: TCP heartbeats still answered");
		is($node->safe_psql('postgres',
				"SELECT protocol_version || ' ' || heartbeat_path FROM pgx_stat_watchdog "
				  . "WHERE conmgr_name = 'peer-$name' AND state = 'active'"),
			"$name tcp", "$name peer: the view shows version $name, path tcp");
		$p->goodbye;
		$p->close;
	}

	my $p = CmWatchdog::Peer->connect($wdport);
	my ($w) = $p->authenticate(secret => $secret, interval => $I, timeout => $T,
		max_version => 0x0102, name => 'peer-1.2');
	ok($w && $w->{type} eq 'W' && $w->{version} == 0x0102, 'a 1.2 peer is welcomed with version 1.2');
	my $r = $p->heartbeat(++$seq);
	ok($r && $r->{type} eq 'b', '1.2 peer: its TCP heartbeat is answered');
	usleep($I * 1000);
	my $d = $p->datagram(++$seq, 4242);
	$p->send_datagram($d);
	my $a = $p->read_datagram(2);
	ok($a && !$a->{error} && $a->{type} eq 'b' && $a->{seq} == $seq && $a->{echo} == 4242,
		'1.2 peer: its datagram heartbeat is answered by a sealed datagram reply')
	  or diag(explain($a));
	is($a && $a->{dseq}, 1, '1.2 peer: the first reply datagram has datagram sequence number 1');
	is($a && $a->{from}, $wdport, '1.2 peer: the reply comes from watchdog.port');
	is(length($d), 49, 'a heartbeat datagram is 49 bytes');
	is($node->safe_psql('postgres',
			"SELECT heartbeat_path FROM pgx_stat_watchdog WHERE conmgr_name = 'peer-1.2' AND state = 'active'"),
		'datagram', "1.2 peer: the view's heartbeat_path is datagram");
	usleep($I * 1000);
	$p->send_datagram($d);
	ok(!$p->read_datagram(1), '1.2 peer: the same datagram again is not answered');
	# a TCP frame (channel T) sent as a datagram
	$p->send_datagram($p->{dgram_id}
		  . CmSeal::seal($p->{key_out}, ++$p->{dseq_out},
			CmWire::heartbeat_frame(++$seq, 0), 'T'));
	ok(!$p->read_datagram(1), '1.2 peer: a frame sealed for the TCP channel is not answered');
	usleep($I * 1000);
	$p->send_datagram($p->datagram(++$seq));
	$a = $p->read_datagram(2);
	ok($a && !$a->{error} && $a->{seq} == $seq, '1.2 peer: the next datagram is answered');
	$r = $p->heartbeat(++$seq);
	ok($r && $r->{type} eq 'b' && $r->{seq} == $seq, '1.2 peer: the TCP connection is intact');
	$p->goodbye;
	$p->close;

	# random bytes from an address that never connected
	my $u = IO::Socket::INET->new(LocalAddr => '127.0.0.1', Proto => 'udp') or die $!;
	my $to = Socket::sockaddr_in($wdport, Socket::inet_aton('127.0.0.1'));
	foreach my $len (1, 49, 50, 64, 65, 200)
	{
		send($u, random_bytes($len), 0, $to);
	}
	# framed as a heartbeat datagram, under an id that is no session's
	send($u, random_bytes(8) . 'B' . pack('N', 40) . random_bytes(36), 0, $to);
	ok(!IO::Select->new($u)->can_read(1.5), 'random datagrams from a stranger are not answered');

	# no session: the 1.0 and 1.1 peers' datagrams, the stranger's framed
	# one; a bad tag: the frame sealed for TCP; malformed: the stranger's
	# random bytes (their length field does not match)
	check_summaries('peers and strangers', $offset,
		total => 11, replay => 1, tag => 1, no_session => 3, malformed => 6);
}

app_untold('at the end');
my $wlog = slurp_file($node->logfile);
unlike($wlog, qr/terminated \d+ session/, 'the watchdog terminated nothing');
$session->quit;
$app->close;

done_testing();
