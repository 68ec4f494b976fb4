
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

END
{
	for my $h (@children)
	{
		eval { $h->{harness}->kill_kill if $h->{harness}->pumpable; };
	}
}

1;
