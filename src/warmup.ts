import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import type { Server, ServerInjectOptions } from '@hapi/hapi';

import type { Db } from './db.ts';


// Readiness sends a new pod its share of the traffic at once, and a process just started serves it
// slower than a warm one: V8 has yet to compile the request path, and the pool opens its connections
// one acquire at a time while requests queue for them. In the soak's rollouts the reads shed came in
// the seconds after new pods became ready. So before readiness the pool opens all its connections and
// the request path runs through hapi's inject: reads of ids that do not exist, a list, and writes
// refused by validation, so nothing is stored and no socket is used. Bounded by a request count and a
// time budget, whichever ends first. npm run bench:cold-start, 700 GET/s at a process just ready on
// one core: p99 of the first 500 ms 79-218 ms cold, 9-14 ms warmed (2,000 requests, ~1 s more to ready).

declare module '@hapi/hapi' {
    interface RequestApplicationState {
        warmup?: boolean;                           // Not logged: the request log skips these
    }
}


export interface Options {
    readonly requests: number;
    readonly budgetMs: number;
    readonly connections: number;                  // The pool's size
    readonly signal: AbortSignal;                   // A shutdown signal during the warm-up: stop at the next batch
}


export interface Report {
    readonly requests: number;
    readonly connections: number;
    readonly durationMs: number;
    readonly statuses: Record<number, number>;      // Answers by status: 503s mean the database did not keep up
    readonly aborted: boolean;
}


const internals = {
    batch: 20,                                      // Requests in flight at once, as under load

    // Each holds its connection for a moment, so that the pool opens a connection for every one.
    holdSql: 'select pg_sleep(0.02)',

    requests(): ServerInjectOptions[] {

        const id = randomUUID();
        return [
            { method: 'GET', url: `/items/${id}` },
            { method: 'GET', url: '/items?limit=20' },
            { method: 'GET', url: `/items/${id}`, headers: { 'if-none-match': '"1"' } },
            { method: 'POST', url: '/items', payload: { name: '' } },
            { method: 'PATCH', url: `/items/${id}`, payload: { quantity: -1 }, headers: { 'if-match': '"1"' } }
        ];
    }
};


export const run = async function (server: Server, db: Db, options: Options): Promise<Report> {

    const startedAt = performance.now();
    await Promise.all(Array.from({ length: options.connections }, () => db.raw(internals.holdSql)));

    let requests = 0;
    const statuses: Record<number, number> = {};
    while (requests < options.requests && performance.now() - startedAt < options.budgetMs && !options.signal.aborted) {
        const mix = internals.requests();
        const answers = await Promise.all(Array.from({ length: internals.batch }, (_, i) => server.inject({ ...mix[i % mix.length]!, app: { warmup: true } })));
        for (const { statusCode } of answers) {
            statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
        }

        requests += internals.batch;
    }

    return { requests, connections: options.connections, durationMs: Math.round(performance.now() - startedAt), statuses, aborted: options.signal.aborted };
};
