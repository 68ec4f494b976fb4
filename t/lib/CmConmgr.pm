
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

=pod

=head1 NAME

CmConmgr - conmgr in the TAP tests: the conmgr object and the functions
it is made of, a scripted watchdog and a scripted application

=head1 SYNOPSIS

  use CmConmgr;

  my $wd  = CmConmgr::FakeWatchdog->new(attrs => 0);
  my $cm  = CmConmgr->new(heartbeat_interval => 200,
	  instances => [ { hostaddr => '127.0.0.1', port => 5432, watchdog_port => $wd->port } ])->start;
  $cm->wait_up(0);
  my $app = CmConmgr::App->connect($cm->port);
  my $r   = $app->route('read-write');

=head1 DESCRIPTION

conmgr is tested against real watchdogs (CmNode) and against FakeWatchdog, a small
process speaking the heartbeat channel whose behaviour the test controls
(stop answering heartbeats, push attributes, announce a shutdown).  App is
an application speaking the application channel, as the client library
does: GSSENCRequest, greeting, route request, registration.

Every process started here is killed in an END block.

=cut

package CmConmgr;

use strict;
use warnings FATAL => 'all';

use Carp;
use CmProg;
use CmWire;
use File::Spec;
use IO::Select;
use IO::Socket::INET;
use IPC::Run;
use POSIX ();
use Time::HiRes qw(time usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @started;    # IPC::Run harnesses and PIDs to kill at the end

END
{
	# keep the test's exit code: waitpid and kill_kill set $?
	local $?;
	foreach my $h (@started)
	{
		if (ref $h)
		{
			eval { $h->kill_kill(grace => 2) };
		}
		else
		{
			kill 'KILL', $h;
			waitpid($h, 0);
		}
	}
}

# Raise this process's soft open-files limit (fan-out tests hold many
# sockets); the hard limit is left alone.
sub raise_fd_limit
{
	my ($n) = @_;
	system('prlimit', "--pid=$$", "--nofile=$n:") == 0
	  or diag("could not raise the open-files limit to $n");
	return;
}

=head2 Functions

=over

=item cm_ctl(@args)

Run cm_ctl ARGS; returns (exit code, stdout, stderr, seconds taken).  A
test of a conmgr object uses its ctl() instead.

=cut

sub cm_ctl
{
	my (@args) = @_;
	return bless({}, __PACKAGE__)->_run_cm_ctl(@args);
}

# The text of a conmgr.conf: instances (a list of hashes: host, hostaddr,
# port, watchdog_port) as instances 0, 1, ..., and the other keys as
# parameters, sorted.
sub _conf_text
{
	my (%p) = @_;
	my $conf = '';
	my $instances = delete $p{instances} // [];
	my $i = 0;
	foreach my $inst (@$instances)
	{
		$conf .= "backend_host$i = '$inst->{host}'\n" if $inst->{host};
		$conf .= "backend_hostaddr$i = '$inst->{hostaddr}'\n"
		  if $inst->{hostaddr};
		$conf .= "backend_port$i = $inst->{port}\n";
		$conf .= "watchdog_port$i = $inst->{watchdog_port}\n";
		$i++;
	}
	foreach my $k (sort keys %p)
	{
		$conf .= "$k = $p{$k}\n";
	}
	return $conf;
}

# The instance of a CmNode for _conf_text: SQL and watchdog on 127.0.0.1.
sub _node_instance
{
	my ($node) = @_;
	return { host => '127.0.0.1', port => $node->port, watchdog_port => $node->watchdog_port };
}

# Write $dir/conmgr.conf, mode 0600; heartbeats are unauthenticated (an
# explicit opt-in) unless the text names a secret_file or
# insecure_no_authentication.
sub _write_conf
{
	my ($dir, $text) = @_;
	# heartbeats unauthenticated unless a secret is given: an explicit opt-in
	$text .= "insecure_no_authentication = on\n"
	  unless $text =~ /^\s*(secret_file|insecure_no_authentication)\s*=/m;
	open my $fh, '>', "$dir/conmgr.conf" or die "conmgr.conf: $!";
	print $fh $text;
	close $fh;
	# only its owner may write it (conmgr refuses it otherwise), whatever the umask
	chmod 0600, "$dir/conmgr.conf";
	return;
}

# Parse the compact JSON of cm_ctl status --json well enough for tests:
# returns instances as a list of hashes of their scalar fields.
sub instances_from_json
{
	my ($json) = @_;
	return () unless $json =~ /"instances": \[(.*?)\](?:, "applications"|\}\s*$)/s;
	return _json_objects($1);
}

