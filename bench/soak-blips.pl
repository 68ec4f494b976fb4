#!/usr/bin/perl
# The network part of the soak (run by bench/soak.sh as root, and in smoke
# mode by t/495_bench_soak_blips.pl): short link blips and real cuts in
# the partition lab of t/lib/CmLab.pm.
#
# Usage: soak-blips.pl [--out DIR] [--repeats N] [--cuts N] [--apps N]
#                      [--fractions F,F...] [INTERVAL/TIMEOUT...]
#        (defaults: DIR ., 5 repeats, 10 cuts, 3 applications,
#         fractions 0.1 to 0.7 by 0.1; settings 200/1000 100/300)
#
# The lab's primary (db1) and standby (db2) run the watchdog; conmgr in the
# client host runs each setting in turn (heartbeat_interval /
# heartbeat_timeout in ms), with APPS applications (test/lab/lab_app_cm,
# idle on both sockets) routed to the primary.  For each fraction F of the
# timeout, REPEATS times: the primary's link is set down for F x timeout
# and up again (on the bridge side: no FIN, no RST, packets lost), then the
# benchmark waits 2 x timeout + 1 s and counts what the blip caused, every
# one of them false: conmgr declaring the primary down, applications
# notified, the watchdog declaring conmgr lost, sessions it terminated.
# Then CUTS real cuts, each held until conmgr declares the primary down:
# the detection time, from the cut to the declaration (conmgr's log, ms)
# and to each application's notice.  Between two events conmgr routes to
# the primary again and every notified application is replaced.
#
# Prints two tables; appends one line per blip to DIR/soak-blips.csv and
# one per cut to DIR/soak-detect.csv.  Times in the CSV files are ms after
# the "ip link set ... down" command returned.
use strict;
use warnings FATAL => 'all';

# PostgreSQL::Test::Utils sends STDOUT and STDERR to its log file when it
# initializes; the tables and errors go to the terminal through copies
# taken before that.
my ($TERM, $TERM_ERR);
BEGIN
{
	open($TERM, '>&', \*STDOUT) or die "dup stdout: $!";
	open($TERM_ERR, '>&', \*STDERR) or die "dup stderr: $!";
	$TERM->autoflush(1);
}

use File::Copy ();
use Getopt::Long;
use IPC::Run ();
use List::Util qw(max min sum);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use Time::Local ();
use CmLab;

# a benchmark, not a test: no TAP plan, no summary; the lab's notes (each
# link change) go to the log file only
Test::More->builder->no_ending(1);
Test::More->builder->output(\*STDOUT);
Test::More->builder->failure_output(\*STDERR);
Test::More->builder->todo_output(\*STDOUT);

my %o = (
	out => '.',
	repeats => 5,
	cuts => 10,
	apps => 3,
	fractions => '0.1,0.2,0.3,0.4,0.5,0.6,0.7',
	datagrams => 0);
GetOptions(\%o, 'out=s', 'repeats=i', 'cuts=i', 'apps=i', 'fractions=s', 'datagrams')
  or die "usage: soak-blips.pl [--out DIR] [--repeats N] [--cuts N] [--apps N] [--fractions F,F...] [--datagrams] [INTERVAL/TIMEOUT...]\n";
my @settings = @ARGV ? @ARGV : ('200/1000', '100/300');
my @fractions = split /,/, $o{fractions};
foreach my $s (@settings)
{
	die "soak-blips: setting \"$s\" is not INTERVAL/TIMEOUT in ms\n"
	  unless $s =~ m{^\d+/\d+$};
}

sub out { print $TERM @_, "\n"; print @_, "\n"; return; }

if ($> != 0)
{
	print $TERM_ERR "soak-blips: the lab needs root (network namespaces)\n";
	exit 1;
}


# The conmgr output (foreground conmgr: its log) as "time of each
# declaration of instance 0 down", epoch seconds.
sub declarations
{
	my ($lab) = @_;
	my @t;
	open my $fh, '<', $lab->{conmgr}{out} or return ();
	while (my $line = <$fh>)
	{
		next unless $line =~ /instance 0 .*instance is down/;
		next unless $line =~ /^(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)\.(\d+) UTC /;
		push @t, Time::Local::timegm($6, $5, $4, $3, $2 - 1, $1) + "0.$7";
	}
	close $fh;
	return @t;
}

# the setting conmgr runs with
my @current;

