
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Authenticated heartbeats seen from conmgr (secret_file in conmgr.conf):
# against fake watchdogs, conmgr answers the challenge with the right proof
# and refuses a watchdog that does not prove it holds the secret (saying
# goodbye, so that it is not taken for a lost host); against a real
# watchdog with watchdog.secret_file, the same secret is welcomed and
# routed, another secret or none is refused with a clear cause on both
# sides; secret-file errors stop conmgr from starting and fail a reload
# without changing anything.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmConmgr;
use CmNode;

my $tmp = PostgreSQL::Test::Utils::tempdir('secrets');

# Write a secret file with a mode; returns its path.
sub secret_file
{
	my ($name, $content, $mode) = @_;
	my $path = "$tmp/$name";
	unlink $path;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $content;
	close $fh;
	chmod($mode // 0600, $path) or die "chmod $path: $!";
	return $path;
}

my $secret_a = 'the first shared secret, long enough';
my $secret_b = 'another shared secret, also long enough';
my $file_a = secret_file('a', "$secret_a\n");
my $file_b = secret_file('b', "$secret_b\n");

# Wait until instance 0 has an error matching $re; returns it.
sub wait_error
{
	my ($cm, $re, $what) = @_;
	my $err;
	CmConmgr::wait_for(
		sub {
			my $i = $cm->instance(0);
			$err = $i->{error} // '';
			return $i->{state} && $i->{state} ne 'up' && $err =~ $re;
		},
		$what);
	return $err;
}

# --- fake watchdogs -------------------------------------------------------

# Start conmgr for one fake watchdog, with extra conmgr.conf parameters;
# returns the conmgr object.
sub conmgr_for
{
	my ($wd, %params) = @_;
	return CmConmgr->new(%params,
		instances => [ { host => '127.0.0.1', port => 5432, watchdog_port => $wd->port } ])->start;
}

{
	my $wd = CmConmgr::FakeWatchdog->new(attrs => 0, secret => $secret_a);
	my $cm = conmgr_for($wd, secret_file => "'$file_a'");
	ok($cm->wait_up(0), 'same secret: the instance is up');
	like($wd->events, qr/hello .* auth=2 nonce=32/, 'the hello asks for HMAC-SHA-256 with a 32-byte nonce');
	like($wd->events, qr/^proof ok$/m, "conmgr's proof is right");
	unlike($wd->events, qr/^proof bad$/m, 'and never wrong');
	is($cm->instance(0)->{authenticated}, 'true', 'cm_ctl status --json: authenticated');
	my (undef, $text) = $cm->ctl('status');
	like($text, qr/up since [^\n]*, authenticated/, 'cm_ctl status: authenticated');
	ok($cm->wait_log(
			qr/heartbeat authentication is on, with the secret of "\Q$file_a\E"/),
		'conmgr logs that authentication is on');
	my $r = CmConmgr::App->connect($cm->port)->route('read-write');
	is($r->{type}, 'I', 'an authenticated instance is routed to');
	$wd->stop;
}

foreach my $case (
	[ 'bad-proof', qr/did not prove it holds the secret of secret_file/ ],
	[ 'no-challenge', qr/welcomed this conmgr without authenticating it/ ])
{
	my ($mode, $re) = @$case;
	my $wd = CmConmgr::FakeWatchdog->new(attrs => 0, secret => $secret_a, auth => $mode);
	my $cm = conmgr_for($wd, secret_file => "'$file_a'");
	my $err = wait_error($cm, $re, "$mode refused");
	like($err, $re, "$mode: the instance is not up, and status says why");
	ok(CmConmgr::wait_for(sub { $wd->events =~ /^goodbye reason=4 /m }, 'goodbye'),
		"$mode: conmgr says goodbye (reason authentication) before closing");
	ok($cm->wait_log(
			qr/could not establish the heartbeat connection: [^\n]*$re/),
		"$mode: logged with the cause");
	my $r = CmConmgr::App->connect($cm->port)->route('read-write');
	is($r->{type}, 'N', "$mode: nothing is routed to it");
	$wd->stop;
}

{
	# conmgr without a secret, a watchdog that requires one
	my $wd = CmConmgr::FakeWatchdog->new(attrs => 0, secret => $secret_a, auth => 'challenge');
	my $cm = conmgr_for($wd);
	my $err = wait_error($cm, qr/requires authentication: set secret_file/, 'challenge refused');
	like($err, qr/the watchdog requires authentication: set secret_file in conmgr\.conf/,
		'no secret_file: a challenge is answered by giving up, with the setting named');
	like($wd->events, qr/hello .* auth=0 nonce=0/, 'the hello did not ask for authentication');
	$wd->stop;
}

# --- a real watchdog --------------------------------------------------------

my $node = CmNode->create('authwd',
	conf => "watchdog.secret_file = '$file_a'\n");
my $wdport = $node->watchdog_port;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION watchdog');
my $pgport = $node->port;
my @inst = ({ host => '127.0.0.1', port => $pgport, watchdog_port => $wdport });

my $cm = CmConmgr->new(secret_file => "'$file_a'", instances => \@inst)->start;
my $port = $cm->port;
ok($cm->wait_up(0), 'real watchdog, same secret: up');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pgx_stat_watchdog WHERE state = 'active' AND authenticated"),
	'pgx_stat_watchdog shows the conmgr as authenticated');
