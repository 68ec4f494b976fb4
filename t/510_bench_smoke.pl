# The benchmarks of bench/ in smoke mode: a few seconds each, small N and M.
# Checks that each runs against a real cluster (and conmgr), prints a
# well-formed table, writes its CSV, and that every number is sane: every
# peer welcomed and answered at about the rate it heartbeats, a positive
# CPU cost per heartbeat, ordered round-trip percentiles; every
# application notified, after the event and after conmgr declared the
# instance down, and within the bounds its settings give; every
# connection of the connect benchmark made (directly, through conmgr and
# through pgbouncer), ordered latencies, positive tps on every path, and
# pgbouncer stopped at the end; the soak's CPU part
# (bench/soak-load-run.sh) with two settings under full CPU load: the
# table and CSV well formed, the CPUs busy, heartbeats answered at their
# rate, and no false failure at 200/1000.  (The soak's network part needs
# root: t/495_bench_soak_blips.pl.)  Not a measurement: docs/performance.md
# has the figures and how to take them.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CmProg;

my $top = CmProg::top();
my $bench = "$top/bench";

# built by scripts/test.sh (make test-programs); build them if not
if (   !-x "$bench/watchdog-peers"
	|| !-x "$bench/fanout"
	|| !-x "$bench/echo-responder"
	|| !-x "$bench/connect")
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

