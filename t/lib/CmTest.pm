
=pod

=head1 NAME

CmTest - helpers shared by the Connection Manager TAP tests

=head1 SYNOPSIS

  use CmNode;
  use CmTest;
  my $primary = CmNode->create('main_primary', init => { allows_streaming => 1 },
	  check_attr_interval => 200);
  $primary->start;
  my $standby = $primary->new_standby('main_standby', check_attr_interval => 200);
  my $cm = CmTest::start_conmgr('cm1', [ $primary, $standby ],
	  heartbeat_interval => 200, heartbeat_timeout => 1000);
  my $out = CmTest::run_app("host=localhost port=$cm->{port} target_session_attrs=read-write");

=cut

package CmTest;

use strict;
use warnings FATAL => 'all';

use Carp;
use File::Path qw(make_path);
use IO::Socket::INET;
use IPC::Run;
use CmProg;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my @conmgrs;    # IPC::Run harnesses to kill at the end

=pod

=item wait_for_port(port)

Wait until something accepts TCP connections on 127.0.0.1:port.

=cut

sub wait_for_port
{
	my ($port) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $s = IO::Socket::INET->new(
			PeerAddr => '127.0.0.1',
			PeerPort => $port,
			Proto => 'tcp',
			Timeout => 1);
		if ($s) { close $s; return 1; }
		usleep(50_000);
	}
	return 0;
}

=pod

=item write_conmgr_conf(dir, nodes, %params)

Write DIR/conmgr.conf naming each node as instance 0, 1, ...; %params are
added as they are (heartbeat_interval => 200, ...).  Returns the port.

=cut

sub write_conmgr_conf
{
	my ($dir, $nodes, %params) = @_;
	make_path($dir);
	chmod 0700, $dir;
	my $port = delete $params{port} // PostgreSQL::Test::Cluster::get_free_port();
	my $conf = "# written by CmTest\nport = $port\n";
	my $i = 0;
	foreach my $n (@$nodes)
	{
		$conf .= "backend_host$i = '127.0.0.1'\n";
		$conf .= "backend_port$i = " . $n->port . "\n";
		$conf .= "watchdog_port$i = $n->watchdog_port\n";
		$i++;
	}
	$conf .= "$_ = $params{$_}\n" foreach sort keys %params;
	# heartbeats unauthenticated unless a secret is given: an explicit opt-in
	$conf .= "insecure_no_authentication = on\n"
	  unless $conf =~ /^\s*(secret_file|insecure_no_authentication)\s*=/m;
	open my $fh, '>', "$dir/conmgr.conf" or die "$dir/conmgr.conf: $!";
	print $fh $conf;
	close $fh;
	# only its owner may write it (conmgr refuses it otherwise), whatever the umask
	chmod 0600, "$dir/conmgr.conf";
	return $port;
}

=pod

=item start_conmgr(name, nodes, %params)

Write a conmgr.conf for the nodes and run conmgr in the foreground under
IPC::Run (killed at the end of the test).  Returns a hash: dir, port,
handle, log (path of conmgr's stderr).

=cut

sub start_conmgr
{
	my ($name, $nodes, %params) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir("cm_$name");
	my $port = write_conmgr_conf($dir, $nodes, %params);
	my $log = "$PostgreSQL::Test::Utils::log_path/conmgr_$name.log";
	my $h = IPC::Run::start([ CmProg::bin('conmgr'), '-D', $dir ],
		'<', \undef, '>>', $log, '2>>', $log);
	push @conmgrs, $h;
	ok(wait_for_port($port), "conmgr $name accepts applications on port $port")
	  or diag(slurp_file($log));
	return { dir => $dir, port => $port, handle => $h, log => $log };
}

=pod

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

END
{
	foreach my $h (@conmgrs)
	{
		eval { $h->kill_kill if $h->pumpable; };
	}
}

1;
