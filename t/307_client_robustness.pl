
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library: what the application, libpq and fork() do behind the
# library's back.
#
#  - The application closes PQcmSocket() (or the library's duplicate of
#    the SQL socket) and the number is reused at once: the library neither
#    reads nor closes the socket that now has it, and the connection fails
#    naming the cause.
#  - A session ends while libpq still holds the connection object (the
#    server terminates it, or libpq gives up on it): no descriptor of the
#    process keeps it open until PQfinish(), so a backend that libpq left
#    behind exits and releases its locks.
#  - fork() with the watcher running: the parent keeps working and gets its
#    notices; the child leaves the inherited connection alone and connects
#    through conmgr itself; a fork while another thread holds one of the
#    library's locks does not leave the child deadlocked.
#  - The exchange of libpq's connection objects: usable sizes that differ
#    by a few bytes are accepted; a libpq whose objects cannot be exchanged
#    is refused, the library says so once and passes everything to libpq.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CmClient;
use CmProg;

my $node   = CmClient::plain_node('primary');
my $pgport = $node->port;
$node->safe_psql('postgres', 'CREATE TABLE pqcm_locked (i int)');

my $fake   = CmClient::fake_for($node);
my $cmport = $fake->{port};
my $ci     = "host=localhost port=$cmport dbname=postgres";
my $tool   = CmProg::tool();
my $tmp    = PostgreSQL::Test::Utils::tempdir();
my $cause  = qr/the conmgr socket was closed by the application/;

