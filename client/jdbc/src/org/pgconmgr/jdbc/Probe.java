/*
 * Probe.java
 *	  Stage 1 of a connection through Connection Manager for one conmgr
 *	  entry: connect, send the GSSENCRequest, recognise conmgr by its
 *	  greeting (a PostgreSQL server answers one byte instead), check who
 *	  holds the socket that answered (PeerCheck), send the route request
 *	  and read the answer.  Mirrors client/pqcm_probe.c; the messages are
 *	  the C library's.
 *
 * The socket is a non-blocking SocketChannel driven by a Selector of its
 * own, so that the whole stage obeys one deadline (connectTimeout,
 * loginTimeout).  On success the open channel is handed to the watcher.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/src/org/pgconmgr/jdbc/Probe.java
 */
package org.pgconmgr.jdbc;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;

final class Probe
{
	enum Result
	{
		INSTANCE,				/* conmgr named an instance: host, port, channel */
		PLAIN,					/* not a conmgr: hand the entry to pgjdbc as a server */
		DOWN,					/* nothing accepted the connection: pgjdbc reports it */
		NO_INSTANCE,			/* conmgr answered N or X */
		ERROR					/* a conmgr that failed: message */
	}

	final String host;
	final int port;
	final String label;
	Result result;
	String message;
	String instanceHost;
	int instancePort;
	int instanceNumber;
	SocketChannel channel;
	private String deadlineName = "connectTimeout";

	Probe(String host, int port)
	{
		this.host = host;
		this.port = port;
		this.label = "\"" + host + "\", port " + port;
	}

	/* Milliseconds left before deadline (nanoTime); Long.MAX_VALUE: none. */
	static long remaining(long deadline)
	{
		if (deadline == 0)
			return Long.MAX_VALUE;
		long ms = (deadline - System.nanoTime()) / 1_000_000L;

		return ms <= 0 ? 0 : ms;
	}

	private Result fail(Result r, String msg)
	{
		result = r;
		message = msg;
		closeQuietly();
		return r;
	}

	void closeQuietly()
	{
		if (channel != null)
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
		channel = null;
	}

	private static final class Timeout extends Exception
	{
		private static final long serialVersionUID = 1L;
	}

	/* Wait until the channel is ready for ops, or throw Timeout. */
	private static void await(Selector sel, SocketChannel ch, int ops, long deadline)
		throws IOException, Timeout
	{
		SelectionKey key = ch.keyFor(sel);

		if (key == null)
			key = ch.register(sel, ops);
		else
			key.interestOps(ops);
		for (;;)
		{
			long left = remaining(deadline);

			if (left == 0)
				throw new Timeout();
			sel.selectedKeys().clear();
			int n = sel.select(left == Long.MAX_VALUE ? 0 : left);

			if (n > 0 || (key.readyOps() & ops) != 0)
				return;
		}
	}

	/*
	 * Run stage 1 against every address of the entry, in order, until one
	 * accepts the connection.  tsa is the route request's
	 * target_session_attrs, deadline a System.nanoTime() value (0: none),
	 * deadlineName the setting that set it, for the error message.
	 */
	Result run(int tsa, String applicationName, PeerCheck.Rule rule, long deadline, String deadlineName)
	{
		this.deadlineName = deadlineName;
		InetAddress[] addrs;

		try
		{
			addrs = InetAddress.getAllByName(host);
		}
		catch (UnknownHostException e)
		{
			/* pgjdbc reports an unknown host itself */
			return fail(Result.DOWN, e.getMessage());
		}
		for (InetAddress a : addrs)
		{
			Result r = runOne(new InetSocketAddress(a, port), tsa, applicationName, rule, deadline);

			if (r != Result.DOWN)
				return r;
		}
		return fail(Result.DOWN, "could not connect to " + label);
	}