my $r = CmConmgr::App->connect($port)->route('read-write');
is($r->{port}, $pgport, 'routed to the instance');

# another secret: refused on both sides
my $offset = -s $node->logfile;
my $cm_b = CmConmgr->new(secret_file => "'$file_b'", instances => \@inst)->start;
my $err = wait_error($cm_b, qr/authentication/, 'other secret refused');
like($err, qr/the watchdog refused the connection \(authentication\): authentication failed/,
	'another secret: conmgr is refused, and says so');
ok($node->wait_for_log(qr/refused heartbeat connection from conmgr .*\n.*DETAIL:  authentication failed/, $offset),
	'the server logs the failed authentication');

# no secret at all
my $cm_n = CmConmgr->new(instances => \@inst)->start;
$err = wait_error($cm_n, qr/authentication/, 'no secret refused');
like($err, qr/requires authentication \(watchdog\.secret_file is set\)/,
	'no secret_file: refused, the server names its setting');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pgx_stat_watchdog WHERE state = 'active'"),
	'1', 'only the authenticated conmgr holds a slot');

# --- reload ---------------------------------------------------------------

# a bad file at a reload: refused, nothing changes
my $world = secret_file('world', "$secret_b\n", 0644);
my $conf = $cm->conf;
(my $bad = $conf) =~ s/^secret_file = .*$/secret_file = '$world'/m;
$cm->conf($bad);
my ($rc, $out, $errout) = $cm->ctl('reload');
isnt($rc, 0, 'reload with a world-readable secret file fails');
like($out . $errout, qr/conmgr\.conf:\d+: secret_file: secret file "\Q$world\E" has group or world access \(mode 0644\)/,
	'the reload names file, line, parameter and problem');
is($cm->instance(0)->{state}, 'up', 'the instance stays up');

# a good new file: applies to the next heartbeat connection
(my $new = $conf) =~ s/^secret_file = .*$/secret_file = '$file_b'/m;
$cm->conf($new);
($rc, $out, $errout) = $cm->ctl('reload');
is($rc, 0, 'reload with another good secret file succeeds') or diag($out . $errout);
ok($cm->wait_log(
		qr/heartbeat authentication is on, with the secret of "\Q$file_b\E"/),
	'conmgr logs the new secret');
is($cm->instance(0)->{state}, 'up', 'the established heartbeat connection is kept');

# the server changes to the same secret; conmgr reconnects after a restart
$node->append_conf('postgresql.conf', "watchdog.secret_file = '$file_b'\n");
$node->restart;
ok($cm->wait_up(0), 'after the server restart, the new secret is welcomed');
is($cm->instance(0)->{authenticated}, 'true', 'and authenticated');

# --- configuration errors at start -----------------------------------------

sub start_fails
{
	my ($file, $re, $name) = @_;
	my $c = CmConmgr->new(secret_file => "'$file'", instances => \@inst);
	my $d = $c->dir;
	my ($rc, $out, $err) = $c->run;
	is($rc, 1, "$name: conmgr does not start");
	like($err, qr/conmgr\.conf:\d+: secret_file: $re/, "$name: message with file, line and parameter");
	ok(!-e "$d/conmgr.pid", "$name: no PID file left");
	return;
}

start_fails("$tmp/missing", qr/could not open secret file "[^"]*missing": No such file/, 'missing file');
start_fails(secret_file('short', "0123456789\n"), qr/secret in file "[^"]*short" is shorter than 16 bytes/,
	'short secret');
start_fails(secret_file('group', "$secret_a\n", 0640), qr/secret file "[^"]*group" has group or world access \(mode 0640\)/,
	'group-readable file');
start_fails($tmp, qr/secret file "\Q$tmp\E" is not a regular file/, 'a directory');

done_testing();
