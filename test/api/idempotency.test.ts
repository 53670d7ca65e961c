import { beforeEach, expect, it } from 'vitest';

import * as App from '../support/app.ts';


const fixture = App.provide({ IDEMPOTENCY_SWEEP_INTERVAL_MS: '3600000' });

const post = async (body: object, key?: string) => {

    const res = await fetch(`${fixture.app.url}/items`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
        body: JSON.stringify(body)
    });

    return { status: res.status, headers: res.headers, body: await res.json() as any };
};


beforeEach(async () => {

    await fixture.app.db('items').delete();
    await fixture.app.db('idempotency_keys').delete();
});


it('replays the first response for the same key and body, storing nothing new', async () => {

    const first = await post({ name: 'widget', quantity: 2 }, 'order-1');
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();

    const again = await post({ quantity: 2, name: 'widget' }, 'order-1');             // Same body, keys in another order
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await App.counts(fixture.app.db)).toEqual({ items: 1, keys: 1 });
});

it('replays each response as it was first sent, its times to the millisecond', async () => {

    for (let i = 0; i < 40; ++i) {
        const body = i % 2 ? { name: `exact-${i}`, description: `described ${i}`, quantity: i } : { name: `exact-${i}` };
        const first = await post(body, `exact-${i}`);
        const again = await post(body, `exact-${i}`);
        expect(again.headers.get('idempotent-replayed')).toBe('true');
        expect(again.body).toEqual(first.body);
        expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    }
});

it('treats an explicit default as the same body', async () => {

    const first = await post({ name: 'widget' }, 'order-2');
    const again = await post({ name: 'widget', quantity: 0 }, 'order-2');
    expect(again.body.id).toBe(first.body.id);
    expect(await App.counts(fixture.app.db)).toEqual({ items: 1, keys: 1 });
});

it('answers 422 for the same key with a different body, storing nothing new', async () => {

    const first = await post({ name: 'widget' }, 'order-3');
    const conflict = await post({ name: 'gadget' }, 'order-3');
    expect(conflict.status).toBe(422);
    expect(conflict.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity', field: 'idempotency-key' });
    expect(await App.counts(fixture.app.db)).toEqual({ items: 1, keys: 1 });
    expect((await fixture.app.db('items').first()).id).toBe(first.body.id);
});

it('creates exactly one item when the same request races itself', async () => {

    const results = await Promise.all(Array.from({ length: 12 }, () => post({ name: 'racer' }, 'order-4')));
    expect(results.every((res) => res.status === 201)).toBe(true);
    expect(new Set(results.map((res) => res.body.id)).size).toBe(1);
    expect(results.filter((res) => res.headers.get('idempotent-replayed') === 'true')).toHaveLength(11);
    expect(await App.counts(fixture.app.db)).toEqual({ items: 1, keys: 1 });
});

it('keeps keys in Postgres, so another replica replays them', async () => {

    const first = await post({ name: 'shared' }, 'order-5');
    const replica = await App.start({ databaseUrl: fixture.databaseUrl });
    try {
        const res = await fetch(`${replica.url}/items`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': 'order-5' },
            body: JSON.stringify({ name: 'shared' })
        });

        expect(((await res.json()) as any).id).toBe(first.body.id);
    }
    finally {
        await replica.stop();
    }

    expect(await App.counts(fixture.app.db)).toEqual({ items: 1, keys: 1 });
});

it('forgets a key after its time to live, and the sweeper removes expired keys', async () => {

    const first = await post({ name: 'widget' }, 'order-6');
    await fixture.app.db('idempotency_keys').update({ expires_at: fixture.app.db.raw("now() - interval '1 second'") });

    const fresh = await post({ name: 'widget' }, 'order-6');
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(first.body.id);
    expect(await App.counts(fixture.app.db)).toEqual({ items: 2, keys: 1 });

    await post({ name: 'other' }, 'order-7');
    await fixture.app.db('idempotency_keys').update({ expires_at: fixture.app.db.raw("now() - interval '1 second'") });

    const sweeper = await import('../../src/jobs/idempotency-sweeper.ts');
    const job = sweeper.start({ db: fixture.app.db, intervalMs: 10, batchSize: 1, logger: (await import('../../src/logger.ts')).create({ level: 'silent' }) });
    await expect.poll(async () => (await App.counts(fixture.app.db)).keys, { timeout: 5000 }).toBe(0);
    await job.stop();
    expect((await App.counts(fixture.app.db)).items).toBe(3);
});
