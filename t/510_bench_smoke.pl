# The benchmarks of bench/ in smoke mode: a few seconds each, small N and M.
# Checks that each runs against a real cluster (and conmgr), prints a
# well-formed table, writes its CSV, and that every number is sane: every
# peer welcomed and answered at about the rate it heartbeats, a positive
# CPU cost per heartbeat, ordered round-trip percentiles; every
# application notified, after the event and after conmgr declared the
# instance down, and within the bounds its settings give.  Not a
# measurement: docs/performance.md has the figures and how to take them.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use CmTest;

my $top = CmTest::top();
my $bench = "$top/bench";

# built by scripts/test.sh (make test-programs); build them if not
if (!-x "$bench/watchdog-peers" || !-x "$bench/fanout" || !-x "$bench/echo-responder")
{
	system('make', '-s', '-C', $top, 'bench-programs') == 0
	  or BAIL_OUT('could not build the benchmark programs');
}

# run CMD...: (exit status, stdout and stderr together)
sub run_bench
{
	my $out = `@_ 2>&1`;
	return ($? >> 8, $out);
}

# The table rows of a benchmark's output: every line that starts with the
# first column's value (a number or the event name) and has ncol fields.
sub rows
{
	my ($out, $ncol, $first) = @_;
	return [ grep { scalar(@$_) == $ncol && $_->[0] =~ $first }
		  map { [ split ' ' ] } split /\n/, $out ];
}

sub csv_rows
{
	my ($file) = @_;
	open my $fh, '<', $file or return [];
	my @lines = <$fh>;
	close $fh;
	chomp @lines;
	return \@lines;
}

# --- watchdog-peers: 20 and 60 peers, heartbeat every 200 ms, 2 s window
{
	my $work = PostgreSQL::Test::Utils::tempdir('wd_peers');
	my $out = PostgreSQL::Test::Utils::tempdir('wd_peers_out');
	my $interval = 200;
	my @n = (20, 60);
	my $t0 = time;
	my ($rc, $text) =
	  run_bench('bash', "$bench/watchdog-peers-run.sh", $work, $out, 2,
		$interval, @n);
	note($text);
	is($rc, 0, 'watchdog-peers: exit status 0');
	like($text,
		qr/^responder\s+peers\s+welcomed\s+refused\s+failed\s+hb\/s\s+heartbeats\s+wd_cpu%\s+us\/hb\s+us\/hb\(ns\)\s+rtt_p50\s+rtt_p99\s+rtt_max$/m,
		'watchdog-peers: table header');
	my $rows = rows($text, 13, qr/^(watchdog|echo)(-udp)?$/);
	is(scalar(@$rows), 4 * scalar(@n),
		'watchdog-peers: watchdog and baseline rows, over TCP and as datagrams, per N');
	is(join(',', map { "$_->[0]:$_->[1]" } @$rows),
		join(',', map { "watchdog:$_,echo:$_,watchdog-udp:$_,echo-udp:$_" } @n),
		'watchdog-peers: the watchdog and the baseline side by side for each N and transport');
	for my $r (@$rows)
	{
		my ($who, $peers, $welcomed, $refused, $failed, $rate, $hbs, $cpu, $us,
			$us_ns, $p50, $p99, $max)
		  = @$r;
		my $t = "$who, N=$peers";
		my $expected = $peers * 1000 / $interval;
		is($welcomed, $peers, "$t: every peer welcomed");
		is($refused + $failed, 0, "$t: none refused or failed");
		ok($rate > 0.7 * $expected && $rate < 1.3 * $expected,
			"$t: replies at the heartbeat rate ($rate/s, $expected/s sent)");
		ok($hbs > 0, "$t: heartbeats answered in the window");
		ok($us_ns > 0 && $us_ns < 2000,
			"$t: CPU per heartbeat is positive and below 2 ms ($us_ns us)");
		ok($p50 > 0 && $p50 <= $p99 && $p99 <= $max && $max < 1000,
			"$t: round trips ordered and below 1 s ($p50 <= $p99 <= $max ms)");
	}
	my $ratios = rows($text, 6, qr/^ratio$/);
	is(scalar(@$ratios), 2 * scalar(@n), 'watchdog-peers: a cost ratio per N and transport');
	for my $r (@$ratios)
	{
		my (undef, $transport, $peers, $wd, $echo, $ratio) = @$r;
		ok($wd > 0 && $echo > 0 && abs($ratio - $wd / $echo) < 0.01 * $ratio + 0.01,
			"N=$peers, $transport: the ratio is the watchdog's cost over the baseline's ($wd / $echo = $ratio)");
	}
	my $csv = csv_rows("$out/watchdog-peers.csv");
	is(scalar(@$csv), 1 + 4 * scalar(@n), 'watchdog-peers: CSV header and rows');
	like($csv->[0], qr/^responder,peers,interval_ms,welcomed,/, 'watchdog-peers: CSV header');
	is(scalar(grep { scalar(split /,/, $_, -1) == 15 } @$csv),
		scalar(@$csv), 'watchdog-peers: 15 CSV fields on every line');
	like($text, qr/declared lost by the watchdog: 0$/m,
		'watchdog-peers: no peer lost (each said goodbye)');
	note(sprintf('watchdog-peers smoke: %.0f s', time - $t0));
}

