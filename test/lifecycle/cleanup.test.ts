import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';

import * as Database from '../support/database.ts';
import * as App from './support/app.ts';
import * as Checks from './support/checks.ts';
import * as Http from './support/http.ts';
import * as Otlp from './support/otlp.ts';


// After the drain: jobs stop, running queries are cancelled, the pool ends, telemetry flushes last.
// Each step is bounded; what overruns is abandoned and makes the exit code 1.


const database = Database.provide();
let admin: pg.Client;
const receivers: Otlp.Receiver[] = [];

beforeAll(async () => {

    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
});

afterEach(async () => {

    await App.killAll();
    for (const receiver of receivers.splice(0)) {
        await receiver.close();
    }
});

afterAll(async () => {

    await admin?.end();
});


const internals = {

    // Telemetry on, exporting OTLP/JSON to the receiver; nothing is exported on a timer during a test,
    // so what the receiver gets is the flush of the shutdown.
    telemetry(receiver: Otlp.Receiver): Record<string, string | undefined> {

        return {
            OTEL_SDK_DISABLED: undefined,
            OTEL_SERVICE_NAME: 'item-api-lifecycle-test',
            OTEL_TRACES_EXPORTER: 'otlp',
            OTEL_METRICS_EXPORTER: 'otlp',
            OTEL_LOGS_EXPORTER: 'none',
            OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
            OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
            OTEL_TRACES_SAMPLER_ARG: '1',                   // Every request traced: the flush must carry them
            OTEL_BSP_SCHEDULE_DELAY: '60000',
            OTEL_METRIC_EXPORT_INTERVAL: '60000'
        };
    },

    // This process's connections in Postgres: the pool's, and the one shutdown opens to cancel queries.
    async connections(pid: number): Promise<number> {

        const { rows } = await admin.query('select count(*)::int as n from pg_stat_activity where starts_with(application_name, $1)', [App.applicationName(pid)]);
        return rows[0].n;
    },

};


it('stops jobs after the drain, ends the pool after the jobs, and flushes telemetry last, before exit', async () => {

    const receiver = await Otlp.receiver('answer');
    receivers.push(receiver);

    const budgets = { delayMs: 200, drainMs: 1000, cleanupMs: 2000 };
    const app = await App.start({ env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '200', SHUTDOWN_DRAIN_TIMEOUT_MS: '1000', SHUTDOWN_CLEANUP_TIMEOUT_MS: '2000', ...internals.telemetry(receiver) } });

    const created = await Http.request(app.port, { method: 'POST', path: '/items', body: JSON.stringify({ name: 'traced' }) });
    expect(created.status).toBe(201);
    expect(await internals.connections(app.pid)).toBeGreaterThan(0);
    expect(receiver.exports).toHaveLength(0);

    const signalledAt = app.signal('SIGTERM');
    const exit = await app.exited;
    const lines = Checks.checkPhaseOrder(app, exit);
    expect(exit.code).toBe(0);
    expect(lines.exit).toMatchObject({ code: 0, forced: [] });
    for (const phase of Checks.shutdownPhases) {
        expect(lines[phase].outcome, phase).toBe('ok');
    }

    expect(lines.jobs.jobs).toBe(1);

    // The flush is observable: the receiver got the spans after the pool had ended, before the process left
    const traces = receiver.exports.filter((item) => item.path === '/v1/traces');
    expect(traces.length).toBeGreaterThan(0);
    for (const item of traces) {
        expect(item.at).toBeGreaterThanOrEqual(Checks.phaseEnd(lines.pool));
        expect(item.at).toBeLessThanOrEqual(Checks.phaseEnd(lines.telemetry));
        expect(item.at).toBeLessThanOrEqual(exit.at);
    }

    expect(Otlp.spanNames(receiver.exports).some((name) => name.includes('/items'))).toBe(true);

    // The lifecycle's own metrics went out with the same flush: one duration per phase before telemetry, and the counts
    const durations = Otlp.metricPoints(receiver.exports, 'item_api.shutdown.phase.duration');
    expect(durations.map((point) => point.phase).sort()).toEqual(['delay', 'drain', 'jobs', 'pool']);
    expect(durations.every((point) => point.outcome === 'ok')).toBe(true);
    const counts = Otlp.metricPoints(receiver.exports, 'item_api.shutdown.events');
    expect(counts).toContainEqual({ phase: 'signal', kind: 'inFlight' });
    expect(counts).toContainEqual({ phase: 'drain', kind: 'socketsEnded' });
    expect(counts).toContainEqual({ phase: 'pool', kind: 'queriesCancelled' });

    expect(await internals.connections(app.pid)).toBe(0);
    const elapsed = Checks.checkExitWithinBudget(exit, signalledAt, budgets);
    console.log(`order: drain end ${Checks.phaseEnd(lines.drain) - signalledAt} ms, jobs ${Checks.phaseStart(lines.jobs) - signalledAt}-${Checks.phaseEnd(lines.jobs) - signalledAt}, pool ${Checks.phaseStart(lines.pool) - signalledAt}-${Checks.phaseEnd(lines.pool) - signalledAt}, traces received ${traces.map((item) => item.at - signalledAt).join(',')}, telemetry end ${Checks.phaseEnd(lines.telemetry) - signalledAt}, exit ${elapsed} ms`);
});


