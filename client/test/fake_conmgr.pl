#!/usr/bin/perl
#
# fake_conmgr.pl: a minimal stand-in for conmgr's application channel,
# used by the client library's TAP tests to drive cases that a real conmgr
# cannot easily produce (no instance, a silent conmgr, a protocol error).
#
#   fake_conmgr.pl PORT MODE [ARG]
#     MODE instance HOST:PORT   answer every route request with that instance
#     MODE none                 answer "no instance"
#     MODE silent               accept, send the greeting, never answer
#     MODE garbage              answer the route request with an invalid frame
#     MODE partial HOST:PORT    as instance, but the notice is cut after 3 bytes
#                               and the socket stays open
#
# It listens on 127.0.0.1, or on the address in FAKE_CONMGR_ADDR (::1 for
# IPv6).
#
# On SIGUSR1 every registered client gets a failure notice ('F') and its
# socket is closed; on SIGUSR2 every client socket is closed without one.
# Prints one line per event on stdout.
#
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../../t/lib";
use CmWire;
use IO::Socket::IP;
use IO::Select;

my ($port, $mode, $arg) = @ARGV;
die "usage: $0 PORT MODE [ARG]\n" unless defined $mode;
$| = 1;

my $listen = IO::Socket::IP->new(
	LocalHost => $ENV{FAKE_CONMGR_ADDR} || '127.0.0.1',
	LocalPort => $port,
	Listen    => 64,
	ReuseAddr => 1,
	Proto     => 'tcp') or die "cannot listen on $port: $@\n";
print "listening port=$port\n";

my $sel = IO::Select->new($listen);
my %client;    # fileno => { sock, buf, stage }
my ($notice, $drop) = (0, 0);
$SIG{USR1} = sub { $notice = 1 };
$SIG{USR2} = sub { $drop   = 1 };
$SIG{TERM} = sub { exit 0 };

sub greeting
{
	my $f = "SFATAL\0VFATAL\0C08P01\0Mthis port is a Connection Manager\0"
	  . "cconmgr 256 256\0\0";
	return CmWire::frame('E', $f);
}

sub close_client
{
	my $fd = shift;
	my $c  = delete $client{$fd} or return;
	$sel->remove($c->{sock});
	close $c->{sock};
}

while (1)
{
	if ($notice)
	{
		$notice = 0;
		for my $fd (keys %client)
		{
			next unless $client{$fd}{stage} eq 'registered';
			my $s = $client{$fd}{sock};
			my $f = CmWire::frame('F', CmWire::notice_payload(6, 'heartbeat not answered within 3000 ms'));
			if ($mode eq 'partial')
			{
				syswrite $s, substr($f, 0, 3);
				$client{$fd}{stage} = 'cut';
				print "partial notice fd=$fd\n";
				next;
			}
			syswrite $s, $f;
			print "notice fd=$fd\n";
			close_client($fd);
		}
	}
	if ($drop)
	{
		$drop = 0;
		close_client($_) for keys %client;
		print "dropped\n";
	}
	# the connections first, new ones last: a client that closed before
	# the next one connected is reported before it (tests sync on that)
	my @ready = sort { ($a == $listen) <=> ($b == $listen) } $sel->can_read(0.2);
	for my $s (@ready)
	{
		if ($s == $listen)
		{
			my $c = $listen->accept or next;
			$sel->add($c);
			$client{ fileno $c } = { sock => $c, buf => '', stage => 'gss' };
			next;
		}
		my $fd = fileno $s;
		my $c  = $client{$fd} or next;
		my $n  = sysread $s, my $data, 4096;
		if (!$n)
		{
			print "closed stage=$c->{stage}\n";
			close_client($fd);
			next;
		}
		$c->{buf} .= $data;
		while (1)
		{
			if ($c->{stage} eq 'gss')
			{
				last if length $c->{buf} < 8;
				my ($len, $code) = unpack('NN', substr($c->{buf}, 0, 8, ''));
				if ($code != CmWire::GSS_CODE)
				{
					print "startup code=$code\n";
					close_client($fd);
					last;
				}
				syswrite $s, greeting();
				$c->{stage} = 'route';
				next;
			}
			my ($type, $payload) = CmWire::take_frame(\$c->{buf}) or last;
			my $m = CmWire::decode($type, $payload);
			if ($type eq 'R')
			{
				print "route tsa=$m->{tsa} pid=$m->{pid} app=$m->{app}\n";
				if ($mode eq 'instance' || $mode eq 'partial')
				{
					my ($h, $p) = split /:/, $arg;
					syswrite $s, CmWire::frame('I', pack('nCn', 0, 0, $p) . CmWire::str16($h));
				}
				elsif ($mode eq 'none')
				{
					syswrite $s, CmWire::frame('N', CmWire::notice_payload(9, 'no live instance matches'));
				}
				elsif ($mode eq 'garbage')
				{
					syswrite $s, CmWire::frame('Q', 'xyz');
				}
				$c->{stage} = 'routed';
			}
			elsif ($type eq 'J')
			{
				my $a = $m->{family} == 4 ? join('.', unpack('C4', $m->{addr})) : unpack('H*', $m->{addr});
				print "register pid=$m->{pid} addr=$a port=$m->{port}\n";
				$c->{stage} = 'registered';
			}
			else
			{
				print "unexpected type=$type\n";
			}
		}
	}
}
