
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Local users against conmgr's application port: whoever takes the port
# first on a loopback address keeps conmgr from starting (it would answer
# applications in its place); conmgr keeps the port until it exits.

use strict;
use warnings FATAL => 'all';

use IO::Socket::INET;
use IO::Socket::IP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CmConmgr;

my $wd = CmConmgr::FakeWatchdog->new(attrs => 0);

# conmgr.conf of a conmgr on $port with the fake watchdog as instance 0.
sub dir_for
{
	my ($port, %params) = @_;
	return CmConmgr::conmgr_dir(
		port => $port,
		heartbeat_interval => 200,
		heartbeat_timeout => 1000,
		%params,
		instances => [
			{ hostaddr => '127.0.0.1', port => 5432, watchdog_port => $wd->port }
		]);
}

# ---- the port already bound by another program at start
foreach my $addr ('127.0.0.1', '::1')
{
  SKIP:
	{
		my $port = PostgreSQL::Test::Cluster::get_free_port();
		my $squatter = IO::Socket::IP->new(
			LocalHost => $addr,
			LocalPort => $port,
			Listen => 5,
			ReuseAddr => 1);
		skip "no $addr on this host", 4 if !$squatter && $addr eq '::1';
		die "listen on $addr: $@" unless $squatter;
		my $dir = dir_for($port);
		my ($rc, $out, $err) = CmConmgr::cm_ctl('start', '-D', $dir, '-t', '10');
		my $fam = $addr eq '::1' ? 'IPv6' : 'IPv4';
		is($rc, 1, "$addr:$port taken: cm_ctl start fails");
		like($err,
			qr/FATAL:  could not bind $fam address "\Q$addr\E", port $port: Address already in use/,
			"$addr taken: the error names the address and the cause");
		like($err, qr/conmgr must hold port $port on every loopback address of the host.*conmgr not started/,
			"$addr taken: conmgr says why it does not start");
		ok(!CmConmgr::conmgr_pid($dir), "$addr taken: no conmgr left running");
	}
}

done_testing();