sub applications_from_json
{
	my ($json) = @_;
	return () unless $json =~ /"applications": \[(.*?)\]\}\s*$/s;
	return _json_objects($1);
}

# The flat objects of a JSON array body, each as a hash of its scalar fields.
sub _json_objects
{
	my ($body) = @_;
	my @list;
	while ($body =~ /\{([^{}]*)\}/g)
	{
		my $obj = $1;
		my %h;
		while ($obj =~ /"(\w+)": ("(?:[^"\\]|\\.)*"|[^,]+)/g)
		{
			my ($k, $v) = ($1, $2);
			$v =~ s/^"(.*)"$/$1/s;
			$h{$k} = $v;
		}
		push @list, \%h;
	}
	return @list;
}

=pod

=item wait_for(\&cond, $what)

Poll cond every 50 ms until it returns true or timeout_default passes.

=cut

sub wait_for
{
	my ($cond, $what) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		my $r = $cond->();
		return $r if $r;
		usleep(50_000);
	}
	diag("timed out waiting for $what");
	return undef;
}

sub wait_for_log
{
	my ($file, $re, $what) = @_;
	return wait_for(
		sub {
			return 0 unless -e $file;
			return slurp_file($file) =~ $re;
		},
		$what // "log matching $re");
}

# Wait until something accepts TCP connections on 127.0.0.1:port.
sub _wait_for_port
{
	my ($port) = @_;
	return wait_for(
		sub {
			my $s = IO::Socket::INET->new(
				PeerAddr => '127.0.0.1',
				PeerPort => $port,
				Proto => 'tcp',
				Timeout => 1) or return 0;
			close $s;
			return 1;
		},
		"a listener on port $port");
}

# GET /metrics from the conmgr whose metrics_port is $mport; returns the
# body, or undef when the answer is not a 200.  (t/285 parses it strictly.)
sub scrape_metrics
{
	my ($mport) = @_;
	my $s = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $mport,
		Proto => 'tcp') or return undef;
	syswrite($s, "GET /metrics HTTP/1.0\r\n\r\n");
	my $sel = IO::Select->new($s);
	my $buf = '';
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline && $sel->can_read($deadline - time()))
	{
		last unless sysread($s, $buf, 65536, length $buf);
	}
	close $s;
	return $buf =~ /^HTTP\/1\.1 200 .*?\r\n\r\n(.*)$/s ? $1 : undef;
}

=pod

=back

=head2 The conmgr object

  my $cm = CmConmgr->new(name => 'e2e', nodes => [ $primary, $standby ],
	  heartbeat_interval => 200, heartbeat_timeout => 1000)->start;
  $cm->accepting_ok;
  my ($rc, $out, $err) = $cm->ctl('reload');
  $cm->wait_up(0, 1);
  $cm->wait_log(qr/instance 0 .* up/);

=over

=item CmConmgr->new(%o)

