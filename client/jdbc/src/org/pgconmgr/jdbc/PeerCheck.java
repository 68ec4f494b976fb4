/*
 * PeerCheck.java
 *	  Who answered on a conmgr port.  Before the driver believes a conmgr
 *	  (before the route request, long before a password goes anywhere) it
 *	  finds which OS user holds the socket at the other end of the
 *	  connection, and accepts only the users that may run conmgr: root,
 *	  the program's own user and the owner of $CMDATA, or the users listed
 *	  in PGCONMGRUSER.  The rules and messages are those of the C library
 *	  (client/pqcm_peer.c, docs/client.md).
 *
 * The C library asks the kernel with NETLINK_SOCK_DIAG, which Java cannot
 * do.  The kernel gives the same answer in /proc/net/tcp and
 * /proc/net/tcp6: one line per TCP socket with its local and remote
 * address and port, its state, the owner's UID and its inode.  The socket
 * that answered us is the one whose local end is our remote end and whose
 * remote end is our local end.  Only a socket still held by a process
 * (inode not 0) in a connected state counts: a socket nobody holds is
 * reported as root's.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/src/org/pgconmgr/jdbc/PeerCheck.java
 */
package org.pgconmgr.jdbc;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

final class PeerCheck
{
	static final int MAX_USERS = 17;	/* root + 16 items, as in C */

	/* TCP states that count as connected (CM_SOCKDIAG_CONNECTED) */
	private static final int[] CONNECTED = {1, 4, 5, 8, 9, 11};

	/* The users that may run conmgr, read once per connection attempt. */
	static final class Rule
	{
		final List<Long> uids = new ArrayList<>();
		boolean fromEnv;
		String setting;
		String error;
		boolean insecure;

		void add(long uid)
		{
			if (!uids.contains(uid) && uids.size() < MAX_USERS)
				uids.add(uid);
		}
	}

	private PeerCheck()
	{
	}

	/*
	 * Read the rule from the environment (PGCONMGRUSER, CMDATA,
	 * PGCONMGR_INSECURE_UNVERIFIED_PEER); insecureProperty is the
	 * connection property of the same meaning.  An invalid PGCONMGRUSER
	 * sets rule.error, reported when a conmgr answers.
	 */
	static Rule readRule(String insecureProperty)
	{
		Rule rule = new Rule();
		String v = System.getenv("PGCONMGRUSER");
		String ins = System.getenv("PGCONMGR_INSECURE_UNVERIFIED_PEER");

		rule.insecure = (ins != null && ins.equalsIgnoreCase("on")) ||
			(insecureProperty != null && insecureProperty.equalsIgnoreCase("on"));
		rule.add(0);
		if (v == null || v.isEmpty())
		{
			long self = selfUid();

			if (self >= 0)
				rule.add(self);
			String dir = System.getenv("CMDATA");

			if (dir != null && !dir.isEmpty())
			{
				try
				{
					Path p = Paths.get(dir);

					if (Files.isDirectory(p))
						rule.add(((Number) Files.getAttribute(p, "unix:uid")).longValue());
				}
				catch (Exception e)
				{
					/* not a directory we can see: no one added */
				}
			}
			return rule;
		}
		rule.fromEnv = true;
		rule.setting = v;
		for (String raw : v.split(",", -1))
		{
			String item = raw.trim();

			if (item.isEmpty())
				continue;
			if (rule.uids.size() >= MAX_USERS)
			{
				rule.error = "invalid value for environment variable PGCONMGRUSER: more than " +
					(MAX_USERS - 1) + " users";
				return rule;
			}
			if (item.chars().allMatch(c -> c >= '0' && c <= '9'))
			{
				long uid;

				try
				{
					uid = Long.parseLong(item);
				}
				catch (NumberFormatException e)
				{
					uid = -1;
				}
				if (uid < 0 || uid >= 0xffffffffL)
				{
					rule.error = "invalid value \"" + v + "\" for environment variable PGCONMGRUSER: UID " +
						item + " is out of range";
					return rule;
				}
				rule.add(uid);
			}
			else
			{
				long uid = uidOfName(item);

				if (uid < 0)
				{
					rule.error = "invalid value \"" + v + "\" for environment variable PGCONMGRUSER: no user named \"" +
						item + "\"" + (item.contains("*") ? " (wildcards are not supported)" : "");
					return rule;
				}
				rule.add(uid);
			}
		}
		return rule;
	}

