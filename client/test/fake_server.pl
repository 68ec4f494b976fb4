#!/usr/bin/perl
#
# fake_server.pl: a stand-in for a PostgreSQL server that records what
# clients send it, used by the client library's tests to prove that a
# password or a startup packet did (or did not) reach a server that an
# impostor named.
#
#   fake_server.pl PORT [ADDRESS]      (default address 127.0.0.1)
#
# It answers SSLRequest and GSSENCRequest with 'N', asks for a cleartext
# password after the startup packet, and prints one line per event:
#   listening port=PORT
#   accepted
#   negotiate code=CODE
#   startup user=USER database=DB
#   password=PASSWORD
#   bytes=N                (when the client closes: everything it sent)
#
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../../t/lib";
use CmWire;
use IO::Socket::IP;
use IO::Select;

my ($port, $addr) = @ARGV;
die "usage: $0 PORT [ADDRESS]\n" unless defined $port;
$addr //= '127.0.0.1';
$| = 1;

my $listen = IO::Socket::IP->new(
	LocalHost => $addr,
	LocalPort => $port,
	Listen    => 16,
	ReuseAddr => 1,
	Proto     => 'tcp') or die "cannot listen on $addr port $port: $@\n";
print "listening port=$port\n";
$SIG{TERM} = sub { exit 0 };

my $sel = IO::Select->new($listen);
my %client;    # fileno => { sock, buf, total, stage }

sub finish
{
	my $fd = shift;
	my $c  = delete $client{$fd} or return;
	print "bytes=$c->{total}\n";
	$sel->remove($c->{sock});
	close $c->{sock};
}

while (1)
{
	# the connections first, new ones last: a client that closed before
	# the next one connected is reported before it (tests sync on that)
	for my $s (sort { ($a == $listen) <=> ($b == $listen) } $sel->can_read(0.5))
	{
		if ($s == $listen)
		{
			my $c = $listen->accept or next;
			print "accepted\n";
			$sel->add($c);
			$client{ fileno $c } = { sock => $c, buf => '', total => 0, stage => 'startup' };
			next;
		}
		my $fd = fileno $s;
		my $c  = $client{$fd} or next;
		my $n  = sysread $s, my $data, 8192;
		if (!$n)
		{
			finish($fd);
			next;
		}
		$c->{total} += $n;
		$c->{buf} .= $data;
		while (1)
		{
			if ($c->{stage} eq 'startup')
			{
				last if length $c->{buf} < 8;
				my ($len, $code) = unpack('NN', $c->{buf});
				last if length $c->{buf} < $len;
				my $body = substr($c->{buf}, 8, $len - 8);
				substr($c->{buf}, 0, $len, '');
				if ($code == CmWire::SSL_CODE || $code == CmWire::GSS_CODE)
				{
					print "negotiate code=$code\n";
					syswrite $s, 'N';
					next;
				}
				my %p = split /\0/, $body;
				print "startup user=" . ($p{user} // '') . " database="
				  . ($p{database} // '') . "\n";
				# AuthenticationCleartextPassword
				syswrite $s, 'R' . pack('NN', 8, 3);
				$c->{stage} = 'password';
				next;
			}
			my ($type, $body) = CmWire::take_frame(\$c->{buf}) or last;
			if ($type eq 'p')
			{
				$body =~ s/\0$//;
				print "password=$body\n";
				my $f = "SFATAL\0VFATAL\0C28P01\0Mpassword recorded by the fake server\0\0";
				syswrite $s, CmWire::frame('E', $f);
			}
			else
			{
				print "message type=$type\n";
			}
		}
	}
}
