
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Local users against conmgr's application port: whoever takes the port
# first on a loopback address keeps conmgr from starting (it would answer
# applications in its place); conmgr keeps the port until it exits;
# connections over the limits are refused at once; squatters that route
# and never register lose their slots; one user gets at most
# max_app_connections_per_user; the heartbeat connections keep their
# descriptors; registrations must name the application's own connected
# socket and cannot unregister another connection's session; peer text is
# escaped; the conmgr directory and conmgr.conf are the user's own.  Every
# test runs as one OS user (see docs/testing.md).

use strict;
use warnings FATAL => 'all';

use IO::Select;
use IO::Socket::INET;
use IO::Socket::IP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use CmClient;
use CmConmgr;
use CmNode;
use CmProg;
use CmWire;

my $wd = CmConmgr::FakeWatchdog->new(attrs => 0);

# A conmgr (not started) on $port with the fake watchdog as instance 0.
sub cm_for
{
	my ($port, %params) = @_;
	return CmConmgr->new(
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
		my $cm = cm_for($port);
		my ($rc, $out, $err) = $cm->ctl('start', '-t', '10');
		my $fam = $addr eq '::1' ? 'IPv6' : 'IPv4';
		is($rc, 1, "$addr:$port taken: cm_ctl start fails");
		like($err,
			qr/FATAL:  could not bind $fam address "\Q$addr\E", port $port: Address already in use/,
			"$addr taken: the error names the address and the cause");
		like($err, qr/conmgr must hold port $port on every loopback address of the host.*conmgr not started/,
			"$addr taken: conmgr says why it does not start");
		ok(!$cm->pid, "$addr taken: no conmgr left running");
	}
}

# ---- connections over max_app_connections are refused at once
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = cm_for($port,
		max_app_connections => 2,
		max_app_connections_per_user => 2,
		app_handshake_timeout => 20000);
	$cm->start;
	ok($cm->wait_up(0), 'limits: instance up');
	# two clients that say nothing hold the two slots
	my @silent = map { CmConmgr::App->connect($port, no_greeting => 1) } 1 .. 2;
	ok(CmConmgr::wait_for(sub { $cm->status =~ /"application_connections": 2,/ }, 'two held'),
		'two silent connections hold both slots');
	my $t0 = time();
	my $over = CmConmgr::App->connect($port, no_greeting => 1);
	my ($t, $len) = CmWire::header($over->read_raw(5) // '');
	my $body = $over->read_raw($len - 4) // '';
	like($body, qr/C53300\0Mtoo many application connections to conmgr on port $port \(max_app_connections = 2\)\0/,
		'a silent client over the limit is told at once');
	my $m = $over->read_msg;
	is($m->{type}, 'X', 'over the limit: refusal');
	is($m->{reason}, $CmWire::REASON{too_many}, 'over the limit: reason too many');
	ok($over->is_closed(5), 'over the limit: closed');
	cmp_ok(time() - $t0, '<', 5, 'over the limit: not kept until app_handshake_timeout (20 s)');

	# a client that sends its GSSENCRequest, then its route request, after
	# the refusal was written still reads the refusal (no reset)
	{
		my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
		  or die "connect: $!";
		usleep(100_000);
		ok(defined syswrite($c, CmWire::gss_request()), 'late client: GSSENCRequest sent');
		usleep(100_000);
		my $got = '';
		sysread($c, $got, 4096);
		my $r = syswrite($c, CmWire::route_frame('any', $$, 'late'));
		ok(defined $r, 'late client: its route request is not met by a reset')
		  or diag("send: $!");
		like($got, qr/^E.*cconmgr \d+ \d+\0\0X/s, 'late client: greeting and refusal read');
	}

	# a stock psql over the limit shows the cause (without SSL: libpq does
	# not show an error that comes in answer to its SSLRequest)
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ 'psql', '-X', '-c', 'select 1', "host=127.0.0.1 port=$port dbname=postgres sslmode=disable" ],
		'<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	like($err, qr/too many application connections to conmgr on port $port/,
		'psql over the limit shows the cause');
	$_->close foreach @silent;
}

