
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

=pod

=head1 NAME

CmSeal - authentication method 2 of the heartbeat channel, for test peers

=head1 DESCRIPTION

The transcript hash, the proofs, the session keys and sealed frames of
docs/protocol.md ("Authentication"), written here from the protocol text
with Digest::SHA, independently of common/cm_auth.c, so that the test
peers (CmWatchdog::Peer as conmgr, CmConmgr::FakeWatchdog as the
watchdog) check the C code rather than share it.

=cut

package CmSeal;

use strict;
use warnings FATAL => 'all';

use Digest::SHA qw(sha256 hmac_sha256);

use constant {
	AUTH_METHOD => 2,
	SEAL_LEN => 24,    # u64 sequence number + 16-byte tag
	TAG_LEN => 16,
};

# The transcript before the first frame.
sub start { return "\0" x 32; }

# The transcript after one more frame (type, length and payload).
sub add
{
	my ($th, $frame) = @_;
	return sha256('CMWD2 transcript' . $th . $frame);
}

# conmgr's proof over the transcript of hello and challenge.
sub conmgr_proof
{
	my ($secret, $th) = @_;
	return hmac_sha256('CMWD2 conmgr proof' . $th, $secret);
}

# The watchdog's proof over hello, challenge, proof and the welcome
# without its proof field.
sub watchdog_proof
{
	my ($secret, $th) = @_;
	return hmac_sha256('CMWD2 watchdog proof' . $th, $secret);
}

# The two direction keys from the transcript of the whole handshake:
# (conmgr to watchdog, watchdog to conmgr).
sub session_keys
{
	my ($secret, $th) = @_;
	my $k = hmac_sha256('CMWD2 session key' . $th, $secret);
	return (hmac_sha256('CMWD2 conmgr to watchdog', $k),
		hmac_sha256('CMWD2 watchdog to conmgr', $k));
}

# The session's datagram id (docs/protocol.md, "Datagram heartbeats"):
# the first 8 bytes of HMAC(K, "CMWD2 datagram id"), K the session key.
sub datagram_id
{
	my ($secret, $th) = @_;
	my $k = hmac_sha256('CMWD2 session key' . $th, $secret);
	return substr(hmac_sha256('CMWD2 datagram id', $k), 0, 8);
}

# A welcome frame with its proof: the proof is the last field (u8 32, then
# 32 bytes) and covers everything before it.
sub prove_welcome
{
	my ($secret, $th, $welcome_without_proof_field) = @_;
	my $w = $welcome_without_proof_field;
	my $proof = watchdog_proof($secret, add($th, $w));
	return $w . pack('C', 32) . $proof;
}

# Seal a frame: length field counting the trailer, u64 sequence number,
# then the first 16 bytes of HMAC(key, channel || everything before).
sub seal
{
	my ($key, $seq, $frame, $channel) = @_;
	$channel //= 'T';
	my $s = substr($frame, 0, 1)
	  . pack('N', length($frame) - 1 + SEAL_LEN)
	  . substr($frame, 5)
	  . pack('Q>', $seq);
	return $s . substr(hmac_sha256($channel . $s, $key), 0, TAG_LEN);
}

# Open a sealed frame: (sequence number, the frame as it was before
# sealing), or () when the tag does not verify.
sub unseal
{
	my ($key, $frame, $channel) = @_;
	$channel //= 'T';
	return () if length($frame) < 5 + SEAL_LEN;
	my $body = substr($frame, 0, length($frame) - TAG_LEN);
	my $tag = substr($frame, -TAG_LEN);
	return () if substr(hmac_sha256($channel . $body, $key), 0, TAG_LEN) ne $tag;
	my $seq = unpack('Q>', substr($body, -8));
	my $inner = substr($body, 0, length($body) - 8);
	substr($inner, 1, 4) = pack('N', length($inner) - 1);
	return ($seq, $inner);
}

1;
