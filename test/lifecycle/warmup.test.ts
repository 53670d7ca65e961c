import pg from 'pg';
import { afterEach, expect, it } from 'vitest';

import * as Database from '../support/database.ts';
import * as App from './support/app.ts';


// The warm-up before readiness (src/warmup.ts): the pool's connections opened and the request path run,
// with nothing stored and nothing in the request log.


const database = Database.provide();

afterEach(App.killAll);


it('opens every pooled connection and runs the request path before it reports started, storing and logging none of it', async () => {

    const app = await App.start({ env: { DATABASE_URL: database.url, WARMUP_REQUESTS: '400', DB_POOL_MAX: '6' } });

    const line = (msg: string) => app.logs().find((entry) => entry.component === 'lifecycle' && entry.msg === msg);
    const warmed = line('warmed up');
    const started = line('started');
    expect(warmed?.warmup).toMatchObject({ requests: 400, connections: 6, statuses: { 200: 80, 400: 160, 404: 160 } });
    expect(Date.parse(warmed!.time)).toBeLessThanOrEqual(Date.parse(started!.time));
    expect(app.logs().filter((line) => String(line.msg).startsWith('[response]'))).toEqual([]);

    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
        const { rows: [connections] } = await client.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [App.applicationName(app.pid)]);
        expect(connections.n).toBe(6);

        const { rows: [stored] } = await client.query('select (select count(*) from items)::int as items, (select count(*) from idempotency_keys)::int as keys');
        expect(stored).toEqual({ items: 0, keys: 0 });
    }
    finally {
        await client.end();
    }

    // Served afterwards as any request is, and logged
    const res = await fetch(`${app.url}/items?limit=1`);
    expect(res.status).toBe(200);
    await app.waitForLog((line) => /^\[response\] get \/items /i.test(String(line.msg)));
});


it('stops warming up at a shutdown signal and exits within its phases, without starting', async () => {

    // A warm-up that would run for 20 s: the signal comes once the pool's connections are open.
    const app = await App.start({ env: { DATABASE_URL: database.url, WARMUP_REQUESTS: '100000', WARMUP_BUDGET_MS: '20000', DB_POOL_MAX: '4' }, waitFor: 'listening' });
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
        await expect.poll(async () => (await client.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [App.applicationName(app.pid)])).rows[0].n, { timeout: 10_000, interval: 50 }).toBe(4);
    }
    finally {
        await client.end();
    }

    const signalledAt = app.signal('SIGTERM');
    const exit = await app.exited;
    const warmed = app.logs().find((line) => line.component === 'lifecycle' && line.msg === 'warmed up');
    expect(warmed?.warmup).toMatchObject({ aborted: true });
    expect(exit.code).toBe(0);                                      // No phase forced by the watchdog
    expect(exit.at - signalledAt).toBeLessThan(3000);               // Delay 0.3 s + drain + cleanup, not the 20 s budget
    expect(app.logs().some((line) => line.component === 'lifecycle' && line.msg === 'started')).toBe(false);
});
