import { spawn } from 'node:child_process';

import pg from 'pg';

import * as Embedded from '../../src/embedded-db.ts';


// One real PostgreSQL for the whole run, a fresh database per scenario, migrated once before any pod
// starts (the chart's migration Job), and read directly afterwards to check the acknowledged writes.

export interface Server {
    readonly url: string;
    stop(): Promise<void>;
}


export interface WriteCheck {
    readonly acknowledged: number;
    readonly found: number;
    readonly lostWrites: number;
    readonly lost: { id: string; acknowledgedVersion: number; foundVersion: number | null }[];
    readonly duplicateWrites: number;
    readonly duplicates: { name: string; rows: number }[];
    readonly rows: number;
}


const internals = {

    withDatabase(url: string, database: string): string {

        const parsed = new URL(url);
        parsed.pathname = `/${database}`;
        return parsed.toString();
    },

    async admin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {

        const client = new pg.Client({ connectionString: internals.withDatabase(url, 'postgres') });
        await client.connect();
        try {
            return await work(client);
        }
        finally {
            await client.end();
        }
    }
};


export const start = async function (options: { dir: string }): Promise<Server> {

    const given = process.env.DATABASE_URL ?? process.env.TEST_DATABASE_URL;
    if (given) {
        return { url: given, stop: async () => {} };
    }

    const embedded = await Embedded.start({ dir: options.dir, database: 'item_api_rollout' });
    return { url: embedded.url, stop: () => embedded.stop() };
};


export const prepare = async function (options: { server: Server; name: string; migrate: { argv: readonly string[]; cwd: string } }): Promise<string> {

    await internals.admin(options.server.url, async (client) => {

        await client.query(`drop database if exists ${client.escapeIdentifier(options.name)} with (force)`);
        await client.query(`create database ${client.escapeIdentifier(options.name)}`);
    });

    const url = internals.withDatabase(options.server.url, options.name);
    const [command, ...args] = options.migrate.argv;
    const child = spawn(command!, args, { cwd: options.migrate.cwd, env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'] });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) {
        throw new Error(`migration of ${options.name} exited with ${code}`);
    }

    return url;
};


export const check = async function (url: string, acknowledged: ReadonlyMap<string, { version: number }>, keyPrefix: string): Promise<WriteCheck> {

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
        const found = new Map<string, number>();
        const ids = [...acknowledged.keys()];
        for (let i = 0; i < ids.length; i += 5000) {
            const { rows } = await client.query<{ id: string; version: number }>('select id, version from items where id = any($1::uuid[])', [ids.slice(i, i + 5000)]);
            for (const row of rows) {
                found.set(row.id, row.version);
            }
        }

        const lost = [];
        for (const [id, { version }] of acknowledged) {
            const stored = found.get(id);
            if (stored === undefined || stored < version) {
                lost.push({ id, acknowledgedVersion: version, foundVersion: stored ?? null });
            }
        }

        const { rows: duplicates } = await client.query<{ name: string; rows: number }>(
            'select name, count(*)::int as rows from items where name like $1 group by name having count(*) > 1 order by name', [`${keyPrefix}-%`]);
        const { rows: [total] } = await client.query<{ rows: number }>('select count(*)::int as rows from items where name like $1', [`${keyPrefix}-%`]);

        return {
            acknowledged: acknowledged.size,
            found: found.size,
            lostWrites: lost.length,
            lost: lost.slice(0, 20),
            duplicateWrites: duplicates.reduce((sum, row) => sum + row.rows - 1, 0),
            duplicates: duplicates.slice(0, 20),
            rows: total!.rows
        };
    }
    finally {
        await client.end();
    }
};