# ---- one local user cannot take every slot: max_app_connections_per_user
# (every test runs as one OS user, so the cap is tested for that user; that
# another user still gets the slots left needs a second user, i.e. root)
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = cm_for($port, max_app_connections => 9);
	$cm->start;
	ok($cm->wait_up(0), 'per user: instance up');
	unlike(slurp_file($cm->logfile), qr/does not tell conmgr which user owns/,
		'per user: the kernel tells conmgr who owns a socket');
	my @mine = map { CmConmgr::App->connect($port) } 1 .. 5;
	is(scalar(grep { $_ && $_->route('any')->{type} eq 'I' } @mine), 5,
		'per user: the default cap, half of max_app_connections = 9 rounded up, lets 5 in');
	my @apps = $cm->applications;
	is(scalar(grep { ($_->{uid} // '') eq $< } @apps), 5,
		'per user: cm_ctl status shows the user of each connection');
	my $sixth = CmConmgr::App->connect($port);
	my $m = $sixth && $sixth->read_msg;
	is($m && $m->{type}, 'X', 'per user: the sixth is refused at once');
	is($m && $m->{reason}, $CmWire::REASON{too_many}, 'per user: reason too many');
	like($m && $m->{message},
		qr/too many application connections to conmgr on port $port from user $< \(max_app_connections_per_user = 5\)/,
		'per user: the refusal names the user and the setting');
	like(slurp_file($cm->logfile),
		qr/WARNING:  application connection from \S+ refused: user $< has 5 application connections, max_app_connections_per_user \(5\) reached/,
		'per user: the refusal is logged');

	# reloadable; the connections already there stay
	my $conf = $cm->conf;
	$cm->conf($conf . "max_app_connections_per_user = 7\n");
	my ($rc, $out) = $cm->ctl('reload');
	like($out, qr/parameter "max_app_connections_per_user" changed from "0" to "7"/,
		'per user: the cap is reloaded');
	my @more = map { CmConmgr::App->connect($port) } 1 .. 3;
	is(scalar(grep { $_ && $_->route('any')->{type} eq 'I' } @more[0, 1]), 2,
		'per user: two more under the new cap');
	is($more[2] && $more[2]->read_msg->{type}, 'X', 'per user: the eighth is refused');
	$_->close foreach grep { $_ } @mine, @more;
	my $again = CmConmgr::App->connect($port);
	is($again && $again->route('any')->{type}, 'I', 'per user: slots come back when connections close')
	  or diag(slurp_file($cm->logfile));
  SKIP:
	{
		my $v6 = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $port, Proto => 'tcp');
		skip 'no IPv6 loopback', 1 unless $v6;
		my $lport = $v6->sockport;
		ok( CmConmgr::wait_for(
				sub {
					grep { $_->{peer} eq "[::1]:$lport" && ($_->{uid} // '') eq $< }
					  $cm->applications;
				},
				'IPv6 connection with its user'),
			'per user: the user of a connection over ::1 is known too');
	}
}

# ---- registrations belong to the application that made them
{
	my $wd3 = CmConmgr::FakeWatchdog->new(attrs => 0);
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = CmConmgr->new(
		port => $port,
		heartbeat_interval => 200,
		heartbeat_timeout => 1000,
		log_level => 'debug',
		instances => [
			{ hostaddr => '127.0.0.1', port => 5432, watchdog_port => $wd3->port }
		]);
	$cm->start;
	ok($cm->wait_up(0), 'registrations: instance up');

	# an address that is a connected socket of the application's user
	my $a = CmConmgr::App->connect($port);
	is($a->route('any', 'owner')->{type}, 'I', 'registrations: A routed');
	my $aport = $a->register(4242);
	ok(CmConmgr::wait_for(sub { $wd3->events =~ /^register pid=4242 addr=127\.0\.0\.1:$aport$/m }, 'A registered'),
		'registrations: a connected socket of the application\'s user is registered');

	# a port that no socket has
	my $free = PostgreSQL::Test::Cluster::get_free_port();
	my $b = CmConmgr::App->connect($port);
	is($b->route('any', 'nobody')->{type}, 'I', 'registrations: B routed');
	$b->register_port(5555, $free);
	my $m = $b->read_msg;
	is($m && $m->{type}, 'X', 'registrations: a port no socket has is refused');
	is($m && $m->{reason}, $CmWire::REASON{protocol}, 'registrations: as a protocol violation');
	like($m && $m->{message},
		qr/the registered address 127\.0\.0\.1:$free is not a connected TCP socket of the application's user \($<\)/,
		'registrations: the refusal says why');
	ok($b->is_closed(5), 'registrations: the connection is closed');

	# a listening socket's port (with no connection accepted on it)
	my $listener = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => 0,
		Listen => 5,
		ReuseAddr => 1) or die "listen: $!";
	my $c = CmConmgr::App->connect($port);
	is($c->route('any', 'listener')->{type}, 'I', 'registrations: C routed');
	$c->register_port(6666, $listener->sockport);
	$m = $c->read_msg;
	is($m && $m->{type}, 'X', 'registrations: a listening socket\'s port is refused');
	like(slurp_file($cm->logfile),
		qr/WARNING:  application connection from \S+ \(pid \d+, application "nobody"\): registration of backend PID 5555 refused: the registered address 127\.0\.0\.1:$free is not a connected TCP socket/,
		'registrations: the refusal is logged');
	my $logged = () = slurp_file($cm->logfile) =~ /WARNING:  .*registration of backend PID \d+ refused/g;
	is($logged, 1, 'registrations: refusals are logged at most once a minute');
	unlike($wd3->events, qr/pid=(5555|6666)/, 'registrations: nothing refused reached the watchdog');

	# an application that registers and leaves at once, its SQL connection
	# closed first: nothing registered, and no warning
	my $quick = CmConmgr::App->connect($port);
	is($quick->route('any', 'quick')->{type}, 'I', 'registrations: a short-lived application routed');
	my $sql = CmConmgr::App::sql_connection();
	my $qport = $sql->[0]->sockport;
	close $_ foreach @$sql;
	# the registration and the end of the connection in one segment
	# (MSG_MORE, then shutdown), as when an application leaves at once
	send($quick->sock,
		CmWire::register_frame('J', 8888, '127.0.0.1', $qport),
		0x8000);
	shutdown($quick->sock, 1);
	ok($cm->wait_log(qr/closed right after registering backend PID 8888/),
		'registrations: a registration of an application already gone is dropped quietly');
	$quick->close;
	unlike(slurp_file($cm->logfile), qr/WARNING:  .*"quick"/,
		'registrations: without a warning');

	# another connection registers A's backend PID (its own socket, so
	# conmgr takes it, the watchdog would refuse it), then leaves: the
	# watchdog, which unregisters by PID, must not hear of it
	my $d = CmConmgr::App->connect($port);
	is($d->route('any', 'thief')->{type}, 'I', 'registrations: D routed');
	my $dport = $d->register(4242);
	ok(CmConmgr::wait_for(sub { $wd3->events =~ /^register pid=4242 addr=127\.0\.0\.1:$dport$/m }, 'D forwarded'),
		'registrations: D\'s registration of the same PID is forwarded (the watchdog checks it)');
	$d->close;
	ok(CmConmgr::wait_for(sub { $cm->status =~ /"application_connections": 1,/ }, 'D gone'),
		'registrations: D is gone');
	# a marker after D's departure: anything conmgr sent for D is before it
	my $e = CmConmgr::App->connect($port);
	$e->route('any', 'marker');
	my $eport = $e->register(7777);
	ok(CmConmgr::wait_for(sub { $wd3->events =~ /register pid=7777/ }, 'marker'), 'registrations: marker');
	unlike($wd3->events, qr/^unregister pid=4242/m,
		'registrations: no unregistration of A\'s PID when another connection leaves');
	$a->close;
	ok(CmConmgr::wait_for(sub { $wd3->events =~ /^unregister pid=4242 addr=127\.0\.0\.1:$aport$/m }, 'A unregistered'),
		'registrations: A\'s own departure unregisters it');
	$e->close;
	$wd3->stop;
}

# ---- squatting: connections that route and never register lose their slot
{
	my $N = 60;
	my $register_ms = 2000;
	my $margin = 1.5;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = cm_for($port,
		max_app_connections => $N,
		max_app_connections_per_user => $N,
		app_register_timeout => $register_ms);
	$cm->start;
	ok($cm->wait_up(0), 'squatting: instance up');
	my @squatters;
	my $t0 = time();
	foreach my $i (1 .. $N)
	{
		my $s = CmConmgr::App->connect($port) or last;
		my $r = $s->route('any', "squatter$i");
		last unless $r && $r->{type} eq 'I';
		push @squatters, $s;
	}
	is(scalar(@squatters), $N, "squatting: $N connections routed, none registers");
	my $first = CmConmgr::App->connect($port);
	my $m = $first && $first->read_msg;
	is($m && $m->{type}, 'X', 'squatting: every slot taken, a real application is refused meanwhile');

	# a real application: routed, then registers in time
	my ($app, $r);
	my $deadline = $t0 + $register_ms / 1000 + $margin + 5;
	while (time() < $deadline)
	{
		$app = CmConmgr::App->connect($port);
		$r = $app && $app->route('any', 'real');
		last if $r && $r->{type} eq 'I';
		usleep(100_000);
	}
	my $waited = time() - $t0;
	is($r && $r->{type}, 'I', 'squatting: a real application gets an instance');
	cmp_ok($waited, '<=', $register_ms / 1000 + $margin,
		sprintf('squatting: within app_register_timeout + %.1f s (%.2f s)', $margin, $waited));
	cmp_ok($waited, '>=', $register_ms / 1000 - 0.5,
		'squatting: the squatters held their slots until app_register_timeout');
	$app->register(4242);
	my $notice = $squatters[0]->read_msg;
	is($notice && $notice->{type}, 'X', 'squatting: a squatter is told why it is closed');
	like($notice && $notice->{message}, qr/no registration within app_register_timeout \($register_ms ms\)/,
		'squatting: the message names app_register_timeout');
	ok($cm->wait_log(
			qr/no registration within app_register_timeout \($register_ms ms\); closing/),
		'squatting: logged');
	my $logged = () = slurp_file($cm->logfile) =~ /LOG:  .*no registration within app_register_timeout/g;
	is($logged, 1, 'squatting: logged once, not once per connection');
	usleep(($register_ms + 500) * 1000);
	ok(!$app->is_closed(0), 'squatting: the registered application is not closed');
	$_->close foreach @squatters, $app;
}

# ---- squatting, with a real application: libpq through the client
# library against a real server, registered (its SQL socket passes the
# ownership check), while squatters hold every slot
{
	my $node = CmNode->create('squatted',
		init => { allows_streaming => 1 },
		check_attr_interval => 200,
		log_min_messages => undef);
	$node->start;
	my $register_ms = 2000;
	my $cm = CmConmgr->new(
		name => 'squatted',
		nodes => [$node],
		heartbeat_interval => 200,
		heartbeat_timeout => 1000,
		max_app_connections => 20,
		max_app_connections_per_user => 20,
		app_register_timeout => $register_ms,
		log_level => 'debug')->start;
	my $ci = "host=localhost port=$cm->{port} dbname=postgres target_session_attrs=read-write";
	CmClient::wait_connect($ci, 'SELECT 1', qr/^value=1$/m, 'real application: connects before the squatters');
	my @squatters;
	my $t0 = time();
	foreach my $i (1 .. 20)
	{
		my $s = CmConmgr::App->connect($cm->{port}) or last;
		my $r = $s->route('any', "squatter$i");
		push @squatters, $s if $r && $r->{type} eq 'I';
	}
	is(scalar(@squatters), 20, 'real application: 20 squatters hold every slot');
	my ($rc, $out, $err) = CmClient::run_tool('connect', $ci, 'SELECT 1');
	isnt($rc, 0, 'real application: refused while the squatters hold the slots');
	like($out . $err, qr/too many application connections/, 'real application: told why');
	# the successful connection stays a second, so that conmgr has read
	# its registration before it leaves (one that leaves at once is
	# dropped quietly, as it should be, and would prove nothing here)
	my $ok = 0;
	my $waited;
	while (time() < $t0 + $register_ms / 1000 + 10)
	{
		my $t_try = time();
		($rc, $out, $err) = CmClient::run_tool('connect', $ci,
			'SELECT pg_backend_pid() FROM pg_sleep(1)');
		if ($rc == 0)
		{
			$ok = 1;
			$waited = $t_try - $t0;
			last;
		}
		usleep(100_000);
	}
	$waited //= time() - $t0;
	ok($ok, 'real application: connects once the squatters are dropped') or diag($out . $err);
	cmp_ok($waited, '<=', $register_ms / 1000 + 2,
		sprintf('real application: within app_register_timeout + 2 s (%.2f s)', $waited));
	my ($bpid) = $out =~ /^value=(\d+)$/m;
	ok( $cm->wait_log(qr/registered: backend PID $bpid on instance 0/),
		'real application: its SQL connection passed the ownership check and was registered');
	unlike(slurp_file($cm->{log}), qr/registration of backend PID \d+ refused/,
		'real application: no registration refused');
	$_->close foreach @squatters;
	$node->stop;
}

# ---- descriptors: application connections never take those of the
# heartbeat connections, whatever the open-files limit
{
	my $wd2 = CmConmgr::FakeWatchdog->new(attrs => 0);
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = CmConmgr->new(
		port => $port,
		heartbeat_interval => 200,
		heartbeat_timeout => 1000,
		max_app_connections => 10,
		instances => [
			{ hostaddr => '127.0.0.1', port => 5432, watchdog_port => $wd2->port }
		],
		wrap => sub { return ('prlimit', '--nofile=64:64', @_); })->start;
	ok($cm->wait_up(0), 'descriptors: instance up');
	my $conf = $cm->conf;
	$cm->conf($conf =~ s/max_app_connections = \d+/max_app_connections = 200/r);
	my ($rc, $out) = $cm->ctl('reload');
	like($out, qr/the open-files limit \(64\) is below the 234 descriptors that max_app_connections = 200 and 1 instances need.*at most 30 application connections will be accepted/,
		'descriptors: the reload says that the open-files limit is too low for max_app_connections');

	# the instance is down while applications fill conmgr
	my $wdport = $wd2->port;
	$wd2->stop;
	my @conns = map { CmConmgr::App->connect($port) } 1 .. 40;
	usleep(300_000);
	my (@apps, $refusal);
	foreach my $c (@conns)
	{
		if (IO::Select->new($c->sock)->can_read(0))
		{
			$refusal //= $c->read_msg;
		}
		else
		{
			push @apps, $c;
		}
	}
	is(scalar(@apps), 30, 'descriptors: 30 application connections (64 - 32 - 2 for the instance)');
	like($refusal && $refusal->{message}, qr/open-files limit is reached/,
		'descriptors: the next one is refused, naming the open-files limit');
	like(slurp_file($cm->logfile), qr/WARNING:  application connection from \S+ refused: the open-files limit \(64\) leaves no descriptor/,
		'descriptors: the refusal is logged');
	$wd2 = CmConmgr::FakeWatchdog->new(attrs => 0, port => $wdport);
	ok($cm->wait_up(0),
		'descriptors: the heartbeat connection is made again with every application slot taken');
	unlike(slurp_file($cm->logfile), qr/could not create socket: Too many open files/,
		'descriptors: the heartbeat connection never lacked a descriptor');
	$_->close foreach @apps;
	$cm->stop;
}

# ---- a smart stop keeps the port until conmgr exits
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = cm_for($port);
	$cm->start;
	ok($cm->wait_up(0), 'smart stop: instance up');
	my $app = CmConmgr::App->connect($port);
	is($app->route('any')->{type}, 'I', 'smart stop: an application is routed');
	my $waiting = CmConmgr::App->connect($port);    # greeted, not routed yet
	my ($rc) = $cm->ctl('stop', '-W');
	is($rc, 0, 'smart stop requested');
	ok($cm->wait_log(qr/received smart shutdown request/),
		'conmgr is stopping');
	foreach my $addr ('127.0.0.1', '::1')
	{
		my $thief = IO::Socket::IP->new(
			LocalHost => $addr,
			LocalPort => $port,
			Listen => 5,
			ReuseAddr => 1);
		ok(!$thief, "smart stop: another program cannot bind $addr:$port")
		  or $thief->close;
	}
	my $late = CmConmgr::App->connect($port);
	ok($late, 'smart stop: a new connection is still greeted');
	my $m = $late->read_msg;
	is($m->{type}, 'N', 'smart stop: then told "no instance"');
	is($m->{reason}, $CmWire::REASON{shutdown}, 'smart stop: reason shutdown');
	like($m->{message}, qr/^conmgr is stopping/, 'smart stop: "conmgr is stopping"');
	ok($late->is_closed(5), 'smart stop: refused connection closed');
	$m = $waiting->route('any');
	is($m->{type}, 'N', 'smart stop: a route request of a connection made before is not routed');
	like($m->{message}, qr/^conmgr is stopping/, 'smart stop: it is told why');
	ok($cm->pid, 'smart stop: conmgr waits for the routed application');
	$app->close;
	ok(CmConmgr::wait_for(sub { !$cm->pid }, 'exit'),
		'smart stop: conmgr exits once the application is gone');
	my $free = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $port,
		Listen => 5,
		ReuseAddr => 1);
	ok($free, 'smart stop: the port is released at exit');
}

