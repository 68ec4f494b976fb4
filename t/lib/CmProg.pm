
# Copyright (c) 2026, Connection Manager for PostgreSQL developers

=pod

=head1 NAME

CmProg - where the TAP tests find the programs they run

=head1 SYNOPSIS

  use CmProg;
  my $conmgr = CmProg::bin('conmgr');          # installed product program
  my $app    = CmProg::program('cm_app');      # test/programs/cm_app
  my $lab    = CmProg::lab_program('lab_app'); # test/lab/lab_app
  my $tool   = CmProg::tool();                 # client/test/pqcm_tool
  my $file   = CmProg::top() . '/docs/conmgr.md';
  my $release = CmProg::release_version();      # "1.0", from common/cm_version.h

=head1 DESCRIPTION

The one place that knows the layout: the source tree is TESTDIR (set by
PGXS for installcheck), or the current directory; the product programs
(conmgr, cm_ctl) and PostgreSQL's are installed in pg_config's bindir,
or found on PATH.

=cut

package CmProg;

use strict;
use warnings FATAL => 'all';

use Carp;

my $pg_bindir;

=pod

=over

=item top()

Top of the source tree.

=cut

sub top { return $ENV{TESTDIR} || '.'; }

=pod

=item pg_bindir()

PostgreSQL's bindir, as pg_config names it (asked once).

=cut

sub pg_bindir
{
	if (!defined $pg_bindir)
	{
		$pg_bindir = `pg_config --bindir`;
		chomp $pg_bindir;
	}
	return $pg_bindir;
}

=pod

=item bin(name)

Full path of an installed program (conmgr, cm_ctl, or one of
PostgreSQL's): in pg_config's bindir, where the product is installed,
else on PATH.  For conmgr, the environment variable CM_CONMGR names
another build instead (scripts/test.sh: conmgr/conmgr_san, built with
AddressSanitizer and UndefinedBehaviorSanitizer).

=cut

sub bin
{
	my ($name) = @_;
	if ($name eq 'conmgr' && ($ENV{CM_CONMGR} // '') ne '')
	{
		croak "CM_CONMGR=$ENV{CM_CONMGR} is not an executable file" unless -x $ENV{CM_CONMGR};
		return $ENV{CM_CONMGR};
	}
	foreach my $d (pg_bindir(), split(/:/, $ENV{PATH}))
	{
		return "$d/$name" if $d ne '' && -x "$d/$name";
	}
	croak "$name not found in " . pg_bindir() . " or on PATH";
}

=pod

=item program(name)

Path of a test program built by `make test-programs` (test/programs/NAME).

=item lab_program(name)

Path of a partition-lab program (test/lab/NAME).

=cut

sub program
{
	my ($name) = @_;
	return built("test/programs/$name", 'test program ', 'make test-programs');
}

sub lab_program
{
	my ($name) = @_;
	return built("test/lab/$name", '', 'make -C test/lab');
}

# A program built in the tree; dies naming the command that builds it.
sub built
{
	my ($path, $what, $how) = @_;
	$path = top() . "/$path";
	croak "$what$path is missing: run $how" unless -x $path;
	return $path;
}

=pod

=item client_test([name])

The client library's test directory (client/test), or a file in it.

=cut

sub client_test
{
	my ($name) = @_;
	my $dir = top() . '/client/test';
	return defined $name ? "$dir/$name" : $dir;
}

=pod

=item tool()

Path of the client library's test driver client/test/pqcm_tool, built
first if needed (so that the tests also run from a fresh copy of the
tree).

=cut

sub tool
{
	my $tool = client_test('pqcm_tool');
	if (!-x $tool)
	{
		system('make', '-s', '-C', client_test(),
			'PQCM_LIBDIR=' . `pg_config --libdir` =~ s/\s+$//r) == 0
		  or croak "could not build $tool";
	}
	return $tool;
}

=pod

=item define(header, name)

The value of "#define NAME value" in common/HEADER of the source tree (the
value's text, comments and surrounding blanks dropped); dies when the
header has no such line.

=cut

sub define
{
	my ($header, $name) = @_;
	my $path = top() . "/common/$header";
	open(my $fh, '<', $path) or croak "could not open $path: $!";
	while (my $line = <$fh>)
	{
		next unless $line =~ /^#define\s+\Q$name\E\s+(.*?)\s*(?:\/\*.*)?$/;
		close $fh;
		return $1;
	}
	close $fh;
	croak "$path defines no $name";
}

=pod

=item release_version()

The release the source tree builds, "MAJOR.MINOR" from
CM_VERSION_MAJOR and CM_VERSION_MINOR of common/cm_version.h.

=cut

sub release_version
{
	return define('cm_version.h', 'CM_VERSION_MAJOR') . '.'
	  . define('cm_version.h', 'CM_VERSION_MINOR');
}

=pod

=back

=cut

1;
