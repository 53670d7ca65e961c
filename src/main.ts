import * as Config from './config.ts';
import * as Logger from './logger.ts';


const main = async function (): Promise<void> {

    let config: Config.Config;
    try {
        config = Config.load();
    }
    catch (err) {
        if (err instanceof Config.ConfigError) {
            Logger.create({ level: 'fatal' }).fatal({ problems: err.problems }, err.message);
            process.exitCode = 1;                       // Not exit(): node leaves once the line is written
            return;
        }

        throw err;
    }

    const logger = Logger.create({ level: config.logLevel });

    // Loaded only once the configuration is known to be valid: a bad deployment fails in the time node
    // takes to start, not after hapi, knex and pg have loaded.
    const [Db, Server, Lifecycle, Sweeper] = await Promise.all([
        import('./db.ts'),
        import('./server.ts'),
        import('./lifecycle.ts'),
        import('./jobs/idempotency-sweeper.ts')
    ]);

    // Without DATABASE_URL (never in production: the schema requires it) a real PostgreSQL runs from node_modules.
    let databaseUrl = config.databaseUrl;
    let stopDatabase: (() => Promise<void>) | undefined;
    if (!databaseUrl) {
        const { start } = await import('./embedded-db.ts');
        const embedded = await start({ dir: config.embeddedDatabaseDir, database: 'item_api', logger });
        logger.info({ dataDir: config.embeddedDatabaseDir }, 'embedded PostgreSQL started');
        databaseUrl = embedded.url;
        stopDatabase = embedded.stop;
    }

    const db = Db.create({ url: databaseUrl, ...config.db, logger });
    const server = await Server.create({ config, db, logger });

    await Lifecycle.run({
        config,
        logger,
        db,
        databaseUrl,
        server,
        ...(stopDatabase ? { stopDatabase } : {}),
        startJobs: () => [
            Sweeper.start({ db, intervalMs: config.idempotency.sweepIntervalMs, batchSize: config.idempotency.sweepBatchSize, logger })
        ]
    });
};


await main();
