/*
 * Hikari.java
 *	  The HikariCP part of JdbcTool (kept apart so that the other modes
 *	  run without HikariCP on the class path).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/test/Hikari.java
 */
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Properties;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import org.postgresql.PGConnection;

final class Hikari
{
	/* A pool configured with dataSourceClassName: connect once. */
	static void dataSource(String host, String port, String db, String tst) throws Exception
	{
		HikariConfig cfg = new HikariConfig();

		cfg.setDataSourceClassName("org.pgconmgr.jdbc.ConmgrDataSource");
		cfg.addDataSourceProperty("serverName", host);
		cfg.addDataSourceProperty("portNumber", port);
		cfg.addDataSourceProperty("databaseName", db);
		cfg.addDataSourceProperty("targetServerType", tst);
		cfg.setMaximumPoolSize(1);
		try (HikariDataSource pool = new HikariDataSource(cfg); Connection c = pool.getConnection())
		{
			JdbcTool.out("pool_server_port", JdbcTool.value(c, "SELECT inet_server_port()"));
		}
	}

	static void run(String url, String sql, Properties p) throws Exception
	{
		HikariConfig cfg = new HikariConfig();

		cfg.setJdbcUrl(url);
		cfg.setDataSourceProperties(p);
		cfg.setMaximumPoolSize(1);
		cfg.setMinimumIdle(1);
		cfg.setConnectionTimeout(30000);
		try (HikariDataSource pool = new HikariDataSource(cfg))
		{
			int first;

			try (Connection c = pool.getConnection())
			{
				first = c.unwrap(PGConnection.class).getBackendPID();
				JdbcTool.out("pool_backend_pid", first);
				JdbcTool.out("pool_server_port", JdbcTool.value(c, "SELECT inet_server_port()"));
				JdbcTool.block(c, sql);
			}
			/* the pool evicts the broken connection and makes a new one */
			long deadline = System.nanoTime() + 60_000_000_000L;

			while (System.nanoTime() < deadline)
			{
				try (Connection c = pool.getConnection())
				{
					int second = c.unwrap(PGConnection.class).getBackendPID();

					JdbcTool.out("pool_second_backend_pid", second);
					JdbcTool.out("pool_second_value", JdbcTool.value(c, "SELECT 1"));
					JdbcTool.out("pool_evicted", second != first);
					return;
				}
				catch (SQLException e)
				{
					Thread.sleep(200);
				}
			}
			JdbcTool.out("pool_second", "timeout");
		}
	}
}
