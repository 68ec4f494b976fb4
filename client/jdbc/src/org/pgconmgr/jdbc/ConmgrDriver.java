/*
 * ConmgrDriver.java
 *	  A java.sql.Driver for jdbc:conmgr:postgresql://host[:port][,...]/db?...
 *	  URLs: Java programs reach their PostgreSQL instances through
 *	  Connection Manager with pgjdbc unchanged.
 *
 * For each entry of the host list, in order (shuffled with
 * loadBalanceHosts=true), stage 1 (Probe) asks the conmgr there for an
 * instance matching targetServerType; stage 2 calls pgjdbc's own Driver
 * with jdbc:postgresql://INSTANCE:PORT/db and the application's
 * properties, and returns pgjdbc's own connection object.  pgjdbc gets a
 * private socketFactory only so that the driver learns the SQL socket:
 * the session is registered with conmgr ('J': backend PID and the socket's
 * local address) and the watcher ends it when conmgr reports a failure.
 * An entry that turns out to be a PostgreSQL server, or where nothing
 * listens, is handed to pgjdbc as it is, so pgjdbc reports it.
 * connectTimeout bounds both stages of one entry, loginTimeout the whole.
 * See docs/jdbc.md.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/src/org/pgconmgr/jdbc/ConmgrDriver.java
 */
package org.pgconmgr.jdbc;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URLEncoder;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.DriverManager;
import java.sql.DriverPropertyInfo;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.logging.Logger;

import org.postgresql.PGConnection;

public final class ConmgrDriver implements Driver
{
	public static final String URL_PREFIX = "jdbc:conmgr:postgresql:";
	public static final int DEFAULT_PORT = 27546;

	/* connection property with the meaning of PGCONMGR_INSECURE_UNVERIFIED_PEER */
	public static final String INSECURE_PROPERTY = "conmgrInsecureUnverifiedPeer";

	/* pgjdbc's default connectTimeout, in seconds */
	private static final int PGJDBC_CONNECT_TIMEOUT = 10;

	static
	{
		try
		{
			DriverManager.registerDriver(new ConmgrDriver());
		}
		catch (SQLException e)
		{
			throw new ExceptionInInitializerError(e);
		}
	}

	private final org.postgresql.Driver pgjdbc = new org.postgresql.Driver();

	/* One host:port of the URL's host list. */
	static final class Entry
	{
		final String host;
		final int port;

		Entry(String host, int port)
		{
			this.host = host;
			this.port = port;
		}

		String label()
		{
			return "\"" + host + "\", port " + port;
		}
	}

	/* A URL taken apart: the conmgr entries and the rest, "/db?params". */
	static final class ParsedUrl
	{
		final List<Entry> entries = new ArrayList<>();
		String rest;

		String labels()
		{
			StringBuilder b = new StringBuilder();

			for (Entry e : entries)
				b.append(b.length() == 0 ? "" : "; ").append("conmgr at ").append(e.label());
			return b.toString();
		}
	}

	static ParsedUrl parseUrl(String url) throws SQLException
	{
		if (url == null || !url.startsWith(URL_PREFIX + "//"))
			return null;
		String s = url.substring(URL_PREFIX.length() + 2);
		int end = 0;

		/* the host list ends at the first '/' or '?' outside brackets */
		boolean bracket = false;

		while (end < s.length())
		{
			char c = s.charAt(end);

			if (c == '[')
				bracket = true;
			else if (c == ']')
				bracket = false;
			else if (!bracket && (c == '/' || c == '?'))
				break;
			end++;
		}
		ParsedUrl p = new ParsedUrl();
		String hosts = s.substring(0, end);

		p.rest = end < s.length() && s.charAt(end) == '/' ? s.substring(end) : "/" + s.substring(end);
		for (String item : hosts.split(",", -1))
		{
			String host = item;
			String port = null;

			if (item.startsWith("["))
			{
				int close = item.indexOf(']');

				if (close < 0)
					throw new SQLException("invalid host \"" + item + "\" in URL " + url, "08001");
				host = item.substring(1, close);
				if (item.length() > close + 1)
				{
					if (item.charAt(close + 1) != ':')
						throw new SQLException("invalid host \"" + item + "\" in URL " + url, "08001");
					port = item.substring(close + 2);
				}
			}
			else if (item.indexOf(':') >= 0)
			{
				host = item.substring(0, item.lastIndexOf(':'));
				port = item.substring(item.lastIndexOf(':') + 1);
			}
			if (host.isEmpty())
				host = "localhost";
			int portNumber = DEFAULT_PORT;

			if (port != null && !port.isEmpty())
			{
				try
				{
					portNumber = Integer.parseInt(port);
				}
				catch (NumberFormatException e)
				{
					portNumber = -1;
				}
				if (portNumber < 1 || portNumber > 65535)
					throw new SQLException("invalid port \"" + port + "\" in URL " + url, "08001");
			}
			p.entries.add(new Entry(host, portNumber));
		}
		return p;
	}

