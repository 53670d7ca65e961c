import { expect, it } from 'vitest';

import * as App from '../support/app.ts';


const fixture = App.provide();



it('serves an OpenAPI 3 document generated from every API route', async () => {

    const res = await fetch(`${fixture.app.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = await res.json() as any;

    expect(doc.openapi).toMatch(/^3\./);
    const documented = Object.entries(doc.paths as Record<string, object>).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`)).sort();
    const routed = fixture.app.server.table().filter((route) => route.settings.tags?.includes('api')).map((route) => `${route.method} ${route.path}`).sort();
    expect(documented).toEqual(routed);
    expect(documented).toEqual(['delete /items/{id}', 'get /items', 'get /items/{id}', 'patch /items/{id}', 'post /items']);

    // The documented constraints are the enforced ones.
    const create = doc.paths['/items'].post;
    expect(create.requestBody.content['application/json'].schema).toMatchObject({
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, quantity: { type: 'integer', minimum: 0 } }
    });
    expect(create.responses['201'].content['application/json'].schema.properties).toHaveProperty('version');
    expect(create.parameters).toContainEqual(expect.objectContaining({ name: 'idempotency-key', in: 'header', required: false }));

    const list = doc.paths['/items'].get;
    expect(list.parameters).toContainEqual(expect.objectContaining({ name: 'limit', in: 'query', schema: expect.objectContaining({ minimum: 1, maximum: 100, default: 20 }) }));
    expect(doc.paths['/items/{id}'].get.parameters).toContainEqual(expect.objectContaining({ name: 'id', in: 'path', required: true }));
    expect(doc.paths['/items/{id}'].delete.responses).toHaveProperty('204');
});
