/*
 * JdbcTool.java
 *	  Test driver for t/330_jdbc.pl: connects through the Connection
 *	  Manager JDBC driver and prints key=value lines the test checks.
 *
 *   JdbcTool connect URL SQL [prop=value ...]   connect, run SQL, print its value
 *   JdbcTool block URL SQL [prop=value ...]     connect, print ready=1, run SQL
 *                                               (blocking), print how it failed,
 *                                               then try a later call
 *   JdbcTool hikari URL SQL [prop=value ...]    the same through a HikariCP
 *                                               pool of one, then ask the pool
 *                                               for a connection again
 *   JdbcTool datasource HOST PORT DB TST        connect through ConmgrDataSource
 *   JdbcTool hikari_ds HOST PORT DB TST         the same through a HikariCP pool
 *                                               configured with dataSourceClassName
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/test/JdbcTool.java
 */
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

import org.pgconmgr.jdbc.ConmgrDataSource;
import org.postgresql.PGConnection;

public class JdbcTool
{
	static void out(String k, Object v)
	{
		System.out.println(k + "=" + String.valueOf(v).replace("\n", " | "));
		System.out.flush();
	}

	static void error(String prefix, SQLException e)
	{
		out(prefix + "sqlstate", e.getSQLState());
		out(prefix + "error", e.getMessage());
		StringBuilder causes = new StringBuilder();

		for (Throwable c = e.getCause(); c != null; c = c.getCause())
			causes.append(causes.length() == 0 ? "" : " <- ").append(c.getMessage());
		out(prefix + "cause", causes);
	}

	static Properties props(String[] args, int from)
	{
		Properties p = new Properties();

		for (int i = from; i < args.length; i++)
		{
			int eq = args[i].indexOf('=');

			p.setProperty(args[i].substring(0, eq), args[i].substring(eq + 1));
		}
		return p;
	}

	static String value(Connection c, String sql) throws SQLException
	{
		try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql))
		{
			rs.next();
			return rs.getString(1);
		}
	}

	static void describe(Connection c) throws SQLException
	{
		out("class", c.getClass().getName());
		out("backend_pid", c.unwrap(PGConnection.class).getBackendPID());
		out("url", c.getMetaData().getURL());
		out("server_port", value(c, "SELECT inet_server_port()"));
		out("in_recovery", value(c, "SELECT pg_is_in_recovery()"));
		out("client_port", value(c, "SELECT client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()"));
	}

	/* Run sql, which blocks until the connection fails; report how. */
	static void block(Connection c, String sql)
	{
		out("ready", 1);
		long t0 = System.nanoTime();

		try
		{
			value(c, sql);
			out("blocked_result", "returned");
		}
		catch (SQLException e)
		{
			out("elapsed_ms", (System.nanoTime() - t0) / 1_000_000L);
			error("", e);
		}
		try
		{
			value(c, "SELECT 1");
			out("later", "ok");
		}
		catch (SQLException e)
		{
			error("later_", e);
		}
	}

	/*
	 * Run sql with st, which the test makes fail: print NAME_result=returned,
	 * or how long it took to fail (since t0) and how.
	 */
	static void interrupted(Statement st, String sql, String name, long t0)
	{
		try
		{
			st.executeQuery(sql);
			out(name + "_result", "returned");
		}
		catch (SQLException e)
		{
			out("elapsed_ms", (System.nanoTime() - t0) / 1_000_000L);
			error("", e);
		}
	}

	/* A later query on c: its value, or how it failed. */
	static void later(Connection c)
	{
		try
		{
			out("later", value(c, "SELECT 1"));
		}
		catch (SQLException e)
		{
			error("later_", e);
		}
	}

	public static void main(String[] args) throws Exception
	{
		String mode = args[0];

		if (mode.equals("datasource"))
		{
			ConmgrDataSource ds = new ConmgrDataSource();

			ds.setServerNames(new String[] {args[1]});
			ds.setPortNumbers(new int[] {Integer.parseInt(args[2])});
			ds.setDatabaseName(args[3]);
			ds.setTargetServerType(args[4]);
			try (Connection c = ds.getConnection())
			{
				out("connected", 1);
				describe(c);
			}
			catch (SQLException e)
			{
				error("", e);
				System.exit(1);
			}
			return;
		}
		if (mode.equals("hikari_ds"))
		{
			Hikari.dataSource(args[1], args[2], args[3], args[4]);
			out("done", 1);
			return;
		}
		String url = args[1];
		String sql = args[2];
		Properties p = props(args, 3);

		if (mode.equals("connect"))
		{
			long t0 = System.nanoTime();

			try (Connection c = DriverManager.getConnection(url, p))
			{
				out("connected", 1);
				describe(c);
				if (!sql.isEmpty())
					out("value", value(c, sql));
			}
			catch (SQLException e)
			{
				out("elapsed_ms", (System.nanoTime() - t0) / 1_000_000L);
				error("", e);
				System.exit(1);
			}
		}
		else if (mode.equals("block"))
		{
			Connection c = DriverManager.getConnection(url, p);

			describe(c);
			block(c, sql);
			out("closed", c.isClosed());
		}
		else if (mode.equals("threads"))
		{
			/* eight connections blocked in sql, each in its own thread */
			final int n = 8;
			Thread[] threads = new Thread[n];
			java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(n);

			for (int i = 0; i < n; i++)
			{
				final int k = i;

				threads[i] = new Thread(() -> {
					try (Connection c = DriverManager.getConnection(url, p))
					{
						out("t" + k + "_backend_pid", c.unwrap(PGConnection.class).getBackendPID());
						started.countDown();
						value(c, sql);
						out("t" + k + "_result", "returned");
					}
					catch (SQLException e)
					{
						started.countDown();
						error("t" + k + "_", e);
					}
				});
				threads[i].start();
			}
			started.await();
			int watchers = 0;

			for (Thread t : Thread.getAllStackTraces().keySet())
				if (t.getName().equals("pgconmgr-watcher") && t.isAlive())
					watchers++;
			out("watcher_threads", watchers);
			out("ready", n);
			for (Thread t : threads)
				t.join();
		}
		else if (mode.equals("timeout"))
		{
			/* setQueryTimeout: pgjdbc cancels the statement after 1 s */
			Connection c = DriverManager.getConnection(url, p);
			Statement st = c.createStatement();
			long t0 = System.nanoTime();

			describe(c);
			st.setQueryTimeout(1);
			interrupted(st, sql, "timeout", t0);
			later(c);
			c.close();
		}
		else if (mode.equals("cancel"))
		{
			/* Statement.cancel() from another thread while sql runs */
			Connection c = DriverManager.getConnection(url, p);
			Statement st = c.createStatement();
			Thread canceller = new Thread(() -> {
				try
				{
					Thread.sleep(500);
					st.cancel();
				}
				catch (Exception e)
				{
					out("cancel_error", e.getMessage());
				}
			});
			long t0 = System.nanoTime();

			describe(c);
			canceller.start();
			interrupted(st, sql, "cancel", t0);
			canceller.join();
			later(c);
			c.close();
		}
		else if (mode.equals("hikari"))
		{
			Hikari.run(url, sql, p);
		}
		out("done", 1);
	}
}