# Keep the output of the conmgr of one setting (the next one starts with an
# empty file): the lab directory's *.log files are copied to the test log
# directory at teardown.
sub keep_conmgr_log
{
	my ($lab) = @_;
	File::Copy::copy($lab->{conmgr}{out},
		sprintf('%s/conmgr_%d_%d.log', $lab->dir, @current));
	return;
}

# A probe in the client host that tries a TCP connection to a closed port
# of db1 every few ms (a RST answers while the path works) and prints the
# time the path first failed and the time it first worked again after
# that: when packets flow again after a blip, whatever the ip command
# said.  Started before the cut: starting a process takes longer than the
# shortest blips.
my $PROBE = <<'PERL';
use IO::Socket::INET;
use Errno;
use Time::HiRes qw(time usleep);
my ($addr, $limit) = @ARGV;
my ($lost, $end) = (undef, time + $limit);
while (time < $end)
{
	my $s = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => 9,
		Proto => 'tcp', Timeout => 0.005);
	my $ok = ($s || $!{ECONNREFUSED}) ? 1 : 0;
	my $t = time;
	if (!$ok && !defined $lost) { $lost = $t; }
	if ($ok && defined $lost) { printf "lost=%.6f back=%.6f\n", $lost, $t; exit 0; }
	usleep(2000) if $ok;
}
print "timeout\n";
PERL

sub start_probe
{
	my ($lab) = @_;
	my $p = { out => '' };
	$p->{h} = IPC::Run::start([ 'ip', 'netns', 'exec', $lab->ns('client'), $^X, '-e', $PROBE,
		$lab->addr('db1'), 15 ], '<', \undef, '>', \$p->{out}, '2>&1');
	# it is running once it has made its first connection attempts
	usleep(50_000);
	return $p;
}

# The time the path came back (epoch seconds), or undef.
sub finish_probe
{
	my ($p) = @_;
	# still running: the path never failed (a blip shorter than one
	# attempt) or never came back; either way there is no time to report
	eval { $p->{h}->signal('KILL') if $p->{h}->pumpable; };
	eval { $p->{h}->finish; };
	return $p->{out} =~ /back=([\d.]+)/ ? $1 : undef;
}

# What the server log of db1 holds so far: conmgr peers declared lost, and
# sessions terminated.
sub server_counts
{
	my ($lab) = @_;
	my ($lost, $ended) = (0, 0);
	open my $fh, '<', $lab->pglog('db1') or return (0, 0);
	while (my $line = <$fh>)
	{
		$lost++ if $line =~ /conmgr ".*" at .* lost: /;
		$ended += $1 if $line =~ /watchdog terminated (\d+) session/;
	}
	close $fh;
	return ($lost, $ended);
}

# Applications of the current setting, replaced when notified or gone.
my @apps;
my $napp = 0;

sub start_apps
{
	my ($lab) = @_;
	foreach my $i (0 .. $o{apps} - 1)
	{
		my $a = $apps[$i];
		if ($a)
		{
			next if $a->{h}->pumpable && !$lab->event($a, 'notified')
			  && !$lab->event($a, 'failed');
			$lab->kill9($a);
		}
		$apps[$i] = $lab->start_cm_app('read-write', 'idle', 3600, 'soak_app_' . $napp++);
	}
	foreach my $a (@apps)
	{
		$lab->wait_event($a, 'ready', 30)
		  or die "an application did not connect through conmgr:\n" . $lab->output($a);
	}
	return;
}