	private Result runOne(InetSocketAddress addr, int tsa, String applicationName,
						  PeerCheck.Rule rule, long deadline)
	{
		boolean connected = false;
		boolean greeted = false;

		try (Selector sel = Selector.open())
		{
			channel = SocketChannel.open();
			channel.configureBlocking(false);
			if (!channel.connect(addr))
			{
				await(sel, channel, SelectionKey.OP_CONNECT, deadline);
				try
				{
					channel.finishConnect();
				}
				catch (IOException e)
				{
					/* refused or unreachable: the next address */
					closeQuietly();
					return Result.DOWN;
				}
			}
			connected = true;

			write(sel, ByteBuffer.wrap(Protocol.gssencRequest()), deadline);

			/* the greeting, or a server's one-byte answer */
			ByteBuffer in = ByteBuffer.allocate(Protocol.MAX_MSG);
			int[] range = new int[2];
			int glen;

			for (;;)
			{
				in.flip();
				glen = Protocol.parseGreeting(in, range);
				in.compact();
				if (glen != 0)
					break;
				if (!in.hasRemaining() || read(sel, in, deadline) < 0)
				{
					glen = -1;
					break;
				}
			}
			if (glen < 0)
				return fail(Result.PLAIN, null);
			greeted = true;
			in.flip();
			in.position(glen);
			in.compact();

			/*
			 * A conmgr, by its greeting: believe it only if an expected user
			 * holds its socket; otherwise the entry fails before anything of
			 * the application is sent.
			 */
			String distrust = PeerCheck.check((InetSocketAddress) channel.getLocalAddress(),
											  (InetSocketAddress) channel.getRemoteAddress(),
											  rule, label);

			if (distrust != null)
				return fail(Result.ERROR, distrust);
			if (range[0] > Protocol.VERSION_1_0 || range[1] < Protocol.VERSION_1_0)
				return fail(Result.ERROR, "conmgr at " + label + " speaks protocol versions " +
							range[0] + " to " + range[1] + ", this driver speaks " + Protocol.VERSION_1_0);

			write(sel, ByteBuffer.wrap(Protocol.routeRequest(tsa, ProcessHandle.current().pid(),
															 applicationName)), deadline);

			Protocol.Msg m;

			for (;;)
			{
				in.flip();
				int flen;

				try
				{
					flen = Protocol.framePeek(in);
					if (flen > 0)
					{
						m = Protocol.decode(in, flen);
						in.compact();
						break;
					}
				}
				catch (Protocol.InvalidFrame e)
				{
					return fail(Result.ERROR, "invalid answer from conmgr at " + label + ": " + e.getMessage());
				}
				in.compact();
				int n;

				try
				{
					n = read(sel, in, deadline);
				}
				catch (IOException e)
				{
					return fail(Result.ERROR, "could not receive from conmgr at " + label + ": " + e.getMessage());
				}
				if (n < 0)
					return fail(Result.ERROR, "conmgr at " + label + " closed the connection before answering");
			}
			switch (m.type)
			{
				case Protocol.MSG_INSTANCE:
					if (!instanceValid(m.host))
						return fail(Result.ERROR, "conmgr at " + label + " named an invalid instance (host \"" +
									m.host + "\", port " + m.port + ")");
					instanceHost = m.host;
					instancePort = m.port;
					instanceNumber = m.instance;
					channel.keyFor(sel).cancel();
					sel.selectNow();	/* deregister before the watcher takes it */
					result = Result.INSTANCE;
					return result;
				case Protocol.MSG_NO_INSTANCE:
					return fail(Result.NO_INSTANCE, "conmgr at " + label + " has no instance for target_session_attrs=" +
								Protocol.tsaName(tsa) + ": " + m.message);
				case Protocol.MSG_REFUSE:
					return fail(Result.NO_INSTANCE, "conmgr at " + label + " refused the request (" +
								Protocol.reasonName(m.reason) + "): " + m.message);
				default:
					return fail(Result.ERROR, "unexpected message \"" + m.typeName() + "\" from conmgr at " + label);
			}
		}
		catch (Timeout t)
		{
			if (!connected)
			{
				closeQuietly();
				return fail(Result.ERROR, "could not connect to conmgr at " + label +
							": timeout expired (" + deadlineName + ")");
			}
			return fail(Result.ERROR, "conmgr at " + label + " did not answer " +
						(greeted ? "the route request" : "the recognition request") +
						" within the connection timeout (" + deadlineName + ")");
		}
		catch (IOException e)
		{
			if (!connected)
			{
				closeQuietly();
				return Result.DOWN;
			}
			if (!greeted)
				return fail(Result.PLAIN, null);
			return fail(Result.ERROR, "could not talk to conmgr at " + label + ": " + e.getMessage());
		}
	}

	private void write(Selector sel, ByteBuffer b, long deadline) throws IOException, Timeout
	{
		while (b.hasRemaining())
		{
			if (channel.write(b) == 0)
				await(sel, channel, SelectionKey.OP_WRITE, deadline);
		}
	}

	/* Read what is there (waiting for something); -1 at end of file. */
	private int read(Selector sel, ByteBuffer in, long deadline) throws IOException, Timeout
	{
		for (;;)
		{
			int n = channel.read(in);

			if (n != 0)
				return n;
			await(sel, channel, SelectionKey.OP_READ, deadline);
		}
	}

	/*
	 * An instance must be one TCP host: a host name or address (no list
	 * separator, no path, no white space or control character).
	 */
	static boolean instanceValid(String h)
	{
		if (h.isEmpty() || h.charAt(0) == '/' || h.charAt(0) == '@')
			return false;
		for (int i = 0; i < h.length(); i++)
		{
			char c = h.charAt(i);

			if (c == ',' || c == '\\' || c == '\'' || c == '=' || c == '/' || c == '?' ||
				c == '#' || c == '[' || c == ']' || c <= ' ' || c == 0x7f)
				return false;
		}
		return true;
	}
}
