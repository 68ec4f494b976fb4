
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Authenticated heartbeats (watchdog.secret_file, auth method 2), seen from
# a peer that computes the proofs itself: a peer with the secret is
# welcomed with a proof that verifies, one without is refused; malformed
# handshakes are protocol violations that leave the worker serving; an
# unanswered challenge is closed after watchdog.hello_timeout; a reload
# changes the secret for new peers only, keeps the previous secret when the
# new file is unusable, and can switch authentication off; a server that
# starts with an unusable file refuses everyone until a reload fixes it.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmNode;
use CmWatchdog;
use CmWire;

my $hello_timeout = 500;    # ms
my $margin = 3.0;           # s, for the closing of an unanswered challenge

my $dir = PostgreSQL::Test::Utils::tempdir();
my $secret1 = 'first secret, 0123456789abcdef';
my $secret2 = 'second secret, fedcba9876543210';
my $secret3 = 'third secret, in a world-readable file';
my $secret4 = 'fourth secret, relative to the data directory';
my $secret5 = 'fifth secret, for a server that starts without one';

# trailing newlines are not part of the secret
my $file1 = CmNode::write_secret_file("$dir/secret1", "$secret1\n");

my $node = CmNode->create('auth',
	conf => "watchdog.secret_file = '$file1'\n"
	  . "watchdog.hello_timeout = $hello_timeout\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my $start_time = $node->postmaster_start_time();

ok( $node->wait_for_log(
		qr/LOG:  watchdog: heartbeat authentication is on, with the secret of "\Q$file1\E"/),
	'the worker logs that authentication is on, naming the file');

# The worker has no database connection, hence no pg_stat_activity row:
# its PID is the one in the prefix of its log lines.
ok($node->wait_for_log(qr/\[\d+\] LOG:  watchdog started:/),
	'the watchdog worker started');
my ($worker_pid) =
  slurp_file($node->logfile) =~ /\[(\d+)\] LOG:  watchdog started:/;

# Every peer of this test beats rarely but declares a long timeout: the
# server timeout (60 s + 1 s + margin) is far above any step of the test.
my %hb = (interval => 1000, timeout => 60000);

# A refusal: the message, its reason and text, then the connection closed.
sub refused_ok
{
	my ($peer, $m, $reason, $re, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok($m && $m->{type} eq 'X', "$what: refused");
	is($m && $m->{reason}, $reason, "$what: reason $reason");
	like($m && $m->{message}, $re, "$what: the refusal says why");
	ok($peer->wait_closed, "$what: connection closed");
	$peer->close;
}

# A welcome for an authenticated peer, whose proof must verify.
sub welcomed_ok
{
	my ($m, $secret, $nc, $ns, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok($m && $m->{type} eq 'W', "$what: welcomed");
	is($m && $m->{proof_len}, 32, "$what: the welcome carries a 32-byte proof");
	ok( $m
		  && defined $ns
		  && defined $m->{proof}
		  && $m->{proof} eq CmWatchdog::welcome_proof($secret, $m),
		"$what: the watchdog's proof verifies with the secret");
}

# Change settings with ALTER SYSTEM, reload, and wait for a log line that
# the worker writes once it has read the new configuration.
sub reload_with
{
	my ($settings, $re, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', $_) for @$settings;
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	ok($node->wait_for_log($re, $offset), $what);
}

# --- the right secret ---
my $offset = -s $node->logfile;
my $good = CmWatchdog::Peer->connect($wdport);
my ($c, $nc) = $good->challenge(%hb, name => 'good');
ok($c && $c->{type} eq 'C', 'a hello with auth method 2 gets a challenge');
is($c && $c->{nonce_len}, 32, 'the challenge carries a 32-byte nonce');
my $ns = $c && $c->{nonce};
isnt($ns, $nc, "the watchdog's nonce is not the peer's");
$good->send_proof($good->conmgr_proof($secret1));
my $w = $good->read_msg;
welcomed_ok($w, $secret1, $nc, $ns, 'right secret');
is($w && $w->{server_timeout}, 1000 + 60000 + 1000,
	'the welcome announces the server timeout');
{
	# the proof covers every field of the welcome before it
	my %alt = %$w;
	my $raw = $w->{raw};
	substr($raw, 9, 4) = pack('N', $w->{server_timeout} + 1);
	$alt{raw} = $raw;
	ok( defined $w->{proof}
		  && $w->{proof} ne CmWatchdog::welcome_proof($secret1, \%alt),
		"the watchdog's proof covers the server timeout");
}
$good->start_session($secret1, $w);

my $seq = 0;
my $missed = 0;

# A heartbeat of the first peer, which must be answered at every step.
sub beat
{
	$seq++;
	my $r = $good->heartbeat($seq);
	$missed++ unless $r && $r->{type} eq 'b' && $r->{seq} == $seq;
	return $r && $r->{type} eq 'b' && $r->{seq} == $seq;
}
ok(beat(), "the authenticated peer's heartbeat is answered");
is( $node->safe_psql('postgres',
		"SELECT authenticated, state FROM pgx_stat_watchdog WHERE conmgr_name = 'good'"),
	't|active',
	'pgx_stat_watchdog shows the peer as authenticated');
ok( $node->wait_for_log(
		qr/LOG:  conmgr "good" connected from 127\.0\.0\.1:\d+\n[^\n]*DETAIL:  Protocol 1\.0, authenticated, heartbeat interval 1000 ms/,
		$offset),
	'the connection is logged as authenticated');

# a second connection is challenged with a fresh nonce
my $fresh = CmWatchdog::Peer->connect($wdport);
my ($w2, $nc2, $ns2) =
  $fresh->authenticate(secret => $secret1, %hb, name => 'fresh');
welcomed_ok($w2, $secret1, $nc2, $ns2, 'second peer');
ok(defined $ns2 && $ns2 ne $ns, 'each connection gets a fresh challenge');
$fresh->goodbye;
ok($fresh->wait_closed, 'the second peer leaves');
$fresh->close;

# --- the wrong secret ---
$offset = -s $node->logfile;
my $p = CmWatchdog::Peer->connect($wdport);
my $wrong_port = $p->local_port;
my ($m) = $p->authenticate(
	secret => 'not the secret at all, 0123456789',
	%hb, name => 'wrong');
refused_ok($p, $m, CmWire::REASON_AUTH,
	qr/^authentication failed: conmgr's proof does not match/,
	'wrong secret');
ok( $node->wait_for_log(
		qr/LOG:  refused heartbeat connection from conmgr "wrong" at 127\.0\.0\.1:$wrong_port\n[^\n]*DETAIL:  authentication failed: conmgr's proof does not match/,
		$offset),
	'the refusal is logged with the name, address and reason');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pgx_stat_watchdog WHERE conmgr_name = 'wrong'"),
	'0', 'the refused peer has no row in the view');

# the proof covers the timing values of the hello
$p = CmWatchdog::Peer->connect($wdport);
($c, $nc) = $p->challenge(%hb, name => 'retimed');
$p->send_proof(
	$p->conmgr_proof($secret1,
		hello => CmWire::hello_frame(%hb, name => 'retimed',
			auth => CmWire::AUTH_HMAC_SHA256, nonce => $nc,
			timeout => $hb{timeout} + 1)));
refused_ok($p, $p->read_msg, CmWire::REASON_AUTH,
	qr/^authentication failed/,
	'right secret, proof over other timing values');

# the proof covers the name and the nonce of the hello
$p = CmWatchdog::Peer->connect($wdport);
($c, $nc) = $p->challenge(%hb, name => 'renamed');
$p->send_proof(
	$p->conmgr_proof($secret1,
		hello => CmWire::hello_frame(%hb, name => 'other',
			auth => CmWire::AUTH_HMAC_SHA256, nonce => $nc)));
refused_ok($p, $p->read_msg, CmWire::REASON_AUTH,
	qr/^authentication failed/,
	'right secret, proof over another name');
$p = CmWatchdog::Peer->connect($wdport);
($c, $nc) = $p->challenge(%hb, name => 'swapped');
$p->send_proof(
	$p->conmgr_proof($secret1,
		hello => CmWire::hello_frame(%hb, name => 'swapped',
			auth => CmWire::AUTH_HMAC_SHA256, nonce => $c->{nonce})));
refused_ok($p, $p->read_msg, CmWire::REASON_AUTH,
	qr/^authentication failed/,
	'right secret, nonces swapped');
ok(beat(), 'the authenticated peer is still answered');

# --- no authentication, or an unknown method ---
$offset = -s $node->logfile;
$p = CmWatchdog::Peer->connect($wdport);
refused_ok($p, $p->hello(%hb, name => 'plain'), CmWire::REASON_AUTH,
	qr/^this server requires authentication \(watchdog\.secret_file is set\)/,
	'method 0');
ok( $node->wait_for_log(
		qr/LOG:  refused heartbeat connection from conmgr "plain" at 127\.0\.0\.1:\d+\n[^\n]*DETAIL:  this server requires authentication/,
		$offset),
	'the refusal of method 0 is logged');
$p = CmWatchdog::Peer->connect($wdport);
refused_ok(
	$p,
	$p->hello(
		%hb,
		name => 'method3',
		auth => 3,
		nonce => CmWatchdog::random_nonce()),
	CmWire::REASON_AUTH,
	qr/^authentication method 3 is not supported/,
	'method 3');
# method 1 authenticated the handshake only: refused, naming method 2
$p = CmWatchdog::Peer->connect($wdport);
refused_ok(
	$p,
	$p->hello(
		%hb,
		name => 'method1',
		auth => CmWire::AUTH_HANDSHAKE_ONLY,
		nonce => CmWatchdog::random_nonce()),
	CmWire::REASON_AUTH,
	qr/^authentication method 1 \(the handshake only\) is no longer accepted: this watchdog requires method 2/,
	'method 1');

# --- malformed handshakes are protocol violations ---
for my $len (16, 0)
{
	$offset = -s $node->logfile;
	$p = CmWatchdog::Peer->connect($wdport);
	my $port = $p->local_port;
	($m) = $p->challenge(%hb, name => "nonce$len",
		nonce => CmWatchdog::random_nonce($len));
	refused_ok($p, $m, CmWire::REASON_PROTOCOL,
		qr/nonce is not 32 bytes long/, "a $len-byte nonce with method 2");
	ok( $node->wait_for_log(
			qr/LOG:  invalid heartbeat message from 127\.0\.0\.1:$port\n[^\n]*DETAIL:  the hello's nonce is not 32 bytes long\./,
			$offset),
		"the $len-byte nonce is logged as a protocol violation");
}

$p = CmWatchdog::Peer->connect($wdport);
$p->send_proof('x' x 32);
refused_ok($p, $p->read_msg, CmWire::REASON_PROTOCOL,
	qr/proof without a challenge/, 'a proof before any hello');

$p = CmWatchdog::Peer->connect($wdport);
($c, $nc) = $p->challenge(%hb, name => 'twice');
ok($c && $c->{type} eq 'C', 'second-hello peer challenged');
$p->send_raw(
	CmWire::hello_frame(
		%hb,
		name => 'twice',
		auth => CmWire::AUTH_HMAC_SHA256,
		nonce => CmWatchdog::random_nonce()));
refused_ok($p, $p->read_msg, CmWire::REASON_PROTOCOL,
	qr/second hello/, 'a second hello after the challenge');

# proofs that are not 32 bytes: empty, longer than the protocol allows,
# shorter than a proof
for my $case ([ 0, qr/empty/ ], [ 33, qr/longer than the protocol allows/ ])
{
	my ($len, $re) = @$case;
	$p = CmWatchdog::Peer->connect($wdport);
	($c) = $p->challenge(%hb, name => "proof$len");
	$p->send_proof('p' x $len);
	refused_ok($p, $p->read_msg, CmWire::REASON_PROTOCOL, $re,
		"a $len-byte proof");
}
$p = CmWatchdog::Peer->connect($wdport);
($c, $nc) = $p->challenge(%hb, name => 'proof16');
# the first half of the right proof
$p->send_proof(substr($p->conmgr_proof($secret1), 0, 16));
$m = $p->read_msg;
ok($m && $m->{type} eq 'X', 'a 16-byte proof: refused');
ok($p->wait_closed, 'a 16-byte proof: connection closed');
is($m && $m->{reason}, CmWire::REASON_PROTOCOL,
	'a 16-byte proof: refused as a protocol violation');
$p->close;

# a proof after the welcome, sealed: a protocol violation, the peer is lost
$offset = -s $node->logfile;
my $late = CmWatchdog::Peer->connect($wdport);
my ($lw, $lnc, $lns) =
  $late->authenticate(secret => $secret1, %hb, name => 'late-proof');
welcomed_ok($lw, $secret1, $lnc, $lns, 'late-proof peer');
$late->send_frame(CmWire::proof_frame('x' x 32));
$m = $late->read_msg;
is($m && $m->{reason}, CmWire::REASON_PROTOCOL,
	'a proof after the welcome: refused as a protocol violation');
ok($late->wait_closed, 'a proof after the welcome: connection closed');
ok( $node->wait_for_lost('late-proof', qr/protocol violation/, $offset),
	'a proof after the welcome: the peer is lost');
$late->close;

# the worker keeps serving
ok(beat(), 'the authenticated peer is still answered');
$offset = -s $node->logfile;
$p = CmWatchdog::Peer->connect($wdport);
my ($pw, $pnc, $pns) =
  $p->authenticate(secret => $secret1, %hb, name => 'after-violations');
welcomed_ok($pw, $secret1, $pnc, $pns, 'a peer after the violations');
ok( $node->wait_for_log(
		qr/\[$worker_pid\] LOG:  conmgr "after-violations" connected from/,
		$offset),
	'welcomed by the watchdog worker that started with the server');
$p->goodbye;
$p->wait_closed;
$p->close;

# --- an authenticated peer that drops its connection is lost ---
$offset = -s $node->logfile;
$p = CmWatchdog::Peer->connect($wdport);
my ($dw, $dnc, $dns) =
  $p->authenticate(secret => $secret1, %hb, name => 'dropper');
welcomed_ok($dw, $secret1, $dnc, $dns, 'dropping peer');
ok($p->heartbeat(1), 'dropping peer: its heartbeat is answered');
$p->close;
ok( $node->wait_for_lost('dropper', qr/connection closed without a goodbye/, $offset),
	'an authenticated peer that closes without goodbye is lost');
ok( $node->wait_for_view_count(
		"conmgr_name = 'dropper' AND state = 'terminated' AND authenticated",
		1),
	'its row stays as terminated and authenticated');

# --- a peer that closes before using its welcome is not lost: conmgr
# gave up its handshake and answers for no session ---
$offset = -s $node->logfile;
$p = CmWatchdog::Peer->connect($wdport);
my ($gw) = $p->authenticate(secret => $secret1, %hb, name => 'gave-up');
ok($gw && $gw->{type} eq 'W', 'gave-up peer welcomed');
$p->close;
ok($node->wait_for_view_count("conmgr_name = 'gave-up'", 0),
	'a peer gone before its first frame leaves no row');
ok(!$node->log_contains(qr/"gave-up" at .* lost/, $offset),
	'and is not declared lost');

# --- a challenge never answered ---
$offset = -s $node->logfile;
my $silent = CmWatchdog::Peer->connect($wdport);
my $silent_port = $silent->local_port;
my $t0 = time();
($c) = $silent->challenge(%hb, name => 'silent');
ok($c && $c->{type} eq 'C', 'silent peer challenged');
my $closed = $silent->wait_closed;
my $elapsed = time() - $t0;
ok($closed, 'a peer that never answers the challenge is closed');
is($silent->{last} && $silent->{last}{reason},
	CmWire::REASON_PROTOCOL, 'with a protocol refusal');
cmp_ok($elapsed, '>=', $hello_timeout / 1000 - 0.05,
	'not before watchdog.hello_timeout');
cmp_ok($elapsed, '<=', $hello_timeout / 1000 + $margin,
	'within watchdog.hello_timeout + margin');
ok( $node->wait_for_log(
		qr/LOG:  heartbeat connection from 127\.0\.0\.1:$silent_port did not answer the authentication challenge within $hello_timeout ms/,
		$offset),
	'the timeout is logged');
$silent->close;
ok(beat(), 'the authenticated peer is still answered');

# --- reloads ---
# a new secret in the same file; hello_timeout is raised so that a reload
# fits between a challenge and its proof (below)
CmNode::write_secret_file($file1, "$secret2\r\n");
reload_with(
	["ALTER SYSTEM SET watchdog.hello_timeout = '30s'"],
	qr/LOG:  watchdog: heartbeat authentication is on, with the secret of "\Q$file1\E"/,
	'a changed secret is logged at the reload');
$p = CmWatchdog::Peer->connect($wdport);
($m) = $p->authenticate(secret => $secret1, %hb, name => 'old-secret');
refused_ok($p, $m, CmWire::REASON_AUTH, qr/^authentication failed/,
	'the old secret after the change');
$p = CmWatchdog::Peer->connect($wdport);
my ($nw, $nnc, $nns) =
  $p->authenticate(secret => $secret2, %hb, name => 'new-secret');
welcomed_ok($nw, $secret2, $nnc, $nns, 'the new secret');
$p->goodbye;
$p->wait_closed;
$p->close;
ok(beat(), 'the peer welcomed with the old secret is still answered');
is( $node->safe_psql('postgres',
		"SELECT authenticated, state FROM pgx_stat_watchdog WHERE conmgr_name = 'good'"),
	't|active',
	'and still shown as authenticated');

# a world-readable file: refused, the previous secret stays
my $world =
  CmNode::write_secret_file("$dir/world", "$secret3\n", 0644);
reload_with(
	["ALTER SYSTEM SET watchdog.secret_file = '$world'"],
	qr/WARNING:  watchdog: secret file "\Q$world\E" has group or world access \(mode 0644\)[^\n]*\n[^\n]*DETAIL:  The secret read from "\Q$file1\E" stays in force\./,
	'a world-readable secret file is refused with a WARNING at the reload');
$p = CmWatchdog::Peer->connect($wdport);
my ($kw, $knc, $kns) =
  $p->authenticate(secret => $secret2, %hb, name => 'kept-secret');
welcomed_ok($kw, $secret2, $knc, $kns, 'the previous secret');
$p->goodbye;
$p->wait_closed;
$p->close;
$p = CmWatchdog::Peer->connect($wdport);
($m) = $p->authenticate(secret => $secret3, %hb, name => 'world-secret');
refused_ok($p, $m, CmWire::REASON_AUTH, qr/^authentication failed/,
	'the secret of the world-readable file');

# a relative path is relative to the data directory
CmNode::write_secret_file($node->data_dir . '/wd_secret', $secret4);
reload_with(
	["ALTER SYSTEM SET watchdog.secret_file = 'wd_secret'"],
	qr/LOG:  watchdog: heartbeat authentication is on, with the secret of "wd_secret"/,
	'a secret file relative to the data directory is read');
$p = CmWatchdog::Peer->connect($wdport);
my ($rw, $rnc, $rns) =
  $p->authenticate(secret => $secret4, %hb, name => 'relative');
welcomed_ok($rw, $secret4, $rnc, $rns, 'the secret of the relative file');
$p->goodbye;
$p->wait_closed;
$p->close;

# authentication switched off between a challenge and its proof
my $mid = CmWatchdog::Peer->connect($wdport);
($c, $nc) = $mid->challenge(%hb, name => 'midway');
ok($c && $c->{type} eq 'C', 'midway peer challenged');
reload_with(
	["ALTER SYSTEM SET watchdog.secret_file = ''"],
	qr/LOG:  watchdog: heartbeat authentication is off/,
	'switching authentication off is logged');
$mid->send_proof($mid->conmgr_proof($secret4));
refused_ok($mid, $mid->read_msg, CmWire::REASON_AUTH,
	qr/authentication settings changed/,
	'a proof that arrives after authentication was switched off');

# without a secret (and with watchdog.insecure_no_authentication):
# method 0 welcomed, method 2 refused
$offset = -s $node->logfile;
$p = CmWatchdog::Peer->connect($wdport);
$m = $p->hello(%hb, name => 'open');
ok($m && $m->{type} eq 'W', 'without a secret, method 0 is welcomed');
is($m && $m->{proof_len}, 0, 'with an empty proof');
is( $node->safe_psql('postgres',
		"SELECT authenticated FROM pgx_stat_watchdog WHERE conmgr_name = 'open'"),
	'f', 'and shown as not authenticated');
ok( $node->wait_for_log(
		qr/LOG:  conmgr "open" connected from 127\.0\.0\.1:\d+\n[^\n]*DETAIL:  Protocol 1\.0, not authenticated,/,
		$offset),
	'the connection is logged as not authenticated');
$p->goodbye;
$p->wait_closed;
$p->close;
$p = CmWatchdog::Peer->connect($wdport);
($m) = $p->authenticate(secret => $secret4, %hb, name => 'wants-auth');
refused_ok($p, $m, CmWire::REASON_AUTH,
	qr/^conmgr asks for authentication method 2, but this server has no watchdog\.secret_file/,
	'without a secret, method 2');
ok(beat(), 'the peer authenticated at the start is still answered');
is( $node->safe_psql('postgres',
		"SELECT authenticated FROM pgx_stat_watchdog WHERE conmgr_name = 'good'"),
	't', 'and still shown as authenticated');

is($missed, 0, "every one of $seq heartbeats of the first peer was answered");
is($node->postmaster_start_time(), $start_time,
	'the postmaster never restarted');
my $log = slurp_file($node->logfile);
my $starts = () = $log =~ /watchdog started:/g;
is($starts, 1, 'the watchdog worker started once and kept running');
unlike($log, qr/terminating any other active server processes/,
	'no crash recovery');
unlike($log, qr/(was terminated by signal|exited with exit code)/,
	'no worker died');
$good->close;
$node->stop;

# --- a server that starts with an unusable secret file ---
my $bad = "$dir/bad_secret";
my $node2 = CmNode->create('authbad',
	conf => "watchdog.secret_file = '$bad'\n");
my $wdport2 = $node2->watchdog_port;
$node2->start;
$node2->safe_psql('postgres', 'CREATE EXTENSION watchdog');
ok( $node2->wait_for_log(
		qr/WARNING:  watchdog: could not open secret file "\Q$bad\E": No such file or directory\n[^\n]*DETAIL:  Every conmgr is refused until the file can be read/
	),
	'a missing secret file at start is a WARNING');

# Both methods are refused; returns nothing, asserts.
sub everyone_refused
{
	my ($secret, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $p0 = CmWatchdog::Peer->connect($wdport2);
	refused_ok($p0, $p0->hello(%hb, name => 'plain'),
		CmWire::REASON_AUTH, qr/could not read its secret file/,
		"$what, method 0");
	my $p1 = CmWatchdog::Peer->connect($wdport2);
	my ($m1) = $p1->authenticate(secret => $secret, %hb, name => 'auth');
	refused_ok($p1, $m1, CmWire::REASON_AUTH,
		qr/could not read its secret file/, "$what, method 2");
}
everyone_refused($secret5, 'missing secret file');
is($node2->safe_psql('postgres', 'SELECT count(*) FROM pgx_stat_watchdog'),
	'0', 'nobody in the view');

# the file appears but is world-readable: still no secret
CmNode::write_secret_file($bad, $secret5, 0644);
$offset = -s $node2->logfile;
$node2->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok( $node2->wait_for_log(
		qr/WARNING:  watchdog: secret file "\Q$bad\E" has group or world access \(mode 0644\)[^\n]*\n[^\n]*DETAIL:  Every conmgr is refused until the file can be read/,
		$offset),
	'a world-readable secret file at a reload without a previous secret is a WARNING');
everyone_refused($secret5, 'world-readable secret file');

# fixed: a peer with the secret is welcomed
chmod(0600, $bad) or die "could not chmod \"$bad\": $!";
$offset = -s $node2->logfile;
$node2->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok( $node2->wait_for_log(
		qr/LOG:  watchdog: heartbeat authentication is on, with the secret of "\Q$bad\E"/,
		$offset),
	'the fixed secret file is read at the reload');
$p = CmWatchdog::Peer->connect($wdport2);
my ($fw, $fnc, $fns) =
  $p->authenticate(secret => $secret5, %hb, name => 'fixed');
welcomed_ok($fw, $secret5, $fnc, $fns, 'after the fix');
is( $node2->safe_psql('postgres',
		"SELECT authenticated FROM pgx_stat_watchdog WHERE conmgr_name = 'fixed'"),
	't', 'shown as authenticated');
my $p0 = CmWatchdog::Peer->connect($wdport2);
refused_ok($p0, $p0->hello(%hb, name => 'plain'), CmWire::REASON_AUTH,
	qr/^this server requires authentication/,
	'after the fix, method 0');
$p->goodbye;
$p->wait_closed;
$p->close;
$node2->stop;

done_testing();
