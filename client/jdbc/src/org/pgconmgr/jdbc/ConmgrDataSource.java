/*
 * ConmgrDataSource.java
 *	  A DataSource for connections through Connection Manager, for pools
 *	  and frameworks configured with a data source class name
 *	  (HikariCP's dataSourceClassName).  Either set the URL, or the server
 *	  names and port numbers of the conmgr entries and the database; the
 *	  other settings become connection properties.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/src/org/pgconmgr/jdbc/ConmgrDataSource.java
 */
package org.pgconmgr.jdbc;

import java.io.PrintWriter;
import java.io.Serializable;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.util.Properties;
import java.util.logging.Logger;

import javax.sql.DataSource;

public class ConmgrDataSource implements DataSource, Serializable
{
	private static final long serialVersionUID = 1L;

	private String url;
	private String[] serverNames = {"localhost"};
	private int[] portNumbers = {};
	private String databaseName = "";
	private final Properties props = new Properties();
	private int loginTimeout;
	private transient PrintWriter logWriter;

	public void setUrl(String url)
	{
		this.url = url;
	}

	public void setURL(String url)
	{
		this.url = url;
	}

	/* The URL this data source connects with. */
	public String getUrl()
	{
		if (url != null)
			return url;
		StringBuilder b = new StringBuilder(ConmgrDriver.URL_PREFIX).append("//");

		for (int i = 0; i < serverNames.length; i++)
		{
			String h = serverNames[i];

			if (i > 0)
				b.append(',');
			b.append(h.indexOf(':') >= 0 ? "[" + h + "]" : h);
			int port = i < portNumbers.length && portNumbers[i] != 0 ? portNumbers[i] : ConmgrDriver.DEFAULT_PORT;

			b.append(':').append(port);
		}
		return b.append('/').append(URLEncoder.encode(databaseName, StandardCharsets.UTF_8)).toString();
	}

	public String getURL()
	{
		return getUrl();
	}

	public void setServerNames(String[] names)
	{
		serverNames = names == null || names.length == 0 ? new String[] {"localhost"} : names.clone();
	}

	public String[] getServerNames()
	{
		return serverNames.clone();
	}

	/* One name, or a comma-separated list. */
	public void setServerName(String name)
	{
		setServerNames(name == null ? null : name.split(","));
	}

	public void setPortNumbers(int[] ports)
	{
		portNumbers = ports == null ? new int[0] : ports.clone();
	}

	public int[] getPortNumbers()
	{
		return portNumbers.clone();
	}

	public void setPortNumber(int port)
	{
		setPortNumbers(new int[] {port});
	}

	public void setDatabaseName(String db)
	{
		databaseName = db == null ? "" : db;
	}

	public String getDatabaseName()
	{
		return databaseName;
	}

	private void set(String key, String value)
	{
		if (value == null)
			props.remove(key);
		else
			props.setProperty(key, value);
	}

	public void setUser(String user)
	{
		set("user", user);
	}

	public String getUser()
	{
		return props.getProperty("user");
	}

	public void setPassword(String password)
	{
		set("password", password);
	}

	public void setTargetServerType(String t)
	{
		set("targetServerType", t);
	}

	public String getTargetServerType()
	{
		return props.getProperty("targetServerType");
	}

	public void setApplicationName(String name)
	{
		set("ApplicationName", name);
	}

	public void setConnectTimeout(int seconds)
	{
		set("connectTimeout", Integer.toString(seconds));
	}

	public void setLoadBalanceHosts(boolean on)
	{
		set("loadBalanceHosts", Boolean.toString(on));
	}

	/* Any other pgjdbc property. */
	public void setProperty(String name, String value)
	{
		set(name, value);
	}

	@Override
	public Connection getConnection() throws SQLException
	{
		return getConnection(props.getProperty("user"), props.getProperty("password"));
	}

	@Override
	public Connection getConnection(String user, String password) throws SQLException
	{
		Properties p = new Properties();

		p.putAll(props);
		if (user != null)
			p.setProperty("user", user);
		if (password != null)
			p.setProperty("password", password);
		if (loginTimeout > 0 && !p.containsKey("loginTimeout"))
			p.setProperty("loginTimeout", Integer.toString(loginTimeout));
		return new ConmgrDriver().connect(getUrl(), p);
	}

	@Override
	public PrintWriter getLogWriter()
	{
		return logWriter;
	}

	@Override
	public void setLogWriter(PrintWriter out)
	{
		logWriter = out;
	}

	@Override
	public void setLoginTimeout(int seconds)
	{
		loginTimeout = seconds;
	}

	@Override
	public int getLoginTimeout()
	{
		return loginTimeout;
	}

	@Override
	public Logger getParentLogger() throws SQLFeatureNotSupportedException
	{
		return ConmgrDriver.parentLogger();
	}

	@Override
	public <T> T unwrap(Class<T> iface) throws SQLException
	{
		if (iface.isInstance(this))
			return iface.cast(this);
		throw new SQLException("not a wrapper for " + iface.getName());
	}

	@Override
	public boolean isWrapperFor(Class<?> iface)
	{
		return iface.isInstance(this);
	}
}