# Before each blip or cut: conmgr routes read-write to the primary, and
# every application is connected and has not been notified.
sub ready
{
	my ($lab) = @_;
	my $db1 = $lab->addr('db1');
	$lab->wait_until('conmgr routes read-write to db1', sub {
		my $r = $lab->route('read-write');
		return $r && $r->{host} eq $db1;
	}, 30) or die "conmgr does not route to db1 again:\n" . ($lab->{last_route_output} // '');
	start_apps($lab);
	return;
}

sub notified
{
	my ($lab) = @_;
	return scalar grep { $lab->event($_, 'notified') || $lab->event($_, 'failed') } @apps;
}

sub pct
{
	my ($p, @v) = @_;
	my @s = sort { $a <=> $b } @v;
	return $s[ int($p * $#s + 0.5) ];
}

sub main
{
	# --datagrams: authenticated heartbeat connections, so heartbeats go as
	# datagrams (protocol 1.2); results in files of their own
	my $sfx = $o{datagrams} ? '-datagram' : '';
	my $blips_csv = "$o{out}/soak-blips$sfx.csv";
	my $detect_csv = "$o{out}/soak-detect$sfx.csv";
	my $new_blips = !-f $blips_csv;
	my $new_detect = !-f $detect_csv;
	open my $bcsv, '>>', $blips_csv or die "$blips_csv: $!";
	open my $dcsv, '>>', $detect_csv or die "$detect_csv: $!";
	$bcsv->autoflush(1);
	$dcsv->autoflush(1);
	print $bcsv "interval_ms,timeout_ms,blip_ms,fraction,repeat,outage_min_ms,outage_max_ms,declared,declared_ms,notices,watchdog_lost,terminated,path_ms\n"
	  if $new_blips;
	print $dcsv "interval_ms,timeout_ms,repeat,declared_ms,first_notice_ms,last_notice_ms,notices\n"
	  if $new_detect;

	my $lab = CmLab->new;
	my (@blip_rows, @detect_rows);
	my %auth;
	if ($o{datagrams})
	{
		my $secret = $lab->secret_file;
		%auth = (conf => "watchdog.secret_file = '$secret'\n",
			conmgr => { secret_file => "'$secret'" });
	}
	my $first = 1;
	my $t_start = time;
	foreach my $s (@settings)
	{
		my ($iv, $to) = split m{/}, $s;
		if ($first)
		{
			$lab->cm_setup(heartbeat_interval => $iv, heartbeat_timeout => $to, %auth);
			$first = 0;
		}
		else
		{
			$lab->kill9($_) foreach @apps;
			@apps = ();
			$lab->stop_bg($lab->{conmgr});
			keep_conmgr_log($lab);
			# the watchdog may take the previous conmgr's departure for a
			# loss and end the client host's sessions (address mode): let
			# its server timeout (interval + timeout + margin 500 ms) pass
			# before new sessions start, so that it counts against no blip
			usleep(($current[0] + $current[1] + 500 + 1000) * 1000);
			$lab->start_conmgr(heartbeat_interval => $iv, heartbeat_timeout => $to,
				%{ $auth{conmgr} // {} });
		}
		@current = ($iv, $to);

		# --- blips
		foreach my $f (@fractions)
		{
			my $blip = int($f * $to + 0.5);
			my %row = (iv => $iv, to => $to, blip => $blip, f => $f, n => 0,
				declared => 0, notices => 0, lost => 0, ended => 0,
				omin => [], omax => [], path => []);
			foreach my $r (1 .. $o{repeats})
			{
				ready($lab);
				my $d0 = scalar(declarations($lab));
				my ($l0, $e0) = server_counts($lab);
				my $probe = start_probe($lab);
				my $t0 = time;
				my $t1 = $lab->cut('db1');
				my $left = $blip / 1000 - (time - $t1);
				usleep($left * 1_000_000) if $left > 0;
				my $t2 = time;
				my $t3 = $lab->heal('db1');
				# a declaration comes within the timeout of the last reply,
				# however late TCP retransmits what the blip held back
				usleep((2 * $to + 1000) * 1000);
				my $back = finish_probe($probe);
				# (+ 0: no "-0" for a path back just before the ip command returned)
				my $path_ms = defined $back ? sprintf('%.0f', 1000 * ($back - $t3)) + 0 : '';
				my @d = declarations($lab);
				my ($l1, $e1) = server_counts($lab);
				my $declared = @d - $d0;
				my $declared_ms = $declared ? sprintf('%.0f', 1000 * ($d[$d0] - $t1)) : '';
				my $notices = notified($lab);
				my ($omin, $omax) = (1000 * ($t2 - $t1), 1000 * ($t3 - $t0));
				printf $bcsv "%d,%d,%d,%s,%d,%.0f,%.0f,%d,%s,%d,%d,%d,%s\n",
				  $iv, $to, $blip, $f, $r, $omin, $omax, $declared, $declared_ms,
				  $notices, $l1 - $l0, $e1 - $e0, $path_ms;
				push @{ $row{path} }, $path_ms if $path_ms ne '';
				$row{n}++;
				$row{declared}++ if $declared;
				$row{notices} += $notices;
				$row{lost} += $l1 - $l0;
				$row{ended} += $e1 - $e0;
				push @{ $row{omin} }, $omin;
				push @{ $row{omax} }, $omax;
			}
			push @blip_rows, \%row;
		}

		# --- real cuts, held until conmgr declares the primary down
		my @det;
		foreach my $r (1 .. $o{cuts})
		{
			ready($lab);
			my $d0 = scalar(declarations($lab));
			my $t1 = $lab->cut('db1');
			my $deadline = $t1 + $to / 1000 + 10;
			my @d;
			while (time < $deadline)
			{
				@d = declarations($lab);
				last if @d > $d0;
				usleep(5_000);
			}
			die "conmgr did not declare the primary down within timeout + 10 s of a cut\n"
			  unless @d > $d0;
			my @at;
			foreach my $a (@apps)
			{
				my $e = $lab->wait_event($a, 'notified', 5);
				push @at, $e->{at} if $e;
			}
			$lab->heal('db1');
			my $decl = 1000 * ($d[$d0] - $t1);
			my ($first_n, $last_n) = @at ? (1000 * (min(@at) - $t1), 1000 * (max(@at) - $t1)) : ('', '');
			printf $dcsv "%d,%d,%d,%.0f,%s,%s,%d\n", $iv, $to, $r, $decl,
			  @at ? sprintf('%.0f', $first_n) : '', @at ? sprintf('%.0f', $last_n) : '',
			  scalar(@at);
			push @det, { decl => $decl, first => $first_n, last => $last_n, n => scalar(@at) };
		}
		push @detect_rows, { iv => $iv, to => $to, det => \@det };
	}
	keep_conmgr_log($lab);
	my $elapsed = time - $t_start;
	close $bcsv;
	close $dcsv;

	my $pgv = `pg_config --version`;
	chomp $pgv;
	my $kernel = `uname -r`;
	chomp $kernel;
	my $ncpu = `nproc`;
	chomp $ncpu;
	my @now = gmtime;
	out(sprintf('== soak: link blips of the primary shorter than heartbeat_timeout (%d per length), and cuts',
		$o{repeats}));
	out(sprintf('   %04d-%02d-%02d %02d:%02d UTC, %s CPUs, %s, %s, %.0f s, load average %s',
		$now[5] + 1900, $now[4] + 1, $now[3], $now[2], $now[1], $ncpu, $kernel, $pgv,
		$elapsed, join(' ', (split ' ', `cat /proc/loadavg`)[0 .. 2])));
	out(sprintf('%9s %8s %6s %5s %7s %11s %9s %8s %7s %5s %5s',
		'interval', 'timeout', 'blip', 'frac', 'repeats', 'outage', 'path', 'declared', 'notices', 'lost', 'ended'));
	foreach my $r (@blip_rows)
	{
		my @p = @{ $r->{path} };
		out(sprintf('%9d %8d %6d %5.2f %7d %5.0f-%-5.0f %9s %8d %7d %5d %5d',
			$r->{iv}, $r->{to}, $r->{blip}, $r->{f}, $r->{n}, min(@{ $r->{omin} }),
			max(@{ $r->{omax} }), @p ? sprintf('%d..%d', min(@p), max(@p)) : '-',
			$r->{declared}, $r->{notices}, $r->{lost}, $r->{ended}));
	}
	out('(blip, outage: ms the link was down, as asked and as measured around the ip commands;');
	out(' path: ms after the link was set up again until db1 answered a TCP SYN from the client;');
	out(' declared: blips after which conmgr declared the primary down; notices: applications');
	out(' notified; lost: the watchdog declared conmgr lost; ended: sessions it terminated;');
	out(' all of them false: the primary never failed)');
	out('');
	out("== detection of a real cut of the primary's link, ms after the cut");
	out(sprintf('%9s %8s %5s %8s %8s %8s %12s %12s', 'interval', 'timeout', 'cuts',
		'min', 'p50', 'max', 'first_notice', 'last_notice'));
	foreach my $r (@detect_rows)
	{
		my @d = map { $_->{decl} } @{ $r->{det} };
		my @f = map { $_->{first} } grep { $_->{n} } @{ $r->{det} };
		my @l = map { $_->{last} } grep { $_->{n} } @{ $r->{det} };
		next unless @d;
		out(sprintf('%9d %8d %5d %8.0f %8.0f %8.0f %12s %12s', $r->{iv}, $r->{to},
			scalar(@d), min(@d), pct(0.5, @d), max(@d),
			@f ? sprintf('%.0f-%.0f', min(@f), max(@f)) : '-',
			@l ? sprintf('%.0f-%.0f', min(@l), max(@l)) : '-'));
	}
	out('(min, p50, max: conmgr declared the primary down; first_notice, last_notice: the first');
	out(' and the last application notified, ranges over the cuts)');
	return;
}

my $ok = eval { main(); 1 };
if (!$ok)
{
	my $err = $@;
	print $TERM_ERR "soak-blips: $err";
	print STDERR "soak-blips: $err";
	exit 1;
}
exit 0;
