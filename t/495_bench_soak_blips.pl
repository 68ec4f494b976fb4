# The network part of the soak (bench/soak-blips.pl) in smoke mode: in the
# partition lab, at heartbeat_interval 200 / heartbeat_timeout 1000, one
# blip of the primary's link of 200 ms and two real cuts.  Checks that the
# tables and CSV files are well formed and the numbers sane: the blip, a
# fifth of the timeout, causes no false declaration, notice or
# termination; each cut is declared after heartbeat_timeout less one
# interval and within it plus 1 s, and every application is notified after
# the declaration.  Not a measurement: docs/performance.md has the figures.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use CmLab;
use CmProg;

CmLab::require_root();

my $top = CmProg::top();
my $perllib = $INC{'PostgreSQL/Test/Utils.pm'};
$perllib =~ s{/PostgreSQL/Test/Utils\.pm$}{};
my $out = PostgreSQL::Test::Utils::tempdir('soak_blips_out');
my ($iv, $to, $apps) = (200, 1000, 2);

my $cmd = join ' ', $^X, '-I', "$top/t/lib", '-I', $perllib,
  "$top/bench/soak-blips.pl", '--out', $out, '--repeats', 1, '--cuts', 2,
  '--apps', $apps, '--fractions', '0.2', "$iv/$to";
my $t0 = time;
my $text = `$cmd 2>&1`;
my $rc = $? >> 8;
note($text);
is($rc, 0, 'soak-blips: exit status 0');
like($text, qr/^\s+interval\s+timeout\s+blip\s+frac\s+repeats\s+outage\s+path\s+declared\s+notices\s+lost\s+ended$/m,
	'soak-blips: blip table header');
like($text, qr/^\s+interval\s+timeout\s+cuts\s+min\s+p50\s+max\s+first_notice\s+last_notice$/m,
	'soak-blips: detection table header');

sub csv
{
	my ($file) = @_;
	open my $fh, '<', $file or return [];
	my @lines = map { chomp; [ split /,/, $_, -1 ] } <$fh>;
	close $fh;
	return \@lines;
}

my $blips = csv("$out/soak-blips.csv");
is(scalar(@$blips), 2, 'soak-blips: blip CSV header and one row');
is(join(',', @{ $blips->[0] }),
	'interval_ms,timeout_ms,blip_ms,fraction,repeat,outage_min_ms,outage_max_ms,declared,declared_ms,notices,watchdog_lost,terminated,path_ms',
	'soak-blips: blip CSV header');
if (my $b = $blips->[1])
{
	my ($biv, $bto, $blip, $f, $r, $omin, $omax, $declared, $dms, $notices, $lost, $ended, $path)
	  = @$b;
	is("$biv/$bto/$blip", "$iv/$to/200", 'blip: setting and length');
	ok($omin >= 200 && $omin <= $omax && $omax < 1000,
		"blip: the link was down for about 200 ms ($omin-$omax ms)");
	like($path, qr/^-?\d+$/, "blip: the probe saw the path come back ($path ms after the link was up)");
	# the lab's hosts keep their ARP cache through a cut (CmLab::new), so the
	# blip lasts as long as it was asked to, not up to a second more
	ok($path ne '' && $path < 300, "blip: the path came back with the link ($path ms)");
	is($declared + $notices + $lost + $ended, 0,
		'a blip of a fifth of the timeout: no declaration, notice, loss or termination');
}

my $det = csv("$out/soak-detect.csv");
is(scalar(@$det), 3, 'soak-blips: detection CSV header and two rows');
is(join(',', @{ $det->[0] }),
	'interval_ms,timeout_ms,repeat,declared_ms,first_notice_ms,last_notice_ms,notices',
	'soak-blips: detection CSV header');
foreach my $d (@$det[ 1 .. $#$det ])
{
	my ($div, $dto, $r, $decl, $first, $last, $n) = @$d;
	# the deadline is the timeout after the last reply, which came at most
	# one interval (and its round trip) before the cut
	ok($decl >= $to - $iv - 50 && $decl <= $to + 1000,
		"cut $r: declared after about heartbeat_timeout ($decl ms)");
	is($n, $apps, "cut $r: every application notified");
	# conmgr's log keeps milliseconds: a notice may seem up to 1 ms early
	ok($first ne '' && $first >= $decl - 1 && $first <= $last && $last <= $decl + 1000,
		"cut $r: notices after the declaration ($first-$last ms)");
}
note(sprintf('soak-blips smoke: %.0f s', time - $t0));

done_testing();
