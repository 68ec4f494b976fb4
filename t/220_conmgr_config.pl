
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# conmgr.conf errors: each names the file, the line and the parameter, and
# conmgr does not start.  Also: running as root, inaccessible directories.

use strict;
use warnings FATAL => 'all';

use Config;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CmConmgr;
use CmProg;

my $good = "backend_host0 = 127.0.0.1\nbackend_port0 = 5432\nwatchdog_port0 = 27545\n";

# Run conmgr on a directory holding $conf; it must exit 1 with stderr
# matching every pattern.
sub conf_fails
{
	my ($conf, $patterns, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $cm = CmConmgr->new(text => $conf);
	my $dir = $cm->dir;
	my ($rc, $out, $err) = $cm->run;
	is($rc, 1, "$name: conmgr exits with 1");
	foreach my $re (@$patterns)
	{
		like($err, $re, "$name: message");
	}
	ok(!-e "$dir/conmgr.pid", "$name: no PID file left");
	return $err;
}

conf_fails("$good\nheartbeat_intervall = 100\n",
	[qr{conmgr\.conf:5: unrecognized configuration parameter "heartbeat_intervall"}],
	'unknown parameter');

conf_fails("$good\nheartbeat_interval = 1s\n",
	[qr{conmgr\.conf:5: invalid value for parameter "heartbeat_interval": "1s" \(an integer from 10 to 3600000 ms is expected\)}],
	'bad number');

conf_fails("port = 70000\n$good",
	[qr{conmgr\.conf:1: invalid value for parameter "port": "70000" \(an integer from 1 to 65535 is expected\)}],
	'port out of range');

conf_fails("$good" . "backend_host1 = 127.0.0.2\nwatchdog_port1 = 27545\n",
	[qr{conmgr\.conf:4: instance 1 has no backend_port1}],
	'missing backend port of an instance');

conf_fails("$good" . "backend_hostaddr1 = 127.0.0.2\nbackend_port1 = 5433\n",
	[qr{conmgr\.conf:4: instance 1 has no watchdog_port1}],
	'missing watchdog port of an instance');

conf_fails("backend_port0 = 5432\nwatchdog_port0 = 27545\n",
	[qr{conmgr\.conf:1: instance 0 has neither backend_host0 nor backend_hostaddr0}],
	'missing host of an instance');

conf_fails("port = 6000\n$good" . "port = 6001\n",
	[qr{conmgr\.conf:5: parameter "port" is already set on line 1}],
	'duplicate parameter');

conf_fails("$good" . "backend_port0 = 5433\n",
	[qr{conmgr\.conf:4: parameter "backend_port0" is already set on line 2}],
	'duplicate instance parameter');

conf_fails("$good" . "heartbeat_interval = 2000\nheartbeat_timeout = 2000\n",
	[qr{conmgr\.conf:5: heartbeat_timeout \(2000 ms\) must be greater than heartbeat_interval \(2000 ms\)}],
	'timeout not above interval');

conf_fails("$good" . "backend_hostaddr1 = db.example.com\nbackend_port1 = 1\nwatchdog_port1 = 2\n",
	[qr{conmgr\.conf:4: invalid value for parameter "backend_hostaddr1": "db\.example\.com" is not a numeric IPv4 or IPv6 address}],
	'hostaddr not numeric');

conf_fails("$good" . "log_file = 'unterminated\n",
	[qr{conmgr\.conf:4: unterminated quoted string in the value of parameter "log_file"}],
	'unterminated quote');

conf_fails("backend_host0 = a   backend_host1 = b\n",
	[qr{conmgr\.conf:1: syntax error: unexpected text "backend_host1 = b" after the value of parameter "backend_host0"}],
	'two parameters on one line');

conf_fails("$good" . "backend_port007 = 1\nbackend_port200 = 1\nbackend_port = 1\n",
	[
		qr{conmgr\.conf:4: parameter "backend_port007" needs a decimal instance number without leading zeros},
		qr{conmgr\.conf:5: instance number 200 of parameter "backend_port200" is out of range \(0 to 127\)},
		qr{conmgr\.conf:6: parameter "backend_port" needs a decimal instance number}
	],
	'bad instance numbers');

conf_fails("$good" . "log_level = loud\n= 3\nport 5\n",
	[
		qr{conmgr\.conf:4: invalid value for parameter "log_level": "loud" \(one of "debug", "info", "warning", "error" is expected\)},
		qr{conmgr\.conf:5: syntax error: a parameter name was expected},
		qr{conmgr\.conf:6: syntax error: "=" expected after parameter name "port"},
	],
	'every error of the file is reported');

conf_fails("# nothing\nport = 6000\n",
	[qr{conmgr\.conf: no instance is defined}], 'no instance');

conf_fails(undef,
	[qr{conmgr\.conf: could not open configuration file: No such file or directory}],
	'missing file');

# unreadable file
{
	my $dir = CmConmgr->new(text => $good)->dir;
	chmod 0000, "$dir/conmgr.conf";
  SKIP:
	{
		skip 'file permissions are not enforced for this user', 2
		  if open(my $fh, '<', "$dir/conmgr.conf");
		command_fails_like(
			[ CmProg::bin('conmgr'), '-D', $dir ],
			qr{\Q$dir\E/conmgr\.conf: could not open configuration file: Permission denied},
			'unreadable file: message names the file and the cause');
		ok(!-e "$dir/conmgr.pid", 'unreadable file: no PID file');
	}
	chmod 0600, "$dir/conmgr.conf";
}

# quoted values: spaces, doubled and escaped quotes, comments after values
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cm = CmConmgr->new(
		port => $port,
		text => "port = $port   # the application port\n"
		  . "backend_hostaddr0 = '127.0.0.1'\nbackend_port0 = 5432#no space\n"
		  . "watchdog_port0 = 1\n"
		  . "log_destination = FILE\n"
		  . "log_file = 'it''s a \\'log\\'.txt'\n")->start;
	my $dir = $cm->dir;
	ok( CmConmgr::wait_for(sub { -e "$dir/it's a 'log'.txt" }, 'log file'),
		'quoted value with spaces and escaped quotes, enum in upper case');
	ok(CmConmgr::wait_for_log("$dir/it's a 'log'.txt", qr/starting in directory/),
		'conmgr logs into the file named by log_file');

	# log rotation: the file is reopened on reload
	rename("$dir/it's a 'log'.txt", "$dir/rotated.txt") or die $!;
	my ($rc) = $cm->ctl('reload');
	is($rc, 0, 'reload after rotation');
	ok(CmConmgr::wait_for_log("$dir/it's a 'log'.txt", qr/no parameter changed/),
		'the log file is reopened on reload');

	# the open-files limit follows max_app_connections
	my $pid = $cm->pid;
	my ($soft, $hard) = slurp_file("/proc/$pid/limits") =~ /^Max open files\s+(\d+)\s+(\S+)/m;
	cmp_ok($soft, '>=', 32 + 2 + 1000, 'open-files limit raised for max_app_connections');
	$cm->handle->signal('INT');
	ok($cm->handle->finish, 'conmgr exits 0 on a fast shutdown');
}

