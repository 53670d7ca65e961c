import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';
import { afterEach, expect, it } from 'vitest';

import * as Db from '../../src/db.ts';
import * as Embedded from '../../src/embedded-db.ts';
import * as App from './support/app.ts';
import * as Http from './support/http.ts';


// A database that is not there when the pod starts (or not migrated yet) is a reason not to be ready,
// never a reason to exit: the process stays up, live, and becomes ready by itself.


const internals = {
    dir: join(App.root, '.data', 'lifecycle-startup'),
    running: null as { db: Embedded.EmbeddedDb; url: string } | null,

    async waitForStatus(port: number, path: string, status: number, timeoutMs: number): Promise<Http.Outcome> {

        const deadline = Date.now() + timeoutMs;
        let last: Http.Outcome;
        do {
            last = await Http.request(port, { path });
            if (last.status === status) {
                return last;
            }

            await sleep(25);
        }
        while (Date.now() < deadline);
        throw new Error(`${path} still ${last.status ?? last.error} after ${timeoutMs} ms`);
    },

    // The data folder is kept between runs (initdb is slow); the database of each run is not.
    async drop(url: string): Promise<void> {

        const server = new URL(url);
        const database = server.pathname.slice(1);
        server.pathname = '/postgres';
        const admin = new pg.Client({ connectionString: server.toString() });
        await admin.connect();
        await admin.query(`drop database if exists ${admin.escapeIdentifier(database)} with (force)`);
        await admin.end();
    }
};


afterEach(async () => {

    await App.killAll();
    const running = internals.running;
    internals.running = null;
    if (running) {
        await internals.drop(running.url);
        await running.db.stop();
    }
});


it('stays live and not ready while the database is down or not migrated, and becomes ready by itself when it is there', async () => {

    // A PostgreSQL of this test's own on a port chosen here: started once to learn its URL, then stopped
    const port = await App.freePort();
    const database = `lifecycle_${randomBytes(4).toString('hex')}`;
    const first = await Embedded.start({ dir: internals.dir, database, port });
    const url = first.url;
    const password = decodeURIComponent(new URL(url).password);
    await first.stop();

    const app = await App.start({ waitFor: 'listening', env: { DATABASE_URL: url, DB_START_RETRY_MAX_MS: '400', DB_CONNECT_TIMEOUT_MS: '1000', READY_CACHE_MS: '200' } });

    // Down: retried with a growing backoff, live, not ready, not started
    const retries = () => app.logs().filter((line) => line.component === 'lifecycle' && line.msg === 'database not ready');
    await app.waitForLog(() => retries().length >= 4);
    expect(retries().slice(0, 4).map((line) => line.retryInMs)).toEqual([100, 200, 400, 400]);
    expect((await Http.request(app.port, { path: '/health/live' })).status).toBe(200);
    const ready = await Http.request(app.port, { path: '/health/ready' });
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'error', error: { status: 'starting' } });
    expect((await Http.request(app.port, { path: '/health/startup' })).status).toBe(503);

    // Up, but the schema is not there: production does not migrate on start, so still not ready
    const second = await Embedded.start({ dir: internals.dir, database, port });
    internals.running = { db: second, url };

    const upAt = Date.now();
    await app.waitForLog((line) => line.msg === 'database not ready' && Date.parse(line.time) >= upAt && String((line.err as { message?: string } | undefined)?.message).startsWith('migrations not applied'), 5000);
    expect((await Http.request(app.port, { path: '/health/ready' })).status).toBe(503);
    expect(app.lifecycle('signal')).toBeUndefined();

    // Migrated (as the release's migration job would): ready by itself, same process
    const migrator = Db.create({ url, poolMax: 1, acquireTimeoutMs: 5000, connectTimeoutMs: 5000, statementTimeoutMs: 0 });
    await migrator.migrate.latest();
    await migrator.destroy();

    await app.waitForLog((line) => line.component === 'lifecycle' && line.msg === 'started', 5000);
    const readyAt = Date.now();
    await internals.waitForStatus(app.port, '/health/ready', 200, 2000);
    expect((await Http.request(app.port, { path: '/health/startup' })).status).toBe(200);
    expect(app.exit).toBeNull();

    // Down again after the start: readiness follows the database (cached briefly), liveness does not
    internals.running = null;
    await second.stop();
    const downAt = Date.now();
    const unavailable = await internals.waitForStatus(app.port, '/health/ready', 503, 3000);
    expect(JSON.parse(unavailable.body)).toMatchObject({ status: 'error', error: { status: 'database unavailable' } });
    const notReadyMs = unavailable.at - downAt;
    expect((await Http.request(app.port, { path: '/health/live' })).status).toBe(200);

    const third = await Embedded.start({ dir: internals.dir, database, port });
    internals.running = { db: third, url };
    await internals.waitForStatus(app.port, '/health/ready', 200, 3000);
    expect(app.exit).toBeNull();

    // Nothing it logged or answered carried the password
    expect(JSON.stringify(app.logs())).not.toContain(password);
    expect(ready.body).not.toContain(password);

    app.signal('SIGTERM');
    const exit = await app.exited;
    expect(exit.code).toBe(0);
    expect(app.lifecycle('exit')).toMatchObject({ code: 0, forced: [] });
    console.log(`database down at start: ${retries().length} retries, ready ${readyAt - upAt} ms after the database came up (migrated in between); not ready ${notReadyMs} ms after it went down later`);
});
