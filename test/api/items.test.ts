import Http from 'node:http';

import { beforeEach, describe, expect, it } from 'vitest';

import * as App from '../support/app.ts';


const fixture = App.provide();

const json = { 'content-type': 'application/json' };

const request = async (method: string, path: string, options: { body?: unknown; raw?: string; headers?: Record<string, string> } = {}) => {

    const res = await fetch(`${fixture.app.url}${path}`, {
        method,
        headers: { ...(options.body !== undefined || options.raw !== undefined ? json : {}), ...options.headers },
        ...(options.raw !== undefined ? { body: options.raw } : options.body !== undefined ? { body: JSON.stringify(options.body) } : {})
    });

    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
};

// fetch refuses to send TRACE: node's own client does not.
const raw = (method: string, path: string) => new Promise<{ status: number; allow: string | undefined; body: any }>((resolve, reject) => {

    const req = Http.request(`${fixture.app.url}${path}`, { method }, (res) => {

        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, allow: res.headers.allow, body: JSON.parse(Buffer.concat(chunks).toString()) }));
    });

    req.on('error', reject);
    req.end();
});

const create = async (body: object = { name: 'widget' }) => {

    const res = await request('POST', '/items', { body });
    expect(res.status).toBe(201);
    return res;
};


beforeEach(async () => {

    await fixture.app.db('items').delete();
    await fixture.app.db('idempotency_keys').delete();
});


describe('POST /items', () => {

    it('creates an item with server-assigned id, defaults, Location and ETag', async () => {

        const res = await create({ name: 'widget', description: 'blue' });
        expect(res.body).toEqual({
            id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
            name: 'widget',
            description: 'blue',
            quantity: 0,
            version: 1,
            createdAt: expect.any(String),
            updatedAt: expect.any(String)
        });
        expect(res.headers.get('location')).toBe(`/items/${res.body.id}`);
        expect(res.headers.get('etag')).toBe('"1"');

        const stored = await fixture.app.db('items').where({ id: res.body.id }).first();
        expect(stored).toMatchObject({ name: 'widget', description: 'blue', quantity: 0, version: 1 });
    });

    it.each([
        ['a missing name', { quantity: 1 }, 'name'],
        ['an empty name', { name: '' }, 'name'],
        ['a name over 200 characters', { name: 'x'.repeat(201) }, 'name'],
        ['a description over 2000 characters', { name: 'a', description: 'x'.repeat(2001) }, 'description'],
        ['a negative quantity', { name: 'a', quantity: -1 }, 'quantity'],
        ['a fractional quantity', { name: 'a', quantity: 1.5 }, 'quantity'],
        ['a quantity given as a string', { name: 'a', quantity: '3' }, 'quantity'],
        ['a name given as a number', { name: 42 }, 'name'],
        ['an unknown field', { name: 'a', colour: 'red' }, 'colour'],
        ['an unknown field whose name HTML would escape', { name: 'a', '<ß&>': 1 }, '<ß&>'],
        ['a client-chosen id', { name: 'a', id: '01a1fda8-1894-7455-9a35-840c7ccb6686' }, 'id'],
        ['a client-chosen version', { name: 'a', version: 7 }, 'version'],
        ['a name containing NUL', { name: 'a\u0000b' }, 'name'],
        ['a description containing NUL', { name: 'a', description: '\u0000' }, 'description'],
        ['a name with an unpaired high surrogate', { name: '\ud800x' }, 'name'],
        ['a name with an unpaired low surrogate', { name: 'x\udc00' }, 'name'],
        ['a description with surrogates in the wrong order', { name: 'a', description: '\udc00\ud800' }, 'description'],
        ['an empty description', { name: 'a', description: '' }, 'description'],
        ['a name of 201 characters outside the BMP', { name: '\u{1F600}'.repeat(201) }, 'name']
    ])('rejects %s with 400 naming the field, and stores nothing', async (_, body, field) => {

        const res = await request('POST', '/items', { body });
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request', field });
        expect(res.body.message).toContain(field);
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
    });

    it('stores text exactly, counting characters rather than UTF-16 units', async () => {

        const name = '\u{1F600}'.repeat(200);                                 // 400 UTF-16 units, 200 characters
        const description = 'e\u0301 \uFEFF\uFFFF \u202E\u0007 \r\n\t';        // Unnormalised, BOM, noncharacter, RTL override, controls
        const res = await create({ name, description });
        expect(res.body).toMatchObject({ name, description });
        expect(await fixture.app.db('items').where({ id: res.body.id }).first()).toMatchObject({ name, description });
        expect((await request('GET', `/items/${res.body.id}`)).body).toMatchObject({ name, description });
    });

    it('rejects a missing body with 400 naming none of the fields, and stores nothing', async () => {

        const res = await request('POST', '/items', { headers: json });
        expect(res.status).toBe(400);
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
    });

    it('rejects malformed JSON with 400 and stores nothing', async () => {

        const res = await request('POST', '/items', { raw: '{"name": "a",', headers: { 'idempotency-key': 'k-malformed' } });
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
    });

    it('rejects a body that is not an object with 400', async () => {

        const res = await request('POST', '/items', { raw: '["a"]' });
        expect(res.status).toBe(400);
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
    });

    it('rejects an oversized body with 413 and stores nothing', async () => {

        const res = await request('POST', '/items', { raw: JSON.stringify({ name: 'a', description: 'x'.repeat(70 * 1024) }) });
        expect(res.status).toBe(413);
        expect(res.body).toMatchObject({ statusCode: 413, error: 'Request Entity Too Large' });
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
    });

    it('rejects a non-JSON content type with 415 and stores nothing', async () => {

        const res = await request('POST', '/items', { raw: 'name=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        expect(res.status).toBe(415);
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
    });

    it('rejects an invalid Idempotency-Key header with 400 naming it', async () => {

        const res = await request('POST', '/items', { body: { name: 'a' }, headers: { 'idempotency-key': 'x'.repeat(256) } });
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ field: 'idempotency-key' });
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
    });
});


