
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

=pod

=head1 NAME

CmClient - helpers for the client library tests (t/3*.pl)

=head1 SYNOPSIS

  use CmClient;
  my $tool = CmClient::tool();                       # client/test/pqcm_tool
  my $fake = CmClient::start_fake($port, 'instance', "127.0.0.1:$pgport");
  CmClient::wait_output($fake, qr/register pid=(\d+)/, 'registered');
  my ($rc, $out, $err) = CmClient::run_tool('connect', $conninfo);

=head1 DESCRIPTION

The test driver client/test/pqcm_tool is built on demand (make -C
client/test) so that the tests also run from a fresh copy of the tree.
Background processes (fake conmgr, long-running tool invocations) are
started with IPC::Run and killed in an END block.

=cut

package CmClient;

use strict;
use warnings FATAL => 'all';

use Carp;
use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Utils;
use Test::More;

my @children;

sub topdir
{
	return $ENV{TESTDIR} || '.';
}

=item tool()

Path of the test driver, built first if needed.

=cut

sub tool
{
	my $dir  = topdir() . '/client/test';
	my $tool = "$dir/pqcm_tool";
	if (!-x $tool)
	{
		system('make', '-s', '-C', $dir, 'PQCM_LIBDIR=' . `pg_config --libdir` =~ s/\s+$//r) == 0
		  or croak "could not build $tool";
	}
	return $tool;
}

=item run_tool(ARGS...)

Run the driver to completion; returns (exit code, stdout, stderr).

=cut

sub run_tool
{
	my @cmd = (tool(), @_);
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($? >> 8, $out, $err);
}

=item start_bg(ARGV...)

Start a command in the background; returns a handle for wait_output().

=cut

sub start_bg
{
	my @cmd = @_;
	my $h   = { out => '', err => '' };
	$h->{harness} = IPC::Run::start(\@cmd, '<', \undef, '>', \$h->{out}, '2>', \$h->{err});
	push @children, $h;
	return $h;
}

=item start_fake(PORT, MODE, ARG)

Start client/test/fake_conmgr.pl and wait until it listens.

=cut

sub start_fake
{
	my ($port, $mode, $arg) = @_;
	my $h = start_bg($^X, topdir() . '/client/test/fake_conmgr.pl', $port, $mode,
		defined $arg ? $arg : ());
	wait_output($h, qr/listening port=$port/, "fake conmgr listens on $port");
	return $h;
}

=item wait_output(H, REGEX, NAME)

Poll a background process until its stdout matches REGEX, at most
timeout_default seconds; one test result.  Returns the match groups.

=cut

sub wait_output
{
	my ($h, $re, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		eval { $h->{harness}->pump_nb; };
		if (my @m = ($h->{out} =~ $re))
		{
			pass($name);
			return @m;
		}
		last if !$h->{harness}->pumpable && $h->{out} !~ $re;
		usleep(20_000);
	}
	fail($name);
	diag("stdout: $h->{out}\nstderr: $h->{err}");
	return;
}

=item finish_bg(H)

Wait for a background process to exit; returns its exit code.

=cut

sub finish_bg
{
	my $h = shift;
	eval { $h->{harness}->finish; };
	return $h->{harness}->result(0);
}

=item signal_bg(H, SIG)

=cut

sub signal_bg
{
	my ($h, $sig) = @_;
	$h->{harness}->signal($sig);
}

=item watchdog_node(NAME)

A started node with the watchdog preloaded on a free port
($node->{cm_watchdog_port}), listening on 127.0.0.1, able to stream.

=cut

sub watchdog_node
{
	my ($name) = @_;
	my $node  = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 1);
	add_watchdog_conf($node);
	$node->start;
	return $node;
}

sub add_watchdog_conf
{
	my ($node) = @_;
	my $wport = PostgreSQL::Test::Cluster::get_free_port();
	$node->{cm_watchdog_port} = $wport;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'watchdog'
watchdog.insecure_no_authentication = on
watchdog.port = $wport
watchdog.check_attr_interval = 200
listen_addresses = '127.0.0.1'
});
	return;
}

=item standby_of(PRIMARY, NAME)

A started streaming standby of PRIMARY with its own watchdog port.

=cut

sub standby_of
{
	my ($primary, $name) = @_;
	$primary->backup("${name}_backup");
	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, "${name}_backup", has_streaming => 1);
	add_watchdog_conf($standby);
	$standby->start;
	$primary->wait_for_catchup($standby, 'replay');
	return $standby;
}

=item start_conmgr(NAME, [NODES], PARAMS...)

Write a conmgr.conf naming NODES as instances 0, 1, ... and run conmgr -D
in the foreground.  Returns { dir, port, log, handle }.

=cut

sub start_conmgr
{
	my ($name, $nodes, %params) = @_;
	my $dir  = PostgreSQL::Test::Utils::tempdir("cm_$name");
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $conf = "port = $port\n";
	my $i    = 0;
	for my $n (@$nodes)
	{
		$conf .= "backend_host$i = '127.0.0.1'\nbackend_port$i = " . $n->port
		  . "\nwatchdog_port$i = $n->{cm_watchdog_port}\n";
		$i++;
	}
	$conf .= "$_ = $params{$_}\n" for sort keys %params;
	# heartbeats unauthenticated unless a secret is given: an explicit opt-in
	$conf .= "insecure_no_authentication = on\n"
	  unless $conf =~ /^\s*(secret_file|insecure_no_authentication)\s*=/m;
	open my $fh, '>', "$dir/conmgr.conf" or die "$dir/conmgr.conf: $!";
	print $fh $conf;
	close $fh;
	# only its owner may write it (conmgr refuses it otherwise), whatever the umask
	chmod 0600, "$dir/conmgr.conf";
	my $bindir = `pg_config --bindir`;
	chomp $bindir;
	my $bin = -x topdir() . '/conmgr/conmgr' ? topdir() . '/conmgr/conmgr' : "$bindir/conmgr";
	my $log = "$PostgreSQL::Test::Utils::log_path/conmgr_$name.log";
	my $h   = { out => '', err => '' };
	$h->{harness} = IPC::Run::start([ $bin, '-D', $dir ], '<', \undef, '>>', $log, '2>>', $log);
	push @children, $h;
	return { dir => $dir, port => $port, log => $log, handle => $h };
}

=item wait_connect(CONNINFO, REGEX, NAME)

Run "pqcm_tool connect CONNINFO SQL" until its output matches REGEX
(conmgr needs a moment to learn the attributes of its instances); one
test result.  Returns the last output.

=cut

sub wait_connect
{
	my ($conninfo, $sql, $re, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	my $out = '';
	while (time() < $deadline)
	{
		my ($rc, $o, $e) = run_tool('connect', $conninfo, $sql);
		$out = $o . $e;
		if ($rc == 0 && $out =~ $re)
		{
			pass($name);
			return $out;
		}
		usleep(100_000);
	}
	fail($name);
	diag($out);
	return $out;
}

END
{
	for my $h (@children)
	{
		eval { $h->{harness}->kill_kill if $h->{harness}->pumpable; };
	}
}

1;
