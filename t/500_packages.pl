# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The Debian packages: dpkg-buildpackage -b builds them from a copy of the
# tree (build products removed by debian/rules clean), lintian finds no
# error in them, each .deb holds exactly the files expected of it, and
# systemd-analyze accepts the unit and the PostgreSQL drop-in.  Nothing is
# installed on this machine.

use strict;
use warnings FATAL => 'all';
use File::Basename qw(basename);
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CmProg;

my $top = CmProg::top();

foreach my $tool (qw(dpkg-buildpackage dpkg-deb dh pg_buildext lintian))
{
	plan skip_all => "$tool is not installed (scripts/install-deps.sh)"
	  unless system("command -v $tool >/dev/null 2>&1") == 0;
}

# run a command; returns (exit status, stdout, stderr)
sub run_cmd
{
	my ($cmd, %opts) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run($cmd, '>', \$out, '2>', \$err, %opts ? (init => $opts{init}) : ());
	return ($? >> 8, $out, $err);
}

my $tmp = PostgreSQL::Test::Utils::tempdir('packages');
my $src = "$tmp/src";
mkdir $src or die "mkdir $src: $!";

# A copy of the tree without what a test run writes into it while we copy
# (prove's and pg_regress' output); debian/rules clean removes the rest.
my ($rc, $out, $err) = run_cmd(
	[
		'sh', '-c',
		'tar -C "$1" --exclude=./.git --exclude=./tmp_check --exclude=./tmp_check_regress '
		  . '--exclude=./results --exclude=./log --exclude=./installcheck.out '
		  . '--exclude="./regression.*" -cf - . | tar -C "$2" -xf -',
		'copy', $top, $src
	]);
is($rc, 0, 'the tree is copied') or diag($err);

# The build must not see the jobserver and variables of the make that runs
# this test (make installcheck).
delete @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES)};

my $start = time();
($rc, $out, $err) = run_cmd([ 'dpkg-buildpackage', '-b', '-us', '-uc' ],
	init => sub { chdir $src or die "chdir $src: $!" });
my $elapsed = time() - $start;
is($rc, 0, 'dpkg-buildpackage -b -us -uc builds the packages')
  or diag(substr($out . $err, -4000));
note(sprintf('dpkg-buildpackage took %.1f s', $elapsed));

my ($version) = (run_cmd([ 'dpkg-parsechangelog', '-l', "$src/debian/changelog", '-S', 'Version' ]))[1] =~ /(\S+)/;
my ($arch) = (run_cmd([ 'dpkg-architecture', '-qDEB_HOST_ARCH' ]))[1] =~ /(\S+)/;
my ($upstream) = $version =~ /^(?:\d+:)?(.*?)(?:-[^-]*)?$/;
my ($multiarch) = (run_cmd([ 'dpkg-architecture', '-qDEB_HOST_MULTIARCH' ]))[1] =~ /(\S+)/;
my @pgversions = split ' ',
  (run_cmd([ 'pg_buildext', 'supported-versions' ], init => sub { chdir $src }))[1];
ok(scalar(@pgversions) >= 1, 'pg_buildext names the PostgreSQL versions to build for');

my @sql = map { basename($_) } glob("$top/watchdog--*.sql");
my %expected = (
	conmgr => [
		'./usr/bin/conmgr', './usr/bin/cm_ctl',
		'./lib/systemd/system/conmgr@.service',
		'./usr/share/man/man1/conmgr.1.gz', './usr/share/man/man1/cm_ctl.1.gz',
		'./usr/share/man/man5/conmgr.conf.5.gz',
	],
	libpqcm1 => [
		"./usr/lib/$multiarch/libpqcm.so.1.0",
		"./usr/lib/$multiarch/libpqcm.so.1 -> libpqcm.so.1.0",
	],
	'libpqcm-dev' => [
		'./usr/include/postgresql/libpq-cm.h',
		"./usr/lib/$multiarch/libpqcm.so -> libpqcm.so.1.0",
		"./usr/lib/$multiarch/pkgconfig/libpqcm.pc",
	],
	'libpgconmgr-jdbc-java' => [
		"./usr/share/java/pgconmgr-jdbc-$upstream.jar",
		"./usr/share/java/pgconmgr-jdbc.jar -> pgconmgr-jdbc-$upstream.jar",
	]);
foreach my $v (@pgversions)
{
	$expected{"postgresql-$v-watchdog"} = [
		"./usr/lib/postgresql/$v/lib/watchdog.so",
		"./usr/share/postgresql/$v/extension/watchdog.control",
		(map { "./usr/share/postgresql/$v/extension/$_" } @sql),
	];
}

# Every file of a package, but its directories, its documentation and the
# extension's LLVM bitcode (named by the objects it was built from).
sub contents
{
	my ($deb) = @_;
	my ($rc, $out, $err) = run_cmd([ 'dpkg-deb', '-c', $deb ]);
	die "dpkg-deb -c $deb: $err" if $rc;
	my @files;
	foreach my $line (split /\n/, $out)
	{
		next if $line =~ /^d/;
		my ($path) = $line =~ /^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(.*)$/;
		next if $path =~ m{^\./usr/share/doc/};
		next if $path =~ m{^\./usr/lib/postgresql/\d+/lib/bitcode/};
		push @files, $path;
	}
	return sort @files;
}

