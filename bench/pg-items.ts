import pg from 'pg';

import type { Item } from '../src/items/store.ts';


// The data access of the hand-written servers (bare node:http, fastify, hapi alone): a pg Pool of the
// service's default size and one named prepared statement (parsed and planned once per connection,
// as a hand-tuned service would), mapped to the service's JSON fields. One module, so that these
// servers differ only in the code between the socket and the query.


export interface Reader {
    get(id: string): Promise<Item | null>;
    end(): Promise<void>;
}


const internals = {
    sql: 'select id, name, description, quantity, version, created_at, updated_at from items where id = $1',
    uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[17][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i
};


// The service validates the id before querying; so do the others, or they would skip work the service must do.
export const isUuid = (id: string): boolean => internals.uuid.test(id);


export const poolMax = Number(process.env.DB_POOL_MAX ?? 10);


export const databaseUrl = function (): string {

    const url = process.env.DATABASE_URL;
    if (!url) {
        throw new Error('DATABASE_URL is required');
    }

    return url;
};


export const reader = function (url: string): Reader {

    const pool = new pg.Pool({ connectionString: url, max: poolMax });
    return {
        async get(id) {

            const { rows: [row] } = await pool.query({ name: 'bench_item_get', text: internals.sql, values: [id] });
            return row ? { id: row.id, name: row.name, description: row.description, quantity: row.quantity, version: row.version, createdAt: row.created_at, updatedAt: row.updated_at } : null;
        },
        end: () => pool.end()
    };
};
