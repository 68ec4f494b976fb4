
=pod

=head1 NAME

CmLab - a network lab for the Connection Manager failure scenarios

=head1 SYNOPSIS

  use CmLab;
  CmLab::require_root();              # skip_all unless root with netns
  my $lab = CmLab->new;               # namespaces, bridge, links
  $lab->init_primary('db1', watchdog => 1);
  $lab->init_standby('db2', 'db1', watchdog => 1);
  my $app = $lab->start_app('lab_app', "host=198.51.100.21 ...", 'sleep');
  $lab->wait_event($app, 'ready');
  $lab->cut('db1');                   # ip link set ... down: no FIN, no RST
  my $ev = $lab->wait_event($app, 'failed', 10);
  $lab->heal('db1');

=head1 DESCRIPTION

Three hosts as network namespaces, each with one veth link to a bridge that
lives in a fourth namespace:

  client  198.51.100.10  --  veth "client" --+
  db1     198.51.100.21  --  veth "db1"    --+-- br0 (namespace "br")
  db2     198.51.100.22  --  veth "db2"    --+

Addresses are from the documentation range 198.51.100.0/24 (RFC 5737) and
exist only inside the namespaces.  A partition sets the host's link down
on the bridge side: the host's own interface only loses its carrier, so
no endpoint sees a local error, a FIN or a RST; packets are simply lost,
as when a cable is pulled or a machine loses power.  Healing sets it up.

PostgreSQL, conmgr and the applications refuse to run as root: they run as
the unprivileged user $ENV{CM_USER} (default cmtest) inside their
namespace (ip netns exec + setpriv, both exec in place, so the process we
start is the program itself and can be killed by its PID).  Each namespace
has its own port space, so the lab uses fixed ports.  Administrative SQL
goes over the Unix-domain socket, which a partition does not cut.

Namespace names start with $ENV{CM_LAB_TAG} (default "cm") followed by the
test's PID, so runs never collide and scripts/test-partitions.sh can sweep
what a killed test left.  Every exit path (normal end, die, INT/TERM/HUP)
runs teardown: applications and conmgr killed, PostgreSQL stopped
(immediate), any process still in a lab namespace killed, namespaces and
the lab directory removed (logs are first copied to tmp_check/log).

=cut

package CmLab;

use strict;
use warnings FATAL => 'all';

use Carp;
use CmConmgr;
use CmProg;
use File::Copy;
use File::Path qw(rmtree);
use File::Temp;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use Time::Local ();

our $PGPORT = 5432;
our $WATCHDOG_PORT = 27545;
our $CONMGR_PORT = 27546;

my %ADDR = (
	client => '198.51.100.10',
	db1 => '198.51.100.21',
	db2 => '198.51.100.22');

my @labs;    # live labs, torn down in END and on signals

sub user { return $ENV{CM_USER} // 'cmtest'; }

# Seconds a wait may take before the test gives up.
sub timeout { return $PostgreSQL::Test::Utils::timeout_default; }

=pod

=over

=item require_root()

Skip the whole test file, saying why, unless we are root on a machine
where network namespaces can be created and the unprivileged user exists.

=cut

sub require_root
{
	plan skip_all => 'network partition scenarios need root (network namespaces); '
	  . 'scripts/test-partitions.sh runs them as root'
	  if $> != 0;
	my $u = user();
	plan skip_all => "user \"$u\" does not exist (set CM_USER or create it)"
	  unless defined getpwnam($u);
	my $probe = ($ENV{CM_LAB_TAG} // 'cm') . "${$}_probe";
	my ($out, $err) = ('', '');
	# dies when ip itself is missing
	my $ok = eval { IPC::Run::run([ 'ip', 'netns', 'add', $probe ], '>', \$out, '2>', \$err) };
	$err .= $@ if $@;
	chomp $err;
	plan skip_all => "cannot create a network namespace: $err" unless $ok;
	IPC::Run::run([ 'ip', 'netns', 'del', $probe ]);
	return;
}

# Run a command as root, die with its output when it fails.
sub sys
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(timeout()))
	  or croak "command failed: @cmd\n$out$err";
	return $out;
}

