
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# The programs in examples/ build against the installed library and do
# what docs/client.md says: the synchronous one connects through conmgr,
# the asynchronous one sees the socket change during the connection and
# reports a failure notice through PQcmSocket().

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CmClient;
use CmProg;

my $node   = CmClient::plain_node('primary');
my $pgport = $node->port;
my $fake   = CmClient::fake_for($node);
my $cm     = $fake->{port};
my $ci     = "host=localhost port=$cm dbname=postgres";

# build a private copy so that the source tree stays clean
my $dir = PostgreSQL::Test::Utils::tempdir('examples');
system('cp', glob(CmProg::top() . '/examples/*.c'), CmProg::top() . '/examples/Makefile', $dir) == 0
  or die 'could not copy examples';
my ($out, $err) = ('', '');
IPC::Run::run([ 'make', '-s', '-C', $dir ], '>', \$out, '2>', \$err);
is($?, 0, 'examples build against the installed library') or diag($out . $err);

IPC::Run::run([ "$dir/sync_example", $ci, '1' ], '>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
is($?, 0, 'sync_example runs') or diag($out . $err);
like($out, qr/connected to 127\.0\.0\.1:$pgport \(through Connection Manager\)/,
	'sync_example connects to the instance through Connection Manager');

my $h = CmClient::start_bg("$dir/async_example", $ci);
CmClient::wait_output($h, qr/^connected to 127\.0\.0\.1:$pgport$/m, 'async_example connected');
like($h->{out}, qr/^waiting for conmgr at localhost:$cm$/m,
	'async_example saw CONNECTION_AWAITING_CMRESPONSE with the conmgr host and port');
my ($running) = $node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'")
  ? (1) : (0);
ok($running, 'async_example query running');
CmClient::signal_bg($fake, 'USR1');
CmClient::wait_output($h, qr/^conmgr reports a failure$/m, 'async_example saw PQcmSocket() readable');
CmClient::finish_bg($h);
like($h->{err}, qr/connection lost: conmgr reported a failure/, 'async_example reports the lost connection');

done_testing();