# --- connect: 20 connections per path (and 20 paced), pgbench -S for 20
# transactions per client and workload, direct vs conmgr vs pgbouncer
{
	my $work = PostgreSQL::Test::Utils::tempdir('connect');
	my $out = PostgreSQL::Test::Utils::tempdir('connect_out');
	my $n = 20;
	my @paths = qw(direct conmgr pgbouncer);
	my @labels = (@paths, map { "$_-paced" } @paths);
	my $t0 = time;
	my ($rc, $text) =
	  run_bench('bash', "$bench/connect-run.sh", $work, $out, $n, 1, '-t20');
	note($text);
	is($rc, 0, 'connect: exit status 0');

	# pgbouncer processes still running with the ini of this work directory
	my @left;
	for my $cmdline (glob('/proc/[0-9]*/cmdline'))
	{
		open my $fh, '<', $cmdline or next;
		my $args = do { local $/; <$fh> } // '';
		close $fh;
		push @left, $cmdline =~ m{/proc/(\d+)/} if $args =~ /pgbouncer/ && index($args, "$work/pgbouncer/") >= 0;
	}
	is("@left", '', 'connect: pgbouncer is not left running');
	kill 'KILL', @left if @left;
	like($text, qr/^pgbouncer stopped$/m, 'connect: pgbouncer stopped by the run script');

	like($text,
		qr/^path\s+connections\s+min\s+median\s+p90\s+p99\s+max$/m,
		'connect: latency table header');
	my $lat = rows($text, 7, qr/^(direct|conmgr|pgbouncer)(-paced)?$/);
	is(join(' ', map { $_->[0] } @$lat), "@labels",
		'connect: a latency row per path, back to back and paced');
	my %median;
	for my $r (@$lat)
	{
		my ($path, $conns, $min, $med, $p90, $p99, $max) = @$r;
		$median{$path} = $med;
		is($conns, $n, "$path: all $n connections made");
		ok($min > 0 && $min <= $med && $med <= $p90 && $p90 <= $p99 && $p99 <= $max,
			"$path: latencies positive and ordered ($min <= $med <= $p90 <= $p99 <= $max ms)");
		ok($max < 10000, "$path: every connection within 10 s ($max ms)");
	}

	like($text,
		qr{^workload\s+direct\s+conmgr\s+pgbouncer\s+conmgr/direct\s+pgbouncer/direct$}m,
		'connect: side-by-side table header');
	my $tab = rows($text, 6, qr/^((connect|paced)-p(50|99)-ms|select-(c1|c8|C-c1|C-c8)-tps)$/);
	is(join(' ', map { $_->[0] } @$tab),
		'connect-p50-ms connect-p99-ms paced-p50-ms paced-p99-ms select-c1-tps select-c8-tps select-C-c1-tps select-C-c8-tps',
		'connect: a row per workload');
	for my $r (@$tab)
	{
		my ($name, $d, $c, $b, $cd, $bd) = @$r;
		ok($d > 0 && $c > 0 && $b > 0, "$name: positive for all three paths ($d, $c, $b)");
		ok(abs($cd - $c / $d) < 0.002 && abs($bd - $b / $d) < 0.002,
			"$name: ratios to the direct path ($cd, $bd)");
	}
	is($tab->[0][1], $median{direct}, 'connect: the table shows the median latency');

	my $csv = csv_rows("$out/connect.csv");
	is(scalar(@$csv), 1 + scalar(@labels), 'connect.csv: header and a row per path');
	is($csv->[0], 'label,connections,min_ms,median_ms,p90_ms,p99_ms,max_ms',
		'connect.csv: header');
	is_deeply([ map { [ split /,/, $_, -1 ] } @$csv[ 1 .. $#$csv ] ],
		[ map { [ @$_ ] } @$lat ], 'connect.csv: the rows of the latency table');

	my $samples = csv_rows("$out/connect-samples.csv");
	is($samples->[0], 'label,round,seq,connect_ms,query_ms,ms',
		'connect-samples.csv: header');
	my %count;
	my $bad = 0;
	for my $line (@$samples[ 1 .. $#$samples ])
	{
		my @f = split /,/, $line, -1;
		if (@f == 6 && $f[3] > 0 && $f[5] == $f[3] && $f[4] eq '')
		{
			$count{ $f[0] }++;
		}
		else
		{
			$bad++;
			diag("connect-samples.csv: bad line: $line");
		}
	}
	is($bad, 0, 'connect-samples.csv: every line well formed, positive');
	is_deeply(\%count, { map { $_ => $n } @labels },
		"connect-samples.csv: $n samples per path, back to back and paced");

	$csv = csv_rows("$out/connect-table.csv");
	is(scalar(@$csv), 1 + scalar(@$tab), 'connect-table.csv: header and a row per workload');
	is(scalar(grep { scalar(split /,/, $_, -1) == 6 } @$csv),
		scalar(@$csv), 'connect-table.csv: 6 fields on every line');
	note(sprintf('connect smoke: %.0f s', time - $t0));

	# a failed connection is an error naming the conninfo and libpq's message
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	($rc, $text) = run_bench("$bench/connect", '--count', 2, '--warmup', 0,
		"'host=127.0.0.1 port=$port dbname=postgres'");
	is($rc, 1, 'connect: exit status 1 when a connection fails');
	like($text,
		qr/^connect: connect: connection 1 to "host=127\.0\.0\.1 port=$port dbname=postgres" failed: .*Connection refused/m,
		'connect: the error names the conninfo and libpq\'s message');
}

# --- soak, CPU part: 200/1000 and 50/150, 2 applications each, 6 s of load
{
	if (!-x "$top/test/lab/lab_app_cm")
	{
		system('make', '-s', '-C', "$top/test/lab", 'lab_app_cm') == 0
		  or BAIL_OUT('could not build test/lab/lab_app_cm');
	}
	my $work = PostgreSQL::Test::Utils::tempdir('soak');
	my $out = PostgreSQL::Test::Utils::tempdir('soak_out');
	my $secs = 6;
	my $apps = 2;
	my @settings = ('200/1000', '50/150');
	my $t0 = time;
	my ($rc, $text) = run_bench('bash', "$bench/soak-load-run.sh", $work, $out,
		$secs, $apps, @settings);
	note($text);
	is($rc, 0, 'soak: exit status 0');
	like($text,
		qr/^\s+interval\s+timeout\s+server\s+apps\s+declared\s+notices\s+ended\s+heartbeats\s+expected\s+p50<=\s+p99<=\s+p99\.9<=\s+max<=$/m,
		'soak: table header');
	my ($busy) = $text =~ /CPUs busy ([\d.]+) %/;
	ok(defined $busy && $busy > 80, 'soak: the CPUs were saturated (' . ($busy // '?') . ' % busy)');
	my $rows = rows($text, 13, qr/^\d+$/);
	is(scalar(@$rows), scalar(@settings), 'soak: one row per setting');
	my $bound = qr/^(?:\d+(?:\.\d+)?|inf)$/;
	for my $r (@$rows)
	{
		my ($iv, $to, $server, $n, $declared, $notices, $ended, $hbs, $expected,
			$p50, $p99, $p999, $max)
		  = @$r;
		my $s = "$iv/$to";
		is($n, $apps, "$s: $apps applications");
		is($server, $iv + $to + 1000, "$s: server timeout = interval + timeout + margin");
		ok($notices <= $n && $ended <= $n, "$s: at most one notice and one termination per application");
		ok($expected > 0 && $hbs > 0.5 * $expected && $hbs < 1.5 * $expected,
			"$s: heartbeats answered at about the interval ($hbs, $expected sent)");
		ok(scalar(grep { $_ =~ $bound } $p50, $p99, $p999, $max) == 4,
			"$s: round-trip percentiles are histogram bounds");
		my @v = map { $_ eq 'inf' ? 1e9 : $_ } $p50, $p99, $p999, $max;
		ok($v[0] <= $v[1] && $v[1] <= $v[2] && $v[2] <= $v[3],
			"$s: round-trip percentiles ordered ($p50 <= $p99 <= $p999 <= $max)");
		# the setting the documentation recommends as a floor stays clean
		if ($s eq '200/1000')
		{
			is($declared + $notices + $ended, 0,
				'200/1000: no false declaration, notice or termination under load');
		}
	}
	like($text, qr/declared lost by the watchdog \(all settings\): \d+$/m,
		'soak: watchdog losses reported');
	my $csv = csv_rows("$out/soak-load.csv");
	is(scalar(@$csv), 1 + scalar(@settings), 'soak: CSV header and a row per setting');
	like($csv->[0], qr/^interval_ms,timeout_ms,server_timeout_ms,/, 'soak: CSV header');
	is(scalar(grep { scalar(split /,/, $_, -1) == 17 } @$csv),
		scalar(@$csv), 'soak: 17 CSV fields on every line');
	my $rtt = csv_rows("$out/soak-rtt.csv");
	# header, then 11 buckets (10 bounds and +Inf) per setting
	is(scalar(@$rtt), 1 + 11 * scalar(@settings), 'soak: round-trip histogram CSV');
	note(sprintf('soak smoke: %.0f s', time - $t0));
}

done_testing();
