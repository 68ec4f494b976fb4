
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

=pod

=head1 NAME

CmWatchdog - test helpers for the watchdog extension: a minimal heartbeat
peer that speaks the wire protocol (docs/protocol.md) byte by byte, and a
psql session on any connection string.  The node is CmNode's, the frames
are CmWire's.

=head1 SYNOPSIS

  use CmNode;
  use CmWatchdog;

  my $node = CmNode->create('primary');
  $node->start;
  my $peer = CmWatchdog::Peer->connect($node->watchdog_port);
  my $welcome = $peer->hello(interval => 200, timeout => 600);
  my $reply = $peer->heartbeat(1);

  # with watchdog.secret_file set on the server
  my ($welcome, $nc, $ns) = $peer->authenticate(secret => $secret,
	  interval => 200, timeout => 600);

=cut

package CmWatchdog;

use strict;
use warnings FATAL => 'all';

use CmSeal;
use CmWire;
use IO::Select;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);


=pod

=over

=item CmWatchdog::conmgr_proof(secret, transcript)

=item CmWatchdog::watchdog_proof(secret, transcript)

The proofs of authentication method 2 (docs/protocol.md), from CmSeal.

=cut

sub conmgr_proof { return CmSeal::conmgr_proof(@_); }
sub watchdog_proof { return CmSeal::watchdog_proof(@_); }

=pod

=item CmWatchdog::welcome_proof(secret, welcome)

The proof a welcome (a message read by a peer's read_msg after its proof)
must carry when the watchdog holds this secret.

=cut

sub welcome_proof
{
	my ($secret, $w) = @_;
	return '' unless $w && defined $w->{raw} && defined $w->{th};
	my $prefix = substr($w->{raw}, 0, length($w->{raw}) - 33);
	return CmSeal::watchdog_proof($secret, CmSeal::add($w->{th}, $prefix));
}

=pod

=item CmWatchdog::random_nonce([length])

Random bytes for a nonce (32 unless told); not of cryptographic quality,
which a test does not need.

=cut

sub random_nonce
{
	my ($len) = @_;
	$len //= CmWire::NONCE_LEN;
	return join '', map { chr(int(rand(256))) } 1 .. $len;
}

package CmWatchdog::Session;

# A psql session kept open in the background, on any connection string
# (PostgreSQL::Test::BackgroundPsql only takes the node's own one).

use strict;
use warnings FATAL => 'all';

use IPC::Run;

sub start
{
	my ($class, $connstr) = @_;
	my $self = bless { in => '', out => '', err => '' }, $class;
	$self->{timer} = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$self->{h} = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-f', '-' ],
		'<', \$self->{in}, '>', \$self->{out}, '2>', \$self->{err},
		$self->{timer});
	return $self;
}

# Run a query and return its output (without the final newline).
sub query
{
	my ($self, $sql) = @_;
	$sql .= ';' unless $sql =~ /;\s*$/;
	$self->{out} = '';
	$self->{in} .= "$sql\n\\echo __CM_DONE__\n";
	$self->{timer}->start($PostgreSQL::Test::Utils::timeout_default);
	IPC::Run::pump($self->{h})
	  until $self->{out} =~ /__CM_DONE__\n/ || !$self->{h}->pumpable;
	die "psql session failed: $self->{err}"
	  unless $self->{out} =~ s/\n?__CM_DONE__\n//;
	return $self->{out};
}

sub quit
{
	my ($self) = @_;
	return unless $self->{h};
	eval {
		$self->{in} .= "\\q\n";
		$self->{timer}->start(5);
		$self->{h}->finish;
	};
	$self->{h}->kill_kill if $@;
	$self->{h} = undef;
}

package CmWatchdog::Peer;

use strict;
use warnings FATAL => 'all';

use IO::Select;
use IO::Socket::INET;
use Socket ();
use Time::HiRes qw(time);

=pod

=item CmWatchdog::Peer->connect(port)

Open a TCP connection to the watchdog on 127.0.0.1.

=cut

sub connect
{
	my ($class, $port) = @_;
	my $sock = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $port,
		Proto => 'tcp',
		Timeout => $PostgreSQL::Test::Utils::timeout_default)
	  or die "could not connect to the watchdog on port $port: $!";
	$sock->autoflush(1);
	binmode($sock);
	return bless { sock => $sock, buf => '', port => $port }, $class;
}

