import fc from 'fast-check';
import { expect } from 'vitest';

import type { Db } from '../../../src/db.ts';
import * as App from '../app.ts';
import * as Arbitraries from './arbitraries.ts';
import type { Hints } from './arbitraries.ts';
import type { Document, Operation, Request } from './document.ts';
import * as Http from './http.ts';


// The fuzzer's properties, each a function of the service under test, so the negative control runs the
// very same ones against a broken variant.

export interface Target {
    readonly url: string;
    readonly db: Db;
    readonly doc: Document;
}


export interface Profile {
    readonly name: string;
    readonly seed: number;
    readonly valid: number;
    readonly invalid: number;
    readonly sequences: number;
    readonly commands: number;
    readonly timeLimitMs: number;                   // Per property: a slow machine runs fewer cases, never longer
}


const internals = {

    profiles: {
        short: { name: 'short', seed: 20261123, valid: 400, invalid: 800, sequences: 60, commands: 20, timeLimitMs: 12_000 },
        long: { name: 'long', seed: 20261123, valid: 10_000, invalid: 20_000, sequences: 1000, commands: 40, timeLimitMs: 300_000 }
    } as Record<string, Profile>,

    // Statuses a valid request may answer besides success: each means a state the request could not know.
    preconditions: [304, 412, 422, 428],

    async row(db: Db, id: unknown): Promise<unknown> {

        return typeof id === 'string' && /^[0-9a-f-]{36}$/i.test(id) ? await db('items').where({ id }).first() ?? null : null;
    },

    // What the document says this response may be; a failure shows the request as curl.
    conforms(target: Target, operation: Operation, request: Request, res: Http.Response): void {

        const errors = target.doc.responseErrors(operation, res);
        expect(errors, `${Http.curl(target.url, request)}\n-> ${res.status} ${JSON.stringify(res.body)}\n${errors.join('\n')}`).toEqual([]);
    },

    requestOf(method: string, path: string, parts: Partial<Request>): Request {

        return { method, path, params: {}, query: {}, headers: {}, ...parts };
    }
};


export const profile = function (): Profile {

    const chosen = internals.profiles[process.env.FUZZ_PROFILE ?? 'short'];
    if (!chosen) {
        throw new Error(`FUZZ_PROFILE must be one of ${Object.keys(internals.profiles).join(', ')}`);
    }

    return process.env.FUZZ_SEED ? { ...chosen, seed: Number(process.env.FUZZ_SEED) } : chosen;
};


export const parameters = function (profile: Profile, numRuns: number): fc.Parameters<unknown> {

    return { seed: profile.seed, numRuns, interruptAfterTimeLimit: profile.timeLimitMs, markInterruptAsFailure: false, endOnFailure: false };
};


// Values the service knows, offered to the generators next to the document's own: stored ids (for
// paths and cursors) and the If-Match forms that can match ("*", a current version's tag).
export const hints = async function (target: Target): Promise<Hints> {

    const ids = (await target.db('items').select('id').orderBy('id').limit(30) as { id: string }[]).map((row) => row.id);
    return { values: { id: ids, cursor: ids, 'if-match': ['*', '"1"', '"2"'], 'if-none-match': ['"1"'] } };
};


// Valid requests, generated from the document and confirmed valid by it, are accepted: success, a
// documented precondition status, or 404 for an id that names no item. Texts come back exactly as sent.
export const valid = function (target: Target, hints: Hints): fc.IAsyncPropertyWithHooks<[Request]> {

    const requests = fc.oneof(...target.doc.operations.map((operation) => Arbitraries.request(operation, hints))).map((request) => Http.printable(target.url, request));

    return fc.asyncProperty(requests, async (request) => {

        const operation = target.doc.operation(request.method, request.path);

        expect(target.doc.requestErrors(operation, request), 'the generator made a request the document calls invalid').toEqual([]);

        const res = await Http.send(target.url, request);
        internals.conforms(target, operation, request, res);

        const absent = request.params.id !== undefined && await internals.row(target.db, request.params.id) === null;
        const accepted = (res.status >= 200 && res.status < 300) || internals.preconditions.includes(res.status) || (res.status === 404 && absent);
        expect(accepted, `${Http.curl(target.url, request)}\n-> ${res.status} ${JSON.stringify(res.body)}`).toBe(true);

        if ((res.status === 201 || res.status === 200) && request.body !== undefined) {
            const sent = request.body as Record<string, unknown>;
            const item = res.body as Record<string, unknown>;
            const stored = await internals.row(target.db, item.id) as Record<string, unknown> | null;
            const replayed = res.headers.get('idempotent-replayed') === 'true';
            for (const field of ['name', 'description', 'quantity'] as const) {
                if (sent[field] !== undefined && !replayed) {
                    expect(item[field], `${field} as returned, for ${Http.curl(target.url, request)}`).toStrictEqual(sent[field]);
                    expect(stored?.[field], `${field} as stored, for ${Http.curl(target.url, request)}`).toStrictEqual(sent[field]);
                }
            }
        }
    });
};


