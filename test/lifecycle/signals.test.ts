import { fileURLToPath } from 'node:url';

import { afterEach, expect, it } from 'vitest';

import * as Database from '../support/database.ts';
import * as App from './support/app.ts';
import * as Checks from './support/checks.ts';
import * as Http from './support/http.ts';


const database = Database.provide();

afterEach(App.killAll);


it('runs the same shutdown on SIGINT as on SIGTERM', async () => {

    const app = await App.start({ env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '300' } });
    expect((await Http.request(app.port, { path: '/health/ready' })).status).toBe(200);

    const signalledAt = app.signal('SIGINT');
    await app.waitForPhase('signal');
    expect((await Http.request(app.port, { path: '/health/ready' })).status).toBe(503);
    expect((await Http.request(app.port, { path: '/health/live' })).status).toBe(200);

    const exit = await app.exited;
    const lines = Checks.checkPhaseOrder(app, exit);
    expect(lines.signal.signal).toBe('SIGINT');
    expect(lines.delay.durationMs).toBeGreaterThanOrEqual(300);
    expect(exit.code).toBe(0);
    Checks.checkExitWithinBudget(exit, signalledAt, { delayMs: 300, drainMs: 1000, cleanupMs: 1500 });
});


it('exits at once, non-zero, on a second signal', async () => {

    const app = await App.start({ env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '20000' } });

    app.signal('SIGTERM');
    await app.waitForPhase('signal');
    expect((await Http.request(app.port, { path: '/health/ready' })).status).toBe(503);

    const secondAt = app.signal('SIGTERM');
    const exit = await app.exited;
    expect(exit.code).toBe(128 + 15);
    expect(exit.at - secondAt).toBeLessThan(500);
    expect(app.logs().some((line) => line.component === 'lifecycle' && line.msg === 'second signal: exiting now')).toBe(true);
    expect(app.lifecycle('delay')).toBeUndefined();
    console.log(`second signal: exit ${exit.code} ${exit.at - secondAt} ms after it, inside a 20 s delay`);
});


it('exits through the watchdog, with 1, before delay + drain + cleanup + 1 s when a phase never ends', async () => {

    const stuckClose = fileURLToPath(new URL('./fixtures/stuck-close.ts', import.meta.url));
    const budgets = { delayMs: 200, drainMs: 500, cleanupMs: 800 };
    const app = await App.start({ preload: [stuckClose], env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '200', SHUTDOWN_DRAIN_TIMEOUT_MS: '500', SHUTDOWN_CLEANUP_TIMEOUT_MS: '800' } });

    const signalledAt = app.signal('SIGTERM');
    const exit = await app.exited;

    expect(exit.code).toBe(1);
    expect(app.lifecycle('delay')).toBeDefined();
    expect(app.lifecycle('drain')).toBeUndefined();
    expect(app.lifecycle('watchdog')).toMatchObject({ level: 'error', budgetMs: 200 + 500 + 800 + 500 });
    expect(exit.at - signalledAt).toBeGreaterThanOrEqual(200 + 500 + 800);
    const elapsed = Checks.checkExitWithinBudget(exit, signalledAt, budgets);
    console.log(`watchdog: exit ${exit.code} at ${elapsed} ms, budgets ${200 + 500 + 800} ms + 1 s`);
});
