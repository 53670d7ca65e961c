import Knex from 'knex';
import type { Knex as KnexTypes } from 'knex';

import * as Db from './db.ts';


// The hot queries, built once by knex and run as named prepared statements on knex's own pool.
//
// Measured (README, Performance): knex builds and compiles a query on every request, 10-16 µs each,
// and an unnamed query is parsed and planned by PostgreSQL every time. Here knex still writes the
// SQL, once, at import; each request only binds values. The connection comes from and goes back to
// knex's pool, so the acquire timeout (a fast 503), statement_timeout, cancellation by
// application_name at shutdown, destroy() waiting for it and a connection of unknown state never lent
// again (src/db.ts) all hold as for any knex query.
// pg prepares a named statement once per connection and then only binds and executes it.


export interface Statement<P> {
    readonly name: string;
    readonly text: string;
    values(params: P): unknown[];
}


const internals = {

    // Builds SQL only: without a connection, knex starts no pool.
    builder: Knex({ client: 'pg' }),

    // Values that stand in for a request's values while knex builds, by the name of the value; a
    // constant (the `limit 1` of first()) stays as it is. Where knex accepts only an integer (limit),
    // the stand-in is an integer no request would use.
    markers: new Map<unknown, string>(),
    nextInteger: 2_000_000_000
};


export const param = function (name: string): string {

    const marker = `\u0000param:${name}`;
    internals.markers.set(marker, name);
    return marker;
};


export const integerParam = function (name: string): number {

    const marker = internals.nextInteger++;
    internals.markers.set(marker, name);
    return marker;
};


export const prepare = function <P extends Record<string, unknown>>(name: string, build: (knex: KnexTypes) => KnexTypes.QueryBuilder): Statement<P> {

    const { sql, bindings } = build(internals.builder).toSQL().toNative();
    const slots = bindings.map((value) => ({ param: internals.markers.get(value), value }));

    return {
        name,
        text: sql,
        values: (params) => slots.map((slot) => (slot.param === undefined ? slot.value : params[slot.param]))
    };
};


interface PgConnection {
    query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}


export const rows = async function <P extends Record<string, unknown>, R>(db: Db.Db, statement: Statement<P>, params: P): Promise<R[]> {

    const client = db.client as { acquireConnection(): Promise<PgConnection>; releaseConnection(connection: PgConnection): Promise<void> };
    const connection = await client.acquireConnection();
    try {
        const result = await connection.query({ name: statement.name, text: statement.text, values: statement.values(params) });
        Db.answered(db);
        return result.rows as R[];
    }
    finally {
        void client.releaseConnection(connection);
    }
};
