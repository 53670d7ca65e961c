import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { afterEach, expect, it } from 'vitest';

import * as App from './support/app.ts';
import * as Checks from './support/checks.ts';
import * as Http from './support/http.ts';


// `npm start` without DATABASE_URL runs PostgreSQL from node_modules. That package stops its server
// and exits the process on SIGTERM by itself; the service must take that over, so that the database
// outlives the drain and stops after the pool, like any other.


const internals = {
    dir: fileURLToPath(new URL(`../../.data/lifecycle-embedded-${randomBytes(4).toString('hex')}`, import.meta.url)),

    alive(pid: number): boolean {

        try {
            process.kill(pid, 0);
            return true;
        }
        catch {
            return false;
        }
    }
};


afterEach(async () => {

    await App.killAll();
    await rm(internals.dir, { recursive: true, force: true });
    await rm(`${internals.dir}.credentials.json`, { force: true });
});


it('keeps the embedded development database through the drain, stops it after the pool, and exits 0', async () => {

    const app = await App.start({ env: { NODE_ENV: 'development', EMBEDDED_POSTGRES_DIR: internals.dir, SHUTDOWN_DELAY_MS: '300' } });
    const postmaster = Number(readFileSync(`${internals.dir}/postmaster.pid`, 'utf8').split('\n')[0]);
    expect(internals.alive(postmaster)).toBe(true);

    const upload = await Http.slowUpload(app.port, '/items', { name: 'written during the drain' });
    const signalledAt = app.signal('SIGTERM');
    await app.waitForPhase('delay');
    upload.finish();

    Checks.checkCompletedInFlight(await upload.outcome, 201);
    const exit = await app.exited;
    const lines = Checks.checkPhaseOrder(app, exit);
    expect(exit.code).toBe(0);
    expect(lines.pool.outcome).toBe('ok');
    expect(internals.alive(postmaster)).toBe(false);
    Checks.checkExitWithinBudget(exit, signalledAt, { delayMs: 300, drainMs: 1000, cleanupMs: 1500 });
});
