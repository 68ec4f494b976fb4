
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

=pod

=head1 NAME

CmClient - helpers for the client library tests (t/3*.pl)

=head1 SYNOPSIS

  use CmClient;
  my $fake = CmClient::start_fake($port, 'instance', "127.0.0.1:$pgport");
  my $srv  = CmClient::start_server($port2);         # records what it gets
  my ($logs) = CmClient::between(sub { CmClient::run_tool(...) }, $srv, $fake);
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
use CmProg;
use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @children;

=over

=item run_tool(ARGS...)

Run the driver to completion; returns (exit code, stdout, stderr).

=cut

sub run_tool
{
	my @cmd = (CmProg::tool(), @_);
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

=item start_fake(PORT, MODE, ARG, [addr => ADDR], [user => USER], [netns => NS])

Start client/test/fake_conmgr.pl and wait until it listens: on 127.0.0.1,
or on ADDR (::1 for IPv6); as USER, or in network namespace NS, when given
(the test runs as root).

=cut

sub start_fake
{
	my ($port, $mode, $arg, %opt) = @_;
	my $addr = $opt{addr} // '127.0.0.1';
	my @ns = $opt{netns} ? ('ip', 'netns', 'exec', $opt{netns}) : ();
	my $h = start_bg_as($opt{user}, @ns, 'env', "FAKE_CONMGR_ADDR=$addr", $^X,
		CmProg::client_test('fake_conmgr.pl'), $port, $mode, defined $arg ? $arg : ());
	@$h{qw(port addr)} = ($port, $addr);
	wait_output($h, qr/listening port=$port/, "fake conmgr listens on $addr port $port");
	return $h;
}

=item plain_node(NAME, [LINE...])

A started node without the watchdog, listening on 127.0.0.1, with more
postgresql.conf lines if given.

=cut

sub plain_node
{
	my ($name, @lines) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', join("\n", "listen_addresses = '127.0.0.1'", @lines));
	$node->start;
	return $node;
}

=item fake_for(NODE)

A fake conmgr (start_fake) on a free port that routes every request to
NODE on 127.0.0.1; its port is $fake->{port}.

=cut

sub fake_for
{
	my ($node) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return start_fake($port, 'instance', '127.0.0.1:' . $node->port);
}

=item start_server(PORT, [addr => ADDR])

Start client/test/fake_server.pl, a stand-in PostgreSQL server that
records what it receives (it asks for a cleartext password), and wait
until it listens.

=cut

sub start_server
{
	my ($port, %opt) = @_;
	my $addr = $opt{addr} // '127.0.0.1';
	my $h = start_bg($^X, CmProg::client_test('fake_server.pl'), $port, $addr);
	@$h{qw(port addr server)} = ($port, $addr, 1);
	wait_output($h, qr/listening port=$port/, "recording server listens on $addr port $port");
	return $h;
}

# Start a command as USER (undef: as ourselves; otherwise we are root).
sub start_bg_as
{
	my ($user, @cmd) = @_;
	return start_bg(@cmd) unless defined $user;
	my ($uid, $gid) = (getpwnam($user))[ 2, 3 ];
	croak "no user $user" unless defined $uid;
	my $h = { out => '', err => '' };
	$h->{harness} = IPC::Run::start(\@cmd, '<', \undef, '>', \$h->{out}, '2>', \$h->{err},
		init => sub {
			$) = "$gid $gid";
			$( = $gid;
			$< = $> = $uid;
			die "could not become $user\n" if $> != $uid || $< != $uid;
		});
	push @children, $h;
	return $h;
}

# What a background process printed, from offset POS on.
sub output_since
{
	my ($h, $pos) = @_;
	eval { $h->{harness}->pump_nb; };
	return substr($h->{out}, $pos);
}

# Wait until a background process's whole output matches RE; returns the
# offsets where the match starts and ends.
sub wait_match
{
	my ($h, $re) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		return ($-[0], $+[0]) if output_since($h, 0) =~ $re;
		usleep(20_000);
	}
	croak "timed out waiting for $re; output:\n$h->{out}$h->{err}";
}

my $sentinel = 0;

# Make a fake conmgr or recording server print everything that happened
# before now: it gets a connection of its own, which it handles after the
# connections and the closes that came before.  Returns where the
# sentinel's lines start and end in its output.
sub sync_fake
{
	my ($h) = @_;
	require IO::Socket::IP;
	$sentinel++;
	my $s = IO::Socket::IP->new(PeerHost => $h->{addr}, PeerPort => $h->{port}, Proto => 'tcp')
	  or croak "sentinel connection to $h->{addr} port $h->{port}: $@";
	my $re;
	if ($h->{server})
	{
		my $user = "sentinel$sentinel";
		my $body = "user\0$user\0\0";
		syswrite $s, pack('NN', 8 + length $body, 196608) . $body;
		sysread $s, my $answer, 9;
		$re = qr/^accepted\nstartup user=$user database=\nbytes=\d+\n/m;
	}
	else
	{
		my $code = 12340000 + $sentinel;
		syswrite $s, pack('NN', 8, $code);
		$re = qr/^startup code=$code\n/m;
	}
	close $s;
	return wait_match($h, $re);
}

=item between(CODE, H...)

Run CODE between two syncs of the fake conmgrs and recording servers H
(each handles a connection of its own before and after, so that
everything CODE caused is in their output, and nothing else).  Returns an
array reference of what each H printed meanwhile, then what CODE returned.

=cut

sub between
{
	my ($code, @h) = @_;
	my @start = map { [ sync_fake($_) ] } @h;
	my @r = $code->();
	my @end = map { [ sync_fake($_) ] } @h;
	my @logs = map { substr($h[$_]{out}, $start[$_][1], $end[$_][0] - $start[$_][1]) } 0 .. $#h;
	return (\@logs, @r);
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

=pod

=back

=cut

1;
