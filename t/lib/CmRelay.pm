
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

=pod

=head1 NAME

CmRelay - a relay between conmgr and a watchdog, for TCP and UDP alike

=head1 SYNOPSIS

  use CmRelay;

  my $relay = CmRelay->new(target => $wdport);   # listens on $relay->port
  # conmgr.conf: watchdog_port0 = $relay->port
  $relay->command('mode towd drop');              # block datagrams to the watchdog
  $relay->command('mode tocm pass');
  $relay->command('replay towd');                 # resend the last one
  $relay->command('forge tocm -1');               # a copy, last byte flipped
  $relay->command('reorder towd');                # hold the next one back
  my $c = $relay->counts;                         # { towd_seen => ..., ... }

=head1 DESCRIPTION

A process of its own (forked) listening on 127.0.0.1:P for TCP and for UDP,
P the same port number for both, as the watchdog does on watchdog.port.

=over

=item TCP

Every connection accepted is forwarded byte for byte, both ways, to
127.0.0.1:TARGET; bytes are counted per direction.

=item UDP

Every datagram from a source (conmgr's UDP socket) is forwarded to
127.0.0.1:TARGET from a UDP socket of the relay's own, one per source, so
that the watchdog answers to the relay; its answers are forwarded to the
source, from the relay's port P, which is where the source sent its
datagrams.

=back

Directions are named C<towd> (to the watchdog) and C<tocm> (to conmgr).
Commands, each answered with a line starting with "ok" once in effect:

=over

=item mode DIR pass|drop

Forward or drop (block) the datagrams of a direction.

=item replay DIR

Send the last datagram that arrived in that direction once more, from the
socket a forwarded one would come from.

=item forge DIR [OFFSET]

Send a copy of the last datagram of that direction with the byte at
OFFSET (default -1, the last byte: part of the tag) flipped.

=item reorder DIR

Hold the next datagram of that direction and deliver it just after the
one that follows it.

=item inject DIR HEX

Send these bytes as a datagram in that direction, from the socket a
forwarded one would come from.

=item counts

Answers "ok" and key=value pairs: per direction DIR, DIR_seen (arrived),
DIR_fwd (forwarded as they came), DIR_dropped (by mode drop), DIR_injected
(sent by replay, forge, reorder's late delivery does not count here,
inject); tcp_towd, tcp_tocm (bytes forwarded), tcp_conns (connections
accepted), tcp_upstream (local ports of the relay's connections to the
target, comma-separated), udp_sources.

=item seqs DIR

Answers "ok" and the heartbeat sequence numbers (the u32 after the 8-byte
datagram id and the 5-byte frame header, in clear) of the datagrams that
arrived in that direction, oldest first, comma-separated (the last 1000).

=item held DIR

Answers "ok" and the sequence number of the last datagram that reorder
held back (seq=N after=M once delivered after the one numbered M;
"pending" until a datagram comes to be held).

=back

The process is killed at the end of the test.

=cut

package CmRelay;

use strict;
use warnings FATAL => 'all';

use Carp;
use CmWire;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket;
use Time::HiRes ();

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @started;    # PIDs to kill at the end

END
{
	local $?;
	foreach my $pid (@started)
	{
		kill 'KILL', $pid;
		waitpid($pid, 0);
	}
}

=pod

=head1 METHODS

=over

=item CmRelay->new(target => PORT)

Start a relay to 127.0.0.1:PORT on a free port (for TCP and UDP both).

=cut

sub new
{
	my ($class, %p) = @_;
	croak 'CmRelay needs a target port' unless $p{target};
	my $self = bless { target => $p{target} }, $class;

	my ($listen, $udp);
	for my $try (1 .. 20)
	{
		my $port = PostgreSQL::Test::Cluster::get_free_port();
		$listen = IO::Socket::INET->new(
			LocalAddr => '127.0.0.1',
			LocalPort => $port,
			Listen => 64,
			ReuseAddr => 1) or next;
		$udp = IO::Socket::INET->new(
			LocalAddr => '127.0.0.1',
			LocalPort => $port,
			Proto => 'udp');
		if ($udp)
		{
			$self->{port} = $port;
			last;
		}
		close $listen;
		$listen = undef;
	}
	croak "relay: no port free for TCP and UDP both: $!" unless $self->{port};

	socketpair(my $parent, my $child, AF_UNIX, SOCK_STREAM, PF_UNSPEC)
	  or croak "socketpair: $!";
	my $pid = fork();
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		close $parent;
		# keep none of the test's sockets open: a connection the test
		# closes must be seen closed by its peer
		my %keep = map { $_ => 1 } (fileno($listen), fileno($udp), fileno($child));
		my $max = POSIX::sysconf(POSIX::_SC_OPEN_MAX()) // 1024;
		$max = 65536 if $max > 65536;
		foreach my $fd (3 .. $max - 1)
		{
			POSIX::close($fd) unless $keep{$fd};
		}
		eval { $self->_run($listen, $udp, $child) };
		print STDERR "relay failed: $@" if $@;
		POSIX::_exit(0);
	}
	close $child;
	close $listen;
	close $udp;
	$parent->autoflush(1);
	$self->{ctl} = $parent;
	$self->{pid} = $pid;
	push @started, $pid;
	return $self;
}