# ---- peer text is escaped in the log and in cm_ctl status
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = cm_for($port, log_level => 'debug');
	$cm->start;
	ok($cm->wait_up(0), 'escaping: instance up');
	my $name = "evil\n2026-01-01 00:00:00 ERROR: forged \e[31mred\\";
	my $escaped = 'evil\x0a2026-01-01 00:00:00 ERROR: forged \x1b[31mred\\\\';
	my $app = CmConmgr::App->connect($port);
	is($app->route('any', $name)->{type}, 'I', 'escaping: routed');
	my $nomatch = CmConmgr::App->connect($port);
	is($nomatch->route('standby', $name)->{type}, 'N', 'escaping: no standby: "no instance", logged');
	ok($cm->wait_log(qr/\Q$escaped\E/), 'escaping: the name is logged escaped');
	my $log = slurp_file($cm->logfile);
	unlike($log, qr/^2026-01-01 00:00:00 ERROR: forged/m, 'escaping: no forged log line');
	unlike($log, qr/\e/, 'escaping: no escape character in the log');
	my ($rc, $out) = $cm->ctl('status', '-i', 'application');
	like($out, qr/\Q$escaped\E/, 'escaping: cm_ctl status shows the name escaped');
	unlike($out, qr/[\e\x00-\x09\x0b-\x1f]|^2026-01-01/m, 'escaping: and no control character nor forged line');
	my $json = $cm->status;
	my ($jname) = $json =~ /"application_name": ("(?:[^"\\]|\\.)*")/;
	is($jname, '"' . ($escaped =~ s/\\/\\\\/gr) . '"',
		'escaping: valid JSON string in cm_ctl status --json');
	unlike($json, qr/[\x00-\x09\x0b-\x1f\x7f-\xff]/, 'escaping: the JSON output is plain ASCII here');

	# a watchdog's text too
	$wd->command('raw ' . unpack('H*',
		CmWire::frame('S', CmWire::notice_payload(5, "bye\nFATAL:  forged \e[2J"))));
	ok($cm->wait_log(qr/the instance is shutting down: bye\\x0aFATAL:  forged \\x1b\[2J/),
		'escaping: a watchdog\'s message is logged escaped');
	unlike(slurp_file($cm->logfile), qr/^FATAL:  forged/m, 'escaping: no forged line from the watchdog');
	$app->close;
	$nomatch->close;
}

