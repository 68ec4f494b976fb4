
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

=pod

=head1 NAME

CmWire - the wire protocol of common/cm_protocol.h as the tests speak it:
constants, frames, and the messages they build and read

=head1 SYNOPSIS

  use CmWire;

  my $f = CmWire::frame('B', pack('N Q>', 1, 0));    # any frame, by hand
  my $h = CmWire::hello_frame(interval => 200, timeout => 600);
  my $r = CmWire::route_frame('read-write', $$, 'tap');
  while (my ($type, $payload, $raw) = CmWire::take_frame(\$buf)) { ... }
  my $m = CmWire::decode($type, $payload);    # { type => 'W', attrs => 0, ... }

=head1 DESCRIPTION

A frame is a type byte, a uint32 length counting itself and the payload,
then the payload (docs/protocol.md).  The builders make well-formed
messages; a test that sends a malformed one packs its payload itself and
wraps it with frame().  Sealing is CmSeal's.

=cut

package CmWire;

use strict;
use warnings FATAL => 'all';

use Carp;
use CmProg;
use Socket ();

use constant {
	MAGIC => 0x434d5744,
	VERSION_1_0 => 0x0100,
	VERSION_1_1 => 0x0101,
	VERSION_1_2 => 0x0102,
	PROTO_VERSION => 0x0100,    # what the client library sends
	HEADER_LEN => 5,
	MAX_MSG => 2048,            # a whole frame, type byte included
	DATAGRAM_ID_LEN => 8,
	ATTR_STANDBY => 0x01,
	ATTR_READ_ONLY => 0x02,
	ATTR_STOPPING => 0x04,
	AUTH_NONE => 0,
	AUTH_HANDSHAKE_ONLY => 1,    # retired: refused
	AUTH_HMAC_SHA256 => 2,
	NONCE_LEN => 32,
	REASON_VERSION => 1,
	REASON_TOO_MANY => 2,
	REASON_PROTOCOL => 3,
	REASON_AUTH => 4,
	REASON_SHUTDOWN => 5,
	REASON_RESTART => 12,
	GSS_CODE => 80877104,
	SSL_CODE => 80877103,
};

# target_session_attrs as the route request numbers them
our %TSA = (
	'any' => 0,
	'read-write' => 1,
	'read-only' => 2,
	'primary' => 3,
	'standby' => 4,
	'prefer-standby' => 5);

# the reasons of notices, refusals and goodbyes, by name
our %REASON = (
	version => REASON_VERSION,
	too_many => REASON_TOO_MANY,
	protocol => REASON_PROTOCOL,
	auth => REASON_AUTH,
	shutdown => REASON_SHUTDOWN,
	timeout => 6,
	conn_lost => 7,
	attr_changed => 8,
	no_instance => 9,
	config => 10,
	restart => REASON_RESTART);

=pod

=over

=item frame(type, [payload])

=cut

sub frame
{
	my ($type, $payload) = @_;
	$payload //= '';
	return $type . pack('N', 4 + length($payload)) . $payload;
}

=pod

=item take_frame(\$buf, [max])

