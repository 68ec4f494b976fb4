# The whole path end to end: watchdog in a primary and a standby, conmgr,
# the client library, an application.
#
# - read-write lands on the primary, read-only on the standby
#   (checked with pg_is_in_recovery() and the port);
# - PQcmSocket() gives a descriptor;
# - the primary is stopped with -m immediate: the application's conmgr
#   socket becomes readable after the stop and within heartbeat_timeout
#   + 1 s, and the next query fails;
# - a stock psql that reaches conmgr gets a message saying what it reached;
# - probing a plain server leaves nothing in its log.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmConmgr;
use CmNode;
use CmTest;

my $hb_interval = 200;
my $hb_timeout = 1000;

my ($primary, $standby) = CmNode->create_pair('e2e_primary', 'e2e_standby',
	check_attr_interval => 200,
	log_min_messages => undef);
my $cm = CmConmgr->new(
	name => 'e2e',
	nodes => [ $primary, $standby ],
	heartbeat_interval => $hb_interval,
	heartbeat_timeout => $hb_timeout)->start;
$cm->accepting_ok;
my $cmport = $cm->{port};

# conmgr learns each instance's attributes over its heartbeat connection;
# wait (bounded) until it routes both kinds of request.
my ($rw, $ro);
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	$rw = CmTest::run_app("host=localhost port=$cmport target_session_attrs=read-write");
	$ro = CmTest::run_app("host=localhost port=$cmport target_session_attrs=read-only");
	last if $rw->{connected} && $ro->{connected};
	usleep(100_000);
}

ok($rw->{connected}, 'read-write connection through conmgr succeeds')
  or diag($rw->{raw});
is($rw->{connected}{in_recovery}, 'f', 'read-write lands on a server not in recovery');
is($rw->{connected}{port}, $primary->port, 'read-write lands on the primary');
cmp_ok($rw->{connected}{cm_socket} // -1, '>=', 0, 'PQcmSocket() returns a descriptor');

ok($ro->{connected}, 'read-only connection through conmgr succeeds')
  or diag($ro->{raw});
is($ro->{connected}{in_recovery}, 't', 'read-only lands on a server in recovery');
is($ro->{connected}{port}, $standby->port, 'read-only lands on the standby');

# a direct connection to a plain server does not use Connection Manager
my $plain = CmTest::run_app("host=127.0.0.1 port=" . $standby->port);
is($plain->{connected}{cm_socket}, '-1', 'PQcmSocket() is -1 without Connection Manager');

# probing a plain server over loopback logs nothing there
my $plain_local = CmTest::run_app("host=localhost port=" . $standby->port);
ok($plain_local->{connected}, 'a plain server named by localhost is reached directly');
my $standby_log = slurp_file($standby->logfile);
unlike($standby_log, qr/could not accept|incomplete startup packet|invalid length of startup packet|unsupported frontend protocol/,
	'the plain server logged no error because of recognition');

# a stock psql reaching conmgr is told what it reached
my ($ret, $stdout, $stderr) = $primary->psql('postgres', 'SELECT 1',
	connstr => "host=localhost port=$cmport dbname=postgres");
isnt($ret, 0, 'stock psql cannot use conmgr as a server');
like($stderr, qr/Connection Manager/, 'stock psql is told it reached Connection Manager')
  or diag($stderr);

# failure notice: an application waits on its conmgr socket, the primary dies
my ($app, $out) = CmTest::start_app(
	"host=localhost port=$cmport target_session_attrs=read-write", 60);
ok(CmTest::wait_app_line($app, $out, 'connected'), 'waiting application connected')
  or diag($$out);
like($$out, qr/in_recovery=f/, 'waiting application is on the primary');

my $t_stop = time;
$primary->stop('immediate');
my $t_stopped = time;
ok(CmTest::wait_app_line($app, $out, 'after-notice'), 'application was notified')
  or diag($$out);
$app->finish;
my $r = CmTest::parse_app_output($$out);
my $at = ($r->{notice}{at} // 0) / 1000.0;
cmp_ok($at, '>=', $t_stop, 'notice came after the primary was stopped');
cmp_ok($at - $t_stopped, '<=', ($hb_timeout + 1000) / 1000.0,
	"notice within heartbeat_timeout + 1 s of the stop");
note(sprintf("notice %.0f ms after the stop completed", ($at - $t_stopped) * 1000));
is($r->{'after-notice'}{status}, 'bad', 'the connection is reported bad after the notice');
isnt($r->{'after-notice'}{query}, 'PGRES_TUPLES_OK', 'a query after the notice fails');

# the standby is still served
my $ro2 = CmTest::run_app("host=localhost port=$cmport target_session_attrs=read-only");
is($ro2->{connected}{port}, $standby->port, 'read-only still reaches the standby');

# heartbeat timeout: the standby's watchdog worker is frozen, so its socket
# stays open but heartbeats go unanswered
my $wd_pid = $standby->worker_pid('watchdog') // 'none';
like($wd_pid, qr/^\d+$/, 'the standby runs a watchdog worker');
($app, $out) = CmTest::start_app(
	"host=localhost port=$cmport target_session_attrs=read-only", 60);
ok(CmTest::wait_app_line($app, $out, 'connected'), 'application connected to the standby')
  or diag($$out);
my $t_freeze = time;
kill 'STOP', $wd_pid if $wd_pid =~ /^\d+$/;
my $notified = CmTest::wait_app_line($app, $out, 'after-notice');
kill 'CONT', $wd_pid if $wd_pid =~ /^\d+$/;
ok($notified, 'application was notified when heartbeats went unanswered')
  or diag($$out);
$app->finish;
$r = CmTest::parse_app_output($$out);
$at = ($r->{notice}{at} // 0) / 1000.0;
# the last heartbeat answered before the freeze may be up to one interval old
cmp_ok($at - $t_freeze, '>=', ($hb_timeout - $hb_interval) / 1000.0,
	'no notice before the heartbeat timeout could have expired');
cmp_ok($at - $t_freeze, '<=', ($hb_timeout + 1000) / 1000.0,
	'notice within heartbeat_timeout + 1 s of the freeze');
note(sprintf("notice %.0f ms after the freeze", ($at - $t_freeze) * 1000));
is($r->{'after-notice'}{status}, 'bad', 'the frozen instance\'s connection is reported bad');

done_testing();