# Run a background tool invocation until it has printed ready=1 and its
# backend is registered with the fake conmgr; returns the handle.
sub start_registered
{
	my ($name, @args) = @_;
	my $h = CmClient::start_bg($tool, @args);
	CmClient::wait_output($h, qr/^ready=1$/m, "$name: connected through conmgr");
	my ($pid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
	CmClient::wait_output($fake, qr/register pid=$pid /, "$name: registered");
	return $h;
}

### The application closes PQcmSocket() and the number is reused

for my $how ('calls', 'watcher')
{
	my ($rc, $out, $err) =
	  CmClient::run_tool('cmclose', $ci, $how eq 'watcher' ? ('watcher') : ());
	is($rc, 0, "closed PQcmSocket(), $how: the program ran") or diag($out . $err);
	like($out, qr/^reused=1$/m, "closed PQcmSocket(), $how: the number was reused");
	like($out, qr/^other_status=OK$/m, "closed PQcmSocket(), watcher: a second connection woke it")
	  if $how eq 'watcher';
	like($out, qr/^status_after=BAD$/m, "closed PQcmSocket(), $how: the connection is bad");
	like($out, qr/^query=PGRES_FATAL_ERROR$/m, "closed PQcmSocket(), $how: a query fails");
	like($out, qr/^error=.*$cause/m, "closed PQcmSocket(), $how: the error names the cause");
	unlike($out, qr/forged by the application/,
		"closed PQcmSocket(), $how: the socket that reused the number was not read");
	like($out, qr/^cmsocket_after=-1$/m, "closed PQcmSocket(), $how: PQcmSocket() is -1 now");
	like($out, qr/^foreign_open=1$/m,
		"closed PQcmSocket(), $how: PQfinish() did not close the application's socket");
	like($out, qr/^foreign_intact=1$/m,
		"closed PQcmSocket(), $how: what was waiting on it is still there");
}

### The application closes the library's duplicate of the SQL socket

{
	my $h = start_registered('closed duplicate', 'sqlclose', $ci);
	like($h->{out}, qr/^dup_found=1$/m, 'closed duplicate: found and closed by the application');
	CmClient::signal_bg($fake, 'USR1');
	CmClient::wait_output($h, qr/^foreign_works=/m, 'closed duplicate: the notice was handled');
	CmClient::finish_bg($h);
	like($h->{out}, qr/^final_status=BAD$/m, 'closed duplicate: the connection failed');
	like($h->{out}, qr/^error=conmgr reported a failure of the instance/m,
		'closed duplicate: with conmgr\'s reason');
	like($h->{out}, qr/^foreign_open=1$/m, 'closed duplicate: the application\'s socket stays open');
	like($h->{out}, qr/^foreign_works=1$/m,
		'closed duplicate: and was not shut down (data goes both ways)');
}

### A session that libpq let go of does not outlive it

# Waits up to timeout_default for a query to return 't'.
sub server_shows
{
	my ($sql) = @_;
	return $node->poll_query_until('postgres', $sql);
}

my $ncase = 0;
for my $how ('terminate', 'oom')
{
	my $go = "$tmp/release" . ++$ncase;
	my $h  = CmClient::start_bg($tool, 'release', $ci, $how, 'pqcm_locked', $go);
	CmClient::wait_output($h, qr/^locked=1$/m, "$how: the session holds a lock");
	my ($pid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
	CmClient::wait_output($fake, qr/register pid=$pid /, "$how: registered");
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)") if $how eq 'terminate';
	CmClient::wait_output($h, qr/^reported=1$/m, "$how: libpq reported the error");
	like($h->{out}, qr/^reported_status=BAD$/m, "$how: the connection is bad");
	like($h->{out}, qr/^error=.*(cannot allocate memory|lost synchronization)/m,
		'oom: libpq gave up on the session')
	  if $how eq 'oom';
	like($h->{out}, qr/^server_sockets=0$/m,
		"$how: no descriptor of the process is connected to the server any more");
	ok(server_shows("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
		"$how: the backend is gone before PQfinish()");
	ok( server_shows(
			"SELECT count(*) = 0 FROM pg_locks WHERE relation = 'pqcm_locked'::regclass"),
		"$how: its lock is released before PQfinish()");
	open my $fh, '>', $go or die "cannot create $go: $!";
	close $fh;
	CmClient::wait_output($h, qr/^finished=1$/m, "$how: PQfinish() afterwards");
	CmClient::finish_bg($h);
}

### fork() with the watcher running

{
	my $h = CmClient::start_bg($tool, 'forkwatch', $ci);
	CmClient::wait_output($h, qr/^parent_ready=1$/m, 'fork: the parent is running its query');
	CmClient::wait_output($h, qr/^child_ready=1$/m, 'fork: the child connected');
	my ($ppid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
	my ($cpid) = $h->{out} =~ /^child_backend_pid=(\d+)$/m;
	CmClient::wait_output($fake, qr/register pid=$ppid /, 'fork: the parent\'s session is registered');
	CmClient::wait_output($fake, qr/register pid=$cpid /, 'fork: the child\'s session is registered');
	like($h->{out}, qr/^parent_works=1$/m, 'fork: the parent\'s connection works after fork()');
	like($h->{out}, qr/^child_inherited_cmsocket=-1$/m,
		'fork: in the child, the inherited connection has no conmgr socket');
	like($h->{out}, qr/^child_own_cmsocket=yes$/m, 'fork: the child connects through conmgr itself');
	CmClient::signal_bg($fake, 'USR1');
	CmClient::wait_output($h, qr/^child_exit=/m, 'fork: both queries returned');
	CmClient::finish_bg($h);
	like($h->{out}, qr/^parent_result=PGRES_FATAL_ERROR$/m, 'fork: the parent\'s query was interrupted');
	like($h->{out}, qr/^parent_error=conmgr reported a failure of the instance/m,
		'fork: by the notice of its conmgr socket');
	like($h->{out}, qr/^child_result=PGRES_FATAL_ERROR$/m, 'fork: the child\'s query was interrupted');
	like($h->{out}, qr/^child_error=conmgr reported a failure of the instance/m,
		'fork: by the notice of the child\'s own conmgr socket');
	like($h->{out}, qr/^child_inherited_status=OK$/m,
		'fork: the child did not act on the inherited connection\'s notice');
	like($h->{out}, qr/^child_exit=0$/m, 'fork: the child exited normally');
}

{
	my ($rc, $out, $err) = CmClient::run_tool('forklock');
	is($rc, 0, 'fork while another thread holds a lock of the library: the child goes on')
	  or diag($out . $err);
	like($out, qr/^child_signal=0$/m, 'fork while a lock is held: the child was not stuck');
}

### The exchange of libpq's connection objects

# The library checks once, before its first connection request, that two
# fresh connection objects of this libpq can be exchanged; a preloaded
# malloc_usable_size() that lies makes the check see another layout.
my $shim = CmProg::client_test('odd_usable_size.so');
my $refusal =
  qr/libpqcm: this libpq's connection objects cannot be exchanged: connections go to libpq directly/;
for my $lie ('none', 'differ')
{
	# usable sizes that differ by a few bytes are what the allocator does
	local $ENV{LD_PRELOAD}      = $shim;
	local $ENV{ODD_USABLE_SIZE} = $lie;
	my ($rc, $out, $err) = CmClient::run_tool('threads', '2', $ci);
	is($rc, 0, "usable sizes $lie: ten connections") or diag($out . $err);
	like($out, qr/^via_conmgr=10$/m, "usable sizes $lie: all through conmgr, half of them asynchronous");
	unlike($err, $refusal, "usable sizes $lie: nothing said");
}
for my $lie ('half', 'zero')
{
	local $ENV{LD_PRELOAD}      = $shim;
	local $ENV{ODD_USABLE_SIZE} = $lie;
	my ($logs, $rc, $out, $err) = CmClient::between(
		sub { CmClient::run_tool('threads', '1', "$ci sslmode=disable gssencmode=disable") },
		$fake);
	like($out, qr/^via_conmgr=0$/m, "objects that cannot be exchanged ($lie): nothing through conmgr");
	my @said = $err =~ /$refusal/g;
	is(scalar @said, 1, "objects that cannot be exchanged ($lie): said once on stderr")
	  or diag($err);
	unlike($logs->[0], qr/^route /m, "objects that cannot be exchanged ($lie): conmgr was not asked");
	my @startups = $logs->[0] =~ /^startup code=196608$/mg;
	is(scalar @startups, 5,
		"objects that cannot be exchanged ($lie): libpq took every connection to that port itself");
}

done_testing();
