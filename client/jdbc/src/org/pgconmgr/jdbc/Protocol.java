/*
 * Protocol.java
 *	  The application channel of Connection Manager (docs/protocol.md), as
 *	  much of it as a client speaks: the GSSENCRequest probe, conmgr's
 *	  greeting, the route request and the registration it sends, and the
 *	  answers and notices it receives.  A Java rendering of what
 *	  common/cm_protocol.c does for the C library, with the same limits and
 *	  the same reasons for refusing a frame.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/jdbc/src/org/pgconmgr/jdbc/Protocol.java
 */
package org.pgconmgr.jdbc;

import java.io.ByteArrayOutputStream;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

final class Protocol
{
	static final int VERSION_1_0 = 0x0100;
	static final int GSSENC_REQUEST_CODE = 80877104;
	static final int MAX_MSG = 2048;
	static final int HEADER_LEN = 5;
	static final int MAX_STRING = 255;
	static final int ATTR_ALL = 0x07;

	static final int TSA_ANY = 0;
	static final int TSA_READ_WRITE = 1;
	static final int TSA_READ_ONLY = 2;
	static final int TSA_PREFER_STANDBY = 5;

	static final byte MSG_INSTANCE = 'I';
	static final byte MSG_NO_INSTANCE = 'N';
	static final byte MSG_FAILURE = 'F';
	static final byte MSG_REFUSE = 'X';

	private static final String[] REASONS = {
		"none", "version", "too many connections", "protocol violation",
		"authentication", "shutdown", "heartbeat timeout", "connection lost",
		"attributes changed", "no suitable instance", "configuration changed",
		"bad request", "watchdog restarting"
	};

	private static final String[] TSA_NAMES = {
		"any", "read-write", "read-only", "primary", "standby", "prefer-standby"
	};

	private Protocol()
	{
	}

	static String reasonName(int reason)
	{
		return reason >= 0 && reason < REASONS.length ? REASONS[reason] : "unknown";
	}

	static String tsaName(int tsa)
	{
		return tsa >= 0 && tsa < TSA_NAMES.length ? TSA_NAMES[tsa] : "unknown";
	}

	/* A frame that breaks the protocol; the message says how. */
	static final class InvalidFrame extends Exception
	{
		private static final long serialVersionUID = 1L;

		InvalidFrame(String reason)
		{
			super(reason);
		}
	}

	/* A decoded message from conmgr. */
	static final class Msg
	{
		byte type;
		int reason;				/* N, F, X */
		String message;			/* N, F, X */
		int instance;			/* I */
		int attrs;				/* I */
		int port;				/* I */
		String host;			/* I */

		String typeName()
		{
			switch (type)
			{
				case MSG_INSTANCE:
					return "instance";
				case MSG_NO_INSTANCE:
					return "no instance";
				case MSG_FAILURE:
					return "failure";
				case MSG_REFUSE:
					return "refuse";
				default:
					return "unknown";
			}
		}
	}

	static byte[] gssencRequest()
	{
		return ByteBuffer.allocate(8).putInt(8).putInt(GSSENC_REQUEST_CODE).array();
	}

	/* The bytes of a string: at most 255, no NUL (cut at the first one). */
	private static byte[] stringBytes(String s)
	{
		byte[] b = (s == null ? "" : s).getBytes(StandardCharsets.UTF_8);
		int n = 0;

		while (n < b.length && n < MAX_STRING && b[n] != 0)
			n++;
		/* do not cut a UTF-8 sequence in two */
		if (n < b.length && n == MAX_STRING)
			while (n > 0 && (b[n] & 0xC0) == 0x80)
				n--;
		byte[] r = new byte[n];

		System.arraycopy(b, 0, r, 0, n);
		return r;
	}

	private static byte[] frame(byte type, byte[] payload)
	{
		ByteBuffer f = ByteBuffer.allocate(HEADER_LEN + payload.length);

		f.put(type).putInt(4 + payload.length).put(payload);
		return f.array();
	}

	static byte[] routeRequest(int tsa, long pid, String applicationName)
	{
		byte[] app = stringBytes(applicationName);
		ByteBuffer p = ByteBuffer.allocate(2 + 1 + 4 + 2 + app.length);

		p.putShort((short) VERSION_1_0).put((byte) tsa).putInt((int) pid)
			.putShort((short) app.length).put(app);
		return frame((byte) 'R', p.array());
	}

	static byte[] register(int backendPid, InetAddress local, int port)
	{
		byte[] a = local.getAddress();
		ByteBuffer p = ByteBuffer.allocate(4 + 1 + a.length + 2);

		p.putInt(backendPid).put((byte) (local instanceof Inet4Address ? 4 : 6))
			.put(a).putShort((short) port);
		return frame((byte) 'J', p.array());
	}