sub port { return $_[0]->{port}; }

=pod

=item $relay->command(text)

Send a command and return its answer (without "ok" and the line feed);
dies when the relay does not answer "ok".

=cut

sub command
{
	my ($self, $cmd) = @_;
	my $fh = $self->{ctl};
	print $fh "$cmd\n";
	my $ans = <$fh>;
	croak "relay: no answer to \"$cmd\"" unless defined $ans;
	chomp $ans;
	croak "relay: \"$cmd\": $ans" unless $ans =~ s/^ok ?//;
	return $ans;
}

# The counters, as a hash.
sub counts
{
	my ($self) = @_;
	my %c;
	my $ans = $self->command('counts');
	$c{$1} = $2 while $ans =~ /(\w+)=(\S*)/g;
	return \%c;
}

# The heartbeat sequence numbers seen in a direction, as a list.
sub seqs
{
	my ($self, $dir) = @_;
	my $ans = $self->command("seqs $dir");
	return grep { length } split /,/, $ans;
}

sub stop
{
	my ($self) = @_;
	kill 'KILL', $self->{pid};
	waitpid($self->{pid}, 0);
	@started = grep { $_ != $self->{pid} } @started;
	return;
}

# ---------------------------------------------------------------------
# The relay process

sub _run
{
	my ($self, $listen, $udp, $ctl) = @_;
	my $sel = IO::Select->new($listen, $udp, $ctl);
	my %peer;          # fileno => the other socket of a TCP pair
	my %tcpdir;        # fileno => 'towd' or 'tocm' (direction of what it reads)
	my %up_of;         # "addr:port" of a UDP source => upstream socket
	my %src_of;        # fileno of an upstream socket => packed source address
	my %mode = (towd => 'pass', tocm => 'pass');
	my %hold = (towd => 0, tocm => 0);
	my %held;          # dir => [ datagram, deliver-via ] waiting for the next
	my %held_info = (towd => '', tocm => '');
	my %last;          # dir => [ datagram, via ]
	my %seqs = (towd => [], tocm => []);
	my %n = map { $_ => 0 }
	  qw(towd_seen towd_fwd towd_dropped towd_injected
	  tocm_seen tocm_fwd tocm_dropped tocm_injected
	  tcp_towd tcp_tocm tcp_conns);
	my @upstream_ports;
	my $last_src;      # packed address of the last UDP source
	my $ctlbuf = '';
	my $target = sockaddr_in($self->{target}, inet_aton('127.0.0.1'));

	$SIG{PIPE} = 'IGNORE';

	# what happens to TCP connections and modes, with times, for the report
	my $logf = "$PostgreSQL::Test::Utils::log_path/relay_$self->{port}.log";
	my $log = sub {
		open my $fh, '>>', $logf or return;
		my $t = Time::HiRes::time();
		printf $fh "%s.%03d %s\n",
		  POSIX::strftime('%H:%M:%S', gmtime($t)), ($t - int($t)) * 1000, $_[0];
		close $fh;
	};

	# send a datagram in a direction; via is the upstream socket (towd) or
	# the packed source address (tocm)
	my $send = sub {
		my ($dir, $d, $via) = @_;
		if ($dir eq 'towd') { send($via, $d, 0, $target); }
		else { send($udp, $d, 0, $via); }
	};
	my $deliver = sub {
		my ($dir, $d, $via) = @_;
		if ($hold{$dir})
		{
			$hold{$dir} = 0;
			$held{$dir} = [ $d, $via ];
			$held_info{$dir} = 'seq=' . CmWire::datagram_seq($d);
			return;
		}
		$send->($dir, $d, $via);
		$n{"${dir}_fwd"}++;
		if (my $h = delete $held{$dir})
		{
			$send->($dir, @$h);
			$n{"${dir}_fwd"}++;
			$held_info{$dir} .= ' after=' . CmWire::datagram_seq($d);
		}
	};
	my $arrived = sub {
		my ($dir, $d, $via) = @_;
		$n{"${dir}_seen"}++;
		push @{ $seqs{$dir} }, CmWire::datagram_seq($d);
		shift @{ $seqs{$dir} } if @{ $seqs{$dir} } > 1000;
		$last{$dir} = [ $d, $via ];
		if ($mode{$dir} eq 'drop')
		{
			$n{"${dir}_dropped"}++;
			return;
		}
		$deliver->($dir, $d, $via);
	};
	my $close_pair = sub {
		my ($fh) = @_;
		$log->("TCP end of file or error ($!) on the $tcpdir{fileno($fh)} side: both closed");
		my $other = delete $peer{ fileno($fh) };
		delete $tcpdir{ fileno($fh) };
		$sel->remove($fh);
		close $fh;
		return unless $other;
		delete $peer{ fileno($other) };
		delete $tcpdir{ fileno($other) };
		$sel->remove($other);
		close $other;
	};
	# the socket a datagram in a direction is sent from (via)
	my $via_for = sub {
		my ($dir) = @_;
		return undef unless defined $last_src;
		return $dir eq 'tocm' ? $last_src : $up_of{$last_src};
	};

	for (;;)
	{
		foreach my $fh ($sel->can_read(1))
		{
			if ($fh == $ctl)
			{
				my $r = sysread($ctl, $ctlbuf, 4096, length $ctlbuf);
				POSIX::_exit(0) unless $r;
				while ($ctlbuf =~ s/^(.*)\n//)
				{
					my @w = split ' ', $1;
					my $cmd = shift(@w) // '';
					my $dir = $w[0] // '';
					my $ans = 'ok';
					if ($cmd eq 'counts')
					{
						$ans .= join('', map { " $_=$n{$_}" } sort keys %n)
						  . ' tcp_upstream=' . join(',', @upstream_ports)
						  . ' udp_sources=' . scalar(keys %up_of);
					}
					elsif ($dir ne 'towd' && $dir ne 'tocm')
					{
						$ans = "error: unknown command or direction: $cmd $dir";
					}
					elsif ($cmd eq 'mode' && ($w[1] // '') =~ /^(pass|drop)$/)
					{
						$mode{$dir} = $w[1];
					}
					elsif ($cmd eq 'replay' || $cmd eq 'forge')
					{
						if (!$last{$dir})
						{
							$ans = "error: no datagram seen $dir yet";
						}
						else
						{
							my ($d, $via) = @{ $last{$dir} };
							if ($cmd eq 'forge')
							{
								my $off = $w[1] // -1;
								substr($d, $off, 1) = chr(ord(substr($d, $off, 1)) ^ 0x01);
							}
							$send->($dir, $d, $via);
							$n{"${dir}_injected"}++;
							$ans .= ' seq=' . CmWire::datagram_seq($d);
						}
					}
					elsif ($cmd eq 'reorder')
					{
						$hold{$dir} = 1;
						$held_info{$dir} = 'pending';
					}
					elsif ($cmd eq 'inject' && ($w[1] // '') =~ /^([0-9a-fA-F]{2})+$/)
					{
						my $via = $via_for->($dir);
						if (!defined $via)
						{
							$ans = 'error: no UDP source seen yet';
						}
						else
						{
							$send->($dir, pack('H*', $w[1]), $via);
							$n{"${dir}_injected"}++;
						}
					}
					elsif ($cmd eq 'seqs')
					{
						$ans .= ' ' . join(',', @{ $seqs{$dir} });
					}
					elsif ($cmd eq 'held')
					{
						$ans .= ' ' . $held_info{$dir};
					}
					else
					{
						$ans = "error: bad command: $cmd @w";
					}
					$log->("command: $cmd @w: $ans") unless $cmd =~ /^(counts|seqs|held)$/;
					syswrite($ctl, "$ans\n");
				}
				next;
			}
			if ($fh == $listen)
			{
				my $c = $listen->accept or next;
				my $u = IO::Socket::INET->new(
					PeerAddr => '127.0.0.1',
					PeerPort => $self->{target},
					Proto => 'tcp');
				if (!$u)
				{
					close $c;
					next;
				}
				$n{tcp_conns}++;
				push @upstream_ports, $u->sockport;
				$log->('TCP connection from port ' . $c->peerport . ' relayed from port ' . $u->sockport);
				$peer{ fileno($c) } = $u;
				$peer{ fileno($u) } = $c;
				$tcpdir{ fileno($c) } = 'towd';
				$tcpdir{ fileno($u) } = 'tocm';
				$sel->add($c, $u);
				next;
			}
			if ($fh == $udp)
			{
				my $src = recv($udp, my $d, 65536, 0);
				next unless defined $src;
				if (!$up_of{$src})
				{
					my $u = IO::Socket::INET->new(
						LocalAddr => '127.0.0.1',
						Proto => 'udp') or next;
					$up_of{$src} = $u;
					$src_of{ fileno($u) } = $src;
					$sel->add($u);
				}
				$last_src = $src;
				$arrived->('towd', $d, $up_of{$src});
				next;
			}
			if (my $src = $src_of{ fileno($fh) })
			{
				my $from = recv($fh, my $d, 65536, 0);
				next unless defined $from;
				$arrived->('tocm', $d, $src);
				next;
			}
			if (my $other = $peer{ fileno($fh) })
			{
				my $r = sysread($fh, my $buf, 65536);
				if (!$r)
				{
					$close_pair->($fh);
					next;
				}
				$n{"tcp_$tcpdir{fileno($fh)}"} += $r;
				my $off = 0;
				while ($off < $r)
				{
					my $w = syswrite($other, $buf, $r - $off, $off);
					last unless defined $w;
					$off += $w;
				}
				$close_pair->($fh) if $off < $r;
			}
		}
	}
}

=pod

=back

=cut

1;