// Requests that break one documented constraint get a documented 4xx and store nothing: row counts,
// and the addressed item, are as they were.
export const invalid = function (target: Target, hints: Hints): fc.IAsyncPropertyWithHooks<[Request]> {

    const requests = fc.oneof(...target.doc.operations.map((operation) => Arbitraries.mutation(operation, hints))).map((request) => Http.printable(target.url, request));

    return fc.asyncProperty(requests, async (request) => {

        const operation = target.doc.operation(request.method, request.path);

        fc.pre(target.doc.requestErrors(operation, request).length > 0);

        const before = { counts: await App.counts(target.db), row: await internals.row(target.db, request.params.id) };
        const res = await Http.send(target.url, request);
        const after = { counts: await App.counts(target.db), row: await internals.row(target.db, request.params.id) };

        const shown = `${Http.curl(target.url, request)}\n-> ${res.status} ${JSON.stringify(res.body)}\ninvalid because: ${target.doc.requestErrors(operation, request).join('; ')}`;
        expect(res.status >= 400 && res.status < 500, shown).toBe(true);
        internals.conforms(target, operation, request, res);

        // A refusal names the input at fault, exactly as the client spelt it.
        const field = (res.body as { field?: string }).field;
        const faulty = target.doc.faultyFields(operation, request);
        if (res.status === 400 && faulty.length) {
            expect(faulty, `field ${JSON.stringify(field)} is not one at fault: ${shown}`).toContain(field);
        }

        expect(after, `stored something: ${shown}`).toEqual(before);
    });
};


// Stateful sequences against a model: version +1 per update, ETag equal to the version, a deleted item
// is 404, a replayed Idempotency-Key returns the first response, listing sees exactly the items.

interface Model {
    items: Map<string, Record<string, unknown>>;
    deleted: string[];
    keys: Map<string, { body: Record<string, unknown>; first: unknown; etag: string | null; location: string | null }>;
}

interface Real {
    target: Target;
    log: string[];
}


const sequence = {

    async call(real: Real, method: string, path: string, parts: Partial<Request>): Promise<Http.Response> {

        const request = internals.requestOf(method, path, parts);
        const res = await Http.send(real.target.url, request);
        real.log.push(`${Http.curl(real.target.url, request)}\n  -> ${res.status} ${JSON.stringify(res.body)}`);
        internals.conforms(real.target, real.target.doc.operation(method, path), request, res);
        return res;
    },

    pick: <T>(list: T[], index: number): T => list[index % list.length]!,

    // The service fingerprints the request after defaults, so an explicit quantity 0 is the same body as none.
    same: (a: Record<string, unknown>, b: Record<string, unknown>) => a.name === b.name && (a.description ?? null) === (b.description ?? null) && (a.quantity ?? 0) === (b.quantity ?? 0),

    etag: (res: Http.Response) => res.headers.get('etag')
};


// A command of a sequence: plain data, a precondition on the model, and a run that checks the service.
const command = function (description: string, check: (model: Readonly<Model>) => boolean, run: (model: Model, real: Real) => Promise<void>): fc.AsyncCommand<Model, Real> {

    return { check, run, toString: () => description };
};