sub sock { return $_[0]->{sock}; }

# Local port of the heartbeat connection.
sub local_port { return $_[0]->{sock}->sockport; }

sub send_raw
{
	my ($self, $bytes) = @_;
	local $SIG{PIPE} = 'IGNORE';
	my $n = syswrite($self->{sock}, $bytes);
	return defined $n && $n == length($bytes);
}

=pod

=item $peer->hello(%options)

Send a hello and read the answer.  Returns the decoded message (see
read_msg); a welcome has type 'W'.

=cut

sub hello
{
	my ($self, %o) = @_;
	$self->{interval} = $o{interval} // 1000;
	$self->send_raw(CmWire::hello_frame(%o)) or return undef;
	return $self->read_msg;
}

=pod

=item $peer->challenge(%options)

Send a hello asking for authentication method 1 (C<auth> and C<nonce> may
be overridden; the nonce is random by default) and read the answer.
Returns the answer (a challenge has type 'C' and its nonce in C<nonce>)
and the nonce sent in the hello.

=cut

sub challenge
{
	my ($self, %o) = @_;
	$o{auth} //= CmWire::AUTH_HMAC_SHA256;
	$o{nonce} //= CmWatchdog::random_nonce();
	my $hello = CmWire::hello_frame(%o);
	$self->{interval} = $o{interval} // 1000;
	$self->{th} = CmSeal::add(CmSeal::start(), $hello);
	$self->send_raw($hello) or return (undef, $o{nonce});
	my $m = $self->read_msg;
	if ($m && $m->{type} eq 'C')
	{
		$self->{challenge_raw} = $m->{raw};
		$self->{th} = CmSeal::add($self->{th}, $m->{raw});
	}
	return ($m, $o{nonce});
}

=pod

=item $peer->conmgr_proof(secret[, hello => FRAME])

conmgr's proof over this connection's hello and challenge, or over
another hello FRAME and the challenge received (a proof that must fail).

=cut

sub conmgr_proof
{
	my ($self, $secret, %o) = @_;
	my $th = $self->{th};
	$th = CmSeal::add(CmSeal::add(CmSeal::start(), $o{hello}), $self->{challenge_raw})
	  if defined $o{hello};
	return CmSeal::conmgr_proof($secret, $th);
}

=pod

=item $peer->watchdog_proof(secret, welcome)

The proof the watchdog must have put into WELCOME (a message read by
read_msg) with this secret.

=cut

sub watchdog_proof
{
	my ($self, $secret, $w) = @_;
	return CmWatchdog::welcome_proof($secret, $w);
}

=pod

=item $peer->start_session(secret, welcome)

Derive the session keys from the whole handshake: from now on every frame
sent is sealed and every frame read must be (docs/protocol.md).

=cut

sub start_session
{
	my ($self, $secret, $w) = @_;
	my $th = CmSeal::add($w->{th}, $w->{raw});
	@$self{qw(key_out key_in)} = CmSeal::session_keys($secret, $th);
	$self->{seq_out} = 0;
	$self->{seq_in} = 0;
	# datagrams: the session's id, a sequence of their own each way
	$self->{dgram_id} = CmSeal::datagram_id($secret, $th);
	$self->{dseq_out} = 0;
	$self->{dseq_in} = 0;
	return;
}

=pod

=item $peer->datagram(seq[, echo])

A heartbeat as a datagram (docs/protocol.md, "Datagram heartbeats"): the
session's datagram id, then the heartbeat sealed over channel 'U' with the
next datagram sequence number.  Not sent; see send_datagram.

=cut

sub datagram
{
	my ($self, $seq, $echo) = @_;
	$echo //= int(time() * 1000);
	return $self->{dgram_id}
	  . CmSeal::seal($self->{key_out}, ++$self->{dseq_out},
		CmWire::heartbeat_frame($seq, $echo), 'U');
}

# The peer's UDP socket (made on first use), on 127.0.0.1.
sub udp
{
	my ($self) = @_;
	$self->{udp} //= IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		Proto => 'udp') or die "UDP socket: $!";
	return $self->{udp};
}

