
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Client library: the error an application reads names why its connection
# ended, whichever message it received first.  A backend ended by a clean
# stop (or by pg_terminate_backend) says why before it closes; when the
# connection is idle libpq gives that text to the notice receiver only,
# and the application's next call reports a bare "server closed the
# connection unexpectedly".  The library keeps those last words and
# PQerrorMessage() carries them, after conmgr's reason when conmgr's
# notice arrived.
#
# Each order of arrival is lined up deterministically: the application
# waits for a go-file, the test delivers the server's FATAL and/or the
# fake conmgr's notice and waits until each has arrived, then lets the
# application look.  Live cases (the application polling while the server
# stops with -m fast and -m immediate) cover idle programs polling
# PQsocket(), PQcmSocket(), both, a program whose next call is PQexec, and
# unmodified psql and psycopg2 programs with the library preloaded.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmClient;
use CmProg;

my $node   = CmClient::plain_node('primary');
my $pgport = $node->port;
my $fake   = CmClient::fake_for($node);
my $cmport = $fake->{port};
my $ci     = "host=localhost port=$cmport dbname=postgres";
my $tool   = CmProg::tool();
my $tmp    = PostgreSQL::Test::Utils::tempdir();

my $conmgr_re = qr/conmgr reported a failure of the instance/;
my $fatal_re  = qr/terminating connection due to administrator command/;
my $bare_re   = qr/\Aserver closed the connection unexpectedly/;
my $ncase     = 0;

sub backend_gone
{
	my ($pid) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid");
}

# Number of "notice fd=" lines the fake conmgr has printed.
sub notices_sent
{
	eval { $fake->{harness}->pump_nb; };
	my @n = $fake->{out} =~ /^notice fd=/mg;
	return scalar @n;
}

# Start an idle application; returns (handle, backend pid, go-file).
sub start_idle
{
	my ($how, $name, %env) = @_;
	my $go = "$tmp/go" . ++$ncase;
	local @ENV{ keys %env } = values %env;
	my $h = CmClient::start_bg($tool, 'idle', $ci, $how, $go);
	CmClient::wait_output($h, qr/^ready=1$/m, "$name: connected through conmgr");
	my ($pid) = $h->{out} =~ /^backend_pid=(\d+)$/m;
	CmClient::wait_output($fake, qr/register pid=$pid /, "$name: registered");
	return ($h, $pid, $go);
}

# Let the application look, and return what it printed.
sub go
{
	my ($h, $go, $name) = @_;
	open my $fh, '>', $go or die "cannot create $go: $!";
	close $fh;
	CmClient::wait_output($h, qr/^final_status=/m, "$name: the application returned");
	CmClient::finish_bg($h);
	return $h->{out};
}

sub error_of
{
	my ($out) = @_;
	my ($e) = $out =~ /^error=(.*?)^final_status=/ms;
	return $e // '';
}

# Deterministic orders of arrival, for each way of waiting.
foreach my $how (qw(pqsocket cmsocket both exec))
{
	foreach my $watcher (qw(on off))
	{
		my %env = (PGCONMGR_WATCHER => $watcher);
		my $n = "$how, watcher $watcher";

		my ($h, $pid, $go, $e);

		# the server's FATAL only (conmgr never says anything; a program
		# that watches only PQcmSocket() has nothing to wake it then)
		if ($how ne 'cmsocket')
		{
			($h, $pid, $go) = start_idle($how, "$n, FATAL only", %env);
			$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
			ok(backend_gone($pid), "$n, FATAL only: the backend ended");
			$e = error_of(go($h, $go, "$n, FATAL only"));
			like($e, $fatal_re, "$n, FATAL only: the error carries the server's reason");
			unlike($e, $bare_re, "$n, FATAL only: not a bare 'server closed the connection'");
		}

		# conmgr's notice first, then the server's FATAL
		my $before = notices_sent();
		($h, $pid, $go) = start_idle($how, "$n, notice then FATAL", %env);
		CmClient::signal_bg($fake, 'USR1');
		my $t = time;
		usleep(10_000) while notices_sent() == $before && time - $t < 30;
		cmp_ok(notices_sent(), '>', $before, "$n, notice then FATAL: notice sent");
		$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
		ok(backend_gone($pid), "$n, notice then FATAL: the backend ended");
		$e = error_of(go($h, $go, "$n, notice then FATAL"));
		like($e, qr/\A$conmgr_re/, "$n, notice then FATAL: conmgr's reason comes first");
		unlike($e, $bare_re, "$n, notice then FATAL: not a bare 'server closed'");

		# the server's FATAL first, then conmgr's notice
		$before = notices_sent();
		($h, $pid, $go) = start_idle($how, "$n, FATAL then notice", %env);
		$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
		ok(backend_gone($pid), "$n, FATAL then notice: the backend ended");
		CmClient::signal_bg($fake, 'USR1');
		$t = time;
		usleep(10_000) while notices_sent() == $before && time - $t < 30;
		cmp_ok(notices_sent(), '>', $before, "$n, FATAL then notice: notice sent");
		$e = error_of(go($h, $go, "$n, FATAL then notice"));
		like($e, qr/$conmgr_re|$fatal_re/, "$n, FATAL then notice: the error names the cause");
		unlike($e, $bare_re, "$n, FATAL then notice: not a bare 'server closed'");
		if ($how ne 'exec')
		{
			# both had arrived before the application looked: both are named
			like($e, qr/\A$conmgr_re.*$fatal_re/s,
				"$n, FATAL then notice: conmgr's reason, then the server's");
		}
	}
}