# ---- the conmgr directory and conmgr.conf are the user's own
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = cm_for($port);
	my $dir = $cm->dir;
	chmod 0777, $dir;
	my ($rc, $out, $err) = $cm->ctl('start', '-t', '10');
	is($rc, 1, 'mode 0777: cm_ctl start fails');
	like($err, qr/conmgr: directory "\Q$dir\E" has invalid permissions \(0777\)/,
		'mode 0777: the error names the directory and its mode');
	like($err, qr/Permissions should be u=rwx \(0700\) or u=rwx,g=rx \(0750\)/,
		'mode 0777: and says what is allowed');
	ok(!-e "$dir/conmgr.pid", 'mode 0777: conmgr did not start');
	chmod 0755, $dir;
	command_fails_like([ CmProg::bin('conmgr'), '-D', $dir ],
		qr/has invalid permissions \(0755\)/, 'mode 0755 (readable by others): refused');
	chmod 0750, $dir;
	chmod 0664, "$dir/conmgr.conf";
	command_fails_like([ CmProg::bin('conmgr'), '-D', $dir ],
		qr/configuration file "\Q$dir\E\/conmgr\.conf" has invalid permissions \(0664\): it must be writable by its owner only/,
		'a conmgr.conf writable by the group: refused');
	chmod 0644, "$dir/conmgr.conf";
	$cm->start;
	ok($cm->wait_up(0), 'mode 0750 with conmgr.conf 0644: conmgr runs');
	chmod 0666, "$dir/conmgr.conf";
	($rc, $out, $err) = $cm->ctl('reload');
	is($rc, 1, 'a reload of a conmgr.conf that others may write fails');
	like($err, qr/has invalid permissions \(0666\)/, 'and says why');
	chmod 0600, "$dir/conmgr.conf";
	($rc) = $cm->ctl('stop', '-m', 'fast');
}

done_testing();