=pod

=item $peer->send_datagram(bytes[, port])

Send bytes as one datagram from the peer's UDP socket to 127.0.0.1 at the
watchdog's port (or PORT).

=cut

sub send_datagram
{
	my ($self, $bytes, $port) = @_;
	my $to = Socket::sockaddr_in($port // $self->{port}, Socket::inet_aton('127.0.0.1'));
	return send($self->udp, $bytes, 0, $to);
}

=pod

=item $peer->read_datagram([timeout])

Wait for a datagram on the peer's UDP socket; returns undef when none came
in time, else a hash: C<raw>, C<from> (port it came from), and when it is
a reply of this session that verifies (id, tag over channel 'U', a
sequence number above the last), C<type>, C<seq>, C<echo>, C<attrs>,
C<dseq>; otherwise C<error> says what is wrong.

=cut

sub read_datagram
{
	my ($self, $timeout) = @_;
	my $sel = IO::Select->new($self->udp);
	return undef unless $sel->can_read($timeout // 1);
	my $from = recv($self->udp, my $d, 65536, 0);
	return undef unless defined $from;
	my ($port) = Socket::unpack_sockaddr_in($from);
	my %m = (raw => $d, from => $port);
	if (length($d) < 8 || substr($d, 0, 8) ne ($self->{dgram_id} // ''))
	{
		$m{error} = 'id';
		return \%m;
	}
	my ($dseq, $inner) = CmSeal::unseal($self->{key_in}, substr($d, 8), 'U');
	if (!defined $dseq)
	{
		$m{error} = 'tag';
		return \%m;
	}
	if ($dseq <= $self->{dseq_in})
	{
		$m{error} = 'sequence';
		return \%m;
	}
	$self->{dseq_in} = $dseq;
	my $msg = CmWire::decode(substr($inner, 0, 1), substr($inner, CmWire::HEADER_LEN));
	return { %m, %$msg, dseq => $dseq };
}

=pod

=item $peer->seal(frame)

The frame sealed with the next sequence number (not sent).

=cut

sub seal
{
	my ($self, $frame) = @_;
	return CmSeal::seal($self->{key_out}, ++$self->{seq_out}, $frame);
}

# Send a frame, sealed once the session has keys.
sub send_frame
{
	my ($self, $frame) = @_;
	$frame = $self->seal($frame) if $self->{key_out};
	return $self->send_raw($frame);
}

=pod

=item $peer->send_proof(proof)

Send a proof ('P') with these bytes.

=cut

sub send_proof
{
	my ($self, $proof) = @_;
	my $f = CmWire::proof_frame($proof);
	$self->{th} = CmSeal::add($self->{th}, $f) if defined $self->{th};
	return $self->send_frame($f);
}

=pod

=item $peer->authenticate(secret => ..., %options)

The whole handshake of method 1: hello (options as for hello; C<interval>
and C<timeout> default to the hello's defaults), challenge, proof computed
with C<secret>, then the answer.  Returns the final message (a welcome with
C<proof_len> and C<proof>, or a refusal; the challenge's refusal when no
challenge came), the nonce sent (Nc) and the watchdog's nonce (Ns, undef
without a challenge).

=cut

sub authenticate
{
	my ($self, %o) = @_;
	my $secret = delete $o{secret};
	die 'authenticate needs a secret' unless defined $secret;
	$o{interval} //= 1000;
	$o{timeout} //= 3000;
	my ($c, $nc) = $self->challenge(%o);
	return ($c, $nc, undef) unless $c && $c->{type} eq 'C';
	$self->send_proof($self->conmgr_proof($secret))
	  or return (undef, $nc, $c->{nonce});
	my $w = $self->read_msg;
	$self->start_session($secret, $w)
	  if $w && $w->{type} eq 'W' && ($w->{proof_len} // 0) == 32;
	return ($w, $nc, $c->{nonce});
}

=pod

=item $peer->heartbeat(seq)

Send a heartbeat and return the next message that is a reply, skipping
pushed attribute messages (which are kept in $peer->{pushed}).  Waits, if
needed, so that heartbeats go at most twice as often as the interval
announced in the hello: the watchdog takes faster ones for a protocol
violation.

=cut

sub heartbeat
{
	my ($self, $seq, $echo) = @_;
	# at most twice the announced rate, as the watchdog allows (a real
	# conmgr sends one heartbeat per interval)
	if (defined $self->{last_hb} && $self->{interval})
	{
		my $wait = $self->{last_hb} + $self->{interval} / 2000 - time();
		Time::HiRes::usleep(int($wait * 1_000_000)) if $wait > 0;
	}
	$self->{last_hb} = time();
	$echo //= int(time() * 1000);
	$self->send_frame(CmWire::heartbeat_frame($seq, $echo)) or return undef;
	while (1)
	{
		my $msg = $self->read_msg or return undef;
		return $msg if $msg->{type} ne 'A';
		push @{ $self->{pushed} }, $msg;
	}
}

# The next heartbeat of a peer that counts its own (sequence numbers from
# 1): true when the echo carries the same sequence number; a miss is
# counted otherwise.  beats() and missed() say how many.
sub beat
{
	my ($self) = @_;
	my $seq = ++$self->{beats};
	my $r = $self->heartbeat($seq);
	return 1 if $r && $r->{type} eq 'b' && $r->{seq} == $seq;
	$self->{missed}++;
	return 0;
}

sub beats { return $_[0]->{beats} // 0; }
sub missed { return $_[0]->{missed} // 0; }

sub register_session
{
	my ($self, $type, $pid, $addr, $port) = @_;
	return $self->send_frame(CmWire::register_frame($type, $pid, $addr, $port));
}

# A peer that comes and leaves cleanly: connect to PORT, hello (dies
# unless welcomed), goodbye, and wait until the watchdog closes.
sub come_and_go
{
	my ($class, $port, %hello) = @_;
	my $p = $class->connect($port);
	my $m = $p->hello(%hello);
	die "peer $hello{name} was not welcomed" unless $m && $m->{type} eq 'W';
	$p->goodbye;
	$p->wait_closed;
	return;
}

sub goodbye
{
	my ($self, $message) = @_;
	$message //= 'bye';
	return $self->send_frame(CmWire::goodbye_frame($message));
}

=pod

=item $peer->read_msg([timeout])

Read one message; returns a hash with C<type> and decoded fields, or undef
on timeout or end of file (then C<eof> is set).  A welcome carries
C<proof_len> and C<proof> (the watchdog's proof, empty without
authentication), a challenge C<nonce_len> and C<nonce>.

=cut

sub read_msg
{
	my ($self, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time() + $timeout;
	my $sel = IO::Select->new($self->{sock});
	while (1)
	{
		if (my ($type, $payload, $raw) = CmWire::take_frame(\$self->{buf}))
		{
			if ($self->{key_in})
			{
				my ($seq, $inner) = CmSeal::unseal($self->{key_in}, $raw);
				return { type => '!', error => 'tag', raw => $raw }
				  unless defined $seq;
				return { type => '!', error => 'sequence', seq => $seq, raw => $raw }
				  unless $seq == $self->{seq_in} + 1;
				$self->{seq_in} = $seq;
				$raw = $inner;
			}
			my $m = CmWire::decode($type, substr($raw, CmWire::HEADER_LEN));
			$m->{raw} = $raw;
			$m->{th} = $self->{th};    # the transcript before it
			return $m;
		}
		my $left = $deadline - time();
		return undef if $left <= 0;
		next unless $sel->can_read($left);
		my $n = sysread($self->{sock}, my $chunk, 65536);
		if (!$n)
		{
			$self->{eof} = 1;
			return undef;
		}
		$self->{buf} .= $chunk;
	}
}

=pod

=item $peer->wait_closed([timeout])

True when the watchdog closes the connection within the timeout; messages
received meanwhile are kept in $peer->{last}.

=cut

sub wait_closed
{
	my ($self, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time() + $timeout;
	while (time() < $deadline)
	{
		my $msg = $self->read_msg($deadline - time());
		return 1 if $self->{eof};
		$self->{last} = $msg if $msg;
	}
	return 0;
}

sub close
{
	my ($self) = @_;
	close($self->{sock}) if $self->{sock};
	$self->{sock} = undef;
}

=pod

=back

=cut

1;
