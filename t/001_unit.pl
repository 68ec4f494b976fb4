# Unit tests of the wire protocol codec, plain and under ASan/UBSan.
#
# The C programs print one "ok N - ..." / "not ok N - ..." line per check;
# each becomes one assertion here, so prove's summary counts them.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;

my $top = $ENV{TESTDIR} // '.';
my $cases = "$top/test/unit/protocol.cases";

foreach my $prog ('test_protocol', 'test_protocol_san')
{
	my $path = "$top/test/unit/$prog";
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
	cmp_ok($lines, '>', 90, "$prog ran its checks");
	ok($ok, "$prog exited successfully") or diag($stderr);
	is($stderr, '', "$prog wrote nothing to stderr (no sanitizer report)");
}

done_testing();
