/*
 * Watcher.java
 *	  One daemon thread per JVM that watches the conmgr channel of every
 *	  connection made through Connection Manager (one NIO Selector), and
 *	  ends a connection as soon as conmgr reports its instance failed or
 *	  goes away (Session.fail).  It also closes a channel when the
 *	  application closes its connection.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/src/org/pgconmgr/jdbc/Watcher.java
 */
package org.pgconmgr.jdbc;

import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;

final class Watcher implements Runnable
{
	private static Watcher instance;

	private final Selector selector;
	private final ConcurrentLinkedQueue<Session> added = new ConcurrentLinkedQueue<>();
	private final ConcurrentLinkedQueue<Session> released = new ConcurrentLinkedQueue<>();
	private final Set<Session> partial = new HashSet<>();

	private Watcher() throws IOException
	{
		selector = Selector.open();
	}

	static synchronized Watcher get()
	{
		if (instance == null)
		{
			try
			{
				instance = new Watcher();
			}
			catch (IOException e)
			{
				throw new IllegalStateException("could not open a selector for the conmgr watcher", e);
			}
			Thread t = new Thread(instance, "pgconmgr-watcher");

			t.setDaemon(true);
			t.start();
		}
		return instance;
	}

	void add(Session s)
	{
		added.add(s);
		selector.wakeup();
	}

	void release(Session s)
	{
		released.add(s);
		selector.wakeup();
	}

	@Override
	public void run()
	{
		for (;;)
		{
			try
			{
				loop();
			}
			catch (Throwable t)
			{
				/* never let the watcher die: one more round, without spinning */
				try
				{
					Thread.sleep(10);
				}
				catch (InterruptedException e)
				{
					/* a daemon thread: go on */
				}
			}
		}
	}

	private void loop() throws IOException
	{
		selector.select(partial.isEmpty() ? 0 : 50);

		Session s;

		while ((s = added.poll()) != null)
		{
			try
			{
				s.channel.register(selector, SelectionKey.OP_READ, s);
			}
			catch (ClosedChannelException e)
			{
				s.fail("conmgr closed its connection (conmgr stopped or failed)");
			}
		}
		while ((s = released.poll()) != null)
		{
			SelectionKey k = s.channel.keyFor(selector);

			if (k != null)
				k.cancel();
			partial.remove(s);
			s.finish();
		}

		Iterator<SelectionKey> it = selector.selectedKeys().iterator();

		while (it.hasNext())
		{
			SelectionKey k = it.next();

			it.remove();
			s = (Session) k.attachment();
			if (!k.isValid() || s.finished())
				continue;
			String why = s.readAvailable();

			if (why != null)
			{
				k.cancel();
				partial.remove(s);
				s.fail(why);
			}
			else if (s.partialSince != 0)
				partial.add(s);
		}

		/* part of a message that stays: conmgr writes a notice in one piece */
		List<Session> late = new ArrayList<>();

		for (Session p : partial)
			if (p.partialSince != 0 &&
				System.nanoTime() - p.partialSince > Session.INCOMPLETE_MS * 1_000_000L)
				late.add(p);
		for (Session p : late)
		{
			SelectionKey k = p.channel.keyFor(selector);

			if (k != null)
				k.cancel();
			partial.remove(p);
			p.fail("incomplete message from conmgr");
		}
	}
}