foreach my $pkg (sort keys %expected)
{
	my $deb = "$tmp/${pkg}_${version}_" . ($pkg =~ /-java$/ ? 'all' : $arch) . '.deb';
	ok(-f $deb, "$pkg is built") or next;
	is_deeply([ contents($deb) ], [ sort @{ $expected{$pkg} } ],
		"$pkg holds exactly the expected files");
}

# the watchdog package depends on its server, with LLVM bitcode for JIT
foreach my $v (@pgversions)
{
	my $deb = "$tmp/postgresql-${v}-watchdog_${version}_$arch.deb";
	next unless -f $deb;
	($rc, $out) = run_cmd([ 'dpkg-deb', '-f', $deb, 'Depends' ]);
	like($out, qr/(^|, )postgresql-$v( |,|$)/, "postgresql-$v-watchdog depends on postgresql-$v");
	($rc, $out) = run_cmd([ 'dpkg-deb', '-c', $deb ]);
	like($out, qr{/usr/lib/postgresql/$v/lib/bitcode/watchdog\.index\.bc}, "postgresql-$v-watchdog has its bitcode");
}

# conmgr creates its user; the library is named after its SONAME
my $ctl = "$tmp/ctl";
($rc, $out, $err) = run_cmd([ 'dpkg-deb', '-e', "$tmp/conmgr_${version}_$arch.deb", $ctl ]);
like(slurp_file("$ctl/postinst"), qr/adduser --system\b.*\sconmgr\n/s, 'conmgr\'s postinst creates the user conmgr');
my $x = "$tmp/extract";
foreach my $pkg (qw(conmgr libpqcm1 libpqcm-dev))
{
	($rc, $out, $err) = run_cmd([ 'dpkg-deb', '-x', "$tmp/${pkg}_${version}_$arch.deb", $x ]);
	is($rc, 0, "$pkg extracts") or diag($err);
}
($rc, $out) = run_cmd([ 'objdump', '-p', "$x/usr/lib/$multiarch/libpqcm.so.1.0" ]);
like($out, qr/SONAME\s+libpqcm\.so\.1$/m, 'libpqcm\'s SONAME is libpqcm.so.1 (package libpqcm1)');
like(slurp_file("$x/usr/lib/$multiarch/pkgconfig/libpqcm.pc"),
	qr{^libdir=/usr/lib/$multiarch\n(?:.*\n)*includedir=/usr/include/postgresql\n}m,
	'libpqcm.pc names the installed directories');

# lintian: no error (warnings are shown)
my $changes = "$tmp/connection-manager_${version}_$arch.changes";
($rc, $out, $err) = run_cmd([ 'lintian', '--tag-display-limit', '0', $changes ]);
my @errors = grep { /^E: / } split /\n/, $out;
my @warnings = grep { /^W: / } split /\n/, $out;
is_deeply(\@errors, [], 'lintian reports no error');
diag("lintian warnings:\n" . join("\n", @warnings)) if @warnings;
unlike($err, qr/^(?!running with root privileges).+$/m, 'lintian ran without complaint')
  or diag($err);

# systemd-analyze verify: the unit as packaged, its ExecStart pointed at the
# extracted conmgr, and the drop-in for postgresql@.service in a stand-in
# unit.  Warnings about unknown or malformed settings fail too.
SKIP:
{
	skip 'systemd-analyze is not installed', 3
	  unless system('command -v systemd-analyze >/dev/null 2>&1') == 0;
	my $units = "$tmp/units";
	mkdir $units or die "mkdir $units: $!";
	my $unit = slurp_file("$x/lib/systemd/system/conmgr\@.service");
	like($unit, qr{^ExecStart=/usr/bin/conmgr -D /var/lib/conmgr/%i$}m,
		'the unit runs conmgr -D /var/lib/conmgr/INSTANCE');
	$unit =~ s{^ExecStart=/usr/bin/conmgr}{ExecStart=$x/usr/bin/conmgr}m;
	append_to_file("$units/conmgr\@check.service", $unit);
	my $dropin = slurp_file("$src/examples/systemd/postgresql-watchdog.conf");
	append_to_file("$units/pgcheck.service",
		"[Unit]\nDescription=stand-in for postgresql\@.service\n\n[Service]\nExecStart=/bin/true\n\n"
		  . ($dropin =~ s/^\[Service\]\n//mr));
	local $ENV{MANPATH} = "$x/usr/share/man";
	($rc, $out, $err) = run_cmd([ 'systemd-analyze', 'verify', "$units/conmgr\@check.service" ]);
	ok($rc == 0 && $err eq '', 'systemd-analyze verify accepts conmgr@.service')
	  or diag($out . $err);
	($rc, $out, $err) = run_cmd([ 'systemd-analyze', 'verify', '--man=no', "$units/pgcheck.service" ]);
	ok($rc == 0 && $err eq '', 'systemd-analyze verify accepts the postgresql@.service drop-in')
	  or diag($out . $err);
}

note(sprintf('whole test: %.1f s', time() - $start));
done_testing();
