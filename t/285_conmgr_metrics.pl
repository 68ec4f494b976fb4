
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The metrics endpoint (metrics_port) against fake watchdogs: the output
# parses as Prometheus text format 0.0.4 (checked strictly here), its
# values follow heartbeats, failures, notices, routes and refusals, its
# counters survive a reload, hostile HTTP is answered with an error and
# does not disturb routing, and the metrics it serves are exactly those
# docs/conmgr.md documents.

use strict;
use warnings FATAL => 'all';

use IO::Select;
use IO::Socket::INET;
use IO::Socket::IP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CmConmgr;
use CmProg;
use CmWire;

my $STANDBY = CmWire::ATTR_STANDBY;
my $STOPPING = 0x04;    # protocol 1.1: the server is shutting down
my $wd0 = CmConmgr::FakeWatchdog->new(attrs => 0, version => 0x0101);
my $wd1 = CmConmgr::FakeWatchdog->new(attrs => $STANDBY);
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $mport = PostgreSQL::Test::Cluster::get_free_port();
my $unused_wdport = PostgreSQL::Test::Cluster::get_free_port();
my %conf = (
	port => $port,
	metrics_port => $mport,
	heartbeat_interval => 100,
	heartbeat_timeout => 600,
	connect_timeout => 300,
	instances => [
		{ hostaddr => '127.0.0.1', port => 6000, watchdog_port => $wd0->port },
		{ hostaddr => '127.0.0.1', port => 6001, watchdog_port => $wd1->port },
		# never up; its host label needs escaping (conmgr.conf: we\"ird)
		{
			host => 'we\\\\"ird.invalid',
			port => 6002,
			watchdog_port => $unused_wdport
		},
	]);
my $cm = CmConmgr->new(%conf)->start;
ok($cm->wait_up(0, 1), 'instances 0 and 1 up');

# ---------------------------------------------------------------------
# HTTP and a strict parser of the text format

# Send $req to the metrics port and read until conmgr closes; returns
# (status code, headers text, body), or () when nothing could be read.
sub http
{
	my ($req, $p) = @_;
	my $s = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $p // $mport,
		Proto => 'tcp') or return ();
	syswrite($s, $req) if length $req;
	my $sel = IO::Select->new($s);
	my $buf = '';
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline && $sel->can_read($deadline - time()))
	{
		my $r = sysread($s, $buf, 65536, length $buf);
		last unless $r;
	}
	close $s;
	return () unless $buf =~ /^HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n(.*?)\r\n\r\n(.*)$/s;
	my ($code, $headers, $body) = ($1, $2, $3);
	$headers =~ s/\r\n/\n/g;
	return ($code, $headers, $body);
}

my $NAME = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LABEL = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $VALUE = qr/[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|Inf|NaN)/;

