// `npm run migrate`: applies pending migrations against DATABASE_URL and exits. The same command runs
// in the container before a release serves (knex's lock makes concurrent runs wait, then do nothing).

import * as Config from './config.ts';
import * as Db from './db.ts';
import * as Logger from './logger.ts';
import { redactUrl } from './redact.ts';


const config = Config.load({ ...process.env, NODE_ENV: 'production' });       // DATABASE_URL is required here, whatever the environment
const logger = Logger.create({ level: config.logLevel }).child({ component: 'migrate' });
const db = Db.create({ url: config.databaseUrl!, ...config.db, statementTimeoutMs: 0, logger });

try {
    const [batch, applied] = await db.migrate.latest() as [number, string[]];
    logger.info({ batch, applied, database: redactUrl(config.databaseUrl!) }, applied.length ? 'migrations applied' : 'schema up to date');
}
catch (err) {
    logger.fatal({ err }, 'migration failed');
    process.exitCode = 1;
}
finally {
    await db.destroy();
}
