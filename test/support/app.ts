import { Writable } from 'node:stream';

import type { Server } from '@hapi/hapi';
import { afterAll, beforeAll } from 'vitest';

import * as Config from '../../src/config.ts';
import * as Db from '../../src/db.ts';
import * as Logger from '../../src/logger.ts';
import * as ItemApi from '../../src/server.ts';
import * as Database from './database.ts';


export interface App {
    readonly url: string;
    readonly db: Db.Db;
    readonly server: Server;
    readonly logs: () => Record<string, unknown>[];
    stop(): Promise<void>;
}


// The service's request path in this process, on a real loopback socket, against a real database.

// extend changes the server before it starts: the fuzzer's negative control breaks it on purpose.
export const start = async function (options: { databaseUrl: string; env?: Record<string, string>; extend?: (server: Server) => void }): Promise<App> {

    const config = Config.load({ NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: options.databaseUrl, ...options.env });
    const lines: string[] = [];
    const destination = new Writable({
        write(chunk, _encoding, callback) {

            lines.push(...String(chunk).split('\n').filter(Boolean));
            callback();
        }
    });

    const logger = Logger.create({ level: config.logLevel, destination });
    const db = Db.create({ url: options.databaseUrl, ...config.db, logger });
    const server = await ItemApi.create({ config, db, logger });
    options.extend?.(server);
    await server.start();

    return {
        url: server.info.uri,
        db,
        server,
        logs: () => lines.map((line) => JSON.parse(line)),
        async stop() {

            await server.stop({ timeout: 1000 });
            await db.destroy();
        }
    };
};


// Row counts of every table the API writes: a 4xx must leave them as they were.

export const counts = async function (db: Db.Db): Promise<{ items: number; keys: number }> {

    const [{ items }] = await db('items').count({ items: '*' }) as [{ items: string }];
    const [{ keys }] = await db('idempotency_keys').count({ keys: '*' }) as [{ keys: string }];
    return { items: Number(items), keys: Number(keys) };
};


// The calling file's app on a database of its own: started before its tests, stopped after them.

export const provide = function (env?: Record<string, string>): { readonly app: App; readonly databaseUrl: string } {

    const database = Database.provide();
    const fixture = {} as { app: App; databaseUrl: string };

    beforeAll(async () => {

        fixture.databaseUrl = database.url;
        fixture.app = await start({ databaseUrl: database.url, ...(env ? { env } : {}) });
    });

    afterAll(async () => {

        await fixture.app?.stop();
    });

    return fixture;
};