	@Override
	public boolean acceptsURL(String url)
	{
		return url != null && url.startsWith(URL_PREFIX + "//");
	}

	/* pgjdbc's targetServerType as the route request's target_session_attrs */
	static int tsaOf(String targetServerType, ParsedUrl p) throws SQLException
	{
		switch (targetServerType)
		{
			case "any":
				return Protocol.TSA_ANY;
			case "primary":
			case "master":
				return Protocol.TSA_READ_WRITE;
			case "secondary":
			case "slave":
				return Protocol.TSA_READ_ONLY;
			case "preferSecondary":
			case "preferSlave":
				return Protocol.TSA_PREFER_STANDBY;
			case "preferPrimary":
				throw new SQLException("targetServerType=preferPrimary is not supported through Connection Manager (" +
									   p.labels() + "): use primary, or any", "08001");
			default:
				throw new SQLException("invalid targetServerType \"" + targetServerType + "\" for " +
									   p.labels() + ": expected any, primary, secondary or preferSecondary",
									   "08001");
		}
	}

	private static int intProperty(Properties props, String name, int dflt) throws SQLException
	{
		String v = props.getProperty(name);

		if (v == null || v.isEmpty())
			return dflt;
		try
		{
			return Integer.parseInt(v.trim());
		}
		catch (NumberFormatException e)
		{
			throw new SQLException("invalid value \"" + v + "\" for " + name + ": expected a number of seconds", "08001");
		}
	}

	@Override
	public Connection connect(String url, Properties info) throws SQLException
	{
		ParsedUrl p = parseUrl(url);

		if (p == null)
			return null;

		/* pgjdbc reads the database and the parameters */
		Properties parsed = org.postgresql.Driver.parseURL("jdbc:postgresql://localhost" + p.rest,
														   info == null ? new Properties() : info);

		if (parsed == null)
			throw new SQLException("invalid URL " + url, "08001");
		Properties props = new Properties();

		for (String k : parsed.stringPropertyNames())
			props.setProperty(k, parsed.getProperty(k));
		String db = props.getProperty("PGDBNAME", "");

		props.remove("PGHOST");
		props.remove("PGPORT");
		props.remove("PGDBNAME");

		String sf = props.getProperty("socketFactory");

		if (sf != null && !sf.isEmpty())
			throw new SQLException("socketFactory=" + sf + " is not supported through Connection Manager (" +
								   p.labels() + "): the driver passes its own socket factory to pgjdbc " +
								   "to watch the connection; remove socketFactory", "08001");
		props.remove("socketFactoryArg");

		int tsa = tsaOf(props.getProperty("targetServerType", "any"), p);
		int connectTimeout = intProperty(props, "connectTimeout", PGJDBC_CONNECT_TIMEOUT);
		int loginTimeout = intProperty(props, "loginTimeout", DriverManager.getLoginTimeout());
		long overall = loginTimeout > 0 ? System.nanoTime() + loginTimeout * 1_000_000_000L : 0;

		/* without loginTimeout, no overall bound, as with pgjdbc */
		PeerCheck.Rule rule = PeerCheck.readRule(props.getProperty(INSECURE_PROPERTY));

		props.remove(INSECURE_PROPERTY);

		List<Entry> entries = new ArrayList<>(p.entries);

		if ("true".equalsIgnoreCase(props.getProperty("loadBalanceHosts")))
			Collections.shuffle(entries);

		List<String> lines = new ArrayList<>();
		List<SQLException> errors = new ArrayList<>();
		SQLException lastPgjdbc = null;

		for (Entry e : entries)
		{
			long entryDeadline = connectTimeout > 0 ? System.nanoTime() + connectTimeout * 1_000_000_000L : 0;
			String deadlineName = "connectTimeout";

			if (overall != 0 && (entryDeadline == 0 || overall - entryDeadline < 0))
			{
				entryDeadline = overall;
				deadlineName = "loginTimeout";
			}
			if (overall != 0 && Probe.remaining(overall) == 0)
			{
				lines.add("conmgr at " + e.label() + " was not tried: loginTimeout expired");
				continue;
			}
			Probe probe = new Probe(e.host, e.port);
			Probe.Result r = probe.run(tsa, props.getProperty("ApplicationName", ""), rule, entryDeadline,
											 deadlineName);

			switch (r)
			{
				case PLAIN:
				case DOWN:
					try
					{
						Properties direct = stage2Props(props, entryDeadline, overall);

						return pgjdbc.connect(pgUrl(e.host, e.port, db), direct);
					}
					catch (SQLException ex)
					{
						lines.add(ex.getMessage());
						errors.add(ex);
						lastPgjdbc = ex;
					}
					break;
				case INSTANCE:
					try
					{
						return stage2(probe, props, db, entryDeadline, overall);
					}
					catch (SQLException ex)
					{
						lines.add("connection to instance " + probe.instanceHost + ":" + probe.instancePort +
								  " named by conmgr at " + e.label() + " failed: " + ex.getMessage());
						errors.add(ex);
						lastPgjdbc = ex;
					}
					break;
				case NO_INSTANCE:
				case ERROR:
				default:
					{
						SQLException ex = new SQLException(probe.message, "08001");

						lines.add(probe.message);
						errors.add(ex);
						lastPgjdbc = null;
					}
					break;
			}
		}
		String state = lastPgjdbc != null && lastPgjdbc.getSQLState() != null ? lastPgjdbc.getSQLState() : "08001";
		SQLException all = new SQLException(String.join("\n", lines), state,
											errors.isEmpty() ? null : errors.get(errors.size() - 1));

		for (SQLException ex : errors)
			all.setNextException(ex);
		throw all;
	}