=pod

=item CmLab->new(%opts)

Create the namespaces, the bridge and the three links, all up.

=cut

sub new
{
	my ($class, %opts) = @_;
	my $tag = ($ENV{CM_LAB_TAG} // 'cm') . $$;
	my $self = bless {
		tag => $tag,
		owner => $$,
		ns => {
			br => "${tag}_br",
			client => "${tag}_cl",
			db1 => "${tag}_db1",
			db2 => "${tag}_db2"
		},
		procs => [],
		pg => {},
	}, $class;
	push @labs, $self;
	install_signal_handlers();

	my $uid = getpwnam(user());
	my $gid = (getpwnam(user()))[3];
	$self->{dir} = File::Temp::tempdir("${tag}_lab_XXXX", TMPDIR => 1, CLEANUP => 0);
	chown $uid, $gid, $self->{dir} or croak "chown $self->{dir}: $!";
	chmod 0755, $self->{dir};

	sys('ip', 'netns', 'add', $_) foreach map { $self->{ns}{$_} } qw(br client db1 db2);
	my $br = $self->{ns}{br};
	sys('ip', '-n', $br, 'link', 'add', 'br0', 'type', 'bridge');
	sys('ip', '-n', $br, 'link', 'set', 'br0', 'up');
	foreach my $host (qw(client db1 db2))
	{
		my $ns = $self->{ns}{$host};
		sys('ip', '-n', $br, 'link', 'add', $host, 'type', 'veth',
			'peer', 'name', 'eth0', 'netns', $ns);
		sys('ip', '-n', $br, 'link', 'set', $host, 'master', 'br0');
		sys('ip', '-n', $br, 'link', 'set', $host, 'up');
		sys('ip', '-n', $ns, 'addr', 'add', "$ADDR{$host}/24", 'dev', 'eth0');
		keep_arp_on_carrier_loss($ns);
		sys('ip', '-n', $ns, 'link', 'set', 'eth0', 'up');
		sys('ip', '-n', $ns, 'link', 'set', 'lo', 'up');
	}
	# the links work before anything relies on them
	foreach my $host (qw(db1 db2))
	{
		$self->wait_until("client reaches $host",
			sub { $self->reachable('client', $host) }, 10)
		  or croak "the lab network does not work: client cannot reach $host";
	}
	note("lab $tag: namespaces " . join(', ', map { $self->{ns}{$_} } qw(br client db1 db2))
		  . ", directory $self->{dir}");
	return $self;
}

# A cut sets the bridge side of a link down, so the host's own interface
# loses its carrier, and Linux (since 4.20) then empties that interface's
# ARP cache.  Whatever the host sends during the cut waits for an ARP
# answer that cannot come, and the kernel asks again only every
# neigh.retrans_time_ms (1 s): after the link is back, the host stays
# silent for up to a second more, so a 200 ms blip became a 1.2 s outage
# in one smoke run of the soak out of six.  The lab's partitions model the
# loss of a path, for as long as the test holds them: each host keeps its
# ARP cache (arp_evict_nocarrier = 0, Linux 5.16 and later), and what the
# eviction costs a server whose own card loses carrier is stated in
# docs/failure-detection.md instead.
sub keep_arp_on_carrier_loss
{
	my ($ns) = @_;
	if (!-e '/proc/sys/net/ipv4/conf/all/arp_evict_nocarrier')
	{
		note('this kernel has no arp_evict_nocarrier: after a cut, the lab hosts may take up to 1 s more to be reachable');
		return;
	}
	sys('ip', 'netns', 'exec', $ns, 'sysctl', '-q', '-w',
		'net.ipv4.conf.eth0.arp_evict_nocarrier=0');
	return;
}

=pod

=item $lab->reachable(from, to, [seconds])

Whether a TCP SYN from host FROM to a closed port of host TO is answered
(by a RST: "connection refused") within SECONDS (default 1).  Needs
nothing listening and no ping.

=cut

sub reachable
{
	my ($self, $from, $to, $seconds) = @_;
	$seconds //= 1;
	my $probe = 'use IO::Socket::INET; use Errno; '
	  . 'my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => 9, '
	  . 'Proto => "tcp", Timeout => $ARGV[1]); '
	  . 'exit(($s || $!{ECONNREFUSED}) ? 0 : 1);';
	my ($o, $e) = ('', '');
	return IPC::Run::run([ 'ip', 'netns', 'exec', $self->ns($from), $^X, '-e', $probe,
		$ADDR{$to}, $seconds ], '<', \undef, '>', \$o, '2>', \$e) ? 1 : 0;
}

sub addr { my ($self, $host) = @_; return $ADDR{$host} // croak "no host $host"; }
sub ns { my ($self, $host) = @_; return $self->{ns}{$host} // croak "no host $host"; }
sub dir { my ($self) = @_; return $self->{dir}; }

=pod

=item $lab->cut(host) / $lab->heal(host)

Set the host's link down (up) on the bridge side.  Returns the wall-clock
time just after the command completed (the partition is in force from
then on, and not before the time just before it was issued, stored in
$lab->{last_change_before}).

=cut

sub cut { my ($self, $host) = @_; return $self->set_link($host, 'down'); }
sub heal { my ($self, $host) = @_; return $self->set_link($host, 'up'); }

sub set_link
{
	my ($self, $host, $state) = @_;
	croak "no link for $host" unless exists $ADDR{$host};
	$self->{last_change_before} = time;
	sys('ip', '-n', $self->{ns}{br}, 'link', 'set', $host, $state);
	my $t = time;
	note(sprintf("link %s %s at %.3f", $host, $state, $t));
	return $t;
}

=pod

=item $lab->as_user(host, cmd...)

The command line that runs cmd as the unprivileged user inside host's
namespace (exec all the way down: the PID is the program's).

=cut

sub as_user
{
	my ($self, $host, @cmd) = @_;
	my $u = user();
	my $home = (getpwnam($u))[7];
	my $bindir = CmProg::pg_bindir();
	return (
		'ip', 'netns', 'exec', $self->ns($host),
		'setpriv', "--reuid=$u", "--regid=$u", '--init-groups', '--',
		'env', '-i', "PATH=$bindir:/usr/local/bin:/usr/bin:/bin", "HOME=$home",
		'LC_ALL=C', "USER=$u", @cmd);
}

# Run a command as the user in a namespace; returns (ok, stdout, stderr).
sub run_user
{
	my ($self, $host, @cmd) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $self->as_user($host, @cmd) ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(timeout()));
	return ($ok, $out, $err);
}

# As run_user, but die with the output when the command fails.
sub run_user_ok
{
	my ($self, $host, @cmd) = @_;
	my ($ok, $out, $err) = $self->run_user($host, @cmd);
	croak "command failed in $host: @cmd\n$out$err" unless $ok;
	return $out;
}

=pod

=item $lab->start_bg(host, name, cmd...)

Start a long-running command as the user in host's namespace, output to
DIR/NAME.out.  Returns a handle { h, out, name }; killed at teardown.

=cut

sub start_bg
{
	my ($self, $host, $name, @cmd) = @_;
	my $out = "$self->{dir}/$name.out";
	my $h = IPC::Run::start([ $self->as_user($host, @cmd) ],
		'<', \undef, '>', $out, '2>&1');
	my $p = { h => $h, out => $out, name => $name, host => $host };
	push @{ $self->{procs} }, $p;
	return $p;
}

# Kill a background process (SIGKILL) and reap it.
sub kill9
{
	my ($self, $p) = @_;
	eval { $p->{h}->signal('KILL'); };
	eval { $p->{h}->finish; };
	return;
}

# Stop a background process with SIGTERM, then SIGKILL after a grace time.
sub stop_bg
{
	my ($self, $p) = @_;
	eval { $p->{h}->kill_kill(grace => 5) if $p->{h}->pumpable; };
	eval { $p->{h}->finish; };
	return;
}

=pod

=item $lab->start_app(program, conninfo, mode, [seconds], [name])

Start test/lab/PROGRAM (lab_app or lab_app_cm) in the client namespace.

=item $lab->events(p)

The events printed so far by a lab program: a list of hashes with the
event word in {event}, its key=value pairs, {error} to the end of line.

=item $lab->wait_event(p, word, [seconds])

Wait (bounded) until the program printed an event WORD and return it, or
undef when it did not come in time or the program exited without it.

=cut

sub start_app
{
	my ($self, $prog, $conninfo, $mode, $seconds, $name) = @_;
	$name //= "app_${mode}_" . scalar(@{ $self->{procs} });
	my @cmd = (CmProg::lab_program($prog), $conninfo, $mode);
	push @cmd, $seconds if defined $seconds;
	return $self->start_bg('client', $name, @cmd);
}

sub events
{
	my ($self, $p) = @_;
	my @ev;
	open my $fh, '<', $p->{out} or return ();
	while (my $line = <$fh>)
	{
		chomp $line;
		my ($word, $rest) = $line =~ /^(\S+)\s*(.*)$/ or next;
		my %kv = (event => $word);
		$kv{error} = $1 if $rest =~ s/\s*error=(.*)$//;
		$kv{$1} = $2 while $rest =~ /(\S+)=(\S*)/g;
		$kv{at} /= 1000.0 if defined $kv{at};    # seconds, as time()
		push @ev, \%kv;
	}
	close $fh;
	return @ev;
}

sub event
{
	my ($self, $p, $word) = @_;
	foreach my $e ($self->events($p))
	{
		return $e if $e->{event} eq $word;
	}
	return undef;
}

sub wait_event
{
	my ($self, $p, $word, $seconds) = @_;
	my $deadline = time + ($seconds // timeout());
	while (1)
	{
		my $e = $self->event($p, $word);
		return $e if $e;
		my $alive = $p->{h}->pumpable;
		eval { $p->{h}->pump_nb if $alive; };    # it may end meanwhile
		if (!$alive)
		{
			# the program exited: read what it wrote last
			return $self->event($p, $word);
		}
		return undef if time > $deadline;
		usleep(20_000);
	}
}

# Everything a background program printed.
sub output
{
	my ($self, $p) = @_;
	open my $fh, '<', $p->{out} or return '';
	local $/;
	my $s = <$fh>;
	close $fh;
	return $s // '';
}

=pod

=item $lab->wait_until(what, code, [seconds])

Call code every 50 ms until it returns true or the time is up; returns
its last result.

=cut

sub wait_until
{
	my ($self, $what, $code, $seconds) = @_;
	my $deadline = time + ($seconds // timeout());
	while (1)
	{
		my $r = $code->();
		return $r if $r;
		if (time > $deadline)
		{
			note("gave up waiting: $what");
			return $r;
		}
		usleep(50_000);
	}
}

=pod

=item $lab->init_primary(host, %opts)

initdb and start a primary in host's namespace, listening on the host's
lab address and on a Unix socket in its directory.  Options: watchdog (bool:
preload the watchdog on $WATCHDOG_PORT), conf (extra postgresql.conf text).

=item $lab->init_standby(host, from, %opts)

pg_basebackup over the lab network from FROM's primary, start as a
streaming standby, wait until it has replayed what the primary wrote.

=cut

sub pgdir { my ($self, $host) = @_; return "$self->{dir}/$host"; }
sub sockdir { my ($self, $host) = @_; return "$self->{dir}/sock_$host"; }
sub pglog { my ($self, $host) = @_; return "$self->{dir}/$host.log"; }

sub host_conf
{
	my ($self, $host, %opts) = @_;
	my $conf = "# written by CmLab for host $host\n"
	  . "listen_addresses = '$ADDR{$host}'\n"
	  . "port = $PGPORT\n"
	  . "unix_socket_directories = '" . $self->sockdir($host) . "'\n";
	if ($opts{watchdog})
	{
		$conf .= "shared_preload_libraries = 'watchdog'\n"
		  . "watchdog.insecure_no_authentication = on\n"
		  . "watchdog.port = $WATCHDOG_PORT\n";
	}
	$conf .= $opts{conf} if $opts{conf};
	my $f = $self->pgdir($host) . "/host.conf";
	open my $fh, '>', $f or croak "$f: $!";
	print $fh $conf;
	close $fh;
	my $uid = getpwnam(user());
	chown $uid, -1, $f;
	return;
}

sub init_primary
{
	my ($self, $host, %opts) = @_;
	my $data = $self->pgdir($host);
	mkdir $self->sockdir($host);
	chown scalar(getpwnam(user())), -1, $self->sockdir($host);
	$self->run_user_ok($host, 'initdb', '-A', 'trust', '-N', '-D', $data);
	open my $fh, '>>', "$data/postgresql.conf" or croak $!;
	print $fh "\n# lab settings\n"
	  . "fsync = off\n"
	  . "log_line_prefix = '%m [%p] %h '\n"
	  . "log_timezone = 'UTC'\n"
	  . "log_connections = on\nlog_disconnections = on\n"
	  . "wal_keep_size = '64MB'\n"
	  . "include_if_exists = 'host.conf'\n";
	close $fh;
	open $fh, '>>', "$data/pg_hba.conf" or croak $!;
	print $fh "host all all 198.51.100.0/24 trust\n"
	  . "host replication all 198.51.100.0/24 trust\n";
	close $fh;
	$self->host_conf($host, %opts);
	$self->pg_start($host);
	$self->{pg}{$host} = { role => 'primary', %opts };
	return;
}

sub init_standby
{
	my ($self, $host, $from, %opts) = @_;
	my $data = $self->pgdir($host);
	mkdir $self->sockdir($host);
	chown scalar(getpwnam(user())), -1, $self->sockdir($host);
	$self->run_user_ok($host, 'pg_basebackup', '-h', $ADDR{$from}, '-p', $PGPORT,
		'-D', $data, '-R', '-X', 'stream', '-c', 'fast');
	$self->host_conf($host, %opts);
	$self->pg_start($host);
	$self->{pg}{$host} = { role => 'standby', %opts };
	# the standby streams from the primary
	$self->wait_until("$host streams from $from", sub {
		$self->sql($from, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") >= 1;
	}) or croak "standby $host does not stream from $from";
	return;
}

sub pg_start
{
	my ($self, $host) = @_;
	$self->run_user_ok($host, 'pg_ctl', '-D', $self->pgdir($host), '-l',
		$self->pglog($host), '-w', '-t', timeout(), 'start');
	return;
}

sub pg_stop
{
	my ($self, $host, $mode) = @_;
	return $self->run_user($host, 'pg_ctl', '-D', $self->pgdir($host),
		'-m', $mode // 'fast', '-w', '-t', timeout(), 'stop');
}

sub pg_promote
{
	my ($self, $host) = @_;
	return $self->run_user_ok($host, 'pg_ctl', '-D', $self->pgdir($host),
		'-w', '-t', timeout(), 'promote');
}

# PID of the process of host's namespace whose title is "postgres: TITLE"
# (background workers without a database are not in pg_stat_activity).
sub worker_pid
{
	my ($self, $host, $title) = @_;
	my $ns = $self->ns($host);
	foreach my $pid (split /\s+/, `ip netns pids $ns 2>/dev/null` // '')
	{
		next unless $pid =~ /^\d+$/;
		open my $fh, '<', "/proc/$pid/cmdline" or next;
		my $cmd = <$fh> // '';
		close $fh;
		$cmd =~ s/[\0\s]+$//;
		return $pid if $cmd eq "postgres: $title";
	}
	return undef;
}

# PID of a host's postmaster, from postmaster.pid.
sub postmaster_pid
{
	my ($self, $host) = @_;
	open my $fh, '<', $self->pgdir($host) . "/postmaster.pid" or return undef;
	my $pid = <$fh>;
	close $fh;
	chomp $pid if defined $pid;
	return $pid;
}

=pod

=item $lab->sql(host, sql)

Run SQL on host's server over its Unix socket (not affected by
partitions); returns the unaligned output without the final newline, dies
on error.

=item $lab->sql_try(host, sql) returns (ok, stdout, stderr).

=cut

sub sql_try
{
	my ($self, $host, $sql) = @_;
	my ($ok, $out, $err) = $self->run_user($host, 'psql', '-X', '-A', '-t', '-q',
		'-v', 'ON_ERROR_STOP=1', '-h', $self->sockdir($host), '-p', $PGPORT,
		'-d', 'postgres', '-c', $sql);
	chomp $out;
	return ($ok, $out, $err);
}

sub sql
{
	my ($self, $host, $sql) = @_;
	my ($ok, $out, $err) = $self->sql_try($host, $sql);
	croak "SQL failed on $host: $sql\n$err" unless $ok;
	return $out;
}

# Conninfo of an unprivileged-user session reaching host from the client.
sub conninfo
{
	my ($self, $host, $extra) = @_;
	return "host=$ADDR{$host} port=$PGPORT dbname=postgres user=" . user()
	  . ($extra ? " $extra" : '');
}

# Conninfo of a session on host over its Unix socket (run inside host).
sub local_conninfo
{
	my ($self, $host, $extra) = @_;
	return "host=" . $self->sockdir($host) . " port=$PGPORT dbname=postgres user="
	  . user() . ($extra ? " $extra" : '');
}

# Start a lab program in a DB host's namespace over its Unix socket.
sub start_local_app
{
	my ($self, $host, $mode, $seconds, $name) = @_;
	my @cmd = (CmProg::lab_program('lab_app'), $self->local_conninfo($host), $mode);
	push @cmd, $seconds if defined $seconds;
	return $self->start_bg($host, $name // "local_${host}_$mode", @cmd);
}

=pod

=item $lab->backend_end_time(host, pid)

When the backend PID ended, from its "disconnection" line in the server
log (log_disconnections, millisecond timestamps in UTC), as epoch
seconds; undef if it has not ended.

=cut

sub backend_end_time
{
	my ($self, $host, $pid) = @_;
	return log_time($self->pglog($host), qr/\[$pid\] .*disconnection: session time/);
}

=pod

=item CmLab::log_time(file, regex)

The time (epoch seconds) of the first line of FILE matching REGEX whose
line starts with a "YYYY-MM-DD HH:MM:SS.mmm UTC" timestamp (PostgreSQL
with the lab's log_line_prefix, conmgr); undef if there is none.

=cut

sub log_time
{
	my ($file, $re) = @_;
	open my $fh, '<', $file or return undef;
	while (my $line = <$fh>)
	{
		next unless $line =~ $re;
		next unless $line =~ /^(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)\.(\d+) UTC /;
		close $fh;
		return Time::Local::timegm($6, $5, $4, $3, $2 - 1, $1) + "0.$7";
	}
	close $fh;
	return undef;
}

# Is the backend with this PID still there?
sub backend_alive
{
	my ($self, $host, $pid) = @_;
	return $self->sql($host, "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid") > 0;
}

=pod

=item $lab->start_conmgr(%params)

Write conmgr.conf in DIR/conmgr (instances db1 and db2 by lab address)
and run conmgr in the foreground in the client namespace; waits until it
accepts applications.  Returns the background handle; $lab->conmgr is
the CmConmgr object of that directory (its cm_ctl runs in the client
namespace as the user).

=cut

sub start_conmgr
{
	my ($self, %params) = @_;
	my $d = "$self->{dir}/conmgr";
	mkdir $d;
	chmod 0700, $d;
	chown scalar(getpwnam(user())), -1, $d;
	$self->{cm} = CmConmgr->new(
		dir => $d,
		port => $CONMGR_PORT,
		wrap => sub { return $self->as_user('client', @_); },
		instances => [
			map { { host => $ADDR{$_}, port => $PGPORT, watchdog_port => $WATCHDOG_PORT } }
			  qw(db1 db2)
		],
		%params);
	chown scalar(getpwnam(user())), -1, "$d/conmgr.conf";
	my $p = $self->start_bg('client', 'conmgr', CmProg::bin('conmgr'), '-D', $d);
	$self->{conmgr} = $p;
	my $up = $self->wait_until("conmgr accepts on port $CONMGR_PORT", sub {
		return 0 unless $p->{h}->pumpable;
		my ($o, $e) = ('', '');
		# bash's /dev/tcp: a plain TCP connect inside the client namespace
		IPC::Run::run([ 'ip', 'netns', 'exec', $self->ns('client'), 'bash', '-c',
			"exec 3<>/dev/tcp/127.0.0.1/$CONMGR_PORT" ], '>', \$o, '2>', \$e);
	});
	croak "conmgr did not start:\n" . $self->output($p) unless $up;
	return $p;
}

sub conmgr { return $_[0]->{cm}; }

sub conmgr_conninfo
{
	my ($self, $tsa, $extra) = @_;
	return "host=localhost port=$CONMGR_PORT dbname=postgres user=" . user()
	  . " target_session_attrs=" . ($tsa // 'read-write')
	  . ($extra ? " $extra" : '');
}

=pod

=item $lab->secret_file()

A heartbeat secret in DIR/hb.secret, owned by the lab user with mode 0600,
for watchdog.secret_file and conmgr's secret_file alike (every process of
the lab runs as that user).  Returns its absolute path.

=cut

sub secret_file
{
	my ($self) = @_;
	my $f = "$self->{dir}/hb.secret";
	return $f if -f $f;
	open my $fh, '>', $f or croak "$f: $!";
	print $fh join('', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[ int(rand(62)) ] } 1 .. 40), "\n";
	close $fh;
	chown scalar(getpwnam(user())), -1, $f or croak "chown $f: $!";
	chmod 0600, $f;
	return $f;
}

=pod

=item $lab->cm_setup(%o)

The Connection Manager set-up of the scenarios: a primary on db1 and a
streaming standby on db2, both with the watchdog (check_attr_interval and
timeout_margin in ms from %o, defaults 200 and 500), CREATE EXTENSION
watchdog, tables lab_copy and lab_lock, and conmgr in the client host
(heartbeat_interval and heartbeat_timeout from %o, defaults 200 and 1000;
more conmgr.conf parameters in $o{conmgr}, a hash);
returns once read-write requests reach db1 and read-only ones db2.
Stores the settings in $lab->{cm}.

=cut

sub cm_setup
{
	my ($self, %o) = @_;
	my %cm = (
		heartbeat_interval => $o{heartbeat_interval} // 200,
		heartbeat_timeout => $o{heartbeat_timeout} // 1000,
		check_attr_interval => $o{check_attr_interval} // 200,
		timeout_margin => $o{timeout_margin} // 500);
	$self->{cm} = \%cm;
	my $conf = "watchdog.check_attr_interval = $cm{check_attr_interval}\n"
	  . "watchdog.timeout_margin = $cm{timeout_margin}\n";
	$conf .= $o{conf} if $o{conf};
	$self->init_primary('db1', watchdog => 1, conf => $conf);
	$self->sql('db1', 'CREATE EXTENSION watchdog; '
		  . 'CREATE TABLE lab_copy (t text); CREATE TABLE lab_lock (i int); '
		  . 'GRANT ALL ON lab_copy, lab_lock TO PUBLIC');
	$self->init_standby('db2', 'db1', watchdog => 1, conf => $conf);
	$self->start_conmgr(
		heartbeat_interval => $cm{heartbeat_interval},
		heartbeat_timeout => $cm{heartbeat_timeout},
		%{ $o{conmgr} // {} });
	my $ok = $self->wait_until('conmgr routes read-write to db1 and read-only to db2', sub {
		my $rw = $self->route('read-write');
		my $ro = $self->route('read-only');
		return $rw && $ro && $rw->{host} eq $ADDR{db1} && $ro->{host} eq $ADDR{db2};
	}, 30);
	croak "conmgr does not route to the lab instances:\n"
	  . $self->output($self->{conmgr}) unless $ok;
	return \%cm;
}

=pod

=item $lab->route(tsa)

Connect once through conmgr with lab_app_cm (mode connect); returns the
ready event (host, port, in_recovery, pid) or undef; the last output is
in $lab->{last_route_output}.

=cut

sub route
{
	my ($self, $tsa) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $self->as_user('client', CmProg::lab_program('lab_app_cm'),
		$self->conmgr_conninfo($tsa, 'connect_timeout=5'), 'connect') ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(timeout()));
	$self->{last_route_output} = $out . $err;
	return undef unless $out =~ /^ready (.*)$/m;
	my $rest = $1;
	my %kv = (event => 'ready');
	$kv{$1} = $2 while $rest =~ /(\S+)=(\S*)/g;
	$kv{at} /= 1000.0;
	return \%kv;
}

# Start lab_app_cm through conmgr in the client host.
sub start_cm_app
{
	my ($self, $tsa, $mode, $seconds, $name) = @_;
	return $self->start_app('lab_app_cm', $self->conmgr_conninfo($tsa), $mode,
		$seconds // 600, $name);
}

=pod

=item $lab->teardown

Kill everything, remove namespaces and the directory.  Idempotent.

=cut

sub teardown
{
	my ($self) = @_;
	return if $self->{torn_down} || $self->{owner} != $$;
	$self->{torn_down} = 1;
	foreach my $p (@{ $self->{procs} })
	{
		eval { $p->{h}->signal('KILL') if $p->{h}->pumpable; };
		eval { $p->{h}->finish; };
	}
	foreach my $host (sort keys %{ $self->{pg} })
	{
		eval { $self->pg_stop($host, 'immediate') if -f $self->pgdir($host) . "/postmaster.pid"; };
	}
	# whatever is still running inside a lab namespace
	foreach my $ns (values %{ $self->{ns} })
	{
		my $pids = `ip netns pids $ns 2>/dev/null` // '';
		my @pids = grep { /^\d+$/ } split /\s+/, $pids;
		kill 'KILL', @pids if @pids;
		push @{ $self->{killed} }, @pids;
	}
	# the killed processes are gone once the kernel has torn them down
	my $deadline = time + 10;
	usleep(10_000) while (grep { process_exists($_) } @{ $self->{killed} // [] }) && time < $deadline;
	foreach my $ns (values %{ $self->{ns} })
	{
		system('ip', 'netns', 'del', $ns) if -e "/run/netns/$ns";
	}
	# keep the logs for the test report
	my $logdir = $PostgreSQL::Test::Utils::log_path;
	if ($logdir && -d $logdir && -d $self->{dir})
	{
		opendir my $dh, $self->{dir};
		foreach my $f (readdir $dh)
		{
			next unless $f =~ /\.(log|out)$/;
			copy("$self->{dir}/$f", "$logdir/lab_$self->{tag}_$f");
		}
		closedir $dh;
		copy("$self->{dir}/conmgr/conmgr.log", "$logdir/lab_$self->{tag}_conmgr.log")
		  if -f "$self->{dir}/conmgr/conmgr.log";
	}
	rmtree($self->{dir}) if $self->{dir} && -d $self->{dir};
	return;
}

# Does a process exist (and is not a zombie waiting to be reaped)?
sub process_exists
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return 0;
	my $stat = <$fh> // '';
	close $fh;
	my ($state) = $stat =~ /\)\s+(\S)/;
	return defined $state && $state ne 'Z';
}

sub teardown_all
{
	$_->teardown foreach @labs;
	return;
}

my $handlers_installed;

sub install_signal_handlers
{
	return if $handlers_installed++;
	foreach my $sig (qw(INT TERM HUP))
	{
		$SIG{$sig} = sub {
			teardown_all();
			diag("lab torn down after SIG$sig");
			exit 1;
		};
	}
	return;
}

END
{
	my $status = $?;
	teardown_all();
	$? = $status;
}

1;

=pod

=back

=cut
