# Unit tests, plain and under ASan/UBSan: the wire protocol codec
# (test/unit/test_protocol.c, protocol.cases), the conmgr.conf parser
# (test/unit/test_config.c, config.cases; and that its parameter tables
# agree with those of docs/conmgr.md), heartbeat authentication
# (test/unit/test_auth.c, given a directory for its secret files) and the
# client library's check of the user behind a conmgr port
# (test/unit/test_peer.c: socket diagnostics, PGCONMGRUSER) and the pure
# helpers of common/ (test/unit/test_common.c: rate limiters, address
# conversions, endian helpers, frame intake, the monotonic clock).
#
# The C programs print one "ok N - ..." / "not ok N - ..." line per check;
# each becomes one assertion here, so prove's summary counts them.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use CmProg;

my $top = CmProg::top();
# program => [ its arguments, fewest checks it must run ]
my @config_args = ("$top/test/unit/config.cases", "$top/docs/conmgr.md");
my %cases = (
	test_protocol => [ ["$top/test/unit/protocol.cases"], 40 ],
	test_protocol_san => [ ["$top/test/unit/protocol.cases"], 40 ],
	test_config => [ \@config_args, 150 ],
	test_config_san => [ \@config_args, 150 ],
	test_auth => [ [ PostgreSQL::Test::Utils::tempdir() ], 25 ],
	test_auth_san => [ [ PostgreSQL::Test::Utils::tempdir() ], 25 ],
	test_peer => [ [''], 40 ],
	test_peer_san => [ [''], 40 ],
	test_common => [ [], 50 ],
	test_common_san => [ [], 50 ]);

foreach my $prog (sort keys %cases)
{
	my $path = "$top/test/unit/$prog";
	my ($args, $min) = @{ $cases{$prog} };
	ok(-x $path, "$prog is built (make test-programs)") or next;

	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ $path, @$args ], '>', \$stdout, '2>', \$stderr);
	my $lines = 0;
	foreach my $line (split /\n/, $stdout)
	{
		next unless $line =~ /^(not )?ok \d+ - (.*)$/;
		$lines++;
		ok(!defined $1, "$prog: $2");
	}
	cmp_ok($lines, '>=', $min, "$prog ran its checks");
	ok($ok, "$prog exited successfully") or diag($stderr);
	is($stderr, '', "$prog wrote nothing to stderr (no sanitizer report)");
}

done_testing();