	/* The effective UID of this process, from /proc/self/status; -1 if unknown. */
	static long selfUid()
	{
		try
		{
			for (String line : Files.readAllLines(Paths.get("/proc/self/status")))
				if (line.startsWith("Uid:"))
				{
					String[] f = line.substring(4).trim().split("\\s+");

					return Long.parseLong(f.length > 1 ? f[1] : f[0]);
				}
		}
		catch (IOException | NumberFormatException e)
		{
			/* fall through */
		}
		return -1;
	}

	private static List<String[]> passwd()
	{
		List<String[]> r = new ArrayList<>();

		try
		{
			for (String line : Files.readAllLines(Paths.get("/etc/passwd")))
			{
				String[] f = line.split(":", -1);

				if (f.length >= 3)
					r.add(f);
			}
		}
		catch (IOException e)
		{
			/* no names */
		}
		return r;
	}

	static long uidOfName(String name)
	{
		for (String[] f : passwd())
			if (f[0].equals(name))
			{
				try
				{
					return Long.parseLong(f[2]);
				}
				catch (NumberFormatException e)
				{
					return -1;
				}
			}
		return -1;
	}

	/* "UID 1001 (cmtest)" or "UID 1001" */
	static String uidName(long uid)
	{
		for (String[] f : passwd())
			if (f[2].equals(Long.toString(uid)))
				return "UID " + uid + " (" + f[0] + ")";
		return "UID " + uid;
	}

	/* "127.0.0.1 port 27546", "::1 port 27546" (as inet_ntop writes it) */
	static String addrName(InetSocketAddress a)
	{
		InetAddress ia = a.getAddress();

		if (ia == null)
			return a.getHostString() + " port " + a.getPort();
		byte[] b = ia.getAddress();

		if (b.length != 16)
			return ia.getHostAddress() + " port " + a.getPort();

		/* the longest run of two or more zero groups becomes "::" */
		int[] g = new int[8];
		int bestStart = -1,
			bestLen = 0;

		for (int i = 0; i < 8; i++)
			g[i] = ((b[2 * i] & 0xff) << 8) | (b[2 * i + 1] & 0xff);
		for (int i = 0; i < 8;)
		{
			int j = i;

			while (j < 8 && g[j] == 0)
				j++;
			if (j - i > bestLen && j - i >= 2)
			{
				bestStart = i;
				bestLen = j - i;
			}
			i = j == i ? i + 1 : j;
		}
		StringBuilder s = new StringBuilder();

		for (int i = 0; i < 8; i++)
		{
			if (i == bestStart)
			{
				s.append("::");
				i += bestLen - 1;
				continue;
			}
			if (s.length() > 0 && s.charAt(s.length() - 1) != ':')
				s.append(':');
			s.append(Integer.toHexString(g[i]));
		}
		return s + " port " + a.getPort();
	}

	/* One line of /proc/net/tcp{,6}. */
	private static final class Sock
	{
		byte[] laddr;
		int lport;
		byte[] raddr;
		int rport;
		int state;
		long uid;
		long inode;
	}

