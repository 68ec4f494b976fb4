# Scenario 2 with watchdog.termination_mode = precise: the client's host
# is cut; the terminator ends only the sessions that were registered
# through the lost conmgr -- within the same bound as in address mode --
# and leaves the client host's other sessions (plain libpq, never through
# Connection Manager) alone.  Before the cut, another local user of the
# client host tries to take the registered session out of precise
# termination through conmgr's port: it registers the session's PID with
# its own socket, and with the session's own port, and leaves.  Neither
# reaches the watchdog's table, and the session is still ended at the cut.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CmLab;
use IPC::Run;

CmLab::require_root();

my $margin = 1.0;    # s
my $lab = CmLab->new;
my $cm = $lab->cm_setup(heartbeat_interval => 200, heartbeat_timeout => 1000,
	timeout_margin => 500, conf => "watchdog.termination_mode = precise\n");
is($lab->sql('db1', 'SHOW watchdog.termination_mode'), 'precise', 'the primary runs in precise mode');

my $server_timeout = $lab->sql('db1',
	"SELECT server_timeout FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
	  . $lab->addr('client') . "'");
like($server_timeout, qr/^\d+$/, 'the primary shows its server bound for our conmgr')
  or BAIL_OUT('no pgx_stat_watchdog row for the client host');
my $lease = $cm->{heartbeat_timeout} / 1000;
my $bound = $server_timeout / 1000 + $margin;

my $holder = $lab->start_cm_app('read-write', 'lock', 600, 'cm_lock');
my $plain = $lab->start_app('lab_app', $lab->conninfo('db1'), 'idle', 600, 'plain_idle');
ok($lab->wait_event($holder, 'locked'), 'an application through conmgr holds a lock')
  or diag($lab->output($holder));
my $hp = $lab->event($holder, 'ready')->{pid} // 0;
my $pr = $lab->wait_event($plain, 'ready');
ok($pr, 'a plain libpq session from the same host is open') or diag($lab->output($plain));
my $pp = $pr ? $pr->{pid} : 0;
ok($lab->wait_until('the session is registered', sub {
	$lab->sql('db1', "SELECT sessions_registered FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
		  . $lab->addr('client') . "'") >= 1;
}, 10), 'conmgr registered the application session with the watchdog');

# The attack, as "nobody" on the client host: only core Perl, raw frames.
my $registered_sql = "SELECT sessions_registered FROM pgx_stat_watchdog WHERE state = 'active' AND conmgr_addr = '"
  . $lab->addr('client') . "'";
my $registered_before = $lab->sql('db1', $registered_sql);
my $hport = $lab->sql('db1', "SELECT client_port FROM pg_stat_activity WHERE pid = $hp");
like($hport, qr/^\d+$/, 'the registered session\'s client port is known');
my $thief = <<'PERL';
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(inet_aton);
$| = 1;
my ($cmport, $pid, $victim_port) = @ARGV;
sub frame { my ($t, $p) = @_; return $t . pack('N', 4 + length $p) . $p; }
sub readn
{
	my ($s, $n) = @_;
	my $b = '';
	while (length $b < $n)
	{
		my $r = sysread($s, $b, $n - length $b, length $b);
		return undef unless $r;
	}
	return $b;
}
sub msg
{
	my ($s) = @_;
	my $h = readn($s, 5) // return ('', '');
	my ($t, $len) = unpack('a N', $h);
	return ($t, $len > 4 ? readn($s, $len - 4) // '' : '');
}
# One application connection to conmgr, routed, with an SQL connection of
# its own to the instance; registers the victim's PID with the given port
# (undef: its own socket's) and reports conmgr's answer, if any.
sub attempt
{
	my ($port_of) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $cmport)
	  or die "connect to conmgr: $!\n";
	syswrite($s, pack('N N', 8, 80877104));
	my ($t, $body) = msg($s);
	die "no greeting from conmgr\n" unless $t eq 'E';
	syswrite($s, frame('R', pack('n C N n/a*', 0x0100, 1, $$, 'thief')));
	($t, $body) = msg($s);
	die "route: got '$t'\n" unless $t eq 'I';
	my (undef, undef, $port, $host) = unpack('n C n n/a*', $body);
	my $sql = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port)
	  or die "sql connection: $!\n";
	syswrite($s, frame('J', pack('N C a4 n', $pid, 4, inet_aton($sql->sockhost),
		$port_of // $sql->sockport)));
	my $answer = 'none';
	if (IO::Select->new($s)->can_read(1))
	{
		($t, $body) = msg($s);
		my (undef, $m) = $t =~ /^[NFX]$/ ? unpack('n n/a*', $body) : (0, '');
		$answer = "$t: $m";
	}
	print "answer ", (defined $port_of ? 'victim port' : 'own socket'), " $answer\n";
	close $s;
	close $sql;
}
use IO::Select;
# the victim's PID with the thief's own socket: conmgr forwards it (the
# socket is the thief's), the watchdog refuses it (not that backend's port)
attempt(undef);
# the victim's PID and port: not a socket of this user, conmgr refuses it
attempt($victim_port);
print "left\n";
PERL
my ($tok, $tout, $terr) = ('', '', '');
$tok = IPC::Run::run([ 'ip', 'netns', 'exec', $lab->ns('client'),
	'setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--',
	'perl', '-e', $thief, $CmLab::CONMGR_PORT, $hp, $hport ],
	'<', \undef, '>', \$tout, '2>', \$terr, IPC::Run::timeout(30));
ok($tok, 'another user of the client host registered the session\'s PID and left')
  or diag("$tout$terr");
like($tout, qr/^answer own socket none$/m,
	'conmgr forwards the registration with the other user\'s own socket (the watchdog checks it)')
  or diag("$tout$terr");
like($tout, qr/^answer victim port X: .*is not a connected TCP socket of the application's user/m,
	'conmgr refuses the registration of a socket that is not the other user\'s own')
  or diag("$tout$terr");
ok($lab->wait_until('the watchdog refused the forged registration', sub {
	slurp_file($lab->pglog('db1')) =~ /rejected a session registration.*\n.*DETAIL:  backend $hp is connected from port $hport, not from port \d+/;
}, 10), 'the watchdog refused the registration of the session\'s PID with another port');
sleep 1;
is($lab->sql('db1', $registered_sql), $registered_before,
	'the registered session is still registered after the other user left');

my $t_before = time;
my $t_cut = $lab->cut('client');

my $end;
$lab->wait_until('registered session ended',
	sub { $end = $lab->backend_end_time('db1', $hp) }, $bound + 5);
ok($end, 'the registered session was ended');
if ($end)
{
	cmp_ok($end - $t_cut, '>=', $lease, 'not before the lease');
	cmp_ok($end - $t_cut, '<=', $bound, 'within server_timeout + 1 s of the cut');
	note(sprintf("registered session ended %.3f s after the cut", $end - $t_cut));
}
ok($lab->backend_alive('db1', $pp), 'the plain session from the same host survived');
my @detail = grep { /DETAIL:.*\b$hp\b.*mode precise/ } split /\n/, slurp_file($lab->pglog('db1'));
ok(@detail, 'the log names the terminated PID and the precise mode')
  or diag(join("\n", grep { /watchdog/ } split /\n/, slurp_file($lab->pglog('db1'))));

$lab->heal('client');
done_testing();
