/*
 * ConmgrSocketFactory.java
 *	  The socketFactory the driver passes to pgjdbc for stage 2, only to
 *	  learn which socket carries the SQL connection.  pgjdbc passes only
 *	  String properties on, so the factory finds its connection attempt
 *	  through a token (socketFactoryArg) in a static map.  pgjdbc keeps the
 *	  factory for cancel requests: sockets made after the connection is
 *	  established are plain sockets that belong to no session.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/src/org/pgconmgr/jdbc/ConmgrSocketFactory.java
 */
package org.pgconmgr.jdbc;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

import javax.net.SocketFactory;

public final class ConmgrSocketFactory extends SocketFactory
{
	/* The sockets made while one connection attempt runs. */
	static final class Attempt
	{
		final String token = UUID.randomUUID().toString();
		final List<SqlSocket> sockets = new ArrayList<>();
		volatile boolean done;
	}

	private static final Map<String, Attempt> ATTEMPTS = new ConcurrentHashMap<>();

	private final Attempt attempt;

	static Attempt begin()
	{
		Attempt a = new Attempt();

		ATTEMPTS.put(a.token, a);
		return a;
	}

	/* The SQL socket of an attempt that succeeded: the last one made still open. */
	static SqlSocket end(Attempt a)
	{
		ATTEMPTS.remove(a.token);
		synchronized (a)
		{
			a.done = true;
			for (int i = a.sockets.size() - 1; i >= 0; i--)
				if (!a.sockets.get(i).isClosed())
					return a.sockets.get(i);
		}
		return null;
	}

	/* Called by pgjdbc (ObjectFactory) with socketFactoryArg. */
	public ConmgrSocketFactory(String token)
	{
		attempt = token == null ? null : ATTEMPTS.get(token);
	}

	@Override
	public Socket createSocket() throws IOException
	{
		Attempt a = attempt;

		if (a == null)
			return new Socket();
		synchronized (a)
		{
			if (a.done)
				return new Socket();	/* a cancel request */
			SqlSocket s = new SqlSocket();

			a.sockets.add(s);
			return s;
		}
	}

	/*
	 * A socket of createSocket(), bound to local unless null, connected to
	 * remote: the overloads below, by remote host as a name or an address,
	 * with or without the local end.
	 */
	private Socket connected(InetSocketAddress remote, InetSocketAddress local) throws IOException
	{
		Socket s = createSocket();

		if (local != null)
			s.bind(local);
		s.connect(remote);
		return s;
	}

	@Override
	public Socket createSocket(String host, int port) throws IOException
	{
		return connected(new InetSocketAddress(host, port), null);
	}

	@Override
	public Socket createSocket(InetAddress host, int port) throws IOException
	{
		return connected(new InetSocketAddress(host, port), null);
	}

	@Override
	public Socket createSocket(String host, int port, InetAddress localHost, int localPort)
		throws IOException
	{
		return connected(new InetSocketAddress(host, port), new InetSocketAddress(localHost, localPort));
	}

	@Override
	public Socket createSocket(InetAddress address, int port, InetAddress localAddress, int localPort)
		throws IOException
	{
		return connected(new InetSocketAddress(address, port),
						 new InetSocketAddress(localAddress, localPort));
	}
}