	/* Address bytes from the kernel's hex: 32-bit words in host order. */
	private static byte[] hexAddr(String hex)
	{
		byte[] b = new byte[hex.length() / 2];

		for (int i = 0; i < b.length; i++)
			b[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
		if (ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN)
			for (int w = 0; w + 4 <= b.length; w += 4)
			{
				byte t = b[w];

				b[w] = b[w + 3];
				b[w + 3] = t;
				t = b[w + 1];
				b[w + 1] = b[w + 2];
				b[w + 2] = t;
			}
		return canonical(b);
	}

	/* An IPv4-mapped IPv6 address as its 4 IPv4 bytes; others unchanged. */
	private static byte[] canonical(byte[] a)
	{
		if (a.length == 16)
		{
			for (int i = 0; i < 10; i++)
				if (a[i] != 0)
					return a;
			if (a[10] == (byte) 0xff && a[11] == (byte) 0xff)
				return Arrays.copyOfRange(a, 12, 16);
		}
		return a;
	}

	private static List<Sock> readTable(String file) throws IOException
	{
		List<Sock> r = new ArrayList<>();
		List<String> lines = Files.readAllLines(Paths.get(file));

		for (int i = 1; i < lines.size(); i++)
		{
			String[] f = lines.get(i).trim().split("\\s+");

			if (f.length < 10)
				continue;
			try
			{
				Sock s = new Sock();
				String[] l = f[1].split(":");
				String[] rm = f[2].split(":");

				s.laddr = hexAddr(l[0]);
				s.lport = Integer.parseInt(l[1], 16);
				s.raddr = hexAddr(rm[0]);
				s.rport = Integer.parseInt(rm[1], 16);
				s.state = Integer.parseInt(f[3], 16);
				s.uid = Long.parseLong(f[7]);
				s.inode = Long.parseLong(f[9]);
				r.add(s);
			}
			catch (RuntimeException e)
			{
				/* a line we do not understand: skip it */
			}
		}
		return r;
	}

	/* The socket whose own end is local and whose other end is remote. */
	private static Sock find(List<Sock> all, InetSocketAddress local, InetSocketAddress remote)
	{
		byte[] la = canonical(local.getAddress().getAddress());
		byte[] ra = canonical(remote.getAddress().getAddress());
		Sock best = null;

		for (Sock s : all)
			if (s.lport == local.getPort() && s.rport == remote.getPort() &&
				Arrays.equals(s.laddr, la) && Arrays.equals(s.raddr, ra))
			{
				/* prefer one still held by a process */
				if (best == null || (best.inode == 0 && s.inode != 0))
					best = s;
			}
		return best;
	}

	private static boolean connectedState(int st)
	{
		for (int c : CONNECTED)
			if (c == st)
				return true;
		return false;
	}

	/*
	 * Decide whether the conmgr that answered on the connection from local
	 * to remote may be believed, by rule.  label names the entry
	 * ("\"localhost\", port 27546").  Returns null when it may, the error
	 * message otherwise.
	 */
	static String check(InetSocketAddress local, InetSocketAddress remote, Rule rule, String label)
	{
		String rname = addrName(remote);
		String why;

		if (rule.error != null)
			return "conmgr at " + label + " is not trusted: " + rule.error;

		List<Sock> all = new ArrayList<>();

		try
		{
			all.addAll(readTable("/proc/net/tcp"));
			if (Files.exists(Paths.get("/proc/net/tcp6")))
				all.addAll(readTable("/proc/net/tcp6"));
		}
		catch (IOException e)
		{
			all = null;
		}
		if (all == null)
			why = "could not read /proc/net/tcp (not Linux, or /proc not mounted)";
		else
		{
			Sock s = find(all, remote, local);

			if (s != null)
			{
				if (!connectedState(s.state) || s.inode == 0)
					return "conmgr at " + label + " is not trusted: the socket that answered on " +
						rname + " is no longer held by a process (TCP state " + s.state + ")";
				if (rule.uids.contains(s.uid))
					return null;

				StringBuilder allowed = new StringBuilder();

				for (long u : rule.uids)
					allowed.append(allowed.length() == 0 ? "" : ", ").append(uidName(u));
				if (rule.fromEnv)
					return "conmgr at " + label + " is not trusted: the socket that answered on " +
						rname + " belongs to " + uidName(s.uid) + ", and PGCONMGRUSER=\"" +
						rule.setting + "\" allows only " + allowed;
				return "conmgr at " + label + " is not trusted: the socket that answered on " +
					rname + " belongs to " + uidName(s.uid) + ", and without PGCONMGRUSER only " +
					allowed + " may run conmgr (set PGCONMGRUSER to the user conmgr runs as)";
			}
			if (find(all, local, remote) != null)
				why = "no socket of this host answers on " + rname +
					" (a conmgr on another host or in another network namespace)";
			else
				why = "/proc/net/tcp does not list this connection";
		}
		if (rule.insecure)
			return null;
		return "conmgr at " + label + " is not trusted: the user it runs as cannot be verified: " +
			why + " (PGCONMGR_INSECURE_UNVERIFIED_PEER is not set)";
	}
}