# --- fanout: 30 applications, the server stopped, the watchdog frozen
{
	my $work = PostgreSQL::Test::Utils::tempdir('fanout');
	my $out = PostgreSQL::Test::Utils::tempdir('fanout_out');
	my $m = 30;
	my $t0 = time;
	my ($rc, $text) = run_bench('bash', "$bench/fanout-run.sh", $work, $out, $m);
	note($text);
	is($rc, 0, 'fanout: exit status 0');
	like($text,
		qr/^event\s+apps\s+reg_s\s+notified\s+missing\s+failed\s+eof\s+declared\s+written\s+first\s+last\s+first-d\s+last-d$/m,
		'fanout: table header');
	my $rows = rows($text, 13, qr/^(stop|sigstop)$/);
	is(scalar(@$rows), 2, 'fanout: a row for each event');
	for my $r (@$rows)
	{
		my ($event, $apps, $reg_s, $notified, $missing, $failed, $eof, $declared,
			$written, $first, $last, $first_d, $last_d)
		  = @$r;
		ok($written =~ /^\d+(\.\d+)?$/ && $written < 1000,
			"$event: conmgr says how long writing the notices took ($written ms)");
		is($apps, $m, "$event: $m applications");
		ok($reg_s >= 0 && $reg_s < 30, "$event: registered within 30 s ($reg_s s)");
		is($notified, $m, "$event: every application notified");
		is($missing + $failed, 0, "$event: none missing or failed");
		like($declared, qr/^\d+$/, "$event: conmgr logged the instance down after the event");
		ok($first >= 0 && $first <= $last, "$event: first notice after the event, before the last");
		# the log keeps milliseconds: a notice may seem up to 1 ms early
		ok($first_d >= -1 && $last_d < 2000,
			"$event: notices after the declaration, within 2 s ($first_d .. $last_d ms)");
		if ($event eq 'stop')
		{
			ok($declared < 2000, "stop: declared within 2 s ($declared ms)");
		}
		else
		{
			# heartbeat_timeout 1000 ms counted from the last reply, which
			# came at most one interval (200 ms) before the freeze
			ok($declared >= 750 && $declared < 2500,
				"sigstop: declared about heartbeat_timeout after the freeze ($declared ms)");
		}
	}
	my $csv = csv_rows("$out/fanout.csv");
	is(scalar(@$csv), 3, 'fanout: CSV header and two rows');
	like($csv->[0], qr/^event,apps,register_s,registered,/, 'fanout: CSV header');
	note(sprintf('fanout smoke: %.0f s', time - $t0));
}

done_testing();