const commands = {

    create: (body: Record<string, unknown>, key: string | undefined) => command(`Create(${JSON.stringify(body)}, ${key ?? 'no key'})`, () => true, async (model, real) => {

        const res = await sequence.call(real, 'post', '/items', { body, headers: key ? { 'idempotency-key': key } : {} });
        const used = key ? model.keys.get(key) : undefined;
        if (used) {
            if (sequence.same(used.body, body)) {
                expect(res.status).toBe(201);
                expect(res.headers.get('idempotent-replayed')).toBe('true');
                expect(res.body).toEqual(used.first);
                expect([sequence.etag(res), res.headers.get('location')]).toEqual([used.etag, used.location]);
            }
            else {
                expect(res.status).toBe(422);
            }

            return;
        }

        expect(res.status).toBe(201);
        const item = res.body as Record<string, unknown>;
        expect(item).toMatchObject({ name: body.name, description: body.description ?? null, quantity: body.quantity ?? 0, version: 1 });
        expect(sequence.etag(res)).toBe('"1"');
        model.items.set(item.id as string, item);
        if (key) {
            model.keys.set(key, { body, first: item, etag: sequence.etag(res), location: res.headers.get('location') });
        }
    }),

    replay: (index: number) => command(`Replay(${index})`, (model) => model.keys.size > 0, async (model, real) => {

        const [key, used] = sequence.pick([...model.keys], index);
        const res = await sequence.call(real, 'post', '/items', { body: used.body, headers: { 'idempotency-key': key } });
        expect(res.status).toBe(201);
        expect(res.headers.get('idempotent-replayed')).toBe('true');
        expect(res.body).toEqual(used.first);
        expect([sequence.etag(res), res.headers.get('location')]).toEqual([used.etag, used.location]);
        expect((await App.counts(real.target.db)).items).toBe(model.items.size);
    }),

    read: (index: number) => command(`Read(${index})`, (model) => model.items.size + model.deleted.length > 0, async (model, real) => {

        const id = sequence.pick([...model.items.keys(), ...model.deleted], index);
        const res = await sequence.call(real, 'get', '/items/{id}', { params: { id } });
        const item = model.items.get(id);
        if (!item) {
            expect(res.status).toBe(404);
            return;
        }

        expect(res.status).toBe(200);
        expect(res.body).toEqual(item);
        expect(sequence.etag(res)).toBe(`"${item.version}"`);
    }),

    list: (limit: number) => command(`List(limit ${limit})`, () => true, async (model, real) => {

        const seen: unknown[] = [];
        let cursor: string | null = null;
        do {
            const res: Http.Response = await sequence.call(real, 'get', '/items', { query: { limit, ...(cursor ? { cursor } : {}) } });
            expect(res.status).toBe(200);
            const page = res.body as { items: unknown[]; nextCursor: string | null };
            expect(page.items.length).toBeLessThanOrEqual(limit);
            seen.push(...page.items);
            cursor = page.nextCursor;
        }
        while (cursor && seen.length <= model.items.size);

        expect(seen).toEqual([...model.items.keys()].sort().map((id) => model.items.get(id)));
    }),

    update: (index: number, changes: Record<string, unknown>, stale: boolean) => command(`Update(${index}, ${JSON.stringify(changes)}${stale ? ', stale ETag' : ''})`, (model) => model.items.size > 0, async (model, real) => {

        const item = model.items.get(sequence.pick([...model.items.keys()], index))!;
        const version = item.version as number;
        const res = await sequence.call(real, 'patch', '/items/{id}', { params: { id: item.id }, headers: { 'if-match': `"${stale ? version + 1 : version}"` }, body: changes });
        if (stale) {
            expect(res.status).toBe(412);
            return;
        }

        expect(res.status).toBe(200);
        const updated = res.body as Record<string, unknown>;
        expect(updated).toMatchObject({ ...item, ...changes, version: version + 1, updatedAt: expect.any(String) });
        expect(sequence.etag(res)).toBe(`"${version + 1}"`);
        model.items.set(item.id as string, updated);
    }),

    remove: (index: number) => command(`Delete(${index})`, (model) => model.items.size > 0, async (model, real) => {

        const id = sequence.pick([...model.items.keys()], index);
        const res = await sequence.call(real, 'delete', '/items/{id}', { params: { id }, headers: { 'if-match': `"${model.items.get(id)!.version}"` } });
        expect(res.status).toBe(204);
        model.items.delete(id);
        model.deleted.push(id);
        expect((await sequence.call(real, 'get', '/items/{id}', { params: { id } })).status).toBe(404);
    })
};


export const stateful = function (target: Target, profile: Profile): fc.IAsyncPropertyWithHooks<[Iterable<fc.AsyncCommand<Model, Real>>]> {

    const create = target.doc.operation('post', '/items');
    const update = target.doc.operation('patch', '/items/{id}');
    const noHints = { values: {} };
    const sequences = fc.commands([
        fc.tuple(Arbitraries.valid(create.body!, noHints), fc.option(fc.constantFrom('key-a', 'key-b', 'key-c'), { nil: undefined })).map(([body, key]) => commands.create(body as Record<string, unknown>, key)),
        fc.nat().map(commands.replay),
        fc.nat().map(commands.read),
        fc.integer({ min: 1, max: 4 }).map(commands.list),
        fc.tuple(fc.nat(), Arbitraries.valid(update.body!, noHints), fc.boolean()).map(([index, changes, stale]) => commands.update(index, changes as Record<string, unknown>, stale)),
        fc.nat().map(commands.remove)
    ], { maxCommands: profile.commands, size: 'max' });

    return fc.asyncProperty(sequences, async (sequenceOfCommands) => {

        await target.db('items').delete();
        await target.db('idempotency_keys').delete();
        const real: Real = { target, log: [] };
        try {
            await fc.asyncModelRun(() => ({ model: { items: new Map(), deleted: [], keys: new Map() }, real }), sequenceOfCommands);
        }
        catch (err) {
            (err as Error).message += `\nRequests of this sequence, as curl:\n${real.log.join('\n')}`;
            throw err;
        }
    });
};