A conmgr directory (tempdir cm_NAME, or C<dir>) with its conmgr.conf, not
started: C<name>, C<nodes> (CmNode instances on 127.0.0.1) and
C<instances> (a list of hashes: host, hostaddr, port, watchdog_port),
C<port> (free unless given), C<wrap>
(a function given the command line of conmgr or cm_ctl, returning the one
to run: in another namespace, as another user), C<user> (a wrap running
them as this user through setpriv; the directory and conmgr.conf are made
its own: for a test running as root), C<log>
(default conmgr_NAME.log in the test's log directory, or DIR/stderr.log
without a name); every other key is a conmgr.conf
parameter; heartbeats are unauthenticated (an explicit opt-in) unless
they name secret_file or insecure_no_authentication.  C<text> instead
gives conmgr.conf's whole text, with the same opt-in (with C<text> undef, no conmgr.conf is written); the
port is then the C<port> given, if any.  The hash holds dir, port, log
and, once started, handle (the IPC::Run harness).

=cut

sub new
{
	my ($class, %p) = @_;
	my $name = delete $p{name};
	my @instances = @{ delete $p{instances} // [] };
	push @instances, map { _node_instance($_) } @{ delete $p{nodes} // [] };
	my $self = bless { name => $name // 'conmgr' }, $class;
	$self->{dir} = delete $p{dir}
	  // PostgreSQL::Test::Utils::tempdir(defined $name ? "cm_$name" : 'conmgr');
	$self->{log} = delete $p{log}
	  // (defined $name
		? "$PostgreSQL::Test::Utils::log_path/conmgr_$name.log"
		: "$self->{dir}/stderr.log");
	if (exists $p{text})
	{
		$self->{user} = $p{user};
		$self->{wrap} = $p{wrap};
		$self->{port} = $p{port};
		_write_conf($self->{dir}, $p{text}) if defined $p{text};
		$self->_give_to_user;
		return $self;
	}
	$self->{user} = delete $p{user};
	$self->{wrap} = delete $p{wrap};
	$self->{port} = $p{port} //= PostgreSQL::Test::Cluster::get_free_port();
	_write_conf($self->{dir}, _conf_text(instances => \@instances, %p));
	$self->_give_to_user;
	return $self;
}

# With a user: the directory and conmgr.conf become that user's.
sub _give_to_user
{
	my ($self) = @_;
	return unless defined $self->{user};
	my $uid = getpwnam($self->{user}) // croak "no user $self->{user}";
	chown $uid, -1, $self->{dir}, "$self->{dir}/conmgr.conf";
	chmod 0700, $self->{dir};
	return;
}

# The command line of an installed program, wrapped (see new).
sub _command
{
	my ($self, $program, @args) = @_;
	my @cmd = (CmProg::bin($program), @args);
	@cmd = $self->{wrap}->(@cmd) if $self->{wrap};
	@cmd = ('setpriv', "--reuid=$self->{user}", "--regid=$self->{user}", '--init-groups', '--', @cmd)
	  if defined $self->{user};
	return \@cmd;
}

sub dir { return $_[0]->{dir}; }
sub port { return $_[0]->{port}; }
sub logfile { return $_[0]->{log}; }
sub handle { return $_[0]->{handle}; }

# conmgr.conf's text; with an argument, write it instead (as new does).
sub conf
{
	my ($self, $text) = @_;
	return slurp_file("$self->{dir}/conmgr.conf") unless defined $text;
	_write_conf($self->{dir}, $text);
	$self->_give_to_user;
	return $text;
}

# Run conmgr in the foreground until it exits (bounded by
# timeout_default); returns (exit code, stdout, stderr), the exit code
# -1 when it did not exit in time.
sub run
{
	my ($self) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run($self->_command('conmgr', '-D', $self->{dir}),
			'<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
		1;
	};
	return ($ok ? $? >> 8 : -1, $out, $err);
}

# Start conmgr in the foreground under IPC::Run, output appended to the
# log; returns the object.  It is killed at the end.
sub start
{
	my ($self) = @_;
	my $log = $self->{log};
	my $h = IPC::Run::start($self->_command('conmgr', '-D', $self->{dir}),
		'<', \undef, '>>', $log, '2>>', $log);
	push @started, $h;
	$self->{handle} = $h;
	return $self;
}

# One test result: conmgr accepts applications on its port.
sub accepting_ok
{
	my ($self) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return ok(_wait_for_port($self->{port}),
		"conmgr $self->{name} accepts applications on port $self->{port}")
	  || diag(slurp_file($self->{log}));
}

# Kill conmgr (SIGKILL after a grace period) and wait for it.
sub stop
{
	my ($self) = @_;
	my $h = delete $self->{handle} or return;
	eval { $h->kill_kill(grace => 2) };
	@started = grep { $_ != $h } @started;
	return;
}

# cm_ctl COMMAND -D DIR ARGS...; returns as cm_ctl().
sub ctl
{
	my ($self, $command, @args) = @_;
	return $self->_run_cm_ctl($command, '-D', $self->{dir}, @args);
}

# Run cm_ctl ARGS (wrapped, see new); returns as cm_ctl().
sub _run_cm_ctl
{
	my ($self, @args) = @_;
	my ($out, $err) = ('', '');
	my $t0 = time();
	IPC::Run::run($self->_command('cm_ctl', @args), '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err, time() - $t0);
}

# PID of the running conmgr (from its PID file), or undef.
sub pid
{
	my ($self) = @_;
	# the file goes away when conmgr exits, maybe between a test and a read
	my $text = eval { PostgreSQL::Test::Utils::slurp_file("$self->{dir}/conmgr.pid") };
	return undef unless defined $text;
	my ($pid) = $text =~ /^(\d+)/;
	return undef unless $pid && kill(0, $pid);
	return $pid;
}

# cm_ctl status --json; returns the text.
sub status
{
	my ($self, @extra) = @_;
	my (undef, $out) = $self->ctl('status', '--json', @extra);
	return $out;
}

sub instances { return instances_from_json($_[0]->status); }
sub applications { return applications_from_json($_[0]->status); }

# The status of instance N (a hash, as instances()), or {} when it has none.
sub instance
{
	my ($self, $n) = @_;
	my @i = grep { $_->{number} == $n } $self->instances;
	return $i[0] // {};
}

# Wait until every listed instance number is up (per status JSON).
sub wait_up
{
	my ($self, @numbers) = @_;
	return wait_for(
		sub {
			my %up = map { $_->{number} => ($_->{state} eq 'up') } $self->instances;
			foreach my $n (@numbers) { return 0 unless $up{$n}; }
			return 1;
		},
		"instances @numbers up");
}

# Poll the status JSON until it matches (bounded); returns the last one.
sub wait_status
{
	my ($self, $re) = @_;
	my $json = '';
	wait_for(sub { ($json = $self->status) =~ $re }, "status matching $re");
	return $json;
}

# Wait until conmgr's log matches.
sub wait_log
{
	my ($self, $re, $what) = @_;
	return wait_for_log($self->{log}, $re, $what);
}

=pod

=back

=cut

package CmConmgr::FakeWatchdog;

use strict;
use warnings FATAL => 'all';

use CmSeal;
use CmWire;
use IO::Select;
use IO::Socket::INET;
use Socket;
use POSIX ();
use Time::HiRes qw(time usleep);

use PostgreSQL::Test::Utils;

=pod

=head2 CmConmgr::FakeWatchdog

=over

=item CmConmgr::FakeWatchdog->new(attrs => N, [secret => S, auth => MODE, version => V])

Fork a process that accepts heartbeat connections on a free port and
answers them.  With C<secret>, a hello asking for authentication is
challenged and conmgr's proof checked (event "proof ok" or "proof bad");
C<auth> then says how the fake answers: "good" (default: welcome with the
watchdog's proof), "bad-proof" (welcome with a proof made with another
secret), "no-challenge" (welcome at once, without a proof), "challenge"
(challenge even a hello that did not ask for authentication).  After an
authenticated welcome every frame is sealed both ways (CmSeal); a frame
from conmgr that does not verify is an event ("integrity tag" or
"integrity sequence").  Commands (sent with ->command): "attrs N" (push new
attributes), "mute" / "unmute" (stop / resume answering heartbeats),
"shutdown" (send 'S' and close), "restart" (send a goodbye with reason
12, watchdog restarting, and close), "close" (drop every connection),
"refuse" (refuse new connections with 'X'), "accept" (welcome them
again), "raw HEX" (send bytes as
they are: unsealed, as a relay on the path would inject them), "replay"
(send the last sealed frame again).  Events (hello, register,
unregister, goodbye) are appended to ->{events_file}.  C<version> is the
protocol version its welcome names (default 0x0100, a 1.0 watchdog).

=cut

sub new
{
	my ($class, %p) = @_;
	my $self = bless {}, $class;
	$self->{attrs} = $p{attrs} // 0;
	$self->{version} = $p{version} // 0x0100;
	$self->{secret} = $p{secret};
	$self->{auth} = $p{auth} // 'good';
	$self->{port} = $p{port} // PostgreSQL::Test::Cluster::get_free_port();
	$self->{events_file} =
	  PostgreSQL::Test::Utils::tempdir('fakewd') . '/events';
	open my $touch, '>', $self->{events_file} or die $!;
	close $touch;

	socketpair(my $parent, my $child, AF_UNIX, SOCK_STREAM, PF_UNSPEC)
	  or die "socketpair: $!";
	my $listen = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $self->{port},
		Listen => 128,
		ReuseAddr => 1) or die "fake watchdog listen: $!";

	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		close $parent;
		# keep none of the test's sockets open (a connection the test
		# closes must be seen closed by its peer)
		my %keep = map { $_ => 1 } (fileno($listen), fileno($child));
		my $max = POSIX::sysconf(POSIX::_SC_OPEN_MAX()) // 1024;
		$max = 65536 if $max > 65536;
		foreach my $fd (3 .. $max - 1)
		{
			POSIX::close($fd) unless $keep{$fd};
		}
		eval { $self->_run($listen, $child) };
		if ($@) { $self->_event("fake watchdog failed: $@"); print STDERR "fake watchdog failed: $@"; }
		POSIX::_exit(0);
	}
	close $child;
	close $listen;
	$parent->autoflush(1);
	$self->{ctl} = $parent;
	$self->{pid} = $pid;
	push @CmConmgr::started, $pid;
	return $self;
}

sub port { return $_[0]->{port}; }

sub command
{
	my ($self, $cmd) = @_;
	my $fh = $self->{ctl};
	print $fh "$cmd\n";
	# wait for the acknowledgement so that the command is in effect
	my $ack = <$fh>;
	return;
}

sub events
{
	my ($self) = @_;
	return PostgreSQL::Test::Utils::slurp_file($self->{events_file});
}

sub stop
{
	my ($self) = @_;
	kill 'KILL', $self->{pid};
	waitpid($self->{pid}, 0);
	@CmConmgr::started = grep { $_ ne $self->{pid} } @CmConmgr::started;
	return;
}

sub _event
{
	my ($self, $text) = @_;
	open my $fh, '>>', $self->{events_file} or return;
	print $fh "$text\n";
	close $fh;
	return;
}

sub _send
{
	my ($self, $c, $data) = @_;
	my $ok = eval { syswrite($c->{sock}, $data) };
	return;
}

# Send a frame, sealed once the connection has session keys.
sub _send_frame
{
	my ($self, $c, $frame) = @_;
	if ($c->{key_out})
	{
		$frame = CmSeal::seal($c->{key_out}, ++$c->{seq_out}, $frame);
		$c->{last_sealed} = $frame;
	}
	return $self->_send($c, $frame);
}

sub _run
{
	my ($self, $listen, $ctl) = @_;
	my $sel = IO::Select->new($listen, $ctl);
	my %conns;
	my $muted = 0;
	my $refuse = 0;
	my $ctlbuf = '';

	$SIG{PIPE} = 'IGNORE';
	for (;;)
	{
		foreach my $fh ($sel->can_read(1))
		{
			if ($fh == $listen)
			{
				my $s = $listen->accept or next;
				$conns{ fileno($s) } = { sock => $s, buf => '', hello => 0 };
				$sel->add($s);
				next;
			}
			if ($fh == $ctl)
			{
				my $n = sysread($ctl, $ctlbuf, 4096, length $ctlbuf);
				POSIX::_exit(0) unless $n;
				while ($ctlbuf =~ s/^(.*)\n//)
				{
					my $cmd = $1;
					if ($cmd =~ /^attrs (\d+)/)
					{
						$self->{attrs} = $1;
						foreach my $c (values %conns)
						{
							next unless $c->{hello};
							$self->_send_frame($c,
								CmWire::frame('A', pack('C', $self->{attrs})));
						}
					}
					elsif ($cmd =~ /^raw ([0-9a-f]+)$/)
					{
						my $bytes = pack('H*', $1);
						$self->_send($_, $bytes) foreach values %conns;
					}
					elsif ($cmd eq 'replay')
					{
						foreach my $c (values %conns)
						{
							$self->_send($c, $c->{last_sealed}) if $c->{last_sealed};
						}
					}
					elsif ($cmd eq 'mute') { $muted = 1; }
					elsif ($cmd eq 'unmute') { $muted = 0; }
					elsif ($cmd eq 'refuse') { $refuse = 1; }
					elsif ($cmd eq 'accept') { $refuse = 0; }
					elsif ($cmd eq 'shutdown' || $cmd eq 'close' || $cmd eq 'restart')
					{
						foreach my $k (keys %conns)
						{
							my $c = $conns{$k};
							$self->_send_frame($c,
								CmWire::frame('S',
									CmWire::notice_payload(CmWire::REASON_SHUTDOWN, 'the server is shutting down')))
							  if $cmd eq 'shutdown' && $c->{hello};
							$self->_send_frame($c,
								CmWire::frame('G',
									CmWire::notice_payload(CmWire::REASON_RESTART, 'the watchdog process is restarting')))
							  if $cmd eq 'restart' && $c->{hello};
							$sel->remove($c->{sock});
							close $c->{sock};
							delete $conns{$k};
						}
					}
					syswrite($ctl, "ok\n");
				}
				next;
			}
			my $c = $conns{ fileno($fh) };
			my $n = sysread($fh, $c->{buf}, 65536, length $c->{buf});
			if (!$n)
			{
				$self->_event('closed');
				$sel->remove($fh);
				delete $conns{ fileno($fh) };
				close $fh;
				next;
			}
			while (my ($type, $payload, $raw) =
				CmWire::take_frame(\$c->{buf}, CmWire::MAX_MSG - 1))
			{
				if ($c->{key_in})
				{
					my ($seq, $inner) = CmSeal::unseal($c->{key_in}, $raw);
					if (!defined $seq || $seq != $c->{seq_in} + 1)
					{
						$self->_event(defined $seq ? 'integrity sequence' : 'integrity tag');
						$sel->remove($fh);
						delete $conns{ fileno($fh) };
						close $fh;
						last;
					}
					$c->{seq_in} = $seq;
					$payload = substr($inner, 5);
				}
				elsif (!$c->{hello})
				{
					$c->{th} = CmSeal::add($c->{th} // CmSeal::start(), $raw);
				}
				if ($type eq 'H')
				{
					my $m = CmWire::decode($type, $payload);
					my ($nonce, $nlen, $name, $auth, $ival, $tout) =
					  @$m{qw(nonce nonce_len name auth interval timeout)};
					$self->_event("hello interval=$ival timeout=$tout name=$name auth=$auth nonce=$nlen");
					if ($refuse)
					{
						$self->_send($c,
							CmWire::frame('X',
								CmWire::notice_payload(CmWire::REASON_TOO_MANY, 'too many heartbeat connections')));
						next;
					}
					@$c{qw(nc interval timeout)} = ($nonce, $ival, $tout);
					if (defined $self->{secret} && $self->{auth} ne 'no-challenge'
						&& ($auth == CmSeal::AUTH_METHOD || $self->{auth} eq 'challenge'))
					{
						$c->{ns} = join('', map { chr(int(rand(256))) } 1 .. 32);
						my $cf = CmWire::frame('C', pack('C', 32) . $c->{ns});
						$c->{th} = CmSeal::add($c->{th}, $cf);
						$c->{proved} = $c->{th};
						$self->_send($c, $cf);
						next;
					}
					$c->{hello} = 1;
					$self->_send($c,
						CmWire::frame('W',
							pack('n N N C C', $self->{version}, 1000, 10000, $self->{attrs}, 0)));
				}
				elsif ($type eq 'P')
				{
					my $proof = CmWire::decode($type, $payload)->{proof};
					my $want = CmSeal::conmgr_proof($self->{secret}, $c->{proved});
					$self->_event($proof eq $want ? 'proof ok' : 'proof bad');
					my $key = $self->{auth} eq 'bad-proof' ? $self->{secret} . 'x' : $self->{secret};
					# the welcome with its proof (the last field, 32 bytes)
					my $w = CmWire::frame('W',
						pack('n N N C C', $self->{version}, 1000, 10000, $self->{attrs}, 32) . ("\0" x 32));
					my $prefix = substr($w, 0, length($w) - 33);
					$w = CmSeal::prove_welcome($key, $c->{th}, $prefix);
					$c->{th} = CmSeal::add($c->{th}, $w);
					$c->{hello} = 1;
					$self->_send($c, $w);
					@$c{qw(key_in key_out)} = CmSeal::session_keys($self->{secret}, $c->{th});
					@$c{qw(seq_in seq_out)} = (0, 0);
				}
				elsif ($type eq 'B')
				{
					next if $muted;
					$self->_send_frame($c,
						CmWire::frame('b', $payload . pack('C', $self->{attrs})));
				}
				elsif ($type eq 'J' || $type eq 'K')
				{
					my $m = CmWire::decode($type, $payload);
					my $a = $m->{family} == 4 ? inet_ntoa($m->{addr}) : 'v6';
					$self->_event(($type eq 'J' ? 'register' : 'unregister')
						  . " pid=$m->{pid} addr=$a:$m->{port}");
				}
				elsif ($type eq 'G')
				{
					my $m = CmWire::decode($type, $payload);
					$self->_event("goodbye reason=$m->{reason} $m->{message}");
				}
			}
		}
	}
}

package CmConmgr::App;

use strict;
use warnings FATAL => 'all';

use Carp;
use CmWire;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

=pod

=back

=head2 CmConmgr::App

=over

=item CmConmgr::App->connect($port)

Connect to conmgr and exchange GSSENCRequest and greeting, as the client
library does.  Returns undef (and sets $CmConmgr::App::error) on failure.

=cut

our $error;

sub connect
{
	my ($class, $port, %p) = @_;
	my $s = IO::Socket::INET->new(
		PeerAddr => $p{host} // '127.0.0.1',
		PeerPort => $port,
		Proto => 'tcp');
	if (!$s)
	{
		$error = "connect: $!";
		return undef;
	}
	my $self = bless { sock => $s, buf => '' }, $class;
	return $self if $p{no_greeting};
	syswrite($s, CmWire::gss_request());
	my $g = $self->read_raw(5) // return undef;
	my ($t, $len) = CmWire::header($g);
	if ($t ne 'E')
	{
		$error = "greeting: got '$t'";
		return undef;
	}
	my $body = $self->read_raw($len - 4) // return undef;
	if ($body !~ /cconmgr /)
	{
		$error = "greeting without conmgr tag";
		return undef;
	}
	$self->{greeting} = $body;
	return $self;
}

sub sock { return $_[0]->{sock}; }

sub send_raw
{
	my ($self, $data) = @_;
	return syswrite($self->{sock}, $data);
}

# Read exactly n bytes (bounded by timeout_default).
sub read_raw
{
	my ($self, $n) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	my $sel = IO::Select->new($self->{sock});
	while (length($self->{buf}) < $n)
	{
		my $left = $deadline - time();
		if ($left <= 0 || !$sel->can_read($left))
		{
			$error = "timed out reading from conmgr";
			return undef;
		}
		my $r = sysread($self->{sock}, $self->{buf}, 65536, length $self->{buf});
		if (!$r)
		{
			$error = "conmgr closed the connection";
			return undef;
		}
	}
	my $out = substr($self->{buf}, 0, $n);
	substr($self->{buf}, 0, $n) = '';
	return $out;
}

# Read one frame: returns a hash (type and decoded fields) or undef.
sub read_msg
{
	my ($self) = @_;
	my $h = $self->read_raw(CmWire::HEADER_LEN) // return undef;
	my ($type, $len) = CmWire::header($h);
	my $payload = $len > 4 ? ($self->read_raw($len - 4) // return undef) : '';
	return CmWire::decode($type, $payload);
}

sub route
{
	my ($self, $tsa, $appname) = @_;
	$self->send_raw(CmWire::route_frame($tsa, $$, $appname // 'tap'));
	return $self->read_msg;
}

# The instances each target_session_attrs may be routed to while the
# primaries (a list of instance numbers) and the standbys are all up:
# a hash of lists.
sub expected_routes
{
	my ($primaries, $standbys) = @_;
	return (
		'read-write' => $primaries,
		'primary' => $primaries,
		'read-only' => $standbys,
		'standby' => $standbys,
		'prefer-standby' => $standbys,
		'any' => [ @$primaries, @$standbys ]);
}

# A TCP connection of this process over the loopback, as an application's
# SQL connection is: to a listener of this process, accepted at once.
# Returns [client, server] sockets; the client's port is the one to register.
our $sql_listener;

sub sql_connection
{
	$sql_listener //= IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => 0,
		Listen => 1024,
		ReuseAddr => 1) or croak "SQL listener: $!";
	my $c = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $sql_listener->sockport,
		Proto => 'tcp') or croak "SQL connection: $!";
	my $s = $sql_listener->accept or croak "SQL accept: $!";
	return [ $c, $s ];
}

=pod

=item $app->register($backend_pid)

Register an SQL connection as the client library does: a real TCP
connection of this process (conmgr checks that the registered address is a
connected socket of the application's user), kept open with the
application.  Returns the registered port.

=item $app->register_port($backend_pid, $port, [$addr])

Register any address and port, as a hostile application could.

=cut

sub register
{
	my ($self, $backend_pid) = @_;
	my $sql = sql_connection();
	push @{ $self->{sql} }, @$sql;
	my $port = $sql->[0]->sockport;
	$self->register_port($backend_pid, $port);
	return $port;
}

sub register_port
{
	my ($self, $backend_pid, $port, $addr) = @_;
	return $self->send_raw(
		CmWire::register_frame('J', $backend_pid, $addr // '127.0.0.1', $port));
}

# Has conmgr closed the connection (after reading what is pending)?
sub is_closed
{
	my ($self, $wait) = @_;
	my $sel = IO::Select->new($self->{sock});
	return 0 unless $sel->can_read($wait // 0);
	my $r = sysread($self->{sock}, my $x, 65536);
	$self->{buf} .= $x if $r;
	return !$r;
}

sub close
{
	my ($self) = @_;
	close $self->{sock} if $self->{sock};
	$self->{sock} = undef;
	close $_ foreach @{ $self->{sql} // [] };
	$self->{sql} = [];
	return;
}

=pod

=back

=cut

1;
