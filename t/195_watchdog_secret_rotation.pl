
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Replacing the heartbeat secret without refusing anyone: watchdog.secret_file
# takes a list of files, and a conmgr may prove any of their secrets; the
# watchdog answers with the secret the conmgr proved.  A real conmgr is
# moved from the old secret to the new one while its application keeps its
# session; a bad file in the list at a reload leaves the previous secrets in
# force.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmConmgr;
use CmNode;
use CmTest;
use CmWatchdog;
use CmWire;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $old = 'the old secret, 0123456789abcdef';
my $new = 'the new secret, fedcba9876543210';
my $file_old = CmNode::write_secret_file("$dir/old.secret", "$old\n");
my $file_new = CmNode::write_secret_file("$dir/new.secret", "$new\n");

my $node = CmNode->create('rotation',
	check_attr_interval => 200,
	log_min_messages => undef);
# precise: the Perl peers below leave without a goodbye, and must not take
# the application's session (from the same address) with them
$node->append_conf('postgresql.conf',
	"watchdog.secret_file = '$file_old'\nwatchdog.termination_mode = precise\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my $wdport = $node->watchdog_port;
my %hb = (interval => 10000, timeout => 30000);

# Authenticate a Perl peer with $secret; returns the answer and whether the
# welcome's proof verifies with $expect_secret.
sub try_secret
{
	my ($secret, $expect_secret, $name) = @_;
	my $p = CmWatchdog::Peer->connect($wdport);
	my ($m, $nc, $ns) = $p->authenticate(secret => $secret, %hb, name => $name);
	my $verifies = $m && $m->{type} eq 'W' && $m->{proof_len} == 32
	  && $m->{proof} eq CmWatchdog::welcome_proof($expect_secret, $m);
	return ($m, $verifies, $p);
}

sub reload_to
{
	my ($value, $re, $what) = @_;
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "ALTER SYSTEM SET watchdog.secret_file = '$value'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	ok($node->wait_for_log($re, $offset), $what);
}

# --- a real conmgr with the old secret, and its application ----------------
my $cm = CmConmgr->new(
	name => 'rotation',
	nodes => [$node],
	heartbeat_interval => 200, heartbeat_timeout => 3000, secret_file => "'$file_old'")->start;
$cm->accepting_ok;
ok($cm->wait_up(0), 'conmgr with the old secret is up');
my $ci = "host=localhost port=$cm->{port} dbname=postgres target_session_attrs=read-write";
my ($h, $out) = CmTest::start_app($ci, 60);
ok(CmTest::wait_app_line($h, $out, 'connected'), 'an application is connected through it');
my ($bpid) = $$out =~ /backend_pid=(\d+)/;

my ($m, $ok, $keep) = try_secret($old, $old, 'old-before');
ok($ok, 'one secret: the old one is welcomed');

# --- step 1: the server accepts both --------------------------------------
reload_to("$file_new, $file_old",
	qr/heartbeat authentication is on, with the secrets of "\Q$file_new\E, \Q$file_old\E"/,
	'the server now holds both secrets, and says so');
($m, $ok) = try_secret($new, $new, 'new-during');
ok($ok, 'both: the new secret is welcomed, and the watchdog proves the new one');
($m, $ok) = try_secret($old, $old, 'old-during');
ok($ok, 'both: the old secret is welcomed, and the watchdog proves the old one');
($m) = try_secret('neither of the two secrets, really', $old, 'other');
ok($m && $m->{type} eq 'X' && $m->{reason} == CmWire::REASON_AUTH, 'both: another secret is refused');
ok($keep->heartbeat(1), 'a peer welcomed before the reload is still answered');

# --- step 2: conmgr changes to the new secret -------------------------------
(my $conf = $cm->conf) =~ s/^secret_file = .*$/secret_file = '$file_new'/m;
$cm->conf($conf);
my ($rc, $o, $e) = $cm->ctl('reload');
is($rc, 0, 'conmgr reloads with the new secret') or diag($o . $e);
# its heartbeat connection is renewed when the watchdog process restarts
my $offset = -s $cm->{log};
kill 'TERM', $node->worker_pid('watchdog');
ok( $cm->wait_log(qr/the watchdog is back after its restart; 1 application connection kept/),
	'conmgr reconnects with the new secret and keeps its application');
is(($cm->instances)[0]{authenticated},
	'true', 'conmgr is authenticated with the new secret');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $bpid"),
	'1', "the application's session is still there");
unlike(slurp_file($cm->{log}, $offset), qr/instance is down/,
	'the instance was never declared down');

# --- step 3: the server drops the old secret ---------------------------------
reload_to($file_new, qr/heartbeat authentication is on, with the secret of "\Q$file_new\E"/,
	'the server now holds the new secret only');
($m) = try_secret($old, $old, 'old-after');
ok($m && $m->{type} eq 'X' && $m->{reason} == CmWire::REASON_AUTH, 'the old secret is refused');
($m, $ok) = try_secret($new, $new, 'new-after');
ok($ok, 'the new secret is welcomed');
is(($cm->instances)[0]{state}, 'up',
	'conmgr stays up');

# --- a bad file in the list: the previous secrets stay ---------------------
reload_to("$file_new, $dir/missing.secret",
	qr/WARNING:  watchdog: could not open secret file "[^"]*missing\.secret".*\n.*DETAIL:  The secret read from "\Q$file_new\E" stays in force/,
	'a missing file in the list: warned, the previous secrets stay');
($m, $ok) = try_secret($new, $new, 'new-kept');
ok($ok, 'the new secret is still welcomed');

$h->pump_nb;
unlike($$out, qr/^notice/m, 'the application was never notified');
$h->kill_kill;
done_testing();
