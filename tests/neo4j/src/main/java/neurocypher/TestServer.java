package neurocypher;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

/**
 * Neo4j 5 Community for the tests (tests/neo4j_server.py starts it).
 *
 * <pre>NEO4J_PASSWORD=... java -jar neo4j-test-server.jar HOME</pre>
 *
 * Runs the DBMS in the directory HOME with authentication on, user neo4j's password set from
 * NEO4J_PASSWORD (kept out of the command line) before Bolt listens, and Bolt on 127.0.0.1 on a
 * port the system picks; the settings in HOME/neo4j.conf, when there is one, apply too. Prints
 * {@code READY bolt://127.0.0.1:PORT} once it answers, and shuts down cleanly when its standard
 * input ends or on SIGTERM.
 */
public final class TestServer {
    private TestServer() {}

    public static void main(String[] args) throws IOException {
        Path home = Path.of(args[0]).toAbsolutePath();
        String password = System.getenv("NEO4J_PASSWORD");
        if (password == null || password.length() < 8) {
            throw new IllegalArgumentException("set NEO4J_PASSWORD (8+ characters)");
        }
        setPassword(home, password);
        DatabaseManagementService dbms = builder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", 0))
                .build();
        Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown));
        System.out.println("READY bolt://127.0.0.1:" + boltPort(dbms));
        System.out.flush();
        while (System.in.read() != -1) {
            // the tests hold standard input open while they need the server
        }
        System.exit(0);
    }

    /** The DBMS in HOME, with authentication on, no usage reports, and the settings of HOME/neo4j.conf. */
    private static DatabaseManagementServiceBuilder builder(Path home) {
        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(GraphDatabaseSettings.udc_enabled, false) // no usage reports sent out
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0); // stop in 1 s, not 10
        Path conf = home.resolve("neo4j.conf");
        return Files.exists(conf) ? builder.loadPropertiesFromFile(conf) : builder;
    }

    /** Set user neo4j's password with no connector open, so that no client ever sees the default one. */
    private static void setPassword(Path home, String password) {
        DatabaseManagementService dbms = builder(home).setConfig(BoltConnector.enabled, false).build();
        try {
            dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME)
                    .executeTransactionally(
                            "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
        } finally {
            dbms.shutdown();
        }
    }

    private static int boltPort(DatabaseManagementService dbms) {
        GraphDatabaseAPI db = (GraphDatabaseAPI) dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        return db.getDependencyResolver()
                .resolveDependency(ConnectorPortRegister.class)
                .getLocalAddress(ConnectorType.BOLT)
                .getPort();
    }
}