# Live: the application waits while the server stops.  conmgr (the fake)
# stays silent, so the server's own words are all there is to read.
foreach my $mode (qw(fast immediate))
{
	my $want = $mode eq 'fast' ? $fatal_re : qr/terminating connection due to immediate shutdown command/;
	my @apps;
	foreach my $how (qw(pqsocket both))
	{
		my $h = CmClient::start_bg($tool, 'idle', $ci, $how);
		CmClient::wait_output($h, qr/^ready=1$/m, "-m $mode, $how: connected");
		push @apps, [ $how, $h ];
	}
	# a program whose next call is PQexec, after the stop
	my ($xh, $xpid, $xgo) = start_idle('exec', "-m $mode, exec");

	# a program blocked in PQexec (pg_sleep) when the server stops
	my $sh = CmClient::start_bg($tool, 'sync', $ci, 'SELECT pg_sleep(600)');
	CmClient::wait_output($sh, qr/^ready=1$/m, "-m $mode, blocked in PQexec: connected");
	my ($spid) = $sh->{out} =~ /^backend_pid=(\d+)$/m;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $spid AND wait_event = 'PgSleep'");

	# unmodified programs, preloaded: psql at its prompt, psycopg2 waiting
	# on its socket
	my ($pin, $pout, $perr) = ('', '', '');
	my $psql;
	{
		local $ENV{LD_PRELOAD} = 'libpqcm.so.1';
		$psql = IPC::Run::start(
			[ 'psql', '-X', '-v', 'ON_ERROR_STOP=0', '-d', $ci ],
			'<', \$pin, '>', \$pout, '2>', \$perr);
	}
	$pin .= "SELECT 'psql' || 'ready';\n";
	my $t = time;
	while ($pout !~ /psqlready/ && time - $t < 60)
	{
		$psql->pump_nb;
		usleep(20_000);
	}
	like($pout, qr/psqlready/, "-m $mode, psql: connected through conmgr");

	my $py;
	SKIP:
	{
		skip 'python3-psycopg2 is not installed', 1
		  if system('python3', '-c', 'import psycopg2') != 0;
		my $script = <<'EOF';
import sys, select, psycopg2
c = psycopg2.connect(sys.argv[1])
c.autocommit = True
print('ready=1', flush=True)
while True:
    select.select([c.fileno()], [], [], 120)
    try:
        c.poll()
    except psycopg2.Error as e:
        print('error=%s' % str(e).replace('\n', ' | '), flush=True)
        break
print('final_status=done', flush=True)
EOF
		local $ENV{LD_PRELOAD} = 'libpqcm.so.1';
		$py = CmClient::start_bg('python3', '-c', $script, $ci);
		CmClient::wait_output($py, qr/^ready=1$/m, "-m $mode, psycopg2: connected");
	}

	$node->stop($mode);

	foreach my $a (@apps)
	{
		my ($how, $h) = @$a;
		CmClient::wait_output($h, qr/^final_status=/m, "-m $mode, $how: the application returned");
		CmClient::finish_bg($h);
		my $e = error_of($h->{out});
		like($e, $want, "-m $mode, $how: the error names the shutdown");
		unlike($e, $bare_re, "-m $mode, $how: not a bare 'server closed the connection'");
	}
	my $e = error_of(go($xh, $xgo, "-m $mode, exec"));
	like($e, $want, "-m $mode, exec: the error names the shutdown");

	CmClient::wait_output($sh, qr/^final_status=/m, "-m $mode, blocked in PQexec: returned");
	CmClient::finish_bg($sh);
	$e = error_of($sh->{out});
	like($e, $want, "-m $mode, blocked in PQexec: the error names the shutdown");
	unlike($e, $bare_re, "-m $mode, blocked in PQexec: not a bare 'server closed the connection'");

	$pin .= "SELECT 1;\n\\q\n";
	eval { $psql->finish; };
	like($perr, $want, "-m $mode, psql: the error names the shutdown")
	  or diag("psql stderr: $perr");

	if ($py)
	{
		CmClient::wait_output($py, qr/^final_status=/m, "-m $mode, psycopg2: returned");
		CmClient::finish_bg($py);
		like($py->{out}, qr/^error=.*$want/m, "-m $mode, psycopg2: the error names the shutdown")
		  or diag("psycopg2: $py->{out} $py->{err}");
	}
	$node->start;
}

done_testing();