	/*
	 * The greeting: conmgr's answer to the GSSENCRequest, a PostgreSQL
	 * ErrorResponse that carries a field 'c' = "conmgr MIN MAX".  Returns
	 * the length of the greeting when buf (from its position to its limit)
	 * starts with a complete one, 0 when more bytes are needed, -1 when it
	 * is not a greeting (a PostgreSQL server, or anything else).  On
	 * success range[0..1] are the versions conmgr speaks.
	 */
	static int parseGreeting(ByteBuffer buf, int[] range)
	{
		int start = buf.position();
		int avail = buf.remaining();

		if (avail < 1)
			return 0;
		if (buf.get(start) != 'E')
			return -1;
		if (avail < HEADER_LEN)
			return 0;
		long len = buf.getInt(start + 1) & 0xffffffffL;

		if (len < 4 || len + 1 > MAX_MSG)
			return -1;
		if (avail < len + 1)
			return 0;
		int end = start + 1 + (int) len;
		int i = start + HEADER_LEN;
		String tag = null;

		while (i < end && buf.get(i) != 0)
		{
			byte field = buf.get(i++);
			int s = i;

			while (i < end && buf.get(i) != 0)
				i++;
			if (i >= end)
				return -1;
			byte[] v = new byte[i - s];

			for (int k = 0; k < v.length; k++)
				v[k] = buf.get(s + k);
			i++;
			if (field == 'c')
				tag = new String(v, StandardCharsets.US_ASCII);
		}
		if (i != end - 1 || tag == null)
			return -1;
		String[] parts = tag.split(" ");

		if (parts.length != 3 || !parts[0].equals("conmgr"))
			return -1;
		try
		{
			range[0] = Integer.parseInt(parts[1]);
			range[1] = Integer.parseInt(parts[2]);
		}
		catch (NumberFormatException e)
		{
			return -1;
		}
		if (range[0] < 0 || range[1] > 0xffff || range[0] > range[1])
			return -1;
		return (int) len + 1;
	}

	/*
	 * The length of the frame at the start of buf (position to limit), 0
	 * when it is incomplete; InvalidFrame when its type or length cannot
	 * be those of a message from conmgr.
	 */
	static int framePeek(ByteBuffer buf) throws InvalidFrame
	{
		int start = buf.position();
		int avail = buf.remaining();

		if (avail < 1)
			return 0;
		byte t = buf.get(start);

		if (t != MSG_INSTANCE && t != MSG_NO_INSTANCE && t != MSG_FAILURE && t != MSG_REFUSE)
			throw new InvalidFrame("unknown or unexpected message type");
		if (avail < HEADER_LEN)
			return 0;
		long len = buf.getInt(start + 1) & 0xffffffffL;

		if (len < 4)
			throw new InvalidFrame("message length smaller than its own length field");
		if (len + 1 > MAX_MSG)
			throw new InvalidFrame("message longer than " + MAX_MSG + " bytes");
		if (avail < len + 1)
			return 0;
		return (int) len + 1;
	}

	private static String readString(ByteBuffer p) throws InvalidFrame
	{
		if (p.remaining() < 2)
			throw new InvalidFrame("message too short");
		int n = p.getShort() & 0xffff;

		if (n > MAX_STRING)
			throw new InvalidFrame("string longer than " + MAX_STRING + " bytes");
		if (p.remaining() < n)
			throw new InvalidFrame("message too short");
		byte[] b = new byte[n];

		p.get(b);
		for (byte c : b)
			if (c == 0)
				throw new InvalidFrame("NUL byte in a string");
		return new String(b, StandardCharsets.UTF_8);
	}

	/*
	 * Decode the complete frame of flen bytes at the start of buf and
	 * consume it.  Every field is checked, and trailing bytes refused.
	 */
	static Msg decode(ByteBuffer buf, int flen) throws InvalidFrame
	{
		ByteBuffer p = buf.slice();

		p.limit(flen);
		buf.position(buf.position() + flen);
		Msg m = new Msg();

		m.type = p.get();
		p.getInt();
		try
		{
			if (m.type == MSG_INSTANCE)
			{
				m.instance = p.getShort() & 0xffff;
				m.attrs = p.get() & 0xff;
				m.port = p.getShort() & 0xffff;
				m.host = readString(p);
				if ((m.attrs & ~ATTR_ALL) != 0)
					throw new InvalidFrame("unknown attribute bits");
				if (m.port == 0)
					throw new InvalidFrame("instance port 0");
				if (m.host.isEmpty())
					throw new InvalidFrame("empty instance host");
			}
			else
			{
				m.reason = p.getShort() & 0xffff;
				m.message = readString(p);
				if (m.reason >= REASONS.length)
					throw new InvalidFrame("unknown reason code");
			}
		}
		catch (java.nio.BufferUnderflowException e)
		{
			throw new InvalidFrame("message too short");
		}
		if (p.hasRemaining())
			throw new InvalidFrame("trailing bytes after the message");
		return m;
	}
}
