import { fileURLToPath } from 'node:url';

import { afterEach, expect, it } from 'vitest';

import * as Database from '../support/database.ts';
import * as App from './support/app.ts';
import * as Checks from './support/checks.ts';
import * as Scenarios from './support/scenarios.ts';


// The in-flight scenario and its checks, unchanged, against the service with a naive shutdown
// preloaded (exit at once on SIGTERM). The checks must fail here, or they prove nothing elsewhere.


const internals = {
    naive: fileURLToPath(new URL('./fixtures/naive-shutdown.ts', import.meta.url))
};


const database = Database.provide();

afterEach(App.killAll);


it('catches a naive shutdown: the in-flight request is lost and no phase runs', async () => {

    const app = await App.start({ preload: [internals.naive], env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '300', SHUTDOWN_DRAIN_TIMEOUT_MS: '3000' } });
    const run = await Scenarios.inFlightUpload(app);

    // The same checks the real shutdown passes
    expect(() => Checks.checkCompletedInFlight(run.outcome, 201)).toThrow();
    expect(() => Checks.checkPhaseOrder(app, run.exit)).toThrow();

    // Failed for the reason intended: the process left at once, with the request unanswered
    expect(run.outcome.status).toBeUndefined();
    expect(run.outcome.error).toBeDefined();
    expect(run.exit.code).toBe(0);
    expect(app.logs().filter((line) => line.component === 'lifecycle' && line.phase !== undefined)).toEqual([]);
});
