import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';
import { afterEach, expect, it } from 'vitest';

import * as Database from '../support/database.ts';
import * as App from './support/app.ts';
import * as Checks from './support/checks.ts';
import * as Http from './support/http.ts';


// The first phase: readiness fails at once, while everything else keeps working until the delay is
// over, so the endpoints and proxies that have not heard of the shutdown yet lose nothing.


const database = Database.provide();

afterEach(App.killAll);


it('fails readiness within 50 ms of SIGTERM, keeps liveness 200, serves new connections during the delay and refuses them after it', async () => {

    const budgets = { delayMs: 600, drainMs: 3000, cleanupMs: 1500 };
    const app = await App.start({ env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '600', SHUTDOWN_DRAIN_TIMEOUT_MS: '3000' } });

    // Probes over kept-alive connections, every few ms, as a kubelet or a balancer
    const ready = Http.poll(app.port, '/health/ready');
    const live = Http.poll(app.port, '/health/live');
    while (ready.samples.filter((sample) => sample.status === 200).length < 5 || live.samples.length < 5) {
        await sleep(10);
    }

    // Held across the delay: the process is still there when the listener closes
    const upload = await Http.slowUpload(app.port, '/items', { name: 'keeps the drain open' });
    await sleep(100);

    const signalledAt = app.signal('SIGTERM');

    // Within the delay, on new connections: the API serves, readiness says why it fails, briefly
    await sleep(200);
    const fresh = await Http.request(app.port, { path: '/items?limit=1' });
    const freshLive = await Http.request(app.port, { path: '/health/live' });
    const freshReady = await Http.request(app.port, { path: '/health/ready' });
    const checkedAt = Date.now();

    // After it: the listener is closed while the process still serves what it has
    await app.waitForPhase('delay');
    let refusedAt = 0;
    const deadline = Date.now() + 1000;
    while (!refusedAt && Date.now() < deadline) {
        if (!await Http.connects(app.port)) {
            refusedAt = Date.now();
        }
    }

    const aliveWhenRefused = app.exit === null;
    upload.finish();
    const outcome = await upload.outcome;
    const exit = await app.exited;
    await ready.stop();
    await live.stop();

    // Readiness: 200 up to the signal, then 503 from the first answer after it, never 200 again
    const firstFailure = ready.samples.find((sample) => sample.at >= signalledAt && sample.status === 503);
    expect(firstFailure).toBeDefined();
    const flipMs = firstFailure!.at - signalledAt;
    expect(flipMs).toBeLessThan(50);
    expect(firstFailure!.reused).toBe(true);
    expect(ready.samples.filter((sample) => sample.at < signalledAt).every((sample) => sample.status === 200)).toBe(true);
    expect(ready.samples.filter((sample) => sample.at > firstFailure!.at && sample.status !== undefined).every((sample) => sample.status === 503)).toBe(true);

    // Liveness: 200 at every answer, including right after the signal and to the end of the delay
    const delayEnd = Checks.phaseEnd(app.lifecycle('delay')!);
    expect(live.samples.every((sample) => sample.status === undefined || sample.status === 200)).toBe(true);
    expect(live.samples.some((sample) => sample.status === 200 && sample.at >= signalledAt && sample.at < signalledAt + 50)).toBe(true);
    expect(live.samples.some((sample) => sample.status === 200 && sample.at >= delayEnd - 100)).toBe(true);

    expect(checkedAt).toBeLessThan(delayEnd);
    expect(fresh.status).toBe(200);
    expect(fresh.headers.connection).toBe('close');                  // Served, and the client is sent back through the Service
    expect(freshLive.status).toBe(200);
    expect(freshReady.status).toBe(503);
    expect(JSON.parse(freshReady.body)).toEqual({ status: 'error', error: { status: 'shutting down' }, details: { status: 'shutting down' } });

    expect(refusedAt, 'new connections still accepted after the delay').toBeGreaterThan(0);
    expect(refusedAt - signalledAt).toBeGreaterThanOrEqual(budgets.delayMs);
    expect(aliveWhenRefused).toBe(true);

    Checks.checkCompletedInFlight(outcome, 201);
    expect(exit.code).toBe(0);
    Checks.checkExitWithinBudget(exit, signalledAt, budgets);
    const handledMs = Date.parse(app.lifecycle('signal')!.time) - signalledAt;
    console.log(`readiness: 503 ${flipMs} ms after SIGTERM (signal handled at ${handledMs} ms, ${ready.samples.length} polls), listener refused at ${refusedAt - signalledAt} ms (delay ${budgets.delayMs} ms)`);
});