Take one whole frame off the front of $$buf: returns (type, payload, the
frame's bytes), or an empty list while it is incomplete.  Dies on a length
below 4 or, when MAX is given, above it.  Also reads PostgreSQL's own
messages, which have the same shape.

=cut

sub take_frame
{
	my ($buf, $max) = @_;
	return if length($$buf) < HEADER_LEN;
	my ($type, $len) = unpack('a N', $$buf);
	croak "bad frame length $len" if $len < 4 || (defined $max && $len > $max);
	return if length($$buf) < 1 + $len;
	my $raw = substr($$buf, 0, 1 + $len, '');
	return ($type, substr($raw, HEADER_LEN), $raw);
}

=pod

=item header(bytes)

The type and length of a frame header (its first 5 bytes).

=cut

sub header { return unpack('a N', $_[0] // ''); }

=pod

=item str16(string)

A string field: uint16 length, bytes.

=cut

sub str16 { return pack('n/a*', $_[0]); }

# A notice's payload (S, X, G, N, F): uint16 reason, string.
sub notice_payload
{
	my ($reason, $msg) = @_;
	return pack('n', $reason) . str16($msg);
}

=pod

=item hello_frame(%o)

A hello ('H'): magic, min_version, max_version, interval, timeout, auth,
nonce, name, optional incarnation (u64); each may be given, the defaults
are a well-formed 1.0 hello without authentication.

=cut

sub hello_frame
{
	my (%o) = @_;
	my $name = $o{name} // 'test-peer';
	my $nonce = $o{nonce} // '';
	return frame(
		'H',
		pack('N n n N N C C',
			$o{magic} // MAGIC,
			$o{min_version} // VERSION_1_0,
			$o{max_version} // VERSION_1_0,
			$o{interval} // 1000,
			$o{timeout} // 3000,
			$o{auth} // AUTH_NONE,
			length($nonce))
		  . $nonce
		  . str16($name)
		  . (defined $o{incarnation} ? pack('Q>', $o{incarnation}) : ''));
}

# A proof ('P'): u8 length, bytes.
sub proof_frame
{
	my ($proof) = @_;
	return frame('P', pack('C', length($proof)) . $proof);
}

# A heartbeat ('B'): sequence number, echo (u64).
sub heartbeat_frame
{
	my ($seq, $echo) = @_;
	return frame('B', pack('N Q>', $seq, $echo));
}

=pod

=item register_frame(type, pid, ipv4, port)

A registration ('J') or unregistration ('K') of a session at an IPv4
address (dotted, or packed 4 bytes).

=cut

sub register_frame
{
	my ($type, $pid, $addr, $port) = @_;
	$addr = Socket::inet_aton($addr) if length($addr) != 4;
	return frame($type, pack('N C a4 n', $pid, 4, $addr, $port));
}

# A goodbye ('G') with a reason (shutdown unless told).
sub goodbye_frame
{
	my ($message, $reason) = @_;
	return frame('G', notice_payload($reason // REASON_SHUTDOWN, $message));
}

=pod

=item route_frame(tsa, pid, application_name)

A route request ('R') of the client library's protocol version; TSA by
name (any, read-write, ...).

=cut

sub route_frame
{
	my ($tsa, $pid, $appname) = @_;
	croak "unknown tsa $tsa" unless exists $TSA{$tsa};
	return frame('R', pack('n C N', PROTO_VERSION, $TSA{$tsa}, $pid) . str16($appname));
}

# The GSSENCRequest the client library opens the application channel with.
sub gss_request { return pack('N N', 8, GSS_CODE); }

=pod

=item decode(type, payload)

The fields of a message as a hash with C<type>: welcome (version,
check_attr_interval, server_timeout, attrs, proof_len and proof when
present), challenge (nonce_len, nonce), heartbeat reply (seq, echo,
attrs), attributes (attrs), notices S X G N F (reason, message), instance
I (instance, attrs, port, host); and what conmgr and the client library
send: hello H (magic, min_version, max_version, interval, timeout, auth,
nonce_len, nonce, name), proof P (proof_len, proof), registration J and
unregistration K (pid, family, addr as packed bytes, port), route request
R (version, tsa, pid, app).

=cut

sub decode
{
	my ($type, $p) = @_;
	my %m = (type => $type);
	if ($type eq 'W')
	{
		@m{qw(version check_attr_interval server_timeout attrs)} =
		  unpack('n N N C', $p);
		# the watchdog's proof: u8 length, bytes (empty without authentication)
		if (length($p) > 11)
		{
			$m{proof_len} = unpack('C', substr($p, 11, 1));
			$m{proof} = substr($p, 12, $m{proof_len});
		}
	}
	elsif ($type eq 'C')
	{
		$m{nonce_len} = unpack('C', $p);
		$m{nonce} = substr($p, 1, $m{nonce_len});
	}
	elsif ($type eq 'b')
	{
		@m{qw(seq echo attrs)} = unpack('N Q> C', $p);
	}
	elsif ($type eq 'A')
	{
		$m{attrs} = unpack('C', $p);
	}
	elsif ($type =~ /^[SXGNF]$/)
	{
		@m{qw(reason message)} = unpack('n n/a*', $p);
	}
	elsif ($type eq 'I')
	{
		@m{qw(instance attrs port host)} = unpack('n C n n/a*', $p);
	}
	elsif ($type eq 'H')
	{
		@m{qw(magic min_version max_version interval timeout auth nonce_len)} =
		  unpack('N n n N N C C', $p);
		$m{nonce} = substr($p, 18, $m{nonce_len});
		$m{name} = unpack('n/a*', substr($p, 18 + $m{nonce_len}));
	}
	elsif ($type eq 'P')
	{
		$m{proof_len} = unpack('C', $p);
		$m{proof} = substr($p, 1, $m{proof_len});
	}
	elsif ($type eq 'J' || $type eq 'K')
	{
		# family 4 or 6, the address as packed bytes
		@m{qw(pid family)} = unpack('N C', $p);
		my $alen = $m{family} == 4 ? 4 : 16;
		@m{qw(addr port)} = unpack("a$alen n", substr($p, 5));
	}
	elsif ($type eq 'R')
	{
		@m{qw(version tsa pid app)} = unpack('n C N n/a*', $p);
	}
	return \%m;
}

=pod

=item datagram_seq(datagram)

The heartbeat sequence number a datagram carries in clear (after the
session's id and the frame header), or '?' when it is too short.

=cut

sub datagram_seq
{
	my ($d) = @_;
	my $off = DATAGRAM_ID_LEN + HEADER_LEN;
	return length($d) >= $off + 4 ? unpack('N', substr($d, $off, 4)) : '?';
}

=pod

=item newest_version()

The newest protocol version the source tree speaks, "MAJOR.MINOR": the
CM_PROTO_VERSION_MAX of common/cm_protocol.h, followed through the
CM_PROTO_VERSION_M_N it names to its CM_PROTO_VERSION(m, n).

=cut

sub newest_version
{
	my $v = CmProg::define('cm_protocol.h', 'CM_PROTO_VERSION_MAX');
	$v = CmProg::define('cm_protocol.h', $v) while $v =~ /^CM_PROTO_VERSION_\w+$/;
	$v =~ /^CM_PROTO_VERSION\((\d+),\s*(\d+)\)$/
	  or croak "CM_PROTO_VERSION_MAX is not a CM_PROTO_VERSION(m, n): $v";
	return "$1.$2";
}

=pod

=back

=cut

1;
