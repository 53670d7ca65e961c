import pg from 'pg';
import { expect, it } from 'vitest';

import { freePort } from '../../src/embedded-db.ts';
import * as App from '../support/app.ts';
import * as Database from '../support/database.ts';


const database = Database.provide();


it('answers 503 with Retry-After at once when the database refuses connections', async () => {

    const app = await App.start({ databaseUrl: `postgres://app:s3cret-pw@127.0.0.1:${await freePort()}/none` });
    try {
        const started = Date.now();
        const res = await fetch(`${app.url}/items/01a1fda8-1894-7455-9a35-840c7ccb6686`);
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(await res.json()).toEqual({ statusCode: 503, error: 'Service Unavailable', message: 'Database unavailable, retry shortly' });
        expect(Date.now() - started).toBeLessThan(1000);

        // The failure is logged, and the password in the connection string is not.
        const logged = JSON.stringify(app.logs());
        expect(logged).toContain('database unavailable');
        expect(logged).not.toContain('s3cret-pw');
    }
    finally {
        await app.stop();
    }
});

it('answers 503 with Retry-After within the acquire timeout when the pool is exhausted', async () => {

    const app = await App.start({ databaseUrl: database.url, env: { DB_POOL_MAX: '1', DB_POOL_ACQUIRE_TIMEOUT_MS: '300', DB_STATEMENT_TIMEOUT_MS: '20000' } });
    const { body: item } = await fetch(`${app.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'locked' }) })
        .then(async (res) => ({ body: await res.json() as any }));

    // Hold the row so that a PATCH keeps the pool's only connection inside its transaction.
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    await locker.query('begin');
    await locker.query('select * from items where id = $1 for update', [item.id]);

    try {
        const blocked = fetch(`${app.url}/items/${item.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', 'if-match': '"1"' }, body: JSON.stringify({ quantity: 9 }) });
        await expect.poll(async () => (await locker.query("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()")).rows[0].n).toBe(1);

        const started = Date.now();
        const res = await fetch(`${app.url}/items/${item.id}`);
        const elapsed = Date.now() - started;
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(elapsed).toBeGreaterThanOrEqual(250);
        expect(elapsed).toBeLessThan(2000);

        await locker.query('rollback');
        expect((await blocked).status).toBe(200);
    }
    finally {
        await locker.end();
        await app.stop();
    }
});

it('answers 503 when a statement exceeds the statement timeout, and writes nothing', async () => {

    const app = await App.start({ databaseUrl: database.url, env: { DB_STATEMENT_TIMEOUT_MS: '200' } });
    const { id } = await (await fetch(`${app.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'slow' }) })).json() as { id: string };

    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    await locker.query('begin');
    await locker.query('select * from items where id = $1 for update', [id]);
    try {
        const res = await fetch(`${app.url}/items/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', 'if-match': '"1"' }, body: JSON.stringify({ quantity: 9 }) });
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
    }
    finally {
        await locker.query('rollback');
        await locker.end();
    }

    expect(await app.db('items').where({ id }).first()).toMatchObject({ quantity: 0, version: 1 });
    await app.stop();
});
