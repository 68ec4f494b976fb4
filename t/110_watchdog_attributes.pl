
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

# Attributes: a standby (hot or not) is served and announced as standby;
# default_transaction_read_only reaches peers after a reload; promotion is
# pushed within watchdog.check_attr_interval plus a margin.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use CmNode;
use CmWatchdog;
use CmWire;

my $check_interval = 300;    # ms
my $margin = 2.0;            # s, for a loaded test machine

my $primary = CmNode->create('attr_primary',
	init => { allows_streaming => 1 },
	conf => "watchdog.check_attr_interval = $check_interval\n");
my $wdport_p = $primary->watchdog_port;
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION watchdog');
$primary->backup('b1');

my $standby = PostgreSQL::Test::Cluster->new('attr_standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
my $wdport_s = PostgreSQL::Test::Cluster::get_free_port();
$standby->append_conf('postgresql.conf', "watchdog.port = $wdport_s\n");
$standby->start;
$primary->wait_for_catchup($standby, 'replay');

# a standby without hot_standby accepts no SQL; its watchdog serves anyway
my $cold = PostgreSQL::Test::Cluster->new('attr_cold');
$cold->init_from_backup($primary, 'b1', has_streaming => 1);
my $wdport_c = PostgreSQL::Test::Cluster::get_free_port();
$cold->append_conf('postgresql.conf',
	"watchdog.port = $wdport_c\nhot_standby = off\n");
$cold->start;

# long heartbeat settings: these peers need not beat during the test
my %hb = (interval => 10000, timeout => 30000);

my $pp = CmWatchdog::Peer->connect($wdport_p);
my $w = $pp->hello(%hb, name => 'to-primary');
is($w->{type}, 'W', 'primary welcomes');
is($w->{attrs}, 0, 'primary: read-write, not standby');
is($w->{check_attr_interval}, $check_interval,
	'welcome announces check_attr_interval');

my $ps = CmWatchdog::Peer->connect($wdport_s);
$w = $ps->hello(%hb, name => 'to-standby');
is($w->{type}, 'W', 'hot standby welcomes');
is( $w->{attrs},
	CmWire::ATTR_STANDBY | CmWire::ATTR_READ_ONLY,
	'hot standby: standby and read-only');

my $pc = CmWatchdog::Peer->connect($wdport_c);
$w = $pc->hello(%hb, name => 'to-cold');
is($w->{type}, 'W', 'standby without hot_standby welcomes');
is( $w->{attrs},
	CmWire::ATTR_STANDBY | CmWire::ATTR_READ_ONLY,
	'cold standby: standby and read-only');
my $r = $pc->heartbeat(1);
is($r->{type}, 'b', 'cold standby answers heartbeats');
$pc->close;

# default_transaction_read_only, after a reload, is pushed
$primary->safe_psql('postgres',
	'ALTER SYSTEM SET default_transaction_read_only = on');
my $t0 = time();
$primary->safe_psql('postgres', 'SELECT pg_reload_conf()');
my $msg = $pp->read_msg;
my $elapsed = time() - $t0;
ok($msg && $msg->{type} eq 'A', 'read-only pushed after reload');
is($msg->{attrs}, CmWire::ATTR_READ_ONLY,
	'pushed attributes: read-only primary');
cmp_ok($elapsed, '<=', $check_interval / 1000 + $margin,
	'read-only pushed within check_attr_interval + margin');
$r = $pp->heartbeat(2);
is($r->{attrs}, CmWire::ATTR_READ_ONLY, 'heartbeat reply agrees');

$primary->safe_psql('postgres',
	'ALTER SYSTEM RESET default_transaction_read_only');
$primary->safe_psql('postgres', 'SELECT pg_reload_conf()');
$msg = $pp->read_msg;
ok($msg && $msg->{type} eq 'A' && $msg->{attrs} == 0,
	'read-write pushed after reset and reload');

# promotion is pushed
$primary->stop;
my $offset = -s $standby->logfile;
$standby->safe_psql('postgres', 'SELECT pg_promote()');
my $promoted = time();
$msg = $ps->read_msg;
$elapsed = time() - $promoted;
ok($msg && $msg->{type} eq 'A', 'promotion pushed');
is($msg->{attrs}, 0, 'pushed attributes: read-write primary');
cmp_ok($elapsed, '<=', $check_interval / 1000 + $margin,
	'promotion pushed within check_attr_interval + margin');
$r = $ps->heartbeat(3);
is($r->{attrs}, 0, 'heartbeat reply after promotion: primary');
ok( $standby->wait_for_log(
		qr/instance attributes changed from "standby" to "primary"/,
		$offset),
	'the attribute change is logged');

# the peer was never dropped: one row, still active
is( $standby->safe_psql(
		'postgres', "SELECT state, conmgr_name FROM pgx_stat_watchdog"),
	'active|to-standby',
	'the peer stayed connected through the promotion');

$ps->close;
$pp->close;
$standby->stop;
$cold->stop;
done_testing();