	private static String pgUrl(String host, int port, String db)
	{
		String h = host.indexOf(':') >= 0 ? "[" + host + "]" : host;

		return "jdbc:postgresql://" + h + ":" + port + "/" + URLEncoder.encode(db, StandardCharsets.UTF_8);
	}

	/* Seconds left before a deadline, rounded up, at least 1. */
	private static int seconds(long deadline)
	{
		long ms = Probe.remaining(deadline);

		return (int) Math.max(1, Math.min(Integer.MAX_VALUE, (ms + 999) / 1000));
	}

	private static Properties stage2Props(Properties props, long entryDeadline, long overall)
	{
		Properties p = new Properties();

		for (String k : props.stringPropertyNames())
			p.setProperty(k, props.getProperty(k));
		/* what is left of the entry's time, and of the whole */
		p.setProperty("connectTimeout", entryDeadline == 0 ? "0" : Integer.toString(seconds(entryDeadline)));
		if (overall != 0)
			p.setProperty("loginTimeout", Integer.toString(seconds(overall)));
		return p;
	}

	/* Stage 2 for an instance conmgr named; then registration and the watcher. */
	private Connection stage2(Probe probe, Properties props, String db, long entryDeadline, long overall)
		throws SQLException
	{
		ConmgrSocketFactory.Attempt attempt = ConmgrSocketFactory.begin();
		Properties p = stage2Props(props, entryDeadline, overall);
		Connection conn;

		p.setProperty("socketFactory", ConmgrSocketFactory.class.getName());
		p.setProperty("socketFactoryArg", attempt.token);
		try
		{
			conn = pgjdbc.connect(pgUrl(probe.instanceHost, probe.instancePort, db), p);
		}
		catch (SQLException | RuntimeException e)
		{
			ConmgrSocketFactory.end(attempt);
			probe.closeQuietly();
			throw e;
		}
		SqlSocket sql = ConmgrSocketFactory.end(attempt);

		if (conn == null)
		{
			probe.closeQuietly();
			throw new SQLException("pgjdbc did not accept the URL for the instance", "08001");
		}
		Session session = new Session(probe.channel, sql, conn, probe.label);

		register(session, conn);
		if (sql != null)
			sql.attach(session);
		Watcher.get().add(session);
		return conn;
	}

	/* Best effort: a registration that cannot be sent loses the precise mode only. */
	private static void register(Session s, Connection conn)
	{
		try
		{
			if (s.sqlSocket == null)
				return;
			int pid = conn.unwrap(PGConnection.class).getBackendPID();
			InetSocketAddress local = (InetSocketAddress) s.sqlSocket.getLocalSocketAddress();

			if (pid == 0 || local == null)
				return;
			ByteBuffer b = ByteBuffer.wrap(Protocol.register(pid, local.getAddress(), local.getPort()));

			for (int tries = 0; b.hasRemaining() && tries < 100; tries++)
				s.channel.write(b);
		}
		catch (SQLException | IOException | RuntimeException e)
		{
			/* not registered */
		}
	}

	@Override
	public DriverPropertyInfo[] getPropertyInfo(String url, Properties info) throws SQLException
	{
		ParsedUrl p = parseUrl(url);

		if (p == null)
			return new DriverPropertyInfo[0];
		return pgjdbc.getPropertyInfo("jdbc:postgresql://localhost" + p.rest, info);
	}

	@Override
	public int getMajorVersion()
	{
		return 1;
	}

	@Override
	public int getMinorVersion()
	{
		return 0;
	}

	@Override
	public boolean jdbcCompliant()
	{
		return false;
	}

	@Override
	public Logger getParentLogger() throws SQLFeatureNotSupportedException
	{
		return parentLogger();
	}

	/* The parent of the driver's loggers, for the driver and the data source. */
	static Logger parentLogger()
	{
		return Logger.getLogger("org.pgconmgr.jdbc");
	}
}
