
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# conmgr, as root: another local user tries to take every application
# slot.  User "nobody" opens twice max_app_connections connections to
# conmgr's port, routes each and holds them; conmgr lets it have its share
# (max_app_connections_per_user, half of the slots by default) and refuses
# the rest at once, naming the user.  Meanwhile an application of another
# user is routed at once.  t/280 covers the limits with one user; telling
# users apart needs a second one, so scripts/test-partitions.sh runs this
# file as root.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IPC::Run;
use File::Temp ();
use CmConmgr;

plan skip_all => 'needs root to run a squatter as another user; '
  . 'scripts/test-partitions.sh runs it as root'
  if $> != 0;
my $nobody = getpwnam('nobody');
plan skip_all => 'user "nobody" does not exist' unless defined $nobody;

my $cmuser = $ENV{CM_USER} // 'cmtest';
my $cmuid = getpwnam($cmuser);
plan skip_all => "user \"$cmuser\" does not exist (set CM_USER)" unless defined $cmuid;

# conmgr runs as the unprivileged test user (it refuses root), in a
# directory of its own
my $max = 10;
my $wd = CmConmgr::FakeWatchdog->new(attrs => 0);
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dir = File::Temp::tempdir('cm481.XXXXXX', TMPDIR => 1, CLEANUP => 1);
# cm_ctl refuses root as conmgr does: both run as conmgr's user
my $cm = CmConmgr->new(
	dir => $dir,
	user => $cmuser,
	text => "port = $port\nmax_app_connections = $max\napp_register_timeout = 60000\n"
	  . "backend_hostaddr0 = '127.0.0.1'\nbackend_port0 = 6000\nwatchdog_port0 = "
	  . $wd->port . "\n")->start;
ok(CmConmgr::wait_for(sub { $cm->status =~ /"number": 0, [^}]*"state": "up"/ }, 'instance 0 up'),
	'instance up') or diag(slurp_file($cm->logfile));

# the squatter: 2 * max connections, each routed and held until stdin ends
my $squatter = <<'PERL';
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
$| = 1;
my ($port, $n) = @ARGV;
sub frame { my ($t, $p) = @_; return $t . pack('N', 4 + length $p) . $p; }
sub msg
{
	my ($s) = @_;
	return ('', '') unless IO::Select->new($s)->can_read(10);
	my $h = '';
	while (length $h < 5) { sysread($s, $h, 5 - length $h, length $h) or return ('', ''); }
	my ($t, $len) = unpack('a N', $h);
	my $b = '';
	while (length $b < $len - 4) { sysread($s, $b, $len - 4 - length $b, length $b) or return ('', ''); }
	return ($t, $b);
}
my (@held, %count, $refusal);
for (1 .. $n)
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die "connect: $!\n";
	syswrite($s, pack('N N', 8, 80877104));
	my ($t, $b) = msg($s);
	if ($t eq 'E' && $b =~ /cconmgr /)
	{
		syswrite($s, frame('R', pack('n C N n/a*', 0x0100, 0, $$, 'squatter')));
		($t, $b) = msg($s);
	}
	elsif ($t eq 'E')
	{
		# a refusal at once: the greeting carries the error, then 'X'
		($t, $b) = msg($s);
	}
	$count{$t}++;
	if ($t eq 'X')
	{
		$refusal //= (unpack('n n/a*', $b))[1];
	}
	push @held, $s;
}
print "routed=", ($count{I} // 0), " refused=", ($count{X} // 0), "\n";
print "refusal=$refusal\n" if defined $refusal;
print "held\n";
<STDIN>;
PERL

my ($in, $out, $err) = ('', '', '');
my $h = IPC::Run::start([ 'setpriv', "--reuid=$nobody", '--regid=nogroup', '--clear-groups', '--',
		'perl', '-e', $squatter, $port, 2 * $max ],
	'<', \$in, '>', \$out, '2>', \$err);
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline && $out !~ /^held$/m)
{
	$h->pump_nb;
	last unless $h->pumpable;
	Time::HiRes::usleep(20_000);
}
like($out, qr/^held$/m, 'the squatter, as nobody, holds its connections') or diag("$out$err");
my $share = int(($max + 1) / 2);
my $over = 2 * $max - $share;
like($out, qr/^routed=$share refused=$over$/m,
	"nobody gets its share ($share of $max) and the rest are refused at once");
like($out, qr/^refusal=too many application connections to conmgr on port $port from user $nobody \(max_app_connections_per_user = $share\)/m,
	'the refusal names the user and the setting');

# an application of another user (root here) is routed at once
my $t0 = time;
my $app = CmConmgr::App->connect($port);
my $r = $app && $app->route('any', 'real-app');
is($r && $r->{type}, 'I', 'an application of another user is routed while nobody holds its share');
cmp_ok(time - $t0, '<', 1.0, 'at once');
$app->close if $app;

my @apps = $cm->applications;
is(scalar(grep { ($_->{uid} // '') eq $nobody } @apps), $share,
	'cm_ctl status shows the share held by nobody');

$in .= "\n";
$h->finish;
$cm->handle->kill_kill(grace => 5);
done_testing();
