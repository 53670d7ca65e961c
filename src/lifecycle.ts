import { setTimeout as sleep } from 'node:timers/promises';

import { createTerminus, HealthCheckError } from '@godaddy/terminus';
import type { Server } from '@hapi/hapi';
import { metrics } from '@opentelemetry/api';
import pg from 'pg';

import type { Config } from './config.ts';
import * as Connections from './connections.ts';
import * as Db from './db.ts';
import type { Job } from './jobs/idempotency-sweeper.ts';
import * as Logger from './logger.ts';
import { redactUrl } from './redact.ts';
import * as Telemetry from './telemetry.ts';
import * as Timers from './timers.ts';
import * as Warmup from './warmup.ts';


// The whole life of the process, in order.
//
// Start: listen first (liveness answers while the database is still unreachable), then reach the
// database with backoff, apply or verify migrations, warm the pool and the request path, start
// background jobs, and only then report started and ready. Nothing here crash-loops on a missing
// database.
//
// Stop, on SIGTERM or SIGINT, each phase bounded by its own budget:
//   delay    readiness fails at once; the listener stays open and every request is served, while
//            endpoints and proxies stop routing here (they learn it seconds later); each response
//            carries `Connection: close`, so clients pinned to this pod by keep-alive reconnect
//            through the Service instead of being cut at the drain
//   drain    the listener closes; idle sockets end; in-flight requests finish and their responses
//            carry `Connection: close`; at the drain budget what is left is destroyed
//   cleanup  jobs stop (the unit under way finishes), running queries are cancelled, the pool
//            ends, then telemetry flushes, so the spans of the last requests are exported
// A watchdog exits at delay + drain + cleanup + 500 ms whatever hangs, and a second signal exits at
// once. Exit code 0 only when every phase finished inside its budget and nothing had to be cut: a
// destroyed socket or a cancelled query makes it 1, and the exit line names the phases that forced.
//
// terminus answers the health checks and runs the sequence (it owns the listener's close, through
// stoppable); hapi's own server.stop() is never called, so the two never race to close the listener.
// Its hooks are unbounded and it ignores a repeated signal: the bounds and the second signal are here.


export interface Resources {
    readonly config: Config;
    readonly logger: Logger.Logger;
    readonly db: Db.Db;
    readonly databaseUrl: string;
    readonly server: Server;
    readonly startJobs: () => Job[];
    readonly stopDatabase?: () => Promise<void>;     // The embedded development database, if one was started
}


type Outcome = 'ok' | 'timeout' | 'error';


const internals = {
    signals: ['SIGTERM', 'SIGINT'] as const,
    watchdogSlackMs: 500,
    flushTimeoutMs: 200,
    meter: metrics.getMeter('item-api'),

    // Runs one step under a time bound; a step that overruns is abandoned (its promise keeps no one waiting).
    async bounded(step: () => Promise<unknown>, timeoutMs: number, onError: (err: unknown) => void = () => {}): Promise<Outcome> {

        const timeout = new AbortController();
        try {
            return await Promise.race([
                step().then(() => 'ok' as const),
                sleep(Math.max(timeoutMs, 0), 'timeout' as const, { signal: timeout.signal })
            ]);
        }
        catch (err) {
            onError(err);
            return 'error';
        }
        finally {
            timeout.abort();
        }
    },

    // Cancels this process's statements still running, from a connection outside the (possibly exhausted) pool.
    async signalBackends(url: string, fn: 'pg_cancel_backend' | 'pg_terminate_backend', timeoutMs: number): Promise<number> {

        const bound = Math.max(Math.floor(timeoutMs), 1);
        const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: bound, statement_timeout: bound, application_name: `${Db.applicationName}:shutdown`.slice(0, 63) });
        client.on('error', () => {});
        try {
            await client.connect();
            const states = fn === 'pg_cancel_backend' ? ['active'] : ['active', 'idle', 'idle in transaction', 'idle in transaction (aborted)'];
            const { rows } = await client.query(`select ${fn}(pid) as signalled from pg_stat_activity where application_name = $1 and state = any($2)`, [Db.applicationName, states]);
            return rows.filter((row) => row.signalled).length;
        }
        finally {
            await client.end().catch(() => {});
        }
    }
};