// Overload is not an outage: with the pool too busy to lend the readiness ping a connection in time,
// queries still being answered keep the pod ready (failing it would take every overloaded pod out of
// the Service at once); with nothing answered (a query stuck holding the only connection) it fails.
it('stays ready while a busy pool answers other queries, and fails when nothing is answered', async () => {

    // Shedding off: it would answer most of the 60 clients below with 503 instead of letting them queue
    // for the one connection, and would shed the requests right after them, which this test needs served.
    const app = await App.start({ env: { DATABASE_URL: database.url, DB_POOL_MAX: '1', READY_DB_PING_TIMEOUT_MS: '50', READY_CACHE_MS: '0', DB_STATEMENT_TIMEOUT_MS: '20000', LOAD_MAX_EVENT_LOOP_UTILIZATION: '0', LOAD_MAX_DB_WAITING: '0' } });
    const readyShare = async (ms: number) => {

        const statuses: number[] = [];
        const until = Date.now() + ms;
        while (Date.now() < until) {
            statuses.push((await Http.request(app.port, { path: '/health/ready' })).status ?? 0);
            await sleep(20);
        }

        return statuses.filter((status) => status === 200).length / statuses.length;
    };

    // Busy: 60 clients creating items back to back through a pool of one connection.
    let busy = true;
    let created = 0;
    const clients = Array.from({ length: 60 }, async () => {

        while (busy) {
            const res = await Http.request(app.port, { method: 'POST', path: '/items', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'busy' }) });
            created += res.status === 201 ? 1 : 0;
        }
    });
    await sleep(300);
    const whileBusy = await readyShare(1500);
    busy = false;
    await Promise.all(clients);
    expect(created).toBeGreaterThan(100);
    expect(whileBusy).toBe(1);

    // Stuck: the only connection waits on a row lock, so nothing is answered.
    const { id } = JSON.parse((await Http.request(app.port, { method: 'POST', path: '/items', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'locked' }) })).body) as { id: string };
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    await locker.query('begin');
    await locker.query('select * from items where id = $1 for update', [id]);
    try {
        const blocked = Http.request(app.port, { method: 'PATCH', path: `/items/${id}`, headers: { 'content-type': 'application/json', 'if-match': '"1"' }, body: JSON.stringify({ quantity: 1 }) });
        await sleep(300);
        expect(await readyShare(1000)).toBe(0);
        await locker.query('rollback');
        await blocked;
    }
    finally {
        await locker.end();
    }

    await expect.poll(async () => (await Http.request(app.port, { path: '/health/ready' })).status, { timeout: 3000 }).toBe(200);
});


it('answers health checks while every other request is shed', async () => {

    // Over the RSS limit from the first sample on: every API request is a 503. The probes must still
    // say what they would say: a pod that sheds is alive and ready, it is busy, not broken.
    const app = await App.start({ env: { DATABASE_URL: database.url, LOAD_SAMPLE_INTERVAL_MS: '10', LOAD_MAX_RSS_BYTES: '1' } });
    await expect.poll(async () => (await Http.request(app.port, { path: '/items?limit=1' })).status, { timeout: 2000 }).toBe(503);
    const statuses = await Promise.all(['/health/live', '/health/startup', '/health/ready'].map(async (path) => [path, (await Http.request(app.port, { path })).status]));
    expect(Object.fromEntries(statuses)).toEqual({ '/health/live': 200, '/health/startup': 200, '/health/ready': 200 });
});