it('abandons a telemetry exporter that never answers, with the pool already ended, and exits 1 inside the budget', async () => {

    const receiver = await Otlp.receiver('hang');
    receivers.push(receiver);

    const budgets = { delayMs: 200, drainMs: 500, cleanupMs: 1500 };
    const app = await App.start({ env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '200', SHUTDOWN_DRAIN_TIMEOUT_MS: '500', SHUTDOWN_CLEANUP_TIMEOUT_MS: '1500', ...internals.telemetry(receiver) } });

    const created = await Http.request(app.port, { method: 'POST', path: '/items', body: JSON.stringify({ name: 'never exported' }) });
    expect(created.status).toBe(201);
    expect(await internals.connections(app.pid)).toBeGreaterThan(0);

    const signalledAt = app.signal('SIGTERM');
    const pool = await app.waitForPhase('pool');

    // While the flush hangs, the process is still there and holds no connection: the pool ended first
    expect(await internals.connections(app.pid)).toBe(0);
    expect(app.exit).toBeNull();

    const exit = await app.exited;
    const lines = Checks.checkPhaseOrder(app, exit);
    expect(pool.outcome).toBe('ok');
    expect(lines.telemetry.outcome).toBe('timeout');
    expect(exit.code).toBe(1);
    expect(lines.exit).toMatchObject({ code: 1, forced: ['telemetry'] });
    expect(receiver.exports.length).toBeGreaterThan(0);
    expect(receiver.exports.every((item) => item.at >= Checks.phaseEnd(lines.pool))).toBe(true);

    const elapsed = Checks.checkExitWithinBudget(exit, signalledAt, budgets);
    console.log(`hung exporter: telemetry phase ${String(lines.telemetry.durationMs)} ms, exit ${exit.code} at ${elapsed} ms, budget ${budgets.delayMs + budgets.drainMs + budgets.cleanupMs} ms`);
});


it('cancels a query that would block the pool end, ends the pool inside its budget, and exits 1', async () => {

    const budgets = { delayMs: 200, drainMs: 1000, cleanupMs: 3000 };
    const app = await App.start({ env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '200', SHUTDOWN_DRAIN_TIMEOUT_MS: '1000', SHUTDOWN_CLEANUP_TIMEOUT_MS: '3000', DB_STATEMENT_TIMEOUT_MS: '60000' } });

    const created = await Http.request(app.port, { method: 'POST', path: '/items', body: JSON.stringify({ name: 'held' }) });
    const { id } = JSON.parse(created.body) as { id: string };

    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    try {
        // The service's UPDATE waits on the test's row lock; its client then gives up (as a proxy
        // timing out would), so the drain has nothing to wait for but the query still runs
        await locker.query('begin');
        await locker.query('select id from items where id = $1 for update', [id]);
        const agent = Http.keepAliveAgent();
        const patch = Http.request(app.port, { method: 'PATCH', path: `/items/${id}`, headers: { 'if-match': '"1"' }, body: JSON.stringify({ quantity: 5 }), agent });
        await App.waitForLockWait(admin, app.pid);
        agent.destroy();
        expect((await patch).error).toBeDefined();
        await sleep(50);

        const signalledAt = app.signal('SIGTERM');
        const exit = await app.exited;
        const lines = Checks.checkPhaseOrder(app, exit);

        expect(lines.signal.inFlight).toBe(0);
        expect(lines.drain).toMatchObject({ outcome: 'ok', forced: false, socketsDestroyed: 0 });
        expect(lines.pool).toMatchObject({ outcome: 'ok', queriesCancelled: 1, connectionsTerminated: 0 });
        expect(lines.pool.durationMs).toBeLessThan(budgets.cleanupMs / 2);
        expect(exit.code).toBe(1);
        expect(lines.exit).toMatchObject({ code: 1, forced: ['pool'] });
        expect(await internals.connections(app.pid)).toBe(0);
        const elapsed = Checks.checkExitWithinBudget(exit, signalledAt, budgets);

        // The cancelled UPDATE was rolled back: the row is as it was, and still locked by the test only
        await locker.query('rollback');
        const { rows } = await admin.query('select version, quantity from items where id = $1', [id]);
        expect(rows[0]).toEqual({ version: 1, quantity: 0 });
        console.log(`blocked query: cancelled, pool ended in ${String(lines.pool.durationMs)} ms, exit ${exit.code} at ${elapsed} ms`);
    }
    finally {
        await locker.end();
    }
});
