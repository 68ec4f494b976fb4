/*
 * Session.java
 *	  One connection made through Connection Manager: the conmgr channel
 *	  kept open for its life, the SQL socket pgjdbc uses, and pgjdbc's
 *	  connection object.  The watcher owns the channel's reading; a
 *	  failure (a notice 'F', end of file, an invalid frame) ends the
 *	  connection at once: the SQL socket is closed and the connection
 *	  aborted, so a statement blocked in the server fails with SQLSTATE
 *	  08006 whose cause names conmgr's reason.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/src/org/pgconmgr/jdbc/Session.java
 */
package org.pgconmgr.jdbc;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.sql.Connection;
import java.sql.SQLException;

final class Session
{
	/* part of a message that stays this long fails the session */
	static final long INCOMPLETE_MS = 2000;

	final SocketChannel channel;
	final SqlSocket sqlSocket;
	final Connection connection;
	final String label;
	final ByteBuffer in = ByteBuffer.allocate(Protocol.MAX_MSG);
	long partialSince;			/* nanoTime when a partial frame arrived, 0: none */
	private volatile boolean finished;
	private volatile String failure;

	Session(SocketChannel channel, SqlSocket sqlSocket, Connection connection, String label)
	{
		this.channel = channel;
		this.sqlSocket = sqlSocket;
		this.connection = connection;
		this.label = label;
	}

	String failure()
	{
		return failure;
	}

	boolean finished()
	{
		return finished;
	}

	/* pgjdbc closed the SQL socket (Connection.close): conmgr's channel goes too. */
	void sqlSocketClosed()
	{
		if (!finished)
			Watcher.get().release(this);
	}

	/*
	 * Called by the watcher only: what arrived on the channel.  Returns
	 * the failure message when the session has failed, null otherwise.
	 */
	String readAvailable()
	{
		int n;

		try
		{
			n = channel.read(in);
		}
		catch (IOException e)
		{
			return "connection to conmgr lost: " + e.getMessage();
		}
		if (n < 0)
			return "conmgr closed its connection (conmgr stopped or failed)";
		in.flip();
		try
		{
			int flen = Protocol.framePeek(in);

			if (flen == 0)
			{
				in.compact();
				if (in.position() > 0 && partialSince == 0)
					partialSince = System.nanoTime();
				return null;
			}
			Protocol.Msg m = Protocol.decode(in, flen);

			in.compact();
			if (m.type == Protocol.MSG_FAILURE)
				return "conmgr reported a failure of the instance (" +
					Protocol.reasonName(m.reason) + "): " + m.message;
			return "unexpected message \"" + m.typeName() + "\" from conmgr";
		}
		catch (Protocol.InvalidFrame e)
		{
			return "invalid message from conmgr: " + e.getMessage();
		}
	}

	/* Called by the watcher only: end the connection with reason. */
	void fail(String reason)
	{
		if (finished)
			return;
		failure = reason;
		finished = true;
		if (sqlSocket != null)
		{
			sqlSocket.fail(reason);
			try
			{
				sqlSocket.close();
			}
			catch (IOException e)
			{
				/* closed already */
			}
		}
		try
		{
			connection.abort(Runnable::run);
		}
		catch (SQLException | RuntimeException e)
		{
			/* aborted or closed already */
		}
		closeChannel();
	}

	/* Called by the watcher only: the application closed the connection. */
	void finish()
	{
		finished = true;
		closeChannel();
	}

	private void closeChannel()
	{
		try
		{
			channel.close();
		}
		catch (IOException e)
		{
			/* nothing to do */
		}
	}
}
