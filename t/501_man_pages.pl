# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The manual pages in docs/man/ render without warnings and name what the
# code has: every conmgr.conf parameter of conmgr/cm_config.c's key table
# (and nothing else), every long and short option of conmgr and cm_ctl,
# every cm_ctl command of its usage text, and the release of
# common/cm_version.h in their .TH lines.  Adding a parameter or an option
# without documenting it fails here.

use strict;
use warnings FATAL => 'all';
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use CmProg;

my $top = CmProg::top();
my $man = "$top/docs/man";

plan skip_all => 'groff is not installed' unless system('groff -v >/dev/null 2>&1') == 0;

sub read_file
{
	my ($path) = @_;
	open(my $fh, '<', $path) or die "could not open $path: $!";
	local $/;
	my $s = <$fh>;
	close($fh);
	return $s;
}

# Render a page as plain ASCII (no bold/underline), or return the warnings.
sub render
{
	my ($page, @opts) = @_;
	my ($out, $err);
	IPC::Run::run([ 'groff', '-man', '-Tascii', '-P-cbou', @opts, "$man/$page" ],
		'>', \$out, '2>', \$err);
	return ($out, $err);
}

# The tags of the .TP items of section SECTION of a roff page: the first
# word of the line after each .TP ("\-" made "-", fonts dropped).
sub items
{
	my ($src, $section) = @_;
	my ($body) = $src =~ /^\.SH \Q$section\E\n(.*?)(?=^\.SH |\z)/ms;
	return () unless defined $body;
	my @tags;
	while ($body =~ /^\.TP\n\.(?:B|BI|BR|I)\s+"?([^\s"]+)/mg)
	{
		(my $t = $1) =~ s/\\//g;
		push @tags, $t;
	}
	return @tags;
}

# Long options (and their short letters) of a getopt_long table in a C file.
sub long_options
{
	my ($src) = @_;
	my ($table) = $src =~ /struct option long_options\[\]\s*=\s*\{(.*?)\n\t\};/s;
	die 'no long_options table found' unless defined $table;
	my @opts;
	while ($table =~ /\{"([a-z-]+)",\s*\w+,\s*NULL,\s*(?:'(.)'|\d+)\}/g)
	{
		push @opts, "--$1";
		push @opts, "-$2" if defined $2;
	}
	return @opts;
}

sub has_option
{
	my ($text, $opt) = @_;
	return $text =~ /(?<![\w-])\Q$opt\E(?![\w-])/;
}

foreach my $page (qw(conmgr.1 cm_ctl.1 conmgr.conf.5))
{
	my ($out, $err) = render($page, '-ww', '-z');
	is($err, '', "$page renders without groff warnings");
	($out, $err) = render($page);
	like($out, qr/^NAME\n/m, "$page renders a NAME section");
}

# every page names the release of common/cm_version.h in its .TH line
my $release = CmProg::release_version();
foreach my $page (qw(conmgr.1 cm_ctl.1 conmgr.conf.5))
{
	my ($th) = read_file("$man/$page") =~ /^(\.TH .*)$/m;
	like($th // '', qr/^\.TH \S+ \d \S+ "Connection Manager \Q$release\E"/,
		"$page names release $release in its .TH line");
}

# and so do the programs themselves
foreach my $prog (qw(conmgr cm_ctl))
{
	my ($stdout, $stderr);
	IPC::Run::run([ CmProg::bin($prog), '--version' ], '>', \$stdout, '2>', \$stderr);
	like($stdout // '', qr/^\Q$prog\E \(Connection Manager for PostgreSQL\) \Q$release\E$/m,
		"$prog --version names release $release");
}

# conmgr.conf(5) against the key table
my $cfg = read_file("$top/conmgr/cm_config.c");
my ($table) = $cfg =~ /^const CmConfigParam cm_config_params\[\w+\]\s*=\s*\{(.*?)\n\};/ms;
my @keys = ($table // '') =~ /\b[A-Z]+_PARAM\(CM_KEY_\w+,\s*(\w+),/g;
my ($itable) = $cfg =~ /^const CmConfigParam cm_config_instance_params\[\w+\]\s*=\s*\{(.*?)\n\};/ms;
my @ikeys = ($itable // '') =~ /\bINST_PARAM\(CM_IKEY_\w+,\s*"(\w+)"/g;
cmp_ok(scalar(@keys), '>=', 10, 'the key table of cm_config.c was found');
is(scalar(@ikeys), 4, 'the instance keys of cm_config.c were found');

my $conf5 = read_file("$man/conmgr.conf.5");
my %documented = map { $_ => 1 } items($conf5, 'PARAMETERS');
my %idocumented = map { $_ => 1 } items($conf5, 'INSTANCES');
foreach my $k (@keys)
{
	ok($documented{$k}, "conmgr.conf(5) documents parameter $k");
}
foreach my $k (@ikeys)
{
	ok($idocumented{$k}, "conmgr.conf(5) documents instance parameter ${k}N");
}
my %known = map { $_ => 1 } @keys;
my %iknown = map { $_ => 1 } @ikeys;
is_deeply([ grep { !$known{$_} } sort keys %documented ], [],
	'conmgr.conf(5) documents no parameter the code does not have');
is_deeply([ grep { !$iknown{$_} } sort keys %idocumented ], [],
	'conmgr.conf(5) documents no instance parameter the code does not have');

# conmgr(1) and cm_ctl(1) against the options of the programs
foreach my $prog (qw(conmgr cm_ctl))
{
	my @opts = long_options(read_file("$top/conmgr/$prog.c"));
	cmp_ok(scalar(@opts), '>=', 4, "the options of $prog.c were found");
	my ($text) = render("$prog.1");
	my ($options) = $text =~ /^OPTIONS\n(.*?)(?=^[A-Z]|\z)/ms;
	foreach my $o (@opts)
	{
		ok(has_option($options // '', $o), "$prog(1) documents option $o");
	}
}

# cm_ctl(1) against the commands of cm_ctl's usage text
my $ctl = read_file("$top/conmgr/cm_ctl.c");
my @commands = $ctl =~ /printf\("  %s (\w+)\s+\[/g;
cmp_ok(scalar(@commands), '>=', 4, 'the commands of cm_ctl\'s usage text were found');
my %cmddoc = map { $_ => 1 } items(read_file("$man/cm_ctl.1"), 'COMMANDS');
my ($ctltext) = render('cm_ctl.1');
my ($synopsis) = $ctltext =~ /^SYNOPSIS\n(.*?)(?=^[A-Z])/ms;
foreach my $c (@commands)
{
	ok($cmddoc{$c}, "cm_ctl(1) describes command $c");
	like($synopsis, qr/^\s+cm_ctl \Q$c\E\b/m, "cm_ctl(1) shows command $c in its synopsis");
}
my %cmdknown = map { $_ => 1 } @commands;
is_deeply([ grep { !$cmdknown{$_} } sort keys %cmddoc ], [],
	'cm_ctl(1) describes no command that cm_ctl does not have');

done_testing();
