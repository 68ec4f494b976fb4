
=pod

=head1 NAME

CmTest - run test/programs/cm_app, an application of the client library,
and read what it printed

=head1 SYNOPSIS

  use CmTest;
  my $out = CmTest::run_app("host=localhost port=$cm->{port} target_session_attrs=read-write");

=cut

package CmTest;

use strict;
use warnings FATAL => 'all';

use CmProg;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep time);

=pod

=over

=item run_app(conninfo, [wait_seconds])

Run test/programs/cm_app and return its output as a hash of lines keyed by
their first word (connected, notice, after-notice, no-notice,
connect-failed), each a hash of key=value pairs; {raw} holds all output.

=cut

sub run_app
{
	my ($conninfo, $wait) = @_;
	my @cmd = (CmProg::program('cm_app'), $conninfo);
	push @cmd, '--wait-notice', $wait if defined $wait;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return parse_app_output($out . $err);
}

# Start cm_app in the background; returns (harness, \$out).
sub start_app
{
	my ($conninfo, $wait) = @_;
	my @cmd = (CmProg::program('cm_app'), $conninfo);
	push @cmd, '--wait-notice', $wait if defined $wait;
	my $out = '';
	my $h = IPC::Run::start(\@cmd, '>', \$out, '2>&1',
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($h, \$out);
}

# Pump a background cm_app until a line starting with $word appears.
sub wait_app_line
{
	my ($h, $out, $word) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		return 1 if $$out =~ /^\Q$word\E\b/m;
		return 0 unless $h->pumpable;
		$h->pump_nb;
		usleep(10_000);
	}
	return 0;
}

sub parse_app_output
{
	my ($text) = @_;
	my %r = (raw => $text);
	foreach my $line (split /\n/, $text)
	{
		my ($word, $rest) = $line =~ /^(\S+)\s*(.*)$/ or next;
		my %kv;
		# error=... runs to the end of the line
		if ($rest =~ s/\s*error=(.*)$//) { $kv{error} = $1; }
		$kv{$1} = $2 while $rest =~ /(\S+)=(\S*)/g;
		$r{$word} = \%kv;
	}
	return \%r;
}

=pod

=back

=cut

1;