describe('GET /items/{id}', () => {

    it('returns the item with its ETag, and 304 for a matching If-None-Match', async () => {

        const { body: created } = await create({ name: 'widget', quantity: 3 });
        const res = await request('GET', `/items/${created.id}`);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(created);
        expect(res.headers.get('etag')).toBe('"1"');

        const cached = await fetch(`${fixture.app.url}/items/${created.id}`, { headers: { 'if-none-match': '"1"' } });
        expect(cached.status).toBe(304);
    });

    it('returns 404 for an absent item', async () => {

        const res = await request('GET', '/items/01a1fda8-1894-7455-9a35-840c7ccb6686');
        expect(res.status).toBe(404);
        expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'Item not found' });
    });

    it.each([
        ['a version 4 UUID', '1b4e28ba-2fa1-41d2-883f-0016d3cca427'],
        ['a version 3 UUID', '6fa459ea-ee8a-3ca4-894e-db77e160355e'],
        ['the nil UUID', '00000000-0000-0000-0000-000000000000'],
        ['an upper-case UUID', '01A1FDA8-1894-7455-9A35-840C7CCB6686']
    ])('returns 404 for %s that names no item', async (_, id) => {

        const res = await request('GET', `/items/${id}`);
        expect(res.status).toBe(404);
    });

    it('finds an item by its id in upper case', async () => {

        const { body: created } = await create();
        const res = await request('GET', `/items/${created.id.toUpperCase()}`);
        expect(res.status).toBe(200);
        expect(res.body.id).toBe(created.id);
    });

    it.each([
        ['with braces', '{01a1fda8-1894-7455-9a35-840c7ccb6686}'],
        ['without hyphens', '01a1fda8189474559a35840c7ccb6686'],
        ['as a URN', 'urn:uuid:01a1fda8-1894-7455-9a35-840c7ccb6686']
    ])('returns 400 naming the id for a UUID %s, which the document does not allow', async (_, id) => {

        const res = await request('GET', `/items/${encodeURIComponent(id)}`);
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ statusCode: 400, field: 'id' });
    });

    it('returns 400 naming the id when it is not a uuid', async () => {

        const res = await request('GET', '/items/not-a-uuid');
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ statusCode: 400, field: 'id' });
    });
});


