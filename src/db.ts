import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import Knex from 'knex';
import type { Knex as KnexTypes } from 'knex';

import type { Logger } from './logger.ts';
import { redactUrl } from './redact.ts';


export type Db = KnexTypes;


interface TarnPool {
    numPendingAcquires(): number;
    numPendingCreates(): number;
}


export interface DbOptions {
    readonly url: string;
    readonly poolMax: number;
    readonly acquireTimeoutMs: number;
    readonly connectTimeoutMs: number;
    readonly statementTimeoutMs: number;
    readonly logger?: Logger;                           // knex's own warnings, as JSON lines instead of console output
}


// How much later than the server's statement_timeout the client stops waiting for an answer.
export const clientTimeoutMarginMs = 1000;


export const migrationsDirectory = fileURLToPath(new URL('../migrations', import.meta.url));


// Unique per process, so shutdown can find and cancel exactly this process's queries and tests can
// see its connections in pg_stat_activity. Postgres keeps 63 bytes of it.
export const applicationName = `item-api:${hostname()}:${process.pid}`.slice(0, 63);


export const create = function (options: DbOptions): Db {

    const log = options.logger?.child({ component: 'knex' });

    const knex = Knex({
        client: 'pg',
        connection: {
            connectionString: options.url,
            application_name: applicationName,
            connectionTimeoutMillis: options.connectTimeoutMs,
            statement_timeout: options.statementTimeoutMs,
            // A transaction left open by a stuck client must not hold locks and a connection forever.
            idle_in_transaction_session_timeout: Math.max(options.statementTimeoutMs * 2, 10_000),
            // statement_timeout is enforced by the server, which cannot enforce it on a query it never
            // received or an answer that never arrives (a network dropping packets, a hung server): the
            // client gives up a little later on its own, so no request waits on the network unbounded.
            ...(options.statementTimeoutMs ? { query_timeout: options.statementTimeoutMs + clientTimeoutMarginMs } : {}),
            keepAlive: true
        },
        // min 0: no connection is held while idle, and a database that is down at start is not an error.
        // A short acquire timeout turns an exhausted pool into a fast 503 instead of a minute-long hang.
        pool: { min: 0, max: options.poolMax, idleTimeoutMillis: 30_000, afterCreate: disposeWhenUnsure },
        acquireConnectionTimeout: options.acquireTimeoutMs,
        ...(log ? {
            log: {
                warn: (message: unknown) => log.warn(redactUrl(String(message))),
                error: (message: unknown) => log.error(redactUrl(String(message))),
                deprecate: (method: string, alternative: string) => log.warn({ method, alternative }, 'deprecated'),
                debug: (message: unknown) => log.debug(String(message))
            }
        } : {}),
        migrations: {
            directory: migrationsDirectory,
            loadExtensions: ['.ts'],
            tableName: 'knex_migrations'
        }
    });

    knex.on('query-response', () => answered(knex));
    return knex;
};


// pg's query_timeout stops waiting for an answer but leaves the query on the wire, and drops what is
// queued behind it unsent, a transaction's ROLLBACK included. Lent out again, the connection would still
// be inside that transaction on the server: the next autocommit write ran in it, was answered 201 and
// vanished with the session (test/api/unavailable.test.ts). After such a failure the connection's state
// is unknown, so knex's own flag makes the pool destroy it on release instead.
interface PgConnection {
    __knex__disposed?: unknown;
    query(...args: unknown[]): unknown;
}


const disposeWhenUnsure = function (connection: PgConnection, done: (err: Error | null, connection: PgConnection) => void): void {

    const query = connection.query.bind(connection);
    const dispose = (err: unknown) => {

        if (err && isUnavailable(err)) {
            connection.__knex__disposed = err;
        }
    };

    connection.query = (...args: unknown[]) => {

        const callback = args.at(-1);
        if (typeof callback === 'function') {                      // knex's own queries
            return query(...args.slice(0, -1), (err: unknown, result: unknown) => {

                dispose(err);
                callback(err, result);
            });
        }

        const result = query(...args) as Promise<unknown>;         // The prepared statements (src/sql.ts)
        result.catch(dispose);
        return result;
    };

    done(null, connection);
};


// Failures that say nothing about the request and everything about the database: answered 503 with
// Retry-After, never 500. Codes are node's socket errors and Postgres SQLSTATEs (class 08 connection
// exception, 53 insufficient resources, 57 operator intervention, which includes statement timeouts),
// and pg's own client-side query timeout.

const unavailableCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE', 'EAI_AGAIN']);


export const isUnavailable = function (err: unknown): boolean {

    if (!(err instanceof Error)) {
        return false;
    }

    if (err.name === 'KnexTimeoutError') {
        return true;                                    // Pool exhausted: no connection within the acquire timeout
    }

    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') {
        return unavailableCodes.has(code) || /^(08|53|57)/.test(code);
    }

    return /Connection terminated|timeout exceeded when trying to connect|Query read timeout/i.test(err.message);
};


// Requests waiting for a pooled connection: the queue where the database is the bottleneck. While the
// pool is still opening connections (a new pod, a database back from a restart) they wait for those,
// not in a queue: 0, so a new pod's first requests are not shed.
export const waiting = function (db: Db): number {

    const pool = (db.client as { pool?: TarnPool }).pool;
    return !pool || pool.numPendingCreates() > 0 ? 0 : pool.numPendingAcquires();
};


// When the database last answered a query of this process: evidence that it is up even when the pool
// is too busy to lend a readiness ping a connection in time (overload is not an outage).
const answeredAt = new WeakMap<Db, number>();


export const answered = function (db: Db): void {

    answeredAt.set(db, Date.now());
};


export const answeredWithin = function (db: Db, ms: number): boolean {

    return Date.now() - (answeredAt.get(db) ?? -Infinity) <= ms;
};


export const ping = async function (db: Db, timeoutMs: number): Promise<void> {

    // knex's timeout() starts once a connection is acquired; a busy pool would make the ping wait up to
    // the acquire timeout for one, past any probe's timeout. The bound covers the wait as well.
    const query = Promise.resolve(db.raw('select 1').timeout(timeoutMs));
    query.catch(() => {});                              // Settles later, bounded by the acquire timeout
    const bound = new AbortController();
    try {
        await Promise.race([query, sleep(timeoutMs, undefined, { signal: bound.signal }).then(() => {

            throw new Error(`database ping: no answer within ${timeoutMs} ms`);
        })]);
    }
    finally {
        bound.abort();
    }
};


export const pendingMigrations = async function (db: Db): Promise<string[]> {

    const [, pending] = await db.migrate.list() as [unknown[], { file: string }[]];
    return pending.map((migration) => migration.file);
};
