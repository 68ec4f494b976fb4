
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

=pod

=head1 NAME

CmNode - a PostgreSQL::Test::Cluster node with the watchdog preloaded

=head1 SYNOPSIS

  use CmNode;

  my $node = CmNode->create('primary', init => { allows_streaming => 1 },
	  check_attr_interval => 200, conf => "watchdog.secret_file = '$f'\n");
  $node->start;
  my $peer = CmWatchdog::Peer->connect($node->watchdog_port);
  my $standby = $node->new_standby('standby', check_attr_interval => 200);
  $node->wait_for_view_count("application_name = 'x'", 1);
  my $pid = $node->worker_pid('watchdog terminator');

=head1 DESCRIPTION

Every node gets the same settings: shared_preload_libraries,
unauthenticated heartbeats (an explicit opt-in; a test of authentication
turns it off in C<conf>), a free watchdog.port, listen_addresses and
watchdog.listen_addresses on 127.0.0.1, and log_min_messages = debug1.
A test that needs other settings says so: C<init> (parameters of init()),
C<watchdog_port>, C<watchdog_listen> (undef: not set, the watchdog
follows listen_addresses), C<log_min_messages> (undef: not set),
C<check_attr_interval> (ms, not set unless given), C<secret> (the text of
a secret file DATA/hb.secret, made watchdog.secret_file), and C<conf>, a string
appended last (so it can override the rest).  The server log is searched with the parent's
log_contains(pattern, offset).

=cut

package CmNode;

use strict;
use warnings FATAL => 'all';

use Fcntl qw(O_CREAT O_TRUNC O_WRONLY);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

use parent -norequire, 'PostgreSQL::Test::Cluster';

=pod

=over

=item CmNode->create(name, %opts)

A new node (initialised, not started) with the watchdog.  The watchdog
port, free unless given, is $node->watchdog_port.

=cut

