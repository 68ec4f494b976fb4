/*
 * SqlSocket.java
 *	  The socket pgjdbc uses for a connection made through Connection
 *	  Manager.  It is a plain java.net.Socket that knows its Session: when
 *	  the watcher closes it because conmgr reported a failure, the
 *	  exception a blocked read or a later write gets carries conmgr's
 *	  reason (pgjdbc makes it the cause of its SQLSTATE 08006 error), and
 *	  when pgjdbc closes it (Connection.close), the conmgr channel of the
 *	  session is closed too.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/src/org/pgconmgr/jdbc/SqlSocket.java
 */
package org.pgconmgr.jdbc;

import java.io.FilterInputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;

final class SqlSocket extends Socket
{
	private volatile String failure;	/* conmgr's reason, once known */
	private volatile Session session;

	void attach(Session s)
	{
		session = s;
	}

	/* Record why the watcher is about to close this socket. */
	void fail(String reason)
	{
		failure = reason;
	}

	private IOException explain(IOException e)
	{
		String f = failure;

		if (f == null)
			return e;
		return new IOException(f, e);
	}

	@Override
	public void close() throws IOException
	{
		try
		{
			super.close();
		}
		finally
		{
			Session s = session;

			if (s != null)
				s.sqlSocketClosed();
		}
	}

	@Override
	public InputStream getInputStream() throws IOException
	{
		return new FilterInputStream(super.getInputStream())
		{
			@Override
			public int read() throws IOException
			{
				try
				{
					return in.read();
				}
				catch (IOException e)
				{
					throw explain(e);
				}
			}

			@Override
			public int read(byte[] b, int off, int len) throws IOException
			{
				try
				{
					int n = in.read(b, off, len);

					if (n < 0 && failure != null)
						throw new IOException(failure);
					return n;
				}
				catch (IOException e)
				{
					throw explain(e);
				}
			}
		};
	}

	@Override
	public OutputStream getOutputStream() throws IOException
	{
		return new FilterOutputStream(super.getOutputStream())
		{
			@Override
			public void write(int b) throws IOException
			{
				try
				{
					out.write(b);
				}
				catch (IOException e)
				{
					throw explain(e);
				}
			}

			@Override
			public void write(byte[] b, int off, int len) throws IOException
			{
				try
				{
					out.write(b, off, len);
				}
				catch (IOException e)
				{
					throw explain(e);
				}
			}

			@Override
			public void flush() throws IOException
			{
				try
				{
					out.flush();
				}
				catch (IOException e)
				{
					throw explain(e);
				}
			}
		};
	}
}
