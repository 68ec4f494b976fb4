/*
 * Example.java
 *	  A Java program that reaches its primary through Connection Manager
 *	  with the JDBC driver (docs/jdbc.md).  Only the URL differs from a
 *	  program that connects to the server directly.
 *
 *   javac -cp /usr/share/java/pgconmgr-jdbc.jar Example.java
 *   java -cp /usr/share/java/pgconmgr-jdbc.jar:. Example \
 *       'jdbc:conmgr:postgresql://localhost:27546/postgres?targetServerType=primary'
 *
 * (pgconmgr-jdbc.jar names postgresql.jar, pgjdbc, in its manifest.)
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  examples/jdbc/Example.java
 */
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

public class Example
{
	public static void main(String[] args)
	{
		String url = args.length > 0 ? args[0]
			: "jdbc:conmgr:postgresql://localhost:27546/postgres?targetServerType=primary";

		try (Connection conn = DriverManager.getConnection(url);
			 Statement st = conn.createStatement();
			 ResultSet rs = st.executeQuery("SELECT inet_server_port(), pg_is_in_recovery()"))
		{
			rs.next();
			/* pgjdbc's own connection object, connected to the instance conmgr chose */
			System.out.println("connected to " + conn.getMetaData().getURL());
			System.out.println("server port " + rs.getInt(1) + ", standby " + rs.getBoolean(2));
		}
		catch (SQLException e)
		{
			/*
			 * 08001: no conmgr of the URL named a usable instance; the
			 * message has one line per conmgr.  08006 on a connection in
			 * use: conmgr reported its instance failed (the cause says
			 * why); connect again, as a pool does.
			 */
			System.err.println("error: " + e.getMessage() + " (SQLSTATE " + e.getSQLState() + ")");
			System.exit(1);
		}
	}
}