describe('PATCH /items/{id}', () => {

    it('applies a partial update with the current ETag and bumps the version', async () => {

        const { body: created } = await create({ name: 'widget', description: 'blue', quantity: 1 });
        const res = await request('PATCH', `/items/${created.id}`, { body: { quantity: 5 }, headers: { 'if-match': '"1"' } });
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ id: created.id, name: 'widget', description: 'blue', quantity: 5, version: 2 });
        expect(res.headers.get('etag')).toBe('"2"');
        expect(new Date(res.body.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(created.updatedAt).getTime());

        const cleared = await request('PATCH', `/items/${created.id}`, { body: { description: null }, headers: { 'if-match': '"2"' } });
        expect(cleared.body).toMatchObject({ description: null, version: 3 });
        expect(await fixture.app.db('items').where({ id: created.id }).first()).toMatchObject({ description: null, quantity: 5, version: 3 });
    });

    it('answers 428 without If-Match and changes nothing', async () => {

        const { body: created } = await create();
        const res = await request('PATCH', `/items/${created.id}`, { body: { quantity: 5 } });
        expect(res.status).toBe(428);
        expect(res.body).toMatchObject({ statusCode: 428, field: 'if-match' });
        expect(await fixture.app.db('items').where({ id: created.id }).first()).toMatchObject({ quantity: 0, version: 1 });
    });

    it.each([
        ['a stale ETag', '"0"'],
        ['a weak ETag', 'W/"1"'],
        ['a malformed ETag', 'one']
    ])('answers 412 for %s and changes nothing', async (_, ifMatch) => {

        const { body: created } = await create();
        const res = await request('PATCH', `/items/${created.id}`, { body: { quantity: 5 }, headers: { 'if-match': ifMatch } });
        expect(res.status).toBe(412);
        expect(res.body).toMatchObject({ statusCode: 412, field: 'if-match' });
        expect(await fixture.app.db('items').where({ id: created.id }).first()).toMatchObject({ quantity: 0, version: 1 });
    });

    it('lets exactly one of two concurrent updates based on the same version win', async () => {

        const { body: created } = await create();
        const results = await Promise.all([1, 2].map((quantity) => request('PATCH', `/items/${created.id}`, { body: { quantity }, headers: { 'if-match': '"1"' } })));
        expect(results.map((res) => res.status).sort()).toEqual([200, 412]);
        expect(await fixture.app.db('items').where({ id: created.id }).first()).toMatchObject({ version: 2 });
    });

    it.each([
        ['an empty body', {}, undefined],
        ['an unknown field', { colour: 'red' }, 'colour'],
        ['a negative quantity', { quantity: -2 }, 'quantity'],
        ['a null name', { name: null }, 'name'],
        ['a version', { version: 9 }, 'version'],
        ['a name containing NUL', { name: '\u0000' }, 'name'],
        ['a description with an unpaired surrogate', { description: 'a\ud83d' }, 'description'],
        ['an empty description', { description: '' }, 'description']
    ])('rejects %s with 400 and changes nothing', async (_, body, field) => {

        const { body: created } = await create();
        const res = await request('PATCH', `/items/${created.id}`, { body, headers: { 'if-match': '"1"' } });
        expect(res.status).toBe(400);
        if (field) {
            expect(res.body).toMatchObject({ field });
        }

        expect(await fixture.app.db('items').where({ id: created.id }).first()).toMatchObject({ name: 'widget', quantity: 0, version: 1 });
    });

    it('rejects a missing body with 400 and changes nothing', async () => {

        const { body: created } = await create();
        const res = await request('PATCH', `/items/${created.id}`, { headers: { ...json, 'if-match': '"1"' } });
        expect(res.status).toBe(400);
        expect(await fixture.app.db('items').where({ id: created.id }).first()).toMatchObject({ version: 1 });
    });

    it('answers 404 for an absent item', async () => {

        const res = await request('PATCH', '/items/01a1fda8-1894-7455-9a35-840c7ccb6686', { body: { quantity: 1 }, headers: { 'if-match': '"1"' } });
        expect(res.status).toBe(404);
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
    });
});


describe('DELETE /items/{id}', () => {

    it('deletes with 204, then answers 404', async () => {

        const { body: created } = await create();
        const res = await request('DELETE', `/items/${created.id}`);
        expect(res.status).toBe(204);
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
        expect((await request('DELETE', `/items/${created.id}`)).status).toBe(404);
        expect((await request('GET', `/items/${created.id}`)).status).toBe(404);
    });

    it('honours an optional If-Match', async () => {

        const { body: created } = await create();
        expect((await request('DELETE', `/items/${created.id}`, { headers: { 'if-match': '"3"' } })).status).toBe(412);
        expect(await App.counts(fixture.app.db)).toEqual({ items: 1, keys: 0 });
        expect((await request('DELETE', `/items/${created.id}`, { headers: { 'if-match': '"1"' } })).status).toBe(204);
    });

    it('answers 400 for an id that is not a uuid', async () => {

        const res = await request('DELETE', '/items/42');
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ field: 'id' });
    });
});


describe('methods a path does not have', () => {

    it('answers TRACE with 405 and Allow', async () => {

        const res = await raw('TRACE', '/items');
        expect(res.status).toBe(405);
        expect(res.allow).toBe('GET, HEAD, POST');
        expect(res.body).toMatchObject({ statusCode: 405, error: 'Method Not Allowed' });
    });

    it.each([
        ['PUT', '/items', 'GET, HEAD, POST'],
        ['DELETE', '/items', 'GET, HEAD, POST'],
        ['POST', '/items/01a1fda8-1894-7455-9a35-840c7ccb6686', 'DELETE, GET, HEAD, PATCH'],
        ['PUT', '/items/not-a-uuid', 'DELETE, GET, HEAD, PATCH'],
        ['POST', '/openapi.json', 'GET, HEAD']
    ])('answers %s %s with 405 and Allow, storing nothing', async (method, path, allow) => {

        const res = await request(method, path, { body: { name: 'a' } });
        expect(res.status).toBe(405);
        expect(res.headers.get('allow')).toBe(allow);
        expect(res.body).toMatchObject({ statusCode: 405, error: 'Method Not Allowed' });
        expect(await App.counts(fixture.app.db)).toEqual({ items: 0, keys: 0 });
    });

    it('still answers 404 for a path that does not exist, whatever the method', async () => {

        for (const method of ['GET', 'PUT', 'POST']) {
            expect((await request(method, '/nothing-here')).status).toBe(404);
        }

        expect((await raw('TRACE', '/nothing-here')).status).toBe(404);
    });

    it('answers HEAD wherever GET is', async () => {

        expect((await fetch(`${fixture.app.url}/items`, { method: 'HEAD' })).status).toBe(200);
    });
});
