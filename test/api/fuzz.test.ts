import fc from 'fast-check';
import { beforeAll, expect, it } from 'vitest';

import * as App from '../support/app.ts';
import * as Document from '../support/fuzz/document.ts';
import * as Properties from '../support/fuzz/properties.ts';


// Property-based tests driven by the OpenAPI document the service serves. FUZZ_PROFILE=long (npm run
// test:fuzz) runs many more cases; FUZZ_SEED replays another seed. Each property is bounded in count
// and in time, and reports how many cases it ran.

const fixture = App.provide({ IDEMPOTENCY_SWEEP_INTERVAL_MS: '3600000' });
const profile = Properties.profile();
const timeout = profile.timeLimitMs + 30_000;
let target: Properties.Target;


const run = async function (name: string, property: fc.IAsyncPropertyWithHooks<any>, numRuns: number) {

    const started = Date.now();
    const details = await fc.check(property, Properties.parameters(profile, numRuns));
    console.log(`fuzz ${profile.name} ${name}: ${details.numRuns} cases (${details.numSkips} drawn and skipped), seed ${profile.seed}, ${Date.now() - started} ms${details.interrupted ? ', stopped at the time limit' : ''}`);
    if (details.failed) {
        throw new Error(`${fc.defaultReportMessage(details)}\n${(details.errorInstance as Error | null)?.message ?? ''}`);
    }

    expect(details.numRuns).toBeGreaterThan(0);
};


beforeAll(async () => {

    target = { url: fixture.app.url, db: fixture.app.db, doc: await Document.load(fixture.app.url) };

    // Some items to address, so valid requests reach stored items and not only 404.
    for (const name of Array.from({ length: 30 }, (_, i) => `item ${i} \u{1F600}`)) {
        const res = await fetch(`${target.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
        expect(res.status).toBe(201);
    }
});


it('accepts every valid request the document describes, and answers only what it documents', async () => {

    await run('valid requests', Properties.valid(target, await Properties.hints(target)), profile.valid);
}, timeout);

it('refuses every request that breaks one documented constraint with a documented 4xx, storing nothing', async () => {

    await run('invalid requests', Properties.invalid(target, await Properties.hints(target)), profile.invalid);
}, timeout);

it('keeps its invariants over sequences of creates, reads, lists, updates, deletes and replays', async () => {

    await run('stateful sequences', Properties.stateful(target, profile), profile.sequences);
}, timeout);
