# The failure-scenario lab itself: three hosts as network namespaces on a
# bridge, a primary and a streaming standby running as the unprivileged
# user, a partition that really loses packets (without FIN or RST) and
# heals, and a teardown that leaves no namespace, process or directory.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IPC::Run;
use CmLab;

CmLab::require_root();

my $lab = CmLab->new;
my @ns = map { $lab->ns($_) } qw(br client db1 db2);
ok((grep { -e "/run/netns/$_" } @ns) == 4, 'four lab namespaces exist');

$lab->init_primary('db1');
$lab->init_standby('db2', 'db1');
is($lab->sql('db1', 'SELECT pg_is_in_recovery()'), 'f', 'db1 runs a primary');
is($lab->sql('db2', 'SELECT pg_is_in_recovery()'), 't', 'db2 runs a standby');
is($lab->sql('db1', 'SELECT current_user'), CmLab::user(),
	'PostgreSQL runs as the unprivileged user');
is($lab->sql('db1', 'SELECT client_addr FROM pg_stat_replication'),
	$lab->addr('db2'), 'the standby streams over the lab network');

# an application in the client namespace reaches the primary by its address
my $app = $lab->start_app('lab_app', $lab->conninfo('db1'), 'idle', 60, 'idle_probe');
my $ready = $lab->wait_event($app, 'ready');
ok($ready, 'an application in the client host connects to db1')
  or diag($lab->output($app));
is($lab->sql('db1', "SELECT client_addr FROM pg_stat_activity WHERE pid = " . ($ready->{pid} // 0)),
	$lab->addr('client'), 'its session comes from the client host address');

# a partition loses packets: no reply, and no error on either end
my $t_cut = $lab->cut('db1');
ok(!$lab->reachable('client', 'db1'), 'while db1 is cut, the client cannot reach it');
ok($lab->reachable('client', 'db2'), 'while db1 is cut, the client still reaches db2');
ok(!$lab->event($app, 'failed'), 'an idle session is told nothing by the cut itself (no RST)');
ok($lab->backend_alive('db1', $ready->{pid}), 'the server keeps the session of the cut client');
$lab->heal('db1');
ok($lab->wait_until('db1 reachable again', sub { $lab->reachable('client', 'db1') }), 'after healing, the client reaches db1 again');
is($lab->sql('db1', "SELECT count(*) FROM pg_stat_activity WHERE pid = $ready->{pid}"), '1',
	'the session survived the short cut');

# The path comes back with the link, even for a host that tried to send
# during the cut: it kept its ARP cache, so it does not wait for its next
# ARP request, which Linux sends only every second (CmLab::new).
SKIP:
{
	skip 'this kernel has no arp_evict_nocarrier', 1
	  unless -e '/proc/sys/net/ipv4/conf/all/arp_evict_nocarrier';
	$lab->cut('db1');
	$lab->reachable('db1', 'client', 0.1);    # db1 sends during the cut
	usleep(200_000);
	my $t_heal = $lab->heal('db1');
	my $back;
	while (time - $t_heal < 3)
	{
		if ($lab->reachable('client', 'db1', 0.05)) { $back = time - $t_heal; last; }
	}
	ok(defined $back && $back < 0.5,
		sprintf('a host that sent during a 200 ms cut answers again within 0.5 s of the heal (%s)',
			defined $back ? sprintf('%.3f s', $back) : 'not within 3 s'));
}

# teardown: nothing is left behind
my @pids = map { my $p = `ip netns pids $_`; grep { /^\d+$/ } split /\s+/, $p } @ns;
ok(@pids > 0, 'processes run inside the lab before teardown');
my $dir = $lab->dir;
$lab->teardown;
ok(!(grep { -e "/run/netns/$_" } @ns), 'teardown removed every namespace');
ok(!(grep { CmLab::process_exists($_) } @pids), 'teardown ended every process of the lab');
ok(!-e $dir, 'teardown removed the lab directory');

# a test killed by a signal also tears its lab down
my $child_tag = "cmc$$";
my $child_script = "$PostgreSQL::Test::Utils::tmp_check/lab_child.pl";
open my $fh, '>', $child_script or die "$child_script: $!";
print $fh q{
use strict;
use warnings;
use CmLab;
use Test::More;
my $lab = CmLab->new;
$lab->init_primary('db1');
note("READY " . $lab->dir);
# wait to be killed
select(undef, undef, undef, 600);
};
close $fh;
my $child_out = '';
my $child;
{
	local $ENV{CM_LAB_TAG} = $child_tag;
	$child = IPC::Run::start([ $^X, (map { "-I$_" } @INC), $child_script ],
		'<', \undef, '>', \$child_out, '2>&1');
}
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while ($child_out !~ /READY /m && $child->pumpable && time < $deadline)
{
	eval { $child->pump_nb; };
	usleep(50_000);
}
my ($child_dir) = $child_out =~ /READY (\S+)/m;
ok($child_dir, 'a second lab runs in another process') or diag($child_out);
my @child_ns = grep { /^\Q$child_tag\E/ } map { (split)[0] } `ip netns list`;
is(scalar(@child_ns), 4, 'it has its own four namespaces');
my @child_pids = map { my $p = `ip netns pids $_`; grep { /^\d+$/ } split /\s+/, $p } @child_ns;
ok(@child_pids > 0, 'its PostgreSQL runs');
$child->signal('TERM');
$deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while ($child->pumpable && time < $deadline)
{
	eval { $child->pump_nb; };
	usleep(50_000);
}
$child->finish;
ok(!(grep { -e "/run/netns/$_" } @child_ns), 'after SIGTERM its namespaces are gone');
ok(!(grep { CmLab::process_exists($_) } @child_pids), 'after SIGTERM its processes are gone');
ok($child_dir && !-e $child_dir, 'after SIGTERM its directory is gone');
like($child_out, qr/lab torn down after SIGTERM/, 'it said why it stopped');

done_testing();
