# Unit tests, plain and under ASan/UBSan: the wire protocol codec
# (test/unit/test_protocol.c, protocol.cases) and the conmgr.conf parser
# (test/unit/test_config.c, config.cases).
#
# The C programs print one "ok N - ..." / "not ok N - ..." line per check;
# each becomes one assertion here, so prove's summary counts them.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;

my $top = $ENV{TESTDIR} // '.';
my %cases = (
	test_protocol => 'protocol.cases',
	test_protocol_san => 'protocol.cases',
	test_config => 'config.cases',
	test_config_san => 'config.cases');

foreach my $prog (sort keys %cases)
{
	my $path = "$top/test/unit/$prog";
	my $cases = "$top/test/unit/$cases{$prog}";
	ok(-x $path, "$prog is built (make test-programs)") or next;

	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ $path, $cases ], '>', \$stdout, '2>', \$stderr);
	my $lines = 0;
	foreach my $line (split /\n/, $stdout)
	{
		next unless $line =~ /^(not )?ok \d+ - (.*)$/;
		$lines++;
		ok(!defined $1, "$prog: $2");
	}
	cmp_ok($lines, '>', 40, "$prog ran its checks");
	ok($ok, "$prog exited successfully") or diag($stderr);
	is($stderr, '', "$prog wrote nothing to stderr (no sanitizer report)");
}

done_testing();
