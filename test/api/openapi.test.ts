import { Validator } from '@seriousme/openapi-schema-validator';
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
        properties: {
            // Bounds in code points live in the pattern (joi's min/max count UTF-16 units), which also excludes NUL and lone surrogates.
            name: { type: 'string', pattern: '^(?:[^\\u0000\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff]){1,200}$' },
            description: { type: 'string', pattern: expect.stringMatching(/\{1,2000\}\$$/) },
            quantity: { type: 'integer', minimum: 0 }
        }
    });
    expect(create.responses['201'].content['application/json'].schema.properties).toHaveProperty('version');
    expect(create.parameters).toContainEqual(expect.objectContaining({ name: 'idempotency-key', in: 'header', required: false }));

    const list = doc.paths['/items'].get;
    expect(list.parameters).toContainEqual(expect.objectContaining({ name: 'limit', in: 'query', schema: expect.objectContaining({ minimum: 1, maximum: 100, default: 20 }) }));
    expect(doc.paths['/items/{id}'].get.parameters).toContainEqual(expect.objectContaining({ name: 'id', in: 'path', required: true }));
    expect(doc.paths['/items/{id}'].delete.responses).toHaveProperty('204');
});

it('is a valid OpenAPI 3 document', async () => {

    const doc = await (await fetch(`${fixture.app.url}/openapi.json`)).json() as Record<string, unknown>;
    const result = await new Validator().validate(doc);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);

    // The validator does refuse a document that breaks the schema: a response without its description.
    const broken = structuredClone(doc) as any;
    delete broken.paths['/items'].post.responses['201'].description;
    expect((await new Validator().validate(broken)).valid).toBe(false);
});

it('lists every status each operation answers, with the error shape, and the headers it requires', async () => {

    const doc = await (await fetch(`${fixture.app.url}/openapi.json`)).json() as any;
    const statuses = Object.fromEntries(Object.entries(doc.paths as Record<string, Record<string, { responses: object }>>)
        .flatMap(([path, operations]) => Object.entries(operations).map(([method, operation]) => [`${method} ${path}`, Object.keys(operation.responses)])));

    expect(statuses).toEqual({
        'post /items': ['201', '400', '413', '415', '422', '503'],
        'get /items': ['200', '400', '503'],
        'get /items/{id}': ['200', '304', '400', '404', '503'],
        'patch /items/{id}': ['200', '400', '404', '412', '413', '415', '428', '503'],
        'delete /items/{id}': ['204', '400', '404', '412', '503']
    });

    const patch = doc.paths['/items/{id}'].patch;
    expect(patch.parameters).toContainEqual(expect.objectContaining({ name: 'if-match', in: 'header', required: true, schema: expect.objectContaining({ minLength: 1 }) }));
    expect(patch.responses['428'].content['application/json'].schema.allOf).toEqual([
        { $ref: '#/components/schemas/Error' },
        { type: 'object', properties: { statusCode: { type: 'integer', enum: [428] } } }
    ]);
    expect(doc.paths['/items'].post.responses['201'].headers).toMatchObject({ ETag: { required: true }, Location: { required: true }, 'Idempotent-Replayed': { required: false } });
    expect(doc.paths['/items/{id}'].patch.responses['200'].headers).toMatchObject({ ETag: { required: true, schema: { pattern: '^"[1-9][0-9]*"$' } } });
    expect(doc.paths['/items'].get.responses['503'].headers).toHaveProperty('Retry-After');
    expect(doc.components.schemas.Error).toMatchObject({ required: ['statusCode', 'error', 'message'], additionalProperties: false });
    expect(doc.paths['/items/{id}'].delete.parameters).toContainEqual(expect.objectContaining({ name: 'if-match', required: false }));

    // Any UUID is an id (absent ones are 404), and the cursor is one too: the pattern says exactly which strings are.
    const uuid = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
    expect(doc.paths['/items/{id}'].get.parameters).toContainEqual(expect.objectContaining({ name: 'id', schema: expect.objectContaining({ format: 'uuid', pattern: uuid }) }));
    expect(doc.paths['/items'].get.parameters).toContainEqual(expect.objectContaining({ name: 'cursor', schema: expect.objectContaining({ pattern: uuid }) }));
    expect(doc.paths['/items'].get.responses['200'].content['application/json'].schema.properties.nextCursor).toMatchObject({ pattern: uuid, nullable: true });
    expect(doc.paths['/items/{id}'].patch.requestBody).toMatchObject({ required: true, content: { 'application/json': { schema: { minProperties: 1, additionalProperties: false } } } });
});