# cm_ctl start shows conmgr's configuration errors
{
	my $cm = CmConmgr->new(text => "$good" . "listen_addresses = '*'\n");
	my ($rc, $out, $err) = $cm->ctl('start');
	is($rc, 1, 'cm_ctl start with a bad configuration fails');
	like($err, qr/could not start conmgr: it exited with status 1/,
		'cm_ctl start says conmgr exited');
	like($err, qr{conmgr\.conf:4: unrecognized configuration parameter "listen_addresses"},
		'cm_ctl start shows the configuration error');
}

# directory problems
command_fails_like([ CmProg::bin('conmgr'), '-D', '/nonexistent/conmgr' ],
	qr{could not access directory "/nonexistent/conmgr": No such file or directory},
	'missing directory');
{
	local $ENV{CMDATA};
	delete $ENV{CMDATA};
	command_fails_like([ CmProg::bin('conmgr') ],
		qr{no conmgr directory specified},
		'no directory given');
}
command_fails_like([ CmProg::bin('conmgr'), '-D', '/tmp', 'extra' ],
	qr{too many command-line arguments \(first is "extra"\)},
	'extra argument');

# running as root: a preloaded geteuid() that says 0
SKIP:
{
	my $cc = $Config{cc} // 'cc';
	my $tmp = PostgreSQL::Test::Utils::tempdir('root');
	open my $fh, '>', "$tmp/fakeroot.c" or die $!;
	print $fh "#include <sys/types.h>\nuid_t geteuid(void) { return 0; }\n";
	close $fh;
	skip 'no C compiler to build the geteuid() shim', 4
	  unless system("$cc -shared -fPIC -o $tmp/fakeroot.so $tmp/fakeroot.c 2>/dev/null") == 0;
	my $dir = CmConmgr->new(text => $good)->dir;
	local $ENV{LD_PRELOAD} = "$tmp/fakeroot.so";
	command_fails_like([ CmProg::bin('conmgr'), '-D', $dir ],
		qr/conmgr: cannot be run as root/, 'conmgr refuses to run as root');
	ok(!-e "$dir/conmgr.pid", 'root: no PID file');
	command_fails_like([ CmProg::bin('cm_ctl'), 'start', '-D', $dir ],
		qr/cm_ctl: error: cannot be run as root/, 'cm_ctl refuses to run as root');
	ok(!-e "$dir/conmgr.pid", 'root via cm_ctl: no PID file');
}

done_testing();
