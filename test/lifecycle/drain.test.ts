import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';
import { afterEach, expect, it } from 'vitest';

import * as Database from '../support/database.ts';
import * as App from './support/app.ts';
import * as Checks from './support/checks.ts';
import * as Http from './support/http.ts';
import * as Scenarios from './support/scenarios.ts';


const database = Database.provide();

afterEach(App.killAll);



it('answers a request in flight at the signal with Connection: close, sends kept-alive clients away during the delay, and closes idle sockets with a FIN', async () => {

    const app = await App.start({ env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '300', SHUTDOWN_DRAIN_TIMEOUT_MS: '3000' } });
    const run = await Scenarios.inFlightUpload(app);

    Checks.checkCompletedInFlight(run.outcome, 201);
    expect(JSON.parse(run.outcome.body)).toMatchObject({ name: 'sent across the signal', quantity: 3, version: 1 });

    // During the delay a kept-alive socket still serves, and its response sends the client away:
    // `Connection: close`, then a FIN, before the drain
    expect(run.reusedDuringDelay).toMatch(/^HTTP\/1\.1 200 /);
    expect(run.reusedDuringDelay).toMatch(/\r\nconnection: close/i);

    const lines = Checks.checkPhaseOrder(app, run.exit);
    expect(run.exit.code).toBe(0);
    expect(lines.signal.inFlight).toBe(1);
    expect(lines.delay.durationMs).toBeGreaterThanOrEqual(300);
    expect(lines.drain).toMatchObject({ outcome: 'ok', inFlight: 1, sockets: 2, socketsEnded: 2, socketsDestroyed: 0, requestsCut: 0, forced: false });

    // The response was written in the drain, not in the delay
    expect(run.outcome.at).toBeGreaterThanOrEqual(Checks.phaseEnd(lines.delay));

    expect(run.reused.error).toBeNull();
    expect(run.reused.endedAt).not.toBeNull();
    expect(run.reused.endedAt!).toBeLessThan(Checks.phaseEnd(lines.delay));

    // The socket left idle: FIN from the server (not a reset) once the delay is over
    expect(run.idle.error).toBeNull();
    expect(run.idle.endedAt).not.toBeNull();
    expect(run.idle.endedAt!).toBeGreaterThanOrEqual(Checks.phaseEnd(lines.delay));
    expect(run.idle.endedAt! - run.signalledAt).toBeLessThan(300 + 3000);

    const elapsed = Checks.checkExitWithinBudget(run.exit, run.signalledAt, { delayMs: 300, drainMs: 3000, cleanupMs: 1500 });
    console.log(`in-flight upload: answered ${run.outcome.at - run.signalledAt} ms after the signal, idle FIN at ${run.idle.endedAt! - run.signalledAt} ms, exit at ${elapsed} ms`);
});


it('lets a slow query in flight at the signal finish and answers it with Connection: close', async () => {

    const app = await App.start({ env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '300', SHUTDOWN_DRAIN_TIMEOUT_MS: '3000', DB_STATEMENT_TIMEOUT_MS: '60000' } });
    const created = await Http.request(app.port, { method: 'POST', path: '/items', body: JSON.stringify({ name: 'locked' }) });
    expect(created.status).toBe(201);
    const { id } = JSON.parse(created.body) as { id: string };

    // The test holds the row: the service's UPDATE waits inside its transaction until the lock goes
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    try {
        await locker.query('begin');
        await locker.query('select id from items where id = $1 for update', [id]);

        const patch = Http.request(app.port, { method: 'PATCH', path: `/items/${id}`, headers: { 'if-match': '"1"' }, body: JSON.stringify({ quantity: 9 }) });
        await App.waitForLockWait(locker, app.pid);

        const signalledAt = app.signal('SIGTERM');
        await app.waitForPhase('delay');
        await locker.query('rollback');

        const outcome = await patch;
        Checks.checkCompletedInFlight(outcome, 200);
        expect(JSON.parse(outcome.body)).toMatchObject({ id, quantity: 9, version: 2 });

        const exit = await app.exited;
        const lines = Checks.checkPhaseOrder(app, exit);
        expect(exit.code).toBe(0);
        expect(lines.signal.inFlight).toBe(1);
        expect(lines.drain).toMatchObject({ outcome: 'ok', inFlight: 1, socketsDestroyed: 0, requestsCut: 0 });
        expect(lines.pool).toMatchObject({ outcome: 'ok', queriesCancelled: 0 });
        Checks.checkExitWithinBudget(exit, signalledAt, { delayMs: 300, drainMs: 3000, cleanupMs: 1500 });
    }
    finally {
        await locker.end();
    }
});


it('cuts a request that outlives the drain budget and still exits inside the total budget, with a non-zero code', async () => {

    const budgets = { delayMs: 200, drainMs: 500, cleanupMs: 1500 };
    const app = await App.start({ env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '200', SHUTDOWN_DRAIN_TIMEOUT_MS: '500', SHUTDOWN_CLEANUP_TIMEOUT_MS: '1500' } });

    const upload = await Http.slowUpload(app.port, '/items', { name: 'never finished' });          // finish() is never called
    await sleep(150);

    const signalledAt = app.signal('SIGTERM');
    const outcome = await upload.outcome;
    const exit = await app.exited;

    expect(outcome.status).toBeUndefined();
    expect(outcome.error).toBeDefined();
    expect(outcome.at - signalledAt).toBeGreaterThanOrEqual(budgets.delayMs + budgets.drainMs);

    // The drain ends at its deadline (the listener's close completes once the tracker destroys what
    // is left) and the cleanup phases still run, in order
    const lines = Checks.checkPhaseOrder(app, exit);
    expect(lines.drain).toMatchObject({ outcome: 'timeout', inFlight: 1, sockets: 1, socketsEnded: 0, socketsDestroyed: 1, requestsCut: 1, forced: true });
    expect(lines.drain.durationMs).toBeGreaterThanOrEqual(budgets.drainMs);
    expect(lines.drain.durationMs).toBeLessThan(budgets.drainMs + 250);
    expect(lines.jobs.outcome).toBe('ok');
    expect(lines.pool.outcome).toBe('ok');
    expect(lines.telemetry.outcome).toBe('ok');

    expect(exit.code).toBe(1);
    expect(lines.exit.code).toBe(1);
    const elapsed = Checks.checkExitWithinBudget(exit, signalledAt, budgets);
    console.log(`drain overrun: exit ${exit.code} at ${elapsed} ms, budget ${budgets.delayMs + budgets.drainMs + budgets.cleanupMs} ms`);
});