sub create
{
	my ($class, $name, %o) = @_;
	my $node = $class->new($name);
	$node->init(%{ $o{init} // {} });
	$node->configure_watchdog(%o);
	return $node;
}

=pod

=item CmNode->from_backup(primary, backup, name, %opts)

A streaming standby made from a backup of PRIMARY (not started), with a
watchdog port of its own (the backup copied the primary's).

=cut

sub from_backup
{
	my ($class, $primary, $backup, $name, %o) = @_;
	my $node = $class->new($name);
	$node->init_from_backup($primary, $backup, has_streaming => 1);
	$node->configure_watchdog(%o);
	return $node;
}

=pod

=item $primary->new_standby(name, %opts)

A started streaming standby of this node, caught up.

=cut

sub new_standby
{
	my ($self, $name, %o) = @_;
	$self->backup("${name}_backup");
	my $standby = ref($self)->from_backup($self, "${name}_backup", $name, %o);
	$standby->start;
	$self->wait_for_catchup($standby, 'replay');
	return $standby;
}

=pod

=item CmNode->create_pair(primary_name, standby_name, %opts)

A started primary (able to stream) and its started standby, caught up,
both with the same watchdog options.  Returns ($primary, $standby).

=cut

sub create_pair
{
	my ($class, $pname, $sname, %o) = @_;
	my $primary = $class->create($pname, %o, init => { allows_streaming => 1 });
	$primary->start;
	return ($primary, $primary->new_standby($sname, %o));
}

=pod

=item $node->configure_watchdog(%opts)

Append the watchdog settings (see DESCRIPTION) to postgresql.conf, on a
new free watchdog port.

=cut

sub configure_watchdog
{
	my ($self, %o) = @_;
	my $wport = $o{watchdog_port} // PostgreSQL::Test::Cluster::get_free_port();
	$self->{cm_watchdog_port} = $wport;
	my $conf = qq{
shared_preload_libraries = 'watchdog'
watchdog.insecure_no_authentication = on
watchdog.port = $wport
listen_addresses = '127.0.0.1'
};
	# the defaults, unless given; undef leaves the server's own
	my %set = (
		'watchdog.listen_addresses' => "'127.0.0.1'",
		log_min_messages => 'debug1');
	$set{'watchdog.listen_addresses'} =
	  defined $o{watchdog_listen} ? "'$o{watchdog_listen}'" : undef
	  if exists $o{watchdog_listen};
	$set{log_min_messages} = $o{log_min_messages} if exists $o{log_min_messages};
	foreach my $k ('watchdog.listen_addresses', 'log_min_messages')
	{
		$conf .= "$k = $set{$k}\n" if defined $set{$k};
	}
	$conf .= "watchdog.check_attr_interval = $o{check_attr_interval}\n"
	  if defined $o{check_attr_interval};
	if (defined $o{secret})
	{
		write_secret_file($self->data_dir . '/hb.secret', "$o{secret}\n");
		$conf .= "watchdog.secret_file = 'hb.secret'\n";
	}
	$conf .= $o{conf} if defined $o{conf};
	$self->append_conf('postgresql.conf', $conf);
	return $wport;
}

=pod

=item $node->watchdog_port()

=cut

sub watchdog_port { return $_[0]->{cm_watchdog_port}; }

=pod

=item $node->worker_pid(type)

PID of the node's background worker whose process title ends with TYPE
("watchdog" or "watchdog terminator"); undef when there is none.  Workers
without a database connection do not appear in pg_stat_activity, so the
postmaster's children are read from /proc.

=cut

sub worker_pid
{
	my ($self, $type) = @_;
	open my $fh, '<', $self->data_dir . '/postmaster.pid' or return undef;
	my $pm = <$fh>;
	close $fh;
	chomp $pm;
	opendir my $dh, '/proc' or return undef;
	foreach my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open my $st, '<', "/proc/$pid/stat" or next;
		my $stat = <$st>;
		close $st;
		next unless $stat && $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $pm;
		open my $cl, '<', "/proc/$pid/cmdline" or next;
		my $cmd = <$cl> // '';
		close $cl;
		$cmd =~ s/\0/ /g;
		$cmd =~ s/\s+$//;
		return $pid if $cmd =~ /(?:^|: )\Q$type\E$/;
	}
	return undef;
}

=pod

=item $node->postmaster_start_time()

The server start time, to check that the postmaster never restarted.

=cut

sub postmaster_start_time
{
	my ($self) = @_;
	return $self->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
}

=pod

=item $node->wait_for_view_count(where, count)

Poll pgx_stat_watchdog until C<count(*) WHERE where> equals count.

=cut

sub wait_for_view_count
{
	my ($self, $where, $count) = @_;
	return $self->poll_query_until('postgres',
		"SELECT count(*) = $count FROM pgx_stat_watchdog WHERE $where");
}

=pod

=item $node->wait_for_lost(name, cause, offset)

Wait (as wait_for_log, from offset) until the log says that the conmgr
peer C<name> at 127.0.0.1 and a port was lost, for C<cause> (a pattern).

=cut

sub wait_for_lost
{
	my ($self, $name, $cause, $offset) = @_;
	return $self->wait_for_log(
		qr/conmgr "\Q$name\E" at 127\.0\.0\.1:\d+ lost: $cause/, $offset);
}

=pod

=item $node->view_states([where])

The rows of pgx_stat_watchdog (those matching C<where>, if given) as
"name:state" by conmgr name, comma-separated; view_states_query([where])
is its query, for poll_query_until.

=cut

sub view_states_query
{
	my ($self, $where) = @_;
	return "SELECT string_agg(conmgr_name || ':' || state, ',' ORDER BY conmgr_name) "
	  . 'FROM pgx_stat_watchdog' . (defined $where ? " WHERE $where" : '');
}

sub view_states
{
	my ($self, $where) = @_;
	return $self->safe_psql('postgres', $self->view_states_query($where));
}

=pod

=item CmNode::write_secret_file(path, content[, mode])

Write a secret file (for watchdog.secret_file or conmgr's secret_file)
with the given mode (0600 unless told), replacing its content if it
exists; the mode is set explicitly, whatever the umask.

=cut

sub write_secret_file
{
	my ($path, $content, $mode) = @_;
	$mode //= 0600;
	sysopen(my $fh, $path, O_WRONLY | O_CREAT | O_TRUNC, 0600)
	  or die "could not create \"$path\": $!";
	binmode($fh);
	print $fh $content or die "could not write \"$path\": $!";
	close($fh) or die "could not close \"$path\": $!";
	chmod($mode, $path) or die "could not chmod \"$path\": $!";
	return $path;
}

=pod

=back

=cut

1;
