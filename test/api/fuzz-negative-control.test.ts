import type { Request, ResponseToolkit, Server } from '@hapi/hapi';
import fc from 'fast-check';
import { expect, it } from 'vitest';

import * as App from '../support/app.ts';
import * as Database from '../support/database.ts';
import * as Document from '../support/fuzz/document.ts';
import * as Properties from '../support/fuzz/properties.ts';


// The fuzzer must fail on a service that is broken: the same properties, seed and profile as
// fuzz.test.ts, against variants of the real service broken in one place each. The document is the
// correct one, served by the broken variant itself.

const database = Database.provide();
const profile = Properties.profile();


const internals = {

    // A response field renamed: item bodies say qty where the document says quantity.
    renameField(server: Server) {

        server.ext('onPreResponse', (request: Request, h: ResponseToolkit) => {

            const source = (request.response as { source?: unknown }).source;
            if (source && typeof source === 'object' && 'quantity' in source) {
                const { quantity, ...rest } = source as Record<string, unknown>;
                (request.response as { source: unknown }).source = { ...rest, qty: quantity };
            }

            return h.continue;
        });
    },

    // The NUL and lone-surrogate refusal removed in favour of "cleaning" the text before validation:
    // invalid text is then accepted and stored altered.
    sanitiseText(server: Server) {

        server.ext('onPostAuth', (request: Request, h: ResponseToolkit) => {

            const payload = request.payload as Record<string, unknown> | null;
            for (const [name, value] of Object.entries(payload && typeof payload === 'object' ? payload : {})) {
                if (typeof value === 'string') {
                    payload![name] = value.replaceAll('\u0000', '').toWellFormed();
                }
            }

            return h.continue;
        });
    },

    async failure(extend: (server: Server) => void, property: (target: Properties.Target) => Promise<fc.IAsyncPropertyWithHooks<any>>, numRuns: number) {

        const app = await App.start({ databaseUrl: database.url, extend });
        try {
            await app.db('items').delete();
            await app.db('idempotency_keys').delete();
            for (let i = 0; i < 10; ++i) {
                await fetch(`${app.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `item ${i}` }) });
            }

            const target = { url: app.url, db: app.db, doc: await Document.load(app.url) };
            const details = await fc.check(await property(target), Properties.parameters(profile, numRuns));
            return { details, report: `${fc.defaultReportMessage(details)}\n${(details.errorInstance as Error | null)?.message ?? ''}` };
        }
        finally {
            await app.stop();
        }
    }
};


it('fails on a response field renamed, and prints the request as curl', async () => {

    const { details, report } = await internals.failure(internals.renameField, async (target) => Properties.valid(target, await Properties.hints(target)), profile.valid);
    expect(details.failed).toBe(true);
    expect(report).toMatch(/Counterexample: \[curl -i -X (GET|POST|PATCH) 'http:\/\/127\.0\.0\.1:\d+\/items/);
    expect(report).toContain("must have required property 'quantity'");
}, profile.timeLimitMs + 30_000);

it('fails when NUL and lone surrogates are cleaned away instead of refused', async () => {

    const { details, report } = await internals.failure(internals.sanitiseText, async (target) => Properties.invalid(target, await Properties.hints(target)), profile.invalid);
    expect(details.failed).toBe(true);
    expect(report).toMatch(/Counterexample: \[curl -i -X (POST|PATCH) /);
    expect(report).toMatch(/\\u0000|\\ud[89a-f]/i);                  // JSON's escape of NUL or of a lone surrogate
}, profile.timeLimitMs + 30_000);

it('fails when item responses lose the ETag the document requires', async () => {

    const dropEtag = (server: Server) => server.ext('onPreResponse', (request: Request, h: ResponseToolkit) => {

        const response = request.response as { headers?: Record<string, unknown> };
        delete response.headers?.etag;
        return h.continue;
    });

    const { details, report } = await internals.failure(dropEtag, async (target) => Properties.valid(target, await Properties.hints(target)), profile.valid);
    expect(details.failed).toBe(true);
    expect(report).toMatch(/lacks its required header ETag/);
}, profile.timeLimitMs + 30_000);

it('fails when replaying an Idempotency-Key creates a second item', async () => {

    // Each request's key made unique before the handler sees it: the service forgets every key.
    const forgetKeys = (server: Server) => server.ext('onPostAuth', (request: Request, h: ResponseToolkit) => {

        if (request.headers['idempotency-key']) {
            request.headers['idempotency-key'] = `${request.headers['idempotency-key']}-${Math.random()}`;
        }

        return h.continue;
    });

    const { details, report } = await internals.failure(forgetKeys, async (target) => Properties.stateful(target, profile), profile.sequences);
    expect(details.failed).toBe(true);
    expect(report).toContain('Requests of this sequence, as curl');
    expect(report).toContain("-H 'idempotency-key: key-");
}, profile.timeLimitMs + 30_000);
