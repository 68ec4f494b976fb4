
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Unit tests of the conmgr.conf parser (test/unit/test_config.c driven by
# test/unit/config.cases), plain and under ASan/UBSan.
#
# The programs come from "make test-programs"; when they are not built, the
# test builds them itself with pg_config's compiler.

use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = $ENV{TESTDIR} // '.';
my $cases = "$top/test/unit/config.cases";
ok(-r $cases, 'config.cases present');

sub program
{
	my ($prog) = @_;
	my $built = "$top/test/unit/$prog";
	return $built if -x $built;

	my $cc = `pg_config --cc`;
	chomp $cc;
	my $tmp = PostgreSQL::Test::Utils::tempdir('unit');
	my @flags = ('-Wall', '-Wextra', '-Wno-unused-parameter', '-D_GNU_SOURCE',
		"-I$top/common", "-I$top/conmgr");
	push @flags, ('-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-g', '-O1')
	  if $prog =~ /_san$/;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $cc, @flags, "$top/test/unit/test_config.c",
			"$top/conmgr/cm_config.c", '-o', "$tmp/$prog" ],
		'>', \$out, '2>', \$err);
	diag("built $prog here: test/unit/$prog is not built");
	return -x "$tmp/$prog" ? "$tmp/$prog" : undef;
}

foreach my $prog ('test_config', 'test_config_san')
{
	my $path = program($prog);
	ok(defined $path, "$prog available") or next;

	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run([ $path, $cases ], '>', \$stdout, '2>', \$stderr);
	my $lines = 0;
	foreach my $line (split /\n/, $stdout)
	{
		next unless $line =~ /^(not )?ok \d+ - (.*)$/;
		$lines++;
		ok(!defined $1, "$prog: $2");
	}
	cmp_ok($lines, '>', 40, "$prog ran its checks");
	ok($ok, "$prog exited successfully") or diag($stdout . $stderr);
	is($stderr, '', "$prog wrote nothing to stderr (no sanitizer report)");
}

done_testing();