export const run = async function (resources: Resources): Promise<void> {

    const { config, logger, db, server } = resources;
    const log = logger.child({ component: 'lifecycle' });
    const phaseDuration = internals.meter.createHistogram('item_api.shutdown.phase.duration', { unit: 'ms', description: 'Duration of each shutdown phase' });
    const shutdownCounts = internals.meter.createCounter('item_api.shutdown.events', { description: 'Requests and sockets seen by the shutdown, by kind' });

    const state = { started: false, shuttingDown: false, forced: [] as string[], jobs: [] as Job[] };
    const startupAbort = new AbortController();
    let drainStartedAt = 0;

    const phase = (name: string, outcome: Outcome, startedAt: number, fields: Record<string, number | string | boolean> = {}) => {

        const durationMs = Date.now() - startedAt;
        if (outcome !== 'ok') {
            state.forced.push(name);
        }

        phaseDuration.record(durationMs, { phase: name, outcome });
        for (const [key, value] of Object.entries(fields)) {
            if (typeof value === 'number') {
                shutdownCounts.add(value, { phase: name, kind: key });
            }
        }

        log[outcome === 'ok' ? 'info' : 'warn']({ phase: name, outcome, durationMs, ...fields }, `shutdown phase ${name}: ${outcome}`);
    };

    // Readiness: the database answers, with a short timeout. One ping at a time, and its result is
    // reused for a moment, so probes from several kubelets and balancers do not pile onto the pool.
    // A ping that could not get a connection in time while other queries are being answered is a
    // busy pool, not a database outage: failing readiness then would take every overloaded pod out of
    // the Service at once (measured: 2x overload emptied the endpoints for 11 s), so it passes.
    let readiness: { at: number; ok: boolean; pending: Promise<boolean> | null } = { at: 0, ok: false, pending: null };
    const databaseReady = async (): Promise<boolean> => {

        if (Date.now() - readiness.at < config.db.readyCacheMs) {
            return readiness.ok;
        }

        readiness.pending ??= Db.ping(db, config.db.readyPingTimeoutMs)
            .then(() => true, () => Db.answeredWithin(db, config.db.readyPingTimeoutMs))
            .then((ok) => {

                readiness = { at: Date.now(), ok, pending: null };
                return ok;
            });

        return await readiness.pending;
    };

    const fail = (status: string): never => {

        throw new HealthCheckError(status, { status });
    };

    createTerminus(server.listener, {
        signals: [...internals.signals],
        sendFailuresDuringShutdown: false,          // Liveness stays 200 during shutdown; readiness decides by itself
        timeout: Infinity,                          // The drain deadline is the tracker's, so what it cuts is counted
        healthChecks: {
            '/health/live': () => Promise.resolve(),
            '/health/startup': () => (state.started ? Promise.resolve() : fail('starting')),
            '/health/ready': async ({ state: terminus }) => {

                if (terminus.isShuttingDown) {
                    fail('shutting down');
                }

                if (!state.started) {
                    fail('starting');
                }

                if (!await databaseReady()) {
                    fail('database unavailable');
                }
            }
        },

        beforeShutdown: async () => {

            const startedAt = Date.now();
            tracker.endKeepAlive();
            await Timers.sleepAtLeast(config.shutdown.delayMs);
            phase('delay', 'ok', startedAt, { inFlight: tracker.inFlight() });
            drainStartedAt = Date.now();
            tracker.beginDrain(config.shutdown.drainTimeoutMs);
        },

        onSignal: async () => {

            const drain = await tracker.drained();
            phase('drain', drain.forced ? 'timeout' : 'ok', drainStartedAt, { ...drain });
            await cleanup();
        },

        onShutdown: () => exit(),
        logger: (message, err) => {

            // A failing health check is an answer (the probe gets its 503), not a fault: no error line,
            // no stack, at every probe of a shutdown or a database outage.
            if (err instanceof HealthCheckError) {
                log.debug({ causes: err.causes }, message);
                return;
            }

            log.error({ err }, message);
        }
    });

    // After terminus: it wraps the request listeners already there and skips them for health paths,
    // while this one must see every request, probes included.
    const tracker = Connections.track(server.listener);

    // Cleanup shares one budget; each step gets a slice so that a hung job cannot starve the flush.
    const cleanup = async () => {

        const end = Date.now() + config.shutdown.cleanupTimeoutMs;
        const until = (share: number) => Math.min(Math.floor(config.shutdown.cleanupTimeoutMs * share), end - Date.now());

        startupAbort.abort();

        const failed = (step: string) => (err: unknown) => log.warn({ err, step }, `shutdown step ${step} failed`);

        let startedAt = Date.now();
        const jobs = await internals.bounded(() => Promise.all(state.jobs.map((job) => job.stop())), until(0.25), failed('jobs'));
        phase('jobs', jobs, startedAt, { jobs: state.jobs.length });

        startedAt = Date.now();
        const poolBudget = until(0.5);
        let cancelled = 0;
        let terminated = 0;
        const pool = await internals.bounded(async () => {

            // A cancel that fails (a database slow to accept one more connection) does not keep the pool
            // from ending: with nothing running it ends at once, and what still runs meets the bound.
            cancelled = await internals.signalBackends(resources.databaseUrl, 'pg_cancel_backend', poolBudget / 2).catch((err: unknown) => {

                failed('cancel')(err);
                return 0;
            });

            await db.destroy();
        }, poolBudget, failed('pool'));

        if (cancelled) {
            state.forced.push('pool');              // Work was cut, even though the pool then ended in time
        }

        if (pool !== 'ok') {
            // Connections still held: end them on the server side, so nothing is left behind in Postgres.
            terminated = await internals.signalBackends(resources.databaseUrl, 'pg_terminate_backend', Math.max(end - Date.now(), 50) / 4).catch((err: unknown) => {

                failed('terminate')(err);
                return 0;
            });
        }

        if (resources.stopDatabase) {
            await internals.bounded(resources.stopDatabase, until(0.2), failed('embedded database'));
        }

        phase('pool', pool, startedAt, { queriesCancelled: cancelled, connectionsTerminated: terminated });

        // Log lines are written asynchronously: what is still queued goes out with the spans.
        startedAt = Date.now();
        const telemetry = await internals.bounded(async () => {

            await Telemetry.shutdown();
            await Logger.flush(logger);
        }, end - Date.now(), failed('telemetry'));
        phase('telemetry', telemetry, startedAt);
    };

    // Every exit waits for the queued log lines, the last one included, but not beyond a short bound.
    const leave = async (code: number): Promise<never> => {

        await internals.bounded(() => Logger.flush(logger), internals.flushTimeoutMs);
        Logger.flushSync(logger);
        process.exit(code);
    };

    let signalledAt = 0;
    const exit = async () => {

        const code = state.forced.length ? 1 : 0;
        log.info({ phase: 'exit', code, forced: [...new Set(state.forced)], durationMs: Date.now() - signalledAt }, 'shutdown complete');
        await leave(code);
    };

    // Added after terminus's own listeners: the first signal arms the watchdog, a second one exits at once.
    for (const signal of internals.signals) {
        process.on(signal, () => {

            if (state.shuttingDown) {
                log.warn({ signal }, 'second signal: exiting now');
                void leave(128 + (signal === 'SIGINT' ? 2 : 15));
                return;
            }

            state.shuttingDown = true;
            signalledAt = Date.now();
            const inFlight = tracker.inFlight();
            shutdownCounts.add(inFlight, { phase: 'signal', kind: 'inFlight' });
            log.info({ phase: 'signal', signal, inFlight, ...config.shutdown }, 'shutdown started');
            startupAbort.abort();

            const total = config.shutdown.delayMs + config.shutdown.drainTimeoutMs + config.shutdown.cleanupTimeoutMs + internals.watchdogSlackMs;
            setTimeout(() => {

                log.error({ phase: 'watchdog', budgetMs: total }, 'shutdown budget exhausted: exiting');
                void leave(1);
            }, total).unref();
        });
    }

    try {
        await server.start();
    }
    catch (err) {
        const reason = (err as { code?: string }).code === 'EADDRINUSE' ? `port ${config.port} on ${config.host} is already in use` : 'cannot listen';
        log.fatal({ err }, reason);
        await leave(1);
    }

    log.info({ url: server.info.uri }, 'listening');

    // Reach the database and its schema, with backoff, for as long as it takes; liveness stays 200 meanwhile.
    let backoffMs = 100;
    while (!startupAbort.signal.aborted) {
        try {
            await Db.ping(db, config.db.connectTimeoutMs + config.db.readyPingTimeoutMs);
            if (config.migrateOnStart) {
                await db.migrate.latest();
            }

            const pending = await Db.pendingMigrations(db);
            if (pending.length) {
                throw new Error(`migrations not applied: ${pending.join(', ')}`);
            }

            if (config.warmup.requests) {
                const warmup = await Warmup.run(server, db, { ...config.warmup, connections: config.db.poolMax, signal: startupAbort.signal });
                log.info({ warmup }, 'warmed up');
            }

            if (startupAbort.signal.aborted) {
                return;                             // Shutting down already: jobs started now would outlive their phase
            }

            state.jobs = resources.startJobs();
            state.started = true;
            log.info({ database: redactUrl(resources.databaseUrl) }, 'started');
            return;
        }
        catch (err) {
            log.warn({ err, retryInMs: backoffMs }, 'database not ready');
            await sleep(backoffMs, undefined, { signal: startupAbort.signal }).catch(() => {});
            backoffMs = Math.min(backoffMs * 2, config.db.startRetryMaxMs);
        }
    }
};
