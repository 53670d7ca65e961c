import Hapi from '@hapi/hapi';
import { expect, it } from 'vitest';

import * as App from '../support/app.ts';
import * as Database from '../support/database.ts';


// Load shedding is hapi's own (server option `load`), configured from the environment: past a limit
// every new request is a 503 with Retry-After before any route runs, and the process serves again as
// soon as the sample is back under the limit. The negative controls run the same check against hapi
// with the limits off, and against hapi's own shedding without the service's Retry-After.

const database = Database.provide();


const internals = {
    item: '01a1fda8-1894-7455-9a35-840c7ccb6686',

    // What a shed request must look like; an empty list when it does.
    async shedProblems(url: string, init?: RequestInit): Promise<string[]> {

        const res = await fetch(url, init);
        const body = await res.json().catch(() => null) as { message?: string } | null;
        const problems: string[] = [];
        if (res.status !== 503) {
            problems.push(`status ${res.status}, not 503`);
        }

        if (res.headers.get('retry-after') !== '1') {
            problems.push(`Retry-After ${res.headers.get('retry-after')}, not 1`);
        }

        if (!/heavy load/.test(body?.message ?? '')) {
            problems.push(`message ${JSON.stringify(body?.message)}`);
        }

        return problems;
    },

    // Polls until the sampler has taken its first sample (heapUsed and rss read 0 until then).
    async shed(url: string, init?: RequestInit): Promise<string[]> {

        let problems: string[] = [];
        for (let i = 0; i < 50; ++i) {
            problems = await internals.shedProblems(url, init);
            if (!problems.length) {
                return problems;
            }

            await new Promise((resolve) => setTimeout(resolve, 20));
        }

        return problems;
    },

    block(ms: number): void {

        const until = Date.now() + ms;
        while (Date.now() < until) {
            // Keeps the event loop busy, as a CPU-bound burst does
        }
    }
};


it.each([
    ['heap', { LOAD_MAX_HEAP_USED_BYTES: '1' }],
    ['rss', { LOAD_MAX_RSS_BYTES: '1' }]
])('sheds every request with 503 + Retry-After past the %s limit, and stores nothing', async (limit, env) => {

    const app = await App.start({ databaseUrl: database.url, env: { LOAD_SAMPLE_INTERVAL_MS: '10', ...env } });
    try {
        const before = await App.counts(app.db);
        expect(await internals.shed(`${app.url}/items/${internals.item}`)).toEqual([]);
        expect(await internals.shedProblems(`${app.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `shed-${limit}` }, body: JSON.stringify({ name: 'shed' }) })).toEqual([]);
        expect(await App.counts(app.db)).toEqual(before);
        expect(JSON.stringify(app.logs())).not.toContain('"statusCode":500');
    }
    finally {
        await app.stop();
    }
});


it('sheds while the event loop is delayed past the limit, and serves again by itself', async () => {

    const app = await App.start({ databaseUrl: database.url, env: { LOAD_SAMPLE_INTERVAL_MS: '10', LOAD_MAX_EVENT_LOOP_DELAY_MS: '50' } });
    try {
        expect((await fetch(`${app.url}/items?limit=1`)).status).toBe(200);

        // The connection is made before the burst, so the request is read right after it.
        const pending = internals.shedProblems(`${app.url}/items?limit=1`);
        internals.block(300);
        expect(await pending).toEqual([]);

        // The next samples are back under the limit: no restart, no intervention.
        await expect.poll(async () => (await fetch(`${app.url}/items?limit=1`)).status, { timeout: 2000, interval: 20 }).toBe(200);
    }
    finally {
        await app.stop();
    }
});


it('negative control: the shedding check fails without the limits, and without the Retry-After', async () => {

    // Limits off (the development default): the same requests are served.
    const off = await App.start({ databaseUrl: database.url, env: {} });
    try {
        expect(await internals.shedProblems(`${off.url}/items/${internals.item}`)).toContain('status 404, not 503');
    }
    finally {
        await off.stop();
    }

    // hapi's shedding alone: a 503, but nothing tells the client when to come back.
    const bare = Hapi.server({ host: '127.0.0.1', port: 0, load: { sampleInterval: 10, maxHeapUsedBytes: 1 } });
    bare.route({ method: 'GET', path: '/items/{id}', handler: () => ({}) });
    await bare.start();
    try {
        expect(await internals.shed(`${bare.info.uri}/items/${internals.item}`)).toEqual(['Retry-After null, not 1']);
    }
    finally {
        await bare.stop();
    }
});