# Parse an exposition; dies with the line on any departure from the
# format as this test holds conmgr to it: every family has HELP then TYPE
# before its samples, its samples are contiguous, no series twice, label
# values escaped, histograms cumulative with +Inf equal to _count.
# Returns { families => { name => { type, help } }, samples => [ [name,
# {labels}, value] ] }.
sub parse_metrics
{
	my ($text) = @_;
	my (%fam, @samples, %seen, %done);
	my $cur;
	die "output does not end with a line feed\n" unless $text =~ /\n\z/;
	foreach my $line (split /\n/, $text)
	{
		if ($line =~ /^# HELP ($NAME) (.+)$/)
		{
			die "second HELP for $1\n" if $fam{$1};
			$done{$cur} = 1 if defined $cur;
			$cur = $1;
			die "family $cur reappears\n" if $done{$cur};
			$fam{$cur} = { help => $2 };
			next;
		}
		if ($line =~ /^# TYPE ($NAME) (counter|gauge|histogram|summary|untyped)$/)
		{
			die "TYPE of $1 without HELP first\n"
			  unless defined $cur && $cur eq $1 && !$fam{$1}{type};
			$fam{$1}{type} = $2;
			next;
		}
		die "unexpected comment or blank line: '$line'\n"
		  if $line =~ /^#/ || $line eq '';
		die "malformed sample line: '$line'\n"
		  unless $line =~ /^($NAME)(?:\{(.*)\})? ($VALUE)$/;
		my ($name, $lab, $value) = ($1, $2 // '', $3);
		my %labels;
		pos($lab) = 0;
		while (pos($lab) < length $lab)
		{
			$lab =~ /\G($LABEL)="((?:[^"\\\n]|\\[\\"n])*)"(,(?=.)|$)/gc
			  or die "malformed labels in '$line'\n";
			my ($k, $v) = ($1, $2);
			die "label $k twice in '$line'\n" if exists $labels{$k};
			$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
			$labels{$k} = $v;
		}
		die "sample outside any family: '$line'\n" unless defined $cur;
		my $type = $fam{$cur}{type} // die "samples of $cur before its TYPE\n";
		my $ok = $name eq $cur
		  || ($type eq 'histogram' && $name =~ /^\Q$cur\E_(bucket|sum|count)$/);
		die "sample $name inside family $cur\n" unless $ok;
		die "le label missing or misplaced in '$line'\n"
		  if ($name eq "${cur}_bucket") != exists $labels{le};
		my $key = $name . '{'
		  . join(',', map { "$_=$labels{$_}" } sort keys %labels) . '}';
		die "duplicate series $key\n" if $seen{$key}++;
		push @samples, [ $name, \%labels, $value ];
	}
	foreach my $f (keys %fam)
	{
		die "family $f has no TYPE\n" unless $fam{$f}{type};
	}
	# histograms: buckets cumulative, +Inf = _count
	my %series;
	foreach my $s (@samples)
	{
		next unless $s->[0] =~ /^(.*)_bucket$/;
		my %l = %{ $s->[1] };
		my $le = delete $l{le};
		my $id = $1 . join(',', map { "$_=$l{$_}" } sort keys %l);
		push @{ $series{$id} }, [ $le, $s->[2] ];
	}
	foreach my $id (keys %series)
	{
		my @b = @{ $series{$id} };
		die "histogram $id does not end with le=\"+Inf\"\n"
		  unless $b[-1][0] eq '+Inf';
		for my $i (1 .. $#b)
		{
			die "histogram $id: bounds not increasing\n"
			  unless $b[$i][0] eq '+Inf' || $b[$i][0] > $b[ $i - 1 ][0];
			die "histogram $id: buckets not cumulative\n"
			  if $b[$i][1] < $b[ $i - 1 ][1];
		}
	}
	foreach my $s (@samples)
	{
		next unless $s->[0] =~ /^(.*)_count$/ && ($fam{$1}{type} // '') eq 'histogram';
		my $base = $1;
		my ($inf) = grep {
			my $x = $_;
			$x->[0] eq "${base}_bucket" && $x->[1]{le} eq '+Inf'
			  && !grep { $_ ne 'le' && ($x->[1]{$_} // '') ne ($s->[1]{$_} // '') }
			  keys %{ $x->[1] }
		} @samples;
		die "histogram $base: +Inf bucket differs from _count\n"
		  unless $inf && $inf->[2] == $s->[2];
	}
	return { families => \%fam, samples => \@samples };
}

# Scrape and parse; fails the test (and returns undef) when the answer is
# not a 200 with the text format's content type, or does not parse.
sub scrape
{
	my ($what) = @_;
	my ($code, $headers, $body) = http("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
	if (!defined $code || $code != 200)
	{
		fail("$what: scrape answered 200");
		return undef;
	}
	if ($headers !~ m{^Content-Type: text/plain; version=0\.0\.4; charset=utf-8$}mi)
	{
		fail("$what: content type of the text format 0.0.4");
		return undef;
	}
	my $m = eval { parse_metrics($body) };
	if (!$m)
	{
		fail("$what: output parses as Prometheus text format: $@");
		return undef;
	}
	return $m;
}

# The value of the one series of $name whose labels include %want; undef
# when there is none, dies when there are several.
sub val
{
	my ($m, $name, %want) = @_;
	return undef unless $m;
	my @hits = grep {
		my $s = $_;
		$s->[0] eq $name && !grep { ($s->[1]{$_} // "\0") ne $want{$_} } keys %want
	} @{ $m->{samples} };
	die "several series of $name match\n" if @hits > 1;
	return @hits ? $hits[0][2] : undef;
}

# Wait until a scrape satisfies $cond; returns that scrape or undef.
sub wait_scrape
{
	my ($cond, $what) = @_;
	my $last;
	my $ok = CmConmgr::wait_for(
		sub {
			my ($code, $h, $body) = http("GET /metrics HTTP/1.0\r\n\r\n");
			return 0 unless defined $code && $code == 200;
			$last = eval { parse_metrics($body) } or return 0;
			return $cond->($last);
		},
		$what);
	return $ok ? $last : undef;
}

# ---------------------------------------------------------------------
# A healthy set

my ($src, $sout) = $cm->ctl('status');
like($sout, qr/^metrics: GET \/metrics on port $mport on 127\.0\.0\.1/m,
	'cm_ctl status names the metrics port');
like($cm->status, qr/"metrics_port": $mport,/,
	'and so does its JSON');

my $m1 = scrape('first scrape');
ok($m1, 'first scrape parses strictly');
my $release = CmProg::release_version();
is(val($m1, 'conmgr_build_info', version => $release), 1, 'build_info with the release version');
my $start = val($m1, 'conmgr_start_time_seconds');
ok($start > time() - 600 && $start <= time() + 1, 'start time is about now');
is(val($m1, 'conmgr_instance_up', cm_instance => 0, host => '127.0.0.1', port => 6000),
	1, 'instance 0 up, labelled with host and port');
is(val($m1, 'conmgr_instance_up', cm_instance => 1), 1, 'instance 1 up');
is(val($m1, 'conmgr_instance_up', cm_instance => 2), 0, 'instance 2 not up');
is(val($m1, 'conmgr_instance_state', cm_instance => 0, state => 'up'), 1, 'state up is 1');
is(val($m1, 'conmgr_instance_state', cm_instance => 0, state => 'down'), 0, 'state down is 0');
is(val($m1, 'conmgr_instance_standby', cm_instance => 1), 1, 'instance 1 is a standby');
is(val($m1, 'conmgr_instance_standby', cm_instance => 0), 0, 'instance 0 is not');
is(val($m1, 'conmgr_instance_read_only', cm_instance => 0), 0, 'instance 0 is not read-only');
my $age = val($m1, 'conmgr_instance_last_heartbeat_age_seconds', cm_instance => 0);
ok(defined $age && $age >= 0 && $age < 0.6, "heartbeat age of instance 0 is below heartbeat_timeout ($age)");
is(val($m1, 'conmgr_instance_last_heartbeat_age_seconds', cm_instance => 2),
	undef, 'no heartbeat age for an instance never up');
my @i2 = grep { $_->[0] eq 'conmgr_instance_up' && $_->[1]{cm_instance} eq '2' } @{ $m1->{samples} };
is($i2[0][1]{host}, 'we\\"ird.invalid', 'a host label with a backslash and a quote reads back unchanged');
is($i2[0][1]{port}, '6002', 'the port label is the PostgreSQL port (backend_port)');

# every loopback address the host has serves the metrics
SKIP:
{
	skip 'the host has no IPv6 loopback address', 1
	  unless slurp_file($cm->logfile) =~
	  /listening for metrics on IPv6 address "::1", port $mport/;
	my $s6 = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $mport);
	my $answer = '';
	if ($s6)
	{
		syswrite($s6, "GET /metrics HTTP/1.0\r\n\r\n");
		my $sel = IO::Select->new($s6);
		while ($sel->can_read($PostgreSQL::Test::Utils::timeout_default))
		{
			last unless sysread($s6, $answer, 65536, length $answer);
		}
		close $s6;
	}
	like($answer, qr/^HTTP\/1\.1 200 OK\r\n.*^conmgr_build_info\{version="\Q$release\E"\} 1$/ms,
		'metrics served on ::1 too');
}

my $rtt1 = val($m1, 'conmgr_instance_heartbeat_rtt_seconds_count', cm_instance => 0);
ok(wait_scrape(
		sub { val($_[0], 'conmgr_instance_heartbeat_rtt_seconds_count', cm_instance => 0) > $rtt1 },
		'rtt count grows'),
	'heartbeat rtt count grows between two scrapes');
my $m2 = scrape('second scrape');
ok(val($m2, 'conmgr_instance_heartbeat_rtt_seconds_sum', cm_instance => 0) > 0,
	'rtt sum is positive');
is(val($m2, 'conmgr_instance_heartbeat_rtt_seconds_bucket', cm_instance => 0, le => '+Inf'),
	val($m2, 'conmgr_instance_heartbeat_rtt_seconds_count', cm_instance => 0),
	'+Inf bucket equals the count');

# a draining instance: still up, in state draining
$wd0->command("attrs $STOPPING");
my $md = wait_scrape(
	sub { val($_[0], 'conmgr_instance_state', cm_instance => 0, state => 'draining') == 1 },
	'instance 0 draining');
ok($md, 'state draining is 1 while the server shuts down');
is(val($md, 'conmgr_instance_state', cm_instance => 0, state => 'up'), 0, 'and state up is 0');
is(val($md, 'conmgr_instance_up', cm_instance => 0), 1, 'the instance is still up');
$wd0->command('attrs 0');
ok(wait_scrape(
		sub { val($_[0], 'conmgr_instance_state', cm_instance => 0, state => 'up') == 1 },
		'instance 0 up'),
	'state up again once the server is no longer stopping');

# ---------------------------------------------------------------------
# An application, then a failure of its instance

my $app = CmConmgr::App->connect($port);
my $r = $app->route('read-write');
is($r->{instance}, 0, 'application routed to instance 0');
$app->register(4242);
my $m3 = wait_scrape(sub { val($_[0], 'conmgr_app_connections') == 1 },
	'one application connection');
ok($m3, 'conmgr_app_connections counts the application');
is(val($m3, 'conmgr_instance_app_connections', cm_instance => 0), 1,
	'and instance 0 has it');
is(val($m3, 'conmgr_app_routes_total', result => 'routed'), 1, 'one route answered');

my %fail_before = map {
	$_ => val($m3, 'conmgr_instance_failures_total', cm_instance => 0, reason => $_)
} qw(timeout connection_lost shutdown protocol_violation integrity);
my $notices_before = val($m3, 'conmgr_notices_sent_total', reason => 'timeout');

# silent, and refusing reconnections: declared down once, and stays down
$wd0->command('refuse');
$wd0->command('mute');
my $n = $app->read_msg;
is($n->{type}, 'F', 'the application is notified of the failure');
is($n->{reason}, $CmWire::REASON{timeout}, 'reason timeout');
my $m4 = wait_scrape(sub { val($_[0], 'conmgr_instance_up', cm_instance => 0) == 0 },
	'instance 0 down');
ok($m4, 'conmgr_instance_up falls to 0 when the watchdog is silent');
is(val($m4, 'conmgr_instance_failures_total', cm_instance => 0, reason => 'timeout'),
	$fail_before{timeout} + 1, 'failures_total{reason="timeout"} increments by one');
foreach my $k (qw(connection_lost shutdown protocol_violation integrity))
{
	is(val($m4, 'conmgr_instance_failures_total', cm_instance => 0, reason => $k),
		$fail_before{$k}, "failures_total{reason=\"$k\"} unchanged");
}
is(val($m4, 'conmgr_notices_sent_total', reason => 'timeout'),
	$notices_before + 1, 'notices_sent_total{reason="timeout"} increments by one');
is(val($m4, 'conmgr_app_connections'), 0, 'the notified application is gone');
ok(val($m4, 'conmgr_instance_last_heartbeat_age_seconds', cm_instance => 0) >= 0.45,
	'heartbeat age of the failed instance is about heartbeat_timeout or more');

# no instance for read-write while instance 0 is down
my $app2 = CmConmgr::App->connect($port);
my $r2 = $app2->route('read-write');
is($r2->{type}, 'N', 'read-write gets "no instance" meanwhile');
$app2->close;

$wd0->command('unmute');
$wd0->command('accept');
my $m5 = wait_scrape(sub { val($_[0], 'conmgr_instance_up', cm_instance => 0) == 1 },
	'instance 0 back');
ok($m5, 'instance 0 is up again after its watchdog answers');
is(val($m5, 'conmgr_app_routes_total', result => 'no_instance'), 1,
	'routes_total{result="no_instance"} counts the refusal');
is(val($m5, 'conmgr_instance_failures_total', cm_instance => 0, reason => 'timeout'),
	$fail_before{timeout} + 1, 'one failure only, counted once');

# a connection lost: the watchdog's process is gone (instance 1 stays down)
my $lost = val($m5, 'conmgr_instance_failures_total', cm_instance => 1, reason => 'connection_lost');
$wd1->stop;
ok(wait_scrape(
		sub {
			val($_[0], 'conmgr_instance_failures_total', cm_instance => 1,
				reason => 'connection_lost') == $lost + 1;
		},
		'connection_lost counted'),
	'failures_total{reason="connection_lost"} increments when the connection drops');
is(val(scrape('after the loss'), 'conmgr_instance_up', cm_instance => 1), 0,
	'instance 1 is down');

# ---------------------------------------------------------------------
# Reload: counters kept; metrics_port is restart-only, like port

my $before = scrape('before reload');
my $mport2 = PostgreSQL::Test::Cluster::get_free_port();
my $held = CmConmgr::App->connect($port);
$held->route('any');
my $text = $cm->conf;
$text =~ s/^metrics_port = \d+$/metrics_port = $mport2\nmax_app_connections = 1/m;
$cm->conf($text);
my ($rc, $out) = $cm->ctl('reload');
is($rc, 0, 'reload succeeds');
like($out,
	qr/parameter "metrics_port" cannot be changed without restarting conmgr; the new value "$mport2" was ignored \("$mport" stays in effect\)/,
	'reload reports the metrics_port change as ignored');
my @none = http("GET /metrics HTTP/1.0\r\n\r\n", $mport2);
is(scalar(@none), 0, 'nothing listens on the new metrics_port');
my $refused = CmConmgr::App->connect($port, no_greeting => 1);
ok(CmConmgr::wait_for(sub { $refused->is_closed(0.2) }, 'refusal'),
	'an application over max_app_connections is refused');
my $after = wait_scrape(
	sub {
		val($_[0], 'conmgr_app_connections_refused_total',
			reason => 'max_app_connections') == 1;
	},
	'refusal counted');
ok($after, 'metrics still served on the old port after the reload; refusal counted');
my $monotonic = 1;
foreach my $s (@{ $before->{samples} })
{
	next unless $before->{families}{ $s->[0] }
	  && $before->{families}{ $s->[0] }{type} eq 'counter';
	my $v = val($after, $s->[0], %{ $s->[1] });
	if (!defined $v || $v < $s->[2])
	{
		diag("$s->[0] went from $s->[2] to " . ($v // 'nothing'));
		$monotonic = 0;
	}
}
ok($monotonic, 'no counter went down or vanished across the reload');
ok(val($after, 'conmgr_instance_heartbeat_rtt_seconds_count', cm_instance => 0)
	  >= val($before, 'conmgr_instance_heartbeat_rtt_seconds_count', cm_instance => 0),
	'histogram count kept across the reload');
$held->close;
$text =~ s/^max_app_connections = 1\n//m;
$cm->conf($text);
($rc) = $cm->ctl('reload');
is($rc, 0, 'reload back to the default max_app_connections');

# ---------------------------------------------------------------------
# Hostile HTTP

my ($code, $headers, $body) =
  http("GET /metrics HTTP/1.1\r\nX-Big: " . ('a' x 20000) . "\r\n\r\n");
is($code, 431, 'a huge request header is answered 431');
($code, $headers) = http("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
is($code, 405, 'POST is answered 405');
like($headers, qr/^Allow: GET$/m, 'with Allow: GET');
($code) = http("HEAD /metrics HTTP/1.1\r\n\r\n");
is($code, 405, 'HEAD is answered 405');
($code) = http("GET /other HTTP/1.1\r\n\r\n");
is($code, 404, 'another path is answered 404');
($code) = http("GET /metrics/x HTTP/1.1\r\n\r\n");
is($code, 404, 'a longer path is answered 404');
($code) = http("GET /metrics HTTP/2.0\r\n\r\n");
is($code, 400, 'another protocol version is answered 400');
($code) = http("\x16\x03\x01\x02\x00\r\n\r\n");
is($code, 400, 'binary garbage is answered 400');
($code, $headers, $body) = http("GET /metrics?x=1 HTTP/1.0\r\n\r\n");
is($code, 200, 'a query string is ignored');

# an idle connection is closed after the request timeout
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mport);
	my $t0 = time();
	my $sel = IO::Select->new($s);
	my $closed = $sel->can_read($PostgreSQL::Test::Utils::timeout_default)
	  && !sysread($s, my $x, 100);
	my $took = time() - $t0;
	ok($closed && $took >= 4 && $took < 15,
		sprintf('an idle connection is closed after about 5 s (%.1f s)', $took));
	close $s;
}

# connections beyond the cap: answered 503, while applications are routed
my @idle;
for my $i (1 .. 8)
{
	push @idle, IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mport);
}
my $capped = CmConmgr::wait_for(
	sub {
		my ($c, $h, $b) = http('');
		return defined $c && $c == 503;
	},
	'503 beyond the cap');
ok($capped, 'a connection beyond 8 open ones is answered 503');
my $app3 = CmConmgr::App->connect($port);
my $r3 = $app3 && $app3->route('read-write');
is($r3 && $r3->{type}, 'I', 'applications are routed while the metrics connections are full');
$app3->close if $app3;
close $_ foreach @idle;
my $m6 = wait_scrape(sub { 1 }, 'scrape after the idle connections');
ok($m6, 'scrapes are answered again once the idle connections are gone');
ok(val($m6, 'conmgr_metrics_connections_refused_total') >= 1,
	'refused metrics connections are counted');
ok($cm->pid, 'conmgr still runs');

# ---------------------------------------------------------------------
# Documentation and output name the same metrics

{
	my $doc = slurp_file(CmProg::top() . '/docs/conmgr.md');
	my ($section) = $doc =~ /^## Metrics\n(.*?)(?=^## |\z)/ms;
	ok($section, 'docs/conmgr.md has a Metrics section');
	my %documented = map { $_ => 1 } ($section // '') =~ /^\| `(conmgr_\w+)`/mg;
	my %served = map { $_ => 1 } keys %{ $m6->{families} };
	my @undocumented = grep { !$documented{$_} } sort keys %served;
	my @unserved = grep { !$served{$_} } sort keys %documented;
	is("@undocumented", '', 'every metric served is documented');
	is("@unserved", '', 'every metric documented is served');
}

# ---------------------------------------------------------------------
# metrics_port held by another program: conmgr does not start

{
	my $busy = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => 0,
		Listen => 1,
		ReuseAddr => 1) or die "listen: $!";
	my $bport = $busy->sockport;
	my ($rc2, $o, $e) = CmConmgr->new(
		metrics_port => $bport,
		instances => [ { hostaddr => '127.0.0.1', port => 6000, watchdog_port => $wd0->port } ])->run;
	cmp_ok($rc2, '>', 0, 'conmgr does not start when metrics_port is taken');
	like($e,
		qr/could not bind IPv4 address "127\.0\.0\.1", port $bport: Address already in use.*conmgr must hold port $bport on every loopback address of the host, so that no other program answers metrics scrapes there/s,
		'and says which address and port');
	close $busy;
}

done_testing();
